// The commit path: the pipeline cache (LoadLocked), one transaction per
// decision (CommitLocked), the effects performed only after it is durable
// (PerformLocked hands work to executors), and results coming back
// (FinishRun), kept pending and retried by the ticker when their commit
// fails, so a failed commit delays a decision but never drops it.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "common/log.h"
#include "core/retention.h"
#include "engine/decl_json.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "engine/log_shipper.h"
#include "engine/server_metrics.h"
#include "engine/state_json.h"

namespace pw::engine {

using nlohmann::json;

namespace {

// Ended executions kept in memory besides those decisions need (the newest
// few: ListPipelineSummaries' latest, PutActionRevision's recent revisions).
constexpr size_t kRecentInMemory = 3;
// How many of the newest executions LoadLocked reads to find each stage's
// last success (rule 61's automatic rollback target) and rule 28's
// executions ended in front of a stage.
constexpr size_t kLoadScan = 20;

// While a worker thread records results (FinishRun), the first action they
// start is kept here and run on that same thread once the commit is done,
// instead of waking another worker for it: a sequential action's successor
// then starts one thread hand-off sooner, and the finished action's clean-up
// runs while its successor does.
thread_local std::function<void()>* tl_start_here = nullptr;
// True while this thread runs such a start: a result it reports at once (a
// failed preparation, an executor that finishes inside Run) starts its
// successor from the queue, so a chain of those never nests on one stack.
thread_local bool tl_in_start_here = false;

// Inserts `e` into `p` in start order (after those started at the same time).
void InsertByStart(core::PipelineState& p, core::Execution e) {
  auto at = std::upper_bound(
      p.executions.begin(), p.executions.end(), e.started,
      [](EpochSeconds t, const core::Execution& other) { return t < other.started; });
  p.executions.insert(at, std::move(e));
}

}  // namespace

// The declaration and the runtime document (transitions, each stage's latest).
Result<core::PipelineState> Engine::ReadStoredHead(const std::string& name,
                                                   store::PipelineRecord* record) const {
  auto found = store_.GetPipeline(name, std::nullopt);
  if (!found.ok()) {
    return found.status().code() == StatusCode::kNotFound ? PipelineNotFound(name) : found.status();
  }
  store::PipelineRecord rec = std::move(*found);
  core::PipelineState p;
  p.decl = DeclFromJson(rec.declaration);
  p.decl.version = rec.version;
  PW_ASSIGN_OR_RETURN(auto runtime, store_.GetKv("pstate/" + name));
  if (runtime.has_value()) {
    json doc = json::parse(*runtime, nullptr, false);
    if (!doc.is_discarded()) RuntimeFromDoc(doc, &p);
  }
  if (record != nullptr) *record = std::move(rec);
  return p;
}

// Reads a pipeline's working set from the store, never its whole history:
// the executions core::KeptExecutions names among the active ones, each
// stage's latest and the kLoadScan newest (plus rollback targets). Older
// executions are read on demand (EnsureExecutionLocked) and history pages
// straight from the store (history.cc). Touches no engine state: the
// versions of the rows read go to `versions` when given.
Result<core::PipelineState> Engine::ReadStoredState(
    const std::string& name, std::map<std::string, int64_t>* versions) const {
  PW_ASSIGN_OR_RETURN(core::PipelineState p, ReadStoredHead(name));
  PW_ASSIGN_OR_RETURN(auto active, store_.ListActiveExecutions(name));
  PW_ASSIGN_OR_RETURN(auto recent,
                      store_.ListExecutionsPage(name, kLoadScan, "", store::Docs::kText));
  std::set<std::string> seen;
  for (auto* rows : {&recent, &active}) {
    for (auto r = rows->rbegin(); r != rows->rend(); ++r) {
      if (!seen.insert(r->id).second) continue;
      InsertByStart(p, ExecutionOf(*r, name));
      if (versions != nullptr) (*versions)[r->id] = r->version;
    }
  }
  std::set<std::string> keep = core::KeptExecutions(p, kRecentInMemory);
  std::erase_if(p.executions, [&keep](const core::Execution& e) { return !keep.count(e.id); });
  for (const auto& id : keep) {
    if (p.FindExecution(id) != nullptr) continue;  // E.g. a stage's latest older than the scan.
    PW_ASSIGN_OR_RETURN(auto row, store_.GetExecution(name, id));
    if (!row) continue;
    InsertByStart(p, ExecutionOf(*row, name));
    if (versions != nullptr) (*versions)[row->id] = row->version;
  }
  if (versions != nullptr) {
    std::erase_if(*versions, [&keep](const auto& v) { return !keep.count(v.first); });
  }
  // Action runs live in their own rows (one per attempt), not in the
  // execution document, so a commit writes only what changed.
  std::vector<core::Execution*> kept;
  for (core::Execution& e : p.executions) kept.push_back(&e);
  PW_RETURN_IF_ERROR(LoadStoredRunsOf(name, kept, versions));
  return p;
}

Result<core::PipelineState> Engine::ReadStateLocked(const std::string& name) {
  std::map<std::string, int64_t> versions;  // Row versions, kept with several servers.
  PW_ASSIGN_OR_RETURN(core::PipelineState p, ReadStoredState(name, &versions));
  if (!server_id_.empty()) row_versions_[name] = std::move(versions);
  return p;
}

Result<core::PipelineState*> Engine::LoadLocked(const std::string& name) {
  auto it = pipelines_.find(name);
  if (it != pipelines_.end()) return &it->second;
  if (DrivenElsewhereLocked(name)) return NotDrivenHere(name);
  PW_ASSIGN_OR_RETURN(core::PipelineState p, ReadStateLocked(name));
  auto [ins, ok] = pipelines_.emplace(name, std::move(p));
  (void)ok;
  read_cache_.Invalidate(name);  // Reloaded: what reads answered may have been older.
  Metrics().Track(ins->second);
  return &ins->second;
}

bool Engine::DrivenElsewhere(const std::string& name) {
  // One server alone drives every pipeline: no extra turn of the mutex on each read.
  if (!leases_) return false;
  MutexLock lock(mu_);
  return DrivenElsewhereLocked(name);
}

bool Engine::DrivenElsewhereLocked(const std::string& name) const {
  return !server_id_.empty() && !owned_.count(name);
}

Result<std::optional<core::PipelineState>> Engine::ReadIfDrivenElsewhere(
    const std::string& name, const std::string& execution_id) {
  if (!DrivenElsewhere(name)) return std::optional<core::PipelineState>();
  // Another server drives it: what is durable, read without the engine
  // mutex (a dozen database round trips this server's own work need not wait
  // for).
  PW_ASSIGN_OR_RETURN(core::PipelineState p, ReadStoredState(name, nullptr));
  PW_RETURN_IF_ERROR(EnsureStoredExecution(p, execution_id, nullptr));
  return std::optional<core::PipelineState>(std::move(p));
}

Result<std::optional<core::PipelineState>> Engine::ReadHeadIfDrivenElsewhere(
    const std::string& name, store::PipelineRecord* record) {
  if (!DrivenElsewhere(name)) return std::optional<core::PipelineState>();
  PW_ASSIGN_OR_RETURN(core::PipelineState p, ReadStoredHead(name, record));
  return std::optional<core::PipelineState>(std::move(p));
}

std::optional<int64_t> Engine::ChangeStampIfDrivenElsewhere(const std::string& pipeline) {
  if (!DrivenElsewhere(pipeline)) return std::nullopt;
  auto stamp = store_.ChangeStamp(pipeline);
  return stamp.ok() ? *stamp : std::nullopt;  // An error: read as usual (and fail there).
}

Result<const core::PipelineState*> Engine::ViewLocked(const std::string& name,
                                                      core::PipelineState* scratch,
                                                      const std::string& execution_id,
                                                      std::optional<core::PipelineState>* read) {
  if (!DrivenElsewhereLocked(name)) {
    PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(name));
    PW_RETURN_IF_ERROR(EnsureExecutionLocked(*p, execution_id));
    return p;
  }
  // Another server drives it: what is durable, never a cached copy; read
  // before the lock was taken when the caller could (ReadIfDrivenElsewhere).
  if (read != nullptr && read->has_value()) {
    *scratch = std::move(**read);
    read->reset();
    return scratch;
  }
  PW_ASSIGN_OR_RETURN(*scratch, ReadStoredState(name, nullptr));
  PW_RETURN_IF_ERROR(EnsureStoredExecution(*scratch, execution_id, nullptr));
  return scratch;
}

