// The engine's operations on pipelines and executions: each takes the mutex,
// loads the pipeline (cached), asks core for the decision and commits it in
// one transaction (commit.cc) before any effect.

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "common/log.h"
#include "engine/decl_json.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "engine/server_metrics.h"
#include "engine/source_revisions.h"
#include "engine/triggers.h"

namespace pw::engine {

using nlohmann::json;

namespace {

// A V2-only field counts when it holds something: null, [] and {} do not.
bool Declared(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && !it->is_null() && !(it->is_array() && it->empty()) &&
         !(it->is_object() && it->empty());
}

// The declaration rules that depend on pipelineType (rules the model cannot
// express): a V1 pipeline (pipelineType V1 or absent) declares no V2-only
// field (variables, triggers, stage beforeEntry/onSuccess conditions,
// onFailure conditions; QUEUED/PARALLEL are checked by core), and every
// trigger names a source action of the pipeline, once. `decl` is normalized.
// kInvalidArgument, InvalidStructureException, naming what to change.
Status CheckPipelineType(const json& decl) {
  const std::string name = decl.value("name", "");
  const json type = decl.value("pipelineType", json("V1"));
  const json stages = decl.value("stages", json::array());
  if (!(type.is_string() && type.get<std::string>() == "V2")) {
    auto v2_only = [&](const std::string& what) {
      return InvalidArgument(what + " can only be used with V2 pipelines; pipeline '" + name +
                                 "' is V1: set \"pipelineType\": \"V2\".",
                             "InvalidStructureException");
    };
    if (Declared(decl, "variables")) return v2_only("Pipeline-level variables");
    if (Declared(decl, "triggers")) return v2_only("Triggers");
    for (const auto& s : stages) {
      if (!s.is_object()) continue;
      const std::string stage = "Stage '" + s.value("name", "") + "': ";
      if (Declared(s, "beforeEntry")) return v2_only(stage + "beforeEntry conditions");
      if (Declared(s, "onSuccess")) return v2_only(stage + "onSuccess conditions");
      if (s.contains("onFailure") && s["onFailure"].is_object() &&
          Declared(s["onFailure"], "conditions")) {
        return v2_only(stage + "onFailure conditions");
      }
    }
    return Status::Ok();
  }
  std::vector<std::string> sources;
  if (!stages.empty() && stages[0].is_object()) {
    for (const auto& a : stages[0].value("actions", json::array())) {
      if (a.is_object()) sources.push_back(a.value("name", ""));
    }
  }
  std::set<std::string> seen;
  for (const auto& t : decl.value("triggers", json::array())) {
    if (!t.is_object() || !t.contains("gitConfiguration") || !t["gitConfiguration"].is_object()) {
      continue;  // The model requires it; the dispatcher refused its absence.
    }
    const std::string action = t["gitConfiguration"].value("sourceActionName", "");
    if (std::find(sources.begin(), sources.end(), action) == sources.end()) {
      std::string list;
      for (const auto& s : sources) list += (list.empty() ? "'" : ", '") + s + "'";
      return InvalidArgument("Trigger gitConfiguration.sourceActionName '" + action +
                                 "' is not a source action of pipeline '" + name +
                                 "'; its source actions are " + list + ".",
                             "InvalidStructureException");
    }
    if (!seen.insert(action).second) {
      return InvalidArgument("Source action '" + action +
                                 "' has more than one trigger; you can only specify one trigger "
                                 "configuration per source action.",
                             "InvalidStructureException");
    }
  }
  return Status::Ok();
}

}  // namespace

Status Engine::PipelineNotFound(const std::string& name) const {
  return NotFound(
      "Account '" + options_.account_id + "' does not have a pipeline with name '" + name + "'",
      "PipelineNotFoundException");
}

Status Engine::ValidateDeclaration(const core::PipelineDecl& d) const {
  PW_RETURN_IF_ERROR(core::ValidateStructure(
      d, [this](const core::ActionTypeId& id) { return ActionTypeKnown(id); }));
  PW_RETURN_IF_ERROR(CheckConfiguration(
      d, [this](const core::ActionTypeId& id) { return FindCustomActionType(id); }));
  PW_RETURN_IF_ERROR(CheckRuleDeclarations(d));
  return CheckActionData(d, path_policy_);
}

Result<store::PipelineRecord> Engine::CreatePipeline(const json& pipeline,
                                                     const std::vector<store::Tag>& tags,
                                                     const std::string& caller) {
  json decl = NormalizeDeclaration(pipeline);
  PW_RETURN_IF_ERROR(CheckPipelineType(decl));
  PW_RETURN_IF_ERROR(CheckTriggers(decl));  // triggers.h
  core::PipelineDecl d = DeclFromJson(decl);
  PW_RETURN_IF_ERROR(ValidateDeclaration(d));
  PW_ASSIGN_OR_RETURN(auto rec, [&] {
    MutexLock lock(mu_);
    pipelines_.erase(d.name);
    read_cache_.Invalidate(d.name);
    auto created = store_.CreatePipeline(d.name, PipelineArn(d.name), decl, tags, clock_.Now(),
                                         options_.max_pipelines);
    if (created.ok() && !server_id_.empty()) {
      // Several servers: the creating server drives it first (the lease
      // managers spread pipelines later, when they are idle).
      auto lease = store_.AcquireLease(d.name, server_id_, lease_seconds_);
      if (lease.ok()) owned_[d.name] = lease->epoch;
    }
    return created;
  }());
  RememberTriggerRefs(d, decl);  // triggers.cc: the poller's baseline.
  if (options_.start_on_create) {
    auto id = StartExecution(d.name, "", caller, "CreatePipeline");
    if (!id.ok())
      PW_LOG(Warning) << "first execution of " << d.name << ": " << id.status().ToString();
  }
  return rec;
}

Result<store::PipelineRecord> Engine::UpdatePipeline(const json& incoming) {
  // Rule 9: a secret sent back as "****" keeps the stored value (same stage
  // and action names; a renamed stage loses it).
  json pipeline = incoming;
  if (auto cur = store_.GetPipeline(incoming.value("name", ""), std::nullopt); cur.ok()) {
    for (auto& s : pipeline["stages"]) {
      for (auto& a : s["actions"]) {
        if (!a.contains("configuration")) continue;
        for (auto& [key, value] : a["configuration"].items()) {
          if (value != kMasked) continue;
          for (const auto& os : cur->declaration.value("stages", json::array())) {
            if (os.value("name", "") != s.value("name", "")) continue;
            for (const auto& oa : os.value("actions", json::array())) {
              if (oa.value("name", "") == a.value("name", "") && oa.contains("configuration") &&
                  oa["configuration"].contains(key)) {
                value = oa["configuration"][key];
              }
            }
          }
        }
      }
    }
  }
  json decl = NormalizeDeclaration(pipeline);
  PW_RETURN_IF_ERROR(CheckPipelineType(decl));
  PW_RETURN_IF_ERROR(CheckTriggers(decl));  // triggers.h
  core::PipelineDecl d = DeclFromJson(decl);
  PW_RETURN_IF_ERROR(ValidateDeclaration(d));
  MutexLock lock(mu_);
  auto p = LoadLocked(d.name);
  if (!p.ok()) return p.status();
  PW_ASSIGN_OR_RETURN(store::PipelineRecord rec, store_.GetPipeline(d.name, std::nullopt));
  const EpochSeconds now = clock_.Now();
  // The new version and rule 69's cancellations of running executions are
  // one transaction: both happen or neither does.
  rec.version += 1;
  rec.updated = now;
  decl["version"] = rec.version;
  rec.declaration = decl;
  d.version = rec.version;
  store::Batch batch;
  batch.new_version = store::NewVersion{d.name, rec.version, decl, now};
  core::Outcome out;
  core::ApplyNewVersion(**p, d, now, &out);
  core::Advance(**p, now, *ids_, &out);
  PW_RETURN_IF_ERROR(CommitLocked(**p, out, std::move(batch)));
  return rec;
}

Status Engine::DeletePipeline(const std::string& name) {
  MutexLock lock(mu_);
  auto p = LoadLocked(name);
  if (!p.ok()) return p.status();
  PW_RETURN_IF_ERROR(store_.DeletePipeline(name));
  Metrics().Forget(name);
  // Abandon running work: processes, open jobs; forget tokens and poll state.
  // The pipeline is gone whatever follows: a failure below is logged, and
  // open jobs left behind are refused results and time out.
  for (const auto& e : (*p)->executions) {
    for (const auto& r : e.runs) {
      if (r.status != core::ActionStatus::kInProgress) continue;
      const core::ActionDecl* a = FindActionDecl((*p)->decl, r.stage, r.action);
      if (ActionExecutor* x = a ? ExecutorFor(*a) : nullptr) x->Cancel(r.id);
    }
  }
  pipelines_.erase(name);
  owned_.erase(name);
  row_versions_.erase(name);
  read_cache_.Invalidate(name);
  LoadJobsLocked();
  store::Batch batch;
  std::vector<Job> abandoned;
  for (const auto& [id, job] : jobs_) {
    if (job.pipeline != name || !job.Open()) continue;
    Job next = job;
    next.status = core::JobStatus::kFailed;  // Abandoned: results for it are refused.
    next.ended = clock_.Now();
    batch.kv.emplace_back("job/" + next.id, JobToDoc(next).dump());
    abandoned.push_back(std::move(next));
  }
  Status s = batch.kv.empty() ? Status::Ok() : store_.Commit(batch);
  if (s.ok()) {
    for (auto& j : abandoned) PutJobLocked(std::move(j));
  }
  for (const std::string& prefix : {"token/" + name + "/", "poll/" + name + "/"}) {
    if (Status d = store_.DeleteKvPrefix(prefix); !d.ok() && s.ok()) s = d;
  }
  if (!s.ok()) PW_LOG(Error) << "deleted pipeline " << name << ", but: " << s.ToString();
  return Status::Ok();
}

Result<std::string> Engine::StartExecution(
    const std::string& pipeline, const std::string& client_token, const std::string& caller,
    const std::string& trigger_type, const core::Variables& variables,
    const std::vector<core::SourceRevisionOverride>& source_revisions) {
  MutexLock lock(mu_);
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(pipeline));
  const std::string token_key = "token/" + pipeline + "/" + client_token;
  if (!client_token.empty()) {
    PW_ASSIGN_OR_RETURN(auto seen, store_.GetKv(token_key));
    if (seen.has_value()) return *seen;  // Rule 14: idempotent.
  }
  PW_RETURN_IF_ERROR(CheckConcurrencyLimitLocked(*p));  // Rule 15.
  PW_ASSIGN_OR_RETURN(core::Variables resolved, core::ExecutionVariables(p->decl, variables));
  PW_RETURN_IF_ERROR(CheckSourceRevisions(p->decl, source_revisions));
  core::Outcome out;
  const EpochSeconds now = clock_.Now();
  core::Execution& e = core::StartExecution(*p, trigger_type, caller, now, *ids_, &out);
  e.variables = std::move(resolved);
  e.source_revisions = NormalizeSourceRevisions(source_revisions);
  const std::string id = e.id;
  core::Advance(*p, now, *ids_, &out);
  store::Batch batch;
  // A unique key, not check-then-write: of two starts with one token only
  // one commits, whichever server decided it.
  if (!client_token.empty()) batch.kv_inserts.emplace_back(token_key, id);
  if (Status s = CommitLocked(*p, out, std::move(batch)); !s.ok()) {  // Token and start together.
    if (s.wire_name() == "DuplicateKeyException") {
      PW_ASSIGN_OR_RETURN(auto seen, store_.GetKv(token_key));
      if (seen.has_value()) return *seen;  // Rule 14: the first start's id.
    }
    return s;
  }
  Metrics().executions_started.With({trigger_type}).Inc();
  return id;
}

