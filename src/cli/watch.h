#pragma once

// `start-pipeline-execution --wait`: follows one pipeline execution to its
// end, printing a line per stage or action status change:
//
//   Source                  Succeeded
//   Build                   InProgress
//   Build/Compile           InProgress
//
// Thread-compatible, like CliContext.

#include <chrono>
#include <string>

#include "cli/cli.h"

namespace pw::cli {

// Exit statuses of WaitForExecution besides 0 (Succeeded) and ctx.PrintError's.
inline constexpr int kExitExecutionUnsuccessful = 1;
inline constexpr int kExitWaitTimeout = 2;

// Polls GetPipelineExecution, GetPipelineState and ListActionExecutions every
// PollInterval() until execution `execution_id` of `pipeline` ends, writing
// status changes to ctx.out(). Returns 0 if it Succeeded; 1 if it ended
// otherwise (Failed, Stopped, Superseded, Cancelled), after writing its
// statusSummary and its failed actions' error messages to ctx.err(); 2 if
// `timeout` passed first; ctx.PrintError's status if a call fails.
int WaitForExecution(const CliContext& ctx, const std::string& pipeline,
                     const std::string& execution_id, std::chrono::milliseconds timeout);

}  // namespace pw::cli
