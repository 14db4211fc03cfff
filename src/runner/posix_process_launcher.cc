// The POSIX ProcessLauncher: posix_spawn plus one supervisor thread that
// multiplexes every child's output pipe, its pidfd and the deadlines with
// ppoll (ninja's subprocess-posix.cc, extended per docs/style.md section 3).
//
// Threads: Start() spawns on the caller's thread (spawning is the hot path and
// needs no shared state), then hands the new Child to the supervisor through
// pending_. Cancel() and shutdown are requests queued the same way. All other
// child state is owned by the supervisor thread alone, so it needs no lock.

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/check.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "common/thread_name.h"
#include "runner/process_launcher.h"
#include "runner/spare_files.h"

namespace pw::runner {
namespace {

constexpr size_t kTailBytes = 4096;
constexpr int kTailLines = 20;
// Once the main child has exited and its group was killed, how long to keep
// reading output that is still in flight. A process that escaped the group
// (setsid) and holds the pipe open cannot delay the report beyond this.
constexpr double kDrainGraceSeconds = 1.0;
// Poll period when the kernel lacks pidfd_open (Linux < 5.3).
constexpr double kReapPollSeconds = 0.05;
// Reads per readable pipe per wake-up, so one chatty child cannot starve others.
constexpr int kMaxReadsPerWake = 4;
constexpr double kNever = std::numeric_limits<double>::infinity();
// Linux's standard signals are 1-31; above are real-time ones, some glibc's own.
constexpr int kLastStandardSignal = 31;

double WallNow() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Keeps the last kTailLines lines of `text`, itself at most kTailBytes long.
std::string TailLines(const std::string& text) {
  std::string tail = text.size() > kTailBytes ? text.substr(text.size() - kTailBytes) : text;
  size_t end = tail.size();
  if (end > 0 && tail[end - 1] == '\n') --end;  // A final newline ends the last line.
  int lines = 0;
  for (size_t i = end; i > 0; --i) {
    if (tail[i - 1] == '\n' && ++lines == kTailLines) return tail.substr(i);
  }
  return tail;
}

// One running process. Owned by the supervisor thread once adopted.
struct Child {
  ProcessId id = 0;
  pid_t pid = -1;   // Also its process group id.
  int out_fd = -1;  // Read end of the output pipe; -1 once EOF or abandoned.
  int pid_fd = -1;  // -1 when pidfd_open is unsupported or once reaped.
  int log_fd = -1;  // -1 when output is discarded.
  double grace = 5;
  double deadline = kNever;     // Monotonic; timeout_seconds elapses.
  double kill_at = kNever;      // Monotonic; SIGTERM grace ends, SIGKILL follows.
  double drain_until = kNever;  // Monotonic; stop waiting for pipe EOF.
  bool terminating = false;     // SIGTERM (or SIGKILL) was sent to the group.
  bool reaped = false;
  std::string tail;
  ProcessExit exit;
  std::function<void(ProcessId, const ProcessExit&)> on_exit;

  ~Child() {
    CloseFd(out_fd);
    CloseFd(pid_fd);
    CloseFd(log_fd);
  }
};

// Returns `fd` moved to a number >= 3, close-on-exec, so the child's dup2 and
// /dev/null actions on 0-2 can never clobber it (the parent may run with 0-2
// closed). Closes `fd` on success; returns -1 with errno on failure.
int AboveStdio(int fd) {
  if (fd >= 3) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int saved = errno;
  close(fd);
  errno = saved;
  return moved;
}

class PosixProcessLauncher final : public ProcessLauncher {
 public:
  PosixProcessLauncher();
  ~PosixProcessLauncher() override;
  PosixProcessLauncher(const PosixProcessLauncher&) = delete;
  PosixProcessLauncher& operator=(const PosixProcessLauncher&) = delete;

  Result<ProcessId> Start(const ProcessSpec& spec,
                          std::function<void(ProcessId, const ProcessExit&)> on_exit) override;
  void Cancel(ProcessId id) override;

 private:
  Result<std::unique_ptr<Child>> Spawn(const ProcessSpec& spec);
  void Wake();

  // Supervisor thread.
  void Run();
  void Loop();
  void Terminate(Child& child, double now);
  void ReadOutput(Child& child);
  bool Reap(Child& child, bool block);
  void Deliver(std::unique_ptr<Child> child);

  std::atomic<ProcessId> next_id_{1};
  int wake_fd_ = -1;  // eventfd; written to wake the supervisor.

  std::mutex mu_;
  std::vector<std::unique_ptr<Child>> pending_;  // Guarded by mu_. Started, not yet adopted.
  std::vector<ProcessId> cancels_;               // Guarded by mu_.
  bool shutdown_ = false;                        // Guarded by mu_.

