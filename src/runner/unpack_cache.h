#pragma once

// UnpackCache: each input artifact unpacked once by content hash, then handed
// to every action that takes it as a private copy, instead of unzipping the
// same zip again for every action of a stage.
//
//   UnpackCache cache(&artifacts, data_dir + "/unpacked");
//   PW_RETURN_IF_ERROR(cache.Materialize(revision, work_dir));
//
// An entry is root/<revision>: ArtifactStore::Extract into a temporary
// directory (same checks and limits), made read-only (files 0444/0555,
// directories 0555) and renamed into place. Materialize recreates its tree in
// the destination with files the action owns and may change (0644/0755, as
// Extract leaves them): each file is a reflink (FICLONE: copy-on-write, no
// data copied) where the file system has them (btrfs, XFS), else an in-kernel
// copy (copy_file_range). Never a hard link: an action (as root, or after
// chown) could write through it into the cache and every later action's
// input. So an action changing its inputs changes neither the cache nor any
// other action's inputs.
//
// Bounded: at most `max_entries` revisions and `max_bytes` of file contents;
// the least recently used entries no Materialize is copying from are removed
// first. The constructor removes whatever a previous process left in `root`.
//
// Thread-safe. Concurrent Materialize calls for a revision not yet cached
// unpack it once (the others wait for it). One process per root.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"

namespace pw::runner {

class ArtifactStore;

class UnpackCache {
 public:
  // One directory, file or link of an entry, listed once when it is unpacked
  // (parents before children), so a copy needs no directory walk.
  struct Node {
    enum Kind { kDir, kFile, kLink } kind = kFile;
    std::string path;  // Relative: "app/version.txt".
    bool executable = false;
    uint64_t size = 0;
    std::string link_target;
  };
  using Listing = std::vector<Node>;

  // `store` is not owned and must outlive the cache.
  UnpackCache(const ArtifactStore* store, std::string root_dir, size_t max_entries = 16,
              uint64_t max_bytes = uint64_t{1} << 30);
  UnpackCache(const UnpackCache&) = delete;
  UnpackCache& operator=(const UnpackCache&) = delete;

  // Fills `dest_dir` (created with parents; should be empty) with the files
  // and links of `revision`, as ArtifactStore::Extract(revision, dest_dir)
  // would. Errors: those of Extract (the first unpack of a revision; a
  // revision that failed is not cached, so the next call tries again), or
  // kInternal when a copy fails (then `dest_dir` may hold a partial tree).
  Status Materialize(const std::string& revision, const std::string& dest_dir);

  // Test hooks: revisions cached now, and how many unpacks have run.
  size_t EntriesForTest() const;
  int UnpacksForTest() const;
  const std::string& root_dir() const { return root_; }

 private:
  struct Entry {
    bool ready = false;     // Unpacked and in place.
    int users = 0;          // Materialize calls copying from it (or waiting for it).
    uint64_t bytes = 0;     // Sum of its file sizes.
    uint64_t last_use = 0;  // Tick of the last Materialize.
    std::shared_ptr<const Listing> listing;
  };

  // Unpacks `revision` to root/<revision>, read-only; returns its listing.
  Result<Listing> Unpack(const std::string& revision);
  // Creates `to` as a copy of cached file `from` (reflink, else in-kernel copy).
  Status CopyFile(const std::string& from, const std::string& to, const Node& node);
  // Drops unused entries, oldest first, while over a bound; returns the
  // directories they were renamed to, for the caller to remove unlocked.
  std::vector<std::string> EvictLocked() REQUIRES(mu_);

  const ArtifactStore* store_;
  const std::string root_;
  const size_t max_entries_;
  const uint64_t max_bytes_;
  mutable Mutex mu_;
  CondVar ready_;  // An entry became ready or was dropped.
  std::map<std::string, Entry> entries_ GUARDED_BY(mu_);
  uint64_t bytes_ GUARDED_BY(mu_) = 0;
  uint64_t tick_ GUARDED_BY(mu_) = 0;
  int unpacks_ GUARDED_BY(mu_) = 0;
  std::atomic<bool> reflinks_{true};  // Cleared once the file system refuses one.
};

}  // namespace pw::runner
