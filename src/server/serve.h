#pragma once

// `pipewright serve`: wires store, engine, API and HTTP server together and
// runs until SIGINT/SIGTERM. Only wiring lives here (envoy's exe/ rule).

#include <string>
#include <vector>

namespace pw::server {

// Runs the `serve` subcommand with its arguments (after "serve"). Returns the
// process exit code.
int RunServe(const std::vector<std::string>& args);

}  // namespace pw::server
