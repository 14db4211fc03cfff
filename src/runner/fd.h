#pragma once

// Fd: a file descriptor closed when it goes out of scope.
//
//   runner::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
//   if (fd.get() < 0) return ...;

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace pw::runner {

// strerror(errno), for messages after a failed system call.
inline std::string ErrnoText() { return std::strerror(errno); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace pw::runner
