#include "runner/unpack_cache.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/test_files.h"
#include "runner/artifact_store.h"
#include "runner/temp_dir.h"

namespace pw::runner::unpack_cache_test {
namespace {

using test_files::ReadFile;
using test_files::WriteFile;

namespace fs = std::filesystem;

mode_t Mode(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

size_t CountPrefixed(const fs::path& dir, const std::string& prefix) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    n += e.path().filename().string().rfind(prefix, 0) == 0 ? 1 : 0;
  }
  return n;
}

bool MountedAt(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.find(" " + path + " ") != std::string::npos) return true;
  }
  return false;
}

// The super options mountinfo shows for the mount at `path`; "" when none.
std::string MountOptionsAt(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.find(" " + path + " ") == std::string::npos) continue;
    const size_t dash = line.find(" - ");
    return dash == std::string::npos ? line : line.substr(dash + 3);
  }
  return "";
}

// Whether the overlay on `dest` keeps its upper dir in `dest` itself, where
// the cache makes it (under the mount: the action does not see it).
bool UpperDirInside(const std::string& dest) {
  const std::string options = MountOptionsAt(dest);
  return options.find("upperdir=" + dest + "/" + UnpackCache::kScratchName + "/u,") !=
         std::string::npos;
}

// Whether `dest`'s scratch dir (upper and work dirs) is still there, seen
// from this namespace once nothing is mounted on `dest`.
bool ScratchLeft(const std::string& dest) {
  return fs::exists(fs::path(dest) / UnpackCache::kScratchName);
}

// Mounts an overlay by hand on `target`: lower dir `lower`, upper and work
// dirs `scratch`/u and `scratch`/w (created), as the cache lays them out.
// Returns 0 or the errno.
int MountOverlayByHand(const fs::path& lower, const fs::path& scratch, const fs::path& target) {
  fs::create_directories(scratch / "u");
  fs::create_directories(scratch / "w");
  fs::create_directories(target);
  const std::string options = "lowerdir=" + lower.string() +
                              ",upperdir=" + (scratch / "u").string() +
                              ",workdir=" + (scratch / "w").string();
  return ::mount("overlay", target.c_str(), "overlay", 0, options.c_str()) == 0 ? 0 : errno;
}

// The oracle for the cache's probe: whether an overlay can be mounted in
// `dir` (CAP_SYS_ADMIN and a file system that takes an upper dir).
bool MayMountOverlays(const fs::path& dir) {
  const fs::path t = dir / "oracle";
  fs::create_directories(t / "l");
  const bool ok = MountOverlayByHand(t / "l", t / "s", t / "m") == 0;
  if (ok) ::umount2((t / "m").c_str(), MNT_DETACH);
  fs::remove_all(t);
  return ok;
}

class UnpackCacheFixture {
 protected:
  virtual ~UnpackCacheFixture() = default;
  virtual UnpackCache::Mode CacheMode() const = 0;
  std::unique_ptr<UnpackCache> Cache(size_t max_entries = 16,
                                     uint64_t max_bytes = uint64_t{1} << 30) {
    return std::make_unique<UnpackCache>(store_.get(), (root_ / "unpacked").string(), max_entries,
                                         max_bytes, CacheMode());
  }

  void SetUpFixture() {
    auto t = ScopedTempDir::Create("unpack-cache");
    ASSERT_TRUE(t.ok());
    tmp_ = std::make_unique<ScopedTempDir>(std::move(*t));
    root_ = fs::path(tmp_->path());
    store_ = std::make_unique<ArtifactStore>((root_ / "artifacts").string());
  }

  // A revision with a text file, an executable in a subdirectory and a link.
  std::string Revision(const std::string& text) {
    const fs::path src = root_ / ("src-" + std::to_string(++n_));
    WriteFile(src / "app" / "version.txt", text);
    WriteFile(src / "bin" / "run.sh", "#!/bin/sh\necho hi\n", /*executable=*/true);
    fs::create_symlink("app/version.txt", src / "current");
    auto rev = store_->PutDirectory(src.string());
    EXPECT_TRUE(rev.ok()) << rev.status().ToString();
    return *rev;
  }

  std::string Dest(const std::string& name) { return (root_ / "work" / name).string(); }

  std::unique_ptr<ScopedTempDir> tmp_;
  fs::path root_;
  std::unique_ptr<ArtifactStore> store_;
  int n_ = 0;
};

// Every test runs in both modes: kAuto gives overlays where this process may
// mount them (root), copies elsewhere; kCopy always copies.
class UnpackCacheTest : public UnpackCacheFixture,
                        public ::testing::TestWithParam<UnpackCache::Mode> {
 protected:
  void SetUp() override { SetUpFixture(); }
  UnpackCache::Mode CacheMode() const override { return GetParam(); }
};

// What only overlays do; skipped where this process cannot mount them.
class UnpackCacheOverlayTest : public UnpackCacheFixture, public ::testing::Test {
 protected:
  void SetUp() override {
    SetUpFixture();
    if (!MayMountOverlays(root_)) {
      GTEST_SKIP() << "no overlays here (needs CAP_SYS_ADMIN and a file system for an upper dir)";
    }
  }
  UnpackCache::Mode CacheMode() const override { return UnpackCache::Mode::kAuto; }
};

TEST_P(UnpackCacheTest, UnpacksOnceAndGivesEachActionTheSameTree) {
  const std::string rev = Revision("one\n");
  auto cache_ptr = Cache();
  UnpackCache& cache = *cache_ptr;
  ASSERT_TRUE(cache.Materialize(rev, Dest("a")).ok());
  ASSERT_TRUE(cache.Materialize(rev, Dest("b")).ok());
  EXPECT_EQ(cache.UnpacksForTest(), 1);
  EXPECT_EQ(cache.EntriesForTest(), 1u);
  for (const std::string& d : {Dest("a"), Dest("b")}) {
    EXPECT_EQ(ReadFile(fs::path(d) / "app" / "version.txt"), "one\n");
    EXPECT_EQ(Mode(fs::path(d) / "app" / "version.txt"), 0644u);  // As Extract leaves it.
    EXPECT_EQ(Mode(fs::path(d) / "bin" / "run.sh"), 0755u);
    EXPECT_EQ(Mode(fs::path(d) / "app"), 0755u);
    EXPECT_TRUE(fs::is_symlink(fs::path(d) / "current"));
    EXPECT_EQ(fs::read_symlink(fs::path(d) / "current"), "app/version.txt");
  }
  // The same tree Extract gives.
  ASSERT_TRUE(store_->Extract(rev, Dest("x")).ok());
  EXPECT_EQ(ReadFile(fs::path(Dest("x")) / "bin" / "run.sh"),
            ReadFile(fs::path(Dest("a")) / "bin" / "run.sh"));
}

