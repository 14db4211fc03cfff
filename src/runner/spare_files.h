#ifndef PW_RUNNER_SPARE_FILES_H_
#define PW_RUNNER_SPARE_FILES_H_

// Empty files made ahead of need and handed out by rename, so that creating
// a file (an action's log) costs a directory entry, not an inode allocation,
// on the path from one action's result to the next action's spawn.
//
// Why: on ext4 without a journal, allocating an inode skips, one by one, the
// free inodes of its group whose inode-table block is still dirty after
// recent deletions (`recently_deleted`), which the engine's clean-ups make
// all the time: an action's log file cost 0.11 ms of the ~0.9 ms between one
// action's exit and the next one's spawn, a rename 0.02 ms (see
// docs/performance.md). The owner makes new spares where the time is not on
// anyone's path (an action's clean-up, after the next one has started):
// made by a thread of their own, they took the CPU from that path on two
// cores and bought nothing.
//
//   SpareFiles spares(data_dir + "/logs/.spare");
//   int fd = spares.Claim(log_path);   // open for appending, or -1:
//   if (fd < 0) fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
//   ...
//   spares.Replenish(2);               // later, off the critical path
//
// Thread-safe. Spares are made 0644 (less the umask, as open(2) would) in
// `dir`, which must be on the file system of the paths they are moved to.

#include <cstddef>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/thread_annotations.h"

namespace pw::runner {

class SpareFiles {
 public:
  static constexpr size_t kDefaultCount = 32;

  // Makes `dir` if missing and empties it of a previous process's spares
  // (files named spare-*). None is made before Replenish: a server that runs
  // nothing leaves nothing behind.
  explicit SpareFiles(std::string dir, size_t count = kDefaultCount);
  // Closes and removes the spares not handed out.
  ~SpareFiles();
  SpareFiles(const SpareFiles&) = delete;
  SpareFiles& operator=(const SpareFiles&) = delete;

  // Moves a spare to `path` (never over an existing file) and returns a
  // descriptor of it open for appending (O_WRONLY | O_APPEND | O_CLOEXEC),
  // which the caller closes. -1 when no spare is ready or the rename fails
  // (`path` exists, its directory does not...): then the caller opens `path`
  // itself, and gets the error it would have had.
  int Claim(const std::string& path) EXCLUDES(mu_);

  // Makes up to `n` spares, without going over the count, on the calling
  // thread. A failure (disk full...) stops it, said once in the log until
  // making one works again; Claim then keeps answering -1.
  void Replenish(size_t n) EXCLUDES(mu_);

  // Spares ready to be claimed now (tests).
  size_t ReadyForTest() const EXCLUDES(mu_);

 private:
  struct Spare {
    std::string path;
    int fd = -1;
  };

  // Up to `n` new spares; stops at the first error (`*failed`), said in the
  // log unless `quiet`.
  std::vector<Spare> Make(size_t n, bool quiet, bool* failed) const;

  const std::string dir_;
  const size_t count_;
  mutable Mutex mu_;
  std::vector<Spare> spares_ GUARDED_BY(mu_);
  size_t making_ GUARDED_BY(mu_) = 0;    // Being made by Replenish calls now.
  bool broken_ GUARDED_BY(mu_) = false;  // The last Replenish failed.
};

}  // namespace pw::runner

#endif  // PW_RUNNER_SPARE_FILES_H_
