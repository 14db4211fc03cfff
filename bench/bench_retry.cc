// bench_retry: how fast a manual stage retry gets a process running.
//
// A pipeline whose Staging action always fails (Commands: `date +%s.%N`, then
// `false`) runs through a real in-process Engine on a temp data dir with a
// real SQLite file. Then, ~100 times: RetryStage(FAILED_ACTIONS), wait until
// the execution is durably Failed again, and read the new run's log. Measured:
//   (a) Engine::RetryStage's own latency (monotonic, around the call);
//   (b) from RetryStage returning to the retried action's first command
//       running: the `date +%s.%N` it printed minus the wall time at return.
// (b) includes starting /bin/sh and exec'ing date, so the same script is also
// spawned directly (posix_spawn + waitpid, no engine) for a baseline.
// The goal: well under 10 ms each.
//
// Usage: bench_retry [--iterations=100] [--files-on-tmpfs]
// (--files-on-tmpfs: the engine's data dir on /dev/shm, SQLite file on disk.)
// Exit code 0 unless something could not run; ABOVE GOAL does not fail.

#include <spawn.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_harness.h"
#include "common/log.h"
#include "runner/temp_dir.h"

namespace pw::bench {
namespace {

namespace fs = std::filesystem;

constexpr double kGoalSeconds = 0.010;
constexpr const char* kPipeline = "BenchRetry";
constexpr const char* kStage = "Staging";
constexpr const char* kCommands = "date +%s.%N\nfalse";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bench_retry: %s\n", what.c_str());
  std::exit(1);
}

// The first line of `path` as epoch seconds; dies if it is not a number.
double ReadStamp(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  if (!std::getline(f, line)) Die("no output in " + path);
  char* end = nullptr;
  double v = std::strtod(line.c_str(), &end);
  if (end == line.c_str()) Die("not a time stamp in " + path + ": " + line);
  return v;
}

// Baseline for (b): the engine's kind of script (`/bin/sh -e script`, first
// command `date +%s.%N`) spawned directly; returns stamp minus the wall time
// just before posix_spawn.
Stats SpawnToStampBaseline(const std::string& dir, int reps) {
  const std::string script = dir + "/baseline.sh";
  const std::string out = dir + "/baseline.out";
  {
    std::ofstream f(script);
    f << "trap 'rc=$?' EXIT\nPW_CMD=1\ndate +%s.%N > " << out << "\n";
  }
  std::vector<double> sample;
  for (int i = -3; i < reps; ++i) {
    char sh[] = "/bin/sh", e[] = "-e";
    char* argv[] = {sh, e, const_cast<char*>(script.c_str()), nullptr};
    char path_env[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    char* envp[] = {path_env, nullptr};
    const double t0 = WallNow();
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], nullptr, nullptr, argv, envp);
    if (rc != 0) Die(std::string("posix_spawn: ") + std::strerror(rc));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
      if (errno != EINTR) Die("waitpid");
    }
    if (i >= 0) sample.push_back(ReadStamp(out) - t0);
  }
  return Summarize(sample);
}

struct Iteration {
  double retry_latency = 0;    // (a)
  double return_to_stamp = 0;  // (b)
  double call_to_stamp = 0;    // RetryStage called -> first command ran.
  double commit = 0;           // SaveBatch time inside RetryStage.
};

void PrintStats(const char* label, const Stats& s) {
  std::printf("  %-50s median %8s  p90 %8s  p99 %8s  max %8s ms\n", label, Ms(s.median).c_str(),
              Ms(s.p90).c_str(), Ms(s.p99).c_str(), Ms(s.max).c_str());
}