Status Engine::StopExecution(const std::string& pipeline, const std::string& execution_id,
                             bool abandon, const std::string& reason) {
  MutexLock lock(mu_);
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(pipeline));
  PW_RETURN_IF_ERROR(EnsureExecutionLocked(*p, execution_id));
  core::Outcome out;
  const EpochSeconds now = clock_.Now();
  PW_RETURN_IF_ERROR(core::StopExecution(*p, execution_id, abandon, reason, now, &out));
  core::Advance(*p, now, *ids_, &out);
  return CommitLocked(*p, out);
}

Result<core::RetryPlan> Engine::PlanRetry(const std::string& pipeline, const std::string& stage,
                                          const std::string& execution_id, core::RetryMode mode) {
  PW_ASSIGN_OR_RETURN(auto read, ReadIfDrivenElsewhere(pipeline, execution_id));
  MutexLock lock(mu_);
  core::PipelineState scratch;
  PW_ASSIGN_OR_RETURN(const core::PipelineState* p,
                      ViewLocked(pipeline, &scratch, execution_id, &read));
  return core::PlanRetry(*p, execution_id, stage, mode);
}

Result<core::RetryPlan> Engine::RetryStage(const std::string& pipeline, const std::string& stage,
                                           const std::string& execution_id, core::RetryMode mode) {
  MutexLock lock(mu_);
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(pipeline));
  PW_RETURN_IF_ERROR(EnsureExecutionLocked(*p, execution_id));
  core::Outcome out;
  const EpochSeconds now = clock_.Now();
  if (const core::Execution* e = p->FindExecution(execution_id)) {
    // Rule 50: a retry racing a stop of the same execution.
    if (e->status == core::ExecutionStatus::kStopping) {
      return FailedPrecondition("The pipeline is busy handling ongoing activities: execution " +
                                    execution_id + " is stopping. Try again later.",
                                "ConflictException");
    }
    if (!e->Active()) PW_RETURN_IF_ERROR(CheckConcurrencyLimitLocked(*p));  // Rule 15.
  }
  PW_ASSIGN_OR_RETURN(core::RetryPlan plan,
                      core::RetryStage(*p, execution_id, stage, mode, core::RetryTrigger::kManual,
                                       now, *ids_, &out));
  core::Advance(*p, now, *ids_, &out);
  PW_RETURN_IF_ERROR(CommitLocked(*p, out));
  Metrics().retries.With({"manual"}).Inc();
  return plan;
}

