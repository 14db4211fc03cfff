#include "engine/read_cache.h"

#include <utility>

namespace pw::engine {

ReadCache::Lookup ReadCache::Get(const std::string& pipeline, const std::string& key) const {
  MutexLock lock(mu_);
  Lookup out;
  out.enabled = enabled_;
  auto it = pipelines_.find(pipeline);
  if (it == pipelines_.end()) {
    // Unknown so far: the current clock marks "no invalidation since".
    out.generation = clock_;
    return out;
  }
  out.generation = it->second.generation;
  if (!enabled_) return out;
  auto b = it->second.bodies.find(key);
  if (b != it->second.bodies.end()) out.body = b->second;
  return out;
}

void ReadCache::Put(const std::string& pipeline, const std::string& key, std::string body,
                    uint64_t generation) {
  MutexLock lock(mu_);
  if (!enabled_) return;
  auto it = pipelines_.find(pipeline);
  if (it == pipelines_.end()) {
    // Never invalidated (nor cached) yet: valid if nothing happened at all
    // since the Get, i.e. no invalidation of any pipeline moved the clock.
    if (generation != clock_) return;
    if (entries_ >= kMaxEntries) {
      pipelines_.clear();
      entries_ = 0;
    }
    it = pipelines_.emplace(pipeline, Entry{clock_, {}}).first;
  } else if (it->second.generation != generation) {
    return;  // Invalidated meanwhile: `body` may be stale.
  }
  Entry& e = it->second;
  if (e.bodies.size() >= kMaxPerPipeline && !e.bodies.count(key)) {
    entries_ -= e.bodies.size();
    e.bodies.clear();
  }
  auto [at, added] = e.bodies.insert_or_assign(key, std::move(body));
  (void)at;
  if (added) ++entries_;
}

Result<CacheRead> ReadCache::GetOrCompute(const std::string& pipeline, const std::string& key,
                                          const std::function<Result<std::string>()>& compute) {
  Lookup hit = Get(pipeline, key);
  if (hit.body) return CacheRead{std::move(*hit.body), "hit"};
  if (!hit.enabled) {  // Nothing tells this server of other servers' changes.
    PW_ASSIGN_OR_RETURN(std::string body, compute());
    return CacheRead{std::move(body), "miss"};
  }
  bool mine = false;
  PW_ASSIGN_OR_RETURN(
      SingleFlight::Answer a,
      flights_.Do(pipeline + '\n' + key, hit.generation, [&]() -> Result<SingleFlight::Answer> {
        mine = true;
        PW_ASSIGN_OR_RETURN(std::string body, compute());
        Put(pipeline, key, body, hit.generation);
        return SingleFlight::Answer{std::move(body), true};
      }));
  return CacheRead{std::move(a.body), mine ? "miss" : "shared"};
}

void ReadCache::Invalidate(const std::string& pipeline) {
  MutexLock lock(mu_);
  ++clock_;
  Entry& e = pipelines_[pipeline];
  entries_ -= e.bodies.size();
  e.bodies.clear();
  e.generation = clock_;
}

void ReadCache::Clear() {
  MutexLock lock(mu_);
  ++clock_;
  for (auto& [name, e] : pipelines_) {
    e.bodies.clear();
    e.generation = clock_;
  }
  entries_ = 0;
}

void ReadCache::set_enabled(bool enabled) {
  MutexLock lock(mu_);
  enabled_ = enabled;
  if (!enabled) {
    ++clock_;
    for (auto& [name, e] : pipelines_) {
      e.bodies.clear();
      e.generation = clock_;
    }
    entries_ = 0;
  }
}

bool ReadCache::enabled() const {
  MutexLock lock(mu_);
  return enabled_;
}

size_t ReadCache::size() const {
  MutexLock lock(mu_);
  return entries_;
}

std::optional<std::string> StampedReadCache::Get(const std::string& pipeline,
                                                 const std::string& key, int64_t stamp) const {
  MutexLock lock(mu_);
  auto it = pipelines_.find(pipeline);
  if (it == pipelines_.end() || it->second.stamp != stamp) return std::nullopt;
  auto b = it->second.bodies.find(key);
  if (b == it->second.bodies.end()) return std::nullopt;
  return b->second;
}

void StampedReadCache::Put(const std::string& pipeline, const std::string& key, int64_t stamp,
                           std::string body) {
  MutexLock lock(mu_);
  auto it = pipelines_.find(pipeline);
  if (it == pipelines_.end()) {
    if (entries_ >= ReadCache::kMaxEntries) {
      pipelines_.clear();
      entries_ = 0;
    }
    it = pipelines_.emplace(pipeline, Entry{stamp, {}}).first;
  }
  Entry& e = it->second;
  if (e.stamp != stamp || (e.bodies.size() >= ReadCache::kMaxPerPipeline && !e.bodies.count(key))) {
    // Answers at another stamp (older, or newer than this one: the newest
    // read wins, a later Get at the other stamp misses and computes again).
    entries_ -= e.bodies.size();
    e.bodies.clear();
    e.stamp = stamp;
  }
  auto [at, added] = e.bodies.insert_or_assign(key, std::move(body));
  (void)at;
  if (added) ++entries_;
}

Result<CacheRead> StampedReadCache::GetOrCompute(const std::string& pipeline,
                                                 const std::string& key, int64_t stamp,
                                                 const SingleFlight::Compute& compute) {
  if (auto hit = Get(pipeline, key, stamp)) return CacheRead{std::move(*hit), "hit"};
  bool mine = false;
  PW_ASSIGN_OR_RETURN(SingleFlight::Answer a,
                      flights_.Do(pipeline + '\n' + key, static_cast<uint64_t>(stamp),
                                  [&]() -> Result<SingleFlight::Answer> {
                                    mine = true;
                                    PW_ASSIGN_OR_RETURN(SingleFlight::Answer out, compute());
                                    if (out.share) Put(pipeline, key, stamp, out.body);
                                    return out;
                                  }));
  return CacheRead{std::move(a.body), !mine ? "shared" : a.share ? "miss" : "uncacheable"};
}

void StampedReadCache::Clear() {
  MutexLock lock(mu_);
  pipelines_.clear();
  entries_ = 0;
}

size_t StampedReadCache::size() const {
  MutexLock lock(mu_);
  return entries_;
}

}  // namespace pw::engine
