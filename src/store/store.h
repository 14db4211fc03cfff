#pragma once

// Store: the durable state of Pipewright behind one interface, so SQLite (the
// embedded default) and PostgreSQL (several servers) are interchangeable.
// Every mutating call is one transaction: it happens entirely or not at all.
// Implementations are thread-safe.
//
//   auto store = pw::store::OpenSqliteStore(data_dir + "/pipewright.db");
//   if (!store.ok()) return store.status();
//   auto rec = (*store)->GetPipeline("MyFirstPipeline", std::nullopt);

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "store/kv_range.h"

namespace pw::store {

struct PipelineRecord {
  std::string name;
  std::string arn;
  int version = 0;  // Current version (GetPipeline without version) or the one asked for.
  EpochSeconds created = 0;
  EpochSeconds updated = 0;
  nlohmann::json declaration;  // The PipelineDeclaration, `version` member set.
};

struct Tag {
  std::string key;
  std::string value;
};

// How a read returns the rows' documents: parsed (`doc`), or as stored
// (`text`, `doc` left null) for a reader that keeps parsed forms by row id
// and version (engine/doc_cache.h) and so skips the parse of a row it has.
enum class Docs { kParsed, kText };

// One execution's persisted document plus the action executions that changed
// with it. Engine-defined JSON; the store indexes the columns named here.
struct ExecutionRow {
  std::string id;
  std::string pipeline;
  std::string status;
  EpochSeconds started = 0;
  EpochSeconds updated = 0;
  nlohmann::json doc;
  // Optimistic concurrency (version column). Read: the stored version (1 for
  // a row written once). Written by Commit: -1 writes unchecked; n >= 0 writes
  // only if the stored version is n (0: the row must not exist), else the
  // whole batch fails with kAborted. Every write stores the old version + 1.
  int64_t version = -1;
  std::string text = {};  // Read with Docs::kText: the document as stored (doc is null).
};

struct ActionExecutionRow {
  std::string id;
  std::string execution_id;
  std::string pipeline;
  std::string stage;
  std::string action;
  std::string status;
  EpochSeconds started = 0;
  EpochSeconds updated = 0;
  nlohmann::json doc;
  int64_t version = -1;   // As ExecutionRow::version.
  std::string text = {};  // As ExecutionRow::text.
};

// Several servers on one database (PostgreSQL): each pipeline's engine work
// is done by the server holding its lease. `epoch` grows every time the lease
// is taken (from nobody, or from an expired holder) and is the fencing token
// of every write its holder makes. Times are the database's clock.
struct Lease {
  std::string pipeline;
  std::string owner;  // Server id.
  int64_t epoch = 0;
  EpochSeconds expires = 0;
  bool expired = false;  // expires < the database's clock when read.
};

// A Batch written only while `owner` still holds `pipeline`'s lease at
// `epoch` (expired or not: nobody else has taken it then).
struct Fence {
  std::string pipeline;
  std::string owner;
  int64_t epoch = 0;
};

// One server sharing the database, as it last reported itself.
struct ServerRecord {
  std::string id;
  std::string url;  // How the other servers reach it (serve --advertise-url).
  EpochSeconds heartbeat = 0;
  double age_seconds = 0;  // Since the heartbeat, by the database's clock, when read.
};

// A pipeline's next declaration version, written by Commit together with the
// executions it changed (UpdatePipeline and rule 69 in one transaction).
struct NewVersion {
  std::string name;
  int version = 0;             // Must be the stored current version + 1.
  nlohmann::json declaration;  // Stored with its `version` member set to `version`.
  EpochSeconds now = 0;        // The pipeline's `updated` time.
};

// Everything one engine decision changes, written by Store::Commit in one
// transaction: all of it or none of it.
struct Batch {
  std::optional<NewVersion> new_version;
  std::vector<ExecutionRow> executions;                 // Inserted or replaced.
  std::vector<ActionExecutionRow> actions;              // Inserted or replaced.
  std::vector<std::pair<std::string, std::string>> kv;  // Put, after the rows above.
  std::vector<std::string> kv_deletes;                  // Removed last (absent keys are fine).
  // Checked first, in the same transaction: kAborted (LeaseLostException)
  // unless the lease row holds fence->owner and fence->epoch. PostgreSQL
  // only (SQLite: kFailedPrecondition).
  std::optional<Fence> fence;
  // Inserted only where absent (unique keys, e.g. idempotency tokens): an
  // existing key fails the batch with kAlreadyExists (wire name
  // DuplicateKeyException), its message naming the key.
  std::vector<std::pair<std::string, std::string>> kv_inserts;
  // Compare-and-set: each key's stored value must equal the given one
  // (nullopt: the key must be absent), else kAborted (ConcurrentModificationException).
  // Checked before any write; combine with `kv` puts of the same keys.
  std::vector<std::pair<std::string, std::optional<std::string>>> kv_expect;
  bool empty() const {
    return !new_version && executions.empty() && actions.empty() && kv.empty() &&
           kv_deletes.empty() && kv_inserts.empty() && kv_expect.empty() && !fence;
  }
};

// One piece of an action execution's log (Store::AppendActionLog): the bytes
// of the log file from byte `offset` on, as the server running the action
// shipped them (engine/log_shipper.h).
struct ActionLogChunk {
  std::string action_execution_id;
  std::string pipeline;      // DeletePipeline removes the pipeline's logs.
  std::string execution_id;  // DeleteActionLogs (retention) removes by execution.
  uint64_t offset = 0;
  std::string bytes;
};

class Store {
 public:
  virtual ~Store() = default;

