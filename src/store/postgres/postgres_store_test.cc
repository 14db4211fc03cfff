// The Store contract, one set of test bodies run against both implementations:
// SQLite in a fresh temp directory, PostgreSQL in a fresh schema on a real
// server this test starts (scripts/pg-test-server, once per process, stopped
// at exit). Then PostgreSQL-only behaviour: migration lock, reconnects,
// rollback, concurrent servers.
//
// If PostgreSQL cannot be started, every PostgreSQL test FAILS with the reason;
// set PW_SKIP_POSTGRES=1 to skip them instead.

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <thread>

#include "store/store.h"

namespace pw::store::postgres_store_test {
namespace {

namespace fs = std::filesystem;

bool SkipPostgres() {
  const char* v = std::getenv("PW_SKIP_POSTGRES");
  return v != nullptr && std::string(v) == "1";
}

// A libpq connection for test set-up and inspection (not the code under test).
class PgConn {
 public:
  explicit PgConn(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {}
  ~PgConn() { PQfinish(conn_); }
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;
  bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }
  std::string error() const { return PQerrorMessage(conn_); }
  // Runs `sql` with text parameters; returns the first column of the first
  // row ("" if none), or "ERROR: ..." on failure.
  std::string Exec(const std::string& sql, const std::vector<std::string>& params = {}) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    PGresult* r = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
    std::string out;
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      out = std::string("ERROR: ") + PQresultErrorMessage(r);
    } else if (PQntuples(r) > 0) {
      out = PQgetvalue(r, 0, 0);
    }
    PQclear(r);
    return out;
  }

 private:
  PGconn* conn_;
};

// The PostgreSQL server shared by the tests of this process: started on first
// use, stopped by the global environment's TearDown (and by the script's
// watchdog if this process dies first).
class PostgresServer {
 public:
  static PostgresServer& Get() {
    static PostgresServer server;
    return server;
  }
  // The URL of the server's `postgres` database, or why it did not start.
  const Result<std::string>& url() {
    std::call_once(started_, [this] { url_ = Start(); });
    return url_;
  }
  void Stop() {
    if (dir_.empty()) return;
    std::string cmd = "'" PW_PG_TEST_SERVER "' stop '" + dir_ + "'";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "pg-test-server stop failed\n");
    dir_.clear();
  }

 private:
  Result<std::string> Start() {
    char tmpl[] = "/tmp/pw-pg-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return Unavailable("mkdtemp failed");
    dir_ = tmpl;
    std::string cmd = "'" PW_PG_TEST_SERVER "' start '" + dir_ + "' --watch " +
                      std::to_string(getpid()) + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return Unavailable("cannot run " PW_PG_TEST_SERVER);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int rc = pclose(p);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    if (rc != 0) {
      return Unavailable("could not start PostgreSQL with " PW_PG_TEST_SERVER ": " + out +
                         "\n(set PW_SKIP_POSTGRES=1 to skip the PostgreSQL tests)");
    }
    return out.substr(out.rfind('\n') + 1);  // The URL is the last line.
  }

  std::once_flag started_;
  Result<std::string> url_ = Unavailable("not started");
  std::string dir_;
};

class StopPostgresAtExit : public ::testing::Environment {
 public:
  void TearDown() override { PostgresServer::Get().Stop(); }
};
// gtest owns registered environments (its API takes a raw pointer).
[[maybe_unused]] ::testing::Environment* const kStopPostgres =
    ::testing::AddGlobalTestEnvironment(new StopPostgresAtExit);

// A place one store lives: every Open() opens the same database afresh.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual Result<std::unique_ptr<Store>> Open() = 0;
  // Rows in schema_migrations, read behind the store's back.
  virtual int CountMigrations() = 0;
  // Behind the store's back, installs a trigger that makes every insert of
  // the key "boom" into kv fail: a statement failing in the middle of a
  // transaction. Returns "" or the error.
  virtual std::string RefuseKvKeyBoom() = 0;
};

class SqliteBackend final : public Backend {
 public:
  SqliteBackend() {
    char tmpl[] = "/tmp/pw-store-XXXXXX";
    if (mkdtemp(tmpl) != nullptr) dir_ = tmpl;
  }
  ~SqliteBackend() override { fs::remove_all(dir_); }
  Result<std::unique_ptr<Store>> Open() override { return OpenSqliteStore(path()); }
  int CountMigrations() override {
    sqlite3* db = nullptr;
    int count = -1;
    if (sqlite3_open(path().c_str(), &db) == SQLITE_OK) {
      sqlite3_stmt* st = nullptr;
      sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM schema_migrations", -1, &st, nullptr);
      if (sqlite3_step(st) == SQLITE_ROW) count = sqlite3_column_int(st, 0);
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return count;
  }
  std::string RefuseKvKeyBoom() override {
    sqlite3* db = nullptr;
    std::string out;
    char* err = nullptr;
    if (sqlite3_open(path().c_str(), &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "CREATE TRIGGER refuse_boom BEFORE INSERT ON kv WHEN NEW.key = 'boom' "
                     "BEGIN SELECT RAISE(ABORT, 'boom refused by the test'); END",
                     nullptr, nullptr, &err) != SQLITE_OK) {
      out = std::string("ERROR: ") + (err ? err : sqlite3_errmsg(db));
    }
    sqlite3_free(err);
    sqlite3_close(db);
    return out;
  }

 private:
  std::string path() const { return dir_ + "/pipewright.db"; }
  std::string dir_;
};

// A fresh schema on the shared server, dropped afterwards: connections made
// with url() create and see only its tables (search_path), and carry its name
// as application_name. (A schema costs milliseconds, a database ~200 ms.)
class PostgresBackend final : public Backend {
 public:
  // Creates the schema; check status() before use.
  PostgresBackend() {
    static std::atomic<int> next{0};
    schema_ = "pw_test_" + std::to_string(next++);
    PgConn admin(*PostgresServer::Get().url());
    if (!admin.ok()) {
      status_ = Unavailable("cannot connect to the test server: " + admin.error());
      return;
    }
    // An identifier cannot be a parameter; schema_ is ours, made of [a-z0-9_].
    std::string r = admin.Exec("CREATE SCHEMA " + schema_);
    if (!r.empty()) status_ = Unavailable("CREATE SCHEMA failed: " + r);
  }
  ~PostgresBackend() override {
    PgConn admin(*PostgresServer::Get().url());
    (void)admin.Exec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
  }
  const Status& status() const { return status_; }
  std::string url() const {
    return *PostgresServer::Get().url() + "&options=-csearch_path%3D" + schema_ +
           "&application_name=" + schema_;
  }
  const std::string& schema() const { return schema_; }
  Result<std::unique_ptr<Store>> Open() override { return OpenPostgresStore(url()); }
  int CountMigrations() override {
    PgConn c(url());
    std::string n = c.Exec("SELECT COUNT(*) FROM schema_migrations");
    return n.empty() || n.rfind("ERROR", 0) == 0 ? -1 : std::stoi(n);
  }
  std::string RefuseKvKeyBoom() override {
    PgConn c(url());
    std::string r = c.Exec(R"sql(
      CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.key = 'boom' THEN RAISE EXCEPTION 'boom refused by the test'; END IF;
        RETURN NEW;
      END $$)sql");
    if (!r.empty()) return r;
    return c.Exec(
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON kv FOR EACH ROW "
        "EXECUTE FUNCTION refuse_boom()");
  }

 private:
  std::string schema_;
  Status status_;
};

// Starts the server if needed and makes a fresh schema, or says why not.
Result<std::unique_ptr<PostgresBackend>> MakePostgresBackend() {
  const auto& url = PostgresServer::Get().url();
  if (!url.ok()) return url.status();
  auto b = std::make_unique<PostgresBackend>();
  if (!b->status().ok()) return b->status();
  return b;
}

nlohmann::json Decl(const std::string& name) {
  return {{"name", name},
          {"roleArn", "arn:aws:iam::123456789012:role/r"},
          {"stages", nlohmann::json::array()}};
}

// ---------------------------------------------------------------------------
// The contract, for every implementation.

enum class Kind { kSqlite, kPostgres };
void PrintTo(Kind kind, std::ostream* os) {
  *os << (kind == Kind::kSqlite ? "Sqlite" : "Postgres");
}

class StoreContractTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    if (GetParam() == Kind::kSqlite) {
      backend_ = std::make_unique<SqliteBackend>();
      return;
    }
    if (SkipPostgres()) GTEST_SKIP() << "PW_SKIP_POSTGRES=1";
    auto b = MakePostgresBackend();
    ASSERT_TRUE(b.ok()) << b.status().message();
    backend_ = std::move(*b);
  }
  std::unique_ptr<Store> Open() {
    auto s = backend_->Open();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(*s);
  }
  std::unique_ptr<Backend> backend_;
};

TEST_P(StoreContractTest, CreateGetAndNameInUse) {
  auto s = Open();
  auto rec = s->CreatePipeline("p", "arn:p", Decl("p"), {{"team", "a"}}, 100.0, 1000);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->version, 1);
  EXPECT_EQ(rec->declaration["version"], 1);
  auto again = s->CreatePipeline("p", "arn:p", Decl("p"), {}, 101.0, 1000);
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(again.status().wire_name(), "PipelineNameInUseException");
  auto got = s->GetPipeline("p", std::nullopt);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->created, 100.0);
  EXPECT_EQ(got->arn, "arn:p");
  auto missing = s->GetPipeline("q", std::nullopt);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().wire_name(), "PipelineNotFoundException");
}

