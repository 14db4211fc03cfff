#pragma once

// Execution state: one pipeline's executions, their stage runs and every
// action attempt, plus stage transitions and which execution last entered
// each stage. Plain data; the rules that change it live in machine.h.
// Thread-compatible.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "core/pipeline.h"

namespace pw::core {

enum class ExecutionStatus {
  kInProgress,  // Running, or waiting to enter its next stage.
  kStopping,    // Stop requested; in-progress actions finish or are abandoned.
  kStopped,     // Stopped by a user; the stopped stage can be retried.
  kSucceeded,   // Every stage succeeded.
  kSuperseded,  // A newer execution overtook it while it waited between stages.
  kFailed,      // A stage failed (retryable while it is the stage's latest).
  kCancelled,   // The pipeline was updated before it could complete.
};

enum class StageStatus {
  kInProgress,
  kStopping,
  kStopped,
  kSucceeded,
  kFailed,
  kCancelled,
  kSkipped,  // Its beforeEntry SKIP condition failed: its actions did not run.
};

// The model's ConditionExecutionStatus.
enum class ConditionStatus {
  kInProgress,  // A rule is still being evaluated.
  kFailed,      // A rule failed: the condition's result engaged.
  kErrored,     // Not used by Pipewright (a rule that cannot run fails).
  kSucceeded,   // Every rule succeeded.
  kCancelled,   // The stage was stopped while the condition was evaluated.
  kAbandoned,   // Not used by Pipewright.
  kOverridden,  // OverrideStageCondition let the stage proceed (rule 64).
};

// What part of a stage run is going on.
enum class StagePhase {
  kActions,      // The runOrder groups.
  kBeforeEntry,  // The beforeEntry condition is (or was last) evaluated.
  kOnSuccess,    // Every action succeeded; the onSuccess condition decides.
  kOnFailure,    // An action failed; the onFailure condition decides on rollback.
};

enum class ActionStatus {
  kInProgress,
  kAbandoned,  // Stop-and-abandon: no longer waited for.
  kSucceeded,
  kFailed,
};

std::string_view Name(ExecutionStatus s);
std::string_view Name(StageStatus s);
std::string_view Name(ActionStatus s);
std::string_view Name(ConditionStatus s);
std::string_view Name(StagePhase s);
std::optional<ConditionStatus> ParseConditionStatus(std::string_view s);
std::optional<StagePhase> ParseStagePhase(std::string_view s);
std::optional<ConditionKind> ParseConditionKind(std::string_view s);
std::optional<ExecutionStatus> ParseExecutionStatus(std::string_view s);
std::optional<StageStatus> ParseStageStatus(std::string_view s);
std::optional<ActionStatus> ParseActionStatus(std::string_view s);

// The model's ExecutionType: STANDARD, ROLLBACK.
enum class ExecutionType { kStandard, kRollback };
std::string_view Name(ExecutionType t);
std::optional<ExecutionType> ParseExecutionType(std::string_view s);

// Who retried a stage last (the model's RetryTrigger): ManualStageRetry,
// AutomatedStageRetry.
enum class RetryTrigger { kManual, kAutomated };
std::string_view Name(RetryTrigger t);
std::optional<RetryTrigger> ParseRetryTrigger(std::string_view s);

// One attempt of one action. Never overwritten by a retry: a retry adds a run.
struct ActionRun {
  std::string id;  // actionExecutionId.
  std::string execution_id;
  std::string stage;
  std::string action;
  int stage_attempt = 0;  // 0 = first entry into the stage, +1 per retry.
  ActionStatus status = ActionStatus::kInProgress;
  EpochSeconds started = 0;
  EpochSeconds updated = 0;
  std::string summary;
  std::string error_code;  // errorDetails.code when Failed.
  std::string error_message;
  std::string token;  // Open approval token.
  std::string external_id;
  std::string external_url;
  std::string updated_by;
  int percent_complete = -1;                   // -1 = not reported.
  std::map<std::string, std::string> inputs;   // Artifact name -> revision.
  std::map<std::string, std::string> outputs;  // Artifact name -> revision.
  std::map<std::string, std::string> output_variables;
  // The action's configuration and environment with every #{…} resolved
  // when the run started (what the work really used).
  std::map<std::string, std::string> resolved_configuration;
  std::map<std::string, std::string> resolved_environment;
  std::string revision_id;  // Source actions: the revision they produced.
  std::string revision_summary;
  EpochSeconds revision_created = 0;
  std::string revision_url;  // revisionUrl: the revision's web page, if the source has one.
  std::string entity_url;    // entityUrl: the source's web page, if it has one.
};

// One evaluation of one rule (ListRuleExecutions' RuleExecutionDetail).
// Statuses are the model's RuleExecutionStatus, the same values as actions'.
struct RuleRun {
  std::string id;  // ruleExecutionId.
  std::string execution_id;
  std::string stage;
  std::string rule;
  ConditionKind kind = ConditionKind::kBeforeEntry;
  int stage_attempt = 0;
  ActionStatus status = ActionStatus::kInProgress;
  EpochSeconds started = 0;
  EpochSeconds updated = 0;
  std::string summary;
  std::string error_code;
  std::string error_message;
  std::string external_id;
  std::string external_url;
  std::string updated_by;
  std::map<std::string, std::string> resolved_configuration;
  std::map<std::string, std::string> inputs;  // Artifact name -> revision.
};

// The latest evaluation of one condition of a stage run.
struct ConditionRun {
  ConditionKind kind = ConditionKind::kBeforeEntry;
  ConditionStatus status = ConditionStatus::kInProgress;
  std::string summary;
  EpochSeconds started = 0;
  EpochSeconds updated = 0;
  std::map<std::string, std::string> latest;  // Rule name -> its RuleRun id.
};

struct StageRun {
  std::string stage;
  StageStatus status = StageStatus::kInProgress;
  int group = 0;    // Index into the stage's RunOrders() being run.
  int attempt = 0;  // Retries so far (manual + automatic).
  int manual_retries = 0;
  int auto_retries = 0;
  std::optional<RetryTrigger> latest_retry_trigger;  // None before the first retry.
  std::map<std::string, std::string> latest;         // Action name -> its latest ActionRun id.
  StagePhase phase = StagePhase::kActions;
  std::vector<ConditionRun> conditions;  // At most one per kind: the latest evaluation.

