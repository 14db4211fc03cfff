#pragma once

// UnpackCache: each input artifact unpacked once by content hash, then handed
// to every action that takes it as a private tree, instead of unzipping the
// same zip again for every action of a stage.
//
//   UnpackCache cache(&artifacts, data_dir + "/unpacked");
//   PW_RETURN_IF_ERROR(cache.Materialize(revision, work_dir));
//   ... run the action in work_dir ...
//   if (!cache.Release(work_dir)) fs::remove_all(work_dir);
//
// An entry is root/<revision>: ArtifactStore::Extract into a temporary
// directory (same checks and limits), renamed into place. Materialize gives
// the destination the entry's tree as files the action owns and may change
// (0644/0755, as Extract leaves them), in one of two ways:
// - Overlay (when the process may mount overlayfs here, i.e. it has
//   CAP_SYS_ADMIN and the file system takes an upper dir): an overlay mount
//   on the destination, the entry as its read-only lower dir and a private
//   upper dir in the destination itself (dest/.pw-overlay, which the mount
//   then covers: the action cannot see it). O(1) per action whatever the
//   artifact's size:
//   nothing is copied until the action writes, and only what it writes.
//   overlayfs never writes to a lower dir, so the action changes neither the
//   cache nor another action's input. The entry is pinned (not evicted) until
//   Release unmounts it.
// - Copy (otherwise, or when Materialize is asked for a private copy: an
//   action running as another user must own its files): the tree recreated
//   file by file, each a reflink (FICLONE) where the file system has them,
//   else an in-kernel copy (copy_file_range). Never a hard link: an action
//   (as root, or after chown) could write through it into the cache. In copy
//   mode entries are sealed read-only (files 0444/0555, directories 0555).
//
// Bounded: at most `max_entries` revisions and `max_bytes` of file contents;
// the least recently used entries no Materialize is using are removed first.
// The constructor unmounts the overlays and removes whatever a previous
// process left in `root` (after a crash); the destructor unmounts what is
// still mounted.
//
// Thread-safe. Concurrent Materialize calls for a revision not yet cached
// unpack it once (the others wait for it). One process per root.

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
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

  enum class Mode {
    kAuto,  // Overlays when a probe mount at construction succeeds, else copies.
    kCopy,  // Always copies.
  };

  // `store` is not owned and must outlive the cache.
  UnpackCache(const ArtifactStore* store, std::string root_dir, size_t max_entries = 16,
              uint64_t max_bytes = uint64_t{1} << 30, Mode mode = Mode::kAuto);
  ~UnpackCache();
  UnpackCache(const UnpackCache&) = delete;
  UnpackCache& operator=(const UnpackCache&) = delete;

  // True when Materialize mounts overlays (see above); else why not (for the log).
  bool overlays() const { return overlays_; }
  // True when those overlays are mounted `volatile`: their unmount syncs
  // nothing (Linux 5.10+; see OverlayOptions in unpack_cache.cc).
  bool volatile_overlays() const { return volatile_; }
  const std::string& overlay_problem() const { return overlay_problem_; }

  // Fills `dest_dir` (created with parents; should be empty) with the files
  // and links of `revision`, as ArtifactStore::Extract(revision, dest_dir)
  // would: an overlay mount, or with `private_copy` (or in copy mode, or when
  // the mount fails) a copy.
  // Errors: those of Extract (the first unpack of a revision; a revision that
  // failed is not cached, so the next call tries again), or kInternal when a
  // copy fails (then `dest_dir` may hold a partial tree; remove it).
  //
  // With `may_move_premount` (the caller is in the cache's own mount
  // namespace, where Premount mounts), an overlay Premount made ahead for
  // `revision` is moved onto `dest_dir` (MS_MOVE, ~4 µs) instead of a mount
  // (~170 µs with its directories) when one waits.
  Status Materialize(const std::string& revision, const std::string& dest_dir,
                     bool private_copy = false, bool may_move_premount = false);

  // Overlay mode: mounts an overlay of `revision` (already cached, else
  // nothing) on a directory of the cache's own (root/.pm-*), for the next
  // Materialize of it to move into place: the mount's cost leaves the path
  // from an action's start to its spawn. Call where a core is idle (after an
  // action's spawn, while it runs), in the cache's mount namespace. At most
  // one waits per revision and kMaxPremounts in all; each keeps its
  // revision cached. Unused ones are unmounted with the released overlays,
  // once no Materialize came for kPremountKeepSeconds (an action longer than
  // that is followed by a mount of its own). A premount's upper dir is
  // new and was never any process's, so moving it to an action gives that
  // action what a fresh mount would. If a move ever fails (a shared parent
  // mount refuses MS_MOVE), premounts stop, said once in the log.
  void Premount(const std::string& revision);
  static constexpr size_t kMaxPremounts = 4;
  // Not kQuietSeconds: a premount is made while an action runs, for the
  // action after it, so it must outlive the actions worth it (with 50 ms
  // every action longer than that found its premount gone and mounted its
  // own). Four mounts and their pinned entries at most, that long.
  static constexpr double kPremountKeepSeconds = 10;
  size_t PremountsForTest() const;

  // Unmounts the overlay Materialize put on `dest_dir` (lazily: a process
  // still inside keeps its view) and removes its upper dir; every mount on a
  // path below `dest_dir` too. Returns true when there was any: then the
  // cache's own thread does that work (an overlay's umount waits for an RCU
  // grace period, ~1 ms, which must not hold up the caller: the engine's
  // work queue), once actions stop starting (kQuietSeconds below), and later
  // (kGraveSeconds) removes the whole `dest_dir` tree;
  // the caller must not. Why later: a sandbox (bwrap) started while the
  // overlay was mounted holds a copy of it in its own mount namespace, and
  // removing the directory it is mounted on detaches that copy, which fails
  // the sandbox's set-up if it is still running (bwrap: "Unable to apply
  // mount flags: remount ...: No such file or directory"). Renaming it does
  // not detach the copy (it moves with it): so an empty `dest_dir` is
  // instead kept as a spare for MakeDirectory, up to kMaxSpares, at once
  // unless a sandbox may still be setting itself up with a copy of it (then
  // when that is over: HoldForSandbox). False (copies, unknown paths): the
  // caller removes `dest_dir` itself.
  bool Release(const std::string& dest_dir);

  // A sandbox (bubblewrap) copies every mount of the namespace it starts in
  // (or of the one that namespace was copied from: ActionMountNamespace),
  // reads the mount table once, then remounts each copy read-only by its
  // path. A released mount point that is renamed (a spare, see Release) or
  // removed (a grave) meanwhile is gone from that path, and the sandbox
  // fails ("Can't bind mount /oldroot/ on /newroot/: Unable to apply mount
  // flags: remount /newroot/<data>/work/<run>: No such file or directory";
  // seen in e2e.test_codebuild). So whoever starts a sandbox holds one of
  // these from before its namespace is copied until its set-up is over,
  // i.e. until its process has exited (the first moment this server can
  // tell for sure) or its spawn failed; a mount point unmounted while a hold
  // taken before stays where it is until that hold is dropped, or until
  // kMaxSandboxSetupSeconds after the hold's SandboxSpawning (no set-up
  // lasts that long, and the mount points released during a build of hours
  // must not wait for it). Holds taken after the unmount do not matter:
  // their copies lack the mount. The hold must not outlive the cache.
  using SandboxHold = std::shared_ptr<const uint64_t>;  // Its ticket.
  SandboxHold HoldForSandbox();
  // Call right before the sandbox is spawned: its set-up starts then, and
  // kMaxSandboxSetupSeconds counts from then (not from the hold, which may
  // have waited for a large input to be unpacked).
  void SandboxSpawning(const SandboxHold& hold);
  static constexpr double kMaxSandboxSetupSeconds = 30;
  // Released mount points kept in place for a hold.
  size_t HeldForTest() const;
  // Replaces kMaxSandboxSetupSeconds (tests).
  void SetMaxSandboxSetupForTest(double seconds);

  // The directory an overlay's upper and work dirs are made in, inside its
  // destination (hidden by the mount on it).
  static constexpr const char* kScratchName = ".pw-overlay";
  // Makes directory `dir` (its parent must exist) as mkdir(dir, 0777) would
  // (less the umask, as std::filesystem::create_directory):
  // by renaming a spare, i.e. a released mount point (see Release), when one
  // is at hand, else with mkdir. A rename allocates no inode, and the mount
  // point it reuses was never any process's working directory (an action's
  // was the overlay on it), so no process left behind by its action can
  // reach the new one. On ext4 without a journal a top-level mkdir searches
  // every block group (see SpreadNewDirectories) and its later removal waits
  // for the disk's discard. A directory already at `dir` is fine (as for
  // create_directory); errors: kInternal with mkdir's errno.
  Status MakeDirectory(const std::string& dir);
  // Spares waiting: at most kMaxSpares, beyond that released mount points
  // are removed (30 s later, see Release).
  static constexpr size_t kMaxSpares = 64;
  // Overlay mode: once MakeDirectory leaves fewer than half of
  // kFreshSpares waiting (mount points come back only when released
  // overlays are unmounted, i.e. once actions stop starting, or for
  // actions without inputs never), the janitor makes new empty ones up to
  // kFreshSpares, off the actions' path: a directory nobody ever entered is
  // as safe to hand out as a released mount point.
  static constexpr size_t kFreshSpares = 16;
  size_t SparesForTest() const;
  // Replaces kFreshSpares (tests; 0: no fresh spares).
  void SetFreshSparesForTest(size_t n);

  // How long released mount points are kept before they are removed.
  static constexpr double kGraveSeconds = 30;
  // Released overlays wait while actions keep starting: the janitor unmounts
  // them once no Materialize came for kQuietSeconds, when
  // kMaxDeferredUnmounts wait, or when the oldest has waited kMaxDeferSeconds.
  // An unmount's RCU grace period (IPIs to every CPU) and the removal of its
  // upper dir slow down the processes running meanwhile; during a burst of
  // actions that is the next action.
  static constexpr double kQuietSeconds = 0.05;
  static constexpr size_t kMaxDeferredUnmounts = 64;
  static constexpr double kMaxDeferSeconds = 5;
  // Unmounts each released overlay as soon as it is released, not in the
  // batches above: for a server whose actions run in bubblewrap. Each sandbox
  // copies every mount of the server's namespace and remounts it read-only,
  // parsing the mount table once per bind, so the released overlays waiting
  // for their batch made every sandboxed spawn slower (make bench, sandboxed
  // sequential action: 12.00/10.55/12.25 ms batched against 10.05/9.70/10.95
  // at once). Only where an unmount cannot reach a sandbox that is still
  // setting itself up, i.e. the overlays are private mounts
  // (EnterOwnMountNamespace): on a shared mount it removes the sandbox's
  // copy under its feet.
  void UnmountAtOnce();
  // Replaces the three bounds above (tests).
  void SetDeferralForTest(double quiet_seconds, size_t max_deferred, double max_defer_seconds);
  // Replaces kPremountKeepSeconds (tests).
  void SetPremountKeepForTest(double seconds);
  // Waits until every Release so far is unmounted, without the quiet wait (tests).
  void WaitReleasedForTest();
  // Released trees waiting to be removed.
  size_t GravesForTest() const;
  // Removes the waiting trees now (tests; the destructor does it too).
  void RemoveGravesForTest();

  // Overlays mounted now.
  size_t MountsForTest() const;
  // The next `n` overlay mounts fail as mount(2) does when the mount table
  // is full (EMFILE), after the probe said overlays work (tests of the
  // fallback to a copy).
  void FailNextMountsForTest(int n) { fail_mounts_ = n; }

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
  struct Mount {
    std::string revision;
    std::string scratch;  // dest/.pw-overlay: the upper and work dirs.
    // A premount moved to dest: the directory it was mounted on first
    // (root/.pm-*, holding `scratch`), recycled as the mount point is.
    std::string origin;
  };
  struct Premounted {
    std::string dir;      // root/.pm-*: the overlay is mounted on it.
    std::string scratch;  // dir/.pw-overlay.
  };
  struct Grave {
    std::string dir;
    double due = 0;  // Monotonic seconds.
  };
  struct HeldDir {  // A released mount point a sandbox's set-up may still remount.
    std::string dir;
    uint64_t tick = 0;  // hold_tick_ once its overlay was unmounted.
  };
  struct Unmount {  // One Release's work.
    std::string dest;
    double released = 0;                                // Monotonic seconds.
    std::vector<std::pair<std::string, Mount>> mounts;  // By destination.
  };

  // Unpacks `revision` to root/<revision> (read-only in copy mode); returns
  // its listing.
  Result<Listing> Unpack(const std::string& revision);
  // Mounts the overlay of entry `revision` on `dest_dir`; returns the scratch dir.
  Result<std::string> MountOverlay(const std::string& revision, const std::string& dest_dir);
  // Copies the entry's tree into `dest_dir`.
  Status CopyTree(const Listing& listing, const std::string& revision, const std::string& dest_dir);
  // Drops one use of `revision`, then evicts what is over the bounds.
  void Unpin(const std::string& revision);
  // Removes the graves that are due (all with `all`).
  void RemoveGraves(bool all);
  // Unmounts, removes the upper dirs, unpins; then keeps the mount point as
  // a spare (an empty one while there are fewer than kMaxSpares) or digs its
  // grave.
  void DoUnmount(const Unmount& job);
  // Keeps `dir` (an emptied mount point) as a spare when there is room, else
  // digs its grave (see Release: no rmdir).
  void Recycle(const std::string& dir);
  // Whether a hold taken no later than `tick` (a value of hold_tick_) still
  // counts (see HoldForSandbox); if so, when none of them will any more in
  // `*until`.
  bool HeldLocked(uint64_t tick, double now, double* until) const REQUIRES(mu_);
  // Takes the held mount points no hold keeps any more, for Recycle; lowers
  // `*held_until` to when the next of the others is free at the latest.
  std::vector<std::string> TakeUnheldLocked(double* held_until) REQUIRES(mu_);
  // Turns the waiting premounts into unmount jobs.
  void RetirePremountsLocked() REQUIRES(mu_);
  // The janitor thread (overlay mode only): fresh spares, Release's work,
  // then due graves.
  void JanitorLoop();
  // Makes `n` empty directories root/.spare-* (as MakeDirectory's mkdir);
  // returns those made.
  std::vector<std::string> MakeFreshSpares(size_t n) const;
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
  std::map<std::string, Mount> mounts_ GUARDED_BY(mu_);          // By destination.
  std::map<std::string, Premounted> premounts_ GUARDED_BY(mu_);  // By revision: one each.
  std::set<std::string> premounting_ GUARDED_BY(mu_);            // Revisions Premount is mounting.
  bool premounts_broken_ GUARDED_BY(mu_) = false;    // A move failed: no more premounts.
  std::vector<Grave> graves_ GUARDED_BY(mu_);        // Oldest first.
  std::vector<std::string> spares_ GUARDED_BY(mu_);  // root/.spare-*: empty directories.
  size_t fresh_spares_ GUARDED_BY(mu_) = kFreshSpares;
  bool refill_ GUARDED_BY(mu_) = false;  // MakeDirectory asked the janitor for fresh spares.
  std::deque<Unmount> unmounts_ GUARDED_BY(mu_);      // Released, not yet unmounted.
  uint64_t hold_tick_ GUARDED_BY(mu_) = 0;            // The last HoldForSandbox's ticket.
  std::map<uint64_t, double> holds_ GUARDED_BY(mu_);  // Ticket -> monotonic seconds spawned.
  std::vector<HeldDir> held_dirs_ GUARDED_BY(mu_);
  double max_sandbox_setup_seconds_ GUARDED_BY(mu_) = kMaxSandboxSetupSeconds;
  bool janitor_busy_ GUARDED_BY(mu_) = false;    // Doing a job outside the lock.
  double last_materialize_ GUARDED_BY(mu_) = 0;  // Monotonic seconds.
  double quiet_seconds_ GUARDED_BY(mu_) = kQuietSeconds;
  double premount_keep_seconds_ GUARDED_BY(mu_) = kPremountKeepSeconds;
  size_t max_deferred_ GUARDED_BY(mu_) = kMaxDeferredUnmounts;
  double max_defer_seconds_ GUARDED_BY(mu_) = kMaxDeferSeconds;
  int flushes_ GUARDED_BY(mu_) = 0;  // WaitReleasedForTest calls waiting: no quiet wait.
  bool stopping_ GUARDED_BY(mu_) = false;
  CondVar janitor_cv_;  // Work for the janitor, or it finished some.
  uint64_t bytes_ GUARDED_BY(mu_) = 0;
  uint64_t tick_ GUARDED_BY(mu_) = 0;
  int unpacks_ GUARDED_BY(mu_) = 0;
  bool overlays_ = false;             // Set once by the constructor.
  bool volatile_ = false;             // Set once by the constructor.
  std::string overlay_problem_;       // Set once by the constructor.
  std::atomic<bool> reflinks_{true};  // Cleared once the file system refuses one.
  std::atomic<int> fail_mounts_{0};   // FailNextMountsForTest.
  std::thread janitor_;               // Last: started once the rest is set.
};

}  // namespace pw::runner
