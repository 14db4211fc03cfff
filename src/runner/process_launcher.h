#pragma once

// ProcessLauncher: the seam through which the engine runs child processes
// (ninja's CommandRunner). The engine and its tests depend only on this
// interface; NewPosixProcessLauncher() is the one implementation that touches
// real processes.
//
//   std::unique_ptr<ProcessLauncher> launcher = NewPosixProcessLauncher();
//   ProcessSpec spec;
//   spec.argv = {"/bin/sh", "-e", "-c", script};
//   spec.env = {"PATH=/usr/bin:/bin", "HOME=/tmp/job"};
//   spec.cwd = workdir;
//   spec.log_path = workdir + "/action.log";
//   spec.timeout_seconds = 3600;
//   Result<ProcessId> id = launcher->Start(spec, [&](ProcessId id, const ProcessExit& exit) {
//     queue.Push(ActionFinished{id, exit});  // Runs on the launcher's thread: keep it short.
//   });
//   if (!id.ok()) return id.status();
//   ...
//   launcher->Cancel(*id);  // Later, when the user stops the execution.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace pw::runner {

class SpareFiles;

// What to run and how. Plain value; copied by Start().
struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is an absolute path, e.g. {"/bin/sh", "-e", "-c", s}.
  std::vector<std::string> env;   // The complete environment, "K=V"; nothing is inherited.
  std::string cwd;                // Working directory; must exist. Empty: the launcher's.
  std::string log_path;           // stdout and stderr are appended here, interleaved in
                                  // arrival order (created 0644 if missing). Empty: discarded.
  SpareFiles* log_spares = nullptr;  // When set, a missing log is one of its spares (renamed):
                                     // no inode made on the way to the spawn. Outlives Start().
  // The spawning thread leaves the child's CPU right after the spawn (when it
  // may run elsewhere), for a spawner with more work to do at once (not more
  // spawns: a group's children would pile up on the other CPUs). Neither
  // one's allowed CPUs change.
  bool off_spawner_cpu = false;
  double timeout_seconds = 0;     // 0 = no timeout.
  double kill_grace_seconds = 5;  // After SIGTERM to the group, SIGKILL to the group.
};

// How a process ended. Plain value.
struct ProcessExit {
  int exit_code = -1;       // Valid when signal == 0.
  int signal = 0;           // Terminating signal, or 0.
  bool timed_out = false;   // Killed because timeout_seconds elapsed.
  bool cancelled = false;   // Killed because Cancel() was called.
  std::string output_tail;  // Last ~20 lines (at most 4 KiB) of combined output.
  double started_at = 0;    // Epoch seconds.
  double ended_at = 0;      // Epoch seconds.
};

// Launcher-assigned, never reused within one launcher.
using ProcessId = uint64_t;

// Runs child processes and reports their exits. Implementations are
// thread-safe: Start() and Cancel() may be called from any thread, including
// from inside an on_exit callback.
class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;

  // Starts a process described by `spec`. On success returns its id; then
  // `on_exit` is called exactly once, from the launcher's own thread, after the
  // process has exited and its output has been written to spec.log_path
  // (possibly before Start() has returned to the caller). On failure nothing
  // was started and `on_exit` is never called:
  //   kInvalidArgument  empty argv, relative argv[0], missing or non-executable
  //                     program, missing cwd, unopenable log_path;
  //   kInternal         any other spawn failure (pipe, fd limits, ...).
  // Callbacks must not block for long: they delay every other process's
  // output and timeouts.
  virtual Result<ProcessId> Start(const ProcessSpec& spec,
                                  std::function<void(ProcessId, const ProcessExit&)> on_exit) = 0;

  // Sends SIGTERM to the process's group, then SIGKILL after its
  // kill_grace_seconds; the exit is then reported with cancelled = true. An
  // unknown or already finished id, or a second Cancel(), is a no-op.
  virtual void Cancel(ProcessId id) = 0;
};

// The POSIX implementation: posix_spawn (never fork) into a new session (so a
// new process group, without a controlling terminal),
// with an empty signal mask, default dispositions, stdin from /dev/null and no
// descriptor beyond 0-2 inherited. One supervisor thread multiplexes output,
// exits and deadlines. When a process's main child exits, whatever remains of
// its process group is killed, so a stray background job can neither keep the
// action running nor outlive it. The destructor cancels every running process
// (honouring its grace period), delivers their on_exit callbacks and joins the
// thread; no callback runs after it returns.
//
// The owner must not set SIGCHLD to SIG_IGN, and nothing else in the process
// may reap the launcher's children (waitpid(-1, ...)).
std::unique_ptr<ProcessLauncher> NewPosixProcessLauncher();

}  // namespace pw::runner