TEST_P(UnpackCacheTest, AnActionWritingIntoItsInputChangesNeitherTheCacheNorTheNextInput) {
  const std::string rev = Revision("original\n");
  auto cache_ptr = Cache();
  UnpackCache& cache = *cache_ptr;
  ASSERT_TRUE(cache.Materialize(rev, Dest("a")).ok());
  const fs::path file = fs::path(Dest("a")) / "app" / "version.txt";
  {
    // In place, through the same inode (O_APPEND on the existing file), as `>>` does.
    std::ofstream out(file, std::ios::app);
    out << "changed by action a\n";
  }
  ASSERT_EQ(ReadFile(file), "original\nchanged by action a\n");
  fs::remove(fs::path(Dest("a")) / "bin" / "run.sh");
  ASSERT_TRUE(cache.Materialize(rev, Dest("b")).ok());
  EXPECT_EQ(ReadFile(fs::path(Dest("b")) / "app" / "version.txt"), "original\n");
  EXPECT_TRUE(fs::exists(fs::path(Dest("b")) / "bin" / "run.sh"));
  EXPECT_EQ(cache.UnpacksForTest(), 1);
  // The cached copy is unchanged and distinct from every action's file
  // (read-only when copies are made from it: an overlay never writes to it).
  const fs::path cached = root_ / "unpacked" / rev / "app" / "version.txt";
  EXPECT_EQ(ReadFile(cached), "original\n");
  EXPECT_TRUE(fs::exists(root_ / "unpacked" / rev / "bin" / "run.sh"));
  if (!cache.overlays()) {
    EXPECT_EQ(Mode(cached), 0444u);
  }
  if (!cache.overlays()) {  // (An overlay reports the lower file's st_ino even after copy-up.)
    struct stat a {
    }, c{};
    ASSERT_EQ(::stat(file.c_str(), &a), 0);
    ASSERT_EQ(::stat(cached.c_str(), &c), 0);
    EXPECT_NE(a.st_ino, c.st_ino);
  }
}

TEST_P(UnpackCacheTest, KeepsAtMostMaxEntriesRemovingTheLeastRecentlyUsed) {
  const std::string r1 = Revision("1\n"), r2 = Revision("2\n"), r3 = Revision("3\n");
  auto cache_ptr = Cache(/*max_entries=*/2);
  UnpackCache& cache = *cache_ptr;
  // Each action releases its input when it ends (an overlay pins its entry).
  for (const auto& [rev, dest] : std::vector<std::pair<std::string, std::string>>{
           {r1, "1"}, {r2, "2"}, {r1, "1b"}, {r3, "3"}}) {  // r1 then more recent than r2.
    ASSERT_TRUE(cache.Materialize(rev, Dest(dest)).ok());
    cache.Release(Dest(dest));
    cache.WaitReleasedForTest();
  }
  EXPECT_EQ(cache.EntriesForTest(), 2u);
  EXPECT_TRUE(fs::exists(root_ / "unpacked" / r1));
  EXPECT_FALSE(fs::exists(root_ / "unpacked" / r2));
  EXPECT_TRUE(fs::exists(root_ / "unpacked" / r3));
  // Nothing but the entries is left behind (no temporary, evicted or
  // overlay scratch trees), besides the spare directories kept for run
  // directories (overlays: the released mount points).
  size_t n = 0, spares = 0;
  for (const auto& e : fs::directory_iterator(root_ / "unpacked")) {
    ++(e.path().filename().string().rfind(".spare-", 0) == 0 ? spares : n);
  }
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(spares, cache.SparesForTest());
  EXPECT_EQ(spares, cache.overlays() ? 4u : 0u);
  // An evicted revision is unpacked again when asked for.
  ASSERT_TRUE(cache.Materialize(r2, Dest("2b")).ok());
  EXPECT_EQ(ReadFile(fs::path(Dest("2b")) / "app" / "version.txt"), "2\n");
  EXPECT_EQ(cache.UnpacksForTest(), 4);
}

TEST_P(UnpackCacheTest, BoundedInBytes) {
  const std::string r1 = Revision(std::string(4000, 'a')), r2 = Revision(std::string(4000, 'b'));
  auto cache_ptr = Cache(16, /*max_bytes=*/6000);
  UnpackCache& cache = *cache_ptr;
  ASSERT_TRUE(cache.Materialize(r1, Dest("1")).ok());
  cache.Release(Dest("1"));
  cache.WaitReleasedForTest();
  ASSERT_TRUE(cache.Materialize(r2, Dest("2")).ok());
  EXPECT_EQ(cache.EntriesForTest(), 1u);
  EXPECT_FALSE(fs::exists(root_ / "unpacked" / r1));
}

TEST_P(UnpackCacheTest, ANewCacheRemovesWhatAPreviousProcessLeft) {
  const std::string rev = Revision("x\n");
  {
    auto cache_ptr = Cache();
    UnpackCache& cache = *cache_ptr;
    ASSERT_TRUE(cache.Materialize(rev, Dest("a")).ok());
  }
  ASSERT_TRUE(fs::exists(root_ / "unpacked" / rev));
  fs::create_directories(root_ / "unpacked" / ".tmp-stale" / "d");
  auto again_ptr = Cache();
  UnpackCache& again = *again_ptr;
  EXPECT_TRUE(fs::is_empty(root_ / "unpacked"));
  ASSERT_TRUE(again.Materialize(rev, Dest("b")).ok());
  EXPECT_EQ(ReadFile(fs::path(Dest("b")) / "app" / "version.txt"), "x\n");
}

TEST_P(UnpackCacheTest, ErrorsAreExtractsAndNothingIsCached) {
  auto cache_ptr = Cache();
  UnpackCache& cache = *cache_ptr;
  EXPECT_EQ(cache.Materialize("nope", Dest("a")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.Materialize(std::string(64, 'a'), Dest("a")).code(), StatusCode::kNotFound);
  EXPECT_EQ(cache.EntriesForTest(), 0u);
  EXPECT_TRUE(fs::is_empty(root_ / "unpacked"));
}

TEST_P(UnpackCacheTest, ConcurrentActionsOfAStageUnpackOnce) {
  const std::string rev = Revision("par\n");
  auto cache_ptr = Cache();
  UnpackCache& cache = *cache_ptr;
  std::vector<std::thread> threads;
  std::vector<int> ok(8, 0);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      ok[static_cast<size_t>(i)] = cache.Materialize(rev, Dest("t" + std::to_string(i))).ok();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(ok[static_cast<size_t>(i)]);
    EXPECT_EQ(ReadFile(fs::path(Dest("t" + std::to_string(i))) / "app" / "version.txt"), "par\n");
  }
  EXPECT_EQ(cache.UnpacksForTest(), 1);
}

