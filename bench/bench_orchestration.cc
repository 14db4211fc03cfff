// bench_orchestration: the engine's overhead per action against the floor.
//
// Floor per action = posix_spawn of /bin/true + waitpid, plus two durable
// SQLite commits (fresh file, WAL, synchronous=FULL, one small INSERT per
// transaction). Then a pipeline of N no-op Commands actions ("true") runs
// through a real in-process Engine, once with runOrders 1..N (sequential) and
// once with every action at runOrder 1 (parallel). Time per action is the
// stage's span from the action runs' own timestamps (first started to last
// updated) divided by N. The goal: within 1.5x of the floor.
//
// To attribute the time above the floor, each pipeline also runs on a second
// engine whose data dir (work dirs, scripts, logs) is on /dev/shm while its
// SQLite file stays on disk, executions alternating with the plain one; and
// the parts of one action are timed alone (the engine's shell script, the
// launcher's round trip, the work-dir files, the execution document).
//
// Usage: bench_orchestration [--n=20] [--reps=7] [--floor-reps=200]
//                            [--only=floor|seq|par|parts] [--ticker]
//        bench_orchestration --floor-json=10,40 [--floor-reps=200]
//   (--floor-json: only the floors, as one JSON line for bench/bench_all.py:
//    per action, and per group of each size: N spawns at once, waited for
//    together, plus 2N durable commits; then, under "sandbox", the same with
//    /bin/true spawned in the server's default bubblewrap sandbox, when
//    bubblewrap runs here; under "shell", the per-action floor spawning
//    `sh -e -c true` instead, as a Commands action's shell.)
// Exit code 0 unless something could not run; ABOVE GOAL does not fail.

#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_harness.h"
#include "common/log.h"
#include "engine/state_json.h"
#include "runner/process_launcher.h"
#include "runner/sandbox.h"
#include "runner/temp_dir.h"

namespace pw::bench {
namespace {

namespace fs = std::filesystem;

constexpr double kGoalRatio = 1.5;
// The script Engine::StartCommands writes for Commands "true".
constexpr const char* kEngineScript =
    "trap 'rc=$?; if [ \"$rc\" -ne 0 ]; then echo \"$PW_CMD $rc\" > \"$PIPEWRIGHT_STATUS_FILE\"; "
    "fi' EXIT\nPW_CMD=1\ntrue\n";

struct Options {
  int n = 20;
  int reps = 7;
  int floor_reps = 200;
  std::string only;     // Empty: everything.
  bool ticker = false;  // Call Engine::Recover() (starts the ticker thread, as the server does).
  std::vector<int> floor_groups;  // --floor-json: group sizes.
  bool floor_json = false;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bench_orchestration: %s\n", what.c_str());
  std::exit(1);
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view key) -> const char* {
      return a.substr(0, key.size()) == key ? argv[i] + key.size() : nullptr;
    };
    if (const char* v = value("--n=")) {
      o.n = std::atoi(v);
    } else if (const char* v2 = value("--reps=")) {
      o.reps = std::atoi(v2);
    } else if (const char* v3 = value("--floor-reps=")) {
      o.floor_reps = std::atoi(v3);
    } else if (const char* v4 = value("--only=")) {
      o.only = v4;
    } else if (const char* v5 = value("--floor-json=")) {
      o.floor_json = true;
      for (const char* p = v5; *p != 0;) {
        o.floor_groups.push_back(std::atoi(p));
        while (*p != 0 && *p != ',') ++p;
        if (*p == ',') ++p;
      }
    } else if (a == "--ticker") {
      o.ticker = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--n=20] [--reps=7] [--floor-reps=200] "
                   "[--only=floor|seq|par|parts] [--ticker]\n",
                   argv[0]);
      std::exit(2);
    }
  }
  if (o.n < 1) o.n = 1;
  if (o.reps < 1) o.reps = 1;
  if (o.floor_reps < 1) o.floor_reps = 1;
  return o;
}