TEST_P(StoreContractTest, EveryVersionIsKeptAndSurvivesReopen) {
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
  EXPECT_EQ(v2->version, 2);
  EXPECT_EQ(v2->declaration["stages"][0]["name"], "v2");
  EXPECT_EQ(v2->declaration["version"], 2);
  auto v4 = s->GetPipeline("p", 4);
  EXPECT_EQ(v4.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(v4.status().wire_name(), "PipelineVersionNotFoundException");
  EXPECT_EQ(v4.status().message(), "Pipeline 'p' has no version 4; its current version is 3.");
}

TEST_P(StoreContractTest, UpdateOfUnknownPipelineChangesNothing) {
  auto s = Open();
  EXPECT_EQ(s->UpdatePipeline("nope", Decl("nope"), 1.0).status().wire_name(),
            "PipelineNotFoundException");
  auto list = s->ListPipelines();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_P(StoreContractTest, LimitExceeded) {
  auto s = Open();
  ASSERT_TRUE(s->CreatePipeline("a", "arn:a", Decl("a"), {}, 1.0, 1).ok());
  auto b = s->CreatePipeline("b", "arn:b", Decl("b"), {}, 1.0, 1);
  EXPECT_EQ(b.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(b.status().wire_name(), "LimitExceededException");
  EXPECT_EQ(s->ListPipelines()->size(), 1u);
}

TEST_P(StoreContractTest, TagsAddReplaceRemoveAndLimit) {
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
  Status too_many = s->TagResource("arn:p", many);
  EXPECT_EQ(too_many.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(too_many.wire_name(), "TooManyTagsException");
  EXPECT_EQ(s->ListTags("arn:p")->size(), 1u) << "a refused tagging must change nothing";
}

TEST_P(StoreContractTest, CreateWithTooManyTagsCreatesNothing) {
  auto s = Open();
  std::vector<Tag> many;
  for (int i = 0; i < 51; ++i) many.push_back({"k" + std::to_string(i), "v"});
  EXPECT_EQ(s->CreatePipeline("p", "arn:p", Decl("p"), many, 1.0, 1000).status().wire_name(),
            "TooManyTagsException");
  EXPECT_EQ(s->GetPipeline("p", std::nullopt).status().wire_name(), "PipelineNotFoundException");
  EXPECT_TRUE(s->ListTags("arn:p")->empty());
}

TEST_P(StoreContractTest, DeleteRemovesEverything) {
  auto s = Open();
  ASSERT_TRUE(s->CreatePipeline("p", "arn:p", Decl("p"), {{"a", "1"}}, 1.0, 1000).ok());
  ASSERT_TRUE(s->CreatePipeline("other", "arn:o", Decl("other"), {{"a", "1"}}, 1.0, 1000).ok());
  ASSERT_TRUE(s->SaveExecution({"e1", "p", "InProgress", 1.0, 1.0, {{"x", 1}}},
                               {{"a1", "e1", "p", "S", "A", "InProgress", 1.0, 1.0, {}}})
                  .ok());
  ASSERT_TRUE(s->SaveExecution({"e2", "other", "InProgress", 1.0, 1.0, {}}, {}).ok());
  ASSERT_TRUE(s->PutKv("pstate/p", "{}").ok());
  ASSERT_TRUE(s->PutKv("pstate/other", "{}").ok());
  ASSERT_TRUE(s->DeletePipeline("p").ok());
  Status again = s->DeletePipeline("p");
  EXPECT_EQ(again.code(), StatusCode::kNotFound);
  EXPECT_EQ(again.wire_name(), "PipelineNotFoundException");
  EXPECT_TRUE(s->ListTags("arn:p")->empty());
  EXPECT_TRUE(s->ListExecutions("p")->empty());
  EXPECT_TRUE(s->ListActionExecutions("p", "")->empty());
  EXPECT_FALSE(s->GetKv("pstate/p")->has_value());
  EXPECT_TRUE(s->GetPipeline("p", 1).status().wire_name() == "PipelineNotFoundException");
  // Other pipelines keep everything.
  EXPECT_EQ(s->ListTags("arn:o")->size(), 1u);
  EXPECT_EQ(s->ListExecutions("other")->size(), 1u);
  EXPECT_TRUE(s->GetKv("pstate/other")->has_value());
}

TEST_P(StoreContractTest, ExecutionsUpsertAndOrderNewestFirst) {
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
  EXPECT_EQ((*list)[1].started, 1.0);
  EXPECT_EQ((*list)[1].updated, 3.0);
  EXPECT_EQ((*list)[1].doc["n"], 2);
  EXPECT_EQ(s->ListActionExecutions("p", "e1")->size(), 1u);
  EXPECT_TRUE(s->ListActionExecutions("p", "e2")->empty());
}

// Executions e1 (action runs a1, a2) and e2 (a3) of pipeline "p", running.
bool SaveTwoRunningExecutions(Store& s) {
  std::vector<ActionExecutionRow> e1_runs = {
      {"a1", "e1", "p", "S", "A", "InProgress", 1.0, 1.0, {}},
      {"a2", "e1", "p", "S", "B", "InProgress", 1.0, 1.0, {}}};
  std::vector<ActionExecutionRow> e2_runs = {
      {"a3", "e2", "p", "S", "A", "InProgress", 2.0, 2.0, {}}};
  if (!s.SaveExecution({"e1", "p", "InProgress", 1.0, 1.0, {}}, e1_runs).ok()) return false;
  return s.SaveExecution({"e2", "p", "InProgress", 2.0, 2.0, {}}, e2_runs).ok();
}

TEST_P(StoreContractTest, ActionExecutionsNewestFirstAndUpsertKeepsPlace) {
  auto s = Open();
  ASSERT_TRUE(SaveTwoRunningExecutions(*s));
  ASSERT_TRUE(s->SaveExecution({"e1", "p", "Failed", 1.0, 4.0, {}},
                               {{"a1", "e1", "p", "S", "A", "Failed", 1.0, 4.0, {{"k", "v"}}}})
                  .ok());
  auto all = s->ListActionExecutions("p", "");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, "a3");
  EXPECT_EQ((*all)[1].id, "a2");
  EXPECT_EQ((*all)[2].id, "a1") << "an update must not move a row";
  EXPECT_EQ((*all)[2].status, "Failed");
  EXPECT_EQ((*all)[2].doc["k"], "v");
  EXPECT_EQ((*all)[2].stage, "S");
  EXPECT_EQ((*all)[2].execution_id, "e1");
  auto of_e1 = s->ListActionExecutions("p", "e1");
  ASSERT_EQ(of_e1->size(), 2u);
  EXPECT_EQ((*of_e1)[0].id, "a2");
}

TEST_P(StoreContractTest, PipelineOfAnActionExecutionById) {
  auto s = Open();
  ASSERT_TRUE(SaveTwoRunningExecutions(*s));
  ASSERT_TRUE(s->SaveExecution({"q1", "q", "InProgress", 1.0, 1.0, {}},
                               {{"b1", "q1", "q", "S", "A", "InProgress", 1.0, 1.0, {}}})
                  .ok());
  auto p = s->PipelineOfActionExecution("a1");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->value_or("(none)"), "p");
  EXPECT_EQ(s->PipelineOfActionExecution("b1")->value_or("(none)"), "q");
  EXPECT_FALSE(s->PipelineOfActionExecution("nope")->has_value());
}

TEST_P(StoreContractTest, ActionExecutionsOfSeveralExecutionsInOneRead) {
  auto s = Open();
  const std::string odd = "e\"3\\,{x}";  // Quotes, a backslash, a comma, braces.
  ASSERT_TRUE(SaveTwoRunningExecutions(*s));
  ASSERT_TRUE(s->SaveExecution({odd, "p", "InProgress", 3.0, 3.0, {}},
                               {{"a4", odd, "p", "S", "A", "InProgress", 3.0, 3.0, {}}})
                  .ok());
  ASSERT_TRUE(s->SaveExecution({"e1", "q", "InProgress", 1.0, 1.0, {}},
                               {{"b1", "e1", "q", "S", "A", "InProgress", 1.0, 1.0, {}}})
                  .ok());
  auto ids = [](const Result<std::vector<ActionExecutionRow>>& rows) {
    std::vector<std::string> out;
    if (rows.ok()) {
      for (const auto& r : *rows) out.push_back(r.execution_id + "/" + r.id);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(ids(s->ListActionExecutionsOf("p", {"e1", odd}, "", Docs::kParsed)),
            (std::vector<std::string>{odd + "/a4", "e1/a1", "e1/a2"}));  // Sorted: '"' < '1'.
  auto of_e1 = s->ListActionExecutionsOf("p", {"e1"}, "", Docs::kParsed);
  ASSERT_TRUE(of_e1.ok());
  ASSERT_EQ(of_e1->size(), 2u);
  EXPECT_EQ((*of_e1)[0].id, "a2") << "newest first";
  EXPECT_EQ(ids(s->ListActionExecutionsOf("q", {"e1", "e2"}, "", Docs::kParsed)),
            (std::vector<std::string>{"e1/b1"}))
      << "another pipeline's execution of the same id is not read";
  // One stage's runs only (a history page's source revisions).
  ASSERT_TRUE(s->SaveExecution({"e1", "p", "InProgress", 1.0, 1.0, {}},
                               {{"a5", "e1", "p", "Build", "C", "InProgress", 1.0, 1.0, {}}})
                  .ok());
  EXPECT_EQ(ids(s->ListActionExecutionsOf("p", {"e1", odd}, "S", Docs::kParsed)),
            (std::vector<std::string>{odd + "/a4", "e1/a1", "e1/a2"}));
  EXPECT_EQ(ids(s->ListActionExecutionsOf("p", {"e1", odd}, "Build", Docs::kParsed)),
            (std::vector<std::string>{"e1/a5"}));
  EXPECT_EQ(ids(s->ListActionExecutionsOf("p", {"e1", odd}, "", Docs::kParsed)).size(), 4u);
  EXPECT_TRUE(ids(s->ListActionExecutionsOf("p", {"e1"}, "Nope", Docs::kParsed)).empty());
  EXPECT_TRUE(ids(s->ListActionExecutionsOf("p", {}, "", Docs::kParsed)).empty());
  EXPECT_TRUE(ids(s->ListActionExecutionsOf("p", {"none"}, "", Docs::kParsed)).empty());
  // As stored (a reader that keeps parsed documents): the same rows, each
  // with its text and no parsed document.
  auto texts = s->ListActionExecutionsOf("p", {"e1", odd}, "S", Docs::kText);
  EXPECT_EQ(ids(texts), (std::vector<std::string>{odd + "/a4", "e1/a1", "e1/a2"}));
  for (const auto& r : *texts) {
    EXPECT_TRUE(r.doc.is_null()) << r.id;
    EXPECT_TRUE(nlohmann::json::accept(r.text)) << r.id << ": " << r.text;
  }
  auto parsed = s->ListActionExecutionsOf("p", {"e1"}, "S", Docs::kParsed);
  ASSERT_FALSE(parsed->empty());
  EXPECT_TRUE(parsed->front().text.empty());
}

TEST_P(StoreContractTest, PagedHistoryReadsByIndexNewestFirst) {
  auto s = Open();
  for (int i = 1; i <= 7; ++i) {
    const std::string id = "e" + std::to_string(i);
    const std::string status = i == 3 ? "Stopping" : i == 6 ? "InProgress" : "Succeeded";
    ASSERT_TRUE(
        s->SaveExecution({id, "p", status, 1.0 * i, 1.0 * i, {{"n", i}}},
                         {{"a" + std::to_string(i), id, "p", "S", "A", "Succeeded", 1.0, 1.0, {}}})
            .ok());
    ASSERT_TRUE(
        s->SaveExecution({"q" + std::to_string(i), "q", "InProgress", 1.0, 1.0, {}}, {}).ok());
  }
  auto first = s->ListExecutionsPage("p", 3, "", Docs::kParsed);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->size(), 3u);
  EXPECT_EQ((*first)[0].id, "e7");
  EXPECT_EQ((*first)[2].id, "e5");
  EXPECT_EQ((*first)[2].doc["n"], 5);
  EXPECT_TRUE((*first)[2].text.empty());
  auto texts = s->ListExecutionsPage("p", 3, "", Docs::kText);
  ASSERT_TRUE(texts.ok()) << texts.status().ToString();
  ASSERT_EQ(texts->size(), 3u);
  EXPECT_EQ((*texts)[2].id, "e5");
  EXPECT_EQ((*texts)[2].version, (*first)[2].version);
  EXPECT_TRUE((*texts)[2].doc.is_null());
  EXPECT_EQ(nlohmann::json::parse((*texts)[2].text), (*first)[2].doc);
  auto next = s->ListExecutionsPage("p", 3, "e5", Docs::kParsed);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->size(), 3u);
  EXPECT_EQ((*next)[0].id, "e4");
  auto last = s->ListExecutionsPage("p", 3, "e2", Docs::kParsed);
  ASSERT_EQ(last->size(), 1u);
  EXPECT_EQ((*last)[0].id, "e1");
  EXPECT_EQ(s->ListExecutionsPage("p", 3, "q1", Docs::kParsed).status().wire_name(),
            "InvalidNextTokenException")
      << "a cursor of another pipeline";
  EXPECT_EQ(s->ListExecutionsPage("p", 3, "nope", Docs::kParsed).status().code(),
            StatusCode::kNotFound);
  auto oldest = s->ListOldestExecutions("p", 2);
  ASSERT_EQ(oldest->size(), 2u);
  EXPECT_EQ((*oldest)[0].id, "e1");
  EXPECT_EQ((*oldest)[1].id, "e2");
  auto active = s->ListActiveExecutions("p");
  ASSERT_EQ(active->size(), 2u);
  EXPECT_EQ((*active)[0].id, "e6");
  EXPECT_EQ((*active)[1].id, "e3");
  auto one = s->GetExecution("p", "e4");
  ASSERT_TRUE(one.ok() && one->has_value());
  EXPECT_EQ((*one)->doc["n"], 4);
  EXPECT_FALSE(s->GetExecution("p", "q4")->has_value());
  EXPECT_EQ(*s->CountExecutions("p"), 7);
  ASSERT_TRUE(s->DeleteExecutions("p", {"e1", "e2", "q3", "absent"}).ok());
  EXPECT_EQ(*s->CountExecutions("p"), 5);
  EXPECT_EQ(*s->CountExecutions("q"), 7) << "ids of other pipelines are skipped";
  EXPECT_TRUE(s->ListActionExecutions("p", "e1")->empty());
  EXPECT_EQ(s->ListActionExecutions("p", "e3")->size(), 1u);
  EXPECT_EQ(s->ListOldestExecutions("p", 1)->at(0).id, "e3");
}

TEST_P(StoreContractTest, ExecutionsByUpdateMostRecentFirstWithACursor) {
  auto s = Open();
  // Started in id order, updated in another: e2 last (a retry), e1 and e4 tie.
  const std::vector<std::pair<std::string, double>> rows = {
      {"e1", 20.5}, {"e2", 40.25}, {"e3", 10.0}, {"e4", 20.5}, {"e5", 30.0}};
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSERT_TRUE(s->SaveExecution({rows[i].first,
                                  "p",
                                  "Succeeded",
                                  1.0 + static_cast<double>(i),
                                  rows[i].second,
                                  {{"i", i}}},
                                 {})
                    .ok());
  }
  ASSERT_TRUE(s->SaveExecution({"q1", "q", "Succeeded", 1.0, 99.0, {}}, {}).ok());
  auto ids = [](const Result<std::vector<ExecutionRow>>& page) {
    std::vector<std::string> out;
    if (page.ok()) {
      for (const auto& row : *page) out.push_back(row.id);
    }
    return out;
  };
  auto first = s->ListExecutionsByUpdate("p", 3, 0, "");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(ids(first), (std::vector<std::string>{"e2", "e5", "e4"}));
  EXPECT_EQ((*first)[0].updated, 40.25);
  EXPECT_EQ((*first)[0].doc["i"], 1);
  // From the last row of a page: the tie's other member, then older ones.
  EXPECT_EQ(ids(s->ListExecutionsByUpdate("p", 3, 20.5, "e4")),
            (std::vector<std::string>{"e1", "e3"}));
  EXPECT_EQ(ids(s->ListExecutionsByUpdate("p", 10, 10.0, "e3")), std::vector<std::string>{});
  // A cursor is a position, not a row: one removed meanwhile still works.
  EXPECT_EQ(ids(s->ListExecutionsByUpdate("p", 10, 35.0, "gone")),
            (std::vector<std::string>{"e5", "e4", "e1", "e3"}));
  EXPECT_EQ(ids(s->ListExecutionsByUpdate("absent", 10, 0, "")), std::vector<std::string>{});
}

TEST_P(StoreContractTest, ListExecutionsOfEveryPipeline) {
  auto s = Open();
  ASSERT_TRUE(s->SaveExecution({"e1", "p", "Succeeded", 1.0, 1.0, {}}, {}).ok());
  ASSERT_TRUE(s->SaveExecution({"e2", "q", "InProgress", 2.0, 2.0, {}}, {}).ok());
  auto all = s->ListExecutions("");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, "e2");
  EXPECT_EQ((*all)[0].pipeline, "q");
  EXPECT_EQ((*all)[1].id, "e1");
}