  // Creates version 1 of a pipeline with its tags. kAlreadyExists
  // (PipelineNameInUseException) if the name is taken; kResourceExhausted
  // (LimitExceededException) past `max_pipelines`. `declaration.version` is set to 1.
  virtual Result<PipelineRecord> CreatePipeline(const std::string& name, const std::string& arn,
                                                nlohmann::json declaration,
                                                const std::vector<Tag>& tags, EpochSeconds now,
                                                int max_pipelines) = 0;

  // Stores `declaration` as the next version (current + 1, whatever it is by
  // then) and returns it. kNotFound (PipelineNotFoundException) if the
  // pipeline does not exist. Commit with a NewVersion does the same together
  // with the executions it changes, and refuses a version it did not expect.
  virtual Result<PipelineRecord> UpdatePipeline(const std::string& name, nlohmann::json declaration,
                                                EpochSeconds now) = 0;

  // The current version, or `version` when given. kNotFound with
  // PipelineNotFoundException / PipelineVersionNotFoundException.
  virtual Result<PipelineRecord> GetPipeline(const std::string& name,
                                             std::optional<int> version) = 0;

  // All pipelines (current versions), sorted by name.
  virtual Result<std::vector<PipelineRecord>> ListPipelines() = 0;

  // Removes the pipeline, every version, its tags, executions and action logs.
  // kNotFound (PipelineNotFoundException) if absent.
  virtual Status DeletePipeline(const std::string& name) = 0;

  // Tags of a resource ARN, sorted by key.
  virtual Result<std::vector<Tag>> ListTags(const std::string& arn) = 0;
  // Adds or replaces tags. kResourceExhausted (TooManyTagsException) past 50.
  virtual Status TagResource(const std::string& arn, const std::vector<Tag>& tags) = 0;
  virtual Status UntagResource(const std::string& arn, const std::vector<std::string>& keys) = 0;

  // Writes `batch` in one transaction, in this order: the new version, the
  // executions, the action executions, the key/value puts, the key deletes.
  // With new_version: kNotFound (PipelineNotFoundException) if the pipeline
  // does not exist; kAborted (ConcurrentModificationException) if the stored
  // current version is not new_version->version - 1 (another writer got there
  // first: reload and decide again). Database errors are kUnavailable. On any
  // error nothing of `batch` is written. An empty batch writes nothing and is OK.
  virtual Status Commit(const Batch& batch) = 0;