  // Supervisor thread only.
  std::unordered_map<ProcessId, std::unique_ptr<Child>> children_;
  std::vector<char> read_buf_ = std::vector<char>(size_t{64} * 1024);

  std::thread thread_;  // Last: starts after everything above is initialised.
};

PosixProcessLauncher::PosixProcessLauncher() {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  // Only fails when the process is out of descriptors at start-up.
  PW_CHECK(wake_fd_ >= 0);
  thread_ = std::thread([this] { Run(); });
}

PosixProcessLauncher::~PosixProcessLauncher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
  }
  Wake();
  thread_.join();
  CloseFd(wake_fd_);
}

void PosixProcessLauncher::Wake() {
  uint64_t one = 1;
  // EAGAIN means the counter is saturated: the supervisor is already due to wake.
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
}

Result<ProcessId> PosixProcessLauncher::Start(
    const ProcessSpec& spec, std::function<void(ProcessId, const ProcessExit&)> on_exit) {
  PW_ASSIGN_OR_RETURN(std::unique_ptr<Child> child, Spawn(spec));
  child->id = next_id_.fetch_add(1);
  child->on_exit = std::move(on_exit);
  const ProcessId id = child->id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(std::move(child));
  }
  Wake();
  return id;
}

void PosixProcessLauncher::Cancel(ProcessId id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.push_back(id);
  }
  Wake();
}

// posix_spawn is a vfork: the child starts on the spawner's CPU, and the
// spawner, woken once the child has exec'd, preempts it there; the kernel
// did not move either to the idle CPU of this 2-CPU VM (291 of 295 slices of
// the children ran on their spawner's CPU, waiting 0.135 ms each behind it;
// see docs/performance.md). Here the spawner leaves: its allowed CPUs without
// this one, then its own mask again (the place changes, the mask does not).
// The spawner moves, not the child: a child moved in the middle of its exec
// has its new address space live on two CPUs, and every unmap and its exit
// then flush the other CPU's TLB too (an IPI; on a paravirtualised VM such as
// this one, dearer than the move saved). Nothing when this is its only CPU.
void LeaveThisCpu() {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
  const int cpu = sched_getcpu();
  if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed)) return;
  cpu_set_t others = allowed;
  CPU_CLR(cpu, &others);
  if (CPU_COUNT(&others) == 0) return;
  if (sched_setaffinity(0, sizeof others, &others) != 0) return;
  sched_setaffinity(0, sizeof allowed, &allowed);
}

Result<std::unique_ptr<Child>> PosixProcessLauncher::Spawn(const ProcessSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty() || spec.argv[0][0] != '/') {
    return InvalidArgument("argv[0] must be an absolute path", "");
  }
  auto child = std::make_unique<Child>();
  child->grace = std::max(0.0, spec.kill_grace_seconds);
  if (!spec.log_path.empty()) {
    if (spec.log_spares != nullptr) child->log_fd = spec.log_spares->Claim(spec.log_path);
    if (child->log_fd < 0) {
      child->log_fd = open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    }
    if (child->log_fd < 0) return InvalidArgument(Errno("open log " + spec.log_path), "");
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Internal(Errno("pipe2"));
  child->out_fd = AboveStdio(fds[0]);
  int write_fd = AboveStdio(fds[1]);
  if (child->out_fd < 0 || write_fd < 0) {
    Status status = Internal(Errno("fcntl"));
    CloseFd(write_fd);
    return status;
  }
  fcntl(child->out_fd, F_SETFL, O_NONBLOCK);

  // Child side, in order: output to the pipe, stdin from /dev/null, cwd, and
  // nothing else open. The dup2 targets lose FD_CLOEXEC; the pipe's own
  // descriptors keep it and are closed by closefrom anyway.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, write_fd, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (!spec.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, spec.cwd.c_str());
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);

  // Own session, hence own process group (so signals reach the whole job and
  // ours don't reach it) and no controlling terminal (so it cannot inject
  // input into the server's, which bwrap's --new-session would otherwise be
  // needed for), nothing blocked, and default dispositions for every standard signal:
  // ignored ones survive exec, and a server may ignore SIGPIPE, or inherit
  // ignored SIGINT/SIGQUIT when started as a background job or SIGHUP from
  // nohup. (glibc resets handled signals itself; 31 sigactions in the child
  // cost microseconds next to exec.)
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig = 1; sig <= kLastStandardSignal; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaddset(&defaults, sig);
  }
  posix_spawnattr_setsigdefault(&attr, &defaults);

  std::vector<char*> argv;
  argv.reserve(spec.argv.size() + 1);
  for (const std::string& arg : spec.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(spec.env.size() + 1);
  for (const std::string& var : spec.env) envp.push_back(const_cast<char*>(var.c_str()));
  envp.push_back(nullptr);

  child->exit.started_at = WallNow();
  const double start_mono = MonotonicSeconds();
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  if (rc == 0 && spec.off_spawner_cpu) LeaveThisCpu();
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  CloseFd(write_fd);
  if (rc != 0) {
    std::string message = "spawn " + spec.argv[0] + " in '" + spec.cwd + "': " + std::strerror(rc);
    switch (rc) {
      case ENOENT:
      case EACCES:
      case ENOEXEC:
      case ENOTDIR:
      case ELOOP:
      case ENAMETOOLONG:
      case E2BIG:
        return InvalidArgument(std::move(message), "");
      default:
        return Internal(std::move(message));
    }
  }
  child->pid = pid;
  // Until we reap it, `pid` cannot be reused, so the pidfd names our child.
  // ENOSYS on old kernels: the supervisor polls waitpid instead.
  // (glibc 2.36's <sys/pidfd.h> lacks extern "C", hence the raw syscall.)
  child->pid_fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (spec.timeout_seconds > 0) child->deadline = start_mono + spec.timeout_seconds;
  return child;
}

