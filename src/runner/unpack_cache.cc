#include "runner/unpack_cache.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "runner/artifact_store.h"
#include "runner/fd.h"

namespace pw::runner {

namespace fs = std::filesystem;

using Node = UnpackCache::Node;

namespace {

std::string Errno() { return std::strerror(errno); }

// Lists the tree below `dir`, parents before children; with `read_only`,
// makes it read-only too (files keep their executable bit).
Status Seal(const std::string& dir, std::vector<Node>* listing, bool read_only) {
  std::error_code ec;
  std::vector<std::string> dirs = {dir};
  const size_t prefix = dir.size() + 1;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string path = it->path().string();
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return Internal("stat " + path + ": " + Errno());
    Node node;
    node.path = path.substr(prefix);
    if (S_ISDIR(st.st_mode)) {
      node.kind = Node::kDir;
      dirs.push_back(path);
    } else if (S_ISREG(st.st_mode)) {
      node.kind = Node::kFile;
      node.size = static_cast<uint64_t>(st.st_size);
      node.executable = (st.st_mode & 0100) != 0;
      if (read_only && ::chmod(path.c_str(), node.executable ? 0555 : 0444) != 0) {
        return Internal("chmod " + path + ": " + Errno());
      }
    } else if (S_ISLNK(st.st_mode)) {
      // Extract kept only links that resolve inside the tree.
      node.kind = Node::kLink;
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
      if (n < 0) return Internal("readlink " + path + ": " + Errno());
      target.resize(static_cast<size_t>(n));
      node.link_target = std::move(target);
    } else {
      continue;  // Extract makes nothing else.
    }
    listing->push_back(std::move(node));
  }
  if (ec) return Internal("listing " + dir + ": " + ec.message());
  if (!read_only) return Status::Ok();
  for (const std::string& d : dirs) {
    if (::chmod(d.c_str(), 0555) != 0) return Internal("chmod " + d + ": " + Errno());
  }
  return Status::Ok();
}

// Removes a sealed tree: its directories must be writable again first.
void RemoveSealed(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir, ec))) return;
  ::chmod(dir.c_str(), 0755);
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0755);
  }
  fs::remove_all(dir, ec);
}

// The options of an overlay with lower dir `lower` and its upper and work
// dirs in `scratch`. Paths with a character the option parser treats
// specially never get here (see OverlaySafe).
// `volatile_upper`: overlayfs skips every sync of the upper file system (Linux
// 5.10+). Without it, unmounting an overlay syncs the whole file system the
// data directory is on (ovl_sync_fs), and a commit's fdatasync waits behind
// that flush: 5-205 ms retry calls at p99. An upper dir is scratch, thrown
// away after its action and at every start, so nothing in it needs a sync.
std::string OverlayOptions(const std::string& lower, const std::string& scratch,
                           bool volatile_upper) {
  return "lowerdir=" + lower + ",upperdir=" + scratch + "/u,workdir=" + scratch + "/w" +
         (volatile_upper ? ",volatile" : "");
}

bool OverlaySafe(const std::string& path) {
  return path.find_first_of(",:\\= \t\n") == std::string::npos;
}