// posix_spawn of `args` (absolute args[0]) with a minimal environment, then
// waitpid. Returns the seconds taken; dies if the spawn fails.
double SpawnAndWait(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  char path_env[] = "PATH=/usr/bin:/bin";
  char* envp[] = {path_env, nullptr};
  const double t0 = MonoNow();
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), envp);
  if (rc != 0) Die(std::string("posix_spawn ") + args[0] + ": " + std::strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) Die("waitpid");
  }
  return MonoNow() - t0;
}

// A fresh SQLite file in WAL mode with synchronous=FULL and one small table.
class FloorDb {
 public:
  explicit FloorDb(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) Die("sqlite3_open " + path);
    Exec("PRAGMA journal_mode=WAL");
    Exec("PRAGMA synchronous=FULL");
    Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    if (sqlite3_prepare_v2(db_, "INSERT INTO t (v) VALUES (?)", -1, &insert_, nullptr) !=
        SQLITE_OK) {
      Die("prepare");
    }
  }
  FloorDb(const FloorDb&) = delete;
  FloorDb& operator=(const FloorDb&) = delete;
  ~FloorDb() {
    sqlite3_finalize(insert_);
    sqlite3_close(db_);
  }

  // One transaction with one small INSERT; returns its seconds.
  double Commit() {
    const double t0 = MonoNow();
    Exec("BEGIN IMMEDIATE");
    static const char kValue[] = "action-run-state";
    sqlite3_bind_text(insert_, 1, kValue, sizeof kValue - 1, SQLITE_STATIC);
    if (sqlite3_step(insert_) != SQLITE_DONE) Die("insert");
    sqlite3_reset(insert_);
    Exec("COMMIT");
    return MonoNow() - t0;
  }

 private:
  void Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      Die(std::string(sql) + ": " + msg);
    }
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
};

struct Floor {
  double per_action = 0;  // Median of (spawn+wait + commit + commit) per rep.
  Stats spawn;
  Stats commit;
};

// `argv` is what each action spawns: /bin/true, or /bin/true in the sandbox.
Floor MeasureFloor(const std::string& dir, int reps,
                   const std::vector<std::string>& argv = {"/bin/true"},
                   const std::string& name = "floor") {
  FloorDb db(dir + "/" + name + ".db");
  for (int i = 0; i < 10; ++i) {  // Warm-up: page cache, WAL file, dynamic loader.
    SpawnAndWait(argv);
    db.Commit();
  }
  std::vector<double> totals, spawns, commits;
  for (int i = 0; i < reps; ++i) {
    const double s = SpawnAndWait(argv);
    const double c1 = db.Commit();
    const double c2 = db.Commit();
    totals.push_back(s + c1 + c2);
    spawns.push_back(s);
    commits.push_back(c1);
    commits.push_back(c2);
  }
  return {Median(totals), Summarize(spawns), Summarize(commits)};
}

// The floor of a parallel group of `n` actions: posix_spawn n `args` back to
// back, waitpid all, then 2n durable commits (each action's start and end
// recorded, one transaction each: SQLite has one writer). Median seconds of
// the whole group over `reps`.
double MeasureGroupFloor(const std::string& dir, int n, int reps,
                         const std::vector<std::string>& args = {"/bin/true"},
                         const std::string& name = "group-floor") {
  FloorDb db(dir + "/" + name + "-" + std::to_string(n) + ".db");
  char path_env[] = "PATH=/usr/bin:/bin";
  char* envp[] = {path_env, nullptr};
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<double> totals;
  for (int rep = -2; rep < reps; ++rep) {
    const double t0 = MonoNow();
    std::vector<pid_t> pids;
    for (int i = 0; i < n; ++i) {
      pid_t pid = -1;
      int rc = posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), envp);
      if (rc != 0) Die(std::string("posix_spawn: ") + std::strerror(rc));
      pids.push_back(pid);
    }
    for (pid_t pid : pids) {
      int status = 0;
      while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) Die("waitpid");
      }
    }
    for (int i = 0; i < 2 * n; ++i) db.Commit();
    if (rep >= 0) totals.push_back(MonoNow() - t0);
  }
  return Median(totals);
}

