#include "common/ids.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <set>
#include <vector>

namespace pw::ids_test {
namespace {

TEST(Ids, UuidHasVersion4Shape) {
  std::regex re("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(std::regex_match(NewUuid(), re));
}

TEST(Ids, UuidsDiffer) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(NewUuid());
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Ids, HundredThousandNoncesHaveNoRepeats) {
  std::set<std::string> seen;
  for (int i = 0; i < 100000; ++i) seen.insert(RandomHex(32));
  EXPECT_EQ(seen.size(), 100000u);
}

TEST(Ids, RandomHexHasTheRequestedLengthAndEveryDigit) {
  for (int n : {0, 1, 2, 31, 127, 128, 129, 300}) EXPECT_EQ(RandomHex(n).size(), size_t(n));
  std::string s = RandomHex(4096);
  for (char c : std::string("0123456789abcdef")) EXPECT_NE(s.find(c), std::string::npos) << c;
}

// Processes started at the same instant draw different secrets: nothing is
// derived from a seed that two processes could share.
TEST(Ids, ForkedProcessesDrawDifferentSecrets) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::vector<pid_t> kids;
  for (int k = 0; k < 2; ++k) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::string s = RandomHex(64) + "\n";
      ssize_t w = write(fds[1], s.data(), s.size());
      _exit(w == static_cast<ssize_t>(s.size()) ? 0 : 1);
    }
    kids.push_back(pid);
  }
  close(fds[1]);
  for (pid_t p : kids) waitpid(p, nullptr, 0);
  char buf[256] = {};
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  ASSERT_EQ(n, 130);
  EXPECT_NE(std::string(buf, 64), std::string(buf + 65, 64));
}

}  // namespace
}  // namespace pw::ids_test
