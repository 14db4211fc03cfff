#include "http/fair_scheduler.h"

#include <gtest/gtest.h>

#include <deque>
#include <stdexcept>
#include <string>
#include <vector>

namespace pw::http::fair_scheduler_test {
namespace {

// The pool is a queue the test runs by hand: RunOne runs the oldest task handed to it.
class Harness {
 public:
  explicit Harness(size_t slots)
      : sched(slots, [this](FairScheduler::Task t) { pool.push_back(std::move(t)); }) {}
  void Post(const std::string& client, const std::string& name) {
    sched.Post(client, [this, name] { ran.push_back(name); });
  }
  void RunOne() {
    ASSERT_FALSE(pool.empty());
    FairScheduler::Task t = std::move(pool.front());
    pool.pop_front();
    t();
  }
  void RunAll() {
    while (!pool.empty()) RunOne();
  }

  std::deque<FairScheduler::Task> pool;
  std::vector<std::string> ran;
  FairScheduler sched;
};

TEST(FairScheduler, AnotherClientsTaskGoesBeforeOneClientsBacklog) {
  Harness h(1);
  for (const char* n : {"a1", "a2", "a3", "a4"}) h.Post("A", n);
  h.Post("B", "b1");
  h.Post("C", "c1");
  EXPECT_EQ(h.pool.size(), 1u);  // One slot: a1 runs, the rest wait.
  EXPECT_EQ(h.sched.Waiting(), 5u);
  h.RunAll();
  // First come, first served would run b1 fifth and c1 last.
  EXPECT_EQ(h.ran, (std::vector<std::string>{"a1", "b1", "c1", "a2", "a3", "a4"}));
  EXPECT_EQ(h.sched.Waiting(), 0u);
}

TEST(FairScheduler, ClientsTakeTurnsWhileAllHaveBacklogs) {
  Harness h(1);
  for (const char* n : {"a1", "a2", "a3"}) h.Post("A", n);
  for (const char* n : {"b1", "b2", "b3"}) h.Post("B", n);
  h.RunAll();
  EXPECT_EQ(h.ran, (std::vector<std::string>{"a1", "b1", "a2", "b2", "a3", "b3"}));
}

TEST(FairScheduler, NoMoreThanItsSlotsRunAtOnce) {
  Harness h(2);
  h.Post("A", "a0");
  h.Post("B", "b0");
  for (int i = 1; i < 5; ++i) h.Post("A", "a" + std::to_string(i));
  EXPECT_EQ(h.pool.size(), 2u);
  EXPECT_EQ(h.sched.Waiting(), 4u);
  h.RunOne();  // A slot is free again: the next one is handed on.
  EXPECT_EQ(h.pool.size(), 2u);
  EXPECT_EQ(h.sched.Waiting(), 3u);
  h.RunAll();
  // A client's own tasks keep their order.
  EXPECT_EQ(h.ran, (std::vector<std::string>{"a0", "b0", "a1", "a2", "a3", "a4"}));
}

// One client's slow requests leave a quarter of the slots to the others.
TEST(FairScheduler, OneClientNeverHoldsEverySlot) {
  Harness h(8);
  for (int i = 0; i < 10; ++i) h.Post("A", "a" + std::to_string(i));
  EXPECT_EQ(h.pool.size(), 6u);  // 8 - 8 / 4.
  EXPECT_EQ(h.sched.Waiting(), 4u);
  h.Post("B", "b0");
  h.Post("C", "c0");
  EXPECT_EQ(h.pool.size(), 8u);  // Handed on at once, beside A's six.
  EXPECT_EQ(h.sched.Waiting(), 4u);
  Harness one(1);
  one.Post("A", "a0");
  EXPECT_EQ(one.pool.size(), 1u);  // A single slot is all of one client's.
}

TEST(FairScheduler, ATaskThatThrowsGivesItsSlotBack) {
  Harness h(1);
  h.sched.Post("A", [] { throw std::runtime_error("boom"); });
  h.Post("B", "b1");
  EXPECT_EQ(h.pool.size(), 1u);
  EXPECT_THROW(h.RunOne(), std::runtime_error);
  ASSERT_EQ(h.pool.size(), 1u);  // b1 was handed on as the slot came back.
  h.RunOne();
  EXPECT_EQ(h.ran, (std::vector<std::string>{"b1"}));
}

}  // namespace
}  // namespace pw::http::fair_scheduler_test
