#pragma once

// ReadCache: serialised responses of the frequent reads (GetPipeline,
// GetPipelineState, the first page of ListPipelineExecutions,
// GetPipelineExecution, ListActionExecutions), per pipeline,
// so a console polling once a second costs a map lookup instead of a parse
// and a dump (issue 15). The engine invalidates a pipeline on every commit of
// it, whenever its cached state is dropped or reloaded, and on job changes;
// custom action type changes (secret masking) clear everything.
//
// A stale answer cannot be cached: Get returns the pipeline's generation,
// every Invalidate advances it, and Put stores only if it has not moved since
// (the answer was computed from a state at least as new as that generation).
//
//   auto hit = cache.Get("p", key);
//   if (hit.body) return *hit.body;
//   std::string body = Compute();
//   cache.Put("p", key, body, hit.generation);
//
// GetOrCompute does both, and callers that miss at the same generation share
// one computation (SingleFlight): while executions run, every commit empties
// the pipeline's entries, and the readers that come next all miss together.
//
// set_enabled(false) bypasses it (Get always misses, Put stores nothing, no
// computation is shared), e.g. for reads of pipelines another server owns.
// Thread-safe.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "common/mutex.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "engine/single_flight.h"

namespace pw::engine {

// An answer of GetOrCompute and how it came.
struct CacheRead {
  std::string body;
  // "hit" (kept), "miss" (computed here, kept if still current), "shared"
  // (another caller's computation at the same generation or stamp),
  // "uncacheable" (StampedReadCache: computed, neither kept nor shared, as
  // `compute` said share = false).
  const char* result = "";
};

// Limits of each cache: at most kMaxPerPipeline responses per pipeline (then
// its oldest goes), and kMaxEntries responses or kMaxBytes of keys and bodies
// in all (then everything goes: a cache, not a store); an answer over
// kMaxBytes / 16 is not kept. A server uses one of the two: ReadCache alone,
// StampedReadCache with several servers (EnableLeases turns ReadCache off),
// so it keeps at most 16 MiB of answers beside issue 15's 64 MiB memory goal.
// GET /metrics shows what each holds (pipewright_read_cache_bytes).
struct ReadCacheLimits {
  static constexpr size_t kMaxPerPipeline = 32;
  static constexpr size_t kMaxEntries = 4096;
  static constexpr size_t kMaxBytes = size_t{16} << 20;
};

// One pipeline's kept responses, by key; the oldest goes first past
// ReadCacheLimits::kMaxPerPipeline. Not thread-safe: each cache holds it
// under its own mutex, and counts what it holds in `entries` and `bytes`.
class KeptAnswers {
 public:
  const std::string* Find(const std::string& key) const;
  void Put(const std::string& key, std::string body, size_t& entries, size_t& bytes);
  void Clear(size_t& entries, size_t& bytes);
  size_t size() const { return bodies_.size(); }

 private:
  std::map<std::string, std::string> bodies_;
  std::deque<std::string> order_;  // The keys of bodies_, oldest first.
};

class ReadCache : public ReadCacheLimits {
 public:
  struct Lookup {
    std::optional<std::string> body;  // The cached response, if any.
    uint64_t generation = 0;          // Pass to Put with the computed response.
    bool enabled = true;              // False: bypassed.
  };

  Lookup Get(const std::string& pipeline, const std::string& key) const EXCLUDES(mu_);
  // Stores `body` unless `pipeline` was invalidated after the Get that
  // returned `generation` (or the cache is disabled).
  void Put(const std::string& pipeline, const std::string& key, std::string body,
           uint64_t generation) EXCLUDES(mu_);
  // The cached response, or `compute()`'s, stored as Put does. A caller that
  // misses while another computes the same key at the same generation waits
  // for that answer instead of computing it again.
  Result<CacheRead> GetOrCompute(const std::string& pipeline, const std::string& key,
                                 const std::function<Result<std::string>()>& compute) EXCLUDES(mu_);
  void Invalidate(const std::string& pipeline) EXCLUDES(mu_);
  void Clear() EXCLUDES(mu_);
  void set_enabled(bool enabled) EXCLUDES(mu_);
  bool enabled() const EXCLUDES(mu_);
  size_t size() const EXCLUDES(mu_);                        // Cached responses, for tests.
  const SingleFlight& flights() const { return flights_; }  // For tests.

  size_t bytes() const EXCLUDES(mu_);  // Keys and bodies held, for tests.

 private:
  struct Entry {
    uint64_t generation = 0;
    KeptAnswers kept;
  };
  // Drops everything when `more` bytes would pass a limit.
  void MakeRoomLocked(size_t more) REQUIRES(mu_);

  mutable Mutex mu_;
  bool enabled_ GUARDED_BY(mu_) = true;
  uint64_t clock_ GUARDED_BY(mu_) = 0;  // Source of generations, never reused.
  size_t entries_ GUARDED_BY(mu_) = 0;
  size_t bytes_ GUARDED_BY(mu_) = 0;
  std::map<std::string, Entry> pipelines_ GUARDED_BY(mu_);
  SingleFlight flights_;
};

// StampedReadCache: the same responses for pipelines another server drives
// (several servers on PostgreSQL), where no commit of this process can
// invalidate them. Each is kept with the pipeline's change stamp
// (store::Store::ChangeStamp, read before the answer was computed, so the
// answer is at least as new as the stamp) and served only while the store's
// stamp is still that value: every committed write of the pipeline's rows
// gives it a new stamp, never one used before.
//
//   auto stamp = store.ChangeStamp("p");            // Before computing.
//   if (auto hit = cache.Get("p", key, *stamp)) return *hit;
//   cache.Put("p", key, *stamp, Compute());
//
// GetOrCompute does both, sharing one computation between the callers that
// miss at the same stamp, as ReadCache does.
//
// Thread-safe; bounded like ReadCache.
class StampedReadCache : public ReadCacheLimits {
 public:
  std::optional<std::string> Get(const std::string& pipeline, const std::string& key,
                                 int64_t stamp) const EXCLUDES(mu_);
  // Keeps `body` as the answer at `stamp`; answers kept at another stamp go.
  void Put(const std::string& pipeline, const std::string& key, int64_t stamp, std::string body)
      EXCLUDES(mu_);
  Result<CacheRead> GetOrCompute(const std::string& pipeline, const std::string& key, int64_t stamp,
                                 const SingleFlight::Compute& compute) EXCLUDES(mu_);
  void Clear() EXCLUDES(mu_);
  size_t size() const EXCLUDES(mu_);                        // Cached responses, for tests.
  size_t bytes() const EXCLUDES(mu_);                       // Keys and bodies held, for tests.
  const SingleFlight& flights() const { return flights_; }  // For tests.

 private:
  struct Entry {
    int64_t stamp = 0;
    KeptAnswers kept;
  };
  mutable Mutex mu_;
  size_t entries_ GUARDED_BY(mu_) = 0;
  size_t bytes_ GUARDED_BY(mu_) = 0;
  std::map<std::string, Entry> pipelines_ GUARDED_BY(mu_);
  SingleFlight flights_;
};

}  // namespace pw::engine
