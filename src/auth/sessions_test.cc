#include "auth/sessions.h"

#include <gtest/gtest.h>

#include <vector>

#include "auth/rate_limiter.h"

namespace pw::auth::sessions_test {
namespace {

class FakeClock final : public Clock {
 public:
  EpochSeconds Now() const override { return now; }
  EpochSeconds now = 1'700'000'000;
};

TEST(SessionStore, IssuesRandomTokensAndFindsTheSession) {
  FakeClock clock;
  SessionStore store(clock);
  Session a = store.Create("AKID1");
  Session b = store.Create("AKID1");
  EXPECT_EQ(a.token.size(), 64u);
  EXPECT_EQ(a.csrf_token.size(), 64u);
  EXPECT_NE(a.token, b.token);
  EXPECT_NE(a.token, a.csrf_token);
  auto found = store.Lookup(a.token);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->access_key_id, "AKID1");
  EXPECT_EQ(found->csrf_token, a.csrf_token);
  EXPECT_FALSE(store.Lookup(a.token.substr(0, 63) + "x").has_value());
  EXPECT_FALSE(store.Lookup("").has_value());
}

TEST(SessionStore, IdleExpiryIsPushedBackByUse) {
  FakeClock clock;
  SessionStore store(clock);
  Session s = store.Create("K");
  clock.now += 3599;
  EXPECT_TRUE(store.Lookup(s.token).has_value());  // Used: idle timer restarts.
  clock.now += 3599;
  EXPECT_TRUE(store.Lookup(s.token).has_value());
  clock.now += 3600;
  EXPECT_FALSE(store.Lookup(s.token).has_value());
  EXPECT_EQ(store.size(), 0u);  // Forgotten once found expired.
}

TEST(SessionStore, AbsoluteExpiryEndsEvenAnActiveSession) {
  FakeClock clock;
  SessionStore store(clock);
  Session s = store.Create("K");
  for (int i = 0; i < 23; ++i) {
    clock.now += 1800;
    ASSERT_TRUE(store.Lookup(s.token).has_value()) << "after " << (i + 1) * 1800 << " s";
  }
  clock.now += 1800;  // 12 h after sign-in.
  EXPECT_FALSE(store.Lookup(s.token).has_value());
}

TEST(SessionStore, SignOutEndsTheSession) {
  FakeClock clock;
  SessionStore store(clock);
  Session s = store.Create("K");
  Session other = store.Create("K");
  EXPECT_TRUE(store.Remove(s.token));
  EXPECT_FALSE(store.Lookup(s.token).has_value());
  EXPECT_FALSE(store.Remove(s.token));
  EXPECT_TRUE(store.Lookup(other.token).has_value());
}

TEST(SessionStore, BoundedEvictingTheOldest) {
  FakeClock clock;
  SessionStore store(clock, {.max_sessions = 3});
  Session first = store.Create("K");
  clock.now += 1;
  Session second = store.Create("K");
  clock.now += 1;
  Session third = store.Create("K");
  clock.now += 1;
  Session fourth = store.Create("K");
  EXPECT_EQ(store.size(), 3u);
  EXPECT_FALSE(store.Lookup(first.token).has_value());
  EXPECT_TRUE(store.Lookup(second.token).has_value());
  EXPECT_TRUE(store.Lookup(fourth.token).has_value());
}

// Before: any key's sign-ins evicted the oldest sessions of all keys, so one
// key could sign every other user out by signing in 10,000 times.
TEST(SessionStore, OneKeysSignInsEvictOnlyItsOwnOrTheBiggestHoldersSessions) {
  FakeClock clock;
  SessionStore store(clock, {.max_sessions = 6, .max_sessions_per_key = 3});
  Session victim = store.Create("VICTIM");
  clock.now += 1;
  std::vector<Session> mine;
  for (int i = 0; i < 10; ++i) {
    clock.now += 1;
    mine.push_back(store.Create("ATTACKER"));
  }
  EXPECT_TRUE(store.Lookup(victim.token).has_value()) << "another key's sign-ins evicted it";
  EXPECT_FALSE(store.Lookup(mine[0].token).has_value());
  EXPECT_TRUE(store.Lookup(mine[9].token).has_value());
  EXPECT_EQ(store.size(), 4u);
  // At the global cap, the key holding the most loses its oldest.
  Session b1 = store.Create("B");
  Session b2 = store.Create("B");
  clock.now += 1;
  Session c1 = store.Create("C");
  EXPECT_EQ(store.size(), 6u);
  EXPECT_TRUE(store.Lookup(victim.token).has_value());
  EXPECT_TRUE(store.Lookup(b1.token).has_value());
  EXPECT_TRUE(store.Lookup(c1.token).has_value());
  EXPECT_FALSE(store.Lookup(mine[7].token).has_value());
  EXPECT_TRUE(store.Lookup(mine[9].token).has_value());
}

TEST(RateLimiter, LimitsPerKeyPerWindow) {
  FakeClock clock;
  RateLimiter limiter(clock, 3, 60);
  EXPECT_TRUE(limiter.Allow("10.0.0.1"));
  EXPECT_TRUE(limiter.Allow("10.0.0.1"));
  EXPECT_TRUE(limiter.Allow("10.0.0.1"));
  EXPECT_FALSE(limiter.Allow("10.0.0.1"));
  EXPECT_DOUBLE_EQ(limiter.RetryAfter("10.0.0.1"), 60);
  EXPECT_TRUE(limiter.Allow("10.0.0.2"));  // Another address has its own budget.
  clock.now += 59;
  EXPECT_FALSE(limiter.Allow("10.0.0.1"));
  clock.now += 1;
  EXPECT_TRUE(limiter.Allow("10.0.0.1"));
}

TEST(RateLimiter, ForgetsTheStalestKeysWhenFull) {
  FakeClock clock;
  RateLimiter limiter(clock, 1, 60, /*max_keys=*/2);
  EXPECT_TRUE(limiter.Allow("a"));
  clock.now += 1;
  EXPECT_TRUE(limiter.Allow("b"));
  clock.now += 1;
  EXPECT_TRUE(limiter.Allow("c"));  // Forgets "a".
  EXPECT_FALSE(limiter.Allow("b"));
  EXPECT_FALSE(limiter.Allow("c"));
}

}  // namespace
}  // namespace pw::auth::sessions_test