// The argv that runs /bin/true as the server's default sandbox runs an action
// (bubblewrap, the data directory hidden, the work directory bound back), or
// empty when bubblewrap cannot run here.
std::vector<std::string> SandboxedTrue(const std::string& dir) {
  runner::SandboxOptions options;
  options.hide_dirs = {dir};
  auto mode = runner::ProbeSandbox("auto", options);
  if (!mode.ok() || *mode != runner::SandboxMode::kBwrap) return {};
  options.mode = runner::SandboxMode::kBwrap;
  const std::string work = dir + "/sandbox-work";
  fs::create_directories(work);
  runner::SandboxPaths paths;
  paths.cwd = work;
  paths.writable = {work};
  return runner::Sandbox(options).Wrap({"/bin/true"}, paths);
}

// One execution's figures.
struct PipelineRun {
  double span = 0;         // First stage run started -> last stage run updated.
  double wall = 0;         // StartExecution called -> Succeeded observed.
  double source_span = 0;  // The Source stage's span.
  int commits = 0;         // SaveBatch calls during the execution.
  std::vector<double> commit_seconds;
};

struct PipelineResult {
  std::vector<PipelineRun> runs;
  std::vector<double> commit_bytes;  // JSON per SaveBatch, from the warm-up execution.
  core::Execution last;              // The last execution, for timing its document.

  double MedianOf(double PipelineRun::*field) const {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(r.*field);
    return Median(v);
  }
  double MedianSpan() const { return MedianOf(&PipelineRun::span); }
  double MedianWall() const { return MedianOf(&PipelineRun::wall); }
  double MedianSource() const { return MedianOf(&PipelineRun::source_span); }
  double MinSpan() const {
    double m = 0;
    for (const auto& r : runs) m = (m == 0 || r.span < m) ? r.span : m;
    return m;
  }
  std::vector<double> AllCommitSeconds() const {
    std::vector<double> v;
    for (const auto& r : runs) v.insert(v.end(), r.commit_seconds.begin(), r.commit_seconds.end());
    return v;
  }
};

// Span of the runs of `stage` in `e`: min(started) to max(updated). The
// engine's clock has millisecond precision, so a span is +-1 ms.
double StageSpan(const core::Execution& e, const std::string& stage, int expect_runs) {
  double first = 0, last = 0;
  int count = 0;
  for (const auto& r : e.runs) {
    if (r.stage != stage) continue;
    if (r.status != core::ActionStatus::kSucceeded) Die("action " + r.action + " did not succeed");
    if (count == 0 || r.started < first) first = r.started;
    if (count == 0 || r.updated > last) last = r.updated;
    ++count;
  }
  if (count != expect_runs) Die("stage " + stage + ": unexpected number of runs");
  return last - first;
}

// One pipeline on its own engine, run one execution at a time so that
// variants alternate (the machine is shared: interleaving cancels drift).
class PipelineBench {
 public:
  PipelineBench(const std::string& source_dir, int n, bool sequential, bool ticker,
                bool files_on_tmpfs)
      : n_(n), name_(sequential ? "BenchSequential" : "BenchParallel") {
    auto env =
        BenchEngine::Create(sequential ? "pw-bench-seq" : "pw-bench-par", ticker, files_on_tmpfs);
    if (!env.ok()) Die("engine: " + env.status().ToString());
    env_ = std::move(*env);
    auto rec = env_->engine().CreatePipeline(
        CommandsPipeline(name_, source_dir, "Build", n, sequential, "true"), {}, "bench");
    if (!rec.ok()) Die("CreatePipeline: " + rec.status().ToString());
  }

