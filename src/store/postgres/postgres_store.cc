// PostgreSQL implementation of Store, so several servers can share one
// database. Same contract as the SQLite store, including error codes, wire
// names and ordering (names and keys sort bytewise: columns are COLLATE "C").
//
// A pool of libpq connections (opened as calls need them, up to a maximum);
// each call holds one for its duration (Session), so reads do not queue behind
// another call's transaction. Every statement is prepared once per connection
// (Exec): a join parsed and planned at every call took ~2x the time of the
// prepared one on a local server. Every mutating call is one
// SERIALIZABLE transaction (BEGIN ... COMMIT, ROLLBACK on any error), so a
// check-then-write such as the pipeline limit or the next version number holds
// across servers too; a serialization failure or deadlock (SQLSTATE
// 40001/40P01) reruns the whole transaction a few times before the call gives
// up with kUnavailable. Any other database error is kUnavailable with the
// server's message. A connection found broken is re-established once per call
// (PQreset) and the call rerun, except when it broke during COMMIT: then the
// outcome is unknown and the call reports kUnavailable rather than guess.
// Values always travel apart from the SQL text (PQexecPrepared, PQexecParams).
//
// Schema changes are numbered migrations recorded in schema_migrations, each
// applied in its own transaction holding an advisory lock, so two servers
// starting at once never apply one twice.

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/check.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "common/utf8.h"
#include "store/store.h"
#include "store/store_errors.h"

namespace pw::store {
// The columns every query of execution rows selects, in Executions' order
// (one list: a query missing `version` made commits of its rows look new).
#define PW_EXECUTION_COLUMNS "id, pipeline, status, started, updated, doc, version"
#define PW_ACTION_COLUMNS \
  "id, execution_id, pipeline, stage, action, status, started, updated, doc, version"

namespace {

// Schema migrations, in order. Never edit a released entry: append.
// Mirrors the SQLite schema: BIGSERIAL seq keeps insertion order ("newest
// first"), DOUBLE PRECISION holds epoch seconds, TEXT holds JSON documents
// exactly as written.
const char* const kPostgresMigrations[] = {
    // 1: pipelines, every version of each, tags.
    R"sql(
    CREATE TABLE pipelines (
      name TEXT COLLATE "C" PRIMARY KEY,
      arn TEXT NOT NULL,
      current_version INTEGER NOT NULL,
      created DOUBLE PRECISION NOT NULL,
      updated DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE pipeline_versions (
      name TEXT COLLATE "C" NOT NULL,
      version INTEGER NOT NULL,
      declaration TEXT NOT NULL,
      created DOUBLE PRECISION NOT NULL,
      PRIMARY KEY (name, version)
    );
    CREATE TABLE tags (
      resource_arn TEXT COLLATE "C" NOT NULL,
      key TEXT COLLATE "C" NOT NULL,
      value TEXT NOT NULL,
      PRIMARY KEY (resource_arn, key)
    );
    )sql",
    // 2: executions and action executions (one row per attempt), key/value state.
    R"sql(
    CREATE TABLE executions (
      seq BIGSERIAL PRIMARY KEY,
      id TEXT NOT NULL UNIQUE,
      pipeline TEXT NOT NULL,
      status TEXT NOT NULL,
      started DOUBLE PRECISION NOT NULL,
      updated DOUBLE PRECISION NOT NULL,
      doc TEXT NOT NULL
    );
    CREATE INDEX executions_by_pipeline ON executions (pipeline, seq);
    CREATE TABLE action_executions (
      seq BIGSERIAL PRIMARY KEY,
      id TEXT NOT NULL UNIQUE,
      execution_id TEXT NOT NULL,
      pipeline TEXT NOT NULL,
      stage TEXT NOT NULL,
      action TEXT NOT NULL,
      status TEXT NOT NULL,
      started DOUBLE PRECISION NOT NULL,
      updated DOUBLE PRECISION NOT NULL,
      doc TEXT NOT NULL
    );
    CREATE INDEX action_executions_by_pipeline ON action_executions (pipeline, seq);
    CREATE INDEX action_executions_by_execution ON action_executions (execution_id, seq);
    CREATE TABLE kv (
      key TEXT COLLATE "C" PRIMARY KEY,
      value TEXT NOT NULL
    );
    )sql",
    // 3: several servers: row versions (optimistic concurrency), the servers
    // sharing the database and the leases of pipelines (fencing epochs).
    R"sql(
    ALTER TABLE executions ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
    ALTER TABLE action_executions ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
    CREATE TABLE servers (
      id TEXT COLLATE "C" PRIMARY KEY,
      url TEXT NOT NULL,
      heartbeat DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE leases (
      pipeline TEXT COLLATE "C" PRIMARY KEY,
      owner TEXT COLLATE "C" NOT NULL,
      epoch BIGINT NOT NULL,
      expires DOUBLE PRECISION NOT NULL
    );
    )sql",
    // 4: action logs shipped to the database with several servers (issue 14),
    // as chunks keyed by their byte offset in the log.
    R"sql(
    CREATE TABLE action_logs (
      action_execution_id TEXT NOT NULL,
      start BIGINT NOT NULL,
      pipeline TEXT NOT NULL,
      execution_id TEXT NOT NULL,
      bytes BYTEA NOT NULL,
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
    // 7: a change stamp per pipeline (Store::ChangeStamp), so a server can
    // keep its answers for a pipeline another server drives until it changes.
    // Triggers, not the store's code, give every write of the pipeline's rows
    // a new value from a sequence (unique for ever, even across a delete and a
    // re-creation). Only the server driving a pipeline writes these rows, so
    // the stamp row adds no conflicts between servers.
    R"sql(
    CREATE SEQUENCE pipeline_change_seq;
    CREATE TABLE pipeline_changes (
      pipeline TEXT COLLATE "C" PRIMARY KEY,
      stamp BIGINT NOT NULL
    );
    CREATE FUNCTION pw_pipeline_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      r RECORD;
      p TEXT;
    BEGIN
      IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
      IF TG_TABLE_NAME IN ('pipelines', 'pipeline_versions') THEN
        p := r.name;
      ELSIF TG_TABLE_NAME = 'kv' THEN
        p := substr(r.key, 8);  -- After 'pstate/'.
      ELSE
        p := r.pipeline;
      END IF;
      INSERT INTO pipeline_changes (pipeline, stamp) VALUES (p, nextval('pipeline_change_seq'))
        ON CONFLICT (pipeline) DO UPDATE SET stamp = EXCLUDED.stamp;
      RETURN NULL;
    END $$;
    CREATE TRIGGER pipelines_changed AFTER INSERT OR UPDATE OR DELETE ON pipelines
      FOR EACH ROW EXECUTE FUNCTION pw_pipeline_changed();
    CREATE TRIGGER pipeline_versions_changed AFTER INSERT OR UPDATE OR DELETE ON pipeline_versions
      FOR EACH ROW EXECUTE FUNCTION pw_pipeline_changed();
    CREATE TRIGGER executions_changed AFTER INSERT OR UPDATE OR DELETE ON executions
      FOR EACH ROW EXECUTE FUNCTION pw_pipeline_changed();
    CREATE TRIGGER action_executions_changed AFTER INSERT OR UPDATE OR DELETE ON action_executions
      FOR EACH ROW EXECUTE FUNCTION pw_pipeline_changed();
    CREATE TRIGGER kv_pstate_written AFTER INSERT OR UPDATE ON kv
      FOR EACH ROW WHEN (starts_with(NEW.key, 'pstate/')) EXECUTE FUNCTION pw_pipeline_changed();
    CREATE TRIGGER kv_pstate_deleted AFTER DELETE ON kv
      FOR EACH ROW WHEN (starts_with(OLD.key, 'pstate/')) EXECUTE FUNCTION pw_pipeline_changed();
    )sql",
};

// The database's clock, in epoch seconds: every server compares lease
// expiries against one clock, whatever their own clocks say.
#define PW_DB_NOW "extract(epoch from clock_timestamp())::double precision"

// pg_advisory_xact_lock key taken by every migration transaction ("pwmigrat").
constexpr const char* kMigrationLockKey = "8101773306035069300";

// Attempts of one call when transactions keep failing with 40001/40P01; with
// the backoff below, about 0.25 s of waiting in all at worst.
constexpr int kMaxAttempts = 8;

// Statements prepared per connection at most (the store has about 60).
constexpr size_t kMaxPrepared = 128;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

// One query parameter in text format, or SQL NULL. A string parameter is
// borrowed: it must outlive the query (temporaries in the call expression do).
class Param {
 public:
  Param(const std::string& s) : borrowed_(s.c_str()) {}  // NOLINT: implicit by design.
  Param(const char* s) : borrowed_(s) {}                 // NOLINT
  Param(int v) : owned_(std::to_string(v)) {}            // NOLINT
  Param(int64_t v) : owned_(std::to_string(v)) {}        // NOLINT
  Param(double d) {                                      // NOLINT
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);  // Shortest exact form.
    owned_.assign(buf, end);
  }
  Param(std::optional<int> v) : null_(!v), owned_(v ? std::to_string(*v) : "") {}  // NOLINT
  const char* value() const {
    if (null_) return nullptr;
    return borrowed_ ? borrowed_ : owned_.c_str();
  }

