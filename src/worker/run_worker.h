#pragma once

// `pipewright worker`: runs a job worker until SIGTERM or SIGINT.
//
//   pipewright worker --endpoint URL --action-type Category/Owner/Provider/Version
//       [--query-param key=value] [--max-jobs N]
//       [--poll-interval SECONDS] [--timeout SECONDS] [--work-dir DIR] [--region R]
//       -- <program> [args...]
//   pipewright worker --endpoint URL --builtin [--max-jobs N] ...
//
// --action-type names the jobs' type with its owner: Custom for custom
// actions, AWS (or ThirdParty) for the standard types the server runs on
// workers (ListActionTypes), e.g. Deploy/AWS/CloudFormation/1. The older form
// Category/Provider/Version takes the owner from --owner (default Custom).
// --builtin polls the three AWS/Commands action types (Build, Test, Compute)
// that `pipewright serve --no-local-runners` dispatches as jobs. API calls are
// signed with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN] when
// set. The first SIGTERM/SIGINT stops polling and lets running jobs finish
// and be reported (exit 0); a second one kills the running programs, reports
// their jobs failed, and exits 0.

#include <string>
#include <vector>

namespace pw::worker {

// `args` are the arguments after "worker". Returns the exit status: 0 after a
// clean stop, 2 for bad arguments. Never throws. Blocks SIGINT and SIGTERM in
// the calling thread (call it before starting other threads).
int RunWorker(const std::vector<std::string>& args);

}  // namespace pw::worker
