#include "auth/rate_limiter.h"

namespace pw::auth {

RateLimiter::RateLimiter(const Clock& clock, int limit, double window_seconds, size_t max_keys)
    : clock_(clock), limit_(limit), window_seconds_(window_seconds), max_keys_(max_keys) {}

bool RateLimiter::Allow(std::string_view key) {
  EpochSeconds now = clock_.Now();
  MutexLock lock(mu_);
  auto it = windows_.find(key);
  if (it == windows_.end()) {
    if (windows_.size() >= max_keys_) {
      for (auto w = windows_.begin(); w != windows_.end();) {
        w = now - w->second.start >= window_seconds_ ? windows_.erase(w) : std::next(w);
      }
      while (windows_.size() >= max_keys_) {
        auto stalest = windows_.begin();
        for (auto w = windows_.begin(); w != windows_.end(); ++w) {
          if (w->second.start < stalest->second.start) stalest = w;
        }
        windows_.erase(stalest);
      }
    }
    it = windows_.emplace(std::string(key), Window{now, 0}).first;
  }
  Window& w = it->second;
  if (now - w.start >= window_seconds_) w = Window{now, 0};
  if (w.count >= limit_) return false;
  ++w.count;
  return true;
}

double RateLimiter::RetryAfter(std::string_view key) const {
  EpochSeconds now = clock_.Now();
  MutexLock lock(mu_);
  auto it = windows_.find(key);
  if (it == windows_.end() || it->second.count < limit_) return 0;
  double left = it->second.start + window_seconds_ - now;
  return left > 0 ? left : 0;
}

}  // namespace pw::auth
