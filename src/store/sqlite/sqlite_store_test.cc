#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>

#include "store/store.h"

namespace pw::store {
namespace {

namespace fs = std::filesystem;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pw-store-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/pipewright.db";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<Store> Open() {
    auto s = OpenSqliteStore(path_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(*s);
  }
  static nlohmann::json Decl(const std::string& name) {
    return {{"name", name},
            {"roleArn", "arn:aws:iam::123456789012:role/r"},
            {"stages", nlohmann::json::array()}};
  }
  std::string dir_, path_;
};

TEST_F(SqliteStoreTest, CreateGetAndNameInUse) {
  auto s = Open();
  auto rec = s->CreatePipeline("p", "arn:p", Decl("p"), {{"team", "a"}}, 100.0, 1000);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->version, 1);
  EXPECT_EQ(rec->declaration["version"], 1);
  auto again = s->CreatePipeline("p", "arn:p", Decl("p"), {}, 101.0, 1000);
  EXPECT_EQ(again.status().wire_name(), "PipelineNameInUseException");
  auto got = s->GetPipeline("p", std::nullopt);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->created, 100.0);
  EXPECT_EQ(s->GetPipeline("q", std::nullopt).status().wire_name(), "PipelineNotFoundException");
}

TEST_F(SqliteStoreTest, EveryVersionIsKeptAndSurvivesReopen) {
  {
    auto s = Open();
    ASSERT_TRUE(s->CreatePipeline("p", "arn:p", Decl("p"), {}, 1.0, 1000).ok());
    auto d = Decl("p");
    d["stages"] = {{{"name", "v2"}}};
    auto v2 = s->UpdatePipeline("p", d, 2.0);
    ASSERT_TRUE(v2.ok());
    EXPECT_EQ(v2->version, 2);
    d["stages"] = {{{"name", "v3"}}};
    ASSERT_TRUE(s->UpdatePipeline("p", d, 3.0).ok());
  }
  auto s = Open();
  auto cur = s->GetPipeline("p", std::nullopt);
  ASSERT_TRUE(cur.ok());
  EXPECT_EQ(cur->version, 3);
  EXPECT_EQ(cur->updated, 3.0);
  EXPECT_EQ(cur->created, 1.0);
  auto v2 = s->GetPipeline("p", 2);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->declaration["stages"][0]["name"], "v2");
  EXPECT_EQ(v2->declaration["version"], 2);
  EXPECT_EQ(s->GetPipeline("p", 4).status().wire_name(), "PipelineVersionNotFoundException");
}

TEST_F(SqliteStoreTest, UpdateOfUnknownPipelineChangesNothing) {
  auto s = Open();
  EXPECT_EQ(s->UpdatePipeline("nope", Decl("nope"), 1.0).status().wire_name(),
            "PipelineNotFoundException");
  auto list = s->ListPipelines();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(SqliteStoreTest, LimitExceeded) {
  auto s = Open();
  ASSERT_TRUE(s->CreatePipeline("a", "arn:a", Decl("a"), {}, 1.0, 1).ok());
  EXPECT_EQ(s->CreatePipeline("b", "arn:b", Decl("b"), {}, 1.0, 1).status().wire_name(),
            "LimitExceededException");
}

TEST_F(SqliteStoreTest, TagsAddReplaceRemoveAndLimit) {
  auto s = Open();
  ASSERT_TRUE(s->CreatePipeline("p", "arn:p", Decl("p"), {{"a", "1"}}, 1.0, 1000).ok());
  ASSERT_TRUE(s->TagResource("arn:p", {{"a", "2"}, {"b", "3"}}).ok());
  auto tags = s->ListTags("arn:p");
  ASSERT_TRUE(tags.ok());
  ASSERT_EQ(tags->size(), 2u);
  EXPECT_EQ((*tags)[0].value, "2");
  ASSERT_TRUE(s->UntagResource("arn:p", {"a"}).ok());
  EXPECT_EQ(s->ListTags("arn:p")->size(), 1u);
  std::vector<Tag> many;
  for (int i = 0; i < 50; ++i) many.push_back({"k" + std::to_string(i), "v"});
  EXPECT_EQ(s->TagResource("arn:p", many).wire_name(), "TooManyTagsException");
  EXPECT_EQ(s->ListTags("arn:p")->size(), 1u) << "a refused tagging must change nothing";
}

TEST_F(SqliteStoreTest, DeleteRemovesEverything) {
  auto s = Open();
  ASSERT_TRUE(s->CreatePipeline("p", "arn:p", Decl("p"), {{"a", "1"}}, 1.0, 1000).ok());
  ASSERT_TRUE(s->SaveExecution({"e1", "p", "InProgress", 1.0, 1.0, {{"x", 1}}},
                               {{"a1", "e1", "p", "S", "A", "InProgress", 1.0, 1.0, {}}})
                  .ok());
  ASSERT_TRUE(s->DeletePipeline("p").ok());
  EXPECT_EQ(s->DeletePipeline("p").wire_name(), "PipelineNotFoundException");
  EXPECT_TRUE(s->ListTags("arn:p")->empty());
  EXPECT_TRUE(s->ListExecutions("p")->empty());
  EXPECT_TRUE(s->ListActionExecutions("p", "")->empty());
}

TEST_F(SqliteStoreTest, ExecutionsUpsertAndOrderNewestFirst) {
  auto s = Open();
  ASSERT_TRUE(s->SaveExecution({"e1", "p", "InProgress", 1.0, 1.0, {{"n", 1}}}, {}).ok());
  ASSERT_TRUE(s->SaveExecution({"e2", "p", "InProgress", 2.0, 2.0, {}}, {}).ok());
  ASSERT_TRUE(s->SaveExecution({"e1", "p", "Failed", 1.0, 3.0, {{"n", 2}}},
                               {{"a1", "e1", "p", "S", "A", "Failed", 1.0, 3.0, {}}})
                  .ok());
  auto list = s->ListExecutions("p");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, "e2");
  EXPECT_EQ((*list)[1].status, "Failed");
  EXPECT_EQ((*list)[1].doc["n"], 2);
  EXPECT_EQ(s->ListActionExecutions("p", "e1")->size(), 1u);
  EXPECT_TRUE(s->ListActionExecutions("p", "e2")->empty());
}

TEST_F(SqliteStoreTest, MigrationsAreRecordedAndWalIsOn) {
  Open();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM schema_migrations", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 2);
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
  Open();  // Reopening applies nothing twice.
}

TEST_F(SqliteStoreTest, KeyValue) {
  auto s = Open();
  EXPECT_FALSE(s->GetKv("a")->has_value());
  ASSERT_TRUE(s->PutKv("tok/p/1", "e1").ok());
  ASSERT_TRUE(s->PutKv("tok/p/2", "e2").ok());
  EXPECT_EQ(**s->GetKv("tok/p/1"), "e1");
  auto listed = s->ListKv("tok/p/");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[1].second, "e2");
  ASSERT_TRUE(s->DeleteKvPrefix("tok/p/").ok());
  EXPECT_FALSE(s->GetKv("tok/p/2")->has_value());
}

}  // namespace
}  // namespace pw::store
