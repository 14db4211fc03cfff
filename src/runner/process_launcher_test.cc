#include "runner/process_launcher.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/test_files.h"
#include "runner/sandbox.h"
#include "runner/temp_dir.h"

namespace pw::runner::process_launcher_test {
namespace {

using test_files::ReadFile;

namespace fs = std::filesystem;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

// Collects on_exit reports; tests wait on it with a deadline, never sleep.
// Must outlive the launcher that reports into it.
class ExitCollector {
 public:
  std::function<void(ProcessId, const ProcessExit&)> Callback() {
    return [this](ProcessId id, const ProcessExit& exit) {
      std::lock_guard<std::mutex> lock(mu_);
      ++calls_[id];
      exits_[id] = exit;
      cv_.notify_all();
    };
  }
  std::optional<ProcessExit> Wait(ProcessId id, Clock::duration timeout = seconds(20)) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return exits_.count(id) > 0; })) return std::nullopt;
    return exits_[id];
  }
  int Calls(ProcessId id) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[id];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<ProcessId, ProcessExit> exits_;
  std::map<ProcessId, int> calls_;
};

// True when `pid` is gone or a zombie (a container's init may not reap).
bool ProcessDead(const std::string& pid) {
  std::string stat = ReadFile("/proc/" + pid + "/stat");
  if (stat.empty()) return true;
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

bool EventuallyDead(const std::string& pid) {
  auto deadline = Clock::now() + seconds(10);
  while (Clock::now() < deadline) {
    if (ProcessDead(pid)) return true;
    std::this_thread::yield();
  }
  return false;
}

class ProcessLauncherTest : public ::testing::Test {
 protected:
  ProcessSpec Shell(const std::string& script) {
    ProcessSpec spec;
    spec.argv = {"/bin/sh", "-c", script};
    spec.env = {"PATH=/usr/bin:/bin"};
    spec.cwd = tmp_.path();
    spec.log_path = tmp_.path() + "/out.log";
    return spec;
  }
  ProcessExit Run(const ProcessSpec& spec) {
    Result<ProcessId> id = launcher_->Start(spec, collector_.Callback());
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    if (!id.ok()) return {};
    std::optional<ProcessExit> exit = collector_.Wait(*id);
    EXPECT_TRUE(exit.has_value()) << "no exit reported";
    return exit.value_or(ProcessExit{});
  }

  ScopedTempDir tmp_ = *ScopedTempDir::Create("launcher-test");
  ExitCollector collector_;  // Declared before the launcher, so it outlives it.
  std::unique_ptr<ProcessLauncher> launcher_ = NewPosixProcessLauncher();
};

TEST_F(ProcessLauncherTest, ReportsExitCodes) {
  EXPECT_EQ(Run(Shell("exit 0")).exit_code, 0);
  ProcessExit exit = Run(Shell("exit 3"));
  EXPECT_EQ(exit.exit_code, 3);
  EXPECT_EQ(exit.signal, 0);
  EXPECT_FALSE(exit.timed_out);
  EXPECT_FALSE(exit.cancelled);
  EXPECT_GT(exit.started_at, 1e9);
  EXPECT_GE(exit.ended_at, exit.started_at);
}

TEST_F(ProcessLauncherTest, ReportsTerminatingSignal) {
  ProcessExit exit = Run(Shell("kill -KILL $$"));
  EXPECT_EQ(exit.signal, SIGKILL);
  EXPECT_FALSE(exit.cancelled);
}

TEST_F(ProcessLauncherTest, AppendsInterleavedOutputToLogAndKeepsTail) {
  std::ofstream(tmp_.path() + "/out.log") << "previous\n";
  ProcessExit exit = Run(Shell("echo out; echo err >&2; echo out2"));
  EXPECT_EQ(exit.exit_code, 0);
  EXPECT_EQ(ReadFile(tmp_.path() + "/out.log"), "previous\nout\nerr\nout2\n");
  EXPECT_EQ(exit.output_tail, "out\nerr\nout2\n");
}

TEST_F(ProcessLauncherTest, TailIsLastTwentyLinesAndAtMostFourKiB) {
  ProcessExit exit = Run(Shell("i=0; while [ $i -lt 100 ]; do echo line$i; i=$((i+1)); done"));
  std::string expected;
  for (int i = 80; i < 100; ++i) expected += "line" + std::to_string(i) + "\n";
  EXPECT_EQ(exit.output_tail, expected);
  EXPECT_EQ(ReadFile(tmp_.path() + "/out.log").size(), 690u);  // 10*6 + 90*7 bytes.

  exit = Run(Shell("head -c 100000 /dev/zero | tr '\\0' x"));
  EXPECT_EQ(exit.output_tail, std::string(4096, 'x'));
}

TEST_F(ProcessLauncherTest, EnvironmentIsExactlyWhatWasPassed) {
  ASSERT_EQ(setenv("PW_LAUNCHER_TEST_SECRET", "leak", 1), 0);
  ProcessSpec spec = Shell("");
  spec.argv = {"/usr/bin/env"};
  spec.env = {"FOO=bar", "EMPTY=", "B=with space"};
  EXPECT_EQ(Run(spec).exit_code, 0);
  EXPECT_EQ(ReadFile(spec.log_path), "FOO=bar\nEMPTY=\nB=with space\n");
  unsetenv("PW_LAUNCHER_TEST_SECRET");
}

TEST_F(ProcessLauncherTest, HonoursWorkingDirectory) {
  fs::create_directories(tmp_.path() + "/work/dir");
  ProcessSpec spec = Shell("");
  spec.argv = {"/bin/pwd", "-P"};
  spec.cwd = tmp_.path() + "/work/dir";
  EXPECT_EQ(Run(spec).exit_code, 0);
  EXPECT_EQ(ReadFile(spec.log_path), fs::canonical(spec.cwd).string() + "\n");
}

TEST_F(ProcessLauncherTest, StdinIsDevNull) {
  ProcessExit exit = Run(Shell("cat; echo done"));
  EXPECT_EQ(exit.exit_code, 0);
  EXPECT_EQ(exit.output_tail, "done\n");
}

TEST_F(ProcessLauncherTest, DescriptorsWithoutCloexecDoNotLeak) {
  int fd = open("/dev/null", O_RDONLY);  // Deliberately without O_CLOEXEC.
  ASSERT_GE(fd, 0);
  int high = fcntl(fd, F_DUPFD, 50);  // F_DUPFD (not _CLOEXEC) keeps it inheritable.
  ASSERT_GE(high, 50);
  const std::string script = "ls /proc/$$/fd; for n in " + std::to_string(fd) + " " +
                             std::to_string(high) +
                             "; do [ -e /proc/$$/fd/$n ] && exit 1; done; exit 0";
  ProcessExit exit = Run(Shell(script));
  EXPECT_EQ(exit.exit_code, 0) << exit.output_tail;
  EXPECT_EQ(exit.output_tail, "0\n1\n2\n");
  close(fd);
  close(high);
}

TEST_F(ProcessLauncherTest, SignalsAreUnblockedAndDefaultInChild) {
  // The parent ignores SIGPIPE and SIGQUIT (as a background job does) and
  // blocks SIGTERM, as a server does.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old_pipe {};
  sigaction(SIGPIPE, &ignore, &old_pipe);
  struct sigaction old_quit {};
  sigaction(SIGQUIT, &ignore, &old_quit);
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old_mask);

  ProcessExit exit = Run(Shell("grep -E '^(SigBlk|SigIgn)' /proc/self/status"));
  unsigned long long blocked = 0, ignored = 0;
  ASSERT_EQ(std::sscanf(exit.output_tail.c_str(), "SigBlk: %llx SigIgn: %llx", &blocked, &ignored),
            2)
      << exit.output_tail;
  EXPECT_EQ(blocked, 0u);
  // Standard signals 1-31 only: glibc's posix_spawn itself sets its internal
  // real-time signals (32, 33) to SIG_IGN in the child, and sigaddset refuses them.
  EXPECT_EQ(ignored & 0x7fffffffULL, 0u);

  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGPIPE, &old_pipe, nullptr);
  sigaction(SIGQUIT, &old_quit, nullptr);
}