// Mountinfo escapes space, tab, newline and backslash as \ooo (octal).
std::string UnescapeMountPath(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto digit = [&](size_t j) { return j < s.size() && s[j] >= '0' && s[j] <= '7'; };
    const bool octal = s[i] == '\\' && digit(i + 1) && digit(i + 2) && digit(i + 3);
    if (octal) {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Unmounts every overlay of this mount namespace whose lower dir lies in
// `root` (an entry, or a probe's): what a process that died with actions
// running left behind.
void UnmountStale(const std::string& root) {
  std::ifstream in("/proc/self/mountinfo");
  const std::string marker = "lowerdir=" + root + "/";
  std::vector<std::string> stale;
  for (std::string line; std::getline(in, line);) {
    // id parent major:minor root mount-point options [optional...] - type source super-options
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream head(line.substr(0, dash));
    std::string id, parent, dev, mroot, point;
    head >> id >> parent >> dev >> mroot >> point;
    std::istringstream tail(line.substr(dash + 3));
    std::string type, source, options;
    tail >> type >> source >> options;
    if (type == "overlay" && options.find(marker) != std::string::npos) {
      stale.push_back(UnescapeMountPath(point));
    }
  }
  // Deepest first, in case one was mounted inside another's tree.
  std::sort(stale.rbegin(), stale.rend());
  for (const std::string& point : stale) ::umount2(point.c_str(), MNT_DETACH);
}

// Mounts and unmounts one overlay in a fresh directory below `root`: "" when
// that worked, else why not (`err`: the mount's errno, 0 for a mkdir error).
std::string ProbeMount(const std::string& root, bool volatile_upper, int* err) {
  const std::string dir = root + "/.ov-probe-" + RandomHex(8);
  std::error_code ec;
  for (const char* sub : {"/l", "/s/u", "/s/w", "/m"}) {
    if (!ec) fs::create_directories(dir + sub, ec);
  }
  std::string why;
  *err = 0;
  if (ec) {
    why = "mkdir " + dir + ": " + ec.message();
  } else if (::mount("overlay", (dir + "/m").c_str(), "overlay", MS_NODEV,
                     OverlayOptions(dir + "/l", dir + "/s", volatile_upper).c_str()) == 0) {
    ::umount2((dir + "/m").c_str(), MNT_DETACH);
  } else {
    *err = errno;
    why = "mount overlay: " + std::string(std::strerror(*err));
  }
  fs::remove_all(dir, ec);
  return why;
}

// "" when an overlay can be mounted with its lower, upper and work dirs in
// `root` (CAP_SYS_ADMIN, and a file system that takes an upper dir: not
// overlayfs itself, for one), else why not; `volatile_upper` says whether it
// can be `volatile` (a kernel before 5.10 answers EINVAL: then it is tried
// without). A failed mount is tried twice more, 50 ms apart, unless the
// privilege or overlayfs is missing: make check once saw a server's probe
// fail where a later probe in the same directory worked, and a server that
// copies every input is slower for its whole life.
std::string ProbeOverlay(const std::string& root, bool* volatile_upper) {
  *volatile_upper = false;
  if (!OverlaySafe(root)) {
    return "the data directory's path holds a character overlayfs options cannot carry";
  }
  std::string why;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    int err = 0;
    why = ProbeMount(root, true, &err);
    *volatile_upper = why.empty();
    if (err == EINVAL) why = ProbeMount(root, false, &err);
    if (why.empty() || err == EPERM || err == ENODEV) break;
  }
  return why;
}

}  // namespace

UnpackCache::UnpackCache(const ArtifactStore* store, std::string root_dir, size_t max_entries,
                         uint64_t max_bytes, Mode mode)
    : store_(store),
      root_(fs::absolute(root_dir).lexically_normal().string()),
      max_entries_(std::max<size_t>(1, max_entries)),
      max_bytes_(max_bytes) {
  std::error_code ec;
  if (fs::exists(root_, ec)) {
    UnmountStale(root_);
    for (const auto& e : fs::directory_iterator(root_, ec)) RemoveSealed(e.path().string());
  }
  fs::create_directories(root_, ec);
  if (mode == Mode::kAuto) {
    overlay_problem_ = ProbeOverlay(root_, &volatile_);
    overlays_ = overlay_problem_.empty();
  } else {
    overlay_problem_ = "copies were asked for";
  }
  if (overlays_) janitor_ = std::thread([this] { JanitorLoop(); });
}

UnpackCache::~UnpackCache() {
  if (janitor_.joinable()) {
    {
      MutexLock lock(mu_);
      stopping_ = true;
      janitor_cv_.NotifyAll();
    }
    janitor_.join();  // It finishes the Releases queued before it stops.
  }
  // A Premount that finished after the janitor stopped (the owner's threads
  // should be done by now).
  std::deque<Unmount> left;
  {
    MutexLock lock(mu_);
    RetirePremountsLocked();
    left.swap(unmounts_);
  }
  for (const Unmount& job : left) DoUnmount(job);
  {
    // The sandboxes are gone with the cache's owner: the held mount points
    // go with the graves.
    MutexLock lock(mu_);
    for (HeldDir& h : held_dirs_) graves_.push_back(Grave{std::move(h.dir), 0});
    held_dirs_.clear();
  }
  RemoveGraves(/*all=*/true);
  std::vector<std::string> spares;
  std::map<std::string, Mount> mounts;
  {
    MutexLock lock(mu_);
    mounts.swap(mounts_);
    spares.swap(spares_);
  }
  for (const std::string& spare : spares) ::rmdir(spare.c_str());
  std::error_code ec;
  for (const auto& [dest, m] : mounts) {
    ::umount2(dest.c_str(), MNT_DETACH);
    fs::remove_all(m.scratch, ec);
  }
}

