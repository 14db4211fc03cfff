#include "engine/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "common/thread_name.h"

namespace pw::engine::work_queue_test {
namespace {

TEST(WorkQueueTest, KnowsItsOwnThreads) {
  WorkQueue q(2);
  WorkQueue other(1);
  EXPECT_FALSE(q.OnWorkerThread()) << "the test's thread is none of the queue's";
  std::promise<std::pair<bool, bool>> inside;
  ASSERT_TRUE(q.Enqueue([&] { inside.set_value({q.OnWorkerThread(), other.OnWorkerThread()}); }));
  auto [mine, theirs] = inside.get_future().get();
  EXPECT_TRUE(mine);
  EXPECT_FALSE(theirs) << "another queue's thread";
}

TEST(WorkQueueTest, ItsThreadsAreNamedForTopAndPerf) {
  WorkQueue q(1);
  std::promise<std::string> name;
  ASSERT_TRUE(q.Enqueue([&] { name.set_value(ThisThreadName()); }));
  EXPECT_EQ(name.get_future().get(), "pw-work");
}

TEST(WorkQueueTest, StoppingRefusesNewTasksAndRunsQueuedOnes) {
  WorkQueue q(1);
  EXPECT_FALSE(q.Stopping());
  std::atomic<int> ran{0};
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  ASSERT_TRUE(q.Enqueue([&, gate] {
    gate.wait();
    ++ran;
  }));
  ASSERT_TRUE(q.Enqueue([&] { ++ran; }));
  std::thread stopper([&] { q.Stop(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!q.Stopping() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  const bool stopping = q.Stopping();
  EXPECT_FALSE(q.Enqueue([&] { ran += 100; })) << "refused once stopping";
  release.set_value();
  stopper.join();
  EXPECT_TRUE(stopping) << "Stop() never began";
  EXPECT_EQ(ran.load(), 2) << "both queued tasks ran, the refused one did not";
}

// A periodic loop waiting in WaitStopped (the ticker) is not woken by tasks
// queued and ended: every needless wake-up is a context switch on the CPUs
// the actions' processes run on. Stop still wakes it at once.
TEST(WorkQueueTest, TasksDoNotWakeAThreadWaitingForStop) {
  WorkQueue q(2);
  std::promise<bool> stopped;
  std::thread ticker([&] { stopped.set_value(q.WaitStopped(60)); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (q.StopChecksForTest() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  // EXPECT, not ASSERT, up to the join: the thread must be joined on every path.
  EXPECT_GE(q.StopChecksForTest(), 1) << "the waiter looked before it waits";
  const int before = q.StopChecksForTest();
  std::atomic<int> ran{0};
  for (int i = 0; i < 200; ++i) EXPECT_TRUE(q.Enqueue([&] { ++ran; }));
  EXPECT_TRUE(q.WaitIdle(10));
  EXPECT_EQ(ran.load(), 200);
  // Spurious wake-ups are allowed, a wake-up per task is not (the old
  // NotifyAll when a task ended: 13 here).
  EXPECT_LE(q.StopChecksForTest() - before, 2);
  auto result = stopped.get_future();
  q.Stop();
  EXPECT_EQ(result.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  ticker.join();
  EXPECT_TRUE(result.get());
}

}  // namespace
}  // namespace pw::engine::work_queue_test