TEST_P(UnpackCacheTest, AModeIsChosenAndKCopyNeverMounts) {
  const std::string rev = Revision("m\n");
  auto cache = Cache();
  if (GetParam() == UnpackCache::Mode::kCopy) {
    EXPECT_FALSE(cache->overlays());
  }
  // Where overlays can be mounted, kAuto must use them (a probe failing on
  // a machine that has them would silently cost a copy per action).
  if (GetParam() == UnpackCache::Mode::kAuto) {
    EXPECT_EQ(cache->overlays(), MayMountOverlays(root_));
  }
  ASSERT_TRUE(cache->Materialize(rev, Dest("a")).ok());
  EXPECT_EQ(cache->MountsForTest(), cache->overlays() ? 1u : 0u);
  EXPECT_EQ(MountedAt(Dest("a")), cache->overlays());
  // A private copy (an action running as another user) is never a mount.
  ASSERT_TRUE(cache->Materialize(rev, Dest("p"), /*private_copy=*/true).ok());
  EXPECT_FALSE(MountedAt(Dest("p")));
  EXPECT_FALSE(cache->Release(Dest("p")));  // Nothing to unmount: the caller removes it.
  EXPECT_EQ(ReadFile(fs::path(Dest("p")) / "app" / "version.txt"), "m\n");
  EXPECT_EQ(Mode(fs::path(Dest("p")) / "app" / "version.txt"), 0644u);
}

TEST_F(UnpackCacheOverlayTest, ReleaseUnmountsRemovesTheUpperDirAndKeepsTheMountPoint) {
  const std::string rev = Revision("r\n");
  auto cache = Cache();
  ASSERT_TRUE(cache->overlays());
  ASSERT_TRUE(cache->Materialize(rev, Dest("a")).ok());
  ASSERT_TRUE(cache->Materialize(rev, Dest("a.in/second")).ok());
  std::ofstream(fs::path(Dest("a")) / "new.txt") << "written by the action\n";
  EXPECT_EQ(cache->MountsForTest(), 2u);
  // The upper and work dirs are in the destinations, under their mounts:
  // nothing new in the cache's directory, nothing the action sees.
  EXPECT_TRUE(UpperDirInside(Dest("a"))) << MountOptionsAt(Dest("a"));
  EXPECT_TRUE(UpperDirInside(Dest("a.in/second"))) << MountOptionsAt(Dest("a.in/second"));
  EXPECT_FALSE(ScratchLeft(Dest("a")));
  EXPECT_EQ(CountPrefixed(root_ / "unpacked", "."), 0u);
  EXPECT_TRUE(cache->Release(Dest("a")));
  cache->WaitReleasedForTest();
  EXPECT_FALSE(MountedAt(Dest("a")));
  // The mount point, empty now, is kept as a spare for MakeDirectory (not
  // removed: a sandbox set up meanwhile may hold a copy of the mount on it).
  EXPECT_FALSE(fs::exists(Dest("a")));
  EXPECT_EQ(cache->SparesForTest(), 1u);
  EXPECT_EQ(CountPrefixed(root_ / "unpacked", ".spare-"), 1u);
  EXPECT_TRUE(MountedAt(Dest("a.in/second")));
  // Release covers every mount below the path (the secondary inputs).
  EXPECT_TRUE(cache->Release(Dest("a.in")));
  cache->WaitReleasedForTest();
  EXPECT_FALSE(MountedAt(Dest("a.in/second")));
  EXPECT_EQ(cache->MountsForTest(), 0u);
  // Not empty (its mount points): it waits for its grave, then goes.
  EXPECT_TRUE(fs::is_empty(Dest("a.in/second")));
  EXPECT_EQ(cache->GravesForTest(), 1u);
  EXPECT_EQ(cache->SparesForTest(), 1u);
  cache->RemoveGravesForTest();
  EXPECT_FALSE(fs::exists(Dest("a.in")));
  // Releasing again, or a path never mounted, does nothing: the caller
  // removes such directories itself.
  EXPECT_FALSE(cache->Release(Dest("a")));
  EXPECT_FALSE(cache->Release(Dest("never")));
  EXPECT_EQ(cache->GravesForTest(), 0u);
}

