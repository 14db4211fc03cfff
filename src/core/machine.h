#pragma once

// The execution state machine: every rule of semantics.md sections B-G that
// decides what happens next, as functions that change a PipelineState and
// report the effects to perform. Pure: no I/O, no clock (time is passed in),
// no threads, no randomness (ids come from an IdSource). The engine persists
// the changed executions, then performs the effects.
//
//   Outcome out;
//   Execution& e = StartExecution(state, "StartPipelineExecution", "user", now, ids, &out);
//   Advance(state, now, ids, &out);   // enters stage 1, starts its first group
//   for (const Effect& fx : out.effects) ...   // kStartAction: run it
//
// Thread-compatible: callers serialize access to a PipelineState.

#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/execution.h"

namespace pw::core {

// Source of fresh identifiers (action execution ids, execution ids, tokens).
class IdSource {
 public:
  virtual ~IdSource() = default;
  virtual std::string NewId() = 0;
};

struct Effect {
  enum class Kind {
    kStartAction,    // Start the work of run `run_id` (spawn, open approval, dispatch job).
    kAbandonAction,  // Stop caring about run `run_id`: kill its process, cancel its job.
    kStartRule,      // Evaluate rule run `run_id` (Execution::rule_runs): run, wait, dispatch.
    kAbandonRule,    // Stop evaluating rule run `run_id`.
  };
  Kind kind;
  std::string execution_id;
  std::string run_id;
};

// What a call changed and what the engine must now do.
struct Outcome {
  std::vector<Effect> effects;
  std::set<std::string> changed_executions;  // Persist these executions…
  std::set<std::string> changed_runs;        // …and these action runs, in one transaction.
  std::vector<std::string> auto_retried;     // "execution/stage" retried automatically.
};

// The result an action reports.
struct ActionResult {
  ActionStatus status = ActionStatus::kSucceeded;  // kSucceeded or kFailed.
  std::string summary;
  std::string error_code;  // JobFailed, PermissionError, … when failed.
  std::string error_message;
  std::map<std::string, std::string> outputs;  // Artifact name -> revision.
  std::map<std::string, std::string> output_variables;
  std::string revision_id;
  std::string revision_summary;
  EpochSeconds revision_created = 0;
  std::string revision_url;  // The revision's web page (a commit, an object version), if any.
  std::string entity_url;    // The source's web page (a repository, a bucket), if any.
  std::string external_id;
  std::string external_url;
  std::string updated_by;
};

enum class RetryMode { kFailedActions, kAllActions };

struct RetryPlan {
  std::vector<std::string> actions_to_rerun;  // In runOrder, then declaration order.
  std::vector<std::string> actions_after;     // Never-run later groups that follow.
};

// Creates an InProgress execution waiting to enter the first stage. Returns it.
Execution& StartExecution(PipelineState& p, const std::string& trigger_type,
                          const std::string& trigger_detail, EpochSeconds now, IdSource& ids,
                          Outcome* out);

// Moves every active execution as far as the rules allow: enters stages
// (locks, transitions, SUPERSEDED/QUEUED/PARALLEL), starts the next runOrder
// group, finishes stages and executions, supersedes waiting executions,
// triggers the automatic stage retry. Idempotent.
void Advance(PipelineState& p, EpochSeconds now, IdSource& ids, Outcome* out);

// Records an action's result. A run that is no longer InProgress (abandoned,
// or already finished) is left unchanged: returns kFailedPrecondition.
// kNotFound if no such run. An id of a rule run is passed to CompleteRule, so
// executors, jobs and timers report rules the way they report actions. Call
// Advance afterwards.
Status CompleteAction(PipelineState& p, const std::string& run_id, const ActionResult& result,
                      EpochSeconds now, Outcome* out);

// Rules 33-39. Errors: PipelineExecutionNotStoppableException,
// DuplicatedStopRequestException. Call Advance afterwards.
Status StopExecution(PipelineState& p, const std::string& execution_id, bool abandon,
                     const std::string& reason, EpochSeconds now, Outcome* out);

// Decides whether `stage` of `execution_id` may be retried now in `mode`
// (rules 40-52 and the DECISION under 45) and which actions would rerun.
// Never changes anything. Errors: StageNotFoundException,
// NotLatestPipelineExecutionException, StageNotRetryableException; each
// message says why and what to do instead.
Result<RetryPlan> PlanRetry(const PipelineState& p, const std::string& execution_id,
                            const std::string& stage, RetryMode mode);

// Applies the plan: new runs for the actions to rerun, same execution id,
// execution and stage back to InProgress, retry metadata updated.
Result<RetryPlan> RetryStage(PipelineState& p, const std::string& execution_id,
                             const std::string& stage, RetryMode mode, RetryTrigger trigger,
                             EpochSeconds now, IdSource& ids, Outcome* out);

// Starts a rollback of `stage` to the target execution (rules 58-60): a new
// execution of type ROLLBACK that reuses the target's artifacts and runs only
// that stage. Returns its id. Errors: StageNotFoundException,
// PipelineExecutionNotFoundException, PipelineExecutionOutdatedException
// (target ran another version), UnableToRollbackStageException (source
// stage, PARALLEL mode, target did not succeed there or is a rollback, stage
// running). Call Advance afterwards.
Result<std::string> StartRollback(PipelineState& p, const std::string& stage,
                                  const std::string& target_id, const std::string& trigger_type,
                                  EpochSeconds now, IdSource& ids, Outcome* out);

// Enables or disables the inbound transition of `stage` (rules 26-31).
// StageNotFoundException for an unknown stage. Call Advance afterwards.
Status SetTransition(PipelineState& p, const std::string& stage, bool enabled,
                     const std::string& reason, const std::string& by, EpochSeconds now);

// A new pipeline version (rule 69): active executions are cancelled after
// their in-progress actions complete, waiting ones fail; PARALLEL to PARALLEL
// leaves them running. Replaces p.decl. Call Advance afterwards.
void ApplyNewVersion(PipelineState& p, PipelineDecl decl, EpochSeconds now, Outcome* out);

// The open approval run of `stage`/`action` in the stage's latest execution.
// Errors (rule 71): ActionNotFoundException, ApprovalAlreadyCompletedException,
// InvalidApprovalTokenException.
Result<std::string> FindApprovalRun(const PipelineState& p, const std::string& stage,
                                    const std::string& action, const std::string& token);

// Marks every InProgress run for which `interrupted(run)` is true as Failed
// with `message` (crash recovery: their processes died with the server).
void FailInterruptedRuns(PipelineState& p, const std::function<bool(const ActionRun&)>& interrupted,
                         const std::string& message, EpochSeconds now, Outcome* out);

// Records a rule's result (status kSucceeded or kFailed), like
// CompleteAction. kFailedPrecondition if the rule run is no longer
// InProgress, kNotFound if there is no such rule run. Call Advance afterwards.
Status CompleteRule(PipelineState& p, const std::string& rule_run_id, const ActionResult& result,
                    EpochSeconds now, Outcome* out);

// Rule 64, OverrideStageCondition: the condition `kind` (kBeforeEntry or
// kOnSuccess) of `stage` in `execution_id` becomes Overridden and its running
// rules Abandoned; the stage proceeds (beforeEntry: its actions start;
// onSuccess: it succeeds). Works on a condition in progress, and on a failed
// FAIL condition whose stage failed because of it (the execution resumes).
// Errors: StageNotFoundException, NotLatestPipelineExecutionException (not
// the stage's latest execution), ConditionNotOverridableException (a SKIP
// condition, nothing in progress or failed to override, a rollback already
// started). Call Advance afterwards.
Status OverrideCondition(PipelineState& p, const std::string& execution_id,
                         const std::string& stage, ConditionKind kind, EpochSeconds now,
                         Outcome* out);

// The execution waiting at `stage`'s inbound transition, or nullptr.
const Execution* InboundExecution(const PipelineState& p, const std::string& stage);

}  // namespace pw::core
