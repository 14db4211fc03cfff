#include "core/machine.h"

#include <algorithm>

#include "core/conditions.h"
#include "core/variables.h"

namespace pw::core {
namespace {

void Touch(Execution& e, EpochSeconds now, Outcome* out) {
  e.updated = now;
  out->changed_executions.insert(e.id);
}

const ActionDecl* FindAction(const StageDecl& s, const std::string& name) {
  for (const auto& a : s.actions) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

// Actions of `stage` in group `group` (index into RunOrders()).
std::vector<const ActionDecl*> GroupActions(const StageDecl& s, int group) {
  std::vector<int> orders = s.RunOrders();
  std::vector<const ActionDecl*> out;
  if (group < 0 || group >= static_cast<int>(orders.size())) return out;
  for (const auto& a : s.actions) {
    if (a.run_order == orders[static_cast<size_t>(group)]) out.push_back(&a);
  }
  return out;
}

int GroupOf(const StageDecl& s, const std::string& action) {
  std::vector<int> orders = s.RunOrders();
  const ActionDecl* a = FindAction(s, action);
  if (a == nullptr) return -1;
  return static_cast<int>(std::find(orders.begin(), orders.end(), a->run_order) - orders.begin());
}

// The declaration the execution runs with. Executions keep running with the
// version they started in only in PARALLEL mode; otherwise a new version
// cancels them, so the current declaration is the right one while active.
const StageDecl* StageOf(const PipelineState& p, const Execution& e, int index) {
  (void)e;
  if (index < 0 || index >= static_cast<int>(p.decl.stages.size())) return nullptr;
  return &p.decl.stages[static_cast<size_t>(index)];
}

void StartRun(PipelineState& p, Execution& e, StageRun& sr, const ActionDecl& a, EpochSeconds now,
              IdSource& ids, Outcome* out) {
  (void)p;
  ActionRun r;
  r.id = ids.NewId();
  r.execution_id = e.id;
  r.stage = sr.stage;
  r.action = a.name;
  r.stage_attempt = sr.attempt;
  r.status = ActionStatus::kInProgress;
  r.started = now;
  r.updated = now;
  for (const auto& in : a.input_artifacts) {
    auto it = e.artifacts.find(in);
    r.inputs[in] = it == e.artifacts.end() ? "" : it->second;
  }
  // Resolve #{…} variables now: what the work uses is recorded with the run.
  const Variables scope = VariableScope(p, e);
  std::string problem;
  for (const auto& [key, value] : a.configuration) {
    auto resolved = ResolveVariables(value, scope);
    if (!resolved.ok()) {
      problem = "Configuration " + key + ": " + resolved.status().message();
      break;
    }
    r.resolved_configuration[key] = *resolved;
  }
  for (const auto& var : a.environment) {
    if (!problem.empty()) break;
    auto resolved = ResolveVariables(var.value, scope);
    if (!resolved.ok()) {
      problem = "Environment variable " + var.name + ": " + resolved.status().message();
      break;
    }
    r.resolved_environment[var.name] = *resolved;
  }
  if (!problem.empty()) {
    // The action cannot start: it fails at once (the stage fails when its
    // group finishes), and a retry after fixing the cause resolves again.
    r.status = ActionStatus::kFailed;
    r.error_code = "ConfigurationError";
    r.error_message = problem;
    r.summary = problem;
    sr.latest[a.name] = r.id;
    out->changed_runs.insert(r.id);
    e.runs.push_back(std::move(r));
    Touch(e, now, out);
    return;
  }
  if (a.type.category == "Approval") r.token = ids.NewId();
  sr.latest[a.name] = r.id;
  out->changed_runs.insert(r.id);
  out->effects.push_back({Effect::Kind::kStartAction, e.id, r.id});
  e.runs.push_back(std::move(r));
  Touch(e, now, out);
}

void StartGroup(PipelineState& p, Execution& e, StageRun& sr, const StageDecl& s, int group,
                EpochSeconds now, IdSource& ids, Outcome* out) {
  sr.group = group;
  for (const ActionDecl* a : GroupActions(s, group)) StartRun(p, e, sr, *a, now, ids, out);
}

StagePhase PhaseOf(ConditionKind k) {
  switch (k) {
    case ConditionKind::kBeforeEntry:
      return StagePhase::kBeforeEntry;
    case ConditionKind::kOnSuccess:
      return StagePhase::kOnSuccess;
    case ConditionKind::kOnFailure:
      break;
  }
  return StagePhase::kOnFailure;
}

ConditionKind KindOf(StagePhase ph) {
  return ph == StagePhase::kBeforeEntry ? ConditionKind::kBeforeEntry
         : ph == StagePhase::kOnSuccess ? ConditionKind::kOnSuccess
                                        : ConditionKind::kOnFailure;
}

std::string ConditionLabel(ConditionKind k) {
  return k == ConditionKind::kBeforeEntry ? "beforeEntry"
         : k == ConditionKind::kOnSuccess ? "onSuccess"
                                          : "onFailure";
}

// Starts a fresh evaluation of the `kind` condition of stage run `sr`: one
// rule run per rule. VariableCheck is decided here (pure); every other rule
// becomes a kStartRule effect, except one whose configuration does not
// resolve, which fails at once.
void StartCondition(PipelineState& p, Execution& e, StageRun& sr, const StageDecl& s,
                    ConditionKind kind, EpochSeconds now, IdSource& ids, Outcome* out) {
  sr.phase = PhaseOf(kind);
  ConditionRun cr;
  cr.kind = kind;
  cr.status = ConditionStatus::kInProgress;
  cr.started = now;
  cr.updated = now;
  const Variables scope = VariableScope(p, e);
  for (const ConditionDecl& c : s.Conditions(kind)) {
    for (const RuleDecl& rd : c.rules) {
      RuleRun r;
      r.id = ids.NewId();
      r.execution_id = e.id;
      r.stage = s.name;
      r.rule = rd.name;
      r.kind = kind;
      r.stage_attempt = sr.attempt;
      r.started = now;
      r.updated = now;
      for (const auto& in : rd.input_artifacts) {
        auto it = e.artifacts.find(in);
        r.inputs[in] = it == e.artifacts.end() ? "" : it->second;
      }
      std::string problem;
      for (const auto& [key, value] : rd.configuration) {
        auto resolved = ResolveVariables(value, scope);
        if (!resolved.ok()) {
          problem = "Configuration " + key + ": " + resolved.status().message();
          break;
        }
        r.resolved_configuration[key] = *resolved;
      }
      if (!problem.empty()) {
        r.status = ActionStatus::kFailed;
        r.error_code = "ConfigurationError";
        r.error_message = problem;
        r.summary = problem;
      } else if (rd.type.provider == "VariableCheck") {
        const RuleVerdict v = EvaluateVariableCheck(r.resolved_configuration);
        r.status = v.passed ? ActionStatus::kSucceeded : ActionStatus::kFailed;
        r.summary = v.summary;
        if (!v.passed) {
          r.error_code = "RuleFailed";
          r.error_message = v.summary;
        }
      } else {
        if (rd.type.provider == "DeploymentWindow") {
          auto tz = r.resolved_configuration.find("TimeZone");
          r.summary = "Waiting for the deployment window '" + r.resolved_configuration["Cron"] +
                      "' (" +
                      (tz == r.resolved_configuration.end() ? std::string("UTC") : tz->second) +
                      ") to open.";
        }
        out->effects.push_back({Effect::Kind::kStartRule, e.id, r.id});
      }
      cr.latest[rd.name] = r.id;
      e.rule_runs.push_back(std::move(r));
    }
  }
  if (ConditionRun* old = sr.FindCondition(kind)) {
    *old = std::move(cr);
  } else {
    sr.conditions.push_back(std::move(cr));
  }
  Touch(e, now, out);
}

// Abandons the InProgress rule runs of `cr` (their effects: kAbandonRule).
void AbandonRules(Execution& e, ConditionRun& cr, const std::string& why, EpochSeconds now,
                  Outcome* out) {
  for (const auto& [rule, id] : cr.latest) {
    RuleRun* r = e.FindRuleRun(id);
    if (r == nullptr || r->status != ActionStatus::kInProgress) continue;
    r->status = ActionStatus::kAbandoned;
    r->summary = why;
    r->updated = now;
    out->effects.push_back({Effect::Kind::kAbandonRule, e.id, r->id});
  }
  Touch(e, now, out);
}

// Settles `cr` from its rule runs: Failed as soon as one rule failed (the
// others are abandoned), Succeeded when all succeeded, else InProgress. A
// settled condition (Succeeded, Failed, Overridden, Cancelled) stays as is.
ConditionStatus Settle(Execution& e, ConditionRun& cr, EpochSeconds now, Outcome* out) {
  if (cr.status != ConditionStatus::kInProgress) return cr.status;
  bool running = false;
  for (const auto& [rule, id] : cr.latest) {
    const RuleRun* r = e.FindRuleRun(id);
    if (r == nullptr) continue;
    if (r->status == ActionStatus::kFailed || r->status == ActionStatus::kAbandoned) {
      cr.status = ConditionStatus::kFailed;
      cr.summary = "Rule " + rule + " failed" + (r->summary.empty() ? "." : ": " + r->summary);
      cr.updated = now;
      AbandonRules(e, cr, "Abandoned: rule " + rule + " failed, so the condition failed.", now,
                   out);
      return cr.status;
    }
    running |= r->status == ActionStatus::kInProgress;
  }
  if (running) return cr.status;
  cr.status = ConditionStatus::kSucceeded;
  cr.summary = "All rules succeeded.";
  cr.updated = now;
  Touch(e, now, out);
  return cr.status;
}

// An InProgress/Stopping stage run is always the one its execution is in.
// Matched by name, not by index into p.decl: a new version (rule 69) may have
// moved or dropped the stage while the execution still holds it.
bool StageLocked(const PipelineState& p, const std::string& stage, const std::string& except) {
  for (const auto& e : p.executions) {
    if (e.id == except || !e.in_stage || !e.Active()) continue;
    const StageRun* sr = e.FindStageRun(stage);
    if (sr != nullptr &&
        (sr->status == StageStatus::kInProgress || sr->status == StageStatus::kStopping)) {
      return true;
    }
  }
  return false;
}

// The stage run `e` is in (InProgress or Stopping), or nullptr.
StageRun* CurrentStageRun(Execution& e) {
  for (auto& sr : e.stages) {
    if (sr.status == StageStatus::kInProgress || sr.status == StageStatus::kStopping) return &sr;
  }
  return nullptr;
}

bool TransitionEnabled(const PipelineState& p, const std::string& stage) {
  auto it = p.transitions.find(stage);
  return it == p.transitions.end() || it->second.enabled;
}

void Finish(Execution& e, ExecutionStatus status, std::string summary, EpochSeconds now,
            Outcome* out) {
  e.status = status;
  if (!summary.empty()) e.status_summary = std::move(summary);
  Touch(e, now, out);
}

void EnterStage(PipelineState& p, Execution& e, const StageDecl& s, EpochSeconds now, IdSource& ids,
                Outcome* out) {
  e.in_stage = true;
  StageRun* sr = e.FindStageRun(s.name);
  if (sr == nullptr) {
    e.stages.push_back(StageRun{});
    sr = &e.stages.back();
    sr->stage = s.name;
  }
  sr->status = StageStatus::kInProgress;
  p.stage_latest[s.name] = e.id;
  // Rollback executions skip conditions: a gate must not block the way back,
  // and an onSuccess ROLLBACK must not roll back a rollback.
  if (!s.before_entry.empty() && e.execution_type != ExecutionType::kRollback) {
    StartCondition(p, e, *sr, s, ConditionKind::kBeforeEntry, now, ids, out);
    return;
  }
  sr->phase = StagePhase::kActions;
  StartGroup(p, e, *sr, s, 0, now, ids, out);
}

std::string FailedActions(const Execution& e, const StageRun& sr) {
  std::string which;
  for (const auto& [action, run_id] : sr.latest) {
    const ActionRun* r = e.FindRun(run_id);
    if (r != nullptr && r->status == ActionStatus::kFailed) {
      which += which.empty() ? action : ", " + action;
    }
  }
  return which;
}

// The stage is done without failure (Succeeded or Skipped): the execution
// moves on, or ends when it was the last stage (or a rollback's only one).
void LeaveStage(PipelineState& p, Execution& e, StageRun& sr, StageStatus status, EpochSeconds now,
                Outcome* out) {
  sr.status = status;
  e.in_stage = false;
  e.stage_index += 1;
  // A rollback execution runs only the rolled-back stage (rule 58).
  if (e.execution_type == ExecutionType::kRollback ||
      e.stage_index >= static_cast<int>(p.decl.stages.size())) {
    Finish(e, ExecutionStatus::kSucceeded, "", now, out);
  } else {
    Touch(e, now, out);
  }
}

// Rule 61: automatic rollback to the stage's last success in this version.
void AutoRollback(PipelineState& p, const Execution& e, const StageDecl& s, EpochSeconds now,
                  IdSource& ids, Outcome* out) {
  if (e.execution_type == ExecutionType::kRollback) return;
  const Execution* target = nullptr;
  for (const auto& other : p.executions) {
    const StageRun* osr = other.FindStageRun(s.name);
    if (other.id != e.id && osr != nullptr && osr->status == StageStatus::kSucceeded &&
        other.pipeline_version == p.decl.version &&
        other.execution_type != ExecutionType::kRollback) {
      target = &other;  // Executions are in start order: keep the most recent.
    }
  }
  if (target != nullptr) {
    const std::string target_id = target->id;
    (void)StartRollback(p, s.name, target_id, "AutomatedRollback", now, ids, out);
  }
}

// Progress of a stage run while one of its conditions decides (rules 62-64).
bool StepCondition(PipelineState& p, Execution& e, StageRun& sr, const StageDecl& s,
                   EpochSeconds now, IdSource& ids, Outcome* out) {
  const ConditionKind kind = KindOf(sr.phase);
  ConditionRun* cr = sr.FindCondition(kind);
  const auto& decls = s.Conditions(kind);
  if (cr == nullptr || decls.empty()) return false;  // Declaration changed: cancel handles it.
  if (e.stop_requested) {
    if (cr->status == ConditionStatus::kInProgress) {
      cr->status = ConditionStatus::kCancelled;
      cr->summary = "The execution was stopped.";
      cr->updated = now;
      AbandonRules(e, *cr, "Abandoned: the execution was stopped.", now, out);
    }
    sr.status = StageStatus::kStopped;
    Finish(e, ExecutionStatus::kStopped, "", now, out);
    return true;
  }
  const ConditionStatus st = Settle(e, *cr, now, out);
  if (st == ConditionStatus::kInProgress) return false;
  const bool passed = st == ConditionStatus::kSucceeded || st == ConditionStatus::kOverridden;
  const FailureResult result = decls.front().result;
  const std::string why = "Stage " + s.name + " failed: its " + ConditionLabel(kind) +
                          " condition failed (" + cr->summary + ")";
  switch (kind) {
    case ConditionKind::kBeforeEntry:
      if (passed) {
        sr.phase = StagePhase::kActions;
        StartGroup(p, e, sr, s, 0, now, ids, out);
      } else if (result == FailureResult::kSkip) {
        LeaveStage(p, e, sr, StageStatus::kSkipped, now, out);  // Rule 63.
      } else {
        sr.status = StageStatus::kFailed;
        Finish(e, ExecutionStatus::kFailed, why + ".", now, out);
      }
      return true;
    case ConditionKind::kOnSuccess:
      if (passed) {
        LeaveStage(p, e, sr, StageStatus::kSucceeded, now, out);
        return true;
      }
      sr.status = StageStatus::kFailed;
      if (result == FailureResult::kRollback) {
        Finish(e, ExecutionStatus::kFailed, why + "; rolling back.", now, out);
        AutoRollback(p, e, s, now, ids, out);
      } else {
        Finish(e, ExecutionStatus::kFailed, why + ".", now, out);
      }
      return true;
    case ConditionKind::kOnFailure:
      break;
  }
  // onFailure: the stage fails either way; a failed condition rolls back.
  sr.status = StageStatus::kFailed;
  const std::string failed =
      "Stage " + s.name + " failed: action(s) " + FailedActions(e, sr) + " failed.";
  if (!passed || st == ConditionStatus::kOverridden) {
    Finish(e, ExecutionStatus::kFailed, failed, now, out);
    if (st == ConditionStatus::kFailed) AutoRollback(p, e, s, now, ids, out);
  } else {
    Finish(e, ExecutionStatus::kFailed, failed + " Its onFailure condition passed: no rollback.",
           now, out);
  }
  return true;
}

// Progress of an execution inside its stage. Returns true if anything changed.
bool StepInStage(PipelineState& p, Execution& e, EpochSeconds now, IdSource& ids, Outcome* out) {
  if (e.cancel_requested) {
    // Rule 69: cancelled once its running actions complete. Uses the
    // execution's own stage run: the new declaration may have moved or
    // dropped the stage, so p.decl cannot locate it.
    StageRun* cur = CurrentStageRun(e);
    if (cur != nullptr) {
      for (const auto& [action, run_id] : cur->latest) {
        const ActionRun* r = e.FindRun(run_id);
        if (r != nullptr && r->status == ActionStatus::kInProgress) return false;
      }
      cur->status = StageStatus::kCancelled;
      for (auto& cr : cur->conditions) {
        if (cr.status != ConditionStatus::kInProgress) continue;
        cr.status = ConditionStatus::kCancelled;
        cr.updated = now;
        AbandonRules(e, cr, "Abandoned: the pipeline's definition was updated.", now, out);
      }
    }
    Finish(e, ExecutionStatus::kCancelled,
           "The pipeline's definition was updated before this execution could complete.", now, out);
    return true;
  }
  const StageDecl* s = StageOf(p, e, e.stage_index);
  if (s == nullptr) return false;
  StageRun* sr = e.FindStageRun(s->name);
  if (sr == nullptr) return false;
  if (sr->status != StageStatus::kInProgress && sr->status != StageStatus::kStopping) return false;
  if (sr->phase != StagePhase::kActions) return StepCondition(p, e, *sr, *s, now, ids, out);

  bool running = false, failed = false, abandoned = false;
  for (const auto& [action, run_id] : sr->latest) {
    const ActionRun* r = e.FindRun(run_id);
    if (r == nullptr || GroupOf(*s, action) > sr->group) continue;
    running |= r->status == ActionStatus::kInProgress;
    failed |= r->status == ActionStatus::kFailed;
    abandoned |= r->status == ActionStatus::kAbandoned;
  }
  if (running) return false;  // Rule 22: the group's running actions finish first.

  if (e.stop_requested) {
    sr->status = StageStatus::kStopped;
    Finish(e, ExecutionStatus::kStopped, "", now, out);
    return true;
  }
  if (failed || abandoned) {
    // Rule 53/57: one automatic retry, not for abandoned-only failures.
    if (failed && s->on_failure == FailureResult::kRetry && sr->auto_retries == 0) {
      RetryMode mode = s->on_failure_retry_mode == "ALL_ACTIONS" ? RetryMode::kAllActions
                                                                 : RetryMode::kFailedActions;
      sr->status = StageStatus::kFailed;
      e.status = ExecutionStatus::kFailed;
      auto r = RetryStage(p, e.id, s->name, mode, RetryTrigger::kAutomated, now, ids, out);
      if (r.ok()) {
        out->auto_retried.push_back(e.id + "/" + s->name);
        return true;
      }
    }
    // An onFailure condition decides whether the rollback happens.
    if (!s->on_failure_conditions.empty() && e.execution_type != ExecutionType::kRollback) {
      StartCondition(p, e, *sr, *s, ConditionKind::kOnFailure, now, ids, out);
      return true;
    }
    sr->status = StageStatus::kFailed;
    Finish(e, ExecutionStatus::kFailed,
           "Stage " + s->name + " failed: action(s) " + FailedActions(e, *sr) + " failed.", now,
           out);
    if (s->on_failure == FailureResult::kRollback) AutoRollback(p, e, *s, now, ids, out);
    return true;
  }
  // The group succeeded: next group, or the stage is done.
  if (sr->group + 1 < static_cast<int>(s->RunOrders().size())) {
    StartGroup(p, e, *sr, *s, sr->group + 1, now, ids, out);
    return true;
  }
  if (!s->on_success.empty() && e.execution_type != ExecutionType::kRollback) {
    StartCondition(p, e, *sr, *s, ConditionKind::kOnSuccess, now, ids, out);
    return true;
  }
  LeaveStage(p, e, *sr, StageStatus::kSucceeded, now, out);
  return true;
}

// Waiting executions try to enter their next stage.
bool StepWaiting(PipelineState& p, EpochSeconds now, IdSource& ids, Outcome* out) {
  bool changed = false;
  const bool parallel = p.decl.execution_mode == ExecutionMode::kParallel;
  for (size_t si = 0; si < p.decl.stages.size(); ++si) {
    const StageDecl& s = p.decl.stages[si];
    std::vector<Execution*> waiting;  // Oldest first.
    for (auto& e : p.executions) {
      if (e.status == ExecutionStatus::kInProgress && !e.in_stage &&
          e.stage_index == static_cast<int>(si)) {
        waiting.push_back(&e);
      }
    }
    if (waiting.empty()) continue;
    if (parallel) {
      for (Execution* e : waiting) EnterStage(p, *e, s, now, ids, out);
      changed = true;
      continue;
    }
    if (p.decl.execution_mode == ExecutionMode::kSuperseded && waiting.size() > 1) {
      // Rule 18: the newest waiting execution wins; older ones are superseded.
      for (size_t i = 0; i + 1 < waiting.size(); ++i) {
        Finish(*waiting[i], ExecutionStatus::kSuperseded,
               "Superseded by newer execution " + waiting.back()->id + " while waiting for stage " +
                   s.name + ".",
               now, out);
      }
      waiting = {waiting.back()};
      changed = true;
    }
    if (!TransitionEnabled(p, s.name) || StageLocked(p, s.name, "")) continue;
    // QUEUED: oldest first (FIFO); SUPERSEDED: the single survivor.
    EnterStage(p, *waiting.front(), s, now, ids, out);
    changed = true;
  }
  return changed;
}

// A fresh InProgress execution of the current version, not yet added to `p`.
Execution NewExecution(const PipelineState& p, const std::string& trigger_type,
                       const std::string& trigger_detail, EpochSeconds now, IdSource& ids) {
  Execution e;
  e.id = ids.NewId();
  e.pipeline = p.decl.name;
  e.pipeline_version = p.decl.version;
  e.started = now;
  e.updated = now;
  e.trigger_type = trigger_type;
  e.trigger_detail = trigger_detail;
  return e;
}

Status NotRetryable(std::string msg) {
  return FailedPrecondition(std::move(msg), "StageNotRetryableException");
}

}  // namespace

Execution& StartExecution(PipelineState& p, const std::string& trigger_type,
                          const std::string& trigger_detail, EpochSeconds now, IdSource& ids,
                          Outcome* out) {
  Execution e = NewExecution(p, trigger_type, trigger_detail, now, ids);
  p.executions.push_back(std::move(e));
  Execution& ref = p.executions.back();
  Touch(ref, now, out);
  return ref;
}

void Advance(PipelineState& p, EpochSeconds now, IdSource& ids, Outcome* out) {
  for (int guard = 0; guard < 10000; ++guard) {
    bool changed = false;
    for (size_t i = 0; i < p.executions.size(); ++i) {
      Execution& e = p.executions[i];
      if (e.Active() && e.in_stage) changed |= StepInStage(p, e, now, ids, out);
    }
    for (auto& e : p.executions) {
      // A stopped/cancelled execution waiting between stages ends at once.
      if (e.Active() && !e.in_stage && (e.stop_requested || e.cancel_requested)) {
        Finish(e, e.cancel_requested ? ExecutionStatus::kFailed : ExecutionStatus::kStopped,
               e.cancel_requested ? "The pipeline was updated while this execution waited to "
                                    "enter a stage."
                                  : "",
               now, out);
        changed = true;
      }
    }
    changed |= StepWaiting(p, now, ids, out);
    if (!changed) return;
  }
}

Status CompleteAction(PipelineState& p, const std::string& run_id, const ActionResult& result,
                      EpochSeconds now, Outcome* out) {
  for (auto& e : p.executions) {
    ActionRun* r = e.FindRun(run_id);
    if (r == nullptr) continue;
    if (r->status != ActionStatus::kInProgress) {
      return FailedPrecondition(
          "action execution " + run_id + " is already " + std::string(Name(r->status)),
          "InvalidJobStateException");
    }
    r->status = result.status;
    r->updated = now;
    r->summary = result.summary;
    r->error_code = result.error_code;
    r->error_message = result.error_message;
    r->outputs = result.outputs;
    r->output_variables = result.output_variables;
    r->token.clear();
    if (!result.revision_id.empty()) {
      r->revision_id = result.revision_id;
      r->revision_summary = result.revision_summary;
      r->revision_created = result.revision_created;
      r->revision_url = result.revision_url;
    }
    if (!result.entity_url.empty()) r->entity_url = result.entity_url;
    if (!result.external_id.empty()) r->external_id = result.external_id;
    if (!result.external_url.empty()) r->external_url = result.external_url;
    if (!result.updated_by.empty()) r->updated_by = result.updated_by;
    if (result.status == ActionStatus::kSucceeded) {
      // A rerun's outputs replace the earlier ones for later actions (rule 45).
      for (const auto& [name, rev] : result.outputs) e.artifacts[name] = rev;
    }
    out->changed_runs.insert(run_id);
    Touch(e, now, out);
    return Status::Ok();
  }
  // Rule runs report through the same paths (executors, jobs, timers).
  for (const auto& e : p.executions) {
    if (e.FindRuleRun(run_id) != nullptr) return CompleteRule(p, run_id, result, now, out);
  }
  return NotFound("no action execution " + run_id, "ActionExecutionNotFoundException");
}

Status StopExecution(PipelineState& p, const std::string& execution_id, bool abandon,
                     const std::string& reason, EpochSeconds now, Outcome* out) {
  Execution* e = p.FindExecution(execution_id);
  if (e == nullptr) {
    return FailedPrecondition("Pipeline execution " + execution_id + " of pipeline " + p.decl.name +
                                  " was not found, so it cannot be stopped.",
                              "PipelineExecutionNotStoppableException");
  }
  if (!e->Active()) {
    return FailedPrecondition("Pipeline execution " + execution_id + " is " +
                                  std::string(Name(e->status)) +
                                  "; only an InProgress execution can be stopped.",
                              "PipelineExecutionNotStoppableException");
  }
  if (e->status == ExecutionStatus::kStopping && (!abandon || e->abandon_requested)) {
    return FailedPrecondition("Pipeline execution " + execution_id + " is already stopping" +
                                  (e->abandon_requested ? " and abandoning its actions."
                                                        : "; to stop at once, stop it "
                                                          "again with abandon."),
                              "DuplicatedStopRequestException");
  }
  e->stop_requested = true;
  e->stop_reason = reason;
  e->abandon_requested = e->abandon_requested || abandon;
  if (e->in_stage) {
    e->status = ExecutionStatus::kStopping;
    const StageDecl* s = StageOf(p, *e, e->stage_index);
    StageRun* sr = s ? e->FindStageRun(s->name) : nullptr;
    if (sr != nullptr) {
      sr->status = StageStatus::kStopping;
      if (abandon) {
        for (const auto& [action, run_id] : sr->latest) {
          ActionRun* r = e->FindRun(run_id);
          if (r != nullptr && r->status == ActionStatus::kInProgress) {
            r->status = ActionStatus::kAbandoned;
            r->updated = now;
            r->token.clear();
            r->summary = "Abandoned: the execution was stopped" +
                         (reason.empty() ? std::string(".") : ": " + reason);
            out->changed_runs.insert(r->id);
            out->effects.push_back({Effect::Kind::kAbandonAction, e->id, r->id});
          }
        }
      }
    }
  }
  Touch(*e, now, out);
  return Status::Ok();
}

Result<RetryPlan> PlanRetry(const PipelineState& p, const std::string& execution_id,
                            const std::string& stage, RetryMode mode) {
  const StageDecl* s = p.decl.FindStage(stage);
  if (s == nullptr) {
    return NotFound("Stage '" + stage + "' does not exist in pipeline '" + p.decl.name +
                        "'; check the stage names with get-pipeline.",
                    "StageNotFoundException");
  }
  auto latest = p.stage_latest.find(stage);
  // Rule 52: in PARALLEL, retry applies per execution (no "latest" check).
  const bool parallel = p.decl.execution_mode == ExecutionMode::kParallel;
  if (!parallel && latest != p.stage_latest.end() && latest->second != execution_id) {
    return FailedPrecondition("Stage " + stage + " has run a later execution (" + latest->second +
                                  ") since " + execution_id +
                                  "; only the stage's latest execution can be retried. Use the "
                                  "id from get-pipeline-state.",
                              "NotLatestPipelineExecutionException");
  }
  const Execution* e = p.FindExecution(execution_id);
  const StageRun* sr = e ? e->FindStageRun(stage) : nullptr;
  if (e == nullptr || sr == nullptr || latest == p.stage_latest.end()) {
    return NotRetryable("Execution " + execution_id + " never ran stage " + stage +
                        ", so there is nothing to retry; start a new execution instead.");
  }
  if (e->status == ExecutionStatus::kSuperseded) {
    return NotRetryable("Execution " + execution_id +
                        " was superseded by a newer execution and cannot be retried.");
  }
  if (e->pipeline_version != p.decl.version || e->status == ExecutionStatus::kCancelled ||
      sr->status == StageStatus::kCancelled) {
    return NotRetryable("The pipeline structure changed since execution " + execution_id +
                        " ran (it ran version " + std::to_string(e->pipeline_version) +
                        ", the pipeline is now version " + std::to_string(p.decl.version) +
                        "); start a new execution (release change) instead.");
  }
  std::vector<std::string> running;
  for (const auto& [action, run_id] : sr->latest) {
    const ActionRun* r = e->FindRun(run_id);
    if (r != nullptr && r->status == ActionStatus::kInProgress) running.push_back(action);
  }
  if (sr->status == StageStatus::kInProgress || sr->status == StageStatus::kStopping ||
      !running.empty()) {
    // DECISION under rule 45: the message names the running actions.
    std::string names;
    for (const auto& n : running) names += names.empty() ? n : ", " + n;
    if (sr->attempt > 0 && sr->status == StageStatus::kInProgress) {
      return NotRetryable("Another retry attempt of stage " + stage + " is already in progress" +
                          (names.empty() ? std::string() : " (" + names + ")") +
                          "; wait for it to finish.");
    }
    return NotRetryable("Stage " + stage + " still has actions in progress" +
                        (names.empty() ? std::string() : " (" + names + ")") +
                        "; wait for them to finish (or stop the execution) and retry then.");
  }
  if (sr->status == StageStatus::kSucceeded) {
    return NotRetryable("Stage " + stage + " of execution " + execution_id +
                        " succeeded; it contains no failed actions to retry.");
  }
  if (sr->status == StageStatus::kSkipped) {
    return NotRetryable("Stage " + stage + " of execution " + execution_id +
                        " was skipped by its beforeEntry condition; there is nothing to retry.");
  }
  RetryPlan plan;
  // Failed (or stopped) by its beforeEntry condition: a retry evaluates the
  // condition again, then runs every action. Failed by its onSuccess
  // condition: FAILED_ACTIONS evaluates the condition again.
  if (sr->phase == StagePhase::kBeforeEntry ||
      (sr->phase == StagePhase::kOnSuccess && mode == RetryMode::kFailedActions)) {
    if (sr->phase == StagePhase::kBeforeEntry) {
      for (const auto& a : s->actions) plan.actions_after.push_back(a.name);
    }
    return plan;
  }
  std::vector<const ActionDecl*> ordered;
  for (const auto& a : s->actions) ordered.push_back(&a);
  std::stable_sort(ordered.begin(), ordered.end(), [](const ActionDecl* a, const ActionDecl* b) {
    return a->run_order < b->run_order;
  });
  for (const ActionDecl* a : ordered) {
    const int g = GroupOf(*s, a->name);
    auto it = sr->latest.find(a->name);
    const ActionRun* r = it == sr->latest.end() ? nullptr : e->FindRun(it->second);
    if (mode == RetryMode::kAllActions) {
      if (g == 0)
        plan.actions_to_rerun.push_back(a->name);
      else
        plan.actions_after.push_back(a->name);
      continue;
    }
    if (g <= sr->group && r != nullptr &&
        (r->status == ActionStatus::kFailed || r->status == ActionStatus::kAbandoned)) {
      plan.actions_to_rerun.push_back(a->name);
    } else if (g > sr->group) {
      plan.actions_after.push_back(a->name);
    }
  }
  if (mode == RetryMode::kAllActions) {
    // ALL_ACTIONS reruns the whole stage: list every action as rerun.
    plan.actions_to_rerun.insert(plan.actions_to_rerun.end(), plan.actions_after.begin(),
                                 plan.actions_after.end());
    plan.actions_after.clear();
  }
  if (mode == RetryMode::kFailedActions && plan.actions_to_rerun.empty() &&
      sr->status == StageStatus::kFailed) {
    return NotRetryable("Stage " + stage + " of execution " + execution_id +
                        " contains no failed actions to retry.");
  }
  // A stage stopped after its last group finished has nothing to rerun: the
  // retry just lets the execution continue (rule 37).
  if (mode == RetryMode::kFailedActions && plan.actions_to_rerun.empty() &&
      plan.actions_after.empty() && sr->status != StageStatus::kStopped) {
    return NotRetryable("Stage " + stage + " of execution " + execution_id +
                        " has no failed or unfinished actions to retry.");
  }
  return plan;
}

Result<RetryPlan> RetryStage(PipelineState& p, const std::string& execution_id,
                             const std::string& stage, RetryMode mode, RetryTrigger trigger,
                             EpochSeconds now, IdSource& ids, Outcome* out) {
  PW_ASSIGN_OR_RETURN(RetryPlan plan, PlanRetry(p, execution_id, stage, mode));
  Execution& e = *p.FindExecution(execution_id);
  const StageDecl& s = *p.decl.FindStage(stage);
  StageRun& sr = *e.FindStageRun(stage);
  sr.attempt += 1;
  if (trigger == RetryTrigger::kManual) {
    sr.manual_retries += 1;
    sr.latest_retry_trigger = RetryTrigger::kManual;
  } else {
    sr.auto_retries += 1;
    sr.latest_retry_trigger = RetryTrigger::kAutomated;
  }
  sr.status = StageStatus::kInProgress;
  e.status = ExecutionStatus::kInProgress;
  e.status_summary.clear();
  e.stop_requested = false;
  e.abandon_requested = false;
  e.stop_reason.clear();
  e.in_stage = true;
  e.stage_index = p.decl.StageIndex(stage);
  if (sr.phase == StagePhase::kBeforeEntry ||
      (sr.phase == StagePhase::kOnSuccess && mode == RetryMode::kFailedActions)) {
    StartCondition(p, e, sr, s, KindOf(sr.phase), now, ids, out);
    Touch(e, now, out);
    return plan;
  }
  sr.phase = StagePhase::kActions;
  if (mode == RetryMode::kAllActions) {
    StartGroup(p, e, sr, s, 0, now, ids, out);
  } else {
    for (const auto& name : plan.actions_to_rerun) {
      const ActionDecl* a = FindAction(s, name);
      if (a != nullptr) StartRun(p, e, sr, *a, now, ids, out);
    }
  }
  Touch(e, now, out);
  return plan;
}

Result<std::string> StartRollback(PipelineState& p, const std::string& stage,
                                  const std::string& target_id, const std::string& trigger_type,
                                  EpochSeconds now, IdSource& ids, Outcome* out) {
  const int index = p.decl.StageIndex(stage);
  if (index < 0) {
    return NotFound("Stage '" + stage + "' does not exist in pipeline '" + p.decl.name + "'.",
                    "StageNotFoundException");
  }
  auto unable = [](std::string msg) {
    return FailedPrecondition(std::move(msg), "UnableToRollbackStageException");
  };
  if (index == 0)
    return unable("Stage " + stage + " is the source stage; it cannot be rolled back.");
  if (p.decl.execution_mode == ExecutionMode::kParallel) {
    return unable("Rollback is not available for pipelines in PARALLEL execution mode.");
  }
  const Execution* target = p.FindExecution(target_id);
  if (target == nullptr) {
    return NotFound(
        "Pipeline execution " + target_id + " was not found in pipeline " + p.decl.name + ".",
        "PipelineExecutionNotFoundException");
  }
  const StageRun* tsr = target->FindStageRun(stage);
  if (target->execution_type == ExecutionType::kRollback || tsr == nullptr ||
      tsr->status != StageStatus::kSucceeded) {
    return unable("Execution " + target_id + " did not succeed in stage " + stage +
                  " (or is itself a rollback); choose a target from list-pipeline-executions "
                  "--filter succeededInStage={stageName=" +
                  stage + "}.");
  }
  if (target->pipeline_version != p.decl.version) {
    return FailedPrecondition(
        "Execution " + target_id + " ran pipeline version " +
            std::to_string(target->pipeline_version) + ", but the pipeline is now version " +
            std::to_string(p.decl.version) + "; it is outdated and cannot be a rollback target.",
        "PipelineExecutionOutdatedException");
  }
  for (const auto& e : p.executions) {
    const StageRun* sr = e.FindStageRun(stage);
    if (e.Active() && e.in_stage && sr != nullptr && e.stage_index == index &&
        (sr->status == StageStatus::kInProgress || sr->status == StageStatus::kStopping)) {
      return unable("Stage " + stage + " is currently running execution " + e.id +
                    "; wait for it to finish, or stop it, then roll back.");
    }
  }
  Execution e = NewExecution(p, trigger_type, target_id, now, ids);
  e.execution_type = ExecutionType::kRollback;
  e.rollback_target = target_id;
  e.artifacts = target->artifacts;  // Reuse the target's stored artifacts (rule 58).
  e.variables = target->variables;
  e.stage_index = index;
  e.in_stage = false;
  const std::string id = e.id;
  p.executions.push_back(std::move(e));
  Touch(p.executions.back(), now, out);
  return id;
}

Status SetTransition(PipelineState& p, const std::string& stage, bool enabled,
                     const std::string& reason, const std::string& by, EpochSeconds now) {
  if (p.decl.FindStage(stage) == nullptr) {
    return NotFound("Stage '" + stage + "' does not exist in pipeline '" + p.decl.name + "'.",
                    "StageNotFoundException");
  }
  TransitionState& t = p.transitions[stage];
  if (t.enabled == enabled && enabled) return Status::Ok();  // Rule 31: a no-op.
  t.enabled = enabled;
  t.disabled_reason = enabled ? "" : reason;
  t.last_changed_by = by;
  t.last_changed_at = now;
  return Status::Ok();
}

void ApplyNewVersion(PipelineState& p, PipelineDecl decl, EpochSeconds now, Outcome* out) {
  const bool keep = p.decl.execution_mode == ExecutionMode::kParallel &&
                    decl.execution_mode == ExecutionMode::kParallel;
  if (!keep) {
    for (auto& e : p.executions) {
      if (!e.Active()) continue;
      e.cancel_requested = true;
      Touch(e, now, out);
    }
  }
  // Transitions of stages that no longer exist are dropped.
  for (auto it = p.transitions.begin(); it != p.transitions.end();) {
    it = decl.FindStage(it->first) ? std::next(it) : p.transitions.erase(it);
  }
  p.decl = std::move(decl);
}

Result<std::string> FindApprovalRun(const PipelineState& p, const std::string& stage,
                                    const std::string& action, const std::string& token) {
  const StageDecl* s = p.decl.FindStage(stage);
  if (s == nullptr) {
    return NotFound("Stage '" + stage + "' does not exist in pipeline '" + p.decl.name + "'.",
                    "StageNotFoundException");
  }
  const ActionDecl* a = FindAction(*s, action);
  if (a == nullptr || a->type.category != "Approval") {
    return NotFound("Stage '" + stage + "' has no approval action named '" + action + "'.",
                    "ActionNotFoundException");
  }
  // PARALLEL mode: the token is the run id (rule 20); otherwise the stage's latest run.
  for (const auto& e : p.executions) {
    for (const auto& r : e.runs) {
      if (r.stage != stage || r.action != action) continue;
      if (r.token == token && r.status == ActionStatus::kInProgress) return r.id;
      if (p.decl.execution_mode == ExecutionMode::kParallel && r.id == token) {
        if (r.status != ActionStatus::kInProgress) {
          return FailedPrecondition("The approval was already " + std::string(Name(r.status)) + ".",
                                    "ApprovalAlreadyCompletedException");
        }
        return r.id;
      }
    }
  }
  // No open approval with that token: was there an open one at all?
  auto latest = p.stage_latest.find(stage);
  if (latest != p.stage_latest.end()) {
    const Execution* e = p.FindExecution(latest->second);
    const StageRun* sr = e ? e->FindStageRun(stage) : nullptr;
    auto it = sr ? sr->latest.find(action) : decltype(sr->latest.end()){};
    if (sr != nullptr && it != sr->latest.end()) {
      const ActionRun* r = e->FindRun(it->second);
      if (r != nullptr && r->status == ActionStatus::kInProgress) {
        return InvalidArgument("The approval token does not match the open approval of " + stage +
                                   "/" + action + "; take the token from get-pipeline-state.",
                               "InvalidApprovalTokenException");
      }
    }
  }
  return FailedPrecondition("Approval " + stage + "/" + action +
                                " is not waiting for a response (already approved, rejected, "
                                "timed out or never started).",
                            "ApprovalAlreadyCompletedException");
}

void FailInterruptedRuns(PipelineState& p, const std::function<bool(const ActionRun&)>& interrupted,
                         const std::string& message, EpochSeconds now, Outcome* out) {
  for (auto& e : p.executions) {
    for (auto& r : e.runs) {
      if (r.status != ActionStatus::kInProgress || !interrupted(r)) continue;
      r.status = ActionStatus::kFailed;
      r.updated = now;
      r.error_code = "JobFailed";
      r.error_message = message;
      r.summary = message;
      out->changed_runs.insert(r.id);
      Touch(e, now, out);
    }
  }
}

Status CompleteRule(PipelineState& p, const std::string& rule_run_id, const ActionResult& result,
                    EpochSeconds now, Outcome* out) {
  for (auto& e : p.executions) {
    RuleRun* r = e.FindRuleRun(rule_run_id);
    if (r == nullptr) continue;
    if (r->status != ActionStatus::kInProgress) {
      return FailedPrecondition(
          "rule execution " + rule_run_id + " is already " + std::string(Name(r->status)),
          "InvalidJobStateException");
    }
    r->status = result.status;
    r->updated = now;
    r->summary = result.summary;
    r->error_code = result.error_code;
    r->error_message = result.error_message;
    if (!result.external_id.empty()) r->external_id = result.external_id;
    if (!result.external_url.empty()) r->external_url = result.external_url;
    if (!result.updated_by.empty()) r->updated_by = result.updated_by;
    Touch(e, now, out);
    return Status::Ok();
  }
  return NotFound("no rule execution " + rule_run_id, "ActionExecutionNotFoundException");
}

Status OverrideCondition(PipelineState& p, const std::string& execution_id,
                         const std::string& stage, ConditionKind kind, EpochSeconds now,
                         Outcome* out) {
  const StageDecl* s = p.decl.FindStage(stage);
  if (s == nullptr) {
    return NotFound("Stage '" + stage + "' does not exist in pipeline '" + p.decl.name + "'.",
                    "StageNotFoundException");
  }
  auto not_overridable = [](std::string msg) {
    return FailedPrecondition(std::move(msg), "ConditionNotOverridableException");
  };
  const std::string label = ConditionLabel(kind);
  if (kind == ConditionKind::kOnFailure || s->Conditions(kind).empty()) {
    return not_overridable("Stage " + stage + " has no " + label + " condition to override.");
  }
  if (s->Conditions(kind).front().result == FailureResult::kSkip) {
    return not_overridable("The beforeEntry condition of stage " + stage +
                           " has result SKIP; SKIP conditions cannot be overridden (rule 63).");
  }
  auto latest = p.stage_latest.find(stage);
  if (latest == p.stage_latest.end() || latest->second != execution_id) {
    return FailedPrecondition("Execution " + execution_id +
                                  " is not the latest execution of stage " + stage +
                                  "; override the condition of the execution "
                                  "get-pipeline-state shows for the stage.",
                              "NotLatestPipelineExecutionException");
  }
  Execution* e = p.FindExecution(execution_id);
  StageRun* sr = e ? e->FindStageRun(stage) : nullptr;
  ConditionRun* cr = sr ? sr->FindCondition(kind) : nullptr;
  if (e == nullptr || sr == nullptr || cr == nullptr || sr->phase != PhaseOf(kind)) {
    return not_overridable("The " + label + " condition of stage " + stage +
                           " has not run in "
                           "execution " +
                           execution_id + "; there is nothing to override.");
  }
  const bool waiting = cr->status == ConditionStatus::kInProgress &&
                       (sr->status == StageStatus::kInProgress) && e->Active() &&
                       !e->stop_requested;
  const bool failed = cr->status == ConditionStatus::kFailed &&
                      sr->status == StageStatus::kFailed && e->status == ExecutionStatus::kFailed &&
                      s->Conditions(kind).front().result == FailureResult::kFail &&
                      e->pipeline_version == p.decl.version;
  if (!waiting && !failed) {
    return not_overridable("The " + label + " condition of stage " + stage + " in execution " +
                           execution_id + " is " + std::string(Name(cr->status)) +
                           "; only a condition in progress, or a failed FAIL condition that "
                           "failed the stage, can be overridden.");
  }
  AbandonRules(*e, *cr, "Abandoned: the condition was overridden.", now, out);
  cr->status = ConditionStatus::kOverridden;
  cr->summary = "Overridden with OverrideStageCondition.";
  cr->updated = now;
  if (failed) {
    // Resume where the condition stopped the execution.
    sr->status = StageStatus::kInProgress;
    e->status = ExecutionStatus::kInProgress;
    e->status_summary.clear();
    e->in_stage = true;
    e->stage_index = p.decl.StageIndex(stage);
  }
  Touch(*e, now, out);
  return Status::Ok();
}

const Execution* InboundExecution(const PipelineState& p, const std::string& stage) {
  const int index = p.decl.StageIndex(stage);
  const Execution* found = nullptr;
  for (const auto& e : p.executions) {
    if (e.status == ExecutionStatus::kInProgress && !e.in_stage && e.stage_index == index) {
      found = &e;  // The newest waiting one.
    }
  }
  return found;
}

}  // namespace pw::core