  ConditionRun* FindCondition(ConditionKind k);
  const ConditionRun* FindCondition(ConditionKind k) const;
};

// One entry of StartPipelineExecution.sourceRevisions: run source action
// `action` at this revision instead of its latest.
struct SourceRevisionOverride {
  std::string action;
  std::string type;  // COMMIT_ID, S3_OBJECT_VERSION_ID, S3_OBJECT_KEY, IMAGE_DIGEST.
  std::string value;
  bool operator==(const SourceRevisionOverride&) const = default;
};

struct Execution {
  std::string id;
  std::string pipeline;
  int pipeline_version = 1;
  ExecutionStatus status = ExecutionStatus::kInProgress;
  std::string status_summary;
  EpochSeconds started = 0;
  EpochSeconds updated = 0;
  std::string trigger_type;  // StartPipelineExecution, CreatePipeline, PollForSourceChanges…
  std::string trigger_detail;
  ExecutionType execution_type = ExecutionType::kStandard;
  std::string rollback_target;
  std::string stop_reason;
  bool stop_requested = false;
  bool abandon_requested = false;
  bool cancel_requested = false;  // The definition changed (rule 69).
  int stage_index = 0;            // The stage it is in, or waiting to enter.
  bool in_stage = false;          // false: waiting at stages[stage_index]'s inbound transition.
  std::vector<StageRun> stages;   // In the order entered; one per stage name.
  std::map<std::string, std::string> artifacts;  // Name -> current revision.
  std::map<std::string, std::string> variables;  // Pipeline variables of this execution.
  // StartPipelineExecution.sourceRevisions: kept, so a retry of the source
  // stage runs the same revisions.
  std::vector<SourceRevisionOverride> source_revisions;
  std::vector<ActionRun> runs;     // Every attempt, in start order.
  std::vector<RuleRun> rule_runs;  // Every rule evaluation, in start order.

  bool Active() const {
    return status == ExecutionStatus::kInProgress || status == ExecutionStatus::kStopping;
  }
  StageRun* FindStageRun(const std::string& stage);
  const StageRun* FindStageRun(const std::string& stage) const;
  ActionRun* FindRun(const std::string& run_id);
  const ActionRun* FindRun(const std::string& run_id) const;
  RuleRun* FindRuleRun(const std::string& rule_run_id);
  const RuleRun* FindRuleRun(const std::string& rule_run_id) const;
};

struct TransitionState {
  bool enabled = true;
  std::string disabled_reason;
  std::string last_changed_by;
  EpochSeconds last_changed_at = 0;
};

struct PipelineState {
  PipelineDecl decl;                                   // The current version.
  std::map<std::string, TransitionState> transitions;  // By stage name; absent = enabled.
  std::map<std::string, std::string> stage_latest;     // Stage -> execution that last entered.
  std::vector<Execution> executions;                   // In start order.

  Execution* FindExecution(const std::string& id);
  const Execution* FindExecution(const std::string& id) const;
};

}  // namespace pw::core