TEST_P(StoreContractTest, SaveBatchWritesExecutionsActionsAndKeyValues) {
  auto s = Open();
  ASSERT_TRUE(s->SaveBatch({{"e1", "p", "InProgress", 1.0, 1.0, {}},
                            {"e2", "p", "InProgress", 2.0, 2.0, {}}},
                           {{"a1", "e1", "p", "S", "A", "InProgress", 1.0, 1.0, {}}},
                           {{"pstate/p", "{\"t\":1}"}, {"token/p/x", "e1"}})
                  .ok());
  EXPECT_EQ(s->ListExecutions("p")->size(), 2u);
  EXPECT_EQ(s->ListActionExecutions("p", "")->size(), 1u);
  EXPECT_EQ(**s->GetKv("pstate/p"), "{\"t\":1}");
  ASSERT_TRUE(s->SaveBatch({}, {}, {{"pstate/p", "{\"t\":2}"}}).ok());
  EXPECT_EQ(**s->GetKv("pstate/p"), "{\"t\":2}");
}

// A Batch carrying version `version` of pipeline "p" (declaration stage named
// `stage`), one execution with one action run, and a key/value pair.
Batch DecisionBatch(int version, const std::string& stage, const std::string& execution_id) {
  Batch b;
  auto d = Decl("p");
  d["stages"] = {{{"name", stage}}};
  b.new_version = NewVersion{"p", version, d, 10.0 + version};
  b.executions.push_back({execution_id, "p", "Cancelled", 1.0, 10.0 + version, {{"s", stage}}});
  b.actions.push_back(
      {execution_id + "-a", execution_id, "p", "S", "A", "Abandoned", 1.0, 10.0 + version, {}});
  b.kv.emplace_back("pstate/p", stage);
  return b;
}

TEST_P(StoreContractTest, CommitWritesANewVersionWithRowsAndKeyValuesTogether) {
  {
    auto s = Open();
    ASSERT_TRUE(s->CreatePipeline("p", "arn:p", Decl("p"), {}, 1.0, 1000).ok());
    ASSERT_TRUE(s->PutKv("token/p/old", "e0").ok());
    Batch b = DecisionBatch(2, "v2", "e1");
    b.executions.push_back({"e2", "p", "InProgress", 2.0, 12.0, {}});
    b.kv_deletes = {"token/p/old", "token/p/never-there"};
    b.new_version->declaration["version"] = 99;  // Overwritten with the new version.
    Status st = s->Commit(b);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  auto s = Open();  // Durable, and visible from a fresh connection.
  auto cur = s->GetPipeline("p", std::nullopt);
  ASSERT_TRUE(cur.ok());
  EXPECT_EQ(cur->version, 2);
  EXPECT_EQ(cur->created, 1.0);
  EXPECT_EQ(cur->updated, 12.0);
  EXPECT_EQ(cur->declaration["version"], 2);
  EXPECT_EQ(cur->declaration["stages"][0]["name"], "v2");
  EXPECT_EQ(s->GetPipeline("p", 1)->declaration["version"], 1) << "version 1 is kept";
  EXPECT_EQ(s->ListPipelines()->at(0).version, 2);
  auto execs = s->ListExecutions("p");
  ASSERT_TRUE(execs.ok());
  ASSERT_EQ(execs->size(), 2u);
  EXPECT_EQ((*execs)[1].id, "e1");
  EXPECT_EQ((*execs)[1].status, "Cancelled");
  EXPECT_EQ((*execs)[1].doc["s"], "v2");
  auto runs = s->ListActionExecutions("p", "e1");
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].status, "Abandoned");
  EXPECT_EQ(**s->GetKv("pstate/p"), "v2");
  EXPECT_FALSE(s->GetKv("token/p/old")->has_value());
}

