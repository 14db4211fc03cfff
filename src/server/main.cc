// The one binary: `pipewright serve …` runs the server, `pipewright worker …`
// a job worker (see worker/run_worker.h), every other verb is a client
// command (see cli/cli.h).

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "common/version.h"
#include "server/backup.h"
#include "server/serve.h"
#include "worker/run_worker.h"

int main(int argc, char** argv) {
  try {
    if (argc >= 2 && std::string(argv[1]) == "serve") {
      return pw::server::RunServe(std::vector<std::string>(argv + 2, argv + argc));
    }
    if (argc >= 2 && std::string(argv[1]) == "--version") {
      std::printf("pipewright %s (%s)\n", pw::Version(), pw::GitCommit());
      return 0;
    }
    if (argc >= 2 && (std::string(argv[1]) == "backup" || std::string(argv[1]) == "restore")) {
      return pw::server::RunBackupCommand(std::string(argv[1]),
                                          std::vector<std::string>(argv + 2, argv + argc));
    }
    if (argc >= 2 && std::string(argv[1]) == "worker") {
      return pw::worker::RunWorker(std::vector<std::string>(argv + 2, argv + argc));
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
