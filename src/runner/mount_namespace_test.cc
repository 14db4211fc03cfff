#include "runner/mount_namespace.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "runner/temp_dir.h"

namespace pw::runner::mount_namespace_test {
namespace {

bool Mounted(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" " + path + " ") != std::string::npos) return true;
  }
  return false;
}

// In a child (the call moves the whole process): after EnterOwnMountNamespace
// nothing the child mounts is shared, and the parent does not see it. Exit
// codes: 0 done, 2 not privileged (skip), 3.. a failed check.
TEST(EnterOwnMountNamespace, MountsOfTheProcessStayInIt) {
  Result<ScopedTempDir> tmp = ScopedTempDir::Create("pw-mountns");
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();
  const std::string point = tmp->path();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string why;
    if (!EnterOwnMountNamespace(&why))
      ::_exit(why.find("EPERM") != std::string::npos ||
                      why.find("not permitted") != std::string::npos
                  ? 2
                  : 3);
    if (MountIsShared("/") || MountIsShared(point)) ::_exit(4);
    if (::mount("tmpfs", point.c_str(), "tmpfs", 0, "size=64k") != 0) ::_exit(5);
    if (!Mounted(point)) ::_exit(6);
    if (MountIsShared(point)) ::_exit(7);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 2) GTEST_SKIP() << "not privileged to make a mount namespace";
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_FALSE(Mounted(point)) << "the child's mount reached this namespace";
}

// With threads running it refuses (unshare would move the calling thread only).
TEST(EnterOwnMountNamespace, RefusesOnceThreadsRun) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::thread t([] { ::pause(); });
    t.detach();
    std::string why;
    const bool ok = EnterOwnMountNamespace(&why);
    ::_exit(!ok && why.find("threads") != std::string::npos ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace pw::runner::mount_namespace_test