Status Engine::NotDrivenHere(const std::string& name) const {
  return Unavailable("Pipeline '" + name + "' is driven by another Pipewright server (this is " +
                     server_id_ + "); send the call again.");
}

Status Engine::LoadStoredRuns(core::Execution& e, std::map<std::string, int64_t>* versions) const {
  return LoadStoredRunsOf(e.pipeline, {&e}, versions);
}

core::Execution Engine::ExecutionOf(const store::ExecutionRow& row,
                                    const std::string& pipeline) const {
  core::Execution e = row.doc.is_null()
                          ? *execution_docs_.Get(row.id, row.version, row.text, ExecutionFromDoc)
                          : ExecutionFromDoc(row.doc);
  if (e.pipeline.empty()) e.pipeline = pipeline;
  return e;
}

core::ActionRun Engine::RunOf(const store::ActionExecutionRow& row) const {
  return row.doc.is_null() ? *run_docs_.Get(row.id, row.version, row.text, RunFromDoc)
                           : RunFromDoc(row.doc);
}

Status Engine::LoadStoredRunsOf(const std::string& pipeline,
                                const std::vector<core::Execution*>& executions,
                                std::map<std::string, int64_t>* versions,
                                const std::string& stage) const {
  if (executions.empty()) return Status::Ok();
  std::vector<std::string> ids;
  std::map<std::string, core::Execution*> by_id;
  for (core::Execution* e : executions) {
    ids.push_back(e->id);
    by_id[e->id] = e;
  }
  PW_ASSIGN_OR_RETURN(auto runs,
                      store_.ListActionExecutionsOf(pipeline, ids, stage, store::Docs::kText));
  for (auto r = runs.rbegin(); r != runs.rend(); ++r) {  // Oldest first.
    auto it = by_id.find(r->execution_id);
    if (it == by_id.end()) continue;
    core::Execution& e = *it->second;
    if (e.FindRun(r->id) == nullptr) e.runs.push_back(RunOf(*r));
    if (versions != nullptr) (*versions)[r->id] = r->version;
  }
  return Status::Ok();
}

