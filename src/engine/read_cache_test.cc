#include "engine/read_cache.h"

#include <gtest/gtest.h>

namespace pw::engine {
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

}  // namespace
}  // namespace pw::engine