  // Runs one execution; a warm-up one is not timed but records JSON sizes.
  void RunOnce(bool warm_up) {
    engine::Engine& engine = env_->engine();
    env_->store().set_measure_bytes(warm_up);
    (void)env_->store().TakeCalls();
    const double t0 = MonoNow();
    auto id = engine.StartExecution(name_, "", "bench");
    if (!id.ok()) Die("StartExecution: " + id.status().ToString());
    auto e = WaitForExecution(*env_, name_, *id, 30);
    const double t1 = MonoNow();
    if (!e.ok()) Die("wait: " + e.status().ToString());
    if (e->status != core::ExecutionStatus::kSucceeded) {
      Die("execution ended " + std::string(core::Name(e->status)) + ": " + e->status_summary);
    }
    if (warm_up) {
      for (const auto& c : env_->store().TakeCalls()) {
        if (c.method == "SaveBatch") {
          result_.commit_bytes.push_back(static_cast<double>(c.doc_bytes));
        }
      }
      return;
    }
    result_.last = *e;
    PipelineRun run;
    run.span = StageSpan(*e, "Build", n_);
    run.source_span = StageSpan(*e, "Source", 1);
    run.wall = t1 - t0;
    for (const auto& c : env_->store().TakeCalls()) {
      if (c.method != "SaveBatch") continue;
      ++run.commits;
      run.commit_seconds.push_back(c.seconds);
    }
    result_.runs.push_back(std::move(run));
  }

  const PipelineResult& result() const { return result_; }

 private:
  int n_;
  std::string name_;
  std::unique_ptr<BenchEngine> env_;
  PipelineResult result_;
};

// Runs `reps` executions of each bench (after one warm-up each), alternating.
void RunInterleaved(const std::vector<PipelineBench*>& benches, int reps) {
  for (int i = -1; i < reps; ++i) {
    for (PipelineBench* b : benches) b->RunOnce(/*warm_up=*/i < 0);
  }
}

// ---------------------------------------------------------------------------
// Parts of one action, timed alone.

struct Parts {
  Stats sh_spawn;         // posix_spawn + waitpid of /bin/sh -e script.sh (the engine's script).
  Stats launcher_true;    // PosixProcessLauncher Start -> on_exit, /bin/true.
  Stats launcher_script;  // PosixProcessLauncher Start -> on_exit, the engine's script + log.
  Stats workdir;          // create_directories(work/src) + write script.sh + remove_all(work).
};

Stats LauncherRoundTrip(runner::ProcessLauncher& launcher, const runner::ProcessSpec& spec,
                        int reps) {
  std::vector<double> sample;
  for (int i = -5; i < reps; ++i) {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    double ended = 0;
    const double t0 = MonoNow();
    auto id = launcher.Start(spec, [&](runner::ProcessId, const runner::ProcessExit&) {
      const double t = MonoNow();
      std::lock_guard lock(mu);
      ended = t;
      done = true;
      cv.notify_one();
    });
    if (!id.ok()) Die("launcher: " + id.status().ToString());
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
    if (i >= 0) sample.push_back(ended - t0);
  }
  return Summarize(sample);
}

