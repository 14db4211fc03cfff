#include "worker/run_worker.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "runner/process_launcher.h"
#include "runner/sandbox.h"
#include "worker/worker.h"

namespace pw::worker {

namespace {

namespace fs = std::filesystem;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// An absolute path for `program`: as given if it holds a '/', else the first
// executable of that name on $PATH; empty when there is none.
std::string ResolveProgram(const std::string& program) {
  std::error_code ec;
  if (program.find('/') != std::string::npos) return fs::absolute(program, ec).string();
  std::string path = Env("PATH");
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t colon = path.find(':', pos);
    std::string dir =
        path.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate, ec)) {
      return fs::absolute(candidate, ec).string();
    }
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  return "";
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "pipewright worker: %s\n", message.c_str());
  std::fprintf(stderr,
               "usage: pipewright worker --endpoint URL --action-type "
               "Category/Owner/Provider/Version [options] -- PROGRAM [ARGS...]\n"
               "       pipewright worker --endpoint URL --builtin [options]\n"
               "(pipewright worker --help lists the options)\n");
  return 2;
}

int RunWorkerUnguarded(const std::vector<std::string>& args) {
  // Everything after the first "--" is the program and its arguments.
  std::vector<std::string> own = args;
  std::vector<std::string> program;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {
      own.assign(args.begin(), args.begin() + static_cast<std::ptrdiff_t>(i));
      program.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
  }

  CLI::App app{
      "Pipewright job worker: polls for jobs of an action type and runs a program for "
      "each (the program and its arguments follow --)",
      "pipewright worker"};
  std::string endpoint = Env("PIPEWRIGHT_ENDPOINT");
  if (endpoint.empty()) endpoint = "http://127.0.0.1:8480";
  std::string region = Env("AWS_REGION");
  if (region.empty()) region = Env("AWS_DEFAULT_REGION");
  if (region.empty()) region = "us-east-1";
  std::string action_type;
  std::string owner = "Custom";
  std::vector<std::string> query_params;
  bool builtin = false;
  int max_jobs = 1;
  double poll_interval = 1;
  double timeout = 0;
  std::string work_dir;
  std::string sandbox = "auto";
  std::string action_user;
  app.add_option("--sandbox", sandbox,
                 "auto|bwrap|none: with --builtin, run the commands inside bubblewrap (auto: "
                 "when it runs here)");
  app.add_option("--action-user", action_user,
                 "with --builtin, run the commands as this user (the worker must run as root)");
  app.add_option("--endpoint,--endpoint-url", endpoint,
                 "the server's URL (API and S3 endpoint); default $PIPEWRIGHT_ENDPOINT or "
                 "http://127.0.0.1:8480");
  app.add_option("--action-type", action_type,
                 "Category/Owner/Provider/Version of the jobs to run, e.g. "
                 "Deploy/AWS/CloudFormation/1 or Build/Custom/MyWorker/1 (or Category/Provider/"
                 "Version with --owner)");
  app.add_option("--owner", owner,
                 "owner of a Category/Provider/Version action type (default Custom)");
  app.add_option("--query-param", query_params, "key=value: only jobs whose configuration has it");
  app.add_flag("--builtin", builtin,
               "run the built-in Commands actions (Build, Test, Compute / AWS / Commands / 1) "
               "dispatched by `serve --no-local-runners`");
  app.add_option("--max-jobs", max_jobs, "jobs run at once (default 1)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--poll-interval", poll_interval,
                 "seconds between polls that find nothing (default 1)")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--timeout", timeout, "seconds a job's program may run; 0 = no limit")
      ->check(CLI::Range(0.0, 1e7));
  app.add_option("--work-dir", work_dir, "where job directories are made (default $TMPDIR)");
  app.add_option("--region", region, "region for SigV4 (default $AWS_REGION or us-east-1)");
  std::string s3_endpoint;
  app.add_option("--s3-endpoint", s3_endpoint,
                 "where the artifacts are, when the server keeps them in an external "
                 "S3-compatible bucket (default: the server's own endpoint)");
  std::vector<std::string> rev(own.rbegin(), own.rend());
  try {
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  WorkerOptions options;
  options.api.endpoint_url = endpoint;
  options.s3_endpoint_url = s3_endpoint;
  options.api.region = region;
  options.api.read_timeout = std::chrono::seconds(70);  // Beyond any long poll.
  if (std::string id = Env("AWS_ACCESS_KEY_ID"), secret = Env("AWS_SECRET_ACCESS_KEY");
      !id.empty() && !secret.empty()) {
    options.api.credentials = cli::Credentials{id, secret, Env("AWS_SESSION_TOKEN")};
  }
  if (builtin) {
    if (!action_type.empty() || !program.empty()) {
      return Usage("--builtin runs the Commands actions itself: give no --action-type or program");
    }
    for (const char* category : {"Build", "Test", "Compute"}) {
      options.action_types.push_back(ActionTypeId{category, "AWS", "Commands", "1"});
    }
  } else {
    if (action_type.empty()) return Usage("--action-type (or --builtin) is required");
    if (program.empty()) return Usage("give the program to run after --");
    Result<ActionTypeId> type = ParseActionTypeId(action_type, owner);
    if (!type.ok()) return Usage(type.status().message());
    if (app.count("--owner") > 0 && type->owner != owner) {
      return Usage("--action-type " + action_type + " names owner " + type->owner +
                   " but --owner says " + owner + "; give the owner once");
    }
    options.action_types.push_back(*type);
    std::string resolved = ResolveProgram(program[0]);
    if (resolved.empty()) return Usage("program not found on PATH: " + program[0]);
    program[0] = resolved;
    options.program.program = program;
    std::string path = Env("PATH");
    if (!path.empty()) options.program.path = path;
    options.program.home = Env("HOME");
  }
  for (const std::string& q : query_params) {
    auto eq = q.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == q.size()) {
      return Usage("--query-param must be key=value, not '" + q + "'");
    }
    options.query_param[q.substr(0, eq)] = q.substr(eq + 1);
  }
  options.program.timeout_seconds = timeout;
  options.max_jobs = max_jobs;
  options.poll_interval_seconds = poll_interval;
  if (!work_dir.empty()) {
    std::error_code ec;
    options.work_dir = fs::absolute(work_dir, ec).string();
  }

  if (builtin) {
    if (!action_user.empty() && geteuid() != 0) {
      return Usage("--action-user needs the worker to run as root");
    }
    // With --action-user the probe checks that user reaches the job directories.
    const std::string job_dirs = JobDirParent(options.work_dir);
    if (!action_user.empty()) {
      std::error_code ec;
      fs::create_directories(job_dirs, ec);
    }
    auto confine =
        runner::ConfigureSandbox(sandbox, action_user, {}, {}, action_user.empty() ? "" : job_dirs);
    if (!confine.ok()) {
      std::fprintf(stderr, "pipewright worker: %s\n", confine.status().message().c_str());
      return 2;
    }
    options.sandbox = *std::move(confine);
  }

  // Block the signals before any thread starts; one thread waits for them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<runner::ProcessLauncher> launcher = runner::NewPosixProcessLauncher();
  int status = 0;
  {
    Worker worker(std::move(options), *launcher);
    std::atomic<bool> done{false};
    std::thread signals([&] {
      int received = 0;
      const timespec tick{0, 200 * 1000 * 1000};
      while (!done.load()) {
        siginfo_t info;
        int sig = sigtimedwait(&sigs, &info, &tick);
        if (sig != SIGINT && sig != SIGTERM) continue;
        if (++received == 1) {
          std::fprintf(stderr, "pipewright worker: %s: stopping after the running jobs\n",
                       sig == SIGINT ? "SIGINT" : "SIGTERM");
          worker.Stop();
        } else {
          std::fprintf(stderr, "pipewright worker: %s again: cancelling the running jobs\n",
                       sig == SIGINT ? "SIGINT" : "SIGTERM");
          worker.CancelRunningJobs();
        }
      }
    });
    status = worker.Run();
    done.store(true);
    signals.join();
  }
  return status;
}

}  // namespace

int RunWorker(const std::vector<std::string>& args) {
  try {
    return RunWorkerUnguarded(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pipewright worker: fatal: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "pipewright worker: fatal: unknown exception\n");
  }
  return 70;
}

}  // namespace pw::worker
