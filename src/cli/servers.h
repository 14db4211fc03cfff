#pragma once

// `pipewright servers`: the servers sharing one PostgreSQL database, whether
// each is live, and the pipelines each drives (the extension operation
// Pipewright_20261125.ListServers). With one server the list is empty.
//
//   pipewright servers --output table
//
// Thread-compatible, like CliContext.

#include <string>
#include <vector>

#include "cli/cli.h"

namespace pw::cli {

// No arguments (252 otherwise). Prints the ListServers answer as --output
// asks and returns 0, or ctx.PrintError's status if the call fails.
int RunServers(const std::vector<std::string>& args, const CliContext& ctx);

}  // namespace pw::cli
