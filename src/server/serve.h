#pragma once

// `pipewright serve`: wires store, engine, API and HTTP server together and
// runs until SIGINT/SIGTERM. Only wiring lives here (envoy's exe/ rule).

#include <string>
#include <vector>

namespace pw::server {

// Options of `serve` read beyond its flag parsing (the other flags are locals
// of RunServe).
struct ServeOptions {
  // --server-id: this server's name among several sharing one PostgreSQL
  // database (server/multi_server.h); empty: the only server.
  std::string server_id;
};

// Runs the `serve` subcommand with its arguments (after "serve"). Returns the
// process exit code.
int RunServe(const std::vector<std::string>& args);

}  // namespace pw::server
