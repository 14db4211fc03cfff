// Spawn overhead of the bubblewrap sandbox: 200 sequential `/bin/true`
// through the real ProcessLauncher, plain and wrapped by runner::Sandbox
// (data directory hidden, work directory bound back), median and mean.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "runner/process_launcher.h"
#include "runner/sandbox.h"

namespace {

constexpr int kRuns = 200;

// Returns per-run wall times in milliseconds, start to on_exit.
std::vector<double> Measure(pw::runner::ProcessLauncher& launcher,
                            const pw::runner::ProcessSpec& spec) {
  std::vector<double> ms;
  std::mutex mu;
  std::condition_variable cv;
  for (int i = 0; i < kRuns; ++i) {
    bool done = false;
    auto start = std::chrono::steady_clock::now();
    auto id = launcher.Start(spec, [&](pw::runner::ProcessId, const pw::runner::ProcessExit&) {
      std::lock_guard lock(mu);
      done = true;
      cv.notify_all();
    });
    if (!id.ok()) {
      std::fprintf(stderr, "start: %s\n", id.status().message().c_str());
      std::exit(1);
    }
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  return ms;
}

void Print(const char* name, std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (double m : ms) sum += m;
  std::printf("%-28s median %.2f ms  mean %.2f ms  p95 %.2f ms\n", name, ms[ms.size() / 2],
              sum / static_cast<double>(ms.size()), ms[ms.size() * 95 / 100]);
}

}  // namespace

int main() {
  namespace fs = std::filesystem;
  std::string root = (fs::current_path() / "bench-sandbox").string();
  fs::create_directories(root + "/data/work/1");
  auto launcher = pw::runner::NewPosixProcessLauncher();
  pw::runner::ProcessSpec spec;
  spec.argv = {"/bin/true"};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.cwd = root + "/data/work/1";
  Print("plain posix_spawn", Measure(*launcher, spec));
  pw::runner::SandboxOptions options;
  auto mode = pw::runner::ProbeSandbox("bwrap", options);
  if (!mode.ok()) {
    std::printf("bwrap: %s\n", mode.status().message().c_str());
    return 0;
  }
  options.mode = *mode;
  options.hide_dirs = {root + "/data"};
  pw::runner::SandboxPaths paths;
  paths.cwd = spec.cwd;
  paths.writable = {spec.cwd};
  pw::runner::ProcessSpec wrapped = spec;
  wrapped.argv = pw::runner::Sandbox(options).Wrap(spec.argv, paths);
  Print("bwrap sandbox", Measure(*launcher, wrapped));
  if (geteuid() == 0) {
    if (auto user = pw::runner::LookUpActionUser("nobody"); user.ok()) {
      options.user = *user;
      wrapped.argv = pw::runner::Sandbox(options).Wrap(spec.argv, paths);
      Print("bwrap sandbox as nobody", Measure(*launcher, wrapped));
    }
  }
  fs::remove_all(root);
  return 0;
}