// Polls `done` until it holds or 10 s pass; true when it held.
template <typename F>
bool Eventually(F done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// An upper dir is scratch. Mounted `volatile` (Linux 5.10+), its overlay's
// unmount does not sync the whole file system the data directory is on, which
// made a commit beside it wait (make bench: retry calls at p99 5-205 ms).
TEST_F(UnpackCacheOverlayTest, OverlaysAreMountedVolatileWhereTheKernelHasIt) {
  const std::string rev = Revision("v\n");
  auto cache = Cache();
  ASSERT_TRUE(cache->overlays());
  utsname u{};
  ASSERT_EQ(::uname(&u), 0);
  std::istringstream release(u.release);
  int major = 0, minor = 0;
  char dot = 0;
  release >> major >> dot >> minor;
  if (major < 5 || (major == 5 && minor < 10)) {
    EXPECT_FALSE(cache->volatile_overlays());
    GTEST_SKIP() << "Linux " << u.release << " has no volatile overlays";
  }
  EXPECT_TRUE(cache->volatile_overlays());
  ASSERT_TRUE(cache->Materialize(rev, Dest("a")).ok());
  const std::string options = MountOptionsAt(Dest("a"));
  // ",volatile", or ",fsync=volatile" in newer kernels.
  EXPECT_NE(options.find("volatile"), std::string::npos) << options;
  EXPECT_TRUE(cache->Release(Dest("a")));
  cache->WaitReleasedForTest();
  EXPECT_FALSE(MountedAt(Dest("a")));
}

// While actions keep starting, released overlays stay mounted (an unmount's
// RCU grace period and the removal of its upper dir would slow down the
// action running meanwhile); they go once the starts stop, when too many
// wait, or when the oldest has waited too long.
TEST_F(UnpackCacheOverlayTest, ReleasedOverlaysWaitWhileActionsKeepStarting) {
  const std::string rev = Revision("d\n");
  auto cache = Cache();
  ASSERT_TRUE(cache->overlays());
  // Starts count as "keep starting" for 30 s; at most 3 may wait, for 60 s.
  cache->SetDeferralForTest(30, 3, 60);
  for (const char* d : {"a", "b", "c", "d", "e"})
    ASSERT_TRUE(cache->Materialize(rev, Dest(d)).ok());
  EXPECT_TRUE(cache->Release(Dest("a")));
  EXPECT_TRUE(cache->Release(Dest("b")));
  // A bounded negative check: the janitor was woken by the first Release and
  // must not unmount within this time.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_TRUE(MountedAt(Dest("a")) && MountedAt(Dest("b"))) << "unmounted during the burst";
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (const char* d : {"a", "b", "c", "d", "e"}) EXPECT_TRUE(UpperDirInside(Dest(d))) << d;
  // The third waiting release fills the backlog: all three go now.
  EXPECT_TRUE(cache->Release(Dest("c")));
  EXPECT_TRUE(Eventually(
      [&] { return !MountedAt(Dest("a")) && !MountedAt(Dest("b")) && !MountedAt(Dest("c")); }));
  EXPECT_TRUE(MountedAt(Dest("d")));
  // The oldest may wait 0.2 s at most, however busy.
  cache->SetDeferralForTest(30, 64, 0.2);
  EXPECT_TRUE(cache->Release(Dest("d")));
  EXPECT_TRUE(Eventually([&] { return !MountedAt(Dest("d")); }));
  // Quiet: no start for 50 ms, and the release goes.
  cache->SetDeferralForTest(0.05, 64, 60);
  EXPECT_TRUE(cache->Release(Dest("e")));
  EXPECT_TRUE(Eventually([&] { return !MountedAt(Dest("e")); }));
  // Each upper dir goes with its unmount, its mount point becomes a spare.
  for (const char* d : {"a", "b", "c", "d", "e"}) {
    EXPECT_TRUE(Eventually([&] { return !fs::exists(Dest(d)); })) << d;
  }
  cache->WaitReleasedForTest();  // A rename comes before its spare is listed.
  EXPECT_EQ(cache->SparesForTest(), 5u);
  EXPECT_EQ(cache->MountsForTest(), 0u);
}

// A sandboxed server in its own mount namespace unmounts each release at
// once, even while actions keep starting (each bwrap copies what waits).
TEST_F(UnpackCacheOverlayTest, UnmountAtOnceDoesNotWaitForTheStartsToStop) {
  const std::string rev = Revision("at once\n");
  auto cache = Cache();
  ASSERT_TRUE(cache->overlays());
  cache->SetDeferralForTest(30, 64, 60);  // Batched, a burst that never ends.
  cache->UnmountAtOnce();
  for (const char* d : {"a", "b", "c"}) ASSERT_TRUE(cache->Materialize(rev, Dest(d)).ok());
  EXPECT_TRUE(cache->Release(Dest("a")));
  EXPECT_TRUE(Eventually([&] { return !MountedAt(Dest("a")); }));
  ASSERT_TRUE(cache->Materialize(rev, Dest("d")).ok());  // Still starting.
  EXPECT_TRUE(cache->Release(Dest("b")));
  EXPECT_TRUE(Eventually([&] { return !MountedAt(Dest("b")); }));
  EXPECT_TRUE(MountedAt(Dest("c")));
  EXPECT_TRUE(MountedAt(Dest("d")));
  EXPECT_EQ(cache->MountsForTest(), 2u);
  for (const char* d : {"c", "d"}) EXPECT_TRUE(cache->Release(Dest(d)));
  cache->WaitReleasedForTest();
  EXPECT_EQ(cache->MountsForTest(), 0u);
}

// A mount that fails after a good probe (a full mount table, say): the
// action gets a copy instead, the failed mount leaves nothing behind, and the
// next action gets an overlay again.
TEST_F(UnpackCacheOverlayTest, AMountThatFailsFallsBackToACopyAndLeavesNothing) {
  const std::string rev = Revision("fallback\n");
  auto cache = Cache(/*max_entries=*/1);
  ASSERT_TRUE(cache->overlays());
  cache->FailNextMountsForTest(1);
  ASSERT_TRUE(cache->Materialize(rev, Dest("copied")).ok());
  EXPECT_FALSE(MountedAt(Dest("copied")));
  EXPECT_EQ(cache->MountsForTest(), 0u);
  EXPECT_EQ(ReadFile(fs::path(Dest("copied")) / "app" / "version.txt"), "fallback\n");
  EXPECT_FALSE(ScratchLeft(Dest("copied"))) << "the failed mount's scratch dir stayed";
  // A copy is the caller's to remove, and does not pin the entry.
  EXPECT_FALSE(cache->Release(Dest("copied")));
  const std::string other = Revision("other\n");
  ASSERT_TRUE(cache->Materialize(other, Dest("next")).ok());
  EXPECT_TRUE(MountedAt(Dest("next")));
  EXPECT_FALSE(fs::exists(root_ / "unpacked" / rev)) << "the copied revision stayed pinned";
  EXPECT_TRUE(cache->Release(Dest("next")));
  cache->WaitReleasedForTest();
}

// Where overlays are not used, the cache says why (the server logs it).
TEST_F(UnpackCacheOverlayTest, WithoutOverlaysTheCacheNamesWhy) {
  UnpackCache copies(store_.get(), (root_ / "copies").string(), 16, uint64_t{1} << 30,
                     UnpackCache::Mode::kCopy);
  EXPECT_FALSE(copies.overlays());
  EXPECT_EQ(copies.overlay_problem(), "copies were asked for");
  // overlayfs options are comma-separated: a path with a comma cannot be a lower dir.
  UnpackCache comma(store_.get(), (root_ / "a,b").string());
  EXPECT_FALSE(comma.overlays());
  EXPECT_NE(comma.overlay_problem().find("character"), std::string::npos)
      << comma.overlay_problem();
  auto cache = Cache();
  EXPECT_TRUE(cache->overlays());
  EXPECT_EQ(cache->overlay_problem(), "");
}

TEST_F(UnpackCacheOverlayTest, AnEntryIsNotEvictedWhileAnOverlayUsesIt) {
  const std::string r1 = Revision("1\n"), r2 = Revision("2\n");
  auto cache = Cache(/*max_entries=*/1);
  ASSERT_TRUE(cache->overlays());
  ASSERT_TRUE(cache->Materialize(r1, Dest("1")).ok());
  ASSERT_TRUE(cache->Materialize(r2, Dest("2")).ok());
  EXPECT_TRUE(fs::exists(root_ / "unpacked" / r1));  // Over the bound, but in use.
  EXPECT_EQ(ReadFile(fs::path(Dest("1")) / "app" / "version.txt"), "1\n");
  cache->Release(Dest("1"));
  cache->WaitReleasedForTest();
  EXPECT_FALSE(fs::exists(root_ / "unpacked" / r1));
  EXPECT_EQ(ReadFile(fs::path(Dest("2")) / "app" / "version.txt"), "2\n");
}

TEST_F(UnpackCacheOverlayTest, OverlaysLeftByACrashedProcessAreUnmountedAtStart) {
  const std::string rev = Revision("c\n");
  auto first = Cache();
  ASSERT_TRUE(first->overlays());
  // What a process killed with an action running leaves: an entry, a scratch
  // dir and an overlay on the action's directory (mounted by hand here, as
  // the first cache's destructor would unmount its own).
  ASSERT_TRUE(first->Materialize(rev, Dest("warm")).ok());
  first->Release(Dest("warm"));
  first->WaitReleasedForTest();
  const fs::path unpacked = root_ / "unpacked";
  const int err = MountOverlayByHand(
      unpacked / rev, fs::path(Dest("left")) / UnpackCache::kScratchName, Dest("left"));
  ASSERT_EQ(err, 0) << std::strerror(err);
  ASSERT_TRUE(MountedAt(Dest("left")));
  first.reset();
  ASSERT_TRUE(MountedAt(Dest("left")));  // Not the destructor's: it did not mount it.
  auto again = Cache();
  EXPECT_FALSE(MountedAt(Dest("left")));
  EXPECT_TRUE(fs::is_empty(unpacked));
  ASSERT_TRUE(again->Materialize(rev, Dest("b")).ok());
  EXPECT_EQ(ReadFile(fs::path(Dest("b")) / "app" / "version.txt"), "c\n");
}

// A released mount point comes back as the next run directory: renamed,
// not made (no inode allocated), empty whatever its action wrote, with the
// mode mkdir gives; at most kMaxSpares wait, the others are removed later.
TEST_F(UnpackCacheOverlayTest, MakeDirectoryReusesReleasedMountPoints) {
  const std::string rev = Revision("spare\n");
  auto cache = Cache();
  ASSERT_TRUE(cache->overlays());
  cache->SetFreshSparesForTest(0);  // Only released mount points here.
  fs::create_directories(root_ / "work");
  ASSERT_TRUE(cache->MakeDirectory(Dest("fresh")).ok());  // No spare yet: mkdir.
  const mode_t made_mode = Mode(Dest("fresh"));
  ASSERT_TRUE(cache->Materialize(rev, Dest("fresh")).ok());
  std::ofstream(fs::path(Dest("fresh")) / "left.txt") << "written by the action\n";
  ASSERT_TRUE(cache->Release(Dest("fresh")));
  cache->WaitReleasedForTest();
  ASSERT_EQ(cache->SparesForTest(), 1u);
  struct stat spare {};
  for (const auto& e : fs::directory_iterator(root_ / "unpacked")) {
    if (e.path().filename().string().rfind(".spare-", 0) == 0) {
      ASSERT_EQ(::stat(e.path().c_str(), &spare), 0);
    }
  }
  ASSERT_NE(spare.st_ino, 0u);

  ASSERT_TRUE(cache->MakeDirectory(Dest("next")).ok());
  EXPECT_EQ(cache->SparesForTest(), 0u);
  struct stat next {};
  ASSERT_EQ(::stat(Dest("next").c_str(), &next), 0);
  EXPECT_EQ(next.st_ino, spare.st_ino) << "made anew, not the spare";
  EXPECT_TRUE(fs::is_empty(Dest("next")));
  EXPECT_EQ(Mode(Dest("next")), made_mode);
  EXPECT_EQ(CountPrefixed(root_ / "unpacked", ".spare-"), 0u);

  // An existing directory is fine and keeps the spare; a missing parent is
  // mkdir's error.
  ASSERT_TRUE(cache->Materialize(rev, Dest("other")).ok());
  ASSERT_TRUE(cache->Release(Dest("other")));
  cache->WaitReleasedForTest();
  ASSERT_EQ(cache->SparesForTest(), 1u);
  EXPECT_TRUE(cache->MakeDirectory(Dest("next")).ok());
  EXPECT_EQ(cache->SparesForTest(), 1u);
  Status missing = cache->MakeDirectory(Dest("no/such"));
  EXPECT_EQ(missing.code(), StatusCode::kInternal);
  EXPECT_NE(missing.message().find("No such file or directory"), std::string::npos)
      << missing.message();
  EXPECT_FALSE(fs::exists(Dest("no")));
  EXPECT_EQ(cache->SparesForTest(), 1u);

  // Bounded: with one spare waiting, kMaxSpares + 1 releases leave
  // kMaxSpares spares and two graves.
  const size_t n = UnpackCache::kMaxSpares + 1;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(cache->Materialize(rev, Dest("m" + std::to_string(i))).ok());
  }
  for (size_t i = 0; i < n; ++i) ASSERT_TRUE(cache->Release(Dest("m" + std::to_string(i))));
  cache->WaitReleasedForTest();
  EXPECT_EQ(cache->SparesForTest(), UnpackCache::kMaxSpares);
  EXPECT_EQ(cache->GravesForTest(), 2u);
}