Result<std::string> Engine::RollbackStage(const std::string& pipeline, const std::string& stage,
                                          const std::string& target_execution_id) {
  MutexLock lock(mu_);
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(pipeline));
  PW_RETURN_IF_ERROR(EnsureExecutionLocked(*p, target_execution_id));
  core::Outcome out;
  const EpochSeconds now = clock_.Now();
  PW_ASSIGN_OR_RETURN(std::string id, core::StartRollback(*p, stage, target_execution_id,
                                                          "ManualRollback", now, *ids_, &out));
  core::Advance(*p, now, *ids_, &out);
  PW_RETURN_IF_ERROR(CommitLocked(*p, out));
  Metrics().executions_started.With({"ManualRollback"}).Inc();
  return id;
}

Status Engine::SetTransition(const std::string& pipeline, const std::string& stage, bool enabled,
                             const std::string& reason, const std::string& caller) {
  MutexLock lock(mu_);
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(pipeline));
  const EpochSeconds now = clock_.Now();
  PW_RETURN_IF_ERROR(core::SetTransition(*p, stage, enabled, reason, caller, now));
  core::Outcome out;
  core::Advance(*p, now, *ids_, &out);
  return CommitLocked(*p, out);
}

Result<EpochSeconds> Engine::PutApproval(const std::string& pipeline, const std::string& stage,
                                         const std::string& action, const std::string& token,
                                         bool approved, const std::string& summary,
                                         const std::string& caller) {
  MutexLock lock(mu_);
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(pipeline));
  PW_ASSIGN_OR_RETURN(std::string run_id, core::FindApprovalRun(*p, stage, action, token));
  core::ActionResult r;
  r.status = approved ? core::ActionStatus::kSucceeded : core::ActionStatus::kFailed;
  r.summary = summary;
  r.updated_by = caller;
  if (!approved) {
    r.error_code = "JobFailed";
    r.error_message = "Rejected by " + caller + (summary.empty() ? "" : ": " + summary);
  }
  core::Outcome out;
  const EpochSeconds now = clock_.Now();
  PW_RETURN_IF_ERROR(core::CompleteAction(*p, run_id, r, now, &out));
  core::Advance(*p, now, *ids_, &out);
  PW_RETURN_IF_ERROR(CommitLocked(*p, out));
  return now;
}

