#include "engine/read_cache.h"

#include <utility>

namespace pw::engine {

const std::string* KeptAnswers::Find(const std::string& key) const {
  auto it = bodies_.find(key);
  return it == bodies_.end() ? nullptr : &it->second;
}

void KeptAnswers::Put(const std::string& key, std::string body, size_t& entries, size_t& bytes) {
  auto it = bodies_.find(key);
  if (it != bodies_.end()) {
    bytes = bytes - it->second.size() + body.size();
    it->second = std::move(body);
    return;
  }
  while (bodies_.size() >= ReadCacheLimits::kMaxPerPipeline && !order_.empty()) {
    auto oldest = bodies_.find(order_.front());
    order_.pop_front();
    if (oldest == bodies_.end()) continue;
    bytes -= oldest->first.size() + oldest->second.size();
    --entries;
    bodies_.erase(oldest);
  }
  bytes += key.size() + body.size();
  ++entries;
  order_.push_back(key);
  bodies_.emplace(key, std::move(body));
}

void KeptAnswers::Clear(size_t& entries, size_t& bytes) {
  for (const auto& [key, body] : bodies_) bytes -= key.size() + body.size();
  entries -= bodies_.size();
  bodies_.clear();
  order_.clear();
}

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
  if (const std::string* b = it->second.kept.Find(key)) out.body = *b;
  return out;
}

void ReadCache::MakeRoomLocked(size_t more) {
  if (entries_ < kMaxEntries && bytes_ + more <= kMaxBytes) return;
  for (auto& [name, e] : pipelines_) e.kept.Clear(entries_, bytes_);
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
      bytes_ = 0;
    }
    it = pipelines_.emplace(pipeline, Entry{clock_, {}}).first;
  } else if (it->second.generation != generation) {
    return;  // Invalidated meanwhile: `body` may be stale.
  }
  if (key.size() + body.size() > kMaxBytes / 16) return;  // One answer never takes it all.
  MakeRoomLocked(key.size() + body.size());
  it->second.kept.Put(key, std::move(body), entries_, bytes_);
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
  e.kept.Clear(entries_, bytes_);
  e.generation = clock_;
}

void ReadCache::Clear() {
  MutexLock lock(mu_);
  ++clock_;
  for (auto& [name, e] : pipelines_) {
    e.kept.Clear(entries_, bytes_);
    e.generation = clock_;
  }
}

void ReadCache::set_enabled(bool enabled) {
  MutexLock lock(mu_);
  enabled_ = enabled;
  if (!enabled) {
    ++clock_;
    for (auto& [name, e] : pipelines_) {
      e.kept.Clear(entries_, bytes_);
      e.generation = clock_;
    }
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

size_t ReadCache::bytes() const {
  MutexLock lock(mu_);
  return bytes_;
}

std::optional<std::string> StampedReadCache::Get(const std::string& pipeline,
                                                 const std::string& key, int64_t stamp) const {
  MutexLock lock(mu_);
  auto it = pipelines_.find(pipeline);
  if (it == pipelines_.end() || it->second.stamp != stamp) return std::nullopt;
  const std::string* b = it->second.kept.Find(key);
  if (b == nullptr) return std::nullopt;
  return *b;
}

void StampedReadCache::Put(const std::string& pipeline, const std::string& key, int64_t stamp,
                           std::string body) {
  MutexLock lock(mu_);
  if (key.size() + body.size() > kMaxBytes / 16) return;  // One answer never takes it all.
  if (entries_ >= kMaxEntries || bytes_ + key.size() + body.size() > kMaxBytes) {
    pipelines_.clear();
    entries_ = 0;
    bytes_ = 0;
  }
  auto it = pipelines_.find(pipeline);
  if (it == pipelines_.end()) it = pipelines_.emplace(pipeline, Entry{stamp, {}}).first;
  Entry& e = it->second;
  if (e.stamp != stamp) {
    // Answers at another stamp (older, or newer than this one: the newest
    // read wins, a later Get at the other stamp misses and computes again).
    e.kept.Clear(entries_, bytes_);
    e.stamp = stamp;
  }
  e.kept.Put(key, std::move(body), entries_, bytes_);
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
  bytes_ = 0;
}

size_t StampedReadCache::bytes() const {
  MutexLock lock(mu_);
  return bytes_;
}

size_t StampedReadCache::size() const {
  MutexLock lock(mu_);
  return entries_;
}

}  // namespace pw::engine