Status Engine::LoadRunsLocked(core::Execution& e, std::map<std::string, int64_t>* versions) {
  return LoadStoredRuns(e, versions);
}

Result<bool> Engine::ReadStoredExecution(const std::string& pipeline, const std::string& id,
                                         core::Execution* out,
                                         std::map<std::string, int64_t>* versions) const {
  PW_ASSIGN_OR_RETURN(auto row, store_.GetExecution(pipeline, id));
  if (!row) return false;
  *out = ExecutionOf(*row, pipeline);
  if (versions != nullptr) (*versions)[row->id] = row->version;
  PW_RETURN_IF_ERROR(LoadStoredRuns(*out, versions));
  return true;
}

Status Engine::EnsureStoredExecution(core::PipelineState& p, const std::string& id,
                                     std::map<std::string, int64_t>* versions) const {
  if (id.empty() || p.FindExecution(id) != nullptr) return Status::Ok();
  core::Execution e;
  PW_ASSIGN_OR_RETURN(bool found, ReadStoredExecution(p.decl.name, id, &e, versions));
  if (!found) return Status::Ok();  // The caller's core call says what is missing.
  const std::string target = e.rollback_target;
  InsertByStart(p, std::move(e));
  if (!target.empty() && p.FindExecution(target) == nullptr) {
    core::Execution te;
    PW_ASSIGN_OR_RETURN(bool has_target, ReadStoredExecution(p.decl.name, target, &te, versions));
    if (has_target) InsertByStart(p, std::move(te));
  }
  return Status::Ok();
}

Status Engine::EnsureExecutionLocked(core::PipelineState& p, const std::string& id) {
  return EnsureStoredExecution(p, id, VersionsOfLocked(p));
}

std::map<std::string, int64_t>* Engine::VersionsOfLocked(const core::PipelineState& p) {
  if (server_id_.empty() || !owned_.count(p.decl.name)) return nullptr;
  auto it = pipelines_.find(p.decl.name);
  if (it == pipelines_.end() || &it->second != &p) return nullptr;  // Not the cached state.
  return &row_versions_[p.decl.name];
}

void Engine::TrimLocked(core::PipelineState& p) {
  if (p.executions.size() <= 2 * kRecentInMemory) return;
  std::set<std::string> keep = core::KeptExecutions(p, kRecentInMemory);
  if (keep.size() == p.executions.size()) return;
  auto versions = row_versions_.find(p.decl.name);
  for (const core::Execution& e : p.executions) {
    if (keep.count(e.id) || versions == row_versions_.end()) continue;
    versions->second.erase(e.id);
    for (const auto& run : e.runs) versions->second.erase(run.id);
  }
  std::erase_if(p.executions, [&keep](const core::Execution& e) { return !keep.count(e.id); });
}