TEST_P(StoreContractTest, CommitOfAVersionOtherThanCurrentPlusOneWritesNothing) {
  auto s = Open();
  ASSERT_TRUE(s->CreatePipeline("p", "arn:p", Decl("p"), {}, 1.0, 1000).ok());
  auto d = Decl("p");
  d["stages"] = {{{"name", "by-update"}}};
  ASSERT_TRUE(s->UpdatePipeline("p", d, 2.0).ok());  // Another writer made version 2.
  ASSERT_TRUE(s->PutKv("keep", "1").ok());
  for (int version : {2, 4, 1}) {
    Batch b = DecisionBatch(version, "stale", "e1");
    b.kv_deletes = {"keep"};
    Status st = s->Commit(b);
    EXPECT_EQ(st.code(), StatusCode::kAborted) << version << ": " << st.ToString();
    EXPECT_EQ(st.wire_name(), "ConcurrentModificationException") << version;
    EXPECT_NE(st.message().find("current version 2"), std::string::npos) << st.message();
  }
  auto cur = s->GetPipeline("p", std::nullopt);
  ASSERT_TRUE(cur.ok());
  EXPECT_EQ(cur->version, 2);
  EXPECT_EQ(cur->updated, 2.0);
  EXPECT_EQ(cur->declaration["stages"][0]["name"], "by-update");
  EXPECT_EQ(s->GetPipeline("p", 3).status().wire_name(), "PipelineVersionNotFoundException");
  EXPECT_TRUE(s->ListExecutions("p")->empty());
  EXPECT_TRUE(s->ListActionExecutions("p", "")->empty());
  EXPECT_FALSE(s->GetKv("pstate/p")->has_value());
  EXPECT_TRUE(s->GetKv("keep")->has_value());
  // Decided again on top of version 2, it goes through.
  ASSERT_TRUE(s->Commit(DecisionBatch(3, "v3", "e1")).ok());
  EXPECT_EQ(s->GetPipeline("p", std::nullopt)->version, 3);
}

TEST_P(StoreContractTest, CommitForAMissingPipelineWritesNothing) {
  auto s = Open();
  Status st = s->Commit(DecisionBatch(2, "v2", "e1"));
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(st.wire_name(), "PipelineNotFoundException");
  EXPECT_TRUE(s->ListPipelines()->empty());
  EXPECT_TRUE(s->ListExecutions("")->empty());
  EXPECT_TRUE(s->ListActionExecutions("p", "")->empty());
  EXPECT_FALSE(s->GetKv("pstate/p")->has_value());
}

TEST_P(StoreContractTest, CommitFailingMidwayLeavesNothingBehind) {
  auto s = Open();
  ASSERT_TRUE(s->CreatePipeline("p", "arn:p", Decl("p"), {}, 1.0, 1000).ok());
  ASSERT_TRUE(s->PutKv("keep", "1").ok());
  ASSERT_EQ(backend_->RefuseKvKeyBoom(), "");
  // The new version, the execution and the action run are written before the
  // kv insert of "boom" fails.
  Batch b = DecisionBatch(2, "v2", "e1");
  b.kv.emplace_back("fine", "1");
  b.kv.emplace_back("boom", "2");
  b.kv_deletes = {"keep"};
  Status st = s->Commit(b);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("boom refused by the test"), std::string::npos) << st.message();
  auto cur = s->GetPipeline("p", std::nullopt);
  ASSERT_TRUE(cur.ok());
  EXPECT_EQ(cur->version, 1);
  EXPECT_EQ(cur->updated, 1.0);
  EXPECT_EQ(s->GetPipeline("p", 2).status().wire_name(), "PipelineVersionNotFoundException");
  EXPECT_TRUE(s->ListExecutions("p")->empty());
  EXPECT_TRUE(s->ListActionExecutions("p", "")->empty());
  EXPECT_FALSE(s->GetKv("pstate/p")->has_value());
  EXPECT_FALSE(s->GetKv("fine")->has_value());
  EXPECT_TRUE(s->GetKv("keep")->has_value());
  // Without the refused key the same decision commits: nothing half-written is in the way.
  b.kv.pop_back();
  ASSERT_TRUE(s->Commit(b).ok());
  EXPECT_EQ(s->GetPipeline("p", std::nullopt)->version, 2);
  EXPECT_EQ(s->ListExecutions("p")->size(), 1u);
  EXPECT_FALSE(s->GetKv("keep")->has_value());
}

TEST_P(StoreContractTest, KvDeletesOfAbsentKeysAreFineAndRunAfterPuts) {
  auto s = Open();
  EXPECT_TRUE(s->Commit(Batch{}).ok()) << "an empty batch";
  EXPECT_TRUE(Batch{}.empty());
  Batch deletes;
  deletes.kv_deletes = {"never", "there"};
  EXPECT_FALSE(deletes.empty());
  EXPECT_TRUE(s->Commit(deletes).ok());
  EXPECT_TRUE(s->DeleteKv("never").ok());
  ASSERT_TRUE(s->PutKv("k", "v").ok());
  ASSERT_TRUE(s->PutKv("k2", "v").ok());
  EXPECT_TRUE(s->DeleteKv("k").ok());
  EXPECT_FALSE(s->GetKv("k")->has_value());
  EXPECT_TRUE(s->GetKv("k2")->has_value()) << "only the named key goes";
  Batch put_then_delete;
  put_then_delete.kv = {{"k3", "v"}, {"k4", "v"}};
  put_then_delete.kv_deletes = {"k3"};
  ASSERT_TRUE(s->Commit(put_then_delete).ok());
  EXPECT_FALSE(s->GetKv("k3")->has_value());
  EXPECT_TRUE(s->GetKv("k4")->has_value());
}

// Two servers (two stores, two connections) deciding on the same version of
// a pipeline at once: exactly one decision lands, the other writes nothing.
TEST_P(StoreContractTest, ConcurrentCommitsOfOneVersionExactlyOneWins) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a->CreatePipeline("p", "arn:p", Decl("p"), {}, 1.0, 1000).ok());
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    const int version = round + 2;
    Status results[2];
    std::latch go(2);
    auto decide = [&](Store* store, int who) {
      const std::string name = who == 0 ? "a" : "b";
      Batch batch = DecisionBatch(version, name, name + std::to_string(round));
      go.arrive_and_wait();
      results[who] = store->Commit(batch);
    };
    std::thread ta(decide, a.get(), 0);
    std::thread tb(decide, b.get(), 1);
    ta.join();
    tb.join();
    ASSERT_NE(results[0].ok(), results[1].ok())
        << "round " << round << ": " << results[0].ToString() << " / " << results[1].ToString();
    const int winner = results[0].ok() ? 0 : 1;
    const std::string won = winner == 0 ? "a" : "b";
    const std::string lost = winner == 0 ? "b" : "a";
    const Status& refused = results[1 - winner];
    EXPECT_EQ(refused.code(), StatusCode::kAborted) << refused.ToString();
    EXPECT_EQ(refused.wire_name(), "ConcurrentModificationException");
    auto cur = a->GetPipeline("p", std::nullopt);
    ASSERT_TRUE(cur.ok());
    EXPECT_EQ(cur->version, version);
    EXPECT_EQ(cur->declaration["stages"][0]["name"], won);
    EXPECT_EQ(**b->GetKv("pstate/p"), won);
    EXPECT_EQ(b->ListActionExecutions("p", won + std::to_string(round))->size(), 1u);
    EXPECT_TRUE(b->ListActionExecutions("p", lost + std::to_string(round))->empty());
  }
  EXPECT_EQ(a->ListExecutions("p")->size(), static_cast<size_t>(kRounds));
}

// Optimistic concurrency: a row written with the version it was read at
// succeeds once; a writer holding the old version loses and writes nothing.
TEST_P(StoreContractTest, VersionedRowsRefuseAStaleWriter) {
  auto s = Open();
  ExecutionRow e{"e1", "p", "InProgress", 1.0, 1.0, {{"n", 1}}, 0};  // Must be new.
  ActionExecutionRow a{"a1", "e1", "p", "S", "A", "InProgress", 1.0, 1.0, {{"n", 1}}, 0};
  ASSERT_TRUE(s->SaveExecution(e, {a}).ok());
  auto rows = s->ListExecutions("p");
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].version, 1);
  EXPECT_EQ((*s->ListActionExecutions("p", ""))[0].version, 1);
  // Creating it again (version 0) is a conflict.
  EXPECT_EQ(s->SaveExecution(e, {}).code(), StatusCode::kAborted);
  // Writer 1 read version 1 and wins; writer 2 read version 1 too and loses.
  ExecutionRow w1 = e, w2 = e;
  w1.version = 1;
  w1.doc = {{"n", 2}};
  w2.version = 1;
  w2.doc = {{"n", 3}};
  ASSERT_TRUE(s->SaveExecution(w1, {}).ok());
  Batch lost;
  lost.executions = {w2};
  lost.kv = {{"side", "effect"}};
  Status c = s->Commit(lost);
  EXPECT_EQ(c.code(), StatusCode::kAborted);
  EXPECT_EQ(c.wire_name(), "ConcurrentModificationException");
  EXPECT_FALSE(s->GetKv("side")->has_value());  // Nothing of the batch.
  rows = s->ListExecutions("p");
  EXPECT_EQ((*rows)[0].doc["n"], 2);
  EXPECT_EQ((*rows)[0].version, 2);
  // Unchecked writes (version -1) still bump the version.
  ASSERT_TRUE(s->SaveExecution({"e1", "p", "Succeeded", 1.0, 2.0, {{"n", 4}}}, {}).ok());
  EXPECT_EQ((*s->ListExecutions("p"))[0].version, 3);
  ActionExecutionRow stale = a;
  stale.version = 7;
  EXPECT_EQ(s->SaveExecution({"e1", "p", "Succeeded", 1.0, 2.0, {}, 3}, {stale}).code(),
            StatusCode::kAborted);
  EXPECT_EQ((*s->ListExecutions("p"))[0].version, 3);
}