 private:
  const char* borrowed_ = nullptr;
  bool null_ = false;
  std::string owned_;
};

std::string Text(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col)));
}
double Double(const PGresult* r, int row, int col) {
  const char* p = PQgetvalue(r, row, col);
  double d = 0;
  std::from_chars(p, p + PQgetlength(r, row, col), d);
  return d;
}
int Int(const PGresult* r, int row, int col) {
  const char* p = PQgetvalue(r, row, col);
  int v = 0;
  std::from_chars(p, p + PQgetlength(r, row, col), v);
  return v;
}
int64_t Int64(const PGresult* r, int row, int col) {
  const char* p = PQgetvalue(r, row, col);
  int64_t v = 0;
  std::from_chars(p, p + PQgetlength(r, row, col), v);
  return v;
}
// Rows a command changed (INSERT/UPDATE/DELETE).
int Affected(const PGresult* r) {
  const char* n = PQcmdTuples(const_cast<PGresult*>(r));
  return n == nullptr || *n == '\0' ? 0 : std::atoi(n);
}
void IgnoreNotice(void*, const char*) {}

class PostgresStore final : public Store {
 public:
  // `first`: an open connection to `conninfo`, the pool's first.
  PostgresStore(std::string conninfo, int max_connections, PGconn* first)
      : conninfo_(std::move(conninfo)), max_connections_(std::max(1, max_connections)) {
    MutexLock lock(pool_mu_);
    idle_.push_back(std::make_unique<Conn>(first));
    open_ = 1;
  }
  ~PostgresStore() override = default;  // Each Conn closes its connection.
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  Status Migrate() {
    Session session(*this);
    const int want = static_cast<int>(std::size(kPostgresMigrations));
    for (;;) {
      // Each step: take the lock, see what is applied, apply the next one.
      int have = 0;
      Status s = Run(Mode::kLockedTransaction, [&]() -> Status {
        PW_RETURN_IF_ERROR(
            Query("SELECT pg_advisory_xact_lock($1::bigint)", {kMigrationLockKey}).status());
        PW_RETURN_IF_ERROR(
            Script("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                   "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"));
        PW_ASSIGN_OR_RETURN(PgResult r,
                            Query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", {}));
        have = Int(r.get(), 0, 0);
        if (have >= want) return Status::Ok();
        PW_RETURN_IF_ERROR(Script(kPostgresMigrations[have]));
        return Query("INSERT INTO schema_migrations (version) VALUES ($1)", {have + 1}).status();
      });
      PW_RETURN_IF_ERROR(s);
      if (have > want) {
        return FailedPrecondition("database schema version " + std::to_string(have) +
                                  " is newer than this build understands (" + std::to_string(want) +
                                  "); upgrade pipewright");
      }
      if (have >= want) return Status::Ok();
    }
  }

  Result<PipelineRecord> CreatePipeline(const std::string& name, const std::string& arn,
                                        nlohmann::json declaration, const std::vector<Tag>& tags,
                                        EpochSeconds now, int max_pipelines) override {
    Session session(*this);
    declaration["version"] = 1;
    PipelineRecord rec{name, arn, 1, now, now, declaration};
    Status s = Run(Mode::kTransaction, [&]() -> Status {
      PW_ASSIGN_OR_RETURN(PgResult taken, Query("SELECT 1 FROM pipelines WHERE name = $1", {name}));
      if (PQntuples(taken.get()) > 0) {
        return AlreadyExists(
            "A pipeline named '" + name + "' already exists; choose another name or update it.",
            "PipelineNameInUseException");
      }
      PW_ASSIGN_OR_RETURN(PgResult count, Query("SELECT COUNT(*) FROM pipelines", {}));
      if (Int(count.get(), 0, 0) >= max_pipelines) {
        return ResourceExhausted("The limit of " + std::to_string(max_pipelines) +
                                     " pipelines has been reached; delete one first.",
                                 "LimitExceededException");
      }
      PW_RETURN_IF_ERROR(Query("INSERT INTO pipelines (name, arn, current_version, created, "
                               "updated) VALUES ($1, $2, 1, $3, $4)",
                               {name, arn, now, now})
                             .status());
      PW_RETURN_IF_ERROR(InsertVersion(name, 1, declaration.dump(), now));
      return PutTags(arn, tags);
    });
    if (!s.ok()) return s;
    return rec;
  }

  Result<PipelineRecord> UpdatePipeline(const std::string& name, nlohmann::json declaration,
                                        EpochSeconds now) override {
    Session session(*this);
    PipelineRecord rec;
    Status s = Run(Mode::kTransaction, [&]() -> Status {
      PW_ASSIGN_OR_RETURN(rec, GetLocked(name, std::nullopt));
      rec.version += 1;
      rec.updated = now;
      declaration["version"] = rec.version;
      rec.declaration = declaration;
      return PutNewVersion({name, rec.version, {}, now}, declaration.dump());
    });
    if (!s.ok()) return s;
    return rec;
  }

  Result<PipelineRecord> GetPipeline(const std::string& name, std::optional<int> version) override {
    Session session(*this);
    PipelineRecord rec;
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      PW_ASSIGN_OR_RETURN(rec, GetLocked(name, version));
      return Status::Ok();
    }));
    return rec;
  }