Status Engine::CommitLocked(core::PipelineState& p, core::Outcome& out, store::Batch batch) {
  for (const auto& id : out.changed_executions) {
    const core::Execution* e = p.FindExecution(id);
    if (e == nullptr) continue;
    batch.executions.push_back({e->id, e->pipeline, std::string(core::Name(e->status)), e->started,
                                e->updated, ExecutionToDoc(*e)});
    for (const auto& r : e->runs) {
      if (!out.changed_runs.count(r.id)) continue;
      batch.actions.push_back({r.id, e->id, e->pipeline, r.stage, r.action,
                               std::string(core::Name(r.status)), r.started, r.updated,
                               RunToDoc(r)});
    }
  }
  // Jobs of abandoned runs fail in the same transaction.
  std::vector<Job> abandoned;
  for (const auto& fx : out.effects) {
    if (fx.kind == core::Effect::Kind::kAbandonAction ||
        fx.kind == core::Effect::Kind::kAbandonRule) {
      AbandonJobsLocked(fx.run_id, &batch, &abandoned);
    }
  }
  batch.kv.emplace_back("pstate/" + p.decl.name, RuntimeToDoc(p).dump());
  // Several servers: written only while this server holds the pipeline's
  // lease, and only over the row versions it read (optimistic concurrency).
  std::map<std::string, int64_t>* versions = nullptr;
  if (!server_id_.empty()) {
    auto owned = owned_.find(p.decl.name);
    if (owned == owned_.end()) return NotDrivenHere(p.decl.name);
    batch.fence = store::Fence{p.decl.name, server_id_, owned->second};
    versions = &row_versions_[p.decl.name];
    for (auto& row : batch.executions) {
      auto v = versions->find(row.id);
      row.version = v == versions->end() ? 0 : v->second;
    }
    for (auto& row : batch.actions) {
      auto v = versions->find(row.id);
      row.version = v == versions->end() ? 0 : v->second;
    }
  }
  const auto commit_start = std::chrono::steady_clock::now();
  Status s = store_.Commit(batch);
  Metrics().store_commit_seconds.With({}).Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - commit_start).count());
  // Every commit (or failed one: memory is dropped) changes what reads answer.
  read_cache_.Invalidate(p.decl.name);
  if (!s.ok()) {
    // Memory is ahead of disk: forget it, so the next call reloads what is durable.
    PW_LOG(Error) << "could not persist pipeline " << p.decl.name << ": " << s.ToString();
    const std::string name = p.decl.name;
    pipelines_.erase(name);
    row_versions_.erase(name);
    if (s.wire_name() == "LeaseLostException") {
      // Another server took the pipeline over: stop driving it.
      owned_.erase(name);
      return NotDrivenHere(name);
    }
    return s;
  }
  if (versions != nullptr) {
    for (const auto& row : batch.executions) (*versions)[row.id] = row.version + 1;
    for (const auto& row : batch.actions) (*versions)[row.id] = row.version + 1;
  }
  for (auto& j : abandoned) PutJobLocked(std::move(j));
  Metrics().Committed(p, out);
  // Effects only after the decision is durable.
  for (const auto& fx : out.effects) PerformLocked(p, fx);
  return Status::Ok();
}