// The paged reads the engine loads its working set with report row versions
// as ListExecutions does (several servers commit with them).
TEST_P(StoreContractTest, PagedReadsReportRowVersions) {
  auto s = Open();
  ASSERT_TRUE(s->SaveExecution({"e1", "p", "Succeeded", 1.0, 1.0, {{"n", 1}}}, {}).ok());
  ASSERT_TRUE(s->SaveExecution({"e2", "p", "InProgress", 2.0, 2.0, {{"n", 1}}}, {}).ok());
  ASSERT_TRUE(s->SaveExecution({"e2", "p", "InProgress", 2.0, 3.0, {{"n", 2}}}, {}).ok());
  auto page = s->ListExecutionsPage("p", 10, "", Docs::kParsed);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].id, "e2");
  EXPECT_EQ((*page)[0].version, 2);
  EXPECT_EQ((*page)[1].version, 1);
  auto after = s->ListExecutionsPage("p", 10, "e2", Docs::kParsed);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].version, 1);
  auto active = s->ListActiveExecutions("p");
  ASSERT_TRUE(active.ok());
  ASSERT_EQ(active->size(), 1u);
  EXPECT_EQ((*active)[0].version, 2);
  auto oldest = s->ListOldestExecutions("p", 1);
  ASSERT_TRUE(oldest.ok());
  ASSERT_EQ(oldest->size(), 1u);
  EXPECT_EQ((*oldest)[0].version, 1);
  auto one = s->GetExecution("p", "e2");
  ASSERT_TRUE(one.ok() && one->has_value());
  EXPECT_EQ((*one)->version, 2);
}

TEST_P(StoreContractTest, KvInsertsAreUniqueAndKvExpectComparesValues) {
  auto s = Open();
  Batch first;
  first.kv_inserts = {{"token/p/t", "e1"}};
  ASSERT_TRUE(s->Commit(first).ok());
  Batch second;
  second.kv_inserts = {{"token/p/t", "e2"}};
  second.kv = {{"other", "x"}};
  Status dup = s->Commit(second);
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.wire_name(), "DuplicateKeyException");
  EXPECT_EQ(**s->GetKv("token/p/t"), "e1");
  EXPECT_FALSE(s->GetKv("other")->has_value());
  // Compare-and-set: claim once.
  ASSERT_TRUE(s->PutKv("job/1", "queued").ok());
  Batch claim;
  claim.kv_expect = {{"job/1", std::string("queued")}};
  claim.kv = {{"job/1", "dispatched-a"}};
  ASSERT_TRUE(s->Commit(claim).ok());
  claim.kv = {{"job/1", "dispatched-b"}};
  EXPECT_EQ(s->Commit(claim).code(), StatusCode::kAborted);
  EXPECT_EQ(**s->GetKv("job/1"), "dispatched-a");
  Batch absent;
  absent.kv_expect = {{"job/2", std::nullopt}};
  absent.kv = {{"job/2", "new"}};
  ASSERT_TRUE(s->Commit(absent).ok());
  EXPECT_EQ(s->Commit(absent).code(), StatusCode::kAborted);
}

TEST_P(StoreContractTest, LeasesOnlyWithPostgres) {
  auto s = Open();
  ASSERT_TRUE(s->CreatePipeline("p", "arn:p", Decl("p"), {}, 1.0, 1000).ok());
  Batch fenced;
  fenced.fence = Fence{"p", "a", 1};
  fenced.kv = {{"k", "v"}};
  if (GetParam() == Kind::kSqlite) {
    EXPECT_EQ(s->Commit(fenced).code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(s->AcquireLease("p", "a", 10).status().code(), StatusCode::kFailedPrecondition);
    return;
  }
  EXPECT_EQ(s->Commit(fenced).code(), StatusCode::kAborted);  // Nobody holds it yet.
  auto lease = s->AcquireLease("p", "a", 60);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_EQ(lease->epoch, 1);
  ASSERT_TRUE(s->Commit(fenced).ok());
}

TEST_P(StoreContractTest, MigrationsAreRecordedOnce) {
  const int want = 7;  // SQLite's 7: kv in key order; PostgreSQL's 7: change stamps.
  Open();
  EXPECT_EQ(backend_->CountMigrations(), want);
  Open();  // Reopening applies nothing twice.
  EXPECT_EQ(backend_->CountMigrations(), want);
}

// Store::ChangeStamp: every committed write of a pipeline's own rows gives it
// a stamp never seen before; writes of anything else keep it. SQLite (one
// server) has none.
TEST_P(StoreContractTest, ChangeStampMovesWithEveryWriteOfThePipelineAndNothingElse) {
  auto s = Open();
  auto stamp = [&](const std::string& p) {
    auto st = s->ChangeStamp(p);
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    return st.ok() ? *st : std::nullopt;
  };
  ASSERT_TRUE(s->CreatePipeline("p", "arn:p", Decl("p"), {}, 1.0, 1000).ok());
  ASSERT_TRUE(s->CreatePipeline("q", "arn:q", Decl("q"), {}, 1.0, 1000).ok());
  if (GetParam() == Kind::kSqlite) {
    EXPECT_FALSE(stamp("p").has_value());
    return;
  }
  std::set<int64_t> seen;
  std::optional<int64_t> last = stamp("p");
  ASSERT_TRUE(last.has_value()) << "created";
  seen.insert(*last);
  auto expect_moved = [&](const char* what) {
    std::optional<int64_t> now = stamp("p");
    ASSERT_TRUE(now.has_value()) << what;
    EXPECT_TRUE(seen.insert(*now).second) << what << ": stamp " << *now << " seen before";
    last = now;
  };
  auto expect_kept = [&](const char* what) { EXPECT_EQ(stamp("p"), last) << what; };

  Batch run;  // What one engine decision writes.
  run.executions.push_back({"e1", "p", "InProgress", 1.0, 1.0, {}});
  run.actions.push_back({"a1", "e1", "p", "S", "A", "InProgress", 1.0, 1.0, {}});
  run.kv.emplace_back("pstate/p", "{}");
  ASSERT_TRUE(s->Commit(run).ok());
  expect_moved("a decision");
  Batch action_only;
  action_only.actions.push_back({"a1", "e1", "p", "S", "A", "Succeeded", 1.0, 2.0, {}});
  ASSERT_TRUE(s->Commit(action_only).ok());
  expect_moved("an action execution alone");
  ASSERT_TRUE(s->SaveBatch({{"e1", "p", "Succeeded", 1.0, 3.0, {}}}, {}, {}).ok());
  expect_moved("an execution alone");
  ASSERT_TRUE(s->PutKv("pstate/p", "{\"t\":1}").ok());
  expect_moved("the runtime state alone");
  ASSERT_TRUE(s->UpdatePipeline("p", Decl("p"), 4.0).ok());
  expect_moved("a new version");
  ASSERT_TRUE(s->DeleteExecutions("p", {"e1"}).ok());
  expect_moved("retention");

  ASSERT_TRUE(s->PutKv("job/j1", "{\"pipeline\":\"p\"}").ok());
  ASSERT_TRUE(s->PutKv("poll/p/Source/refs", "{}").ok());
  ASSERT_TRUE(s->PutKv("pstate/q", "{}").ok());
  ASSERT_TRUE(s->TagResource("arn:p", {{"k", "v"}}).ok());
  Batch other;
  other.executions.push_back({"f1", "q", "InProgress", 1.0, 1.0, {}});
  ASSERT_TRUE(s->Commit(other).ok());
  expect_kept("jobs, polls, tags and another pipeline's writes");
  Batch failed = run;  // Rolled back: the stamp stays.
  failed.new_version = NewVersion{"p", 99, Decl("p"), 5.0};
  EXPECT_FALSE(s->Commit(failed).ok());
  expect_kept("a commit that failed");

  ASSERT_TRUE(s->DeletePipeline("p").ok());
  expect_moved("deleted");
  ASSERT_TRUE(s->CreatePipeline("p", "arn:p", Decl("p"), {}, 6.0, 1000).ok());
  expect_moved("created again under the same name");
  EXPECT_FALSE(stamp("never").has_value());
}

TEST_P(StoreContractTest, KeyValue) {
  auto s = Open();
  EXPECT_FALSE(s->GetKv("a")->has_value());
  ASSERT_TRUE(s->PutKv("tok/p/1", "e1").ok());
  ASSERT_TRUE(s->PutKv("tok/p/2", "e2").ok());
  ASSERT_TRUE(s->PutKv("tok/q/1", "e3").ok());
  EXPECT_EQ(**s->GetKv("tok/p/1"), "e1");
  ASSERT_TRUE(s->PutKv("tok/p/1", "e1b").ok());
  EXPECT_EQ(**s->GetKv("tok/p/1"), "e1b");
  auto listed = s->ListKv("tok/p/");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[1].second, "e2");
  ASSERT_TRUE(s->DeleteKvPrefix("tok/p/").ok());
  EXPECT_FALSE(s->GetKv("tok/p/2")->has_value());
  EXPECT_TRUE(s->GetKv("tok/q/1")->has_value());
  EXPECT_EQ(s->ListKv("")->size(), 1u);
}

TEST_P(StoreContractTest, KvPrefixIsLiteralNotAPattern) {
  auto s = Open();
  for (const char* k : {"a_b/1", "axb/1", "a%c/1", "abc/1"}) ASSERT_TRUE(s->PutKv(k, "v").ok());
  auto underscore = s->ListKv("a_");
  ASSERT_TRUE(underscore.ok());
  ASSERT_EQ(underscore->size(), 1u);
  EXPECT_EQ((*underscore)[0].first, "a_b/1");
  ASSERT_TRUE(s->DeleteKvPrefix("a%").ok());
  EXPECT_EQ(s->ListKv("")->size(), 3u);
  EXPECT_FALSE(s->GetKv("a%c/1")->has_value());
}

