#include "runner/temp_dir.h"

#include <gtest/gtest.h>
#include <linux/magic.h>
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

}  // namespace
}  // namespace pw::runner::temp_dir_test
