#include "engine/process_run.h"

#include <unistd.h>

#include <exception>
#include <filesystem>

#include "engine/work_queue.h"

namespace pw::engine {

namespace fs = std::filesystem;

void ProcessRuns::BeginPreparing(const std::string& run_id) {
  MutexLock lock(mu_);
  preparing_.insert(run_id);
}

void ProcessRuns::EndPreparing(const std::string& run_id) {
  MutexLock lock(mu_);
  preparing_.erase(run_id);
  cancelled_.erase(run_id);
}

void ProcessRuns::Cancel(const std::string& run_id) {
  MutexLock lock(mu_);
  auto it = processes_.find(run_id);
  if (it != processes_.end()) {
    launcher_->Cancel(it->second);
  } else if (preparing_.count(run_id)) {
    cancelled_.insert(run_id);  // Still unpacking: refuse to start it.
  }  // Else finished (or never handed over): nothing to end, nothing to remember.
}

Status ProcessRuns::Start(const std::string& run_id, const runner::ProcessSpec& spec,
                          std::function<void(const runner::ProcessExit&)> on_exit) {
  auto exited = [this, run_id, on_exit = std::move(on_exit)](runner::ProcessId,
                                                             const runner::ProcessExit& x) {
    {
      MutexLock lock(mu_);
      processes_.erase(run_id);
    }
    WorkQueue* queue = queue_;
    bool queued = queue->Enqueue([on_exit, x, queue] {
      on_exit(x);
      queue->Release();
    });
    if (!queued) queue->Release();  // Stopping: the run stays InProgress for Recover.
  };
  MutexLock lock(mu_);
  preparing_.erase(run_id);
  if (cancelled_.erase(run_id) > 0) return Aborted("The action was cancelled.");
  queue_->Hold();
  // The exit callback takes mu_ too, so it sees the process recorded.
  Result<runner::ProcessId> started = Internal("not started");
  try {
    started = launcher_->Start(spec, exited);
  } catch (const std::exception& ex) {
    started = Internal(std::string("the process launcher failed: ") + ex.what());
  }
  if (!started.ok()) {
    queue_->Release();
    return started.status();
  }
  processes_[run_id] = *started;
  return Status::Ok();
}

void ChownTree(const std::string& path, const runner::ActionUser& user) {
  std::error_code ec;
  if (lchown(path.c_str(), user.uid, user.gid) != 0) return;
  if (!fs::is_directory(fs::symlink_status(path, ec))) return;
  for (auto it = fs::recursive_directory_iterator(path, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    [[maybe_unused]] int rc = lchown(it->path().c_str(), user.uid, user.gid);
  }
}

}  // namespace pw::engine