// ScanKv pages through a prefix in byte order from a start, by the key's
// index (the server's S3 listings page this way).
TEST_P(StoreContractTest, ScanKvPagesThroughAPrefixInByteOrder) {
  auto s = Open();
  // Keys just outside the prefix "k/" on both sides, and keys inside whose
  // bytes sort differently from a locale's order (case, '_', non-ASCII).
  const std::vector<std::string> inside = {"k/",
                                           "k/B",
                                           "k/_",
                                           "k/a",
                                           "k/a/1",
                                           "k/a/2",
                                           "k/a0",
                                           "k/b",
                                           "k/\xc3\xa9",
                                           "k/\xef\xbf\xbd",
                                           "k/\xf4\x8f\xbf\xbf"};
  for (const auto& k : inside) ASSERT_TRUE(s->PutKv(k, "v:" + k).ok());
  for (const char* k : {"k", "k.", "k0", "j/z"}) ASSERT_TRUE(s->PutKv(k, "out").ok());
  auto keys = [&](KvScan scan) {
    std::vector<std::string> out;
    auto rows = s->ScanKv(scan);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    if (!rows.ok()) return out;
    for (const auto& [k, v] : *rows) {
      EXPECT_EQ(v, k.starts_with("k/") ? "v:" + k : "out");
      out.push_back(k);
    }
    return out;
  };
  EXPECT_EQ(keys(KvScan("k/")), inside);
  EXPECT_EQ(*s->ListKv("k/"), *s->ScanKv(KvScan("k/")));
  // Page by page, each page starting after the last key of the one before.
  std::vector<std::string> paged;
  KvScan page("k/", "", KvFrom::kAt, 3);
  for (int i = 0; i < 10; ++i) {
    auto got = keys(page);
    paged.insert(paged.end(), got.begin(), got.end());
    if (got.size() < 3) break;
    page.start = got.back();
    page.from = KvFrom::kAfter;
  }
  EXPECT_EQ(paged, inside);
  EXPECT_EQ(keys(KvScan("k/", "k/a/1", KvFrom::kAt, 2)),
            (std::vector<std::string>{"k/a/1", "k/a/2"}));
  EXPECT_EQ(keys(KvScan("k/", "k/a/1", KvFrom::kAfter, 2)),
            (std::vector<std::string>{"k/a/2", "k/a0"}));
  // Past every key that starts with "k/a/": a delimiter's group skipped.
  EXPECT_EQ(keys(KvScan("k/", "k/a/", KvFrom::kPast, 2)),
            (std::vector<std::string>{"k/a0", "k/b"}));
  // Past the last code point there is nothing left.
  EXPECT_TRUE(keys(KvScan("k/", "k/\xf4\x8f\xbf\xbf", KvFrom::kPast)).empty());
  // A start before the prefix starts at the prefix; one after it finds nothing.
  EXPECT_EQ(keys(KvScan("k/", "a", KvFrom::kAfter)), inside);
  EXPECT_TRUE(keys(KvScan("k/", "l", KvFrom::kAt)).empty());
  // A start that is not UTF-8 (a client's marker) still compares as bytes.
  EXPECT_EQ(keys(KvScan("k/", "k/b\xff", KvFrom::kAfter)),
            (std::vector<std::string>{"k/\xc3\xa9", "k/\xef\xbf\xbd", "k/\xf4\x8f\xbf\xbf"}));
  EXPECT_EQ(keys(KvScan("k/", "k/a\xff", KvFrom::kPast, 1)), (std::vector<std::string>{"k/b"}));
  // No key can start with a prefix that is not UTF-8 in PostgreSQL; SQLite
  // has none here either.
  EXPECT_TRUE(keys(KvScan("k/\xff")).empty());
  EXPECT_EQ(keys(KvScan("")).size(), inside.size() + 4);
  // DeleteKvPrefix takes the same range.
  ASSERT_TRUE(s->DeleteKvPrefix("k/a").ok());
  EXPECT_EQ(keys(KvScan("k/")), (std::vector<std::string>{"k/", "k/B", "k/_", "k/b", "k/\xc3\xa9",
                                                          "k/\xef\xbf\xbd", "k/\xf4\x8f\xbf\xbf"}));
  EXPECT_TRUE(s->GetKv("k0")->has_value());
  EXPECT_TRUE(s->GetKv("k.")->has_value());
}

// A client's marker may hold any bytes (NUL, a broken sequence), which
// PostgreSQL takes in no parameter: the scan still answers what a byte
// comparison would, and a limit still counts admitted rows only.
TEST_P(StoreContractTest, ScanKvTakesAnyStartAClientSends) {
  auto s = Open();
  const std::vector<std::string> inside = {
      "k/a", "k/a/b", "k/\xe3\x80\x80", "k/\xe3\x81\x82", "k/\xe3\x81\x82z", "k/\xef\xbc\xa1"};
  for (const auto& k : inside) ASSERT_TRUE(s->PutKv(k, "v").ok());
  auto keys = [&](KvScan scan) {
    std::vector<std::string> out;
    auto rows = s->ScanKv(scan);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    if (rows.ok()) {
      for (const auto& [k, v] : *rows) out.push_back(k);
    }
    return out;
  };
  // The byte comparison, as the reference.
  auto want = [&](const KvScan& scan) {
    std::vector<std::string> out;
    for (const auto& k : inside) {
      if (KvStartAdmits(scan, k) && (scan.limit == 0 || out.size() < scan.limit)) {
        out.push_back(k);
      }
    }
    return out;
  };
  const std::string starts[] = {std::string("k/a\0b", 5),
                                "k/a\x80",
                                "k/a\xc1",
                                "k/a\xff",
                                "k/\xe3",
                                "k/\xe3\x81",
                                "k/\xe3\x81\x82\xff",
                                "k/\xe0\x80",
                                "k/\xed\xa0\x80",
                                "k/\xf5",
                                "k/\xe3\x80\x80\x80"};
  for (const auto& start : starts) {
    for (KvFrom from : {KvFrom::kAt, KvFrom::kAfter, KvFrom::kPast}) {
      for (size_t limit : {0, 1, 2}) {
        KvScan scan("k/", start, from, limit);
        EXPECT_EQ(keys(scan), want(scan)) << "start " << ::testing::PrintToString(start) << " from "
                                          << static_cast<int>(from) << " limit " << limit;
      }
    }
  }
  // "k/\xe3\x81" sorts after U+3000 (e3 80 80), which the bound in
  // PostgreSQL reads first and drops: the one row asked for is the next.
  EXPECT_EQ(keys(KvScan("k/", "k/\xe3\x81", KvFrom::kAt, 1)),
            (std::vector<std::string>{"k/\xe3\x81\x82"}));
  // Skipping the group of a delimiter that is a broken sequence.
  EXPECT_EQ(keys(KvScan("k/", "k/\xe3", KvFrom::kPast, 1)),
            (std::vector<std::string>{"k/\xef\xbc\xa1"}));
}

TEST_P(StoreContractTest, NamesAndKeysSortBytewise) {
  auto s = Open();
  for (const char* n : {"b", "B", "a", "_z"}) {
    ASSERT_TRUE(s->CreatePipeline(n, std::string("arn:") + n, Decl(n), {}, 1.0, 1000).ok());
  }
  auto list = s->ListPipelines();
  ASSERT_TRUE(list.ok());
  std::vector<std::string> names;
  for (const auto& p : *list) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"B", "_z", "a", "b"}));
  ASSERT_TRUE(s->TagResource("arn:a", {{"b", "1"}, {"B", "2"}, {"a", "3"}}).ok());
  auto tags = s->ListTags("arn:a");
  ASSERT_EQ(tags->size(), 3u);
  EXPECT_EQ((*tags)[0].key, "B");
  EXPECT_EQ((*tags)[1].key, "a");
  for (const char* k : {"k/b", "k/B", "k/a"}) ASSERT_TRUE(s->PutKv(k, "v").ok());
  auto kv = s->ListKv("k/");
  ASSERT_EQ(kv->size(), 3u);
  EXPECT_EQ((*kv)[0].first, "k/B");
  EXPECT_EQ((*kv)[2].first, "k/b");
}

TEST_P(StoreContractTest, ValuesRoundTripExactly) {
  auto s = Open();
  // Quotes and SQL in values must be data, never SQL.
  const std::string name = "it's; DROP TABLE pipelines; --";
  const std::string arn = "arn:aws:codepipeline:us-east-1:123456789012:" + name;
  const double when = 1732570000.123456789;
  nlohmann::json decl = Decl(name);
  decl["stages"] = {{{"name", "Bühne ✓"}, {"n", 1e-300}, {"q", "\"'\\"}}};
  ASSERT_TRUE(s->CreatePipeline(name, arn, decl, {{"k'", "v\"; --"}}, when, 1000).ok());
  auto got = s->GetPipeline(name, std::nullopt);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->arn, arn);
  EXPECT_EQ(got->created, when);
  decl["version"] = 1;
  EXPECT_EQ(got->declaration, decl);
  EXPECT_EQ((*s->ListTags(arn))[0].value, "v\"; --");
  ASSERT_TRUE(s->PutKv("ключ/'", "значение ✓").ok());
  EXPECT_EQ(**s->GetKv("ключ/'"), "значение ✓");
  EXPECT_EQ(s->ListPipelines()->size(), 1u);
}