// Mount points come back only once released overlays are unmounted (when
// actions stop starting) and never for actions without inputs: the janitor
// keeps fresh spares ready instead, made off the action's path, refilled
// when fewer than half wait. Each is empty, has mkdir's mode and is handed
// out by a rename.
TEST_F(UnpackCacheOverlayTest, MakeDirectoryKeepsFreshSparesReady) {
  auto cache = Cache();
  ASSERT_TRUE(cache->overlays());
  cache->SetFreshSparesForTest(4);
  fs::create_directories(root_ / "work");
  EXPECT_EQ(cache->SparesForTest(), 0u) << "none before a directory is asked for";
  ASSERT_TRUE(cache->MakeDirectory(Dest("first")).ok());  // mkdir, and a refill asked for.
  const mode_t made_mode = Mode(Dest("first"));
  ASSERT_TRUE(Eventually([&] { return cache->SparesForTest() == 4; }))
      << cache->SparesForTest() << " fresh spares";
  EXPECT_EQ(CountPrefixed(root_ / "unpacked", ".spare-"), 4u);
  std::set<ino_t> fresh;
  for (const auto& e : fs::directory_iterator(root_ / "unpacked")) {
    if (e.path().filename().string().rfind(".spare-", 0) != 0) continue;
    struct stat st {};
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    fresh.insert(st.st_ino);
  }
  // Two taken (4 -> 2: half are left, no refill yet), each a fresh spare.
  for (const char* name : {"second", "third"}) {
    ASSERT_TRUE(cache->MakeDirectory(Dest(name)).ok());
    struct stat st {};
    ASSERT_EQ(::stat(Dest(name).c_str(), &st), 0);
    EXPECT_EQ(fresh.count(st.st_ino), 1u) << name << " was made anew, not renamed";
    EXPECT_TRUE(fs::is_empty(Dest(name)));
    EXPECT_EQ(Mode(Dest(name)), made_mode);
  }
  EXPECT_EQ(cache->SparesForTest(), 2u);
  // One more leaves fewer than half: back to 4.
  ASSERT_TRUE(cache->MakeDirectory(Dest("fourth")).ok());
  ASSERT_TRUE(Eventually([&] { return cache->SparesForTest() == 4; }))
      << cache->SparesForTest() << " fresh spares after the refill";
  cache.reset();
  EXPECT_EQ(CountPrefixed(root_ / "unpacked", ".spare-"), 0u) << "the destructor removes them";
}