void UnpackCache::JanitorLoop() {
  NameThisThread("pw-unmount");
  // A thread entry: nothing may escape it (docs/style.md 4.7).
  try {
    MutexLock lock(mu_);
    for (;;) {
      if (refill_ && !stopping_) {  // First: an action may be waiting for a mkdir.
        refill_ = false;
        const size_t want = fresh_spares_ > spares_.size() ? fresh_spares_ - spares_.size() : 0;
        janitor_busy_ = true;
        lock.Unlock();
        std::vector<std::string> made = MakeFreshSpares(want);
        lock.Lock();
        janitor_busy_ = false;
        for (std::string& dir : made) spares_.push_back(std::move(dir));
        janitor_cv_.NotifyAll();
        continue;
      }
      // Released mount points a sandbox's set-up no longer holds; the others
      // wait until `held_until` at most.
      double held_until = std::numeric_limits<double>::infinity();
      if (std::vector<std::string> free = TakeUnheldLocked(&held_until); !free.empty()) {
        janitor_busy_ = true;
        lock.Unlock();
        for (const std::string& dir : free) Recycle(dir);
        lock.Lock();
        janitor_busy_ = false;
        janitor_cv_.NotifyAll();
        continue;
      }
      if ((!unmounts_.empty() || !premounts_.empty()) && !stopping_ && flushes_ == 0 &&
          unmounts_.size() < max_deferred_) {
        double due = held_until;
        if (!unmounts_.empty()) {
          due = std::min({due, last_materialize_ + quiet_seconds_,
                          unmounts_.front().released + max_defer_seconds_});
        }
        if (!premounts_.empty()) due = std::min(due, last_materialize_ + premount_keep_seconds_);
        const double now = MonotonicSeconds();
        if (now < due) {
          janitor_cv_.WaitFor(mu_, std::chrono::duration<double>(due - now));
          continue;
        }
      }
      // Unused premounts go once no input was materialised for their keep
      // time (not when the backlog of unmounts is merely full or old).
      if (!premounts_.empty() &&
          (stopping_ || flushes_ > 0 ||
           MonotonicSeconds() >= last_materialize_ + premount_keep_seconds_)) {
        RetirePremountsLocked();
      }
      if (!unmounts_.empty()) {  // Due: all that wait go together.
        std::deque<Unmount> jobs;
        jobs.swap(unmounts_);
        janitor_busy_ = true;
        lock.Unlock();
        for (const Unmount& job : jobs) DoUnmount(job);
        lock.Lock();
        janitor_busy_ = false;
        janitor_cv_.NotifyAll();
        continue;
      }
      if (stopping_) return;
      const double now = MonotonicSeconds();
      if (!graves_.empty() && graves_.front().due <= now) {
        lock.Unlock();
        RemoveGraves(/*all=*/false);
        lock.Lock();
        continue;
      }
      const double due = std::min(held_until, graves_.empty() ? held_until : graves_.front().due);
      if (due == std::numeric_limits<double>::infinity()) {
        janitor_cv_.Wait(mu_);
      } else {
        janitor_cv_.WaitFor(mu_, std::chrono::duration<double>(due - now));
      }
    }
  } catch (const std::exception& e) {
    PW_LOG(Error) << "unpack cache thread: uncaught exception: " << e.what();
    std::abort();
  }
}

void UnpackCache::DoUnmount(const Unmount& job) {
  // Deepest first (map order reversed puts "a/b" before "a").
  std::error_code ec;
  std::vector<std::string> emptied;
  for (auto it = job.mounts.rbegin(); it != job.mounts.rend(); ++it) {
    ::umount2(it->first.c_str(), MNT_DETACH);
    fs::remove_all(it->second.scratch, ec);
    Unpin(it->second.revision);
    // A premount's first mount point: a sandbox set up while the overlay was
    // there holds a copy of it there.
    if (!it->second.origin.empty()) emptied.push_back(it->second.origin);
  }
  emptied.push_back(job.dest);
  {
    // Read after the unmounts: a hold taken later copied none of them.
    MutexLock lock(mu_);
    double until = 0;
    if (HeldLocked(hold_tick_, MonotonicSeconds(), &until)) {
      for (std::string& dir : emptied) held_dirs_.push_back(HeldDir{std::move(dir), hold_tick_});
      return;
    }
  }
  for (const std::string& dir : emptied) Recycle(dir);
}

