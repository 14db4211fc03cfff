#include "core/execution.h"

#include <array>
#include <utility>

namespace pw::core {
namespace {

constexpr std::array<std::pair<ExecutionStatus, std::string_view>, 7> kExec = {{
    {ExecutionStatus::kInProgress, "InProgress"},
    {ExecutionStatus::kStopping, "Stopping"},
    {ExecutionStatus::kStopped, "Stopped"},
    {ExecutionStatus::kSucceeded, "Succeeded"},
    {ExecutionStatus::kSuperseded, "Superseded"},
    {ExecutionStatus::kFailed, "Failed"},
    {ExecutionStatus::kCancelled, "Cancelled"},
}};
constexpr std::array<std::pair<StageStatus, std::string_view>, 7> kStage = {{
    {StageStatus::kSkipped, "Skipped"},
    {StageStatus::kInProgress, "InProgress"},
    {StageStatus::kStopping, "Stopping"},
    {StageStatus::kStopped, "Stopped"},
    {StageStatus::kSucceeded, "Succeeded"},
    {StageStatus::kFailed, "Failed"},
    {StageStatus::kCancelled, "Cancelled"},
}};
constexpr std::array<std::pair<ActionStatus, std::string_view>, 4> kAction = {{
    {ActionStatus::kInProgress, "InProgress"},
    {ActionStatus::kAbandoned, "Abandoned"},
    {ActionStatus::kSucceeded, "Succeeded"},
    {ActionStatus::kFailed, "Failed"},
}};

constexpr std::array<std::pair<ConditionStatus, std::string_view>, 7> kCondition = {{
    {ConditionStatus::kInProgress, "InProgress"},
    {ConditionStatus::kFailed, "Failed"},
    {ConditionStatus::kErrored, "Errored"},
    {ConditionStatus::kSucceeded, "Succeeded"},
    {ConditionStatus::kCancelled, "Cancelled"},
    {ConditionStatus::kAbandoned, "Abandoned"},
    {ConditionStatus::kOverridden, "Overridden"},
}};
constexpr std::array<std::pair<StagePhase, std::string_view>, 4> kPhase = {{
    {StagePhase::kActions, "actions"},
    {StagePhase::kBeforeEntry, "beforeEntry"},
    {StagePhase::kOnSuccess, "onSuccess"},
    {StagePhase::kOnFailure, "onFailure"},
}};
constexpr std::array<std::pair<ConditionKind, std::string_view>, 3> kKind = {{
    {ConditionKind::kBeforeEntry, "BEFORE_ENTRY"},
    {ConditionKind::kOnSuccess, "ON_SUCCESS"},
    {ConditionKind::kOnFailure, "ON_FAILURE"},
}};

template <typename T, size_t N>
std::string_view NameOf(const std::array<std::pair<T, std::string_view>, N>& table, T v) {
  for (const auto& [k, name] : table) {
    if (k == v) return name;
  }
  return "";
}

template <typename T, size_t N>
std::optional<T> Parse(const std::array<std::pair<T, std::string_view>, N>& table,
                       std::string_view s) {
  for (const auto& [k, name] : table) {
    if (name == s) return k;
  }
  return std::nullopt;
}

}  // namespace

std::string_view Name(ExecutionStatus s) { return NameOf(kExec, s); }
std::string_view Name(StageStatus s) { return NameOf(kStage, s); }
std::string_view Name(ActionStatus s) { return NameOf(kAction, s); }
std::string_view Name(ConditionStatus s) { return NameOf(kCondition, s); }
std::string_view Name(StagePhase s) { return NameOf(kPhase, s); }
std::string_view Name(ConditionKind k) { return NameOf(kKind, k); }
std::optional<ConditionStatus> ParseConditionStatus(std::string_view s) {
  return Parse(kCondition, s);
}
std::optional<StagePhase> ParseStagePhase(std::string_view s) { return Parse(kPhase, s); }
std::optional<ConditionKind> ParseConditionKind(std::string_view s) { return Parse(kKind, s); }
std::optional<ExecutionStatus> ParseExecutionStatus(std::string_view s) { return Parse(kExec, s); }
std::optional<StageStatus> ParseStageStatus(std::string_view s) { return Parse(kStage, s); }
std::optional<ActionStatus> ParseActionStatus(std::string_view s) { return Parse(kAction, s); }

std::string_view Name(ExecutionType t) {
  return t == ExecutionType::kRollback ? "ROLLBACK" : "STANDARD";
}
std::optional<ExecutionType> ParseExecutionType(std::string_view s) {
  if (s == "STANDARD") return ExecutionType::kStandard;
  if (s == "ROLLBACK") return ExecutionType::kRollback;
  return std::nullopt;
}
std::string_view Name(RetryTrigger t) {
  return t == RetryTrigger::kAutomated ? "AutomatedStageRetry" : "ManualStageRetry";
}
std::optional<RetryTrigger> ParseRetryTrigger(std::string_view s) {
  if (s == "ManualStageRetry") return RetryTrigger::kManual;
  if (s == "AutomatedStageRetry") return RetryTrigger::kAutomated;
  return std::nullopt;
}

StageRun* Execution::FindStageRun(const std::string& stage) {
  for (auto& s : stages) {
    if (s.stage == stage) return &s;
  }
  return nullptr;
}
const StageRun* Execution::FindStageRun(const std::string& stage) const {
  return const_cast<Execution*>(this)->FindStageRun(stage);  // NOLINT: same lookup.
}
ActionRun* Execution::FindRun(const std::string& run_id) {
  for (auto& r : runs) {
    if (r.id == run_id) return &r;
  }
  return nullptr;
}
const ActionRun* Execution::FindRun(const std::string& run_id) const {
  return const_cast<Execution*>(this)->FindRun(run_id);  // NOLINT: same lookup.
}

RuleRun* Execution::FindRuleRun(const std::string& rule_run_id) {
  for (auto& r : rule_runs) {
    if (r.id == rule_run_id) return &r;
  }
  return nullptr;
}
const RuleRun* Execution::FindRuleRun(const std::string& rule_run_id) const {
  return const_cast<Execution*>(this)->FindRuleRun(rule_run_id);  // NOLINT: same lookup.
}
ConditionRun* StageRun::FindCondition(ConditionKind k) {
  for (auto& c : conditions) {
    if (c.kind == k) return &c;
  }
  return nullptr;
}
const ConditionRun* StageRun::FindCondition(ConditionKind k) const {
  return const_cast<StageRun*>(this)->FindCondition(k);  // NOLINT: same lookup.
}

Execution* PipelineState::FindExecution(const std::string& id) {
  for (auto& e : executions) {
    if (e.id == id) return &e;
  }
  return nullptr;
}
const Execution* PipelineState::FindExecution(const std::string& id) const {
  return const_cast<PipelineState*>(this)->FindExecution(id);  // NOLINT: same lookup.
}

}  // namespace pw::core