// What bubblewrap does with the mounts of the namespace it starts in: a
// copy of them (unshare), then, a moment later, each copy remounted
// read-only by its path. Runs on a thread of its own.
class SandboxSetUp {
 public:
  explicit SandboxSetUp(std::string path) : path_(std::move(path)) {
    thread_ = std::thread([this] {
      const int copied = ::unshare(CLONE_NEWNS) == 0 ? 0 : errno;
      copied_.set_value(copied);
      go_.get_future().wait();
      int err = copied;
      if (err == 0) {
        err =
            ::mount(nullptr, path_.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) == 0
                ? 0
                : errno;
      }
      remounted_.set_value(err);
    });
  }
  ~SandboxSetUp() {
    if (thread_.joinable()) {
      if (!went_) go_.set_value();
      thread_.join();
    }
  }
  SandboxSetUp(const SandboxSetUp&) = delete;
  SandboxSetUp& operator=(const SandboxSetUp&) = delete;
  // 0 once the copy is made, else unshare's errno.
  int Copied() { return copied_.get_future().get(); }
  // The remount's errno (0: done).
  int Remount() {
    went_ = true;
    go_.set_value();
    const int err = remounted_.get_future().get();
    thread_.join();
    return err;
  }

 private:
  std::string path_;
  std::promise<int> copied_;
  std::promise<void> go_;
  std::promise<int> remounted_;
  bool went_ = false;
  std::thread thread_;
};

// A released mount point stays at its path, neither a spare nor a grave,
// while a sandbox that may hold a copy of its overlay sets itself up:
// bubblewrap remounts every copy by its path, and a renamed one failed it
// ("Unable to apply mount flags: remount .../work/<run>: No such file or
// directory", e2e.test_codebuild). Recycled once the hold is dropped, or
// once it is older than any set-up; a hold taken after the unmount keeps
// nothing.
TEST_F(UnpackCacheOverlayTest, ReleasedMountPointsStayWhileASandboxSetsItselfUp) {
  const std::string rev = Revision("held\n");
  fs::create_directories(root_ / "work");
  // The test's directory a private mount of its own: an unmount here never
  // reaches the copy, whatever the propagation of the file system the test
  // runs on (one mount: work/ and unpacked/ still rename into each other).
  const std::string top = root_.string();
  ASSERT_EQ(::mount(top.c_str(), top.c_str(), nullptr, MS_BIND, nullptr), 0)
      << std::strerror(errno);
  ASSERT_EQ(::mount(nullptr, top.c_str(), nullptr, MS_PRIVATE, nullptr), 0) << std::strerror(errno);
  {
    auto cache = Cache();
    ASSERT_TRUE(cache->overlays());
    cache->SetFreshSparesForTest(0);
    ASSERT_TRUE(cache->Materialize(rev, Dest("a")).ok());
    UnpackCache::SandboxHold hold = cache->HoldForSandbox();
    SandboxSetUp sandbox(Dest("a"));
    ASSERT_EQ(sandbox.Copied(), 0) << "unshare: " << std::strerror(sandbox.Copied());
    ASSERT_TRUE(cache->Release(Dest("a")));
    cache->WaitReleasedForTest();
    EXPECT_FALSE(MountedAt(Dest("a"))) << "unmounted here";
    EXPECT_EQ(cache->HeldForTest(), 1u);
    EXPECT_EQ(cache->SparesForTest(), 0u);
    EXPECT_EQ(cache->GravesForTest(), 0u);
    EXPECT_TRUE(fs::is_directory(Dest("a"))) << "the mount point stays where the sandbox looks";
    const int remounted = sandbox.Remount();
    EXPECT_EQ(remounted, 0) << "the sandbox's remount: " << std::strerror(remounted);

    hold.reset();
    EXPECT_TRUE(Eventually([&] { return cache->SparesForTest() == 1; }));
    EXPECT_EQ(cache->HeldForTest(), 0u);
    EXPECT_FALSE(fs::exists(Dest("a"))) << "recycled as a spare";

    // Only holds taken before the unmount keep its mount point.
    UnpackCache::SandboxHold before = cache->HoldForSandbox();
    ASSERT_TRUE(cache->Materialize(rev, Dest("b")).ok());
    ASSERT_TRUE(cache->Release(Dest("b")));
    cache->WaitReleasedForTest();
    EXPECT_EQ(cache->HeldForTest(), 1u);
    UnpackCache::SandboxHold after = cache->HoldForSandbox();
    before.reset();
    EXPECT_TRUE(Eventually([&] { return cache->SparesForTest() == 2; }))
        << cache->HeldForTest() << " held";
    EXPECT_EQ(cache->HeldForTest(), 0u);
    after.reset();

    // Recycled when the hold goes even while an unused premount waits for
    // its keep time (the janitor sleeps until then).
    cache->UnmountAtOnce();
    cache->SetPremountKeepForTest(3600);
    cache->Premount(rev);
    ASSERT_EQ(cache->PremountsForTest(), 1u);
    const size_t spares = cache->SparesForTest();  // Premount took one.
    UnpackCache::SandboxHold during = cache->HoldForSandbox();
    ASSERT_TRUE(cache->Materialize(rev, Dest("p")).ok());
    ASSERT_TRUE(cache->Release(Dest("p")));
    ASSERT_TRUE(Eventually([&] { return cache->HeldForTest() == 1; }));
    during.reset();
    EXPECT_TRUE(Eventually([&] { return cache->SparesForTest() == spares + 1; }))
        << cache->HeldForTest() << " held";
    EXPECT_EQ(cache->PremountsForTest(), 1u);

    // A hold older than any set-up keeps nothing either.
    cache->SetMaxSandboxSetupForTest(0.2);
    UnpackCache::SandboxHold stale = cache->HoldForSandbox();
    ASSERT_TRUE(cache->Materialize(rev, Dest("c")).ok());
    ASSERT_TRUE(cache->Release(Dest("c")));
    ASSERT_TRUE(Eventually([&] { return !MountedAt(Dest("c")); }));
    EXPECT_TRUE(Eventually([&] { return cache->HeldForTest() == 0 && !fs::exists(Dest("c")); }))
        << cache->HeldForTest() << " held";

    // ... counted from its spawn: a hold that waited (a large input
    // unpacked) counts again once its sandbox is spawned.
    cache->SetMaxSandboxSetupForTest(4);  // Room for the mount and unmount below.
    cache->SandboxSpawning(stale);
    ASSERT_TRUE(cache->Materialize(rev, Dest("s")).ok());
    ASSERT_TRUE(cache->Release(Dest("s")));
    // The janitor unmounts before it records the mount point as held (CI
    // saw "0 held" in between): polled together.
    EXPECT_TRUE(Eventually([&] { return !MountedAt(Dest("s")) && cache->HeldForTest() == 1; }))
        << cache->HeldForTest() << " held again after the spawn";
    EXPECT_TRUE(fs::is_directory(Dest("s")));
    EXPECT_TRUE(Eventually([&] { return cache->HeldForTest() == 0 && !fs::exists(Dest("s")); }))
        << cache->HeldForTest() << " held";
  }
  EXPECT_EQ(::umount2(top.c_str(), MNT_DETACH), 0) << std::strerror(errno);
}

