#pragma once

// Several servers on one PostgreSQL database: which pipelines this server
// drives. PlanLeases is the pure decision (what to renew, take and release
// for a fair share); LeaseManager runs it every lease_seconds / 3 on its own
// thread against the store and tells the engine what it gained or lost.
// LeaseManager is thread-safe.
//
//   LeaseManager leases(store, engine, {"a", "http://10.0.0.1:8080", 10});
//   leases.Start();   // Heartbeats, takes a share, renews; Stop() releases.

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "store/store.h"

namespace pw::engine {

class Engine;

struct LeaseInput {
  std::string self;
  std::vector<std::string> pipelines;   // Every pipeline.
  std::vector<store::Lease> leases;     // Every lease row, as read.
  std::set<std::string> live_servers;   // Heartbeat younger than a lease (self included).
  std::map<std::string, int64_t> held;  // What this server drives, with its epochs.
  std::set<std::string> busy;           // Held pipelines with work running here.
};

struct LeasePlan {
  std::vector<std::string> renew;    // Held: extend.
  std::vector<std::string> take;     // Free, or expired: acquire.
  std::vector<std::string> release;  // Held beyond the fair share and idle: give up.
};

// Fair share = ceil(pipelines / live servers). Renews everything held;
// takes free or expired leases (an owner that is not live counts only once
// its lease expired) up to the share, starting at a place that depends on
// `self` so servers starting together do not all reach for the same ones;
// releases idle pipelines held beyond the share (never busy ones: their
// actions run here), so a new server gets a share.
LeasePlan PlanLeases(const LeaseInput& in);

struct LeaseOptions {
  std::string server_id;
  std::string url;  // This server's advertise URL.
  double lease_seconds = 10;
};

class LeaseManager {
 public:
  // `store` and `engine` must outlive the manager.
  LeaseManager(store::Store& store, Engine& engine, LeaseOptions options);
  LeaseManager(const LeaseManager&) = delete;
  LeaseManager& operator=(const LeaseManager&) = delete;
  ~LeaseManager();  // Stop().

  // One round now (heartbeat, renew, take, release); then the thread.
  void Start();
  // Ends the thread, releases every lease and removes this server's row, so
  // the others take over at once instead of after the expiry.
  void Stop();
  // One round (tests and Start).
  void RunOnce();

  // Server id -> advertise URL of servers whose heartbeat is younger than a
  // lease (self included), refreshed each round.
  std::map<std::string, std::string> LiveServers() EXCLUDES(mu_);
  // The live owner of `pipeline` by the last round's reading, and its URL;
  // "" when none is live (free or expired). Self when this server drives it.
  std::pair<std::string, std::string> OwnerOf(const std::string& pipeline) EXCLUDES(mu_);
  // Tries to take `pipeline`'s lease now (a call arrived for a pipeline
  // nobody live drives by the last round's reading). True if this server
  // drives it afterwards.
  bool TakeNow(const std::string& pipeline);
  // OwnerOf, and when that knows no live owner: TakeNow, else the owner as
  // the store says now (a lease taken since the last round).
  std::pair<std::string, std::string> OwnerOrTake(const std::string& pipeline);
  const LeaseOptions& options() const { return options_; }

 private:
  void Loop();

  store::Store& store_;
  Engine& engine_;
  const LeaseOptions options_;
  Mutex mu_;
  std::map<std::string, std::string> live_ GUARDED_BY(mu_);
  std::map<std::string, std::string> owners_ GUARDED_BY(mu_);  // Pipeline -> live owner.
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  Mutex round_mu_;  // One round at a time (the thread and TakeNow).
  std::thread thread_;
};

}  // namespace pw::engine
