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
  EXPECT_EQ(sqlite3_column_int(st, 0), 6);
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
  Open();  // Reopening applies nothing twice.
}

}  // namespace
}  // namespace pw::store
