#pragma once

// SingleFlight: callers that want the same answer at the same version of the
// data share one computation of it (issue 15). While executions run, every
// commit invalidates a pipeline's cached reads; eight console tabs or SDK
// loops asking for the same page then all missed together and computed the
// same answer eight times, on the cores the pipeline's own actions need. With
// this, the first caller computes and the others wait for its answer.
//
//   SingleFlight flights;
//   Result<SingleFlight::Answer> a = flights.Do("p\nstate", generation, [&] {
//     return Compute();  // Answer{body, share}
//   });
//
// An answer is shared only with callers that asked at the same `version`
// while it was being computed (a caller that comes after a new version starts
// its own computation), and only if it succeeded and says `share`; otherwise
// each waiting caller computes its own. The version must change whenever the
// answer could (the read cache's generation, the store's change stamp), so a
// waiter gets an answer at least as new as what it would have computed when
// it asked.
//
// Thread-safe. `compute` runs without the lock; an exception from it leaves
// the flight as a failure for the waiters and propagates to its caller.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/mutex.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace pw::engine {

class SingleFlight {
 public:
  struct Answer {
    std::string body;
    bool share = true;  // False: only for its own caller (e.g. it read job documents).
  };
  using Compute = std::function<Result<Answer>()>;

  // `compute()`'s answer, or the answer another thread is computing for `key`
  // at `version` when this call comes (then `compute` does not run unless
  // that computation fails or may not be shared).
  Result<Answer> Do(const std::string& key, uint64_t version, const Compute& compute) EXCLUDES(mu_);

  // Answers given to a caller that waited for another's computation.
  uint64_t shared() const EXCLUDES(mu_);
  // Computations in flight, and callers waiting for one, for tests.
  size_t in_flight() const EXCLUDES(mu_);
  size_t waiting() const EXCLUDES(mu_);

 private:
  struct Flight {
    uint64_t version = 0;
    bool done = false;                // Guarded by SingleFlight::mu_.
    std::optional<std::string> body;  // Set when done, if it may be shared.
  };
  // Marks `f` done with `body` and removes it from flights_ (if still there).
  void Land(const std::string& key, const std::shared_ptr<Flight>& f,
            std::optional<std::string> body) EXCLUDES(mu_);

  mutable Mutex mu_;
  CondVar landed_;  // A flight is done.
  std::map<std::string, std::shared_ptr<Flight>> flights_ GUARDED_BY(mu_);
  uint64_t shared_ GUARDED_BY(mu_) = 0;
  size_t waiting_ GUARDED_BY(mu_) = 0;
};

}  // namespace pw::engine
