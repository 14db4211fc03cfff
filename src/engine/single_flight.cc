#include "engine/single_flight.h"

#include <utility>

namespace pw::engine {

Result<SingleFlight::Answer> SingleFlight::Do(const std::string& key, uint64_t version,
                                              const Compute& compute) {
  std::shared_ptr<Flight> mine;
  {
    MutexLock lock(mu_);
    auto it = flights_.find(key);
    if (it != flights_.end() && it->second->version == version) {
      std::shared_ptr<Flight> theirs = it->second;
      ++waiting_;
      while (!theirs->done) landed_.Wait(mu_);
      --waiting_;
      if (theirs->body) {
        ++shared_;
        return Answer{*theirs->body, true};
      }
      // It failed or was not for sharing: compute on our own, below, without
      // starting a flight (the next caller may well fail the same way).
    } else {
      // None, or one at an older version (its answer may be older than what
      // this caller must see): ours replaces it for the callers to come.
      mine = std::make_shared<Flight>();
      mine->version = version;
      flights_[key] = mine;
    }
  }
  if (!mine) return compute();
  Result<Answer> out = Status(StatusCode::kInternal, "not computed");
  try {
    out = compute();
  } catch (...) {
    Land(key, mine, std::nullopt);
    throw;
  }
  Land(key, mine, out.ok() && out->share ? std::optional<std::string>(out->body) : std::nullopt);
  return out;
}

void SingleFlight::Land(const std::string& key, const std::shared_ptr<Flight>& f,
                        std::optional<std::string> body) {
  {
    MutexLock lock(mu_);
    f->body = std::move(body);
    f->done = true;
    auto it = flights_.find(key);
    if (it != flights_.end() && it->second == f) flights_.erase(it);
  }
  landed_.NotifyAll();
}

uint64_t SingleFlight::shared() const {
  MutexLock lock(mu_);
  return shared_;
}

size_t SingleFlight::waiting() const {
  MutexLock lock(mu_);
  return waiting_;
}

size_t SingleFlight::in_flight() const {
  MutexLock lock(mu_);
  return flights_.size();
}

}  // namespace pw::engine
