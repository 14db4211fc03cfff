// SQLite implementation of Store: one connection guarded by a mutex (SQLite
// serializes writers anyway), WAL journal, synchronous=FULL so a decision a
// user was told about survives power loss. Schema changes are numbered
// migrations recorded in schema_migrations, applied in one transaction each.

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>

#include "common/log.h"
#include "store/store.h"
#include "store/store_errors.h"

namespace pw::store {
// The columns every query of execution rows selects, in ExecutionFrom's order
// (one list: a query missing `version` made commits of its rows look new).
#define PW_EXECUTION_COLUMNS "id, pipeline, status, started, updated, doc, version"

namespace {

// Schema migrations, in order. Never edit a released entry: append.
const char* const kSqliteMigrations[] = {
    // 1: pipelines, every version of each, tags.
    R"sql(
    CREATE TABLE pipelines (
      name TEXT PRIMARY KEY,
      arn TEXT NOT NULL,
      current_version INTEGER NOT NULL,
      created REAL NOT NULL,
      updated REAL NOT NULL
    );
    CREATE TABLE pipeline_versions (
      name TEXT NOT NULL,
      version INTEGER NOT NULL,
      declaration TEXT NOT NULL,
      created REAL NOT NULL,
      PRIMARY KEY (name, version)
    );
    CREATE TABLE tags (
      resource_arn TEXT NOT NULL,
      key TEXT NOT NULL,
      value TEXT NOT NULL,
      PRIMARY KEY (resource_arn, key)
    );
    )sql",
    // 2: executions and action executions (one row per attempt), key/value state.
    R"sql(
    CREATE TABLE executions (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      pipeline TEXT NOT NULL,
      status TEXT NOT NULL,
      started REAL NOT NULL,
      updated REAL NOT NULL,
      doc TEXT NOT NULL
    );
    CREATE INDEX executions_by_pipeline ON executions (pipeline, seq);
    CREATE TABLE action_executions (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      execution_id TEXT NOT NULL,
      pipeline TEXT NOT NULL,
      stage TEXT NOT NULL,
      action TEXT NOT NULL,
      status TEXT NOT NULL,
      started REAL NOT NULL,
      updated REAL NOT NULL,
      doc TEXT NOT NULL
    );
    CREATE INDEX action_executions_by_pipeline ON action_executions (pipeline, seq);
    CREATE INDEX action_executions_by_execution ON action_executions (execution_id, seq);
    CREATE TABLE kv (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL
    );
    )sql",
    // 3: row versions (optimistic concurrency, as in PostgreSQL; one server
    // owns a SQLite database, so it has no leases).
    R"sql(
    ALTER TABLE executions ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE action_executions ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
    )sql",
    // 4: action logs shipped to the database with several servers (issue 14),
    // as chunks keyed by their byte offset in the log.
    R"sql(
    CREATE TABLE action_logs (
      action_execution_id TEXT NOT NULL,
      start INTEGER NOT NULL,
      pipeline TEXT NOT NULL,
      execution_id TEXT NOT NULL,
      bytes BLOB NOT NULL,
      PRIMARY KEY (action_execution_id, start)
    );
    CREATE INDEX action_logs_by_pipeline ON action_logs (pipeline);
    CREATE INDEX action_logs_by_execution ON action_logs (execution_id);
    )sql",
    // 5: the active executions of a pipeline without scanning its history
    // (the engine loads them; issue 15).
    R"sql(
    CREATE INDEX executions_active ON executions (pipeline, seq)
      WHERE status IN ('InProgress', 'Stopping');
    )sql",
    // 6: executions by their last update (ListRuleExecutions reads the
    // recently changed ones first and stops early; issue 15).
    R"sql(
    CREATE INDEX executions_by_update ON executions (pipeline, updated, id);
    )sql",
    // 7: kv kept in key order (WITHOUT ROWID): a prefix's rows are read as
    // ranges (Store::ScanKv), and in a rowid table each row of a range is a
    // lookup in insertion order. A bucket's key rows sat among its version
    // rows: a 1,001-row page read 1.2-4.7 ms, clustered 0.5 ms (2026-12-02).
    R"sql(
    CREATE TABLE kv_by_key (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO kv_by_key (key, value) SELECT key, value FROM kv;
    DROP TABLE kv;
    ALTER TABLE kv_by_key RENAME TO kv;
    )sql",
};

// The connection's prepared statements, kept for reuse by SQL text: parsing
// and planning the same few statements again was ~5% of the server's CPU per
// action (each commit prepares 4–8). Used only under the store's mutex.
// Statements are reset and their bindings cleared when given back, so an idle
// one holds no read transaction. All of the store's SQL is literal text, far
// fewer than kMax statements; beyond kMax a given-back one is finalized.
class StmtCache {
 public:
  explicit StmtCache(sqlite3* db) : db_(db) {}
  StmtCache(const StmtCache&) = delete;
  StmtCache& operator=(const StmtCache&) = delete;
  ~StmtCache() { Clear(); }

