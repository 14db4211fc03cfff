#include "engine/read_cache.h"

#include <gtest/gtest.h>

namespace pw::engine::read_cache_test {
namespace {

TEST(ReadCacheTest, PutThenGetUntilInvalidated) {
  ReadCache c;
  auto miss = c.Get("p", "state");
  EXPECT_FALSE(miss.body);
  c.Put("p", "state", "{}", miss.generation);
  EXPECT_EQ(c.Get("p", "state").body, "{}");
  EXPECT_FALSE(c.Get("q", "state").body) << "per pipeline";
  c.Invalidate("q");
  EXPECT_EQ(c.Get("p", "state").body, "{}") << "another pipeline's change keeps it";
  c.Invalidate("p");
  EXPECT_FALSE(c.Get("p", "state").body);
}

TEST(ReadCacheTest, AnAnswerComputedBeforeAnInvalidationIsNotStored) {
  ReadCache c;
  c.Invalidate("p");
  auto before = c.Get("p", "k");
  c.Invalidate("p");  // A commit while the answer was computed.
  c.Put("p", "k", "stale", before.generation);
  EXPECT_FALSE(c.Get("p", "k").body);
  auto unseen = c.Get("new", "k");  // Never invalidated yet.
  c.Invalidate("other");
  c.Put("new", "k", "maybe stale", unseen.generation);
  EXPECT_FALSE(c.Get("new", "k").body) << "any change since the Get refuses a new pipeline's Put";
}

TEST(ReadCacheTest, ClearDisableAndBounds) {
  ReadCache c;
  c.Put("p", "a", "1", c.Get("p", "a").generation);
  c.Clear();
  EXPECT_FALSE(c.Get("p", "a").body);
  c.set_enabled(false);
  c.Put("p", "a", "1", c.Get("p", "a").generation);
  EXPECT_FALSE(c.Get("p", "a").body) << "bypassed";
  c.set_enabled(true);
  for (size_t i = 0; i <= ReadCache::kMaxPerPipeline; ++i) {
    c.Put("p", std::to_string(i), "x", c.Get("p", std::to_string(i)).generation);
  }
  EXPECT_LE(c.size(), ReadCache::kMaxPerPipeline);
  EXPECT_TRUE(c.Get("p", std::to_string(ReadCache::kMaxPerPipeline)).body);
}

TEST(ReadCacheTest, APipelinesOldestAnswerGoesFirstAndTheBytesAreBounded) {
  ReadCache c;
  c.Invalidate("p");
  c.Invalidate("q");
  const uint64_t gen = c.Get("p", "x").generation;
  c.Put("q", "state", "{}", c.Get("q", "state").generation);
  for (size_t i = 0; i <= ReadCache::kMaxPerPipeline; ++i) {
    c.Put("p", "GetPipelineExecution " + std::to_string(i), "{\"i\":" + std::to_string(i) + "}",
          gen);
  }
  EXPECT_FALSE(c.Get("p", "GetPipelineExecution 0").body) << "the oldest went";
  for (size_t i = 1; i <= ReadCache::kMaxPerPipeline; ++i) {
    EXPECT_TRUE(c.Get("p", "GetPipelineExecution " + std::to_string(i)).body) << i;
  }
  EXPECT_EQ(c.Get("q", "state").body, "{}") << "another pipeline's answers stay";
  EXPECT_EQ(c.size(), ReadCache::kMaxPerPipeline + 1);
  size_t held = std::string("state{}").size();
  for (size_t i = 1; i <= ReadCache::kMaxPerPipeline; ++i) {
    held += std::string("GetPipelineExecution " + std::to_string(i)).size() +
            std::string("{\"i\":" + std::to_string(i) + "}").size();
  }
  EXPECT_EQ(c.bytes(), held);
  c.Invalidate("p");
  EXPECT_EQ(c.bytes(), std::string("state{}").size());
  EXPECT_EQ(c.size(), 1u);

  // One answer over a sixteenth of the budget is not kept; many big ones
  // never hold more than the budget.
  const uint64_t now = c.Get("p", "big").generation;
  c.Put("p", "big", std::string(ReadCache::kMaxBytes / 16 + 1, 'x'), now);
  EXPECT_FALSE(c.Get("p", "big").body);
  for (int i = 0; i < 64; ++i) {
    const std::string name = "p" + std::to_string(i);
    c.Put(name, "state", std::string(ReadCache::kMaxBytes / 20, 'x'),
          c.Get(name, "state").generation);
    EXPECT_LE(c.bytes(), ReadCache::kMaxBytes) << i;
  }
  EXPECT_TRUE(c.Get("p63", "state").body) << "the newest answer is kept";
}

TEST(StampedReadCacheTest, AnAnswerIsServedOnlyAtTheStampItWasComputedAt) {
  StampedReadCache c;
  EXPECT_FALSE(c.Get("p", "state", 7));
  c.Put("p", "state", 7, "{\"v\":7}");
  c.Put("p", "list", 7, "[7]");
  EXPECT_EQ(c.Get("p", "state", 7), "{\"v\":7}");
  EXPECT_FALSE(c.Get("p", "state", 8)) << "the pipeline changed since";
  EXPECT_FALSE(c.Get("q", "state", 7)) << "per pipeline";
  c.Put("p", "state", 8, "{\"v\":8}");
  EXPECT_EQ(c.Get("p", "state", 8), "{\"v\":8}");
  EXPECT_FALSE(c.Get("p", "list", 7)) << "answers at the old stamp are gone";
  EXPECT_FALSE(c.Get("p", "list", 8)) << "and were never an answer at the new one";
  EXPECT_EQ(c.size(), 1u);
  c.Put("p", "state", 7, "{\"v\":7}");  // A slow reader of the older stamp.
  EXPECT_FALSE(c.Get("p", "state", 8)) << "never served at a stamp it was not computed at";
  c.Clear();
  EXPECT_EQ(c.size(), 0u);
}

TEST(StampedReadCacheTest, Bounded) {
  StampedReadCache c;
  for (size_t i = 0; i <= ReadCache::kMaxPerPipeline; ++i) c.Put("p", std::to_string(i), 1, "x");
  EXPECT_LE(c.size(), ReadCache::kMaxPerPipeline);
  EXPECT_TRUE(c.Get("p", std::to_string(ReadCache::kMaxPerPipeline), 1));
  for (size_t i = 0; i <= ReadCache::kMaxEntries; ++i) c.Put(std::to_string(i), "k", 1, "x");
  EXPECT_LE(c.size(), ReadCache::kMaxEntries);
  for (int i = 0; i < 64; ++i) {
    c.Put("big" + std::to_string(i), "k", 1, std::string(ReadCache::kMaxBytes / 20, 'x'));
    EXPECT_LE(c.bytes(), ReadCache::kMaxBytes) << i;
  }
  EXPECT_TRUE(c.Get("big63", "k", 1));
  c.Put("p", "huge", 1, std::string(ReadCache::kMaxBytes / 16 + 1, 'x'));
  EXPECT_FALSE(c.Get("p", "huge", 1));
}

}  // namespace
}  // namespace pw::engine::read_cache_test
