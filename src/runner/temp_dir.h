#pragma once

// ScopedTempDir: a fresh private directory that is removed, recursively, when
// the object is destroyed (ninja's ScopedTempDir). For tests and for the
// engine's scratch space.
//
//   PW_ASSIGN_OR_RETURN(ScopedTempDir tmp, ScopedTempDir::Create("export"));
//   Use(tmp.path() + "/file");
//
// Thread-compatible: one owner; distinct objects may be used from any threads.

#include <string>
#include <string_view>

#include "common/status.h"

namespace pw::runner {

class ScopedTempDir {
 public:
  // Creates "<$TMPDIR or /tmp>/<prefix>-XXXXXX" with mode 0700 (mkdtemp).
  // Fails with kInternal if the directory cannot be created; `prefix` must not
  // contain '/' (kInvalidArgument otherwise).
  static Result<ScopedTempDir> Create(std::string_view prefix = "pw");

  ScopedTempDir(ScopedTempDir&& other) noexcept;
  ScopedTempDir& operator=(ScopedTempDir&& other) noexcept;
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  // Removes the directory and everything below it; errors are ignored.
  ~ScopedTempDir();

  // Absolute path without a trailing slash; empty after being moved from.
  const std::string& path() const { return path_; }

 private:
  explicit ScopedTempDir(std::string path) : path_(std::move(path)) {}
  void Remove();

  std::string path_;
};

// Asks the file system to spread the directories later created directly in
// `dir` over its block groups, as it does for those made at its root (ext4's
// "top of directory hierarchies" flag, `chattr +T`, read by the Orlov
// allocator). For the data directory's work/ and unpacked/: each action makes
// and later removes a handful of directories and overlay scratch there. On
// ext4 without a journal the inode allocator skips, one buffer-cache lookup
// each, every free inode of the group deleted in the last 1-6 minutes, so with
// all of them in one group an action's mkdir cost grew with the actions of
// the last minutes (56% of the server's CPU in `perf` during make bench's
// sequential shape). Spread, each tree starts in a group with few
// directories; the caller sets it only where that scan exists
// (OnExt4WithoutJournal). Returns false, with `why` set, where the file
// system has no such flag (tmpfs, xfs, btrfs...) or it cannot be set.
bool SpreadNewDirectories(const std::string& dir, std::string* why);

// Whether `dir` lies on an ext4 file system without a journal, the only one
// where SpreadNewDirectories pays: there every new inode skips the group's
// recently deleted ones. With a journal there is no such scan, and spreading
// would only add the allocator's search over every block group to each
// mkdir. Read from /sys/fs/ext4/<device>/journal_task ("<none>"); false when
// that cannot be read (other file systems, older kernels).
bool OnExt4WithoutJournal(const std::string& dir);

// Whether `dir` carries that flag (tests; false where there is none).
bool SpreadsNewDirectories(const std::string& dir);

}  // namespace pw::runner