UnpackCache::SandboxHold UnpackCache::HoldForSandbox() {
  auto ticket = std::make_unique<uint64_t>(0);
  {
    MutexLock lock(mu_);
    *ticket = ++hold_tick_;
    holds_.emplace(*ticket, MonotonicSeconds());
  }
  // The deleter runs once, when the last copy goes.
  return SandboxHold(ticket.release(), [this](const uint64_t* t) {
    {
      MutexLock lock(mu_);
      holds_.erase(*t);
      if (!held_dirs_.empty()) janitor_cv_.NotifyAll();
    }
    delete t;
  });
}

void UnpackCache::SandboxSpawning(const SandboxHold& hold) {
  if (!hold) return;
  MutexLock lock(mu_);
  if (auto it = holds_.find(*hold); it != holds_.end()) it->second = MonotonicSeconds();
}

bool UnpackCache::HeldLocked(uint64_t tick, double now, double* until) const {
  bool held = false;
  for (auto it = holds_.begin(); it != holds_.end() && it->first <= tick; ++it) {
    const double expires = it->second + max_sandbox_setup_seconds_;
    if (now < expires) {
      *until = held ? std::max(*until, expires) : expires;
      held = true;
    }
  }
  return held;
}

std::vector<std::string> UnpackCache::TakeUnheldLocked(double* held_until) {
  std::vector<std::string> free;
  if (held_dirs_.empty()) return free;
  const double now = MonotonicSeconds();
  std::vector<HeldDir> kept;
  for (HeldDir& h : held_dirs_) {
    double until = 0;
    if (HeldLocked(h.tick, now, &until)) {
      *held_until = std::min(*held_until, until);
      kept.push_back(std::move(h));
    } else {
      free.push_back(std::move(h.dir));
    }
  }
  held_dirs_.swap(kept);
  return free;
}

size_t UnpackCache::HeldForTest() const {
  MutexLock lock(mu_);
  return held_dirs_.size();
}

void UnpackCache::SetMaxSandboxSetupForTest(double seconds) {
  MutexLock lock(mu_);
  max_sandbox_setup_seconds_ = seconds;
  janitor_cv_.NotifyAll();
}

void UnpackCache::Recycle(const std::string& dir) {
  // A mount point now empty becomes a spare (rmdir would detach a sandbox's
  // copy of the mount; a rename moves it along): one mkdir and one rmdir
  // fewer for a later action.
  std::error_code ec;
  bool room = false;
  {
    MutexLock lock(mu_);
    room = spares_.size() < kMaxSpares;
  }
  if (room && fs::is_empty(dir, ec) && !ec) {
    const std::string spare = root_ + "/.spare-" + RandomHex(16);
    if (::rename(dir.c_str(), spare.c_str()) == 0) {
      MutexLock lock(mu_);
      spares_.push_back(spare);
      return;
    }
  }
  MutexLock lock(mu_);
  graves_.push_back(Grave{dir, MonotonicSeconds() + kGraveSeconds});
}

std::vector<std::string> UnpackCache::MakeFreshSpares(size_t n) const {
  std::vector<std::string> made;
  for (size_t i = 0; i < n; ++i) {
    std::string dir = root_ + "/.spare-" + RandomHex(16);
    if (::mkdir(dir.c_str(), 0777) != 0) {
      PW_LOG(Warning) << "spare run directory " << dir << ": " << std::strerror(errno);
      break;
    }
    made.push_back(std::move(dir));
  }
  return made;
}

