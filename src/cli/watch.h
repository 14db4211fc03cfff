#pragma once

// `start-pipeline-execution --wait` and `retry-stage-execution --wait`:
// follow one pipeline execution to its end, printing a line per stage or
// action status change, every attempt of an action on its own line:
//
//   Source                  InProgress
//   Source/Source           InProgress
//   Source/Source           Succeeded
//   Source                  Succeeded
//   Build                   InProgress
//   Build/Compile           InProgress
//
// A stage or action seen for the first time already ended (it ran between
// two polls) gets its InProgress line first, so no transition is skipped.
// On failure the exact command that retries the failed stage is printed.
//
// Thread-compatible, like CliContext.

#include <chrono>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/cli.h"

namespace pw::cli {

// Exit statuses of WaitForExecution besides 0 (Succeeded) and ctx.PrintError's.
inline constexpr int kExitExecutionUnsuccessful = 1;
inline constexpr int kExitWaitTimeout = 2;

// What an execution showed before a retry: its stages' states and its action
// runs. WaitForExecution prints only what changes from it.
struct WaitBaseline {
  nlohmann::json state;              // GetPipelineState
  std::vector<nlohmann::json> runs;  // ListActionRuns
};

// For each Failed or Stopped stage in `state` (GetPipelineState) whose latest
// execution is `execution_id` (any, if ""): writes to `out` the command that
// retries its failed actions, once GetStageRetryPlan says the server would
// accept it, or why it cannot be retried.
void PrintRetryHints(const CliContext& ctx, std::ostream& out, const std::string& pipeline,
                     const std::string& execution_id, const nlohmann::json& state);

// Reads the baseline of `execution_id`. Errors: as CliContext::Call.
Result<WaitBaseline> ReadWaitBaseline(const CliContext& ctx, const std::string& pipeline,
                                      const std::string& execution_id);

// Polls GetPipelineExecution, GetPipelineState and ListActionExecutions every
// PollInterval() until execution `execution_id` of `pipeline` ends, writing
// status changes to ctx.out(). Returns 0 if it Succeeded; 1 if it ended
// otherwise (Failed, Stopped, Superseded, Cancelled), after writing its
// statusSummary, its failed actions' error messages, the command that shows
// each one's log and the command that retries each failed stage (or why it
// cannot be retried) to ctx.err(); 2 if `timeout` passed first;
// ctx.PrintError's status if a call fails. `baseline` (nullable, borrowed for
// the call) holds what was already shown.
int WaitForExecution(const CliContext& ctx, const std::string& pipeline,
                     const std::string& execution_id, std::chrono::milliseconds timeout,
                     const WaitBaseline* baseline = nullptr);

}  // namespace pw::cli
