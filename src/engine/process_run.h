#pragma once

// ProcessRuns: the part the Commands and CodeBuild executors share around
// their action's process: the run is "preparing" while its inputs are
// unpacked (a Cancel then refuses to start it), then its process starts with
// the work queue held, a Cancel ends the process (SIGTERM, grace, SIGKILL: the
// launcher's), and its exit is handled on a worker thread before the queue is
// released.
//
//   ProcessRuns runs_(env);                 // executor member
//   runs_.BeginPreparing(w.run_id);         // first thing in Run
//   ... on a failure before the start: runs_.EndPreparing(w.run_id);
//   Status st = runs_.Start(w.run_id, spec, [=](const runner::ProcessExit& x) { ... done(...); });
//   if (st.code() == StatusCode::kAborted) -> "The action was cancelled."
//
// Thread-safe. Lock order: callers may hold the engine mutex around Cancel.

#include <functional>
#include <map>
#include <set>
#include <string>

#include "common/mutex.h"
#include "common/status.h"
#include "engine/executor.h"
#include "runner/process_launcher.h"

namespace pw::engine {

class ProcessRuns {
 public:
  // Uses env.launcher and env.queue, which must outlive this.
  explicit ProcessRuns(const ExecutorEnv& env) : launcher_(env.launcher), queue_(env.queue) {}

  // Marks `run_id` as preparing (before its process exists).
  void BeginPreparing(const std::string& run_id) EXCLUDES(mu_);
  // Forgets a run that failed before its start.
  void EndPreparing(const std::string& run_id) EXCLUDES(mu_);
  // Ends the run's process, or, while it is still preparing, makes Start
  // refuse it. A finished or unknown run: nothing to do.
  void Cancel(const std::string& run_id) EXCLUDES(mu_);

  // Starts `spec` for a preparing run, holding the work queue; after the
  // process exits, `on_exit` runs on a worker thread and the queue is
  // released (if the queue is stopping, it is not run: the run stays
  // InProgress for Recover). Errors (nothing started, the queue not held):
  // kAborted "The action was cancelled." if Cancel came while preparing; else
  // the launcher's error (kInternal when it threw). Call without mu_: `done`
  // callbacks take the engine mutex.
  Status Start(const std::string& run_id, const runner::ProcessSpec& spec,
               std::function<void(const runner::ProcessExit&)> on_exit) EXCLUDES(mu_);

 private:
  runner::ProcessLauncher* launcher_;
  WorkQueue* queue_;
  Mutex mu_;
  std::map<std::string, runner::ProcessId> processes_ GUARDED_BY(mu_);  // Run id -> process.
  std::set<std::string> preparing_ GUARDED_BY(mu_);  // Before their process starts.
  std::set<std::string> cancelled_ GUARDED_BY(mu_);  // Cancelled while preparing.
};

// Gives `path` and everything below it to `user` (the action user runs in
// directories the server made). Symlinks are changed, not followed.
void ChownTree(const std::string& path, const runner::ActionUser& user);

}  // namespace pw::engine
