#pragma once

// The `logs` verb: prints an action execution's log, optionally following it
// while the action runs.
//
//   pipewright logs --pipeline-name p --action-name Compile            # latest execution
//   pipewright logs --pipeline-name p --pipeline-execution-id E
//       --action-name Compile --stage-name Build --attempt 1 --follow
//
// Thread-compatible, like CliContext.

#include <string>
#include <vector>

#include "cli/cli.h"

namespace pw::cli {

// Finds the action execution with ListActionExecutions (the latest attempt
// unless --attempt N, 1 = first) and prints GET <endpoint>/logs/<id>. With
// --follow, keeps fetching new bytes every PollInterval() while the action is
// InProgress, waiting for it to start if the execution is still running.
// Returns 0 (with --follow: only if the action Succeeded, else 1), 252 for bad
// arguments or an unknown or ambiguous action, 254/255 for failed calls, 255
// if the action never ran in that execution.
int RunLogs(const std::vector<std::string>& args, const CliContext& ctx);

}  // namespace pw::cli
