#pragma once

// Health: what GET /health tells a load balancer. Live = the process answers
// HTTP; ready = it finished start-up (SetReady, after Recover) and its store
// answers a trivial read (Store::Ping) within a short deadline.
//
// The route is public and must not let anyone load the database or hold the
// server's threads: one probe runs at a time, on a thread of its own, and its
// answer is shared by every request for `max_age_seconds`. A request that
// finds no fresh answer starts a probe (if none runs) and is parked (it holds
// no thread) until the answer comes or `deadline_seconds` after the probe
// began, then answers not ready. A store that hangs costs a caller at most
// the deadline and never a store call of its own. Nothing is written.
//
//   Health health([&store] { return store.Ping(); }, "s1");
//   RegisterHealthRoute(http, health);   // before the S3 endpoint
//   ... engine.Recover() ...
//   health.SetReady(true);
//
// Thread-safe. The probe must be callable from any thread until the Health
// is destroyed (the destructor waits for a running probe).

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "http/server.h"

namespace pw::server {

struct HealthOptions {
  double deadline_seconds = 2;  // A probe slower than this: not ready.
  double max_age_seconds = 1;   // A probe answer is reused this long.
};

struct HealthReport {
  bool live = true;
  bool ready = false;
  bool started = false;  // SetReady(true) was called.
  bool store_ok = false;
  std::string detail;  // Why not ready ("" when ready).
};

class Health {
 public:
  Health(std::function<Status()> probe, std::string server_id, HealthOptions options = {});
  Health(const Health&) = delete;
  Health& operator=(const Health&) = delete;
  ~Health();

  // Start-up (recovery) finished: true; shutting down: false.
  void SetReady(bool ready) EXCLUDES(mu_);

  // The answer for a request made at `asked_at`: from a probe that answered
  // at or after it, or less than max_age_seconds ago; nullopt while the probe
  // it needs is running (within its deadline): ask again shortly, with the
  // same `asked_at`. Never blocks on the probe.
  std::optional<HealthReport> Poll(std::chrono::steady_clock::time_point asked_at) EXCLUDES(mu_);

  // The body GET /health answers: {"status":"ok"|"unavailable","live":true,
  // "ready":…,"serverId":…} (serverId null in single-server mode).
  std::string Json(const HealthReport& report) const;

 private:
  using SteadyClock = std::chrono::steady_clock;
  void Loop() EXCLUDES(mu_);

  const std::function<Status()> probe_;
  const std::string server_id_;
  const HealthOptions options_;

  Mutex mu_;
  bool started_ GUARDED_BY(mu_) = false;
  bool stop_ GUARDED_BY(mu_) = false;
  bool pending_ GUARDED_BY(mu_) = false;                   // A probe is wanted or running...
  SteadyClock::time_point pending_since_ GUARDED_BY(mu_);  // ...since then.
  bool have_answer_ GUARDED_BY(mu_) = false;
  Status answer_ GUARDED_BY(mu_);
  SteadyClock::time_point answered_at_ GUARDED_BY(mu_);
  CondVar wake_;  // pending_ or stop_ changed.
  std::thread thread_;
};

// GET /health on `server`: public (no authentication), 200 with the JSON when
// ready, 503 when not. Register before the S3 endpoint, whose routes match any
// /<bucket> (a bucket named "health" is refused at creation). `health` must
// outlive the server.
void RegisterHealthRoute(http::Server& server, Health& health);

}  // namespace pw::server
