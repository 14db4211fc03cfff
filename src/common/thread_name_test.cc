#include "common/thread_name.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

namespace pw::thread_name_test {
namespace {

// What the kernel shows for the calling thread.
std::string CommOfThisThread() {
  std::ifstream f("/proc/self/task/" + std::to_string(::syscall(SYS_gettid)) + "/comm");
  std::string name;
  std::getline(f, name);
  return name;
}

TEST(ThreadNameTest, NamesOnlyTheCallingThreadAsTheKernelShowsIt) {
  const std::string before = ThisThreadName();
  std::string inside, comm;
  std::thread t([&] {
    NameThisThread("pw-test");
    inside = ThisThreadName();
    comm = CommOfThisThread();
  });
  t.join();
  EXPECT_EQ(inside, "pw-test");
  EXPECT_EQ(comm, "pw-test");
  EXPECT_EQ(ThisThreadName(), before) << "another thread's name changed this one's";
}

TEST(ThreadNameTest, ALongNameIsCutToFifteenBytesInsteadOfRefused) {
  std::string inside;
  std::thread t([&] {
    NameThisThread("pw-a-name-much-longer-than-the-kernel-keeps");
    inside = ThisThreadName();
  });
  t.join();
  EXPECT_EQ(inside, "pw-a-name-much-");
}

}  // namespace
}  // namespace pw::thread_name_test
