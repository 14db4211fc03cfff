#include "runner/spare_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include "runner/temp_dir.h"

namespace pw::runner::spare_files_test {
namespace {

namespace fs = std::filesystem;

size_t Entries(const std::string& dir) {
  std::error_code ec;
  return static_cast<size_t>(
      std::distance(fs::directory_iterator(dir, ec), fs::directory_iterator()));
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

ino_t Inode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

class SpareFilesTest : public ::testing::Test {
 protected:
  SpareFilesTest() : tmp_(*ScopedTempDir::Create("pw-spares")) {}

  ScopedTempDir tmp_;
  const std::string logs_ = tmp_.path() + "/logs";
  const std::string spares_ = logs_ + "/.spare";
};

// None before Replenish; then claims are renames of those very inodes,
// empty, open for appending, with open(2)'s mode; Replenish never goes over
// the count.
TEST_F(SpareFilesTest, ClaimsMoveTheFilesMadeAhead) {
  SpareFiles pool(spares_, 4);
  EXPECT_TRUE(fs::is_directory(spares_));
  EXPECT_EQ(pool.ReadyForTest(), 0u);
  EXPECT_EQ(pool.Claim(logs_ + "/first.log"), -1);  // Nothing ready: the caller opens it.
  EXPECT_FALSE(fs::exists(logs_ + "/first.log"));

  pool.Replenish(3);
  EXPECT_EQ(pool.ReadyForTest(), 3u);
  pool.Replenish(3);
  EXPECT_EQ(pool.ReadyForTest(), 4u);
  ASSERT_EQ(Entries(spares_), 4u);
  std::set<ino_t> made;
  for (const auto& e : fs::directory_iterator(spares_)) made.insert(Inode(e.path()));

  const int fd = pool.Claim(logs_ + "/a.log");
  ASSERT_GE(fd, 0);
  EXPECT_EQ(fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND), O_WRONLY | O_APPEND);
  EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_TRUE(made.count(Inode(logs_ + "/a.log")));
  EXPECT_EQ(fs::file_size(logs_ + "/a.log"), 0u);
  ASSERT_EQ(::write(fd, "hello\n", 6), 6);
  ::close(fd);
  EXPECT_EQ(Read(logs_ + "/a.log"), "hello\n");
  const mode_t umask_now = ::umask(0);
  ::umask(umask_now);
  EXPECT_EQ(fs::status(logs_ + "/a.log").permissions() & fs::perms::all,
            static_cast<fs::perms>(0644 & ~umask_now));
  EXPECT_EQ(Entries(spares_), 3u);
  EXPECT_EQ(pool.ReadyForTest(), 3u);
  pool.Replenish(2);
  EXPECT_EQ(pool.ReadyForTest(), 4u);
}

// A claim never replaces an existing file: the spare stays for the next call,
// and the caller's own open appends to what is there, as it always did.
TEST_F(SpareFilesTest, AClaimNeverReplacesAFileAndAFailedRenameLeavesNothing) {
  SpareFiles pool(spares_, 4);
  pool.Replenish(4);
  std::ofstream(logs_ + "/kept.log") << "already here\n";
  EXPECT_EQ(pool.Claim(logs_ + "/kept.log"), -1);
  EXPECT_EQ(Read(logs_ + "/kept.log"), "already here\n");
  EXPECT_EQ(pool.ReadyForTest(), 4u);
  // A directory that does not exist: the spare is dropped, nothing appears.
  EXPECT_EQ(pool.Claim(logs_ + "/missing/y.log"), -1);
  EXPECT_FALSE(fs::exists(logs_ + "/missing"));
  EXPECT_EQ(pool.ReadyForTest(), 3u);
  EXPECT_EQ(Entries(spares_), 3u);
}

// The destructor removes the spares not handed out; a new pool removes what
// a crashed process left (and leaves everything else alone).
TEST_F(SpareFilesTest, SparesDoNotOutliveThePoolOrACrash) {
  {
    SpareFiles pool(spares_, 4);
    pool.Replenish(4);
    EXPECT_EQ(Entries(spares_), 4u);
    const int fd = pool.Claim(logs_ + "/kept.log");
    ASSERT_GE(fd, 0);
    ::close(fd);
  }
  EXPECT_EQ(Entries(spares_), 0u);
  EXPECT_TRUE(fs::exists(logs_ + "/kept.log"));  // Handed out: not the pool's any more.

  std::ofstream(spares_ + "/spare-0123456789abcdef0123456789abcdef");
  std::ofstream(spares_ + "/notes.txt");
  SpareFiles again(spares_, 4);
  EXPECT_FALSE(fs::exists(spares_ + "/spare-0123456789abcdef0123456789abcdef"));
  EXPECT_TRUE(fs::exists(spares_ + "/notes.txt"));
}

// Spares cannot be made (their directory is gone): claims keep answering -1,
// so the caller's open reports the real problem; once the directory is back,
// Replenish works again.
TEST_F(SpareFilesTest, WhenNoSpareCanBeMadeClaimsFallBackToTheCaller) {
  SpareFiles pool(spares_, 4);
  fs::remove_all(spares_);
  for (int i = 0; i < 3; ++i) {
    pool.Replenish(2);
    EXPECT_EQ(pool.ReadyForTest(), 0u);
    EXPECT_EQ(pool.Claim(logs_ + "/z" + std::to_string(i) + ".log"), -1);
  }
  fs::create_directories(spares_);
  pool.Replenish(2);
  EXPECT_EQ(pool.ReadyForTest(), 2u);
}

}  // namespace
}  // namespace pw::runner::spare_files_test