  // Conveniences over Commit (they copy the rows into a Batch; new code builds
  // the Batch itself).
  Status SaveBatch(const std::vector<ExecutionRow>& executions,
                   const std::vector<ActionExecutionRow>& actions,
                   const std::vector<std::pair<std::string, std::string>>& kv) {
    Batch batch;
    batch.executions = executions;
    batch.actions = actions;
    batch.kv = kv;
    return Commit(batch);
  }
  Status SaveExecution(const ExecutionRow& execution,
                       const std::vector<ActionExecutionRow>& actions) {
    Batch batch;
    batch.executions = {execution};
    batch.actions = actions;
    return Commit(batch);
  }
  // Executions of `pipeline`, newest first. Empty pipeline = every pipeline.
  virtual Result<std::vector<ExecutionRow>> ListExecutions(const std::string& pipeline) = 0;
  // Action executions of a pipeline (optionally one execution), newest first.
  virtual Result<std::vector<ActionExecutionRow>> ListActionExecutions(
      const std::string& pipeline, const std::string& execution_id) = 0;
  // The action executions of several executions of `pipeline` in one read
  // (a history page's runs), newest first within each execution; with a
  // `stage`, only that stage's (ListPipelineExecutions needs only the first
  // stage's, for the source revisions; "": all), their documents as `docs`
  // says. The default reads them one execution at a time; SQLite filters in
  // the query, PostgreSQL answers in one query.
  virtual Result<std::vector<ActionExecutionRow>> ListActionExecutionsOf(
      const std::string& pipeline, const std::vector<std::string>& execution_ids,
      const std::string& stage, Docs docs) {
    std::vector<ActionExecutionRow> out;
    for (const std::string& id : execution_ids) {
      if (id.empty()) continue;  // "" would mean every execution.
      PW_ASSIGN_OR_RETURN(auto rows, ListActionExecutions(pipeline, id));
      for (auto& r : rows) {
        if (!stage.empty() && r.stage != stage) continue;
        if (docs == Docs::kText) {
          r.text = r.doc.dump();
          r.doc = nullptr;
        }
        out.push_back(std::move(r));
      }
    }
    return out;
  }

  // --- Paged history (issue 15): reads whose cost does not grow with the
  // pipeline's history, over the (pipeline, seq) indexes. The defaults below
  // go through ListExecutions (correct but linear); both stores override them.
  //
  // At most `limit` executions of `pipeline`, newest first, started before
  // the execution `before_id` (empty: from the newest). kNotFound
  // (InvalidNextTokenException) if `before_id` is not an execution of
  // `pipeline` (e.g. removed by retention meanwhile). Documents as `docs`
  // says.
  virtual Result<std::vector<ExecutionRow>> ListExecutionsPage(const std::string& pipeline,
                                                               size_t limit,
                                                               const std::string& before_id,
                                                               Docs docs);
  // At most `limit` executions of `pipeline`, oldest first (retention).
  virtual Result<std::vector<ExecutionRow>> ListOldestExecutions(const std::string& pipeline,
                                                                 size_t limit);
  // At most `limit` executions of `pipeline`, most recently updated first
  // (ties by id, descending), after the cursor (`updated`, `id`) in that
  // order; an empty `before_id` starts from the most recent. Over the
  // (pipeline, updated, id) index: ListRuleExecutions stops reading once the
  // executions left were updated before the rule runs it already has.
  virtual Result<std::vector<ExecutionRow>> ListExecutionsByUpdate(const std::string& pipeline,
                                                                   size_t limit,
                                                                   EpochSeconds before_updated,
                                                                   const std::string& before_id);
  // The executions of `pipeline` whose status is InProgress or Stopping,
  // newest first.
  virtual Result<std::vector<ExecutionRow>> ListActiveExecutions(const std::string& pipeline);
  // One execution of `pipeline`, or nullopt if it has none with that id.
  virtual Result<std::optional<ExecutionRow>> GetExecution(const std::string& pipeline,
                                                           const std::string& id);
  // How many executions `pipeline` has.
  virtual Result<int64_t> CountExecutions(const std::string& pipeline);
  // The pipeline of the action execution `id` (any pipeline), or nullopt if
  // no action execution has that id. By the id's unique index: the log route
  // authorizes a read of /logs/<id> against that pipeline.
  virtual Result<std::optional<std::string>> PipelineOfActionExecution(const std::string& id) = 0;
  // Removes executions `ids` of `pipeline` and their action executions, in
  // one transaction (ids of other pipelines or absent ones are skipped).
  virtual Status DeleteExecutions(const std::string& pipeline, const std::vector<std::string>& ids);
  // The pipeline's change stamp, for caches of reads of a pipeline another
  // server drives: a value that every committed write of its declaration,
  // metadata, executions, action executions or runtime state ("pstate/<name>")
  // replaces with one never used before (jobs, tags and other keys do not
  // count). nullopt: no stamp to go by (nothing written since the store had
  // stamps, or a store one server owns alone, SQLite: it answers nullopt).
  virtual Result<std::optional<int64_t>> ChangeStamp(const std::string& pipeline) {
    (void)pipeline;
    return std::optional<int64_t>();
  }

