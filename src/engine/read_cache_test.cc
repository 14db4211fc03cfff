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
}

}  // namespace
}  // namespace pw::engine::read_cache_test
