#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>

#include "common/status.h"
#include "store/store.h"

namespace pw::store::sqlite_store_test {
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

  std::string dir_, path_;
};

// The Store contract (pipelines, versions, tags, executions, key/value) is
// tested once for both implementations in ../postgres/postgres_store_test.cc
// (StoreContractTest, parameterised over SQLite and PostgreSQL). Here: what
// only SQLite has.

TEST_F(SqliteStoreTest, MigrationsAreRecordedAndWalIsOn) {
  Open();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM schema_migrations", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 7);
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
  Open();  // Reopening applies nothing twice.
}

// Migration 7 moves a schema-6 database's kv rows (a rowid table, keys in
// insertion order) to a table kept in key order, losing none, bytes and all.
TEST_F(SqliteStoreTest, KvRowsMoveToATableInKeyOrder) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    const char* schema6 =
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL);"
        "INSERT INTO schema_migrations (version) VALUES (1), (2), (3), (4), (5), (6);"
        "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO kv VALUES ('s3obj/b/z', '1'), ('pstate/p', '{\"a\":1}'), "
        "('s3obj/b/a', '2'), (CAST(X'73336F626A2F622FFF' AS TEXT), '3');";
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db, schema6, nullptr, nullptr, &err), SQLITE_OK) << err;
    sqlite3_close(db);
  }
  auto s = Open();
  auto rows = s->ScanKv(KvScan("s3obj/b/"));
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0], std::make_pair(std::string("s3obj/b/a"), std::string("2")));
  EXPECT_EQ((*rows)[1].first, "s3obj/b/z");
  EXPECT_EQ((*rows)[2].first, "s3obj/b/\xff");
  EXPECT_EQ(**s->GetKv("pstate/p"), "{\"a\":1}");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE name = 'kv'", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_NE(
      std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))).find("WITHOUT ROWID"),
      std::string::npos);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

// The store keeps its prepared statements for reuse. A kept statement must
// not hold a read transaction (a query stepped to its first row and left
// there would pin the WAL: no checkpoint could ever finish) and must come
// back clean after a failed transaction.
TEST_F(SqliteStoreTest, ReusedStatementsHoldNoReadTransactionAndSurviveAFailedCommit) {
  auto s = Open();
  nlohmann::json decl = {{"name", "p"}, {"stages", nlohmann::json::array()}};
  ASSERT_TRUE(s->CreatePipeline("p", "arn:p", decl, {}, 1.0, 1000).ok());
  for (int i = 0; i < 50; ++i) {
    Batch b;
    b.executions.push_back({"e" + std::to_string(i % 5), "p", "InProgress", 1.0, 2.0 + i, {}});
    b.kv.emplace_back("k", std::to_string(i));
    ASSERT_TRUE(s->Commit(b).ok()) << i;
    ASSERT_TRUE(s->GetPipeline("p", std::nullopt).ok());  // Steps one row of each query.
    ASSERT_EQ(**s->GetKv("k"), std::to_string(i));
    ASSERT_TRUE(s->GetExecution("p", "e0").ok());
  }
  // A batch that fails half-way (a row version that does not match) writes
  // nothing, and the statements it used serve the next commit.
  Batch stale;
  stale.kv.emplace_back("k", "stale");
  stale.executions.push_back({"e1", "p", "Failed", 1.0, 99.0, {}, /*version=*/42});
  EXPECT_EQ(s->Commit(stale).code(), StatusCode::kAborted);
  EXPECT_EQ(**s->GetKv("k"), "49");
  Batch next;
  next.executions.push_back({"e1", "p", "Succeeded", 1.0, 100.0, {}});
  ASSERT_TRUE(s->Commit(next).ok());
  EXPECT_EQ((*s->GetExecution("p", "e1"))->status, "Succeeded");

  // Another connection can checkpoint the whole WAL and truncate it: no
  // statement of the store still reads an old snapshot.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "SELECT COUNT(*) FROM kv", nullptr, nullptr, nullptr), SQLITE_OK);
  int log = -1, done = -1;
  EXPECT_EQ(sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log, &done),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  EXPECT_EQ(log, 0);
  sqlite3_close(db);
  EXPECT_EQ(fs::file_size(path_ + "-wal"), 0u);
}

}  // namespace
}  // namespace pw::store::sqlite_store_test
