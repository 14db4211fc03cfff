#include "runner/temp_dir.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace pw::runner::temp_dir_test
