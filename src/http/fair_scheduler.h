#pragma once

// FairScheduler: hands tasks to a pool at most `slots` at a time. When a slot
// frees, the next task is the oldest of the client served least recently (a
// client new or idle since counts as never served), so one client's backlog
// delays another client's task by at most the tasks already running, not by
// the whole backlog. And no client runs tasks on more than `slots` minus a
// quarter of them (at least one; all of one slot) at once: with 8 slots, one
// client's slow requests (large uploads being hashed) leave 2 threads to the
// others.
//
// The HTTP front posts every handler and authentication through one, keyed by
// the peer's address: 200 connections of one client each sending an
// UpdatePipeline put another client's calls behind all 200 while the pool
// took them first come, first served.
//
//   FairScheduler s(8, [&pool](FairScheduler::Task t) { asio::post(pool, std::move(t)); });
//   s.Post("10.0.0.7", [] { ... });
//
// Thread-safe. A task is never dropped: once the pool runs what it was given,
// every task queued has run. A task that throws still gives its slot back; the
// exception goes on to the pool (the HTTP front's handlers catch everything).

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/mutex.h"

namespace pw::http {

class FairScheduler {
 public:
  using Task = std::function<void()>;
  // `post` hands a task to the pool; it is called with no lock held.
  FairScheduler(size_t slots, std::function<void(Task)> post);
  FairScheduler(const FairScheduler&) = delete;
  FairScheduler& operator=(const FairScheduler&) = delete;

  void Post(const std::string& client, Task task) EXCLUDES(mu_);

  // Tasks waiting for a slot (not yet handed to the pool).
  size_t Waiting() const EXCLUDES(mu_);

 private:
  struct Client {
    std::deque<Task> waiting;
    size_t running = 0;
    uint64_t last_served = 0;  // serve_seq_ when its last task was handed on; 0: never.
    uint64_t arrived = 0;      // arrive_seq_ when its first waiting task came.
  };
  using Turn = std::tuple<uint64_t, uint64_t, std::string>;  // last_served, arrived, name.
  struct Ready {
    std::string client;
    Task task;
  };

  // Takes the tasks that fit in the free slots, least recently served client first.
  std::vector<Ready> TakeLocked() REQUIRES(mu_);
  void Submit(std::vector<Ready> tasks) EXCLUDES(mu_);
  void Finished(const std::string& client) EXCLUDES(mu_);

  const size_t slots_;
  const size_t per_client_;  // The most tasks one client runs at once.
  const std::function<void(Task)> post_;
  mutable Mutex mu_;
  std::map<std::string, Client> clients_ GUARDED_BY(mu_);  // Those with tasks waiting or running.
  std::set<Turn> turns_ GUARDED_BY(mu_);                   // Those with tasks waiting, next first.
  size_t running_ GUARDED_BY(mu_) = 0;
  size_t waiting_count_ GUARDED_BY(mu_) = 0;
  uint64_t serve_seq_ GUARDED_BY(mu_) = 0;
  uint64_t arrive_seq_ GUARDED_BY(mu_) = 0;
};

}  // namespace pw::http