// Action logs (several servers): chunks keyed by offset, read from any
// offset over contiguous chunks, retried appends harmless, any bytes.
TEST_P(StoreContractTest, ActionLogChunksReadFromAnyOffset) {
  auto s = Open();
  EXPECT_FALSE(s->ReadActionLog("a1", 0, 1 << 20)->has_value());  // Nothing stored: nullopt.
  const std::string binary("line 1\n\0\xff\xfe bytes\n", 17);
  ASSERT_TRUE(s->AppendActionLog({"a1", "p", "e1", 0, binary}).ok());
  ASSERT_TRUE(s->AppendActionLog({"a1", "p", "e1", binary.size(), "line 2\n"}).ok());
  auto all = s->ReadActionLog("a1", 0, 1 << 20);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_TRUE(all->has_value());
  EXPECT_EQ(**all, binary + "line 2\n");
  EXPECT_EQ(**s->ReadActionLog("a1", 3, 1 << 20), binary.substr(3) + "line 2\n");
  EXPECT_EQ(**s->ReadActionLog("a1", binary.size() + 5, 1 << 20), "2\n");
  EXPECT_EQ(**s->ReadActionLog("a1", 2, 6), binary.substr(2, 6));  // max_bytes.
  auto past = s->ReadActionLog("a1", 1000, 1 << 20);
  ASSERT_TRUE(past->has_value());  // Stored, nothing past the end: "".
  EXPECT_EQ(**past, "");
  // A retried append of the same offset: a longer chunk replaces, a shorter
  // one is ignored, so the log never loses bytes nor repeats them.
  ASSERT_TRUE(s->AppendActionLog({"a1", "p", "e1", binary.size(), "line"}).ok());
  EXPECT_EQ(**s->ReadActionLog("a1", 0, 1 << 20), binary + "line 2\n");
  ASSERT_TRUE(s->AppendActionLog({"a1", "p", "e1", binary.size(), "line 2\nline 3\n"}).ok());
  EXPECT_EQ(**s->ReadActionLog("a1", 0, 1 << 20), binary + "line 2\nline 3\n");
  // A gap (never written by the shipper): only the contiguous part is served.
  ASSERT_TRUE(s->AppendActionLog({"a1", "p", "e1", 1000, "late"}).ok());
  EXPECT_EQ(**s->ReadActionLog("a1", 0, 1 << 20), binary + "line 2\nline 3\n");
  EXPECT_EQ(**s->ReadActionLog("a1", 1000, 1 << 20), "late");
}

TEST_P(StoreContractTest, ActionLogsGoWithTheirPipelineOrExecution) {
  auto s = Open();
  ASSERT_TRUE(s->CreatePipeline("p", "arn:p", Decl("p"), {}, 1.0, 1000).ok());
  ASSERT_TRUE(s->CreatePipeline("q", "arn:q", Decl("q"), {}, 1.0, 1000).ok());
  ASSERT_TRUE(s->AppendActionLog({"a1", "p", "e1", 0, "p's log"}).ok());
  ASSERT_TRUE(s->AppendActionLog({"a2", "q", "e2", 0, "q's first"}).ok());
  ASSERT_TRUE(s->AppendActionLog({"a3", "q", "e3", 0, "q's second"}).ok());
  ASSERT_TRUE(s->DeletePipeline("p").ok());
  EXPECT_FALSE(s->ReadActionLog("a1", 0, 100)->has_value());
  EXPECT_TRUE(s->ReadActionLog("a2", 0, 100)->has_value());
  ASSERT_TRUE(s->DeleteActionLogs({"e2", "e-unknown"}).ok());  // Retention.
  EXPECT_FALSE(s->ReadActionLog("a2", 0, 100)->has_value());
  EXPECT_EQ(**s->ReadActionLog("a3", 0, 100), "q's second");
  EXPECT_TRUE(s->Ping().ok());
}

std::string KindName(const ::testing::TestParamInfo<Kind>& info) {
  return info.param == Kind::kSqlite ? "Sqlite" : "Postgres";
}
INSTANTIATE_TEST_SUITE_P(Stores, StoreContractTest,
                         ::testing::Values(Kind::kSqlite, Kind::kPostgres), KindName);

// ---------------------------------------------------------------------------
// PostgreSQL only.

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (SkipPostgres()) GTEST_SKIP() << "PW_SKIP_POSTGRES=1";
    auto b = MakePostgresBackend();
    ASSERT_TRUE(b.ok()) << b.status().message();
    pg_ = std::move(*b);
  }
  std::unique_ptr<Store> Open() {
    auto s = pg_->Open();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(*s);
  }
  std::unique_ptr<PostgresBackend> pg_;
};

TEST_F(PostgresStoreTest, ServersStartingTogetherMigrateOnce) {
  constexpr size_t kServers = 4;
  std::vector<Status> opened(kServers);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < kServers; ++i) {
    threads.emplace_back([&, i] { opened[i] = pg_->Open().status(); });
  }
  for (auto& t : threads) t.join();
  for (const Status& o : opened) EXPECT_TRUE(o.ok()) << o.ToString();
  EXPECT_EQ(pg_->CountMigrations(), 7);
}

TEST_F(PostgresStoreTest, RefusesASchemaNewerThanThisBuild) {
  Open();
  PgConn c(pg_->url());
  ASSERT_EQ(c.Exec("INSERT INTO schema_migrations (version) VALUES (1000)"), "");
  auto s = pg_->Open();
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("newer than this build"), std::string::npos);
}

TEST_F(PostgresStoreTest, UnreachableServerIsUnavailable) {
  auto s = OpenPostgresStore("host=/nonexistent-pipewright-dir port=1 connect_timeout=2");
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(s.status().message().find("cannot connect to PostgreSQL"), std::string::npos)
      << s.status().message();
}

TEST_F(PostgresStoreTest, ReconnectsAfterTheConnectionIsKilled) {
  auto s = Open();
  ASSERT_TRUE(s->CreatePipeline("p", "arn:p", Decl("p"), {}, 1.0, 1000).ok());
  // The statements of both calls below are prepared in the session that gets
  // killed: after the reconnect they must be prepared again in the new one.
  ASSERT_TRUE(s->GetPipeline("p", std::nullopt).ok());
  ASSERT_TRUE(s->PutKv("k", "before").ok());
  PgConn admin(*PostgresServer::Get().url());
  const std::string count_sql = "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1";
  for (int round = 0; round < 2; ++round) {
    ASSERT_EQ(admin.Exec("SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM "
                         "pg_stat_activity WHERE application_name = $1) t",
                         {pg_->schema()}),
              "1");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (admin.Exec(count_sql, {pg_->schema()}) != "0") {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "backend did not go away";
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (round == 0) {
      auto got = s->GetPipeline("p", std::nullopt);  // A read...
      ASSERT_TRUE(got.ok()) << got.status().ToString();
    } else {
      ASSERT_TRUE(s->PutKv("k", "v").ok());  // ...and a transaction both reconnect.
    }
    EXPECT_EQ(admin.Exec(count_sql, {pg_->schema()}), "1");
  }
  EXPECT_EQ(**s->GetKv("k"), "v");
}

// How many of this test's connections wait on a lock, and how many are open.
const char kWaitingSql[] =
    "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1 "
    "AND wait_event_type = 'Lock'";
const char kOpenSql[] = "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1";

// Polls `sql` (one count) until it reads `want`, for up to 10 s; returns what it read last.
std::string AwaitCount(PgConn& admin, const char* sql, const std::string& schema,
                       const std::string& want) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::string got = admin.Exec(sql, {schema});
  while (got != want && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    got = admin.Exec(sql, {schema});
  }
  return got;
}

// Calls run on a pool of connections: a read of one store is answered while
// another call of the same store waits on a row lock inside its transaction
// (with one connection, the read queued behind it).
TEST_F(PostgresStoreTest, ReadsAreAnsweredWhileAnotherCallWaitsOnALock) {
  auto s = Open();
  ASSERT_TRUE(s->PutKv("k", "v1").ok());
  PgConn locker(pg_->url());
  ASSERT_EQ(locker.Exec("BEGIN"), "");
  ASSERT_EQ(locker.Exec("SELECT value FROM kv WHERE key = 'k' FOR UPDATE"), "v1");
  Status written;
  std::thread writer([&] { written = s->PutKv("k", "v2"); });
  PgConn admin(*PostgresServer::Get().url());
  EXPECT_EQ(AwaitCount(admin, kWaitingSql, pg_->schema(), "1"), "1") << "the write waits";
  auto read = std::async(std::launch::async, [&] { return s->GetKv("k"); });
  const bool answered = read.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  EXPECT_TRUE(answered) << "the read waited for the blocked write";
  ASSERT_EQ(locker.Exec("COMMIT"), "");
  writer.join();
  EXPECT_TRUE(written.ok()) << written.ToString();
  auto got = read.get();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  if (answered) {
    EXPECT_EQ(**got, "v1");  // The committed value, before the write.
  }
  EXPECT_EQ(**s->GetKv("k"), "v2");
}

// The pool opens at most its maximum: with both connections of a pool of two
// held by calls waiting on a lock, a third call waits for one of them rather
// than open a third connection, and goes through once they are given back.
TEST_F(PostgresStoreTest, PoolOpensAtMostItsMaximumAndACallWaitsForAConnection) {
  auto opened = OpenPostgresStore(pg_->url(), 2);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Store> s = std::move(*opened);
  ASSERT_TRUE(s->PutKv("k", "v1").ok());
  PgConn locker(pg_->url());
  ASSERT_EQ(locker.Exec("BEGIN"), "");
  ASSERT_EQ(locker.Exec("SELECT value FROM kv WHERE key = 'k' FOR UPDATE"), "v1");
  Status written[2];
  std::thread w1([&] { written[0] = s->PutKv("k", "a"); });
  std::thread w2([&] { written[1] = s->PutKv("k", "b"); });
  PgConn admin(*PostgresServer::Get().url());
  EXPECT_EQ(AwaitCount(admin, kWaitingSql, pg_->schema(), "2"), "2") << "both writes wait";
  auto read = std::async(std::launch::async, [&] { return s->GetKv("k"); });
  // A bounded look for something that must not happen: a pool without a bound
  // would have opened a third connection (a few ms) and answered by now.
  EXPECT_EQ(read.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
      << "the read found a connection beyond the maximum";
  // The pool's two connections and the locker's (it uses the same application_name).
  EXPECT_EQ(admin.Exec(kOpenSql, {pg_->schema()}), "3") << "the pool's two and the locker";
  ASSERT_EQ(locker.Exec("COMMIT"), "");
  w1.join();
  w2.join();
  EXPECT_TRUE(written[0].ok()) << written[0].ToString();
  EXPECT_TRUE(written[1].ok()) << written[1].ToString();
  auto got = read.get();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(**got == "a" || **got == "b" || **got == "v1") << **got;
  EXPECT_EQ(admin.Exec(kOpenSql, {pg_->schema()}), "3");
}

TEST_F(PostgresStoreTest, FailedStatementRollsBackTheWholeBatchWithTheServerMessage) {
  auto s = Open();
  PgConn c(pg_->url());
  ASSERT_EQ(c.Exec(R"sql(
    CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.key = 'boom' THEN RAISE EXCEPTION 'boom refused by the test'; END IF;
      RETURN NEW;
    END $$)sql"),
            "");
  ASSERT_EQ(c.Exec("CREATE TRIGGER refuse_boom BEFORE INSERT ON kv FOR EACH ROW "
                   "EXECUTE FUNCTION refuse_boom()"),
            "");
  Status st = s->SaveBatch({{"e1", "p", "InProgress", 1.0, 1.0, {}}},
                           {{"a1", "e1", "p", "S", "A", "InProgress", 1.0, 1.0, {}}},
                           {{"fine", "1"}, {"boom", "2"}});
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("boom refused by the test"), std::string::npos) << st.message();
  EXPECT_TRUE(st.wire_name().empty());
  EXPECT_TRUE(s->ListExecutions("p")->empty());
  EXPECT_TRUE(s->ListActionExecutions("p", "")->empty());
  EXPECT_FALSE(s->GetKv("fine")->has_value());
  // The connection is usable afterwards (not stuck in an aborted transaction).
  EXPECT_TRUE(s->PutKv("fine", "1").ok());
  EXPECT_TRUE(s->GetKv("fine")->has_value());
}

