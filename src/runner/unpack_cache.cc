#include "runner/unpack_cache.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "common/ids.h"
#include "runner/artifact_store.h"
#include "runner/fd.h"

namespace pw::runner {

namespace fs = std::filesystem;

using Node = UnpackCache::Node;

namespace {

std::string Errno() { return std::strerror(errno); }

// Makes the tree below `dir` read-only (files keep their executable bit) and
// lists it, parents before children.
Status Seal(const std::string& dir, std::vector<Node>* listing) {
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
      if (::chmod(path.c_str(), node.executable ? 0555 : 0444) != 0) {
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

}  // namespace

UnpackCache::UnpackCache(const ArtifactStore* store, std::string root_dir, size_t max_entries,
                         uint64_t max_bytes)
    : store_(store),
      root_(std::move(root_dir)),
      max_entries_(std::max<size_t>(1, max_entries)),
      max_bytes_(max_bytes) {
  std::error_code ec;
  if (fs::exists(root_, ec)) {
    for (const auto& e : fs::directory_iterator(root_, ec)) RemoveSealed(e.path().string());
  }
  fs::create_directories(root_, ec);
}

Result<UnpackCache::Listing> UnpackCache::Unpack(const std::string& revision) {
  const std::string temp = root_ + "/.tmp-" + RandomHex(16);
  Listing listing;
  Status st = store_->Extract(revision, temp);
  if (st.ok()) st = Seal(temp, &listing);
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

Status UnpackCache::Materialize(const std::string& revision, const std::string& dest_dir) {
  if (!IsArtifactRevision(revision)) {
    return InvalidArgument("malformed artifact revision '" + revision + "'", "");
  }
  bool unpack = false;
  std::shared_ptr<const Listing> listing;
  {
    MutexLock lock(mu_);
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

  // Copy the tree; the entry cannot be evicted while users > 0.
  const std::string src = root_ + "/" + revision + "/";
  const std::string dest = dest_dir + "/";
  Status result = Status::Ok();
  std::error_code ec;
  fs::create_directories(dest_dir, ec);
  if (ec) result = Internal("mkdir " + dest_dir + ": " + ec.message());
  for (size_t i = 0; result.ok() && i < listing->size(); ++i) {
    const Node& node = (*listing)[i];
    const std::string to = dest + node.path;
    switch (node.kind) {
      case Node::kDir:
        if (::mkdir(to.c_str(), 0755) != 0 && errno != EEXIST) {
          result = Internal("mkdir " + to + ": " + Errno());
        }
        break;
      case Node::kLink:
        if (::symlink(node.link_target.c_str(), to.c_str()) != 0) {
          result = Internal("symlink " + to + ": " + Errno());
        }
        break;
      case Node::kFile:
        result = CopyFile(src + node.path, to, node);
        break;
    }
  }

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
  return result;
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
