#pragma once

// One server per data directory: `serve` takes an exclusive lock on
// <data dir>/server.lock (flock) before it opens the store, and keeps it for
// the life of the process. A second server on the same directory would
// "recover" the first one's running actions (kill their processes, fail their
// runs) and keep its own idea of the state on one SQLite file.
//
//   auto lock = LockDataDir("/var/lib/pipewright");
//   if (!lock.ok()) { ... lock.status().message() names the holder's pid ... }
//
// The lock goes with the process (also on SIGKILL or a crash): the kernel
// drops it when the last descriptor of it closes, and the descriptor is
// close-on-exec, so actions the server spawned never hold it.

#include <string>

#include "common/status.h"
#include "runner/fd.h"

namespace pw::server {

class DataDirLock {
 private:
  friend Result<DataDirLock> LockDataDir(const std::string& dir);
  explicit DataDirLock(runner::Fd fd) : fd_(std::move(fd)) {}
  runner::Fd fd_;  // Locked; closing it releases the lock.
};

// kFailedPrecondition when another process holds the lock (the message names
// the directory and the pid recorded by the holder, and what to do);
// kInternal when the lock file cannot be opened or locked.
Result<DataDirLock> LockDataDir(const std::string& dir);

}  // namespace pw::server