void PosixProcessLauncher::Run() {
  NameThisThread("pw-reaper");
  // A thread entry: nothing may escape it (docs/style.md 4.7). on_exit is
  // caller code; an exception from it is a bug in the caller.
  try {
    Loop();
  } catch (const std::exception& e) {
    PW_LOG(Error) << "process launcher thread: uncaught exception: " << e.what();
    std::abort();
  } catch (...) {
    PW_LOG(Error) << "process launcher thread: uncaught exception";
    std::abort();
  }
}

void PosixProcessLauncher::Loop() {
  std::vector<pollfd> fds;
  std::vector<Child*> fd_owner;  // fds[i] belongs to fd_owner[i]; nullptr for the eventfd.
  for (;;) {
    // 1. Take requests from other threads.
    std::vector<std::unique_ptr<Child>> adopted;
    std::vector<ProcessId> cancels;
    bool shutdown = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      adopted.swap(pending_);
      cancels.swap(cancels_);
      shutdown = shutdown_;
    }
    for (auto& child : adopted) children_.emplace(child->id, std::move(child));
    double now = MonotonicSeconds();
    for (ProcessId id : cancels) {
      auto it = children_.find(id);
      if (it == children_.end()) continue;  // Unknown or already reported.
      Child& child = *it->second;
      if (child.reaped || child.terminating) continue;
      child.exit.cancelled = true;
      Terminate(child, now);
    }
    if (shutdown) {
      for (auto& [id, child] : children_) {
        if (child->reaped || child->terminating) continue;
        child->exit.cancelled = true;
        Terminate(*child, now);
      }
    }

    // 2. Deadlines, and children that are done.
    double next_wake = kNever;
    std::vector<std::unique_ptr<Child>> done;
    for (auto it = children_.begin(); it != children_.end();) {
      Child& child = *it->second;
      if (!child.reaped) {
        if (!child.terminating && now >= child.deadline) {
          child.exit.timed_out = true;
          Terminate(child, now);
        }
        if (child.terminating && now >= child.kill_at) {
          kill(-child.pid, SIGKILL);
          child.kill_at = kNever;
        }
        if (child.pid_fd < 0) {
          Reap(child, /*block=*/false);
          if (!child.reaped) next_wake = std::min(next_wake, now + kReapPollSeconds);
        }
      }
      if (child.reaped && child.out_fd >= 0 && now >= child.drain_until) CloseFd(child.out_fd);
      if (child.reaped && child.out_fd < 0) {
        done.push_back(std::move(it->second));
        it = children_.erase(it);
        continue;
      }
      if (!child.reaped) {
        next_wake =
            std::min({next_wake, child.terminating ? kNever : child.deadline, child.kill_at});
      } else {
        next_wake = std::min(next_wake, child.drain_until);
      }
      ++it;
    }
    for (auto& child : done) Deliver(std::move(child));
    if (!done.empty()) continue;  // Callbacks may have queued work; re-read it.
    if (shutdown && children_.empty()) return;

    // 3. Wait for output, exits, requests or the nearest deadline.
    fds.clear();
    fd_owner.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fd_owner.push_back(nullptr);
    for (auto& [id, child] : children_) {
      if (child->out_fd >= 0) {
        fds.push_back({child->out_fd, POLLIN, 0});
        fd_owner.push_back(child.get());
      }
      if (child->pid_fd >= 0) {
        fds.push_back({child->pid_fd, POLLIN, 0});
        fd_owner.push_back(child.get());
      }
    }
    timespec timeout{};
    timespec* timeout_ptr = nullptr;
    if (next_wake != kNever) {
      double wait = std::max(0.0, next_wake - MonotonicSeconds());
      timeout.tv_sec = static_cast<time_t>(wait);
      timeout.tv_nsec = static_cast<long>((wait - std::floor(wait)) * 1e9);
      timeout_ptr = &timeout;
    }
    int n = ppoll(fds.data(), fds.size(), timeout_ptr, nullptr);
    if (n < 0) {
      // EINTR is benign; anything else (EFAULT, EINVAL) is our bug.
      PW_CHECK(errno == EINTR || errno == ENOMEM);
      continue;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      Child* child = fd_owner[i];
      if (child == nullptr) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = read(wake_fd_, &count, sizeof count);
      } else if (fds[i].fd == child->out_fd) {
        ReadOutput(*child);
      } else if (fds[i].fd == child->pid_fd) {
        Reap(*child, /*block=*/true);
      }
    }
  }
}