Parts MeasureParts(const std::string& dir, int reps) {
  Parts parts;
  const std::string work = dir + "/work";
  fs::create_directories(work + "/src");
  const std::string script = work + "/script.sh";
  {
    std::ofstream f(script);
    f << kEngineScript;
  }
  std::vector<double> sh;
  for (int i = -5; i < reps; ++i) {
    double s = SpawnAndWait({"/bin/sh", "-e", script});
    if (i >= 0) sh.push_back(s);
  }
  parts.sh_spawn = Summarize(sh);

  auto launcher = runner::NewPosixProcessLauncher();
  runner::ProcessSpec spec;
  spec.argv = {"/bin/true"};
  spec.env = {"PATH=/usr/bin:/bin"};
  parts.launcher_true = LauncherRoundTrip(*launcher, spec, reps);
  spec.argv = {"/bin/sh", "-e", script};
  spec.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + work,
              "LANG=C.UTF-8", "PIPEWRIGHT_STATUS_FILE=" + work + "/status"};
  spec.cwd = work + "/src";
  spec.log_path = dir + "/action.log";
  spec.timeout_seconds = 3600;
  parts.launcher_script = LauncherRoundTrip(*launcher, spec, reps);
  launcher.reset();

  std::vector<double> wd;
  for (int i = 0; i < reps; ++i) {
    const std::string w = dir + "/wd/" + std::to_string(i);
    const double t0 = MonoNow();
    std::error_code ec;
    fs::create_directories(w + "/src", ec);
    {
      std::ofstream f(w + "/script.sh");
      f << kEngineScript;
    }
    fs::remove_all(w, ec);
    wd.push_back(MonoNow() - t0);
  }
  parts.workdir = Summarize(wd);
  return parts;
}

// Engine::CommitLocked builds every changed execution's document (build) and
// the store serializes it (dump), under the engine mutex, once per commit.
struct DocCost {
  Stats build;
  Stats dump;
  size_t bytes = 0;
};

DocCost ExecutionDocCost(const core::Execution& e, int reps) {
  std::vector<double> build, dump;
  size_t bytes = 0;
  for (int i = 0; i < reps; ++i) {
    const double t0 = MonoNow();
    nlohmann::json doc = engine::ExecutionToDoc(e);
    const double t1 = MonoNow();
    bytes = doc.dump().size();
    build.push_back(t1 - t0);
    dump.push_back(MonoNow() - t1);
  }
  return {Summarize(build), Summarize(dump), bytes};
}

void PrintStats(const char* label, const Stats& s) {
  std::printf("  %-52s median %8s  p90 %8s  p99 %8s ms  (n=%zu)\n", label, Ms(s.median).c_str(),
              Ms(s.p90).c_str(), Ms(s.p99).c_str(), s.n);
}

const char* Verdict(double ratio) { return ratio <= kGoalRatio ? "PASS" : "ABOVE GOAL"; }

