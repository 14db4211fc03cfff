#include "runner/mount_namespace.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

// A thread enters an action's namespace, mounts there, pins the mount and
// leaves: the process's namespace never shows the mount, the pinned path
// does until the object goes, and the thread's working directory is back.
TEST(ActionMountNamespace, MountsStayInTheActionsNamespaceAndThePinSeesThem) {
  Result<ScopedTempDir> tmp = ScopedTempDir::Create("pw-actionns");
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();
  const std::string point = tmp->path();
  char before[4096];
  ASSERT_NE(::getcwd(before, sizeof before), nullptr);
  std::string pinned;
  bool skipped = false;
  // On a thread of its own, as the engine's workers do it (the test's main
  // thread stays where it is whatever happens).
  std::thread worker([&] {
    auto ns = ActionMountNamespace::Enter();
    if (!ns.ok()) {
      skipped = true;
      return;
    }
    if (::mount("tmpfs", point.c_str(), "tmpfs", 0, "size=64k") != 0) {
      ADD_FAILURE() << "mount: " << std::strerror(errno);
      (*ns)->Leave();
      return;
    }
    std::ofstream(point + "/inside.txt") << "inside\n";
    auto pin = (*ns)->Pin(point);
    // A directory that cannot be opened is an error, not its own path (read
    // from the server's namespace, that would be the empty mount point).
    auto missing = (*ns)->Pin(point + "/missing");
    (*ns)->Leave();
    ASSERT_TRUE(pin.ok()) << pin.status().message();
    pinned = *pin;
    EXPECT_FALSE(missing.ok());
    char after[4096];
    EXPECT_NE(::getcwd(after, sizeof after), nullptr);
    EXPECT_STREQ(after, before);
    // Back home: the directory is the plain one, the pin still the mount.
    EXPECT_FALSE(Mounted(point));
    EXPECT_FALSE(std::ifstream(point + "/inside.txt").good());
    std::string line;
    std::getline(std::ifstream(pinned + "/inside.txt"), line);
    EXPECT_EQ(line, "inside");
    // Another thread reads it through the pin too.
    std::thread([&] {
      std::string other;
      std::getline(std::ifstream(pinned + "/inside.txt"), other);
      EXPECT_EQ(other, "inside");
    }).join();
    ns->reset();
    EXPECT_FALSE(std::ifstream(pinned + "/inside.txt").good()) << "the pin outlived the namespace";
  });
  worker.join();
  if (skipped) GTEST_SKIP() << "not privileged to make a mount namespace";
  EXPECT_FALSE(Mounted(point));
  EXPECT_NE(pinned.find("/proc/self/fd/"), std::string::npos) << pinned;
}

}  // namespace
}  // namespace pw::runner::mount_namespace_test