// SIGTERM to the whole group now, SIGKILL after the grace period.
void PosixProcessLauncher::Terminate(Child& child, double now) {
  child.terminating = true;
  if (child.grace > 0) {
    kill(-child.pid, SIGTERM);
    child.kill_at = now + child.grace;
  } else {
    kill(-child.pid, SIGKILL);
  }
}

void PosixProcessLauncher::ReadOutput(Child& child) {
  for (int i = 0; i < kMaxReadsPerWake && child.out_fd >= 0; ++i) {
    ssize_t n = read(child.out_fd, read_buf_.data(), read_buf_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      PW_LOG(Warning) << "process " << child.id << ": reading output: " << std::strerror(errno);
      CloseFd(child.out_fd);
      return;
    }
    if (n == 0) {  // EOF: every writer in the group has closed the pipe.
      CloseFd(child.out_fd);
      return;
    }
    const size_t size = static_cast<size_t>(n);
    child.tail.append(read_buf_.data(), size);
    if (child.tail.size() > 2 * kTailBytes) child.tail.erase(0, child.tail.size() - kTailBytes);
    for (size_t off = 0; child.log_fd >= 0 && off < size;) {
      ssize_t w = write(child.log_fd, read_buf_.data() + off, size - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        // Disk full or similar: keep the tail, stop logging rather than stall.
        PW_LOG(Warning) << "process " << child.id << ": writing log: " << std::strerror(errno);
        CloseFd(child.log_fd);
        break;
      }
      off += static_cast<size_t>(w);
    }
    if (size < read_buf_.size()) return;  // Drained for now.
  }
}

// Collects the exit status if the main child has exited. `block` is used only
// once the pidfd said it has, so waitpid returns at once.
bool PosixProcessLauncher::Reap(Child& child, bool block) {
  siginfo_t info{};
  // WNOWAIT first: the zombie keeps its pid, which is the group id, so killing
  // the group below cannot hit a recycled id.
  int rc;
  do {
    rc = waitid(P_PID, static_cast<id_t>(child.pid), &info,
                WEXITED | WNOWAIT | (block ? 0 : WNOHANG));
  } while (rc < 0 && errno == EINTR);
  // ECHILD would mean someone else reaped our child: a bug in the owner.
  PW_CHECK(rc == 0);
  if (info.si_pid == 0) return false;  // WNOHANG and still running.

  // Background jobs left behind would hold the pipe open (and outlive the
  // action): kill what remains of the group, then reap.
  kill(-child.pid, SIGKILL);
  int status = 0;
  pid_t r;
  do {
    r = waitpid(child.pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  PW_CHECK(r == child.pid);
  child.reaped = true;
  CloseFd(child.pid_fd);
  child.exit.ended_at = WallNow();
  if (WIFEXITED(status)) {
    child.exit.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    child.exit.signal = WTERMSIG(status);
  }
  child.drain_until = MonotonicSeconds() + kDrainGraceSeconds;
  if (child.out_fd >= 0) ReadOutput(child);
  return true;
}

void PosixProcessLauncher::Deliver(std::unique_ptr<Child> child) {
  CloseFd(child->log_fd);  // Everything is written before on_exit runs.
  child->exit.output_tail = TailLines(child->tail);
  auto on_exit = std::move(child->on_exit);
  ProcessExit exit = std::move(child->exit);
  ProcessId id = child->id;
  child.reset();
  if (on_exit) on_exit(id, exit);
}

}  // namespace

std::unique_ptr<ProcessLauncher> NewPosixProcessLauncher() {
  return std::make_unique<PosixProcessLauncher>();
}

}  // namespace pw::runner
