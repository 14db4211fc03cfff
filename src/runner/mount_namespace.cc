#include "runner/mount_namespace.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace pw::runner {

namespace {

// Threads of this process (/proc/self/task entries), or -1.
int ThreadCount() {
  std::error_code ec;
  int n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/task", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

}  // namespace

bool EnterOwnMountNamespace(std::string* why) {
  const int threads = ThreadCount();
  if (threads != 1) {
    *why = threads < 0 ? "cannot count this process's threads (no /proc?)"
                       : std::to_string(threads) + " threads already run";
    return false;
  }
  if (::unshare(CLONE_NEWNS) != 0) {
    *why = std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
    return false;
  }
  // Slave, not private: what the host mounts later still reaches the server.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    *why = std::string("make the mounts slaves: ") + std::strerror(errno);
    // The namespace is the process's own now, with the host's propagation:
    // no worse than before.
    return false;
  }
  return true;
}

bool MountIsShared(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  // The mount holding `path` is the last line whose mount point is a prefix
  // of it and whose device is the path's (mounts stack: the later line wins).
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  std::string best_point;
  bool best_shared = false;
  while (std::getline(in, line)) {
    // id parent major:minor root mount-point options [optional...] - ...
    std::istringstream fields(line);
    std::string id, parent, dev, root, point, options, field;
    fields >> id >> parent >> dev >> root >> point >> options;
    bool shared = false;
    while (fields >> field && field != "-") {
      if (field.rfind("shared:", 0) == 0) shared = true;
    }
    const auto colon = dev.find(':');
    if (colon == std::string::npos) continue;
    const unsigned dev_major = std::stoul(dev.substr(0, colon));
    const unsigned dev_minor = std::stoul(dev.substr(colon + 1));
    if (dev_major != major(st.st_dev) || dev_minor != minor(st.st_dev)) continue;
    const bool prefix = point == "/" || path == point || path.rfind(point + "/", 0) == 0;
    if (prefix && point.size() >= best_point.size()) {
      best_point = point;
      best_shared = shared;
    }
  }
  return best_shared;
}

}  // namespace pw::runner