TEST_F(ProcessLauncherTest, TimeoutKillsTheWholeProcessGroup) {
  ProcessSpec spec = Shell("sleep 30 & echo $! > bg.pid; sleep 30");
  spec.timeout_seconds = 0.3;
  spec.kill_grace_seconds = 5;
  auto started = Clock::now();
  ProcessExit exit = Run(spec);
  EXPECT_LT(Clock::now() - started, seconds(5));
  EXPECT_TRUE(exit.timed_out);
  EXPECT_FALSE(exit.cancelled);
  EXPECT_EQ(exit.signal, SIGTERM);
  std::string bg_pid = ReadFile(tmp_.path() + "/bg.pid");
  ASSERT_FALSE(bg_pid.empty());
  bg_pid.pop_back();  // Newline.
  EXPECT_TRUE(EventuallyDead(bg_pid));
}

TEST_F(ProcessLauncherTest, SigkillFollowsTheGracePeriod) {
  // An ignored SIGTERM is inherited by sleep, so only SIGKILL ends this.
  ProcessSpec spec = Shell("trap '' TERM; echo ready; sleep 30");
  spec.timeout_seconds = 0.2;
  spec.kill_grace_seconds = 0.3;
  auto started = Clock::now();
  ProcessExit exit = Run(spec);
  EXPECT_LT(Clock::now() - started, seconds(5));
  EXPECT_TRUE(exit.timed_out);
  EXPECT_EQ(exit.signal, SIGKILL);
}