TEST_F(PostgresStoreTest, MissingTableIsUnavailable) {
  auto s = Open();
  PgConn c(pg_->url());
  ASSERT_EQ(c.Exec("DROP TABLE kv"), "");
  auto got = s->GetKv("k");
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(got.status().message().find("relation \"kv\" does not exist"), std::string::npos)
      << got.status().message();
}

// Two servers (two stores, two connections) updating one pipeline at once:
// serialization failures are retried inside the calls, every update lands as
// its own version.
TEST_F(PostgresStoreTest, ConcurrentUpdatesFromTwoServersGetDistinctVersions) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a->CreatePipeline("p", "arn:p", Decl("p"), {}, 1.0, 1000).ok());
  constexpr int kEach = 20;
  std::atomic<int> failures{0};
  std::string first_error;
  auto work = [&](Store* store, const std::string& who) {
    for (int i = 0; i < kEach; ++i) {
      auto d = Decl("p");
      d["by"] = who;
      auto r = store->UpdatePipeline("p", d, 2.0);
      if (!r.ok() && failures++ == 0) first_error = r.status().ToString();
    }
  };
  std::thread ta(work, a.get(), "a");
  std::thread tb(work, b.get(), "b");
  ta.join();
  tb.join();
  EXPECT_EQ(failures.load(), 0) << first_error;
  auto cur = a->GetPipeline("p", std::nullopt);
  ASSERT_TRUE(cur.ok());
  EXPECT_EQ(cur->version, 1 + 2 * kEach);
  for (int v = 1; v <= 1 + 2 * kEach; ++v) EXPECT_TRUE(b->GetPipeline("p", v).ok()) << v;
}

// Two servers' Commits of the same version forced to overlap: both read the
// current version while a third connection's table lock holds back their
// updates, then both go on. The loser's serialization failure is retried
// inside its call, which then finds the version taken.
TEST_F(PostgresStoreTest, OverlappingCommitsOfOneVersionExactlyOneWins) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a->CreatePipeline("p", "arn:p", Decl("p"), {}, 1.0, 1000).ok());
  PgConn locker(pg_->url());
  ASSERT_EQ(locker.Exec("BEGIN"), "");
  // Blocks UPDATE (ROW EXCLUSIVE), lets SELECT (ACCESS SHARE) through.
  ASSERT_EQ(locker.Exec("LOCK TABLE pipelines IN EXCLUSIVE MODE"), "");
  Status results[2];
  std::thread ta([&] { results[0] = a->Commit(DecisionBatch(2, "a", "ea")); });
  std::thread tb([&] { results[1] = b->Commit(DecisionBatch(2, "b", "eb")); });
  PgConn admin(*PostgresServer::Get().url());
  const std::string waiting_sql =
      "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1 "
      "AND wait_event_type = 'Lock'";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (admin.Exec(waiting_sql, {pg_->schema()}) != "2" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(admin.Exec(waiting_sql, {pg_->schema()}), "2") << "both commits wait on the lock";
  ASSERT_EQ(locker.Exec("COMMIT"), "");
  ta.join();
  tb.join();
  ASSERT_NE(results[0].ok(), results[1].ok())
      << results[0].ToString() << " / " << results[1].ToString();
  const int winner = results[0].ok() ? 0 : 1;
  const std::string won = winner == 0 ? "a" : "b";
  const std::string lost = winner == 0 ? "b" : "a";
  EXPECT_EQ(results[1 - winner].wire_name(), "ConcurrentModificationException")
      << results[1 - winner].ToString();
  auto cur = b->GetPipeline("p", std::nullopt);
  ASSERT_TRUE(cur.ok());
  EXPECT_EQ(cur->version, 2);
  EXPECT_EQ(cur->declaration["stages"][0]["name"], won);
  EXPECT_EQ(**a->GetKv("pstate/p"), won);
  auto execs = a->ListExecutions("p");
  ASSERT_EQ(execs->size(), 1u);
  EXPECT_EQ((*execs)[0].id, "e" + won);
  EXPECT_TRUE(a->ListActionExecutions("p", "e" + lost)->empty());
}

// Leases: taken when free or expired (the epoch grows), refused while another
// server holds one unexpired, renewed only by the holder at its epoch.
TEST_F(PostgresStoreTest, LeasesFenceWritesOfAFormerHolder) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a->CreatePipeline("p", "arn:p", Decl("p"), {}, 1.0, 1000).ok());
  EXPECT_EQ(a->AcquireLease("q", "a", 10).status().code(), StatusCode::kNotFound);
  auto la = a->AcquireLease("p", "a", 60);
  ASSERT_TRUE(la.ok());
  EXPECT_EQ(b->AcquireLease("p", "b", 60).status().code(), StatusCode::kAborted);
  ASSERT_TRUE(a->RenewLease("p", "a", la->epoch, 0).ok());  // Expires at once.
  auto lb = b->AcquireLease("p", "b", 60);
  ASSERT_TRUE(lb.ok()) << lb.status().ToString();
  EXPECT_EQ(lb->epoch, la->epoch + 1);
  // a's writes and renewals are fenced off; b's go through.
  Batch from_a;
  from_a.fence = Fence{"p", "a", la->epoch};
  from_a.kv = {{"k", "a"}};
  Status lost = a->Commit(from_a);
  EXPECT_EQ(lost.code(), StatusCode::kAborted);
  EXPECT_EQ(lost.wire_name(), "LeaseLostException");
  EXPECT_EQ(a->RenewLease("p", "a", la->epoch, 60).code(), StatusCode::kAborted);
  Batch from_b;
  from_b.fence = Fence{"p", "b", lb->epoch};
  from_b.kv = {{"k", "b"}};
  ASSERT_TRUE(b->Commit(from_b).ok());
  EXPECT_EQ(**a->GetKv("k"), "b");
  auto leases = a->ListLeases();
  ASSERT_EQ(leases->size(), 1u);
  EXPECT_EQ((*leases)[0].owner, "b");
  EXPECT_FALSE((*leases)[0].expired);
  // Release: free for the next taker, one epoch further.
  ASSERT_TRUE(b->ReleaseLease("p", "b", lb->epoch).ok());
  auto again = a->AcquireLease("p", "a", 60);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->epoch, lb->epoch + 1);
  // Servers: heartbeat, list, remove frees their leases.
  ASSERT_TRUE(a->Heartbeat("a", "http://a").ok());
  ASSERT_TRUE(b->Heartbeat("b", "http://b").ok());
  auto servers = b->ListServers();
  ASSERT_EQ(servers->size(), 2u);
  EXPECT_EQ((*servers)[0].url, "http://a");
  EXPECT_LT((*servers)[0].age_seconds, 5);
  ASSERT_TRUE(a->RemoveServer("a").ok());
  EXPECT_EQ(b->ListServers()->size(), 1u);
  EXPECT_EQ((*b->ListLeases())[0].owner, "");
  // Deleting the pipeline removes its lease row.
  ASSERT_TRUE(a->DeletePipeline("p").ok());
  EXPECT_TRUE(a->ListLeases()->empty());
}

// Two servers racing for one free lease: exactly one gets it.
TEST_F(PostgresStoreTest, OneOfTwoRacingAcquirersWins) {
  auto a = Open();
  auto b = Open();
  for (int i = 0; i < 20; ++i) {
    const std::string name = "p" + std::to_string(i);
    ASSERT_TRUE(a->CreatePipeline(name, "arn:" + name, Decl(name), {}, 1.0, 1000).ok());
  }
  std::atomic<int> won{0}, refused{0};
  auto work = [&](Store* store, const std::string& who) {
    for (int i = 0; i < 20; ++i) {
      auto r = store->AcquireLease("p" + std::to_string(i), who, 60);
      if (r.ok()) {
        ++won;
      } else if (r.status().code() == StatusCode::kAborted) {
        ++refused;
      }
    }
  };
  std::thread ta(work, a.get(), "a");
  std::thread tb(work, b.get(), "b");
  ta.join();
  tb.join();
  EXPECT_EQ(won.load(), 20);
  EXPECT_EQ(refused.load(), 20);
}

// The pipeline limit is a check-then-insert: it must hold across servers.
TEST_F(PostgresStoreTest, PipelineLimitHoldsAcrossServers) {
  auto a = Open();
  auto b = Open();
  constexpr int kLimit = 10;
  std::atomic<int> created{0}, limited{0}, other{0};
  auto work = [&](Store* store, const std::string& who) {
    for (int i = 0; i < kLimit; ++i) {
      std::string name = who + std::to_string(i);
      auto r = store->CreatePipeline(name, "arn:" + name, Decl(name), {}, 1.0, kLimit);
      if (r.ok()) {
        ++created;
      } else if (r.status().wire_name() == "LimitExceededException") {
        ++limited;
      } else {
        ++other;
      }
    }
  };
  std::thread ta(work, a.get(), "a");
  std::thread tb(work, b.get(), "b");
  ta.join();
  tb.join();
  EXPECT_EQ(created.load(), kLimit);
  EXPECT_EQ(limited.load(), kLimit);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(a->ListPipelines()->size(), static_cast<size_t>(kLimit));
}

}  // namespace
}  // namespace pw::store::postgres_store_test