// How many mounts have a mount point starting with `prefix`.
size_t MountsUnder(const std::string& prefix) {
  std::ifstream in("/proc/self/mountinfo");
  size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    n += line.find(" " + prefix) != std::string::npos ? 1 : 0;
  }
  return n;
}

// Premount makes the next Materialize of its revision a move (MS_MOVE) of
// an overlay mounted ahead: the action gets the same tree, with an upper dir
// of its own that nobody used, and nothing of it reaches the cache or the
// other actions. One waits per revision; only a caller in the cache's own
// namespace takes it; it keeps its entry cached.
TEST_F(UnpackCacheOverlayTest, APremountedOverlayIsMovedToTheNextActionOfItsRevision) {
  const std::string rev = Revision("premounted\n");
  auto cache = Cache();
  ASSERT_TRUE(cache->overlays());
  cache->SetDeferralForTest(3600, 64, 3600);  // Nothing retired while the test looks.
  cache->SetFreshSparesForTest(0);            // Exact spare counts below.
  const std::string pm = (root_ / "unpacked" / ".pm-").string();
  cache->Premount(rev);  // Not cached yet: nothing to mount.
  EXPECT_EQ(cache->PremountsForTest(), 0u);

  ASSERT_TRUE(cache->Materialize(rev, Dest("a"), false, true).ok());
  EXPECT_TRUE(UpperDirInside(Dest("a"))) << "a mount of its own: none was waiting";
  cache->Premount(rev);
  cache->Premount(rev);
  EXPECT_EQ(cache->PremountsForTest(), 1u);
  EXPECT_EQ(MountsUnder(pm), 1u);
  EXPECT_EQ(CountPrefixed(root_ / "unpacked", ".pm-"), 1u);

  ASSERT_TRUE(cache->Materialize(rev, Dest("b"), false, true).ok());
  EXPECT_EQ(cache->PremountsForTest(), 0u);
  EXPECT_EQ(MountsUnder(pm), 0u) << "moved, not copied";
  EXPECT_TRUE(MountedAt(Dest("b")));
  EXPECT_NE(MountOptionsAt(Dest("b")).find("upperdir=" + pm), std::string::npos)
      << MountOptionsAt(Dest("b"));
  EXPECT_EQ(ReadFile(fs::path(Dest("b")) / "app" / "version.txt"), "premounted\n");
  std::ofstream(fs::path(Dest("b")) / "app" / "version.txt") << "changed by b\n";
  std::ofstream(fs::path(Dest("b")) / "new.txt") << "b's\n";
  EXPECT_EQ(ReadFile(fs::path(Dest("a")) / "app" / "version.txt"), "premounted\n");
  EXPECT_FALSE(fs::exists(fs::path(Dest("a")) / "new.txt"));
  EXPECT_EQ(ReadFile(root_ / "unpacked" / rev / "app" / "version.txt"), "premounted\n");
  EXPECT_EQ(cache->MountsForTest(), 2u);

  // A caller in an action's own mount namespace mounts there: the waiting
  // premount is not its to move.
  cache->Premount(rev);
  ASSERT_TRUE(cache->Materialize(rev, Dest("c"), false, false).ok());
  EXPECT_TRUE(UpperDirInside(Dest("c")));
  EXPECT_EQ(cache->PremountsForTest(), 1u);
  // Private copies never take one either.
  ASSERT_TRUE(cache->Materialize(rev, Dest("d"), true, true).ok());
  EXPECT_FALSE(MountedAt(Dest("d")));
  EXPECT_EQ(cache->PremountsForTest(), 1u);

  // Releasing b unmounts it and recycles both its mount point and the one the
  // overlay was first mounted on (each as a spare: no rmdir, see Release);
  // waiting for the releases also retires the unused premount.
  const size_t spares = cache->SparesForTest();
  EXPECT_TRUE(cache->Release(Dest("b")));
  cache->WaitReleasedForTest();
  EXPECT_FALSE(MountedAt(Dest("b")));
  EXPECT_EQ(cache->PremountsForTest(), 0u);
  EXPECT_EQ(MountsUnder(pm), 0u);
  EXPECT_EQ(CountPrefixed(root_ / "unpacked", ".pm-"), 0u);
  EXPECT_EQ(cache->SparesForTest(), spares + 3) << "b, its first mount point, the retired one";
  for (const auto& e : fs::directory_iterator(root_ / "unpacked")) {
    if (e.path().filename().string().rfind(".spare-", 0) == 0) {
      EXPECT_TRUE(fs::is_empty(e.path())) << e.path();
    }
  }
}