int Main(int argc, char** argv) {
  const Options o = ParseOptions(argc, argv);
  SetLogLevel(LogLevel::kWarning);
  auto tmp = runner::ScopedTempDir::Create("pw-bench");
  if (!tmp.ok()) Die(tmp.status().ToString());
  const std::string source_dir = tmp->path() + "/source";
  fs::create_directories(source_dir);
  {
    std::ofstream f(source_dir + "/README");
    f << "bench\n";
  }
  if (o.floor_json) {
    const Floor f = MeasureFloor(tmp->path(), o.floor_reps);
    std::printf("{\"per_action\": %.6f, \"spawn\": %.6f, \"commit\": %.6f, \"groups\": {",
                f.per_action, f.spawn.median, f.commit.median);
    for (size_t i = 0; i < o.floor_groups.size(); ++i) {
      const int n = std::max(1, o.floor_groups[i]);
      std::printf("%s\"%d\": %.6f", i ? ", " : "", n,
                  MeasureGroupFloor(tmp->path(), n, std::max(5, o.floor_reps / n)));
    }
    std::printf("}");
    // What a Commands action's own process costs beyond /bin/true: the shell
    // it runs the commands in (for the table's context; the goal is against
    // the floor above).
    const Floor shf =
        MeasureFloor(tmp->path(), std::max(20, o.floor_reps / 2),
                     {"/bin/sh", "-e", "-c", "true", "pipewright-action"}, "shell-floor");
    std::printf(", \"shell\": {\"per_action\": %.6f, \"spawn\": %.6f}", shf.per_action,
                shf.spawn.median);
    // The same with the action in the server's default sandbox (bubblewrap).
    const std::vector<std::string> sandboxed = SandboxedTrue(tmp->path());
    if (!sandboxed.empty()) {
      const Floor sf =
          MeasureFloor(tmp->path(), std::max(20, o.floor_reps / 4), sandboxed, "sandbox-floor");
      std::printf(", \"sandbox\": {\"per_action\": %.6f, \"spawn\": %.6f, \"groups\": {",
                  sf.per_action, sf.spawn.median);
      for (size_t i = 0; i < o.floor_groups.size(); ++i) {
        const int n = std::max(1, o.floor_groups[i]);
        std::printf("%s\"%d\": %.6f", i ? ", " : "", n,
                    MeasureGroupFloor(tmp->path(), n, std::max(3, o.floor_reps / n / 4), sandboxed,
                                      "sandbox-group-floor"));
      }
      std::printf("}}");
    }
    std::printf("}\n");
    return 0;
  }
  const bool all = o.only.empty();
  std::printf(
      "Pipewright orchestration benchmark: N=%d no-op actions, %d executions per "
      "pipeline (median), floor over %d reps\n",
      o.n, o.reps, o.floor_reps);
  std::printf("data dirs under %s; load average %s (%u CPUs)\n\n", tmp->path().c_str(),
              LoadAverage().c_str(), std::thread::hardware_concurrency());
  std::fflush(stdout);

  Floor floor;
  if (all || o.only == "floor" || o.only == "seq" || o.only == "par") {
    floor = MeasureFloor(tmp->path(), o.floor_reps);
  }
  PipelineResult seq, par, seq_shm, par_shm;
  if (all || o.only == "seq") {
    PipelineBench disk(source_dir, o.n, /*sequential=*/true, o.ticker, /*files_on_tmpfs=*/false);
    PipelineBench shm(source_dir, o.n, /*sequential=*/true, o.ticker, /*files_on_tmpfs=*/true);
    RunInterleaved({&disk, &shm}, o.reps);
    seq = disk.result();
    seq_shm = shm.result();
  }
  if (all || o.only == "par") {
    PipelineBench disk(source_dir, o.n, /*sequential=*/false, o.ticker,
                       /*files_on_tmpfs=*/false);
    PipelineBench shm(source_dir, o.n, /*sequential=*/false, o.ticker, /*files_on_tmpfs=*/true);
    RunInterleaved({&disk, &shm}, o.reps);
    par = disk.result();
    par_shm = shm.result();
  }
  Parts parts;
  if (all || o.only == "parts") parts = MeasureParts(tmp->path(), o.floor_reps);

  if (floor.per_action > 0) {
    std::printf("Floor (components)\n");
    PrintStats("posix_spawn /bin/true + waitpid", floor.spawn);
    PrintStats("SQLite commit (WAL, synchronous=FULL, 1 INSERT)", floor.commit);
    std::printf("\n");
  }
  if (!seq.runs.empty() || !par.runs.empty()) {
    std::printf("%-44s %9s %9s %9s %8s  %s\n", "per action", "median ms", "min ms", "wall ms",
                "x floor", "goal <= 1.5x");
    std::printf("%-44s %9s %9s %9s %8s\n", "floor (spawn+wait + 2 commits, median)",
                Ms(floor.per_action).c_str(), "", "", "1.00");
    auto row = [&](const char* label, const PipelineResult& r) {
      if (r.runs.empty()) return;
      const double per = r.MedianSpan() / o.n;
      const double ratio = per / floor.per_action;
      std::printf("%-44s %9s %9s %9s %8.2f  %s\n", label, Ms(per).c_str(),
                  Ms(r.MinSpan() / o.n).c_str(), Ms(r.MedianWall() / o.n).c_str(), ratio,
                  Verdict(ratio));
    };
    row("sequential (runOrder 1..N): stage span / N", seq);
    row("parallel (all runOrder 1): stage span / N", par);
    row("A/B: sequential, engine files on tmpfs", seq_shm);
    row("A/B: parallel, engine files on tmpfs", par_shm);
    std::printf(
        "  (ms = action-run timestamps, first started -> last updated, / N; wall ms = "
        "StartExecution -> Succeeded seen,\n   whole pipeline incl. Source stage, / N; A/B = "
        "the same pipeline with the engine's data dir (work dirs,\n   scripts, logs) on "
        "/dev/shm, SQLite file still on disk, executions alternating with the plain ones)\n\n");
    auto details = [&](const char* label, const PipelineResult& r) {
      if (r.runs.empty()) return;
      std::printf("%s: stage span median %s ms, min %s ms (runs:", label,
                  Ms(r.MedianSpan()).c_str(), Ms(r.MinSpan()).c_str());
      for (const auto& run : r.runs) std::printf(" %s", Ms(run.span).c_str());
      std::printf("), Source stage %s ms, wall %s ms\n", Ms(r.MedianSource()).c_str(),
                  Ms(r.MedianWall()).c_str());
      std::printf("  store commits per execution: %d (SaveBatch)\n", r.runs.front().commits);
      PrintStats("SaveBatch latency inside the engine", Summarize(r.AllCommitSeconds()));
      Stats bytes = Summarize(r.commit_bytes);
      std::printf("  %-52s median %8.0f  max %8.0f bytes\n", "JSON written per SaveBatch",
                  bytes.median, bytes.max);
      const DocCost doc = ExecutionDocCost(r.last, 200);
      std::printf("  final execution document: %zu bytes, %zu runs\n", doc.bytes,
                  r.last.runs.size());
      PrintStats("  ExecutionToDoc (engine, before SaveBatch), alone", doc.build);
      PrintStats("  .dump() (store, inside SaveBatch), alone", doc.dump);
    };
    details("Sequential", seq);
    details("Sequential, files on tmpfs", seq_shm);
    details("Parallel", par);
    details("Parallel, files on tmpfs", par_shm);
    std::printf("\n");
  }
  if (parts.sh_spawn.n > 0) {
    std::printf("Parts of one action, timed alone\n");
    PrintStats("posix_spawn+waitpid /bin/sh -e script.sh (engine's)", parts.sh_spawn);
    PrintStats("PosixProcessLauncher Start->on_exit, /bin/true", parts.launcher_true);
    PrintStats("PosixProcessLauncher Start->on_exit, engine script", parts.launcher_script);
    PrintStats("work dir: mkdir -p src + write script + rm -r", parts.workdir);
    std::printf("\n");
  }
  if (!seq.runs.empty() && !seq_shm.runs.empty() && parts.sh_spawn.n > 0) {
    const double per = seq.MedianSpan() / o.n;
    const double per_shm = seq_shm.MedianSpan() / o.n;
    const double commit = Median(seq_shm.AllCommitSeconds());
    const double build = ExecutionDocCost(seq.last, 200).build.median;
    const double launch = parts.launcher_script.median;
    auto line = [](const char* label, double v) {
      std::printf("  %-58s %8s\n", label, Ms(v).c_str());
    };
    std::printf("Sequential action, where the time goes (medians, ms)\n");
    line("per action, measured", per);
    line("  engine's per-action files (A/B: disk minus tmpfs)", per - per_shm);
    line("  per action with those files on tmpfs", per_shm);
    line("    one SaveBatch commit (engine)", commit);
    line("    ExecutionToDoc (of the final execution: upper bound)", build);
    line("    launcher round trip of the engine script", launch);
    line("    rest: engine logic, thread hand-offs, rm -r on tmpfs",
         per_shm - commit - build - launch);
    line("floor: spawn /bin/true + 2 commits", floor.per_action);
  }
  std::printf("\nload average at the end: %s\n", LoadAverage().c_str());
  return 0;
}

}  // namespace
}  // namespace pw::bench

int main(int argc, char** argv) {
  try {
    return pw::bench::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_orchestration: uncaught exception: %s\n", e.what());
    return 1;
  }
}