Status UnpackCache::MakeDirectory(const std::string& dir) {
  std::string spare;
  {
    MutexLock lock(mu_);
    if (!spares_.empty()) {
      spare = std::move(spares_.back());
      spares_.pop_back();
    }
    // Running low: the janitor makes more, while this action runs.
    if (overlays_ && !refill_ && spares_.size() * 2 < fresh_spares_) {
      refill_ = true;
      janitor_cv_.NotifyAll();
    }
  }
  if (!spare.empty()) {
    // RENAME_NOREPLACE: whatever is at `dir` stays (then mkdir below says
    // what it is).
    if (::renameat2(AT_FDCWD, spare.c_str(), AT_FDCWD, dir.c_str(), RENAME_NOREPLACE) == 0) {
      return Status::Ok();
    }
    // Kept for the next call when the trouble was `dir` (it exists, its
    // parent does not...); not when it is on another file system.
    struct stat st {};
    if (errno != EXDEV && ::lstat(spare.c_str(), &st) == 0) {
      MutexLock lock(mu_);
      spares_.push_back(std::move(spare));
    } else {
      ::rmdir(spare.c_str());
    }
  }
  if (::mkdir(dir.c_str(), 0777) == 0) return Status::Ok();
  const int err = errno;
  std::error_code ec;
  if (err == EEXIST && fs::is_directory(fs::symlink_status(dir, ec))) return Status::Ok();
  return Internal("mkdir " + dir + ": " + std::strerror(err));
}

size_t UnpackCache::SparesForTest() const {
  MutexLock lock(mu_);
  return spares_.size();
}

void UnpackCache::SetFreshSparesForTest(size_t n) {
  MutexLock lock(mu_);
  fresh_spares_ = std::min(n, kMaxSpares);
}

Result<UnpackCache::Listing> UnpackCache::Unpack(const std::string& revision) {
  const std::string temp = root_ + "/.tmp-" + RandomHex(16);
  Listing listing;
  Status st = store_->Extract(revision, temp);
  if (st.ok()) st = Seal(temp, &listing, /*read_only=*/!overlays_);
  if (st.ok() && ::rename(temp.c_str(), (root_ + "/" + revision).c_str()) != 0) {
    st = Internal("rename into " + root_ + ": " + Errno());
  }
  if (!st.ok()) {
    RemoveSealed(temp);
    return st;
  }
  return listing;
}

Status UnpackCache::CopyFile(const std::string& from, const std::string& to, const Node& node) {
  Fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return Internal("open " + from + ": " + Errno());
  Fd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (out.get() < 0) return Internal("create " + to + ": " + Errno());
  // fchmod rather than open's mode, so the umask cannot drop the bits; the
  // action owns its copy and may change it, as after Extract.
  if (::fchmod(out.get(), node.executable ? 0755 : 0644) != 0) {
    return Internal("chmod " + to + ": " + Errno());
  }
  if (node.size == 0) return Status::Ok();
  if (reflinks_.load(std::memory_order_relaxed)) {
    if (::ioctl(out.get(), FICLONE, in.get()) == 0) return Status::Ok();
    if (errno == EOPNOTSUPP || errno == EXDEV || errno == EINVAL || errno == ENOTTY) {
      reflinks_ = false;  // ext4, tmpfs: copy from now on.
    }
  }
  uint64_t done = 0;
  while (done < node.size) {
    ssize_t n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, node.size - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)) {
      break;  // Not here: read and write below.
    }
    if (n < 0) return Internal("copy " + from + " to " + to + ": " + Errno());
    if (n == 0) return Internal("copy " + from + ": shorter than listed");
    done += static_cast<uint64_t>(n);
  }
  if (done == node.size) return Status::Ok();
  if (::lseek(in.get(), static_cast<off_t>(done), SEEK_SET) < 0) {
    return Internal("seek " + from + ": " + Errno());
  }
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Internal("read " + from + ": " + Errno());
    if (n == 0) return Status::Ok();
    for (ssize_t w = 0; w < n;) {
      ssize_t m = ::write(out.get(), buf + w, static_cast<size_t>(n - w));
      if (m < 0 && errno == EINTR) continue;
      if (m < 0) return Internal("write " + to + ": " + Errno());
      w += m;
    }
  }
}

