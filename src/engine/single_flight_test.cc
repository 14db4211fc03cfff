#include "engine/single_flight.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine/read_cache.h"

namespace pw::engine::single_flight_test {
namespace {

using Answer = SingleFlight::Answer;

// Polls `done` until it is true or 10 s pass.
template <typename F>
bool Eventually(F done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// A computation that blocks until Release(), counting how often it ran.
struct Gate {
  std::promise<void> open;
  std::shared_future<void> opened = open.get_future().share();
  std::atomic<int> runs{0};
  SingleFlight::Compute Blocking(Result<Answer> answer) {
    return [this, answer]() -> Result<Answer> {
      ++runs;
      opened.wait();
      return answer;
    };
  }
  // The same for ReadCache::GetOrCompute, whose computations give the body.
  std::function<Result<std::string>()> BlockingBody(std::string body) {
    return [this, body]() -> Result<std::string> {
      ++runs;
      opened.wait();
      return body;
    };
  }
  void Release() { open.set_value(); }
};

TEST(SingleFlightTest, CallersAtTheSameVersionShareOneComputation) {
  SingleFlight f;
  Gate gate;
  std::vector<std::future<Result<Answer>>> calls;
  calls.push_back(std::async(std::launch::async, [&] {
    return f.Do("p\nstate", 7, gate.Blocking(Answer{"{\"v\":7}", true}));
  }));
  ASSERT_TRUE(Eventually([&] { return gate.runs == 1; }));
  std::atomic<int> own{0};
  for (int i = 0; i < 3; ++i) {
    calls.push_back(std::async(std::launch::async, [&] {
      return f.Do("p\nstate", 7, [&]() -> Result<Answer> {
        ++own;
        return Answer{"mine", true};
      });
    }));
  }
  ASSERT_TRUE(Eventually([&] { return f.waiting() == 3; }));
  EXPECT_EQ(f.in_flight(), 1u);
  gate.Release();
  for (auto& c : calls) {
    Result<Answer> a = c.get();
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->body, "{\"v\":7}");
  }
  EXPECT_EQ(gate.runs, 1);
  EXPECT_EQ(own, 0) << "the waiters took the first caller's answer";
  EXPECT_EQ(f.shared(), 3u);
  EXPECT_EQ(f.in_flight(), 0u);
  EXPECT_EQ(f.waiting(), 0u);
}

TEST(SingleFlightTest, ACallerAtANewerVersionOrAnotherKeyComputesItsOwn) {
  SingleFlight f;
  Gate gate;
  auto old = std::async(std::launch::async, [&] {
    return f.Do("p\nstate", 7, gate.Blocking(Answer{"old", true}));
  });
  ASSERT_TRUE(Eventually([&] { return gate.runs == 1; }));
  // Both run while the first is still blocked: neither waits for it.
  Result<Answer> newer = f.Do("p\nstate", 8, [] { return Result<Answer>(Answer{"new", true}); });
  Result<Answer> other = f.Do("q\nstate", 7, [] { return Result<Answer>(Answer{"q", true}); });
  ASSERT_TRUE(newer.ok());
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(newer->body, "new");
  EXPECT_EQ(other->body, "q");
  gate.Release();
  EXPECT_EQ(old.get()->body, "old");
  EXPECT_EQ(f.shared(), 0u);
  EXPECT_EQ(f.in_flight(), 0u);
}

// A failed answer, one that may not be shared, and an exception: the waiters
// compute their own.
TEST(SingleFlightTest, WaitersComputeTheirOwnWhenTheAnswerCannotBeShared) {
  for (int how = 0; how < 3; ++how) {
    SingleFlight f;
    std::promise<void> open;
    std::shared_future<void> opened = open.get_future().share();
    std::atomic<int> started{0};
    auto first = std::async(std::launch::async, [&]() -> Result<Answer> {
      return f.Do("p\nk", 1, [&]() -> Result<Answer> {
        ++started;
        opened.wait();
        if (how == 0) return Unavailable("database busy");
        if (how == 1) return Answer{"read jobs", false};
        throw std::runtime_error("boom");
      });
    });
    ASSERT_TRUE(Eventually([&] { return started == 1; }));
    std::atomic<int> own{0};
    auto waiter = std::async(std::launch::async, [&] {
      return f.Do("p\nk", 1, [&]() -> Result<Answer> {
        ++own;
        return Answer{"own", true};
      });
    });
    ASSERT_TRUE(Eventually([&] { return f.waiting() == 1; }));
    open.set_value();
    if (how == 2) {
      EXPECT_THROW((void)first.get(), std::runtime_error);
    } else {
      Result<Answer> a = first.get();
      EXPECT_EQ(a.ok(), how == 1) << how;
    }
    Result<Answer> w = waiter.get();
    ASSERT_TRUE(w.ok()) << how;
    EXPECT_EQ(w->body, "own") << how;
    EXPECT_EQ(own, 1) << how;
    EXPECT_EQ(f.shared(), 0u) << how;
    EXPECT_EQ(f.in_flight(), 0u) << how;
  }
}

TEST(ReadCacheTest, MissesAtOneGenerationShareOneComputationAndItIsKept) {
  ReadCache c;
  c.Invalidate("p");
  Gate gate;
  auto first = std::async(std::launch::async, [&] {
    return c.GetOrCompute("p", "state", gate.BlockingBody("{\"at\":1}"));
  });
  ASSERT_TRUE(Eventually([&] { return gate.runs == 1; }));
  std::atomic<int> own{0};
  auto second = std::async(std::launch::async, [&] {
    return c.GetOrCompute("p", "state", [&]() -> Result<std::string> {
      ++own;
      return std::string("own");
    });
  });
  ASSERT_TRUE(Eventually([&] { return c.flights().waiting() == 1; }));
  gate.Release();
  Result<CacheRead> a = first.get();
  Result<CacheRead> b = second.get();
  EXPECT_EQ(a->body, "{\"at\":1}");
  EXPECT_STREQ(a->result, "miss");
  EXPECT_EQ(b->body, "{\"at\":1}");
  EXPECT_STREQ(b->result, "shared");
  EXPECT_EQ(own, 0);
  EXPECT_EQ(c.flights().shared(), 1u);
  EXPECT_EQ(c.Get("p", "state").body, "{\"at\":1}") << "kept for the next reads";
  c.Invalidate("p");
  auto after = c.GetOrCompute("p", "state", [] { return Result<std::string>("{\"at\":2}"); });
  EXPECT_EQ(after->body, "{\"at\":2}") << "a new generation computes again";
  EXPECT_STREQ(after->result, "miss");
  EXPECT_STREQ(c.GetOrCompute("p", "state", [] { return Result<std::string>("x"); })->result,
               "hit");
}

TEST(ReadCacheTest, ABypassedCacheSharesNothing) {
  ReadCache c;
  c.set_enabled(false);
  Gate gate;
  auto first = std::async(std::launch::async,
                          [&] { return c.GetOrCompute("p", "state", gate.BlockingBody("first")); });
  ASSERT_TRUE(Eventually([&] { return gate.runs == 1; }));
  // Another server may have changed the pipeline since the first began: this
  // caller computes its own while the first is still blocked.
  auto second = c.GetOrCompute("p", "state", [] { return Result<std::string>("second"); });
  EXPECT_EQ(second->body, "second");
  gate.Release();
  EXPECT_EQ(first.get()->body, "first");
  EXPECT_EQ(c.flights().shared(), 0u);
  EXPECT_FALSE(c.Get("p", "state").body);
}

TEST(StampedReadCacheTest, GetOrComputeSaysHowEachAnswerCame) {
  StampedReadCache c;
  auto miss = c.GetOrCompute("p", "state", 5, [] { return Result<Answer>(Answer{"a", true}); });
  ASSERT_TRUE(miss.ok());
  EXPECT_STREQ(miss->result, "miss");
  auto hit = c.GetOrCompute("p", "state", 5, [] { return Result<Answer>(Answer{"b", true}); });
  EXPECT_STREQ(hit->result, "hit");
  EXPECT_EQ(hit->body, "a");
  auto jobs = c.GetOrCompute("p", "state", 6, [] { return Result<Answer>(Answer{"j", false}); });
  EXPECT_STREQ(jobs->result, "uncacheable");
  EXPECT_FALSE(c.Get("p", "state", 6)) << "not kept";
  // Two callers at one stamp: the second waits for the first's answer.
  Gate gate;
  auto first = std::async(std::launch::async, [&] {
    return c.GetOrCompute("p", "state", 7, gate.Blocking(Answer{"seven", true}));
  });
  ASSERT_TRUE(Eventually([&] { return gate.runs == 1; }));
  auto second = std::async(std::launch::async, [&] {
    return c.GetOrCompute("p", "state", 7, [] { return Result<Answer>(Answer{"own", true}); });
  });
  ASSERT_TRUE(Eventually([&] { return c.flights().waiting() == 1; }));
  gate.Release();
  Result<CacheRead> f = first.get();
  Result<CacheRead> s = second.get();
  EXPECT_STREQ(f->result, "miss");
  EXPECT_STREQ(s->result, "shared");
  EXPECT_EQ(s->body, "seven");
}

}  // namespace
}  // namespace pw::engine::single_flight_test