void Engine::PerformLocked(core::PipelineState& p, const core::Effect& fx) {
  if (fx.kind == core::Effect::Kind::kStartRule || fx.kind == core::Effect::Kind::kAbandonRule) {
    PerformRuleLocked(p, fx);
    return;
  }
  core::Execution* e = p.FindExecution(fx.execution_id);
  core::ActionRun* r = e ? e->FindRun(fx.run_id) : nullptr;
  if (r == nullptr) return;
  const core::ActionDecl* declared = FindActionDecl(p.decl, r->stage, r->action);
  if (declared == nullptr) return;
  if (fx.kind == core::Effect::Kind::kAbandonAction) {
    if (ActionExecutor* x = ExecutorFor(*declared)) x->Cancel(fx.run_id);
    return;
  }
  if (r->status != core::ActionStatus::kInProgress) return;
  // The work uses the configuration as resolved when the run started.
  const core::ActionDecl a = WithResolvedConfiguration(*declared, *r);
  const std::string pipeline = p.decl.name;
  if (IsJobAction(a)) {
    if (Status s = CreateJobLocked(p, *e, *r, a, ""); !s.ok()) {
      FailLater(pipeline, r->id, Failure(s.message(), "", "ConfigurationError"));
    }
    return;
  }
  PW_LOG(Debug) << "start " << r->stage << "/" << r->action << " " << fx.run_id;
  if (a.type.category == "Approval") return;  // Waits for PutApprovalResult or the timeout.
  ActionExecutor* x = ExecutorFor(a);
  if (x == nullptr) {
    FailLater(pipeline, r->id,
              Failure("Pipewright has no runner for action type " + a.type.ToString()));
    return;
  }
  ActionWork w;
  w.pipeline = pipeline;
  w.execution_id = e->id;
  w.run_id = r->id;
  w.stage = r->stage;
  w.action = r->action;
  w.decl = a;
  w.inputs = r->inputs;
  for (const auto& [name, revision] : r->inputs) {
    // The source run that produced this input, if any: its revision id.
    for (const core::ActionRun& run : e->runs) {
      auto out = run.outputs.find(name);
      if (out != run.outputs.end() && out->second == revision && !run.revision_id.empty()) {
        w.input_source_revisions[name] = run.revision_id;
      }
    }
  }
  if (a.type.category == "Source") {
    // StartPipelineExecution.sourceRevisions, kept on the execution: a retry
    // of the source stage runs the same revision.
    for (const auto& sr : e->source_revisions) {
      if (sr.action != r->action) continue;
      if (sr.type == "S3_OBJECT_KEY") {
        w.source_object_key = sr.value;  // May come with an S3_OBJECT_VERSION_ID.
        continue;
      }
      w.source_revision_type = sr.type;
      w.source_revision_value = sr.value;
    }
  }
  if (IsCommands(a)) {
    auto shell = ShellCommandsOf(*declared, core::VariableScope(p, *e));
    if (!shell.ok()) {
      FailLater(pipeline, r->id, Failure(shell.status().message(), "", "ConfigurationError"));
      return;
    }
    w.commands = std::move(shell->commands);
    w.reference_env = std::move(shell->environment);
    if (!options_.public_url.empty()) {
      r->external_url = options_.public_url + "/logs/" + r->id;
      r->external_id = r->id;
    }
  }
  StartWork(x, std::move(w));
}

void Engine::StartWork(ActionExecutor* x, ActionWork work) {
  const std::string pipeline = work.pipeline;
  const std::string run_id = work.run_id;
  // Exactly one result per run, whatever the executor does.
  auto reported = std::make_shared<std::atomic<bool>>(false);
  LogShipper* shipper = runners_.log_shipper.get();  // Several servers only.
  if (shipper != nullptr) shipper->Follow(run_id, pipeline, work.execution_id);
  ActionDone done = [this, pipeline, run_id, reported, shipper](const core::ActionResult& result) {
    if (reported->exchange(true)) return;
    // The log is complete in the database before the result is (a failure
    // is retried by the shipper; the result does not wait for it).
    if (shipper != nullptr) {
      const auto began = std::chrono::steady_clock::now();
      if (Status s = shipper->Finish(run_id); !s.ok()) {
        PW_LOG(Warning) << "log of " << run_id << " not yet in the database: " << s.ToString();
      } else {
        PW_LOG(Debug) << "log of " << run_id << " complete in the database after "
                      << std::chrono::duration<double, std::milli>(
                             std::chrono::steady_clock::now() - began)
                             .count()
                      << " ms";
      }
    }
    FinishRun(pipeline, run_id, result);
  };
  std::function<void()> task = [this, x, work = std::move(work), done] {
    try {
      // Local paths are checked again with their resolved values (variables
      // were skipped at CreatePipeline), off the mutex: they touch the disk.
      if (Status s = CheckActionPaths(work.decl, work.decl.configuration, path_policy_, false);
          !s.ok()) {
        return done(Failure(s.message(), "", "ConfigurationError"));
      }
      x->Run(work, done);
    } catch (const std::exception& ex) {
      done(Failure(std::string("Pipewright could not run this action: ") + ex.what()));
    } catch (...) {
      done(Failure("Pipewright could not run this action (unknown error)."));
    }
  };
  if (tl_start_here != nullptr && !*tl_start_here) {
    *tl_start_here = std::move(task);
    return;
  }
  queue_->Enqueue(std::move(task));
}