Status UnpackCache::Materialize(const std::string& revision, const std::string& dest_dir,
                                bool private_copy, bool may_move_premount) {
  if (!IsArtifactRevision(revision)) {
    return InvalidArgument("malformed artifact revision '" + revision + "'", "");
  }
  if (overlays_ && !private_copy && may_move_premount) {
    std::optional<Premounted> pm;
    {
      MutexLock lock(mu_);
      if (auto it = premounts_.find(revision); it != premounts_.end()) {
        pm = std::move(it->second);
        premounts_.erase(it);
        last_materialize_ = MonotonicSeconds();
        entries_[revision].last_use = ++tick_;  // Ready: the premount keeps it cached.
      }
    }
    if (pm) {
      std::error_code ec;
      fs::create_directories(dest_dir, ec);
      if (::mount(pm->dir.c_str(), dest_dir.c_str(), nullptr, MS_MOVE, nullptr) == 0) {
        MutexLock lock(mu_);
        mounts_[dest_dir] = Mount{revision, pm->scratch, pm->dir};
        return Status::Ok();  // Its use of the entry is the mount's now.
      }
      const std::string why = Errno();
      PW_LOG(Warning) << "cannot move the input overlay " << pm->dir << " to " << dest_dir << ": "
                      << why << "; overlays are mounted when needed from now on";
      MutexLock lock(mu_);
      premounts_broken_ = true;
      premounts_.emplace(revision, std::move(*pm));  // Unmounted with the others.
      RetirePremountsLocked();
      janitor_cv_.NotifyAll();
      // On to a mount of its own.
    }
  }
  bool unpack = false;
  std::shared_ptr<const Listing> listing;
  {
    MutexLock lock(mu_);
    last_materialize_ = MonotonicSeconds();
    for (;;) {
      auto it = entries_.find(revision);
      if (it == entries_.end()) {  // Ours to unpack; others wait for it.
        Entry& e = entries_[revision];
        e.users = 1;
        e.last_use = ++tick_;
        unpack = true;
        break;
      }
      if (it->second.ready) {
        ++it->second.users;
        it->second.last_use = ++tick_;
        listing = it->second.listing;
        break;
      }
      // Another call is unpacking it: wait until it is ready, or dropped
      // after a failure (then this call tries itself).
      ready_.Wait(mu_);
    }
  }
  if (unpack) {
    Result<Listing> unpacked = Unpack(revision);
    MutexLock lock(mu_);
    ++unpacks_;
    if (!unpacked.ok()) {
      // Waiters see the entry gone and unpack themselves (and get the error).
      entries_.erase(revision);
      ready_.NotifyAll();
      return unpacked.status();
    }
    Entry& e = entries_[revision];
    e.listing = std::make_shared<const Listing>(std::move(*unpacked));
    for (const Node& n : *e.listing) e.bytes += n.size;
    e.ready = true;
    bytes_ += e.bytes;
    listing = e.listing;
    ready_.NotifyAll();
  }

  // The entry cannot be evicted while users > 0: an overlay keeps its use
  // until Release, a copy only while copying.
  if (overlays_ && !private_copy) {
    Result<std::string> scratch = MountOverlay(revision, dest_dir);
    if (scratch.ok()) {
      std::vector<std::string> gone;
      {
        MutexLock lock(mu_);
        mounts_[dest_dir] = Mount{revision, *scratch, ""};
        gone = EvictLocked();  // Others, if this one took the cache over a bound.
      }
      for (const std::string& dir : gone) RemoveSealed(dir);
      return Status::Ok();
    }
    // It worked at start (the probe): the mount table may be full, say. A
    // copy gives the action the same tree.
    PW_LOG(Warning) << scratch.status().message() << "; copying the input instead";
  }
  Status result = CopyTree(*listing, revision, dest_dir);
  Unpin(revision);
  return result;
}

