#include "runner/orphans.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <future>
#include <thread>

#include "runner/process_launcher.h"

namespace pw::runner::orphans_test {
namespace {

TEST(Orphans, KillsOnlyTheNamedActionsGroups) {
  auto launcher = NewPosixProcessLauncher();
  std::promise<ProcessExit> named_done, other_done;
  auto spec = [](const std::string& id) {
    ProcessSpec s;
    s.argv = {"/bin/sh", "-c", "sleep 30 & sleep 30"};
    s.env = {"PATH=/usr/bin:/bin", "PIPEWRIGHT_ACTION_EXECUTION_ID=" + id};
    return s;
  };
  auto named = launcher->Start(spec("run-a"),
                               [&](ProcessId, const ProcessExit& x) { named_done.set_value(x); });
  auto other = launcher->Start(spec("run-b"),
                               [&](ProcessId, const ProcessExit& x) { other_done.set_value(x); });
  ASSERT_TRUE(named.ok() && other.ok());
  // Wait (with a deadline) until the shells have exec'd and show the variable.
  int killed = 0;
  for (int i = 0; i < 200 && killed == 0; ++i) {
    killed = KillActionProcesses({"run-a"});
    if (killed == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(killed, 1);
  auto f = named_done.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(f.get().signal, SIGKILL);
  auto g = other_done.get_future();
  EXPECT_EQ(g.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout)
      << "the other action's group must not be touched";
  launcher->Cancel(*other);
  EXPECT_EQ(g.wait_for(std::chrono::seconds(10)), std::future_status::ready);
}

TEST(Orphans, NothingToKill) { EXPECT_EQ(KillActionProcesses({"no-such-run"}), 0); }

}  // namespace
}  // namespace pw::runner::orphans_test