void Engine::FailLater(const std::string& pipeline, const std::string& run_id,
                       core::ActionResult r) {
  queue_->Enqueue([this, pipeline, run_id, r = std::move(r)] { FinishRun(pipeline, run_id, r); });
}

Status Engine::ApplyResultsLocked(const std::string& pipeline,
                                  const std::vector<const FinishedRun*>& results) {
  if (DrivenElsewhereLocked(pipeline)) {
    // Another server drives it now; it failed these runs as interrupted.
    for (const auto* r : results) {
      PW_LOG(Warning) << "result of " << r->run_id << " dropped: pipeline " << pipeline
                      << " is driven by another server";
    }
    return Status::Ok();
  }
  auto p = LoadLocked(pipeline);
  if (!p.ok()) {
    if (p.status().code() == StatusCode::kNotFound) return Status::Ok();  // Deleted meanwhile.
    return p.status();
  }
  core::Outcome out;
  const EpochSeconds now = clock_.Now();
  bool any = false;
  for (const auto* r : results) {
    if (Status cs = core::CompleteAction(**p, r->run_id, r->result, now, &out); !cs.ok()) {
      PW_LOG(Debug) << "result for " << r->run_id << " ignored: " << cs.message();
      continue;  // Abandoned, or already finished.
    }
    core::Advance(**p, now, *ids_, &out);
    any = true;
  }
  if (!any) return Status::Ok();
  return CommitLocked(**p, out);
}

void Engine::ApplyResultsLocked(const std::vector<FinishedRun>& runs) {
  // Each pipeline's results in the order they came; pipelines are independent.
  std::map<std::string, std::vector<const FinishedRun*>> by_pipeline;
  for (const auto& r : runs) by_pipeline[r.pipeline].push_back(&r);
  for (const auto& [name, mine] : by_pipeline) {
    Status s;
    try {
      s = ApplyResultsLocked(name, mine);
    } catch (const std::exception& ex) {
      s = Internal(std::string("deciding on the result failed: ") + ex.what());
    }
    if (!s.ok()) {
      // Durable later: the ticker retries until the commit succeeds.
      for (const auto* r : mine) {
        PW_LOG(Warning) << "result of " << r->run_id << " kept pending: " << s.ToString();
        pending_[r->run_id] = PendingResult{name, r->result};
      }
    }
  }
}

void Engine::FinishRun(const std::string& pipeline, const std::string& run_id,
                       const core::ActionResult& result) {
  {
    MutexLock l(finished_mu_);
    finished_.push_back(FinishedRun{pipeline, run_id, result});
    queue_->Hold();           // Busy until recorded (WaitIdle).
    if (committing_) return;  // The committing thread takes it next.
    committing_ = true;
  }
  // On a worker thread, the first action these results start runs here
  // after the loop (tl_start_here); while more results wait, it goes to the
  // queue instead, so committing them does not delay it.
  std::function<void()> start_here;
  const bool on_worker = queue_->OnWorkerThread() && !tl_in_start_here;
  for (;;) {
    std::vector<FinishedRun> runs;
    bool more = false;
    {
      MutexLock l(finished_mu_);
      more = !finished_.empty();
      if (!more) committing_ = false;
      runs.swap(finished_);
    }
    if (start_here && more) queue_->Enqueue(std::exchange(start_here, nullptr));
    if (!more) break;
    {
      MutexLock lock(mu_);
      struct Slot {
        explicit Slot(std::function<void()>* s) { tl_start_here = s; }
        ~Slot() { tl_start_here = nullptr; }
        Slot(const Slot&) = delete;
        Slot& operator=(const Slot&) = delete;
      } slot(on_worker && !start_here ? &start_here : nullptr);
      ApplyResultsLocked(runs);
    }
    for (size_t i = 0; i < runs.size(); ++i) queue_->Release();
  }
  // As a queued task would be: dropped once the queue stops (the run stays
  // InProgress for Recover).
  if (start_here && !queue_->Stopping()) {
    tl_in_start_here = true;
    start_here();
    tl_in_start_here = false;
  }
}

void Engine::RetryPendingLocked() {
  for (auto it = pending_.begin(); it != pending_.end();) {
    Status s;
    try {
      const FinishedRun run{it->second.pipeline, it->first, it->second.result};
      s = ApplyResultsLocked(run.pipeline, {&run});
    } catch (const std::exception& ex) {
      s = Internal(ex.what());
    }
    if (s.ok()) {
      PW_LOG(Info) << "pending result of " << it->first << " recorded";
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace pw::engine