int Main(int argc, char** argv) {
  int iterations = 100;
  bool files_on_tmpfs = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.substr(0, 13) == "--iterations=") {
      iterations = std::max(1, std::atoi(argv[i] + 13));
    } else if (a == "--files-on-tmpfs") {
      files_on_tmpfs = true;
    } else {
      std::fprintf(stderr, "usage: %s [--iterations=100] [--files-on-tmpfs]\n", argv[0]);
      return 2;
    }
  }
  SetLogLevel(LogLevel::kWarning);
  auto env = BenchEngine::Create("pw-bench-retry", /*recover=*/false, files_on_tmpfs);
  if (!env.ok()) Die("engine: " + env.status().ToString());
  engine::Engine& engine = (*env)->engine();
  const std::string source_dir = (*env)->path() + "/source";
  fs::create_directories(source_dir);
  {
    std::ofstream f(source_dir + "/README");
    f << "bench\n";
  }
  auto rec = engine.CreatePipeline(
      CommandsPipeline(kPipeline, source_dir, kStage, 1, /*sequential=*/true, kCommands), {},
      "bench");
  if (!rec.ok()) Die("CreatePipeline: " + rec.status().ToString());
  auto id = engine.StartExecution(kPipeline, "", "bench");
  if (!id.ok()) Die("StartExecution: " + id.status().ToString());

  auto wait_failed = [&]() -> core::Execution {
    auto e = WaitForExecution(**env, kPipeline, *id, 30);
    if (!e.ok()) Die("wait: " + e.status().ToString());
    if (e->status != core::ExecutionStatus::kFailed) {
      Die("execution ended " + std::string(core::Name(e->status)) + ", expected Failed");
    }
    return *e;
  };
  wait_failed();

  std::printf(
      "Pipewright retry benchmark: %d retries of a failing Commands action "
      "(RetryStage FAILED_ACTIONS, wait until Failed again)\n",
      iterations);
  if (files_on_tmpfs) std::printf("engine data dir (work dirs, scripts, logs) on /dev/shm\n");
  std::printf("data dir under %s; load average %s (%u CPUs)\n\n", (*env)->path().c_str(),
              LoadAverage().c_str(), std::thread::hardware_concurrency());
  std::fflush(stdout);

  const int warmup = 5;
  std::vector<Iteration> its;
  // The last pass (i == iterations) only measures the JSON size: measuring it
  // costs a dump inside RetryStage.
  double first_bytes = 0, last_bytes = 0;
  for (int i = -warmup; i <= iterations; ++i) {
    (*env)->store().set_measure_bytes(i == -warmup || i == iterations);
    (void)(*env)->store().TakeCalls();
    const double call_wall = WallNow();
    const double t0 = MonoNow();
    auto plan = engine.RetryStage(kPipeline, kStage, *id, core::RetryMode::kFailedActions);
    const double t1 = MonoNow();
    const double return_wall = WallNow();
    if (!plan.ok()) Die("RetryStage: " + plan.status().ToString());
    auto calls = (*env)->store().TakeCalls();  // The retry's commit comes first.
    core::Execution e = wait_failed();
    const core::StageRun* stage = e.FindStageRun(kStage);
    if (stage == nullptr || !stage->latest.count("A01")) Die("no latest run");
    const std::string run_id = stage->latest.at("A01");
    const double stamp = ReadStamp(engine.LogPath(run_id));
    if (i == -warmup || i == iterations) {
      for (const auto& c : calls) {
        if (c.method != "SaveBatch") continue;
        (i < 0 ? first_bytes : last_bytes) = static_cast<double>(c.doc_bytes);
        break;
      }
    }
    if (i < 0 || i == iterations) continue;
    Iteration it;
    it.retry_latency = t1 - t0;
    it.return_to_stamp = stamp - return_wall;
    it.call_to_stamp = stamp - call_wall;
    for (const auto& c : calls) {
      if (c.method != "SaveBatch") continue;
      it.commit = c.seconds;
      break;
    }
    its.push_back(it);
  }
  const Stats baseline = SpawnToStampBaseline((*env)->path(), iterations);

  auto column = [&](double Iteration::*field, size_t from = 0, size_t to = SIZE_MAX) {
    std::vector<double> v;
    for (size_t i = from; i < std::min(to, its.size()); ++i) v.push_back(its[i].*field);
    return v;
  };
  const Stats a = Summarize(column(&Iteration::retry_latency));
  const Stats b = Summarize(column(&Iteration::return_to_stamp));
  std::printf("%-52s %10s %10s  %s\n", "", "median ms", "p99 ms", "goal < 10 ms");
  std::printf("%-52s %10s %10s  %s\n", "(a) Engine::RetryStage call latency", Ms(a.median).c_str(),
              Ms(a.p99).c_str(), a.p99 < kGoalSeconds ? "PASS" : "ABOVE GOAL");
  std::printf("%-52s %10s %10s  %s\n", "(b) RetryStage returned -> first command ran",
              Ms(b.median).c_str(), Ms(b.p99).c_str(),
              b.p99 < kGoalSeconds ? "PASS" : "ABOVE GOAL");
  std::printf("\nDetails\n");
  PrintStats("(a) RetryStage latency", a);
  PrintStats("    of which the SaveBatch commit", Summarize(column(&Iteration::commit)));
  PrintStats("(b) return -> `date` ran", b);
  PrintStats("    RetryStage called -> `date` ran", Summarize(column(&Iteration::call_to_stamp)));
  PrintStats("baseline: posix_spawn sh script -> `date` ran", baseline);
  const size_t k = std::min<size_t>(10, its.size());
  const size_t n = its.size();
  std::printf("  RetryStage latency, first %zu retries median %s ms, last %zu median %s ms\n", k,
              Ms(Median(column(&Iteration::retry_latency, 0, k))).c_str(), k,
              Ms(Median(column(&Iteration::retry_latency, n - k, n))).c_str());
  std::printf(
      "  JSON written by the retry's SaveBatch: %.0f bytes at retry 1, %.0f bytes at "
      "retry %d (runs are stored as their own rows, so this stays flat)\n",
      first_bytes, last_bytes, warmup + iterations + 1);
  std::printf("\nload average at the end: %s\n", LoadAverage().c_str());
  return 0;
}

}  // namespace
}  // namespace pw::bench

int main(int argc, char** argv) {
  try {
    return pw::bench::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_retry: uncaught exception: %s\n", e.what());
    return 1;
  }
}
