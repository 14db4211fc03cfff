#include "runner/unpack_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runner/artifact_store.h"
#include "runner/temp_dir.h"

namespace pw::runner {
namespace {

namespace fs = std::filesystem;

void WriteFile(const fs::path& path, const std::string& content, bool executable = false) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
  fs::permissions(path, executable ? fs::perms(0755) : fs::perms(0644));
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

mode_t Mode(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class UnpackCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
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

TEST_F(UnpackCacheTest, UnpacksOnceAndGivesEachActionTheSameTree) {
  const std::string rev = Revision("one\n");
  UnpackCache cache(store_.get(), (root_ / "unpacked").string());
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

TEST_F(UnpackCacheTest, AnActionWritingIntoItsInputChangesNeitherTheCacheNorTheNextInput) {
  const std::string rev = Revision("original\n");
  UnpackCache cache(store_.get(), (root_ / "unpacked").string());
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
  // The cached copy is read-only and distinct from every action's file.
  const fs::path cached = root_ / "unpacked" / rev / "app" / "version.txt";
  EXPECT_EQ(ReadFile(cached), "original\n");
  EXPECT_EQ(Mode(cached), 0444u);
  struct stat a {
  }, c{};
  ASSERT_EQ(::stat(file.c_str(), &a), 0);
  ASSERT_EQ(::stat(cached.c_str(), &c), 0);
  EXPECT_NE(a.st_ino, c.st_ino);
}

TEST_F(UnpackCacheTest, KeepsAtMostMaxEntriesRemovingTheLeastRecentlyUsed) {
  const std::string r1 = Revision("1\n"), r2 = Revision("2\n"), r3 = Revision("3\n");
  UnpackCache cache(store_.get(), (root_ / "unpacked").string(), /*max_entries=*/2);
  ASSERT_TRUE(cache.Materialize(r1, Dest("1")).ok());
  ASSERT_TRUE(cache.Materialize(r2, Dest("2")).ok());
  ASSERT_TRUE(cache.Materialize(r1, Dest("1b")).ok());  // r1 is now more recent than r2.
  ASSERT_TRUE(cache.Materialize(r3, Dest("3")).ok());
  EXPECT_EQ(cache.EntriesForTest(), 2u);
  EXPECT_TRUE(fs::exists(root_ / "unpacked" / r1));
  EXPECT_FALSE(fs::exists(root_ / "unpacked" / r2));
  EXPECT_TRUE(fs::exists(root_ / "unpacked" / r3));
  // Nothing but the entries is left behind (no temporary or evicted trees).
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(root_ / "unpacked")) ++n;
  EXPECT_EQ(n, 2u);
  // An evicted revision is unpacked again when asked for.
  ASSERT_TRUE(cache.Materialize(r2, Dest("2b")).ok());
  EXPECT_EQ(ReadFile(fs::path(Dest("2b")) / "app" / "version.txt"), "2\n");
  EXPECT_EQ(cache.UnpacksForTest(), 4);
}

TEST_F(UnpackCacheTest, BoundedInBytes) {
  const std::string r1 = Revision(std::string(4000, 'a')), r2 = Revision(std::string(4000, 'b'));
  UnpackCache cache(store_.get(), (root_ / "unpacked").string(), 16, /*max_bytes=*/6000);
  ASSERT_TRUE(cache.Materialize(r1, Dest("1")).ok());
  ASSERT_TRUE(cache.Materialize(r2, Dest("2")).ok());
  EXPECT_EQ(cache.EntriesForTest(), 1u);
  EXPECT_FALSE(fs::exists(root_ / "unpacked" / r1));
}

TEST_F(UnpackCacheTest, ANewCacheRemovesWhatAPreviousProcessLeft) {
  const std::string rev = Revision("x\n");
  {
    UnpackCache cache(store_.get(), (root_ / "unpacked").string());
    ASSERT_TRUE(cache.Materialize(rev, Dest("a")).ok());
  }
  ASSERT_TRUE(fs::exists(root_ / "unpacked" / rev));
  fs::create_directories(root_ / "unpacked" / ".tmp-stale" / "d");
  UnpackCache again(store_.get(), (root_ / "unpacked").string());
  EXPECT_TRUE(fs::is_empty(root_ / "unpacked"));
  ASSERT_TRUE(again.Materialize(rev, Dest("b")).ok());
  EXPECT_EQ(ReadFile(fs::path(Dest("b")) / "app" / "version.txt"), "x\n");
}

TEST_F(UnpackCacheTest, ErrorsAreExtractsAndNothingIsCached) {
  UnpackCache cache(store_.get(), (root_ / "unpacked").string());
  EXPECT_EQ(cache.Materialize("nope", Dest("a")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.Materialize(std::string(64, 'a'), Dest("a")).code(), StatusCode::kNotFound);
  EXPECT_EQ(cache.EntriesForTest(), 0u);
  EXPECT_TRUE(fs::is_empty(root_ / "unpacked"));
}

TEST_F(UnpackCacheTest, ConcurrentActionsOfAStageUnpackOnce) {
  const std::string rev = Revision("par\n");
  UnpackCache cache(store_.get(), (root_ / "unpacked").string());
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

}  // namespace
}  // namespace pw::runner
