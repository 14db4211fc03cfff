#pragma once

// Execution operations: StartPipelineExecution, StopPipelineExecution,
// GetPipelineExecution, ListPipelineExecutions, GetPipelineState,
// ListActionExecutions, RetryStageExecution, Enable/DisableStageTransition,
// PutApprovalResult, ListActionTypes, GetActionType, and the extension
// Pipewright_20261125.GetStageRetryPlan. The engine must outlive the dispatcher.

#include "api/dispatcher.h"
#include "engine/engine.h"

namespace pw::api {

void RegisterExecutionOps(Dispatcher& d, engine::Engine& engine);

}  // namespace pw::api