void UnpackCache::Premount(const std::string& revision) {
  if (!overlays_) return;
  {
    MutexLock lock(mu_);
    if (stopping_ || premounts_broken_ || premounts_.count(revision) > 0 ||
        premounting_.count(revision) > 0 ||
        premounts_.size() + premounting_.size() >= kMaxPremounts) {
      return;
    }
    auto it = entries_.find(revision);
    if (it == entries_.end() || !it->second.ready) return;  // Evicted meanwhile.
    ++it->second.users;
    premounting_.insert(revision);
  }
  // A spare when there is one (a rename, not an inode: see MakeDirectory).
  const std::string dir = root_ + "/.pm-" + RandomHex(16);
  const Status made = MakeDirectory(dir);
  Result<std::string> scratch = made.ok() ? MountOverlay(revision, dir) : Result<std::string>(made);
  bool keep = false;
  {
    MutexLock lock(mu_);
    premounting_.erase(revision);
    if (scratch.ok()) {
      premounts_.emplace(revision, Premounted{dir, *scratch});
      keep = true;
      if (stopping_ || premounts_broken_) RetirePremountsLocked();
      janitor_cv_.NotifyAll();  // It unmounts the unused ones after their keep time.
    }
  }
  if (!keep) {
    Unpin(revision);
    std::error_code ec;
    if (fs::exists(dir, ec)) Recycle(dir);  // No rmdir: it may be a reused mount point.
  }
}

void UnpackCache::RetirePremountsLocked() {
  for (auto& [revision, pm] : premounts_) {
    Unmount job{pm.dir, MonotonicSeconds(), {}};
    job.mounts.emplace_back(pm.dir, Mount{revision, std::move(pm.scratch), ""});
    unmounts_.push_back(std::move(job));
  }
  premounts_.clear();
}

size_t UnpackCache::PremountsForTest() const {
  MutexLock lock(mu_);
  return premounts_.size();
}

Result<std::string> UnpackCache::MountOverlay(const std::string& revision,
                                              const std::string& dest_dir) {
  // The upper and work dirs go in the destination, under the mount: one
  // directory fewer made (and later removed) among the data directory's
  // top-level ones (work/, unpacked/), each of which costs the allocator's
  // search of every block group on ext4 without a journal (see
  // SpreadNewDirectories). make bench's sequential action: 1.54 ms against
  // 1.65 when they were root/.ov-* (means of 6 pairs taking turns).
  const std::string scratch = dest_dir + "/" + kScratchName;
  std::error_code ec;
  fs::create_directories(dest_dir, ec);
  if (ec) return Internal("mkdir " + dest_dir + ": " + ec.message());
  if (::mkdir(scratch.c_str(), 0700) != 0 || ::mkdir((scratch + "/u").c_str(), 0755) != 0 ||
      ::mkdir((scratch + "/w").c_str(), 0700) != 0) {
    Status st = Internal("mkdir " + scratch + ": " + Errno());
    fs::remove_all(scratch, ec);
    return st;
  }
  // nodev: the upper dir is the action's; suid binaries stay as Extract left
  // them (it makes none).
  const std::string options = OverlayOptions(root_ + "/" + revision, scratch, volatile_);
  int rc = 0;
  if (fail_mounts_.load() > 0 && fail_mounts_.fetch_sub(1) > 0) {
    errno = EMFILE;
    rc = -1;
  } else {
    rc = ::mount("overlay", dest_dir.c_str(), "overlay", MS_NODEV | MS_NOSUID, options.c_str());
  }
  if (rc != 0) {
    Status st = Internal("mount the input overlay on " + dest_dir + ": " + Errno());
    fs::remove_all(scratch, ec);
    return st;
  }
  return scratch;
}

Status UnpackCache::CopyTree(const Listing& listing, const std::string& revision,
                             const std::string& dest_dir) {
  const std::string src = root_ + "/" + revision + "/";
  const std::string dest = dest_dir + "/";
  std::error_code ec;
  fs::create_directories(dest_dir, ec);
  if (ec) return Internal("mkdir " + dest_dir + ": " + ec.message());
  for (const Node& node : listing) {
    const std::string to = dest + node.path;
    switch (node.kind) {
      case Node::kDir:
        if (::mkdir(to.c_str(), 0755) != 0 && errno != EEXIST) {
          return Internal("mkdir " + to + ": " + Errno());
        }
        break;
      case Node::kLink:
        if (::symlink(node.link_target.c_str(), to.c_str()) != 0) {
          return Internal("symlink " + to + ": " + Errno());
        }
        break;
      case Node::kFile:
        PW_RETURN_IF_ERROR(CopyFile(src + node.path, to, node));
        break;
    }
  }
  return Status::Ok();
}

void UnpackCache::Unpin(const std::string& revision) {
  std::vector<std::string> gone;
  {
    MutexLock lock(mu_);
    auto it = entries_.find(revision);
    if (it != entries_.end()) {
      --it->second.users;
      it->second.last_use = ++tick_;
    }
    gone = EvictLocked();
  }
  for (const std::string& dir : gone) RemoveSealed(dir);
}