// Where the kernel refuses the move (the premount's parent mount is shared:
// MS_MOVE answers EINVAL), the action mounts an overlay of its own as before,
// the premount is unmounted, and no more are made.
TEST_F(UnpackCacheOverlayTest, ARefusedMoveFallsBackToAMountAndStopsPremounts) {
  const std::string rev = Revision("refused\n");
  const std::string unpacked = (root_ / "unpacked").string();
  const std::string pm = unpacked + "/.pm-";
  {
    auto cache = Cache();
    ASSERT_TRUE(cache->overlays());
    cache->SetDeferralForTest(3600, 64, 3600);
    ASSERT_TRUE(cache->Materialize(rev, Dest("a"), false, true).ok());
    // unpacked/ becomes a shared mount of itself: a mount under it cannot
    // be moved away.
    ASSERT_EQ(::mount(unpacked.c_str(), unpacked.c_str(), nullptr, MS_BIND, nullptr), 0)
        << std::strerror(errno);
    ASSERT_EQ(::mount(nullptr, unpacked.c_str(), nullptr, MS_SHARED, nullptr), 0)
        << std::strerror(errno);
    cache->Premount(rev);
    ASSERT_EQ(cache->PremountsForTest(), 1u);
    ASSERT_EQ(MountsUnder(pm), 1u);

    ASSERT_TRUE(cache->Materialize(rev, Dest("b"), false, true).ok());
    EXPECT_TRUE(MountedAt(Dest("b")));
    EXPECT_TRUE(UpperDirInside(Dest("b"))) << "a mount of its own";
    EXPECT_EQ(ReadFile(fs::path(Dest("b")) / "app" / "version.txt"), "refused\n");
    EXPECT_EQ(cache->PremountsForTest(), 0u);
    cache->Premount(rev);
    EXPECT_EQ(cache->PremountsForTest(), 0u) << "premounts stopped";
    EXPECT_TRUE(cache->Release(Dest("a")));
    EXPECT_TRUE(cache->Release(Dest("b")));
    cache->WaitReleasedForTest();
    EXPECT_EQ(MountsUnder(pm), 0u) << "the refused premount was unmounted";
  }
  EXPECT_EQ(::umount2(unpacked.c_str(), MNT_DETACH), 0) << std::strerror(errno);
}

// Unused premounts go once actions stop starting, and with the cache; a
// premount keeps its revision from being evicted meanwhile.
TEST_F(UnpackCacheOverlayTest, UnusedPremountsGoWhenStartsStopOrWithTheCache) {
  const std::string one = Revision("one\n");
  const std::string two = Revision("two\n");
  const std::string pm = (root_ / "unpacked" / ".pm-").string();
  {
    auto cache = Cache(/*max_entries=*/1);
    cache->SetDeferralForTest(3600, 1, 3600);  // Releases unmount at once.
    cache->SetPremountKeepForTest(3600);       // Premounts wait.
    cache->SetFreshSparesForTest(0);
    ASSERT_TRUE(cache->Materialize(one, Dest("a"), false, true).ok());
    cache->Premount(one);
    ASSERT_EQ(cache->PremountsForTest(), 1u);
    EXPECT_TRUE(cache->Release(Dest("a")));
    EXPECT_TRUE(Eventually([&] { return cache->SparesForTest() == 1; }));  // After its unpin.
    ASSERT_TRUE(cache->Materialize(two, Dest("b"), true).ok());  // A copy: over the bound.
    EXPECT_TRUE(fs::exists(root_ / "unpacked" / one)) << "the premount keeps it";
    EXPECT_FALSE(fs::exists(root_ / "unpacked" / two)) << "so the unused one went";
    EXPECT_EQ(MountsUnder(pm), 1u);
    // Kept while actions (one Materialize 50 ms ago) may still end and be
    // followed, then unmounted once none came for the keep time.
    cache->SetDeferralForTest(0.05, 64, 5);  // Quiet after 50 ms.
    cache->SetPremountKeepForTest(2);
    // Not a synchronisation: the elapsed time is what is tested (6 quiet
    // times, less than the keep time).
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(cache->PremountsForTest(), 1u) << "gone after the quiet time, not the keep time";
    EXPECT_EQ(MountsUnder(pm), 1u);
    EXPECT_TRUE(Eventually([&] { return cache->PremountsForTest() == 0 && MountsUnder(pm) == 0; }));
    cache->WaitReleasedForTest();  // Its unpin, after the unmount.
    ASSERT_TRUE(cache->Materialize(two, Dest("c"), false, true).ok());
    EXPECT_FALSE(fs::exists(root_ / "unpacked" / one)) << "unused now, evicted";
    cache->SetDeferralForTest(3600, 64, 3600);
    cache->SetPremountKeepForTest(3600);
    cache->Premount(one);  // Not cached: nothing to mount.
    EXPECT_EQ(cache->PremountsForTest(), 0u);
    const size_t spares = cache->SparesForTest();
    ASSERT_GT(spares, 0u);
    cache->Premount(two);
    ASSERT_EQ(MountsUnder(pm), 1u);
    EXPECT_EQ(cache->SparesForTest(), spares - 1) << "its directory is a spare renamed";
  }
  EXPECT_EQ(MountsUnder(pm), 0u);
  EXPECT_FALSE(MountedAt(Dest("c")));
}

TEST_F(UnpackCacheOverlayTest, TheDestructorUnmountsWhatIsStillMounted) {
  const std::string rev = Revision("d\n");
  auto cache = Cache();
  ASSERT_TRUE(cache->overlays());
  ASSERT_TRUE(cache->Materialize(rev, Dest("a")).ok());
  ASSERT_TRUE(cache->Materialize(rev, Dest("b")).ok());
  ASSERT_TRUE(cache->Release(Dest("b")));
  ASSERT_TRUE(MountedAt(Dest("a")));
  cache.reset();
  EXPECT_FALSE(MountedAt(Dest("a")));
  EXPECT_FALSE(fs::exists(Dest("b")));                          // Its grave too.
  EXPECT_EQ(CountPrefixed(root_ / "unpacked", ".spare-"), 0u);  // And the spares.
}

INSTANTIATE_TEST_SUITE_P(Modes, UnpackCacheTest,
                         ::testing::Values(UnpackCache::Mode::kAuto, UnpackCache::Mode::kCopy),
                         [](const ::testing::TestParamInfo<UnpackCache::Mode>& mode) {
                           return mode.param == UnpackCache::Mode::kAuto ? std::string("Auto")
                                                                         : std::string("Copy");
                         });

}  // namespace
}  // namespace pw::runner::unpack_cache_test