  Result<std::vector<PipelineRecord>> ListPipelines() override {
    Session session(*this);
    std::vector<PipelineRecord> out;
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      PW_ASSIGN_OR_RETURN(
          PgResult r, Query("SELECT p.name, p.arn, p.current_version, p.created, p.updated, "
                            "v.declaration FROM pipelines p JOIN pipeline_versions v "
                            "ON v.name = p.name AND v.version = p.current_version ORDER BY p.name",
                            {}));
      out.clear();
      for (int i = 0; i < PQntuples(r.get()); ++i) {
        out.push_back({Text(r.get(), i, 0), Text(r.get(), i, 1), Int(r.get(), i, 2),
                       Double(r.get(), i, 3), Double(r.get(), i, 4),
                       ParseDoc(Text(r.get(), i, 5))});
      }
      return Status::Ok();
    }));
    return out;
  }

  Status DeletePipeline(const std::string& name) override {
    Session session(*this);
    return Run(Mode::kTransaction, [&]() -> Status {
      PW_ASSIGN_OR_RETURN(PipelineRecord cur, GetLocked(name, std::nullopt));
      for (const char* sql : {"DELETE FROM pipelines WHERE name = $1",
                              "DELETE FROM pipeline_versions WHERE name = $1",
                              "DELETE FROM executions WHERE pipeline = $1",
                              "DELETE FROM action_executions WHERE pipeline = $1",
                              "DELETE FROM kv WHERE key = 'pstate/' || $1",
                              "DELETE FROM action_logs WHERE pipeline = $1",
                              "DELETE FROM leases WHERE pipeline = $1"}) {
        PW_RETURN_IF_ERROR(Query(sql, {name}).status());
      }
      return Query("DELETE FROM tags WHERE resource_arn = $1", {cur.arn}).status();
    });
  }

  Result<std::vector<Tag>> ListTags(const std::string& arn) override {
    Session session(*this);
    std::vector<Tag> out;
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      PW_ASSIGN_OR_RETURN(
          PgResult r,
          Query("SELECT key, value FROM tags WHERE resource_arn = $1 ORDER BY key", {arn}));
      out.clear();
      for (int i = 0; i < PQntuples(r.get()); ++i) {
        out.push_back({Text(r.get(), i, 0), Text(r.get(), i, 1)});
      }
      return Status::Ok();
    }));
    return out;
  }

  Status TagResource(const std::string& arn, const std::vector<Tag>& tags) override {
    Session session(*this);
    return Run(Mode::kTransaction, [&] { return PutTags(arn, tags); });
  }

  Status UntagResource(const std::string& arn, const std::vector<std::string>& keys) override {
    Session session(*this);
    return Run(Mode::kTransaction, [&]() -> Status {
      for (const auto& k : keys) {
        PW_RETURN_IF_ERROR(
            Query("DELETE FROM tags WHERE resource_arn = $1 AND key = $2", {arn, k}).status());
      }
      return Status::Ok();
    });
  }

  Status Commit(const Batch& batch) override {
    if (batch.empty()) return Status::Ok();
    // Serialize the documents once, not once per attempt, and outside the lock.
    std::string declaration_doc;
    if (batch.new_version) {
      nlohmann::json decl = batch.new_version->declaration;
      decl["version"] = batch.new_version->version;
      declaration_doc = decl.dump();
    }
    std::vector<std::string> execution_docs, action_docs;
    for (const auto& e : batch.executions) execution_docs.push_back(e.doc.dump());
    for (const auto& a : batch.actions) action_docs.push_back(a.doc.dump());
    Session session(*this);
    return Run(Mode::kTransaction, [&]() -> Status {
      if (batch.new_version) {
        PW_RETURN_IF_ERROR(PutNewVersion(*batch.new_version, declaration_doc));
      }
      if (batch.fence) PW_RETURN_IF_ERROR(CheckFence(*batch.fence));
      for (const auto& [k, want] : batch.kv_expect) {
        PW_ASSIGN_OR_RETURN(PgResult r,
                            Query("SELECT value FROM kv WHERE key = $1 FOR UPDATE", {k}));
        std::optional<std::string> have;
        if (PQntuples(r.get()) > 0) have = Text(r.get(), 0, 0);
        if (have != want) return RowConflict("Key", k);
      }
      for (size_t i = 0; i < batch.executions.size(); ++i) {
        const ExecutionRow& e = batch.executions[i];
        PW_RETURN_IF_ERROR(WriteVersioned(
            "Execution", e.id, e.version,
            "INSERT INTO executions (id, pipeline, status, started, updated, doc) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET "
            "status = excluded.status, updated = excluded.updated, doc = excluded.doc, "
            "version = executions.version + 1",
            "INSERT INTO executions (id, pipeline, status, started, updated, doc) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
            "UPDATE executions SET status = $3, updated = $5, doc = $6, version = version + 1 "
            "WHERE id = $1 AND version = $7 AND $2::text IS NOT NULL "
            "AND $4::double precision IS NOT NULL",
            {e.id, e.pipeline, e.status, e.started, e.updated, execution_docs[i], e.version}));
      }
      for (size_t i = 0; i < batch.actions.size(); ++i) {
        const ActionExecutionRow& a = batch.actions[i];
        PW_RETURN_IF_ERROR(WriteVersioned(
            "Action execution", a.id, a.version,
            "INSERT INTO action_executions (id, execution_id, pipeline, stage, action, "
            "status, started, updated, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
            "updated = excluded.updated, doc = excluded.doc, "
            "version = action_executions.version + 1",
            "INSERT INTO action_executions (id, execution_id, pipeline, stage, action, "
            "status, started, updated, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (id) DO NOTHING",
            "UPDATE action_executions SET status = $6, updated = $8, doc = $9, "
            "version = version + 1 WHERE id = $1 AND version = $10 AND $2::text IS NOT NULL "
            "AND $3::text IS NOT NULL AND $4::text IS NOT NULL AND $5::text IS NOT NULL "
            "AND $7::double precision IS NOT NULL",
            {a.id, a.execution_id, a.pipeline, a.stage, a.action, a.status, a.started, a.updated,
             action_docs[i], a.version}));
      }
      for (const auto& [k, v] : batch.kv_inserts) {
        PW_ASSIGN_OR_RETURN(PgResult r, Query("INSERT INTO kv (key, value) VALUES ($1, $2) "
                                              "ON CONFLICT (key) DO NOTHING",
                                              {k, v}));
        if (Affected(r.get()) != 1) {
          return AlreadyExists("Key " + k + " exists already.", "DuplicateKeyException");
        }
      }
      for (const auto& [k, v] : batch.kv) PW_RETURN_IF_ERROR(Upsert(k, v));
      for (const auto& k : batch.kv_deletes) {
        PW_RETURN_IF_ERROR(Query("DELETE FROM kv WHERE key = $1", {k}).status());
      }
      return Status::Ok();
    });
  }

  Result<std::vector<ExecutionRow>> ListExecutions(const std::string& pipeline) override {
    Session session(*this);
    std::vector<ExecutionRow> out;
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      out.clear();
      return Executions(
          pipeline.empty()
              ? Query("SELECT " PW_EXECUTION_COLUMNS " FROM executions ORDER BY seq DESC", {})
              : Query("SELECT " PW_EXECUTION_COLUMNS
                      " FROM executions WHERE pipeline = $1 ORDER BY seq DESC",
                      {pipeline}),
          &out);
    }));
    return out;
  }

  Result<std::vector<ActionExecutionRow>> ListActionExecutions(
      const std::string& pipeline, const std::string& execution_id) override {
    Session session(*this);
    std::vector<ActionExecutionRow> out;
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      out.clear();
      return ActionExecutions(
          execution_id.empty()
              ? Query("SELECT " PW_ACTION_COLUMNS
                      " FROM action_executions WHERE pipeline = $1 ORDER BY seq DESC",
                      {pipeline})
              : Query("SELECT " PW_ACTION_COLUMNS
                      " FROM action_executions WHERE pipeline = $1 AND execution_id = $2 "
                      "ORDER BY seq DESC",
                      {pipeline, execution_id}),
          &out);
    }));
    return out;
  }

  Result<std::vector<ActionExecutionRow>> ListActionExecutionsOf(
      const std::string& pipeline, const std::vector<std::string>& execution_ids,
      const std::string& stage, Docs docs) override {
    std::vector<ActionExecutionRow> out;
    if (execution_ids.empty()) return out;
    // One text[] parameter: {"id","id",...}, each element quoted and escaped.
    std::string ids = "{";
    for (const std::string& id : execution_ids) {
      if (ids.size() > 1) ids += ',';
      ids += '"';
      for (char c : id) {
        if (c == '"' || c == '\\') ids += '\\';
        ids += c;
      }
      ids += '"';
    }
    ids += '}';
    Session session(*this);
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      out.clear();
      return ActionExecutions(
          stage.empty()
              ? Query("SELECT " PW_ACTION_COLUMNS " FROM action_executions WHERE pipeline = $1 "
                      "AND execution_id = ANY($2::text[]) ORDER BY seq DESC",
                      {pipeline, ids})
              : Query("SELECT " PW_ACTION_COLUMNS " FROM action_executions WHERE pipeline = $1 "
                      "AND execution_id = ANY($2::text[]) AND stage = $3 ORDER BY seq DESC",
                      {pipeline, ids, stage}),
          &out, docs);
    }));
    return out;
  }

  Result<std::vector<ExecutionRow>> ListExecutionsPage(const std::string& pipeline, size_t limit,
                                                       const std::string& before_id,
                                                       Docs docs) override {
    Session session(*this);
    std::vector<ExecutionRow> out;
    const std::string max = std::to_string(limit);
    if (before_id.empty()) {
      PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
        out.clear();
        return Executions(
            Query("SELECT " PW_EXECUTION_COLUMNS " "
                  "FROM executions WHERE pipeline = $1 ORDER BY seq DESC LIMIT $2::bigint",
                  {pipeline, max}),
            &out, docs);
      }));
      return out;
    }
    // The cursor, then the page after it (a cursor removed in between reads
    // as an empty page).
    std::optional<std::string> seq;
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      PW_ASSIGN_OR_RETURN(PgResult r,
                          Query("SELECT seq FROM executions WHERE id = $1 AND pipeline = $2",
                                {before_id, pipeline}));
      seq.reset();
      if (PQntuples(r.get()) > 0) seq = Text(r.get(), 0, 0);
      return Status::Ok();
    }));
    if (!seq) {
      return NotFound("No execution " + before_id + " in pipeline " + pipeline + ".",
                      "InvalidNextTokenException");
    }
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      out.clear();
      return Executions(Query("SELECT " PW_EXECUTION_COLUMNS " FROM executions "
                              "WHERE pipeline = $1 AND seq < $2::bigint ORDER BY seq DESC "
                              "LIMIT $3::bigint",
                              {pipeline, *seq, max}),
                        &out, docs);
    }));
    return out;
  }
  Result<std::vector<ExecutionRow>> ListExecutionsByUpdate(const std::string& pipeline,
                                                           size_t limit,
                                                           EpochSeconds before_updated,
                                                           const std::string& before_id) override {
    Session session(*this);
    std::vector<ExecutionRow> out;
    const std::string max = std::to_string(limit);
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      out.clear();
      if (before_id.empty()) {
        return Executions(Query("SELECT " PW_EXECUTION_COLUMNS " FROM executions "
                                "WHERE pipeline = $1 ORDER BY updated DESC, id DESC "
                                "LIMIT $2::bigint",
                                {pipeline, max}),
                          &out);
      }
      return Executions(
          Query("SELECT " PW_EXECUTION_COLUMNS " FROM executions WHERE pipeline = $1 "
                "AND (updated < $2::double precision OR (updated = $2::double precision "
                "AND id < $3)) ORDER BY updated DESC, id DESC LIMIT $4::bigint",
                {pipeline, before_updated, before_id, max}),
          &out);
    }));
    return out;
  }
  Result<std::vector<ExecutionRow>> ListOldestExecutions(const std::string& pipeline,
                                                         size_t limit) override {
    Session session(*this);
    std::vector<ExecutionRow> out;
    const std::string max = std::to_string(limit);
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      out.clear();
      return Executions(Query("SELECT " PW_EXECUTION_COLUMNS " FROM executions "
                              "WHERE pipeline = $1 ORDER BY seq ASC LIMIT $2::bigint",
                              {pipeline, max}),
                        &out);
    }));
    return out;
  }
  Result<std::vector<ExecutionRow>> ListActiveExecutions(const std::string& pipeline) override {
    Session session(*this);
    std::vector<ExecutionRow> out;
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      out.clear();
      return Executions(Query("SELECT " PW_EXECUTION_COLUMNS " FROM executions "
                              "WHERE pipeline = $1 AND status IN ('InProgress', 'Stopping') "
                              "ORDER BY seq DESC",
                              {pipeline}),
                        &out);
    }));
    return out;
  }
  Result<std::optional<ExecutionRow>> GetExecution(const std::string& pipeline,
                                                   const std::string& id) override {
    Session session(*this);
    std::vector<ExecutionRow> out;
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      out.clear();
      return Executions(Query("SELECT " PW_EXECUTION_COLUMNS " FROM executions "
                              "WHERE id = $1 AND pipeline = $2",
                              {id, pipeline}),
                        &out);
    }));
    if (out.empty()) return std::optional<ExecutionRow>();
    return std::optional<ExecutionRow>(std::move(out.front()));
  }
  Result<std::optional<std::string>> PipelineOfActionExecution(const std::string& id) override {
    Session session(*this);
    std::optional<std::string> out;
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      out.reset();
      PW_ASSIGN_OR_RETURN(PgResult r,
                          Query("SELECT pipeline FROM action_executions WHERE id = $1", {id}));
      if (PQntuples(r.get()) > 0) out = std::string(PQgetvalue(r.get(), 0, 0));
      return Status::Ok();
    }));
    return out;
  }
  Result<int64_t> CountExecutions(const std::string& pipeline) override {
    Session session(*this);
    int64_t n = 0;
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      PW_ASSIGN_OR_RETURN(PgResult r,
                          Query("SELECT COUNT(*) FROM executions WHERE pipeline = $1", {pipeline}));
      n = std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10);
      return Status::Ok();
    }));
    return n;
  }
  Status DeleteExecutions(const std::string& pipeline,
                          const std::vector<std::string>& ids) override {
    if (ids.empty()) return Status::Ok();
    Session session(*this);
    return Run(Mode::kTransaction, [&]() -> Status {
      for (const auto& id : ids) {
        PW_RETURN_IF_ERROR(
            Query("DELETE FROM action_executions WHERE execution_id = $1 AND pipeline = $2",
                  {id, pipeline})
                .status());
        PW_RETURN_IF_ERROR(
            Query("DELETE FROM executions WHERE id = $1 AND pipeline = $2", {id, pipeline})
                .status());
      }
      return Status::Ok();
    });
  }
  Result<std::optional<int64_t>> ChangeStamp(const std::string& pipeline) override {
    Session session(*this);
    std::optional<int64_t> out;
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      PW_ASSIGN_OR_RETURN(
          PgResult r, Query("SELECT stamp FROM pipeline_changes WHERE pipeline = $1", {pipeline}));
      out.reset();
      if (PQntuples(r.get()) > 0) out = Int64(r.get(), 0, 0);
      return Status::Ok();
    }));
    return out;
  }

  Result<std::optional<std::string>> GetKv(const std::string& key) override {
    Session session(*this);
    std::optional<std::string> out;
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      PW_ASSIGN_OR_RETURN(PgResult r, Query("SELECT value FROM kv WHERE key = $1", {key}));
      out.reset();
      if (PQntuples(r.get()) > 0) out = Text(r.get(), 0, 0);
      return Status::Ok();
    }));
    return out;
  }

  Status PutKv(const std::string& key, const std::string& value) override {
    Session session(*this);
    return Run(Mode::kTransaction, [&] { return Upsert(key, value); });
  }

  Status DeleteKvPrefix(const std::string& prefix) override {
    Session session(*this);
    return Run(Mode::kTransaction, [&] {
      // A range of the key's index (COLLATE "C": bytes). Every stored key
      // is UTF-8 without NUL, so none starts with a prefix that is not.
      if (!IsUtf8(prefix) || prefix.find('\0') != std::string::npos) return Status::Ok();
      auto end = Utf8PrefixEnd(prefix);
      if (!end) return Query("DELETE FROM kv WHERE key >= $1", {prefix}).status();
      return Query("DELETE FROM kv WHERE key >= $1 AND key < $2", {prefix, *end}).status();
    });
  }

  Result<std::vector<std::pair<std::string, std::string>>> ScanKv(const KvScan& scan) override {
    using Rows = std::vector<std::pair<std::string, std::string>>;
    Rows out;
    // Parameters must be UTF-8 without NUL, as every stored key is: a
    // client's marker that is not becomes the nearest such bound (exact, or
    // with a few rows before the start to drop here).
    bool exact = true;
    std::optional<KvScan> q = Utf8StorableScan(scan, &exact);
    if (!q) return out;
    const auto end = Utf8PrefixEnd(q->prefix);
    static constexpr const char* kSql[2][2] = {
        {"SELECT key, value FROM kv WHERE key > $1 ORDER BY key LIMIT $2",
         "SELECT key, value FROM kv WHERE key > $1 AND key < $3 ORDER BY key LIMIT $2"},
        {"SELECT key, value FROM kv WHERE key >= $1 ORDER BY key LIMIT $2",
         "SELECT key, value FROM kv WHERE key >= $1 AND key < $3 ORDER BY key LIMIT $2"}};
    Session session(*this);
    for (;;) {
      const auto lower = KvLowerBound(*q, Utf8PrefixEnd);
      if (!lower) break;
      const size_t want = scan.limit == 0 ? 0 : scan.limit - out.size();
      const std::optional<int> limit = want == 0 || want > static_cast<size_t>(INT32_MAX)
                                           ? std::nullopt
                                           : std::optional<int>(static_cast<int>(want));
      const char* sql = kSql[lower->inclusive][end.has_value()];
      Rows rows;
      PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
        PW_ASSIGN_OR_RETURN(PgResult r, end ? Query(sql, {lower->bound, limit, *end})
                                            : Query(sql, {lower->bound, limit}));
        rows.clear();
        for (int i = 0; i < PQntuples(r.get()); ++i) {
          rows.emplace_back(Text(r.get(), i, 0), Text(r.get(), i, 1));
        }
        return Status::Ok();
      }));
      const size_t n = rows.size();
      std::string last = n > 0 ? rows.back().first : "";
      for (auto& row : rows) {
        if (!exact) {
          if (!KvStartAdmits(scan, row.first)) continue;
          exact = true;  // Every later key is admitted too.
        }
        out.push_back(std::move(row));
      }
      // Done: all was read (no limit, or fewer rows than asked), or the page
      // is full. Else the dropped rows took places: read on after them.
      if (!limit || n < want || out.size() == scan.limit) break;
      q->start = std::move(last);
      q->from = KvFrom::kAfter;
    }
    return out;
  }

  Status AppendActionLog(const ActionLogChunk& chunk) override {
    const std::string start = std::to_string(chunk.offset);
    Session session(*this);
    // One statement: atomic by itself, and an upsert needs no SERIALIZABLE.
    return Run(Mode::kSingleStatement, [&]() -> Status {
      return QueryRaw(
                 "INSERT INTO action_logs (action_execution_id, start, pipeline, execution_id, "
                 "bytes) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (action_execution_id, start) "
                 "DO UPDATE SET bytes = excluded.bytes "
                 "WHERE length(excluded.bytes) > length(action_logs.bytes)",
                 {chunk.action_execution_id, start, chunk.pipeline, chunk.execution_id},
                 &chunk.bytes, 0)
          .status();
    });
  }

  Result<std::optional<std::string>> ReadActionLog(const std::string& action_execution_id,
                                                   uint64_t offset, size_t max_bytes) override {
    const std::string from = std::to_string(offset);
    Session session(*this);
    std::optional<std::string> out;
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      // Binary results: bytes raw, start as its text (text is the same in both formats).
      PW_ASSIGN_OR_RETURN(
          PgResult r,
          QueryRaw("SELECT start::text, bytes FROM action_logs WHERE action_execution_id = $1 "
                   "AND start + length(bytes) > $2::bigint ORDER BY action_logs.start",
                   {action_execution_id, from}, nullptr, 1));
      out.reset();
      std::string text;
      uint64_t next = offset;
      for (int i = 0; i < PQntuples(r.get()) && text.size() < max_bytes; ++i) {
        uint64_t start = 0;
        const char* p = PQgetvalue(r.get(), i, 0);
        std::from_chars(p, p + PQgetlength(r.get(), i, 0), start);
        if (start > next) break;  // A gap: serve what is contiguous.
        const size_t len = static_cast<size_t>(PQgetlength(r.get(), i, 1));
        const size_t skip = static_cast<size_t>(next - start);
        if (skip >= len) continue;
        const size_t take = std::min(len - skip, max_bytes - text.size());
        text.append(PQgetvalue(r.get(), i, 1) + skip, take);
        next += take;
      }
      if (PQntuples(r.get()) == 0) {
        PW_ASSIGN_OR_RETURN(
            PgResult any, Query("SELECT 1 FROM action_logs WHERE action_execution_id = $1 LIMIT 1",
                                {action_execution_id}));
        if (PQntuples(any.get()) == 0) return Status::Ok();
      }
      out = std::move(text);
      return Status::Ok();
    }));
    return out;
  }

  Status DeleteActionLogs(const std::vector<std::string>& execution_ids) override {
    Session session(*this);
    return Run(Mode::kTransaction, [&]() -> Status {
      for (const auto& id : execution_ids) {
        PW_RETURN_IF_ERROR(Query("DELETE FROM action_logs WHERE execution_id = $1", {id}).status());
      }
      return Status::Ok();
    });
  }

  Status Ping() override {
    Session session(*this);
    return Run(Mode::kSingleStatement, [&] { return Query("SELECT 1", {}).status(); });
  }

  Status Heartbeat(const std::string& id, const std::string& url) override {
    Session session(*this);
    return Run(Mode::kTransaction, [&] {
      return Query("INSERT INTO servers (id, url, heartbeat) VALUES ($1, $2, " PW_DB_NOW
                   ") ON CONFLICT (id) DO UPDATE SET url = excluded.url, "
                   "heartbeat = excluded.heartbeat",
                   {id, url})
          .status();
    });
  }

  Result<std::vector<ServerRecord>> ListServers() override {
    Session session(*this);
    std::vector<ServerRecord> out;
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      PW_ASSIGN_OR_RETURN(PgResult r, Query("SELECT id, url, heartbeat, " PW_DB_NOW
                                            " - heartbeat FROM servers ORDER BY id",
                                            {}));
      out.clear();
      for (int i = 0; i < PQntuples(r.get()); ++i) {
        out.push_back({Text(r.get(), i, 0), Text(r.get(), i, 1), Double(r.get(), i, 2),
                       Double(r.get(), i, 3)});
      }
      return Status::Ok();
    }));
    return out;
  }

  Status RemoveServer(const std::string& id) override {
    Session session(*this);
    return Run(Mode::kTransaction, [&]() -> Status {
      PW_RETURN_IF_ERROR(Query("DELETE FROM servers WHERE id = $1", {id}).status());
      return Query("UPDATE leases SET owner = '', expires = 0 WHERE owner = $1", {id}).status();
    });
  }

  Result<std::vector<Lease>> ListLeases() override {
    Session session(*this);
    std::vector<Lease> out;
    PW_RETURN_IF_ERROR(Run(Mode::kSingleStatement, [&]() -> Status {
      PW_ASSIGN_OR_RETURN(PgResult r,
                          Query("SELECT pipeline, owner, epoch, expires, expires < " PW_DB_NOW
                                " FROM leases ORDER BY pipeline",
                                {}));
      out.clear();
      for (int i = 0; i < PQntuples(r.get()); ++i) {
        out.push_back({Text(r.get(), i, 0), Text(r.get(), i, 1), Int64(r.get(), i, 2),
                       Double(r.get(), i, 3), Text(r.get(), i, 4) == "t"});
      }
      return Status::Ok();
    }));
    return out;
  }

  Result<Lease> AcquireLease(const std::string& pipeline, const std::string& owner,
                             double seconds) override {
    Session session(*this);
    Lease out;
    PW_RETURN_IF_ERROR(Run(Mode::kTransaction, [&]() -> Status {
      PW_ASSIGN_OR_RETURN(PgResult p, Query("SELECT 1 FROM pipelines WHERE name = $1", {pipeline}));
      if (PQntuples(p.get()) == 0) return PipelineNotFound(pipeline);
      // Free (no row or no owner) or expired: take it, one epoch further.
      PW_ASSIGN_OR_RETURN(
          PgResult r,
          Query("INSERT INTO leases (pipeline, owner, epoch, expires) VALUES ($1, $2, 1, " PW_DB_NOW
                " + $3) ON CONFLICT (pipeline) DO UPDATE SET owner = excluded.owner, "
                "epoch = leases.epoch + 1, expires = excluded.expires "
                "WHERE leases.owner = '' OR leases.expires < " PW_DB_NOW
                " RETURNING epoch, expires",
                {pipeline, owner, seconds}));
      if (PQntuples(r.get()) == 0) {
        return Aborted("The lease of pipeline " + pipeline + " is held by another server.",
                       "LeaseHeldException");
      }
      out = {pipeline, owner, Int64(r.get(), 0, 0), Double(r.get(), 0, 1), false};
      return Status::Ok();
    }));
    return out;
  }

  Status RenewLease(const std::string& pipeline, const std::string& owner, int64_t epoch,
                    double seconds) override {
    Session session(*this);
    return Run(Mode::kTransaction, [&]() -> Status {
      PW_ASSIGN_OR_RETURN(PgResult r, Query("UPDATE leases SET expires = " PW_DB_NOW
                                            " + $4 WHERE pipeline = $1 AND owner = $2 "
                                            "AND epoch = $3",
                                            {pipeline, owner, epoch, seconds}));
      if (Affected(r.get()) != 1) return LeaseLost(pipeline);
      return Status::Ok();
    });
  }

  Status ReleaseLease(const std::string& pipeline, const std::string& owner,
                      int64_t epoch) override {
    Session session(*this);
    return Run(Mode::kTransaction, [&]() -> Status {
      return Query(
                 "UPDATE leases SET owner = '', expires = 0 WHERE pipeline = $1 "
                 "AND owner = $2 AND epoch = $3",
                 {pipeline, owner, epoch})
          .status();
    });
  }

 private:
  static Status LeaseLost(const std::string& pipeline) {
    return Aborted("This server no longer holds the lease of pipeline " + pipeline +
                       "; another server drives it now.",
                   "LeaseLostException");
  }
  // Inside a transaction: the lease row still holds the fence's owner and
  // epoch, and stays so until the commit (the row is locked).
  Status CheckFence(const Fence& f) {
    PW_ASSIGN_OR_RETURN(
        PgResult r,
        Query("SELECT owner, epoch FROM leases WHERE pipeline = $1 FOR UPDATE", {f.pipeline}));
    if (PQntuples(r.get()) == 0 || Text(r.get(), 0, 0) != f.owner ||
        Int64(r.get(), 0, 1) != f.epoch) {
      return LeaseLost(f.pipeline);
    }
    return Status::Ok();
  }
  // One row write by `version` (ExecutionRow::version): `upsert` unchecked,
  // `insert` (ON CONFLICT DO NOTHING) when the row must be new, `update`
  // (its last parameter the expected version) otherwise.
  Status WriteVersioned(const char* what, const std::string& id, int64_t version,
                        const char* upsert, const char* insert, const char* update,
                        std::initializer_list<Param> params) {
    if (version < 0) {
      std::vector<Param> first(params.begin(), params.end() - 1);
      return QueryV(upsert, first).status();
    }
    if (version == 0) {
      std::vector<Param> first(params.begin(), params.end() - 1);
      PW_ASSIGN_OR_RETURN(PgResult r, QueryV(insert, first));
      if (Affected(r.get()) != 1) return RowConflict(what, id);
      return Status::Ok();
    }
    std::vector<Param> all(params.begin(), params.end());
    PW_ASSIGN_OR_RETURN(PgResult r, QueryV(update, all));
    if (Affected(r.get()) != 1) return RowConflict(what, id);
    return Status::Ok();
  }
  Result<PgResult> QueryV(const char* sql, const std::vector<Param>& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const Param& p : params) values.push_back(p.value());
    PgResult r(Exec(sql, static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0));
    return Check(std::move(r));
  }

  enum class Mode {
    kSingleStatement,  // One read statement: atomic by itself, autocommit.
    kTransaction,      // BEGIN ISOLATION LEVEL SERIALIZABLE ... COMMIT.
    // BEGIN ISOLATION LEVEL READ COMMITTED ... COMMIT, for work serialized by
    // an advisory lock: each statement must see what was committed before the
    // lock was granted, and a SERIALIZABLE snapshot is taken by the very
    // statement that waits for the lock.
    kLockedTransaction,
  };
  // Why the last database call of the current attempt failed.
  enum class Failure {
    kNone,              // No database error (the body may still return a domain error).
    kConflict,          // 40001/40P01: the transaction was rolled back; rerun it.
    kConnectionLost,    // The connection broke before COMMIT was sent: nothing happened.
    kLostDuringCommit,  // The connection broke during COMMIT: the outcome is unknown.
    kOther,             // Any other error: not retried.
  };

  // Runs `body` once per attempt (it must start from scratch each time: assign
  // its outputs, never append across attempts), in a transaction when asked.
  // Returns the body's domain errors as they are; database errors per the
  // file comment.
  template <typename F>
  Status Run(Mode mode, F&& body) {
    Conn& c = Current();
    bool reset = false;
    for (int attempt = 1;; ++attempt) {
      if (PQstatus(c.pg) != CONNECTION_OK) {
        if (reset) return Unavailable("lost the connection to PostgreSQL: " + ConnError());
        reset = true;
        PQreset(c.pg);
        c.prepared.clear();  // A new session: the old one's statements are gone.
        if (PQstatus(c.pg) != CONNECTION_OK) {
          return Unavailable("cannot reconnect to PostgreSQL: " + ConnError());
        }
      }
      c.failure = Failure::kNone;
      Status s = mode == Mode::kSingleStatement ? body() : Transaction(mode, body);
      if (s.ok() || c.failure == Failure::kNone) return s;
      if (c.failure == Failure::kConflict && attempt < kMaxAttempts) {
        // Back off a random while, growing each time, so a competitor that keeps
        // winning (it did not have to wait) cannot starve this call.
        std::uniform_int_distribution<int> ms(0, 1 << attempt);
        std::this_thread::sleep_for(std::chrono::milliseconds(ms(c.rng)));
        continue;
      }
      if (c.failure == Failure::kConnectionLost && !reset) continue;  // Reset at the top.
      if (c.failure == Failure::kLostDuringCommit) {
        return Unavailable(
            "lost the connection to PostgreSQL while committing; the change may or may not "
            "have been applied: " +
            s.message());
      }
      return s;
    }
  }

  template <typename F>
  Status Transaction(Mode mode, F& body) {
    PW_RETURN_IF_ERROR(Script(mode == Mode::kTransaction ? "BEGIN ISOLATION LEVEL SERIALIZABLE"
                                                         : "BEGIN ISOLATION LEVEL READ COMMITTED"));
    Status s = body();
    if (!s.ok()) {
      // Best effort: if the connection is gone the server rolls back anyway.
      PQclear(PQexec(Current().pg, "ROLLBACK"));
      return s;
    }
    s = Script("COMMIT");
    Conn& c = Current();
    if (c.failure == Failure::kConnectionLost) c.failure = Failure::kLostDuringCommit;
    return s;
  }

  // Runs a statement with parameters; a non-OK result becomes a Status.
  Result<PgResult> Query(const char* sql, std::initializer_list<Param> params) {
    return QueryRaw(sql, params, nullptr, 0);
  }
  // Query with, when `bytes` is given, one more parameter after `params` in
  // binary format (a BYTEA value, any bytes), and results in text (0) or
  // binary (1) format.
  Result<PgResult> QueryRaw(const char* sql, std::initializer_list<Param> params,
                            const std::string* bytes, int result_format) {
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;
    values.reserve(params.size() + 1);
    for (const Param& p : params) values.push_back(p.value());
    lengths.assign(values.size(), 0);
    formats.assign(values.size(), 0);
    if (bytes != nullptr) {
      values.push_back(bytes->data());
      lengths.push_back(static_cast<int>(bytes->size()));
      formats.push_back(1);
    }
    PgResult r(Exec(sql, static_cast<int>(values.size()), values.data(), lengths.data(),
                    formats.data(), result_format));
    return Check(std::move(r));
  }

  // Runs SQL without parameters (several statements allowed): BEGIN, COMMIT,
  // migrations. Never pass values this way.
  Status Script(const char* sql) { return Check(PgResult(PQexec(Current().pg, sql))).status(); }

  Result<PgResult> Check(PgResult r) {
    ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    const char* state = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
    Conn& c = Current();
    if (PQstatus(c.pg) == CONNECTION_BAD) {
      c.failure = Failure::kConnectionLost;
    } else if (state && (std::strcmp(state, "40001") == 0 || std::strcmp(state, "40P01") == 0)) {
      c.failure = Failure::kConflict;
    } else {
      c.failure = Failure::kOther;
    }
    const char* primary = r ? PQresultErrorField(r.get(), PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    std::string msg = primary ? primary : ConnError();
    if (state) msg += std::string(" (SQLSTATE ") + state + ")";
    return Unavailable("PostgreSQL error: " + msg);
  }

  static std::string ConnError() {
    std::string msg = PQerrorMessage(Current().pg);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return msg.empty() ? "unknown error" : msg;
  }

  // Appends the execution rows of `r` (PW_EXECUTION_COLUMNS) to `out`, their
  // documents as `docs` says.
  Status Executions(Result<PgResult> r, std::vector<ExecutionRow>* out, Docs docs = Docs::kParsed) {
    if (!r.ok()) return r.status();
    const PGresult* res = r->get();
    for (int i = 0; i < PQntuples(res); ++i) {
      ExecutionRow& row = out->emplace_back(
          ExecutionRow{Text(res, i, 0), Text(res, i, 1), Text(res, i, 2), Double(res, i, 3),
                       Double(res, i, 4), nullptr, Int64(res, i, 6)});
      SetDoc(Text(res, i, 5), docs, &row.doc, &row.text);
    }
    return Status::Ok();
  }
  Status ActionExecutions(Result<PgResult> r, std::vector<ActionExecutionRow>* out,
                          Docs docs = Docs::kParsed) {
    if (!r.ok()) return r.status();
    const PGresult* res = r->get();
    for (int i = 0; i < PQntuples(res); ++i) {
      ActionExecutionRow& row = out->emplace_back(ActionExecutionRow{
          Text(res, i, 0), Text(res, i, 1), Text(res, i, 2), Text(res, i, 3), Text(res, i, 4),
          Text(res, i, 5), Double(res, i, 6), Double(res, i, 7), nullptr, Int64(res, i, 9)});
      SetDoc(Text(res, i, 8), docs, &row.doc, &row.text);
    }
    return Status::Ok();
  }
  Status Upsert(const std::string& key, const std::string& value) {
    return Query(
               "INSERT INTO kv (key, value) VALUES ($1, $2) "
               "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
               {key, value})
        .status();
  }
  // Inside a transaction: checks that `nv` follows the stored current version
  // (kNotFound, kAborted as Commit says) and writes it with `declaration_doc`
  // (nv.declaration, `version` set, serialized; nv.declaration is not read).
  Status PutNewVersion(const NewVersion& nv, const std::string& declaration_doc) {
    PW_ASSIGN_OR_RETURN(PgResult cur,
                        Query("SELECT current_version FROM pipelines WHERE name = $1", {nv.name}));
    if (PQntuples(cur.get()) == 0) return PipelineNotFound(nv.name);
    const int current = Int(cur.get(), 0, 0);
    if (current != nv.version - 1) return VersionConflict(nv.name, nv.version, current);
    PW_RETURN_IF_ERROR(
        Query("UPDATE pipelines SET current_version = $1, updated = $2 WHERE name = $3",
              {nv.version, nv.now, nv.name})
            .status());
    return InsertVersion(nv.name, nv.version, declaration_doc, nv.now);
  }
  Status InsertVersion(const std::string& name, int version, const std::string& declaration_doc,
                       EpochSeconds now) {
    return Query(
               "INSERT INTO pipeline_versions (name, version, declaration, created) "
               "VALUES ($1, $2, $3, $4)",
               {name, version, declaration_doc, now})
        .status();
  }
  Status PutTags(const std::string& arn, const std::vector<Tag>& tags) {
    for (const auto& t : tags) {
      PW_RETURN_IF_ERROR(Query("INSERT INTO tags (resource_arn, key, value) VALUES ($1, $2, $3) "
                               "ON CONFLICT (resource_arn, key) DO UPDATE SET value = "
                               "excluded.value",
                               {arn, t.key, t.value})
                             .status());
    }
    PW_ASSIGN_OR_RETURN(PgResult count,
                        Query("SELECT COUNT(*) FROM tags WHERE resource_arn = $1", {arn}));
    if (Int(count.get(), 0, 0) > 50) {
      return ResourceExhausted("A resource can have at most 50 tags; remove some first.",
                               "TooManyTagsException");
    }
    return Status::Ok();
  }
  // One statement, so the pipeline row and the version row come from one snapshot.
  Result<PipelineRecord> GetLocked(const std::string& name, std::optional<int> version) {
    PW_ASSIGN_OR_RETURN(
        PgResult r,
        Query("SELECT p.arn, p.current_version, p.created, p.updated, v.version, v.declaration "
              "FROM pipelines p LEFT JOIN pipeline_versions v ON v.name = p.name "
              "AND v.version = COALESCE($2::integer, p.current_version) WHERE p.name = $1",
              {name, version}));
    if (PQntuples(r.get()) == 0) {
      return PipelineNotFound(name);
    }
    PipelineRecord rec{
        name, Text(r.get(), 0, 0), Int(r.get(), 0, 1), Double(r.get(), 0, 2), Double(r.get(), 0, 3),
        {}};
    if (PQgetisnull(r.get(), 0, 4)) {
      return NotFound("Pipeline '" + name + "' has no version " +
                          std::to_string(version.value_or(rec.version)) +
                          "; its current version is " + std::to_string(rec.version) + ".",
                      "PipelineVersionNotFoundException");
    }
    rec.version = Int(r.get(), 0, 4);
    rec.declaration = ParseDoc(Text(r.get(), 0, 5));
    return rec;
  }

  // One connection of the pool and what belongs to its session. Used by one
  // call at a time (the Session holding it), so it needs no lock.
  struct Conn {
    explicit Conn(PGconn* p) : pg(p) {
      if (pg != nullptr) PQsetNoticeProcessor(pg, IgnoreNotice, nullptr);
    }
    ~Conn() { PQfinish(pg); }  // PQfinish(nullptr) does nothing.
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;

    PGconn* pg;  // nullptr only if libpq ran out of memory: reads as CONNECTION_BAD.
    Failure failure = Failure::kNone;              // Why the current attempt's last call failed.
    std::minstd_rand rng{std::random_device{}()};  // Back-off jitter.
    // Statements prepared in this session, by SQL text: their names.
    std::unordered_map<std::string, std::string> prepared;
  };

  // One call's hold on a connection of the pool: taken at the start of every
  // public method, given back at its end. While it lives, Current() on this
  // thread is its connection (the helpers below run on it).
  class Session {
   public:
    explicit Session(PostgresStore& store) : store_(store), conn_(store.Take()), outer_(current_) {
      current_ = conn_.get();
    }
    ~Session() {
      current_ = outer_;
      store_.Give(std::move(conn_));
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

   private:
    PostgresStore& store_;
    std::unique_ptr<Conn> conn_;
    Conn* outer_;
  };

  // The connection of the Session this thread is in.
  static Conn& Current() {
    PW_CHECK(current_ != nullptr);
    return *current_;
  }

  // An idle connection (the one given back last: under light load one
  // connection does everything), a new one while fewer than
  // max_connections_ are open, else waits for one to be given back.
  std::unique_ptr<Conn> Take() {
    {
      MutexLock lock(pool_mu_);
      while (idle_.empty() && open_ >= max_connections_) pool_cv_.Wait(pool_mu_);
      if (!idle_.empty()) {
        std::unique_ptr<Conn> c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
      ++open_;
    }
    // Connecting takes a round trip or more: not under the lock. A failed
    // connection is kept all the same; Run() re-establishes it (PQreset) or
    // reports kUnavailable with libpq's reason.
    return std::make_unique<Conn>(PQconnectdb(conninfo_.c_str()));
  }
  void Give(std::unique_ptr<Conn> c) {
    MutexLock lock(pool_mu_);
    idle_.push_back(std::move(c));
    pool_cv_.NotifyOne();
  }

  // Runs `sql` as a statement prepared once per session (parsed and planned
  // once, not at every call; PostgreSQL re-plans it by itself after a schema
  // change). Every statement of this store is literal text, so the map stays
  // small; past kMaxPrepared statements run unprepared.
  static PGresult* Exec(const char* sql, int n, const char* const* values, const int* lengths,
                        const int* formats, int result_format) {
    Conn& c = Current();
    auto it = c.prepared.find(sql);
    if (it == c.prepared.end()) {
      if (c.prepared.size() >= kMaxPrepared) {
        return PQexecParams(c.pg, sql, n, nullptr, values, lengths, formats, result_format);
      }
      std::string name = "pw_" + std::to_string(c.prepared.size() + 1);
      PgResult prepared(PQprepare(c.pg, name.c_str(), sql, n, nullptr));
      if (!prepared || PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
        return prepared.release();  // Its error is the statement's (Check reads it).
      }
      it = c.prepared.emplace(sql, std::move(name)).first;
    }
    return PQexecPrepared(c.pg, it->second.c_str(), n, values, lengths, formats, result_format);
  }

  const std::string conninfo_;
  const int max_connections_;
  Mutex pool_mu_;
  CondVar pool_cv_;  // A connection was given back.
  std::vector<std::unique_ptr<Conn>> idle_ GUARDED_BY(pool_mu_);
  int open_ GUARDED_BY(pool_mu_) = 0;  // Connections in idle_ or held by a Session.
  static inline thread_local Conn* current_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& conninfo, int max_connections) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return Unavailable("cannot connect to PostgreSQL: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    PQfinish(conn);
    return Unavailable("cannot connect to PostgreSQL: " + msg);
  }
  auto store = std::make_unique<PostgresStore>(conninfo, max_connections, conn);
  PW_RETURN_IF_ERROR(store->Migrate());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace pw::store
