#pragma once

// DocCache: the parsed forms of stored documents (an execution's, an action
// run's), by row id, so a history page read again costs a hash of each
// document's text instead of a JSON parse and a conversion (issue 15). A read
// asks the store for the rows' text (store::Docs::kText) and passes each here.
//
// Nothing invalidates it: an entry is used only if the row's version and the
// hash and size of its text are those it was made from, so a changed row (a
// new version, or a row written again by another server or a restore) is
// parsed again and replaces it. Bounded: the least recently used entry goes
// first.
//
//   DocCache<core::Execution> cache(2048);
//   std::shared_ptr<const core::Execution> e = cache.Get(row.id, row.version, row.text,
//       [](const nlohmann::json& doc) { return ExecutionFromDoc(doc); });
//
// Thread-safe; the parse runs outside the lock (two readers that miss the
// same row both parse it; the second entry replaces the first).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "common/mutex.h"
#include "common/thread_annotations.h"

namespace pw::engine {

template <typename T>
class DocCache {
 public:
  explicit DocCache(size_t capacity) : capacity_(capacity) {}

  // The value `make` gives for the document `text` of row `id` at `version`:
  // the kept one if `text` is the same (by size and hash) as the one it was
  // made from, else made now (from the parsed text; unparseable text is an
  // empty object, as store::ParseDoc reads it) and kept.
  std::shared_ptr<const T> Get(const std::string& id, int64_t version, const std::string& text,
                               const std::function<T(const nlohmann::json&)>& make) EXCLUDES(mu_) {
    const size_t hash = std::hash<std::string_view>{}(text);
    {
      MutexLock lock(mu_);
      auto it = index_.find(id);
      if (it != index_.end()) {
        Entry& e = *it->second;
        if (e.version == version && e.size == text.size() && e.hash == hash) {
          lru_.splice(lru_.begin(), lru_, it->second);  // Most recently used.
          ++hits_;
          return e.value;
        }
      }
      ++misses_;
    }
    nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded()) doc = nlohmann::json::object();
    auto value = std::make_shared<const T>(make(doc));
    MutexLock lock(mu_);
    auto it = index_.find(id);
    if (it != index_.end()) {
      lru_.erase(it->second);
      index_.erase(it);
    }
    if (capacity_ == 0) return value;
    while (lru_.size() >= capacity_) {
      index_.erase(lru_.back().id);
      lru_.pop_back();
    }
    lru_.push_front(Entry{id, version, text.size(), hash, value});
    index_.emplace(id, lru_.begin());
    return value;
  }

  struct Counts {
    uint64_t hits = 0;
    uint64_t misses = 0;
    size_t entries = 0;
  };
  Counts counts() const EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return {hits_, misses_, lru_.size()};
  }

 private:
  struct Entry {
    std::string id;
    int64_t version = 0;
    size_t size = 0;
    size_t hash = 0;
    std::shared_ptr<const T> value;
  };
  const size_t capacity_;
  mutable Mutex mu_;
  std::list<Entry> lru_ GUARDED_BY(mu_);  // Most recently used first.
  std::unordered_map<std::string, typename std::list<Entry>::iterator> index_ GUARDED_BY(mu_);
  uint64_t hits_ GUARDED_BY(mu_) = 0;
  uint64_t misses_ GUARDED_BY(mu_) = 0;
};

}  // namespace pw::engine