Result<Snapshot> Engine::GetSnapshot(const std::string& pipeline, bool current_only) {
  PW_ASSIGN_OR_RETURN(auto read, ReadIfDrivenElsewhere(pipeline));
  MutexLock lock(mu_);
  core::PipelineState scratch;  // Driven elsewhere: read from the store.
  if (!current_only) {          // It views the pipeline itself: one read, not two.
    PW_ASSIGN_OR_RETURN(auto all,
                        HistoryPageLocked(pipeline, SIZE_MAX, "", {}, PageRuns::kAll, &read));
    return std::move(all.snap);
  }
  auto p = ViewLocked(pipeline, &scratch, "", &read);
  if (!p.ok()) {
    return p.status();
  }
  PW_ASSIGN_OR_RETURN(auto rec, store_.GetPipeline(pipeline, std::nullopt));
  const core::PipelineState& full = **p;
  Snapshot snap{std::move(rec), {}};
  snap.state.decl = full.decl;
  snap.state.transitions = full.transitions;
  snap.state.stage_latest = full.stage_latest;
  std::set<std::string> latest;
  for (const auto& [stage, id] : full.stage_latest) latest.insert(id);
  // Rule 28: the newest execution stopped or failed while waiting in front
  // of a stage stays visible there as its inbound execution.
  std::map<int, std::string> ended_inbound;
  for (const auto& e : full.executions) {
    if (!e.in_stage && (e.status == core::ExecutionStatus::kStopped ||
                        e.status == core::ExecutionStatus::kFailed)) {
      ended_inbound[e.stage_index] = e.id;
    }
  }
  for (const auto& [index, id] : ended_inbound) latest.insert(id);
  for (const auto& e : full.executions) {
    if (e.Active() || latest.count(e.id)) snap.state.executions.push_back(e);
  }
  AddJobWaitSummariesLocked(snap.state);
  return snap;
}

}  // namespace pw::engine
