#pragma once

// RateLimiter: at most `limit` events per `window_seconds` per key (a client
// address), in fixed windows. Slows password guessing at sign-in. Remembers
// at most `max_keys` keys (the stalest are forgotten first). Thread-safe.
//
//   RateLimiter limiter(clock, 10, 60);
//   if (!limiter.Allow(req.peer)) return TooManyRequests();

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"

namespace pw::auth {

class RateLimiter {
 public:
  // `clock` must outlive the limiter.
  RateLimiter(const Clock& clock, int limit, double window_seconds, size_t max_keys = 10000);
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Counts one event for `key`; false when `key` already had `limit` events
  // in the current window (the refused event is not counted).
  bool Allow(std::string_view key) EXCLUDES(mu_);

  // Seconds until `key` may try again (0 when it may now).
  double RetryAfter(std::string_view key) const EXCLUDES(mu_);

 private:
  struct Window {
    EpochSeconds start = 0;
    int count = 0;
  };
  const Clock& clock_;
  const int limit_;
  const double window_seconds_;
  const size_t max_keys_;
  mutable Mutex mu_;
  std::map<std::string, Window, std::less<>> windows_ GUARDED_BY(mu_);
};

}  // namespace pw::auth
