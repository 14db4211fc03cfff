#include "server/data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace pw::server {

Result<DataDirLock> LockDataDir(const std::string& dir) {
  const std::string path = dir + "/server.lock";
  runner::Fd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return Internal("cannot open " + path + ": " + runner::ErrnoText());
  int rc;
  do {
    rc = flock(fd.get(), LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno != EWOULDBLOCK) return Internal("cannot lock " + path + ": " + runner::ErrnoText());
    std::string holder;
    char buf[32] = {};
    const ssize_t n = pread(fd.get(), buf, sizeof buf - 1, 0);
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) holder += buf[i];
    return FailedPrecondition(
        "another server is using the data directory " + dir +
        (holder.empty() ? std::string() : " (pid " + holder + ")") +
        ": stop it first (a stopping server keeps it until its actions are ended), or "
        "give this one another --data-dir.");
  }
  // Who holds it, for the next one's message; the lock, not this, is the rule.
  const std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd.get(), 0) != 0 || pwrite(fd.get(), pid.data(), pid.size(), 0) < 0) {
    // Only the message loses its pid.
  }
  return DataDirLock(std::move(fd));
}

}  // namespace pw::server