  // Small key/value state (idempotency tokens, transition states).
  virtual Result<std::optional<std::string>> GetKv(const std::string& key) = 0;
  virtual Status PutKv(const std::string& key, const std::string& value) = 0;
  // Removes `key`; OK if it is absent. A Commit of one kv_delete.
  Status DeleteKv(const std::string& key) {
    Batch batch;
    batch.kv_deletes = {key};
    return Commit(batch);
  }
  virtual Status DeleteKvPrefix(const std::string& prefix) = 0;
  // Every pair whose key starts with `prefix`, sorted by key (bytes).
  virtual Result<std::vector<std::pair<std::string, std::string>>> ListKv(
      const std::string& prefix) {
    return ScanKv(KvScan(prefix));
  }
  // The pairs of `scan` (store/kv_range.h) in byte order, read by the key's
  // index: a page costs its rows, not the prefix's.
  virtual Result<std::vector<std::pair<std::string, std::string>>> ScanKv(const KvScan& scan) = 0;

  // --- Action logs in the database, so any of several servers sharing it can
  // serve the log of an action another server ran (engine/log_shipper.h).
  // A log is a sequence of chunks keyed by their byte offset. The defaults
  // (stores without the table) answer kFailedPrecondition.
  //
  // Stores `chunk`. A chunk already stored at the same offset is replaced only
  // by a longer one (both are prefixes of the same file from that offset), so
  // an append retried after an unknown outcome is harmless. kUnavailable on
  // database errors.
  virtual Status AppendActionLog(const ActionLogChunk& chunk) {
    (void)chunk;
    return FailedPrecondition("this store keeps no action logs");
  }
  // At most `max_bytes` of the log of `action_execution_id` from byte
  // `offset` on, over contiguous chunks ("" when `offset` is at or past what
  // is stored); nullopt when nothing of that log is stored. kUnavailable on
  // database errors.
  virtual Result<std::optional<std::string>> ReadActionLog(const std::string& action_execution_id,
                                                           uint64_t offset, size_t max_bytes) {
    (void)action_execution_id, (void)offset, (void)max_bytes;
    return FailedPrecondition("this store keeps no action logs");
  }
  // Removes the logs of these executions (retention; DeletePipeline removes
  // a pipeline's logs itself). OK when there are none.
  virtual Status DeleteActionLogs(const std::vector<std::string>& execution_ids) {
    (void)execution_ids;
    return FailedPrecondition("this store keeps no action logs");
  }
  // A trivial read: OK when the database answers (GET /health's readiness).
  // Never writes.
  virtual Status Ping() { return GetKv("health/ping").status(); }
  // --- Several servers (PostgreSQL). The defaults, for stores one server
  // owns alone (SQLite), return kFailedPrecondition.
  // Records (inserts or refreshes) `id` with its url, heartbeat = now.
  virtual Status Heartbeat(const std::string& id, const std::string& url);
  // Every server that ever reported, by id.
  virtual Result<std::vector<ServerRecord>> ListServers();
  // Removes a server's row and frees its leases (a clean shutdown).
  virtual Status RemoveServer(const std::string& id);
  // Every lease row, by pipeline.
  virtual Result<std::vector<Lease>> ListLeases();
  // Takes `pipeline`'s lease for `owner` for `seconds` if it is free (no
  // row, or no owner) or expired: the epoch grows by one. kAborted if another
  // owner holds it unexpired, or if `owner` holds it already (renew instead).
  // kNotFound (PipelineNotFoundException) if the pipeline does not exist.
  virtual Result<Lease> AcquireLease(const std::string& pipeline, const std::string& owner,
                                     double seconds);
  // Extends the lease `owner` holds at `epoch` (expired or not) by `seconds`
  // from now; kAborted if the row no longer holds owner and epoch.
  virtual Status RenewLease(const std::string& pipeline, const std::string& owner, int64_t epoch,
                            double seconds);
  // Gives the lease up (owner cleared, epoch kept); OK if it was not held.
  virtual Status ReleaseLease(const std::string& pipeline, const std::string& owner, int64_t epoch);
};

inline Status Store::Heartbeat(const std::string&, const std::string&) {
  return FailedPrecondition("several servers need a PostgreSQL database (serve --database)");
}
inline Result<std::vector<ServerRecord>> Store::ListServers() {
  return std::vector<ServerRecord>{};
}
inline Status Store::RemoveServer(const std::string&) { return Status::Ok(); }
inline Result<std::vector<Lease>> Store::ListLeases() { return std::vector<Lease>{}; }
inline Result<Lease> Store::AcquireLease(const std::string&, const std::string&, double) {
  return FailedPrecondition("several servers need a PostgreSQL database (serve --database)");
}
inline Status Store::RenewLease(const std::string&, const std::string&, int64_t, double) {
  return FailedPrecondition("several servers need a PostgreSQL database (serve --database)");
}
inline Status Store::ReleaseLease(const std::string&, const std::string&, int64_t) {
  return Status::Ok();
}

// The linear defaults of the paged reads (wrappers and fakes inherit them).
inline Result<std::vector<ExecutionRow>> Store::ListExecutionsPage(const std::string& pipeline,
                                                                   size_t limit,
                                                                   const std::string& before_id,
                                                                   Docs docs) {
  PW_ASSIGN_OR_RETURN(auto all, ListExecutions(pipeline));
  std::vector<ExecutionRow> out;
  bool started = before_id.empty();
  for (auto& row : all) {
    if (!started) {
      started = row.id == before_id;
      continue;
    }
    if (out.size() == limit) break;
    if (docs == Docs::kText) {
      row.text = row.doc.dump();
      row.doc = nullptr;
    }
    out.push_back(std::move(row));
  }
  if (!started) {
    return NotFound("No execution " + before_id + " in pipeline " + pipeline + ".",
                    "InvalidNextTokenException");
  }
  return out;
}
inline Result<std::vector<ExecutionRow>> Store::ListOldestExecutions(const std::string& pipeline,
                                                                     size_t limit) {
  PW_ASSIGN_OR_RETURN(auto all, ListExecutions(pipeline));
  std::vector<ExecutionRow> out;
  for (auto it = all.rbegin(); it != all.rend() && out.size() < limit; ++it) {
    out.push_back(std::move(*it));
  }
  return out;
}
inline Result<std::vector<ExecutionRow>> Store::ListExecutionsByUpdate(
    const std::string& pipeline, size_t limit, EpochSeconds before_updated,
    const std::string& before_id) {
  PW_ASSIGN_OR_RETURN(auto all, ListExecutions(pipeline));
  std::erase_if(all, [&](const ExecutionRow& row) {
    return !before_id.empty() &&
           (row.updated > before_updated || (row.updated == before_updated && row.id >= before_id));
  });
  std::sort(all.begin(), all.end(), [](const ExecutionRow& a, const ExecutionRow& b) {
    return a.updated != b.updated ? a.updated > b.updated : a.id > b.id;
  });
  if (all.size() > limit) all.resize(limit);
  return all;
}
inline Result<std::vector<ExecutionRow>> Store::ListActiveExecutions(const std::string& pipeline) {
  PW_ASSIGN_OR_RETURN(auto all, ListExecutions(pipeline));
  std::vector<ExecutionRow> out;
  for (auto& row : all) {
    if (row.status == "InProgress" || row.status == "Stopping") out.push_back(std::move(row));
  }
  return out;
}
inline Result<std::optional<ExecutionRow>> Store::GetExecution(const std::string& pipeline,
                                                               const std::string& id) {
  PW_ASSIGN_OR_RETURN(auto all, ListExecutions(pipeline));
  for (auto& row : all) {
    if (row.id == id) return std::optional<ExecutionRow>(std::move(row));
  }
  return std::optional<ExecutionRow>();
}
inline Result<int64_t> Store::CountExecutions(const std::string& pipeline) {
  PW_ASSIGN_OR_RETURN(auto all, ListExecutions(pipeline));
  return static_cast<int64_t>(all.size());
}
inline Status Store::DeleteExecutions(const std::string&, const std::vector<std::string>&) {
  return FailedPrecondition("this store cannot delete executions");
}

// Opens (creating and migrating) the SQLite store at `path`. WAL mode,
// synchronous=FULL. kUnavailable if the file cannot be opened.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);

// Opens (creating and migrating) the PostgreSQL store named by `conninfo`, a
// libpq connection string or URI ("postgresql://user@host:5432/db"), so
// several servers can share one database. kUnavailable if the server cannot
// be reached or refuses the connection (the message is the server's; it never
// repeats the password); kFailedPrecondition if the schema is newer than this
// build. Database errors of later calls are kUnavailable too (retry the call);
// a connection lost between calls is re-established once per call.
// Calls run concurrently on a pool of up to `max_connections` connections
// (opened as needed; a call waits while all are busy), each statement prepared
// once per connection.
Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& conninfo,
                                                 int max_connections = 4);

}  // namespace pw::store
