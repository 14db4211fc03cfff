#pragma once

// Stage retry planning from the CLI: `retry-stage-execution --dry-run`,
// `--latest`, and the `get-stage-retry-plan` verb, all on the
// Pipewright_20261125.GetStageRetryPlan extension operation.
//
//   pipewright get-stage-retry-plan --pipeline-name p --stage-name Build --latest
//   pipewright retry-stage-execution --pipeline-name p --stage-name Build
//       --retry-mode FAILED_ACTIONS --latest --dry-run
//
// Thread-compatible, like CliContext.

#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/model.h"
#include "common/status.h"

namespace pw::cli {

inline constexpr std::string_view kGetStageRetryPlanTarget =
    "Pipewright_20261125.GetStageRetryPlan";

// `--latest`: sets input["pipelineExecutionId"] to the execution that last
// ran input["stageName"] of input["pipelineName"] (GetPipelineState). Fails
// with kInvalidArgument and an empty wire name, leaving `input` untouched, if
// a name is missing, an execution id is already set, the stage does not exist
// or never ran; a failed call's Status otherwise.
Status FillLatestStageExecution(const CliContext& ctx, OJson& input);

// `retry-stage-execution --dry-run` for the already validated
// RetryStageExecution `input`: prints the plan to ctx.out(). Returns 0 if
// input's retryMode may be retried; else writes "Retry not allowed (<code>):
// <reason>" to ctx.err() and returns 254, as a refused retry would.
int PrintRetryDryRun(const CliContext& ctx, const OJson& input);

// The `get-stage-retry-plan` verb: RetryStageExecution's flags (and
// --cli-input-json) with --retry-mode optional, plus --latest. Prints the
// plan and returns 0, whether or not it allows a retry.
int RunGetStageRetryPlan(const std::vector<std::string>& args, const CliContext& ctx);

// Removes every "--latest" from `args`; true if there was one.
bool TakeLatestFlag(std::vector<std::string>& args);

}  // namespace pw::cli
