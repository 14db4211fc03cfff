#include "server/data_dir_lock.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <string>

#include "runner/temp_dir.h"

namespace pw::server {
namespace {

TEST(DataDirLockTest, OneHolderAtATimeAndTheNextOneIsToldWho) {
  auto tmp = runner::ScopedTempDir::Create("data-dir-lock");
  ASSERT_TRUE(tmp.ok());
  std::optional<DataDirLock> first;
  {
    auto lock = LockDataDir(tmp->path());
    ASSERT_TRUE(lock.ok()) << lock.status().message();
    first.emplace(*std::move(lock));
  }
  // flock locks belong to the open file description: a second open in the
  // same process conflicts as another server's would.
  auto second = LockDataDir(tmp->path());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(
      second.status().message().find("another server is using the data directory " + tmp->path()),
      std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().message().find("pid " + std::to_string(getpid())), std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().message().find("--data-dir"), std::string::npos);
  // Released with its holder, then free for the next server.
  first.reset();
  EXPECT_TRUE(LockDataDir(tmp->path()).ok());
}

TEST(DataDirLockTest, AnUnreadableDirectoryIsAnErrorNotALock) {
  auto lock = LockDataDir("/nonexistent-pipewright-dir/sub");
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), StatusCode::kInternal);
  EXPECT_NE(lock.status().message().find("server.lock"), std::string::npos);
}

}  // namespace
}  // namespace pw::server
