#include "runner/mount_namespace.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/log.h"

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

Result<std::shared_ptr<ActionMountNamespace>> ActionMountNamespace::Enter() {
  std::shared_ptr<ActionMountNamespace> ns(new ActionMountNamespace());
  ns->home_fd_ = ::open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
  ns->cwd_fd_ = ::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (ns->home_fd_ < 0 || ns->cwd_fd_ < 0) {
    return Internal(std::string("the thread's mount namespace: ") + std::strerror(errno));
  }
  // CLONE_NEWNS implies CLONE_FS: this thread alone gets its own root and
  // working directory (a copy), which setns needs later.
  if (::unshare(CLONE_NEWNS) != 0) {
    return Internal(std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno));
  }
  ns->inside_ = true;
  ns->ns_fd_ = ::open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (ns->ns_fd_ < 0) {
    const int err = errno;
    ns->Leave();
    return Internal(std::string("the action's mount namespace: ") + std::strerror(err));
  }
  return ns;
}

Result<std::string> ActionMountNamespace::Pin(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return Internal("open " + dir + " in the action's mount namespace: " + std::strerror(errno));
  }
  pinned_.push_back(fd);
  return "/proc/self/fd/" + std::to_string(fd);
}

void ActionMountNamespace::Leave() {
  if (!inside_) return;
  if (::setns(home_fd_, CLONE_NEWNS) != 0 || ::fchdir(cwd_fd_) != 0) {
    PW_LOG(Error) << "cannot return to the server's mount namespace: " << std::strerror(errno);
    std::abort();
  }
  inside_ = false;
}

ActionMountNamespace::~ActionMountNamespace() {
  if (inside_) {
    PW_LOG(Error) << "an action's mount namespace was dropped by the thread inside it";
    std::abort();
  }
  for (int fd : pinned_) ::close(fd);
  for (int fd : {ns_fd_, home_fd_, cwd_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

}  // namespace pw::runner