  // A reset statement for `sql` (a new one if none is idle, e.g. when the
  // same text is in use further up the stack); *rc is the prepare's result.
  sqlite3_stmt* Take(const char* sql, int* rc) {
    auto it = idle_.find(std::string_view(sql));
    if (it != idle_.end()) {
      sqlite3_stmt* st = it->second;
      idle_.erase(it);
      *rc = SQLITE_OK;
      return st;
    }
    sqlite3_stmt* st = nullptr;
    *rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr);
    return st;
  }
  void Give(sqlite3_stmt* st) {
    if (st == nullptr) return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (idle_.size() < kMax && idle_.emplace(sqlite3_sql(st), st).second) return;
    sqlite3_finalize(st);
  }
  // Finalizes every idle statement (before the connection closes).
  void Clear() {
    for (auto& [sql, st] : idle_) sqlite3_finalize(st);
    idle_.clear();
  }

  static constexpr size_t kMax = 128;

 private:
  sqlite3* db_;
  // Keyed by the statement's own copy of its text (sqlite3_sql), which lives
  // as long as the statement.
  std::map<std::string_view, sqlite3_stmt*> idle_;
};

class Stmt {
 public:
  Stmt(StmtCache& cache, const char* sql) : cache_(cache), stmt_(cache.Take(sql, &rc_)) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { cache_.Give(stmt_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, double d) {
    sqlite3_bind_double(stmt_, i, d);
    return *this;
  }
  Stmt& Bind(int i, int v) {
    sqlite3_bind_int(stmt_, i, v);
    return *this;
  }
  Stmt& BindInt64(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Stmt& BindBlob(int i, std::string_view b) {
    sqlite3_bind_blob64(stmt_, i, b.data(), b.size(), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return rc_ = sqlite3_step(stmt_); }
  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  int Int(int col) const { return sqlite3_column_int(stmt_, col); }
  int64_t Int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Blob(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    return p ? std::string(static_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }

 private:
  StmtCache& cache_;
  int rc_ = SQLITE_OK;
  sqlite3_stmt* stmt_ = nullptr;
};

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db), stmts_(db) {}
  ~SqliteStore() override {
    stmts_.Clear();
    sqlite3_close_v2(db_);
  }
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Status Migrate() {
    std::lock_guard lock(mu_);
    PW_RETURN_IF_ERROR(Exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at "
        "REAL NOT NULL DEFAULT (julianday('now')))"));
    int have = 0;
    {
      Stmt st(stmts_, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
      if (st.Step() == SQLITE_ROW) have = st.Int(0);
    }
    const int want = static_cast<int>(std::size(kSqliteMigrations));
    if (have > want) {
      return FailedPrecondition("database schema version " + std::to_string(have) +
                                " is newer than this build understands (" + std::to_string(want) +
                                "); upgrade pipewright");
    }
    if (have < want) {
      PW_LOG(Info).Field("from", have).Field("to", want)
          << "migrating the database schema from version " << have << " to " << want;
    }
    for (int v = have; v < want; ++v) {
      Status s = InTransaction([&]() -> Status {
        PW_RETURN_IF_ERROR(Exec(kSqliteMigrations[v]));
        Stmt st(stmts_, "INSERT INTO schema_migrations (version) VALUES (?)");
        st.Bind(1, v + 1);
        return Done(st);
      });
      PW_RETURN_IF_ERROR(s);
    }
    return Status::Ok();
  }

  Result<PipelineRecord> CreatePipeline(const std::string& name, const std::string& arn,
                                        nlohmann::json declaration, const std::vector<Tag>& tags,
                                        EpochSeconds now, int max_pipelines) override {
    std::lock_guard lock(mu_);
    declaration["version"] = 1;
    PipelineRecord rec{name, arn, 1, now, now, declaration};
    Status s = InTransaction([&]() -> Status {
      {
        Stmt st(stmts_, "SELECT 1 FROM pipelines WHERE name = ?");
        st.Bind(1, name);
        if (st.Step() == SQLITE_ROW) {
          return AlreadyExists(
              "A pipeline named '" + name + "' already exists; choose another name or update it.",
              "PipelineNameInUseException");
        }
      }
      {
        Stmt st(stmts_, "SELECT COUNT(*) FROM pipelines");
        if (st.Step() == SQLITE_ROW && st.Int(0) >= max_pipelines) {
          return ResourceExhausted("The limit of " + std::to_string(max_pipelines) +
                                       " pipelines has been reached; delete one first.",
                                   "LimitExceededException");
        }
      }
      Stmt ins(stmts_,
               "INSERT INTO pipelines (name, arn, current_version, created, updated) "
               "VALUES (?, ?, 1, ?, ?)");
      ins.Bind(1, name).Bind(2, arn).Bind(3, now).Bind(4, now);
      PW_RETURN_IF_ERROR(Done(ins));
      PW_RETURN_IF_ERROR(InsertVersion(name, 1, declaration, now));
      return PutTags(arn, tags);
    });
    if (!s.ok()) return s;
    return rec;
  }

  Result<PipelineRecord> UpdatePipeline(const std::string& name, nlohmann::json declaration,
                                        EpochSeconds now) override {
    std::lock_guard lock(mu_);
    PipelineRecord rec;
    Status s = InTransaction([&]() -> Status {
      auto cur = GetLocked(name, std::nullopt);
      if (!cur.ok()) return cur.status();
      rec = std::move(*cur);
      rec.version += 1;
      rec.updated = now;
      declaration["version"] = rec.version;
      rec.declaration = declaration;
      return PutNewVersion({name, rec.version, std::move(declaration), now});
    });
    if (!s.ok()) return s;
    return rec;
  }

  Result<PipelineRecord> GetPipeline(const std::string& name, std::optional<int> version) override {
    std::lock_guard lock(mu_);
    return GetLocked(name, version);
  }

  Result<std::vector<PipelineRecord>> ListPipelines() override {
    std::lock_guard lock(mu_);
    std::vector<PipelineRecord> out;
    Stmt st(stmts_,
            "SELECT p.name, p.arn, p.current_version, p.created, p.updated, v.declaration "
            "FROM pipelines p JOIN pipeline_versions v "
            "ON v.name = p.name AND v.version = p.current_version ORDER BY p.name");
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      out.push_back(
          {st.Text(0), st.Text(1), st.Int(2), st.Double(3), st.Double(4), ParseDoc(st.Text(5))});
    }
    if (rc != SQLITE_DONE) return Error("list pipelines");
    return out;
  }

  Status DeletePipeline(const std::string& name) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      auto cur = GetLocked(name, std::nullopt);
      if (!cur.ok()) return cur.status();
      for (const char* sql :
           {"DELETE FROM pipelines WHERE name = ?", "DELETE FROM pipeline_versions WHERE name = ?",
            "DELETE FROM executions WHERE pipeline = ?",
            "DELETE FROM action_executions WHERE pipeline = ?",
            "DELETE FROM kv WHERE key = 'pstate/' || ?",
            "DELETE FROM action_logs WHERE pipeline = ?"}) {
        Stmt st(stmts_, sql);
        st.Bind(1, name);
        PW_RETURN_IF_ERROR(Done(st));
      }
      Stmt st(stmts_, "DELETE FROM tags WHERE resource_arn = ?");
      st.Bind(1, cur->arn);
      return Done(st);
    });
  }

  Result<std::vector<Tag>> ListTags(const std::string& arn) override {
    std::lock_guard lock(mu_);
    std::vector<Tag> out;
    Stmt st(stmts_, "SELECT key, value FROM tags WHERE resource_arn = ? ORDER BY key");
    st.Bind(1, arn);
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back({st.Text(0), st.Text(1)});
    if (rc != SQLITE_DONE) return Error("list tags");
    return out;
  }

  Status TagResource(const std::string& arn, const std::vector<Tag>& tags) override {
    std::lock_guard lock(mu_);
    return InTransaction([&] { return PutTags(arn, tags); });
  }

  Status UntagResource(const std::string& arn, const std::vector<std::string>& keys) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      for (const auto& k : keys) {
        Stmt st(stmts_, "DELETE FROM tags WHERE resource_arn = ? AND key = ?");
        st.Bind(1, arn).Bind(2, k);
        PW_RETURN_IF_ERROR(Done(st));
      }
      return Status::Ok();
    });
  }

  Status Commit(const Batch& batch) override {
    if (batch.empty()) return Status::Ok();
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      if (batch.fence) {
        return FailedPrecondition(
            "a lease fence needs a PostgreSQL database: one server owns a SQLite database");
      }
      for (const auto& [k, want] : batch.kv_expect) {
        Stmt st(stmts_, "SELECT value FROM kv WHERE key = ?");
        st.Bind(1, k);
        int rc = st.Step();
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error("get kv");
        std::optional<std::string> have;
        if (rc == SQLITE_ROW) have = st.Text(0);
        if (have != want) return RowConflict("Key", k);
      }
      if (batch.new_version) PW_RETURN_IF_ERROR(PutNewVersion(*batch.new_version));
      for (const auto& e : batch.executions) {
        const char* sql =
            e.version < 0 ? "INSERT INTO executions (id, pipeline, status, started, updated, doc) "
                            "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO UPDATE SET "
                            "status = excluded.status, updated = excluded.updated, "
                            "doc = excluded.doc, version = executions.version + 1"
            : e.version == 0
                ? "INSERT INTO executions (id, pipeline, status, started, updated, doc) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO NOTHING"
                : "UPDATE executions SET status = ?3, updated = ?5, doc = ?6, "
                  "version = version + 1 WHERE id = ?1 AND version = ?7 AND ?2 IS NOT NULL "
                  "AND ?4 IS NOT NULL";
        Stmt st(stmts_, sql);
        st.Bind(1, e.id)
            .Bind(2, e.pipeline)
            .Bind(3, e.status)
            .Bind(4, e.started)
            .Bind(5, e.updated)
            .Bind(6, e.doc.dump());
        if (e.version > 0) st.Bind(7, e.version);
        PW_RETURN_IF_ERROR(Done(st));
        if (e.version >= 0 && sqlite3_changes(db_) != 1) return RowConflict("Execution", e.id);
      }
      for (const auto& a : batch.actions) {
        const char* sql =
            a.version < 0
                ? "INSERT INTO action_executions (id, execution_id, pipeline, stage, action, "
                  "status, started, updated, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                  "ON CONFLICT(id) DO UPDATE SET status = excluded.status, "
                  "updated = excluded.updated, doc = excluded.doc, "
                  "version = action_executions.version + 1"
            : a.version == 0
                ? "INSERT INTO action_executions (id, execution_id, pipeline, stage, action, "
                  "status, started, updated, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                  "ON CONFLICT(id) DO NOTHING"
                : "UPDATE action_executions SET status = ?6, updated = ?8, doc = ?9, "
                  "version = version + 1 WHERE id = ?1 AND version = ?10 AND ?2 IS NOT NULL "
                  "AND ?3 IS NOT NULL AND ?4 IS NOT NULL AND ?5 IS NOT NULL AND ?7 IS NOT NULL";
        Stmt ast(stmts_, sql);
        ast.Bind(1, a.id)
            .Bind(2, a.execution_id)
            .Bind(3, a.pipeline)
            .Bind(4, a.stage)
            .Bind(5, a.action)
            .Bind(6, a.status)
            .Bind(7, a.started)
            .Bind(8, a.updated)
            .Bind(9, a.doc.dump());
        if (a.version > 0) ast.Bind(10, a.version);
        PW_RETURN_IF_ERROR(Done(ast));
        if (a.version >= 0 && sqlite3_changes(db_) != 1) {
          return RowConflict("Action execution", a.id);
        }
      }
      for (const auto& [k, v] : batch.kv_inserts) {
        Stmt st(stmts_, "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING");
        st.Bind(1, k).Bind(2, v);
        PW_RETURN_IF_ERROR(Done(st));
        if (sqlite3_changes(db_) != 1) {
          return AlreadyExists("Key " + k + " exists already.", "DuplicateKeyException");
        }
      }
      for (const auto& [k, v] : batch.kv) {
        Stmt st(stmts_,
                "INSERT INTO kv (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
        st.Bind(1, k).Bind(2, v);
        PW_RETURN_IF_ERROR(Done(st));
      }
      for (const auto& k : batch.kv_deletes) {
        Stmt st(stmts_, "DELETE FROM kv WHERE key = ?");
        st.Bind(1, k);
        PW_RETURN_IF_ERROR(Done(st));
      }
      return Status::Ok();
    });
  }

  Result<std::vector<ExecutionRow>> ListExecutions(const std::string& pipeline) override {
    std::lock_guard lock(mu_);
    std::vector<ExecutionRow> out;
    const char* sql = pipeline.empty() ? "SELECT " PW_EXECUTION_COLUMNS
                                         " FROM executions ORDER BY seq DESC"
                                       : "SELECT " PW_EXECUTION_COLUMNS
                                         " FROM executions WHERE pipeline = ? ORDER BY seq DESC";
    Stmt st(stmts_, sql);
    if (!pipeline.empty()) st.Bind(1, pipeline);
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ExecutionFrom(st));
    if (rc != SQLITE_DONE) return Error("list executions");
    return out;
  }

  Result<std::vector<ActionExecutionRow>> ListActionExecutions(
      const std::string& pipeline, const std::string& execution_id) override {
    std::lock_guard lock(mu_);
    std::vector<ActionExecutionRow> out;
    const char* sql =
        execution_id.empty()
            ? "SELECT id, execution_id, pipeline, stage, action, status, started, updated, doc, "
              "version FROM action_executions WHERE pipeline = ? ORDER BY seq DESC"
            : "SELECT id, execution_id, pipeline, stage, action, status, started, updated, doc, "
              "version FROM action_executions WHERE pipeline = ? AND execution_id = ? "
              "ORDER BY seq DESC";
    Stmt st(stmts_, sql);
    st.Bind(1, pipeline);
    if (!execution_id.empty()) st.Bind(2, execution_id);
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      out.push_back(ActionExecutionFrom(st));
    }
    if (rc != SQLITE_DONE) return Error("list action executions");
    return out;
  }

  // One statement (one read transaction) for all the executions, over the
  // (execution_id, seq) index, with the stage (if any) in the query so other
  // stages' documents are not read. The ids go as one JSON array parameter
  // (json_each), so the statement is prepared once for any number of them.
  // INDEXED BY: without statistics the planner prefers (pipeline, seq),
  // i.e. every run of the pipeline (at 10^5 executions a page took 0.6 s
  // instead of 7 ms); with it, a plan without that index fails to prepare.
  Result<std::vector<ActionExecutionRow>> ListActionExecutionsOf(
      const std::string& pipeline, const std::vector<std::string>& execution_ids,
      const std::string& stage, Docs docs) override {
    std::vector<ActionExecutionRow> out;
    nlohmann::json ids = nlohmann::json::array();
    for (const std::string& id : execution_ids) {
      if (!id.empty()) ids.push_back(id);  // "" would mean every execution.
    }
    if (ids.empty()) return out;
    std::lock_guard lock(mu_);
    Stmt st(stmts_, stage.empty()
                        ? "SELECT id, execution_id, pipeline, stage, action, status, started, "
                          "updated, doc, version FROM action_executions "
                          "INDEXED BY action_executions_by_execution WHERE execution_id IN "
                          "(SELECT value FROM json_each(?)) AND pipeline = ? ORDER BY seq DESC"
                        : "SELECT id, execution_id, pipeline, stage, action, status, started, "
                          "updated, doc, version FROM action_executions "
                          "INDEXED BY action_executions_by_execution WHERE execution_id IN "
                          "(SELECT value FROM json_each(?)) AND pipeline = ? AND stage = ? "
                          "ORDER BY seq DESC");
    // (Ids come from stored rows: UTF-8, as every request is; never throw.)
    st.Bind(1, ids.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
        .Bind(2, pipeline);
    if (!stage.empty()) st.Bind(3, stage);
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      out.push_back(ActionExecutionFrom(st, docs));
    }
    if (rc != SQLITE_DONE) return Error("list action executions");
    return out;
  }

  Result<std::vector<ExecutionRow>> ListExecutionsPage(const std::string& pipeline, size_t limit,
                                                       const std::string& before_id,
                                                       Docs docs) override {
    std::lock_guard lock(mu_);
    int64_t before = INT64_MAX;
    if (!before_id.empty()) {
      Stmt st(stmts_, "SELECT seq FROM executions WHERE id = ? AND pipeline = ?");
      st.Bind(1, before_id).Bind(2, pipeline);
      int rc = st.Step();
      if (rc != SQLITE_ROW) {
        if (rc != SQLITE_DONE) return Error("list executions");
        return NotFound("No execution " + before_id + " in pipeline " + pipeline + ".",
                        "InvalidNextTokenException");
      }
      before = st.Int64(0);
    }
    return Executions("SELECT " PW_EXECUTION_COLUMNS
                      " FROM executions "
                      "WHERE pipeline = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
                      pipeline, before, static_cast<int64_t>(limit), docs);
  }

  Result<std::vector<ExecutionRow>> ListOldestExecutions(const std::string& pipeline,
                                                         size_t limit) override {
    std::lock_guard lock(mu_);
    return Executions("SELECT " PW_EXECUTION_COLUMNS
                      " FROM executions "
                      "WHERE pipeline = ? AND seq > ? ORDER BY seq ASC LIMIT ?",
                      pipeline, int64_t{0}, static_cast<int64_t>(limit));
  }

  Result<std::vector<ExecutionRow>> ListExecutionsByUpdate(const std::string& pipeline,
                                                           size_t limit,
                                                           EpochSeconds before_updated,
                                                           const std::string& before_id) override {
    std::lock_guard lock(mu_);
    const bool first = before_id.empty();
    Stmt st(stmts_, first ? "SELECT " PW_EXECUTION_COLUMNS
                            " FROM executions WHERE pipeline = ? "
                            "ORDER BY updated DESC, id DESC LIMIT ?"
                          : "SELECT " PW_EXECUTION_COLUMNS
                            " FROM executions WHERE pipeline = ? "
                            "AND (updated < ? OR (updated = ? AND id < ?)) "
                            "ORDER BY updated DESC, id DESC LIMIT ?");
    if (first) {
      st.Bind(1, pipeline).BindInt64(2, static_cast<int64_t>(limit));
    } else {
      st.Bind(1, pipeline)
          .Bind(2, before_updated)
          .Bind(3, before_updated)
          .Bind(4, before_id)
          .BindInt64(5, static_cast<int64_t>(limit));
    }
    std::vector<ExecutionRow> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ExecutionFrom(st));
    if (rc != SQLITE_DONE) return Error("list executions by update");
    return out;
  }

  Result<std::vector<ExecutionRow>> ListActiveExecutions(const std::string& pipeline) override {
    std::lock_guard lock(mu_);
    return Executions("SELECT " PW_EXECUTION_COLUMNS
                      " FROM executions "
                      "WHERE pipeline = ? AND status IN ('InProgress', 'Stopping') AND seq < ? "
                      "ORDER BY seq DESC LIMIT ?",
                      pipeline, INT64_MAX, INT64_MAX);
  }

  Result<std::optional<ExecutionRow>> GetExecution(const std::string& pipeline,
                                                   const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt st(stmts_, "SELECT " PW_EXECUTION_COLUMNS
                    " FROM executions "
                    "WHERE id = ? AND pipeline = ?");
    st.Bind(1, id).Bind(2, pipeline);
    int rc = st.Step();
    if (rc == SQLITE_ROW) {
      return std::optional<ExecutionRow>(ExecutionFrom(st));
    }
    if (rc != SQLITE_DONE) return Error("get execution");
    return std::optional<ExecutionRow>();
  }

  Result<std::optional<std::string>> PipelineOfActionExecution(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt st(stmts_, "SELECT pipeline FROM action_executions WHERE id = ?");
    st.Bind(1, id);
    int rc = st.Step();
    if (rc == SQLITE_ROW) return std::optional<std::string>(st.Text(0));
    if (rc != SQLITE_DONE) return Error("find an action execution's pipeline");
    return std::optional<std::string>();
  }

  Result<int64_t> CountExecutions(const std::string& pipeline) override {
    std::lock_guard lock(mu_);
    Stmt st(stmts_, "SELECT COUNT(*) FROM executions WHERE pipeline = ?");
    st.Bind(1, pipeline);
    if (st.Step() != SQLITE_ROW) return Error("count executions");
    return st.Int64(0);
  }

  Status DeleteExecutions(const std::string& pipeline,
                          const std::vector<std::string>& ids) override {
    if (ids.empty()) return Status::Ok();
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      for (const auto& id : ids) {
        for (const char* sql : {"DELETE FROM action_executions WHERE execution_id = ? AND "
                                "pipeline = ?",
                                "DELETE FROM executions WHERE id = ? AND pipeline = ?"}) {
          Stmt st(stmts_, sql);
          st.Bind(1, id).Bind(2, pipeline);
          PW_RETURN_IF_ERROR(Done(st));
        }
      }
      return Status::Ok();
    });
  }

  Result<std::optional<std::string>> GetKv(const std::string& key) override {
    std::lock_guard lock(mu_);
    Stmt st(stmts_, "SELECT value FROM kv WHERE key = ?");
    st.Bind(1, key);
    int rc = st.Step();
    if (rc == SQLITE_ROW) return std::optional<std::string>(st.Text(0));
    if (rc != SQLITE_DONE) return Error("get kv");
    return std::optional<std::string>();
  }

  Status PutKv(const std::string& key, const std::string& value) override {
    std::lock_guard lock(mu_);
    Stmt st(stmts_,
            "INSERT INTO kv (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    st.Bind(1, key).Bind(2, value);
    return Done(st);
  }

  Status DeleteKvPrefix(const std::string& prefix) override {
    std::lock_guard lock(mu_);
    // A range of the key's index (TEXT compares as bytes), not a scan.
    auto end = BytesPrefixEnd(prefix);
    Stmt st(stmts_,
            end ? "DELETE FROM kv WHERE key >= ? AND key < ?" : "DELETE FROM kv WHERE key >= ?");
    st.Bind(1, prefix);
    if (end) st.Bind(2, *end);
    return Done(st);
  }

  Result<std::vector<std::pair<std::string, std::string>>> ScanKv(const KvScan& scan) override {
    std::vector<std::pair<std::string, std::string>> out;
    auto lower = KvLowerBound(scan, BytesPrefixEnd);
    if (!lower) return out;
    auto end = BytesPrefixEnd(scan.prefix);
    // One range of the key's index: TEXT compares as bytes (BINARY), which
    // is S3's order too. LIMIT -1 is no limit.
    static constexpr const char* kSql[2][2] = {
        {"SELECT key, value FROM kv WHERE key > ? ORDER BY key LIMIT ?",
         "SELECT key, value FROM kv WHERE key > ? AND key < ? ORDER BY key LIMIT ?"},
        {"SELECT key, value FROM kv WHERE key >= ? ORDER BY key LIMIT ?",
         "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?"}};
    std::lock_guard lock(mu_);
    Stmt st(stmts_, kSql[lower->inclusive][end.has_value()]);
    int i = 1;
    st.Bind(i++, lower->bound);
    if (end) st.Bind(i++, *end);
    st.BindInt64(i, scan.limit == 0 ? int64_t{-1} : static_cast<int64_t>(scan.limit));
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.emplace_back(st.Text(0), st.Text(1));
    if (rc != SQLITE_DONE) return Error("list kv");
    return out;
  }

  Status AppendActionLog(const ActionLogChunk& chunk) override {
    std::lock_guard lock(mu_);
    Stmt st(stmts_,
            "INSERT INTO action_logs (action_execution_id, start, pipeline, execution_id, bytes) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(action_execution_id, start) DO UPDATE SET "
            "bytes = excluded.bytes WHERE length(excluded.bytes) > length(action_logs.bytes)");
    st.Bind(1, chunk.action_execution_id)
        .BindInt64(2, static_cast<int64_t>(chunk.offset))
        .Bind(3, chunk.pipeline)
        .Bind(4, chunk.execution_id)
        .BindBlob(5, chunk.bytes);
    return Done(st);
  }

  Result<std::optional<std::string>> ReadActionLog(const std::string& action_execution_id,
                                                   uint64_t offset, size_t max_bytes) override {
    std::lock_guard lock(mu_);
    Stmt st(stmts_,
            "SELECT start, bytes FROM action_logs WHERE action_execution_id = ? "
            "AND start + length(bytes) > ? ORDER BY start");
    st.Bind(1, action_execution_id).BindInt64(2, static_cast<int64_t>(offset));
    std::string out;
    uint64_t next = offset;
    bool any = false;
    int rc = SQLITE_DONE;
    while (out.size() < max_bytes) {
      if ((rc = st.Step()) != SQLITE_ROW) break;
      any = true;
      const auto start = static_cast<uint64_t>(st.Int64(0));
      if (start > next) break;  // A gap: serve what is contiguous.
      const std::string bytes = st.Blob(1);
      const size_t skip = static_cast<size_t>(next - start);
      if (skip >= bytes.size()) continue;
      const size_t take = std::min(bytes.size() - skip, max_bytes - out.size());
      out.append(bytes, skip, take);
      next += take;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error("read action log");
    if (!any) {
      Stmt exists(stmts_, "SELECT 1 FROM action_logs WHERE action_execution_id = ? LIMIT 1");
      exists.Bind(1, action_execution_id);
      rc = exists.Step();
      if (rc == SQLITE_DONE) return std::optional<std::string>();
      if (rc != SQLITE_ROW) return Error("read action log");
    }
    return std::optional<std::string>(std::move(out));
  }

  Status DeleteActionLogs(const std::vector<std::string>& execution_ids) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      for (const auto& id : execution_ids) {
        Stmt st(stmts_, "DELETE FROM action_logs WHERE execution_id = ?");
        st.Bind(1, id);
        PW_RETURN_IF_ERROR(Done(st));
      }
      return Status::Ok();
    });
  }

 private:
  Status Error(const std::string& what) const {
    return Unavailable("database error in " + what + ": " + sqlite3_errmsg(db_));
  }
  // The row at `st` of "SELECT id, execution_id, pipeline, stage, action,
  // status, started, updated, doc, version FROM action_executions", its
  // document as `docs` says.
  static ActionExecutionRow ActionExecutionFrom(const Stmt& st, Docs docs = Docs::kParsed) {
    ActionExecutionRow row{st.Text(0), st.Text(1),   st.Text(2),   st.Text(3), st.Text(4),
                           st.Text(5), st.Double(6), st.Double(7), nullptr,    st.Int64(9)};
    SetDoc(st.Text(8), docs, &row.doc, &row.text);
    return row;
  }
  // The row at `st` of a query selecting PW_EXECUTION_COLUMNS.
  static ExecutionRow ExecutionFrom(const Stmt& st, Docs docs = Docs::kParsed) {
    ExecutionRow row{st.Text(0),   st.Text(1), st.Text(2), st.Double(3),
                     st.Double(4), nullptr,    st.Int64(6)};
    SetDoc(st.Text(5), docs, &row.doc, &row.text);
    return row;
  }
  // Rows of an execution query taking (pipeline, seq bound, limit).
  Result<std::vector<ExecutionRow>> Executions(const char* sql, const std::string& pipeline,
                                               int64_t seq, int64_t limit,
                                               Docs docs = Docs::kParsed) {
    std::vector<ExecutionRow> out;
    Stmt st(stmts_, sql);
    st.Bind(1, pipeline).Bind(2, seq).Bind(3, limit);
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ExecutionFrom(st, docs));
    if (rc != SQLITE_DONE) return Error("list executions");
    return out;
  }
  Status Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown";
      sqlite3_free(err);
      return Unavailable("database error: " + msg);
    }
    return Status::Ok();
  }
  Status Done(Stmt& st) {
    int rc = st.Step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return Error("statement");
    return Status::Ok();
  }
  // One statement without results, from the statement cache.
  Status Run(const char* sql) {
    Stmt st(stmts_, sql);
    if (!st.ok() || st.Step() != SQLITE_DONE) {
      return Unavailable(std::string("database error: ") + sqlite3_errmsg(db_));
    }
    return Status::Ok();
  }
  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT; rolls back on any error.
  template <typename F>
  Status InTransaction(F&& body) {
    PW_RETURN_IF_ERROR(Run("BEGIN IMMEDIATE"));
    Status s = body();
    if (s.ok()) s = Run("COMMIT");
    if (!s.ok()) (void)Run("ROLLBACK");
    return s;
  }
  // Inside a transaction: checks that `nv` follows the stored current version
  // (kNotFound, kAborted as Commit says) and writes it.
  Status PutNewVersion(const NewVersion& nv) {
    {
      Stmt st(stmts_, "SELECT current_version FROM pipelines WHERE name = ?");
      st.Bind(1, nv.name);
      int rc = st.Step();
      if (rc == SQLITE_DONE) return PipelineNotFound(nv.name);
      if (rc != SQLITE_ROW) return Error("get pipeline version");
      if (st.Int(0) != nv.version - 1) return VersionConflict(nv.name, nv.version, st.Int(0));
    }
    Stmt up(stmts_, "UPDATE pipelines SET current_version = ?, updated = ? WHERE name = ?");
    up.Bind(1, nv.version).Bind(2, nv.now).Bind(3, nv.name);
    PW_RETURN_IF_ERROR(Done(up));
    nlohmann::json decl = nv.declaration;
    decl["version"] = nv.version;
    return InsertVersion(nv.name, nv.version, decl, nv.now);
  }
  Status InsertVersion(const std::string& name, int version, const nlohmann::json& decl,
                       EpochSeconds now) {
    Stmt st(stmts_,
            "INSERT INTO pipeline_versions (name, version, declaration, created) "
            "VALUES (?, ?, ?, ?)");
    st.Bind(1, name).Bind(2, version).Bind(3, decl.dump()).Bind(4, now);
    return Done(st);
  }
  Status PutTags(const std::string& arn, const std::vector<Tag>& tags) {
    for (const auto& t : tags) {
      Stmt st(stmts_,
              "INSERT INTO tags (resource_arn, key, value) VALUES (?, ?, ?) "
              "ON CONFLICT(resource_arn, key) DO UPDATE SET value = excluded.value");
      st.Bind(1, arn).Bind(2, t.key).Bind(3, t.value);
      PW_RETURN_IF_ERROR(Done(st));
    }
    Stmt count(stmts_, "SELECT COUNT(*) FROM tags WHERE resource_arn = ?");
    count.Bind(1, arn);
    if (count.Step() == SQLITE_ROW && count.Int(0) > 50) {
      return ResourceExhausted("A resource can have at most 50 tags; remove some first.",
                               "TooManyTagsException");
    }
    return Status::Ok();
  }
  Result<PipelineRecord> GetLocked(const std::string& name, std::optional<int> version) {
    Stmt st(stmts_, "SELECT arn, current_version, created, updated FROM pipelines WHERE name = ?");
    st.Bind(1, name);
    int rc = st.Step();
    if (rc != SQLITE_ROW) {
      if (rc != SQLITE_DONE) return Error("get pipeline");
      return PipelineNotFound(name);
    }
    PipelineRecord rec{name, st.Text(0), st.Int(1), st.Double(2), st.Double(3), {}};
    const int want = version.value_or(rec.version);
    Stmt vs(stmts_, "SELECT declaration FROM pipeline_versions WHERE name = ? AND version = ?");
    vs.Bind(1, name).Bind(2, want);
    rc = vs.Step();
    if (rc != SQLITE_ROW) {
      if (rc != SQLITE_DONE) return Error("get pipeline version");
      return NotFound("Pipeline '" + name + "' has no version " + std::to_string(want) +
                          "; its current version is " + std::to_string(rec.version) + ".",
                      "PipelineVersionNotFoundException");
    }
    rec.version = want;
    rec.declaration = ParseDoc(vs.Text(0));
    return rec;
  }

  std::mutex mu_;
  sqlite3* db_;      // Guarded by mu_.
  StmtCache stmts_;  // Guarded by mu_.
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return Unavailable("cannot open database " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  auto store = std::make_unique<SqliteStore>(db);
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    char* err = nullptr;
    if (sqlite3_exec(db, pragma, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "";
      sqlite3_free(err);
      return Unavailable("cannot configure database " + path + ": " + msg);
    }
  }
  PW_RETURN_IF_ERROR(store->Migrate());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace pw::store
