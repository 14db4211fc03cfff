// Several servers on one database: the lease decision (PlanLeases), the
// manager thread that applies it, and the engine's side (adopt, disown).

#include "engine/leases.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>

#include "common/log.h"
#include "common/thread_name.h"
#include "engine/engine.h"

namespace pw::engine {

LeasePlan PlanLeases(const LeaseInput& in) {
  LeasePlan plan;
  const size_t servers = std::max<size_t>(1, in.live_servers.size());
  const size_t share = (in.pipelines.size() + servers - 1) / servers;
  std::map<std::string, const store::Lease*> rows;
  for (const auto& l : in.leases) rows[l.pipeline] = &l;
  size_t mine = 0;
  for (const auto& [name, epoch] : in.held) {
    if (std::find(in.pipelines.begin(), in.pipelines.end(), name) == in.pipelines.end()) continue;
    plan.renew.push_back(name);
    ++mine;
  }
  // Free: no row, no owner, or expired (a dead server's lease counts once it
  // expired: until then it may still be writing).
  std::vector<std::string> free;
  for (const auto& name : in.pipelines) {
    if (in.held.count(name)) continue;
    auto row = rows.find(name);
    if (row == rows.end() || row->second->owner.empty() || row->second->expired) {
      free.push_back(name);
    }
  }
  if (mine < share && !free.empty()) {
    // Start at a place that depends on the server, so servers starting
    // together mostly reach for different pipelines.
    const size_t start = std::hash<std::string>{}(in.self) % free.size();
    for (size_t i = 0; i < free.size() && mine < share; ++i, ++mine) {
      plan.take.push_back(free[(start + i) % free.size()]);
    }
  }
  if (mine > share) {
    for (auto it = plan.renew.rbegin(); it != plan.renew.rend() && mine > share; ++it) {
      if (in.busy.count(*it)) continue;
      plan.release.push_back(*it);
      --mine;
    }
    for (const auto& name : plan.release) {
      plan.renew.erase(std::find(plan.renew.begin(), plan.renew.end(), name));
    }
  }
  return plan;
}

LeaseManager::LeaseManager(store::Store& store, Engine& engine, LeaseOptions options)
    : store_(store), engine_(engine), options_(std::move(options)) {}

LeaseManager::~LeaseManager() { Stop(); }

void LeaseManager::Start() {
  RunOnce();
  thread_ = std::thread([this] { Loop(); });
}

void LeaseManager::Stop() {
  {
    MutexLock lock(mu_);
    if (stop_) return;
    stop_ = true;
    cv_.NotifyAll();
  }
  if (thread_.joinable()) thread_.join();
  MutexLock round(round_mu_);
  for (const auto& [name, epoch] : engine_.DrivenPipelines()) {
    engine_.DisownPipeline(name);
    (void)store_.ReleaseLease(name, options_.server_id, epoch);
  }
  (void)store_.RemoveServer(options_.server_id);
}

void LeaseManager::Loop() {
  NameThisThread("pw-leases");
  const auto period = std::chrono::duration<double>(options_.lease_seconds / 3);
  for (;;) {
    {
      MutexLock lock(mu_);
      const auto deadline = std::chrono::steady_clock::now() + period;
      while (!stop_) {
        if (cv_.WaitUntil(mu_, deadline) == std::cv_status::timeout) break;
      }
      if (stop_) return;
    }
    try {
      RunOnce();
    } catch (const std::exception& ex) {
      PW_LOG(Error) << "lease round failed: " << ex.what();
    }
  }
}

void LeaseManager::RunOnce() {
  MutexLock round(round_mu_);
  const std::string& self = options_.server_id;
  if (Status s = store_.Heartbeat(self, options_.url); !s.ok()) {
    PW_LOG(Warning) << "lease heartbeat failed: " << s.ToString();
  }
  // Renew first: a lease about to expire matters more than the rest.
  LeaseInput in;
  in.self = self;
  in.held = engine_.DrivenPipelines();
  for (const auto& [name, epoch] : in.held) {
    Status s = store_.RenewLease(name, self, epoch, options_.lease_seconds);
    if (s.code() == StatusCode::kAborted) {
      PW_LOG(Warning) << "lost the lease of pipeline " << name << ": " << s.message();
      engine_.DisownPipeline(name);
    } else if (!s.ok()) {
      PW_LOG(Warning) << "could not renew the lease of " << name << ": " << s.ToString();
    }
  }
  in.held = engine_.DrivenPipelines();
  auto servers = store_.ListServers();
  auto pipelines = store_.ListPipelines();
  auto leases = store_.ListLeases();
  if (!servers.ok() || !pipelines.ok() || !leases.ok()) return;
  std::map<std::string, std::string> live;
  for (const auto& sv : *servers) {
    if (sv.age_seconds < options_.lease_seconds || sv.id == self) live[sv.id] = sv.url;
  }
  for (const auto& [id, url] : live) in.live_servers.insert(id);
  for (const auto& p : *pipelines) in.pipelines.push_back(p.name);
  in.leases = *leases;
  in.busy = engine_.BusyPipelines();
  LeasePlan plan = PlanLeases(in);
  for (const auto& name : plan.release) {
    auto it = in.held.find(name);
    engine_.DisownPipeline(name);
    (void)store_.ReleaseLease(name, self, it->second);
    PW_LOG(Info) << "released pipeline " << name << " (beyond this server's share)";
  }
  for (const auto& name : plan.take) {
    auto lease = store_.AcquireLease(name, self, options_.lease_seconds);
    if (!lease.ok()) continue;  // Another server was quicker.
    if (Status s = engine_.AdoptPipeline(name, lease->epoch); !s.ok()) {
      PW_LOG(Error) << "adopting pipeline " << name << ": " << s.ToString();
    } else {
      PW_LOG(Info) << "drives pipeline " << name << " (lease epoch " << lease->epoch << ")";
    }
  }
  std::map<std::string, std::string> owners;
  if (auto now = store_.ListLeases(); now.ok()) {
    for (const auto& l : *now) {
      if (!l.owner.empty() && !l.expired && live.count(l.owner)) owners[l.pipeline] = l.owner;
    }
  }
  MutexLock lock(mu_);
  live_ = std::move(live);
  owners_ = std::move(owners);
}

std::map<std::string, std::string> LeaseManager::LiveServers() {
  MutexLock lock(mu_);
  return live_;
}

std::pair<std::string, std::string> LeaseManager::OwnerOf(const std::string& pipeline) {
  auto driven = engine_.DrivenPipelines();
  if (driven.count(pipeline)) return {options_.server_id, options_.url};
  MutexLock lock(mu_);
  auto it = owners_.find(pipeline);
  if (it == owners_.end() || it->second == options_.server_id) return {"", ""};
  auto url = live_.find(it->second);
  if (url == live_.end()) return {"", ""};
  return {it->second, url->second};
}

bool LeaseManager::TakeNow(const std::string& pipeline) {
  MutexLock round(round_mu_);
  if (engine_.DrivenPipelines().count(pipeline)) return true;
  auto lease = store_.AcquireLease(pipeline, options_.server_id, options_.lease_seconds);
  if (!lease.ok()) return false;
  if (Status s = engine_.AdoptPipeline(pipeline, lease->epoch); !s.ok()) {
    PW_LOG(Error) << "adopting pipeline " << pipeline << ": " << s.ToString();
    return false;
  }
  MutexLock lock(mu_);
  owners_[pipeline] = options_.server_id;
  return true;
}

std::pair<std::string, std::string> LeaseManager::OwnerOrTake(const std::string& pipeline) {
  auto owner = OwnerOf(pipeline);
  if (!owner.first.empty()) return owner;
  if (TakeNow(pipeline)) return {options_.server_id, options_.url};
  auto leases = store_.ListLeases();
  auto servers = store_.ListServers();
  if (!leases.ok() || !servers.ok()) return {"", ""};
  for (const auto& l : *leases) {
    if (l.pipeline != pipeline || l.owner.empty() || l.expired) continue;
    for (const auto& sv : *servers) {
      if (sv.id == l.owner && sv.age_seconds < options_.lease_seconds) return {sv.id, sv.url};
    }
  }
  return {"", ""};
}

// --- The engine's side.

void Engine::EnableLeases(const std::string& server_id, double lease_seconds) {
  MutexLock lock(mu_);
  server_id_ = server_id;
  leases_ = !server_id.empty();
  lease_seconds_ = lease_seconds;
  // Several servers: a read answers from what is durable or from the state
  // this server drives; no serialised copy that another server's commits
  // would not invalidate.
  read_cache_.set_enabled(false);
  read_cache_.Clear();
}

std::string Engine::ServerId() {
  MutexLock lock(mu_);
  return server_id_;
}

Status Engine::AdoptPipeline(const std::string& pipeline, int64_t epoch) {
  MutexLock lock(mu_);
  pipelines_.erase(pipeline);
  owned_[pipeline] = epoch;
  jobs_loaded_ = false;  // Jobs the former owner created or changed.
  LoadJobsLocked();
  try {
    auto p = LoadLocked(pipeline);
    if (!p.ok()) {
      owned_.erase(pipeline);
      return p.status();
    }
    Status s = RecoverPipelineLocked(**p, clock_.Now());
    if (!s.ok() && s.code() == StatusCode::kUnavailable) owned_.erase(pipeline);
    return s;
  } catch (const std::exception& ex) {
    return Internal("cannot recover pipeline " + pipeline + ": " + ex.what());
  }
}

void Engine::DisownPipeline(const std::string& pipeline) {
  MutexLock lock(mu_);
  owned_.erase(pipeline);
  pipelines_.erase(pipeline);
  row_versions_.erase(pipeline);
  read_cache_.Invalidate(pipeline);
  for (auto it = pending_.begin(); it != pending_.end();) {
    it = it->second.pipeline == pipeline ? pending_.erase(it) : std::next(it);
  }
}

std::map<std::string, int64_t> Engine::DrivenPipelines() {
  MutexLock lock(mu_);
  return owned_;
}

std::set<std::string> Engine::BusyPipelines() {
  MutexLock lock(mu_);
  std::set<std::string> out;
  for (const auto& [name, p] : pipelines_) {
    for (const auto& e : p.executions) {
      if (e.Active()) out.insert(name);
    }
  }
  return out;
}

}  // namespace pw::engine
