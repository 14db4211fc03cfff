#pragma once

// `pipewright status NAME`: a pipeline at a glance, for people. Each stage and
// action with its status in words ("Waiting for approval", "Blocked at
// transition", "Waiting for a worker" beside the API's statuses), each
// failure's message, and the command that retries each failed stage.
//
//   pipewright status MyFirstPipeline
//   pipewright status MyFirstPipeline --wait    # follow the latest execution first
//
// Thread-compatible, like CliContext.

#include <string>
#include <vector>

#include "cli/cli.h"

namespace pw::cli {

// The `status` verb. Arguments: NAME or --name NAME, --wait, --wait-timeout S.
// Returns 0 after printing (without --wait); with --wait, follows the latest
// execution as start-pipeline-execution --wait does, prints the status and
// returns that wait's exit status; 252 for bad arguments; ctx.PrintError's
// status if a call fails.
int RunStatus(const std::vector<std::string>& args, const CliContext& ctx);

}  // namespace pw::cli
