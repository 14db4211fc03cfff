// The one binary: `pipewright serve …` runs the server, every other verb is
// a client command (see cli/cli.h).

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "server/serve.h"

int main(int argc, char** argv) {
  try {
    if (argc >= 2 && std::string(argv[1]) == "serve") {
      return pw::server::RunServe(std::vector<std::string>(argv + 2, argv + argc));
    }
    return pw::cli::RunCli(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pipewright: fatal: %s\n", e.what());
    return 70;
  } catch (...) {
    std::fprintf(stderr, "pipewright: fatal: unknown exception\n");
    return 70;
  }
}
