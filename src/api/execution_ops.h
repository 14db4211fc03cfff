#pragma once

// Execution operations: StartPipelineExecution, StopPipelineExecution,
// GetPipelineExecution, ListPipelineExecutions, GetPipelineState,
// ListActionExecutions, RetryStageExecution, Enable/DisableStageTransition,
// PutApprovalResult, ListActionTypes, GetActionType, and the extension
// Pipewright_20261125.GetStageRetryPlan. The engine must outlive the dispatcher.

#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "api/dispatcher.h"
#include "core/execution.h"
#include "engine/engine.h"

namespace pw::api {

void RegisterExecutionOps(Dispatcher& d, engine::Engine& engine);

// The pure renderings behind these operations, exposed for tests. `p` is the
// pipeline's state (GetSnapshot); none of them modifies it.

// The source action runs whose revisions an execution reports (sourceRevisions,
// artifactRevisions): the latest run of each source action that produced a
// revision; for a rollback execution, those of the execution it rolls back to.
std::vector<const core::ActionRun*> SourceRuns(const core::PipelineState& p,
                                               const core::Execution& e);

// One StageState of GetPipelineState (current_only snapshot).
nlohmann::json StageStateJson(const core::PipelineState& p, const core::StageDecl& s);

// One ActionExecutionDetail of ListActionExecutions. `declaration` is the
// stored pipeline declaration: artifact locations name its artifact store.
nlohmann::json ActionExecutionDetail(const core::PipelineState& p,
                                     const nlohmann::json& declaration, const core::Execution& e,
                                     const core::ActionRun& r);

// The action runs ListActionExecutions lists for `filter` (its
// ActionExecutionFilter, or null), newest first. filter.latestInPipelineExecution
// with startTimeRange Latest keeps only the latest attempt of each action of
// that execution; All keeps every attempt. Errors: ValidationException when
// both pipelineExecutionId and latestInPipelineExecution are given;
// PipelineExecutionNotFoundException for an unknown execution.
Result<std::vector<std::pair<const core::Execution*, const core::ActionRun*>>> FilterActionRuns(
    const core::PipelineState& p, const nlohmann::json& filter);

}  // namespace pw::api
