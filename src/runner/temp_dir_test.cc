#include "runner/temp_dir.h"

#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>

#include <filesystem>
#include <fstream>
#include <utility>

namespace pw::runner::temp_dir_test {
namespace {

namespace fs = std::filesystem;

TEST(ScopedTempDir, CreatesPrivateDirectoryAndRemovesItRecursively) {
  std::string path;
  {
    Result<ScopedTempDir> tmp = ScopedTempDir::Create("pw-test");
    ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();
    path = tmp->path();
    EXPECT_TRUE(fs::is_directory(path));
    EXPECT_EQ(fs::status(path).permissions() & fs::perms::all, fs::perms::owner_all);
    fs::create_directories(path + "/a/b");
    std::ofstream(path + "/a/b/file") << "x";
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(ScopedTempDir, MoveTransfersOwnership) {
  ScopedTempDir a = *ScopedTempDir::Create();
  const std::string path = a.path();
  ScopedTempDir b = std::move(a);
  EXPECT_TRUE(a.path().empty());  // NOLINT(bugprone-use-after-move): checks moved-from state.
  EXPECT_EQ(b.path(), path);
  EXPECT_TRUE(fs::is_directory(path));
}

TEST(ScopedTempDir, RejectsSlashInPrefix) {
  EXPECT_EQ(ScopedTempDir::Create("a/b").status().code(), StatusCode::kInvalidArgument);
}

// The data directory's work/ and unpacked/ get ext4's "top directory" flag
// (chattr +T): their subdirectories are spread over the block groups (see
// SpreadNewDirectories). On ext4 it must hold; elsewhere it is refused with a
// reason and nothing claims it holds.
TEST(SpreadNewDirectories, SetsExt4sTopDirectoryFlagOrSaysWhyNot) {
  Result<ScopedTempDir> tmp = ScopedTempDir::Create("pw-spread");
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();
  struct statfs sfs {};
  ASSERT_EQ(::statfs(tmp->path().c_str(), &sfs), 0);
  EXPECT_FALSE(SpreadsNewDirectories(tmp->path()));
  std::string why;
  const bool ok = SpreadNewDirectories(tmp->path(), &why);
  if (sfs.f_type == EXT4_SUPER_MAGIC) {
    EXPECT_TRUE(ok) << why;
    EXPECT_TRUE(SpreadsNewDirectories(tmp->path()));
    // Idempotent, and subdirectories do not inherit it.
    EXPECT_TRUE(SpreadNewDirectories(tmp->path(), &why)) << why;
    fs::create_directory(tmp->path() + "/sub");
    EXPECT_FALSE(SpreadsNewDirectories(tmp->path() + "/sub"));
  } else {
    EXPECT_EQ(ok, SpreadsNewDirectories(tmp->path()));
    if (!ok) {
      EXPECT_FALSE(why.empty());
    }
  }
  EXPECT_FALSE(SpreadNewDirectories(tmp->path() + "/missing", &why));
  EXPECT_NE(why.find("missing"), std::string::npos) << why;
}

// What /sys says of the file system's journal, read as the engine reads it.
TEST(OnExt4WithoutJournal, FollowsTheFileSystemsJournalTask) {
  Result<ScopedTempDir> tmp = ScopedTempDir::Create("pw-journal");
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();
  struct statfs sfs {};
  ASSERT_EQ(::statfs(tmp->path().c_str(), &sfs), 0);
  struct stat st {};
  ASSERT_EQ(::stat(tmp->path().c_str(), &st), 0);
  if (sfs.f_type != EXT4_SUPER_MAGIC) {
    EXPECT_FALSE(OnExt4WithoutJournal(tmp->path()));
  } else {
    const fs::path device = fs::canonical("/sys/dev/block/" + std::to_string(major(st.st_dev)) +
                                          ":" + std::to_string(minor(st.st_dev)));
    std::ifstream in("/sys/fs/ext4/" + device.filename().string() + "/journal_task");
    std::string task;
    if (!std::getline(in, task)) GTEST_SKIP() << "no journal_task in /sys (older kernel)";
    EXPECT_EQ(OnExt4WithoutJournal(tmp->path()), task == "<none>") << task;
  }
  EXPECT_FALSE(OnExt4WithoutJournal("/proc"));
  EXPECT_FALSE(OnExt4WithoutJournal(tmp->path() + "/missing"));
}

}  // namespace
}  // namespace pw::runner::temp_dir_test