TEST_F(ProcessLauncherTest, CancelTerminatesAndIsReportedOnce) {
  ProcessSpec spec = Shell("echo started; sleep 30");
  Result<ProcessId> id = launcher_->Start(spec, collector_.Callback());
  ASSERT_TRUE(id.ok());
  launcher_->Cancel(*id);
  launcher_->Cancel(*id);  // Second cancel: no-op.
  std::optional<ProcessExit> exit = collector_.Wait(*id);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->cancelled);
  EXPECT_FALSE(exit->timed_out);
  EXPECT_EQ(exit->signal, SIGTERM);
  launcher_->Cancel(*id);                        // Finished: no-op.
  launcher_->Cancel(*id + 100);                  // Unknown: no-op.
  EXPECT_EQ(Run(Shell("exit 0")).exit_code, 0);  // Still serving.
  EXPECT_EQ(collector_.Calls(*id), 1);
}

TEST_F(ProcessLauncherTest, BackgroundJobDoesNotKeepFinishedProcessAlive) {
  auto started = Clock::now();
  ProcessExit exit = Run(Shell("sleep 30 & echo $! > bg.pid; echo main done"));
  EXPECT_LT(Clock::now() - started, seconds(5));
  EXPECT_EQ(exit.exit_code, 0);
  EXPECT_EQ(exit.output_tail, "main done\n");
  std::string bg_pid = ReadFile(tmp_.path() + "/bg.pid");
  ASSERT_FALSE(bg_pid.empty());
  bg_pid.pop_back();
  EXPECT_TRUE(EventuallyDead(bg_pid));
}

TEST_F(ProcessLauncherTest, EscapedDaemonHoldingThePipeDelaysReportOnlyBriefly) {
  // setsid leaves the group, so the group kill misses it; the drain grace ends the wait.
  auto started = Clock::now();
  ProcessExit exit =
      Run(Shell("setsid sh -c 'echo $$ > bg.tmp; mv bg.tmp bg.pid; exec sleep 30' &"
                " while [ ! -s bg.pid ]; do :; done; echo main done"));
  EXPECT_LT(Clock::now() - started, seconds(5));
  EXPECT_EQ(exit.exit_code, 0);
  EXPECT_EQ(exit.output_tail, "main done\n");
  std::string bg_pid = ReadFile(tmp_.path() + "/bg.pid");
  if (!bg_pid.empty()) kill(std::stoi(bg_pid), SIGKILL);
}