bool UnpackCache::Release(const std::string& dest_dir) {
  Unmount job{dest_dir, MonotonicSeconds(), {}};
  MutexLock lock(mu_);
  if (auto it = mounts_.find(dest_dir); it != mounts_.end()) {
    job.mounts.emplace_back(it->first, std::move(it->second));
    mounts_.erase(it);
  }
  // The paths below it are adjacent in the map: they all start with "dest/".
  const std::string below = dest_dir + "/";
  for (auto it = mounts_.lower_bound(below);
       it != mounts_.end() && it->first.compare(0, below.size(), below) == 0;) {
    job.mounts.emplace_back(it->first, std::move(it->second));
    it = mounts_.erase(it);
  }
  if (job.mounts.empty()) return false;
  unmounts_.push_back(std::move(job));
  // A janitor with work queued already waits with a deadline; wake it only to
  // start one, or when the backlog is full.
  if (unmounts_.size() == 1 || unmounts_.size() >= max_deferred_) janitor_cv_.NotifyAll();
  return true;
}

void UnpackCache::UnmountAtOnce() {
  MutexLock lock(mu_);
  max_deferred_ = 1;
  janitor_cv_.NotifyAll();
}

void UnpackCache::SetDeferralForTest(double quiet_seconds, size_t max_deferred,
                                     double max_defer_seconds) {
  MutexLock lock(mu_);
  quiet_seconds_ = quiet_seconds;
  max_deferred_ = max_deferred;
  max_defer_seconds_ = max_defer_seconds;
  janitor_cv_.NotifyAll();
}

void UnpackCache::SetPremountKeepForTest(double seconds) {
  MutexLock lock(mu_);
  premount_keep_seconds_ = seconds;
  janitor_cv_.NotifyAll();
}

void UnpackCache::WaitReleasedForTest() {
  MutexLock lock(mu_);
  ++flushes_;
  janitor_cv_.NotifyAll();
  while (!unmounts_.empty() || janitor_busy_) janitor_cv_.Wait(mu_);
  --flushes_;
}

void UnpackCache::RemoveGraves(bool all) {
  std::vector<std::string> due;
  {
    MutexLock lock(mu_);
    const double now = MonotonicSeconds();
    size_t n = 0;
    while (n < graves_.size() && (all || graves_[n].due <= now)) due.push_back(graves_[n++].dir);
    graves_.erase(graves_.begin(), graves_.begin() + static_cast<std::ptrdiff_t>(n));
  }
  std::error_code ec;
  for (const std::string& dir : due) fs::remove_all(dir, ec);
}

size_t UnpackCache::GravesForTest() const {
  MutexLock lock(mu_);
  return graves_.size();
}

void UnpackCache::RemoveGravesForTest() { RemoveGraves(/*all=*/true); }

size_t UnpackCache::MountsForTest() const {
  MutexLock lock(mu_);
  return mounts_.size();
}

std::vector<std::string> UnpackCache::EvictLocked() {
  std::vector<std::string> gone;
  while (entries_.size() > max_entries_ || bytes_ > max_bytes_) {
    auto victim = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.users > 0 || !it->second.ready) continue;
      if (victim == entries_.end() || it->second.last_use < victim->second.last_use) victim = it;
    }
    if (victim == entries_.end()) break;  // Everything is in use: over the bound for now.
    // Renamed away under the lock, removed by the caller after it: a new
    // Materialize of the same revision unpacks into a fresh directory.
    const std::string dir = root_ + "/.gone-" + RandomHex(16);
    if (::rename((root_ + "/" + victim->first).c_str(), dir.c_str()) == 0) gone.push_back(dir);
    bytes_ -= victim->second.bytes;
    entries_.erase(victim);
  }
  return gone;
}

size_t UnpackCache::EntriesForTest() const {
  MutexLock lock(mu_);
  size_t n = 0;
  for (const auto& [rev, e] : entries_) n += e.ready ? 1 : 0;
  return n;
}

int UnpackCache::UnpacksForTest() const {
  MutexLock lock(mu_);
  return unpacks_;
}

}  // namespace pw::runner
