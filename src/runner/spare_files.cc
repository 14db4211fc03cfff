#include "runner/spare_files.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "common/ids.h"
#include "common/log.h"

namespace pw::runner {

namespace fs = std::filesystem;

namespace {
constexpr const char* kPrefix = "spare-";
}  // namespace

SpareFiles::SpareFiles(std::string dir, size_t count) : dir_(std::move(dir)), count_(count) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  // A previous process's spares (it crashed, or was killed).
  for (auto it = fs::directory_iterator(dir_, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    if (it->path().filename().string().starts_with(kPrefix)) ::unlink(it->path().c_str());
  }
}

SpareFiles::~SpareFiles() {
  MutexLock lock(mu_);
  for (const Spare& s : spares_) {
    ::close(s.fd);
    ::unlink(s.path.c_str());
  }
  spares_.clear();
}

int SpareFiles::Claim(const std::string& path) {
  Spare spare;
  {
    MutexLock lock(mu_);
    if (!spares_.empty()) {
      spare = std::move(spares_.back());
      spares_.pop_back();
    }
  }
  if (spare.fd < 0) return -1;
  // RENAME_NOREPLACE: whatever is at `path` stays (the caller's open says
  // what it is, or appends to it as it always would).
  if (::renameat2(AT_FDCWD, spare.path.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) {
    return spare.fd;
  }
  if (errno == EEXIST) {  // The spare is still good: kept for the next call.
    MutexLock lock(mu_);
    spares_.push_back(std::move(spare));
    return -1;
  }
  ::close(spare.fd);
  ::unlink(spare.path.c_str());
  return -1;
}

size_t SpareFiles::ReadyForTest() const {
  MutexLock lock(mu_);
  return spares_.size();
}

std::vector<SpareFiles::Spare> SpareFiles::Make(size_t n, bool quiet, bool* failed) const {
  std::vector<Spare> made;
  *failed = false;
  for (size_t i = 0; i < n; ++i) {
    Spare s;
    s.path = dir_ + "/" + kPrefix + RandomHex(16);
    s.fd = ::open(s.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (s.fd < 0) {
      *failed = true;
      if (!quiet) {
        PW_LOG(Warning) << "spare file " << s.path << ": " << std::strerror(errno)
                        << " (files are made when needed until one can be made ahead)";
      }
      break;
    }
    made.push_back(std::move(s));
  }
  return made;
}

void SpareFiles::Replenish(size_t n) {
  bool quiet = false;
  {
    MutexLock lock(mu_);
    if (spares_.size() + making_ >= count_) return;
    n = std::min(n, count_ - spares_.size() - making_);
    making_ += n;
    quiet = broken_;  // Said once until making one works again.
  }
  bool failed = false;
  std::vector<Spare> made = Make(n, quiet, &failed);
  MutexLock lock(mu_);
  making_ -= n;
  broken_ = failed;
  for (Spare& s : made) spares_.push_back(std::move(s));
}

}  // namespace pw::runner