TEST_F(ProcessLauncherTest, MissingProgramIsAnError) {
  ProcessSpec spec = Shell("");
  spec.argv = {"/nonexistent/program"};
  Result<ProcessId> id = launcher_->Start(spec, collector_.Callback());
  EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument);

  spec.argv = {"relative/program"};
  EXPECT_EQ(launcher_->Start(spec, collector_.Callback()).status().code(),
            StatusCode::kInvalidArgument);
  spec.argv = {};
  EXPECT_EQ(launcher_->Start(spec, collector_.Callback()).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(ProcessLauncherTest, MissingWorkingDirectoryIsAnError) {
  ProcessSpec spec = Shell("exit 0");
  spec.cwd = tmp_.path() + "/missing";
  EXPECT_EQ(launcher_->Start(spec, collector_.Callback()).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(ProcessLauncherTest, UnopenableLogIsAnError) {
  ProcessSpec spec = Shell("exit 0");
  spec.log_path = tmp_.path() + "/missing/out.log";
  EXPECT_EQ(launcher_->Start(spec, collector_.Callback()).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(ProcessLauncherTest, FiftyConcurrentProcessesAllReport) {
  std::vector<ProcessId> ids;
  for (int i = 0; i < 50; ++i) {
    ProcessSpec spec = Shell("echo process " + std::to_string(i) + "; exit " + std::to_string(i));
    spec.log_path = tmp_.path() + "/log" + std::to_string(i);
    Result<ProcessId> id = launcher_->Start(spec, collector_.Callback());
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(*id);
  }
  for (int i = 0; i < 50; ++i) {
    std::optional<ProcessExit> exit = collector_.Wait(ids[i]);
    ASSERT_TRUE(exit.has_value()) << i;
    EXPECT_EQ(exit->exit_code, i);
    EXPECT_EQ(exit->output_tail, "process " + std::to_string(i) + "\n");
    EXPECT_EQ(ReadFile(tmp_.path() + "/log" + std::to_string(i)),
              "process " + std::to_string(i) + "\n");
  }
}

TEST_F(ProcessLauncherTest, CallbackMayStartAnotherProcess) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<int> second_exit;
  ProcessSpec spec = Shell("exit 0");
  Result<ProcessId> id = launcher_->Start(spec, [&](ProcessId, const ProcessExit&) {
    ProcessSpec next = Shell("exit 7");
    Result<ProcessId> next_id = launcher_->Start(next, [&](ProcessId, const ProcessExit& exit) {
      std::lock_guard<std::mutex> lock(mu);
      second_exit = exit.exit_code;
      cv.notify_all();
    });
    EXPECT_TRUE(next_id.ok());
  });
  ASSERT_TRUE(id.ok());
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, seconds(20), [&] { return second_exit.has_value(); }));
  EXPECT_EQ(*second_exit, 7);
}

// The Cpus_allowed_list line of /proc/<pid|self>/status.
std::string AllowedCpus(const std::string& pid) {
  std::istringstream status(ReadFile("/proc/" + pid + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Cpus_allowed_list:", 0) == 0) return line + "\n";
  }
  return "";
}

// off_spawner_cpu changes where the spawner runs, not where anyone may: once
// Start has returned the child keeps every CPU its spawner may use (so do the
// processes it starts), the spawning thread has its own mask back, and on a
// spawner pinned to one CPU nothing moves at all.
TEST_F(ProcessLauncherTest, ASpawnerLeavingItsChildsCpuKeepsEveryonesAllowedCpus) {
  ProcessSpec spec = Shell(
      "while [ ! -e go ]; do :; done; grep Cpus_allowed_list /proc/$$/status; "
      "sh -c 'grep Cpus_allowed_list /proc/$$/status'");
  spec.off_spawner_cpu = true;
  const std::string mine = AllowedCpus("thread-self");
  ASSERT_FALSE(mine.empty());
  Result<ProcessId> id = launcher_->Start(spec, collector_.Callback());
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(AllowedCpus("thread-self"), mine);
  std::ofstream(tmp_.path() + "/go");
  std::optional<ProcessExit> exit = collector_.Wait(*id);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_EQ(ReadFile(tmp_.path() + "/out.log"), mine + mine);

  // Pinned to the CPU it runs on: the spawner has nowhere else to go, and
  // its child runs where it may.
  fs::remove(tmp_.path() + "/go");
  fs::remove(tmp_.path() + "/out.log");
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  const int cpu = sched_getcpu();
  CPU_SET(cpu, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  const std::string pinned = AllowedCpus("thread-self");
  id = launcher_->Start(spec, collector_.Callback());
  const std::string after = AllowedCpus("thread-self");
  const int cpu_after = sched_getcpu();
  ASSERT_EQ(sched_setaffinity(0, sizeof saved, &saved), 0);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(after, pinned);
  EXPECT_EQ(cpu_after, cpu);
  std::ofstream(tmp_.path() + "/go");
  exit = collector_.Wait(*id);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_EQ(ReadFile(tmp_.path() + "/out.log"), pinned + pinned);
}

TEST_F(ProcessLauncherTest, ChildLeadsItsOwnSession) {
  // Field 6 of /proc/PID/stat is the session id; "sh" has no space in it.
  Run(Shell("set -- $(cat /proc/$$/stat); echo \"$1 $6\""));
  std::string out = ReadFile(tmp_.path() + "/out.log");
  std::istringstream fields(out);
  std::string pid, sid;
  fields >> pid >> sid;
  EXPECT_FALSE(pid.empty());
  EXPECT_EQ(pid, sid) << out;
}

// True when no process's command line contains `marker` (zombies aside).
bool NoProcessWith(const std::string& marker) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = ReadFile(entry.path().string() + "/cmdline");
    if (cmdline.find(marker) != std::string::npos && !ProcessDead(name)) return false;
  }
  return true;
}

bool EventuallyNoProcessWith(const std::string& marker) {
  auto deadline = Clock::now() + seconds(10);
  while (Clock::now() < deadline) {
    if (NoProcessWith(marker)) return true;
    std::this_thread::yield();
  }
  return false;
}

// A launcher running `sh -c` inside bubblewrap. The directories live outside
// /tmp (in /var/tmp, else the test's working directory), since the sandbox's
// private /tmp would hide anything there whatever the policy says; /var/tmp
// also lets another user reach them (a checkout in /root would not).
class SandboxedLauncherTest : public ProcessLauncherTest {
 protected:
  void SetUp() override {
    SandboxOptions probe;
    Result<SandboxMode> mode = ProbeSandbox("bwrap", probe);
    if (!mode.ok()) GTEST_SKIP() << mode.status().message();
    const fs::path base = fs::is_directory("/var/tmp") ? fs::path("/var/tmp") : fs::current_path();
    std::string templ = (base / "pw-sandbox-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    root_ = templ;
    data_ = root_ + "/data";
    work_ = data_ + "/work/mine";
    fs::create_directories(work_);
    fs::create_directories(data_ + "/work/other");
    std::ofstream(data_ + "/pipewright.db") << "TOPSECRET-DB";
    std::ofstream(data_ + "/work/other/file") << "OTHER-ACTION";
    std::ofstream(root_ + "/keys") << "KEYID:TOPSECRET-KEY";
    options_.mode = SandboxMode::kBwrap;
    options_.hide_dirs = {data_};
    options_.hide_files = {root_ + "/keys"};
  }
  void TearDown() override {
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
  }
  ProcessSpec Sandboxed(const std::string& script, const SandboxOptions& options) {
    ProcessSpec spec = Shell(script);
    spec.cwd = work_;
    SandboxPaths paths;
    paths.cwd = work_;
    paths.writable = {work_};
    spec.argv = Sandbox(options).Wrap(spec.argv, paths);
    return spec;
  }
  // options_ with `nobody` as the action user, or why this host cannot test
  // that: not root, or bubblewrap cannot run as another user here (it needs
  // an unprivileged user namespace, which a sysctl or a chroot refuses; serve
  // then refuses --action-user with the same message).
  Result<SandboxOptions> AsNobody() const {
    if (geteuid() != 0) return FailedPrecondition("switching users needs root");
    PW_ASSIGN_OR_RETURN(ActionUser nobody, LookUpActionUser("nobody"));
    SandboxOptions options = options_;
    options.user = nobody;
    PW_RETURN_IF_ERROR(ProbeSandbox("bwrap", options).status());
    return options;
  }
  // Tries to read everything it should not, and writes its own directory.
  std::string Snoop() {
    return "cat " + data_ + "/pipewright.db; ls " + data_ + "/work; cat " + data_ +
           "/work/other/file; cat " + root_ + "/keys; echo built > out.txt; echo done";
  }

  SandboxOptions options_;
  std::string root_, data_, work_;
};

TEST_F(SandboxedLauncherTest, HiddenFilesAreUnreadableAndTheWorkDirIsWritable) {
  ProcessExit exit = Run(Sandboxed(Snoop(), options_));
  std::string out = ReadFile(tmp_.path() + "/out.log");
  EXPECT_EQ(out.find("TOPSECRET"), std::string::npos) << out;
  EXPECT_EQ(out.find("OTHER-ACTION"), std::string::npos) << out;
  EXPECT_NE(out.find("\nmine\n"), std::string::npos) << out;  // ls: its own directory only.
  EXPECT_EQ(out.find("other\n"), std::string::npos) << out;
  EXPECT_NE(out.find("done"), std::string::npos) << out;
  EXPECT_EQ(exit.exit_code, 0);
  EXPECT_EQ(ReadFile(work_ + "/out.txt"), "built\n");

  // The same without the sandbox reads all of it: the sandbox is what hides it.
  fs::remove(tmp_.path() + "/out.log");
  ProcessExit plain = Run(Sandboxed(Snoop(), SandboxOptions{}));
  out = ReadFile(tmp_.path() + "/out.log");
  EXPECT_NE(out.find("TOPSECRET-DB"), std::string::npos) << out;
  EXPECT_NE(out.find("TOPSECRET-KEY"), std::string::npos) << out;
  EXPECT_NE(out.find("OTHER-ACTION"), std::string::npos) << out;
  EXPECT_EQ(plain.exit_code, 0);
}

TEST_F(SandboxedLauncherTest, SystemIsReadOnlyAndRootHasNoCapabilities) {
  ProcessExit exit =
      Run(Sandboxed("grep CapEff /proc/self/status; touch /usr/pw-sandbox-test || echo ro-ok; "
                    "umount " +
                        data_ + " || echo umount-refused",
                    options_));
  std::string out = ReadFile(tmp_.path() + "/out.log");
  EXPECT_NE(out.find("CapEff:\t0000000000000000"), std::string::npos) << out;
  EXPECT_NE(out.find("ro-ok"), std::string::npos) << out;
  EXPECT_NE(out.find("umount-refused"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists("/usr/pw-sandbox-test"));
  EXPECT_EQ(exit.exit_code, 0);
}

TEST_F(SandboxedLauncherTest, TimeoutKillsEverythingInsideTheSandbox) {
  // One background job stays in the group, one leaves it with setsid; both die.
  const std::string marker = "pw-sandbox-marker-" + std::to_string(getpid());
  ProcessSpec spec =
      Sandboxed("sh -c 'sleep 30; true' " + marker + "-a & setsid sh -c 'sleep 30; true' " +
                    marker + "-b & echo started; sleep 30",
                options_);
  spec.timeout_seconds = 0.5;
  auto started = Clock::now();
  ProcessExit exit = Run(spec);
  EXPECT_LT(Clock::now() - started, seconds(5));
  EXPECT_TRUE(exit.timed_out);
  EXPECT_NE(exit.output_tail.find("started"), std::string::npos);
  EXPECT_TRUE(EventuallyNoProcessWith(marker));
}

TEST_F(SandboxedLauncherTest, CancelKillsEverythingInsideTheSandbox) {
  const std::string marker = "pw-sandbox-cancel-" + std::to_string(getpid());
  ProcessSpec spec =
      Sandboxed("setsid sh -c 'sleep 30; true' " + marker + " & echo > ready; sleep 30", options_);
  Result<ProcessId> id = launcher_->Start(spec, collector_.Callback());
  ASSERT_TRUE(id.ok());
  auto deadline = Clock::now() + seconds(10);
  while (!fs::exists(work_ + "/ready") && Clock::now() < deadline) std::this_thread::yield();
  ASSERT_TRUE(fs::exists(work_ + "/ready"));
  EXPECT_FALSE(NoProcessWith(marker));  // Really running, so the check below can fail.
  launcher_->Cancel(*id);
  std::optional<ProcessExit> exit = collector_.Wait(*id);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->cancelled);
  EXPECT_TRUE(EventuallyNoProcessWith(marker));
}

TEST_F(SandboxedLauncherTest, OutlivesTheThreadThatStartedIt) {
  // bwrap --die-with-parent would kill the action here: its parent is the
  // starting thread, and HTTP or engine threads may end before the action.
  ProcessSpec spec =
      Sandboxed("echo > ready; while [ ! -e go ]; do sleep 0.01; done; echo survived", options_);
  Result<ProcessId> id = Internal("not started");
  std::thread starter([&] {
    id = launcher_->Start(spec, collector_.Callback());
    auto deadline = Clock::now() + seconds(10);
    while (!fs::exists(work_ + "/ready") && Clock::now() < deadline) std::this_thread::yield();
  });
  starter.join();
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  std::ofstream(work_ + "/go") << "";
  std::optional<ProcessExit> exit = collector_.Wait(*id);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->signal, 0);
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_NE(exit->output_tail.find("survived"), std::string::npos) << exit->output_tail;
}

TEST_F(SandboxedLauncherTest, ActionUserRunsAsThatUser) {
  Result<SandboxOptions> as_nobody = AsNobody();
  if (!as_nobody.ok()) GTEST_SKIP() << as_nobody.status().message();
  const ActionUser& nobody = *as_nobody->user;
  fs::permissions(root_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  ASSERT_EQ(chown(work_.c_str(), nobody.uid, nobody.gid), 0);
  ProcessExit exit =
      Run(Sandboxed("id -u; echo mine > out.txt; cat /root/.profile || echo denied", *as_nobody));
  std::string out = ReadFile(tmp_.path() + "/out.log");
  EXPECT_NE(out.find(std::to_string(nobody.uid) + "\n"), std::string::npos) << out;
  EXPECT_NE(out.find("denied"), std::string::npos) << out;
  EXPECT_EQ(exit.exit_code, 0) << out;
  struct stat st {};
  ASSERT_EQ(stat((work_ + "/out.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, nobody.uid);
}

// A checkout in /root (0700) once failed every action of `serve --action-user`
// with bwrap's "Can't find source path ...: Permission denied"; now serve
// refuses to start, naming the directory.
TEST_F(SandboxedLauncherTest, ActionUserThatCannotReachTheWorkRootIsRefusedAtStart) {
  if (Result<SandboxOptions> as_nobody = AsNobody(); !as_nobody.ok()) {
    GTEST_SKIP() << as_nobody.status().message();
  }
  fs::permissions(root_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  const std::string locked = root_ + "/locked";
  fs::create_directories(locked + "/work");
  fs::permissions(locked, fs::perms::owner_all);
  Result<SandboxOptions> refused = ConfigureSandbox("bwrap", "nobody", {}, {}, locked + "/work");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("nobody cannot reach " + locked + "/work"),
            std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("chmod o+x"), std::string::npos);
  // "auto" does not fall back to no sandbox over it either.
  EXPECT_FALSE(ConfigureSandbox("auto", "nobody", {}, {}, locked + "/work").ok());
  fs::permissions(locked, fs::perms::owner_all | fs::perms::others_exec);
  Result<SandboxOptions> ok = ConfigureSandbox("bwrap", "nobody", {}, {}, locked + "/work");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->mode, SandboxMode::kBwrap);
}

TEST(PosixProcessLauncher, DestructorCancelsRunningProcessesAndReportsThem) {
  ScopedTempDir tmp = *ScopedTempDir::Create("launcher-test");
  ExitCollector collector;
  ProcessId id = 0;
  auto started = Clock::now();
  {
    std::unique_ptr<ProcessLauncher> launcher = NewPosixProcessLauncher();
    ProcessSpec spec;
    spec.argv = {"/bin/sleep", "30"};
    spec.cwd = tmp.path();
    Result<ProcessId> started_id = launcher->Start(spec, collector.Callback());
    ASSERT_TRUE(started_id.ok());
    id = *started_id;
  }
  EXPECT_LT(Clock::now() - started, seconds(5));
  std::optional<ProcessExit> exit = collector.Wait(id, seconds(0));
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->cancelled);
  EXPECT_EQ(exit->signal, SIGTERM);
}

}  // namespace
}  // namespace pw::runner::process_launcher_test
