#include "server/data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace pw::server {

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) close(fd_);
}

Result<DataDirLock> LockDataDir(const std::string& dir) {
  const std::string path = dir + "/server.lock";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Internal("cannot open " + path + ": " + std::strerror(errno));
  int rc;
  do {
    rc = flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    std::string holder;
    if (err == EWOULDBLOCK) {
      char buf[32] = {};
      const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
      for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) holder += buf[i];
    }
    close(fd);
    if (err != EWOULDBLOCK) return Internal("cannot lock " + path + ": " + std::strerror(err));
    return FailedPrecondition(
        "another server is using the data directory " + dir +
        (holder.empty() ? std::string() : " (pid " + holder + ")") +
        ": stop it first (a stopping server keeps it until its actions are ended), or "
        "give this one another --data-dir.");
  }
  // Who holds it, for the next one's message; the lock, not this, is the rule.
  const std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // Only the message loses its pid.
  }
  return DataDirLock(fd);
}

}  // namespace pw::server
