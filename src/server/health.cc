#include "server/health.h"

#include <exception>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/thread_name.h"

namespace pw::server {

Health::Health(std::function<Status()> probe, std::string server_id, HealthOptions options)
    : probe_(std::move(probe)), server_id_(std::move(server_id)), options_(options) {
  thread_ = std::thread([this] { Loop(); });
}

Health::~Health() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.NotifyAll();
  thread_.join();
}

void Health::SetReady(bool ready) {
  MutexLock lock(mu_);
  started_ = ready;
}

std::optional<HealthReport> Health::Poll(SteadyClock::time_point asked_at) {
  const auto now = SteadyClock::now();
  const auto seconds = [](double s) {
    return std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(s));
  };
  HealthReport r;
  MutexLock lock(mu_);
  r.started = started_;
  if (have_answer_ &&
      (answered_at_ >= asked_at || now - answered_at_ <= seconds(options_.max_age_seconds))) {
    r.store_ok = answer_.ok();
    if (!r.store_ok) r.detail = "the database does not answer: " + answer_.message();
  } else if (pending_) {
    if (now - pending_since_ <= seconds(options_.deadline_seconds)) return std::nullopt;
    r.detail = "the database did not answer within the deadline";
  } else {
    pending_ = true;
    pending_since_ = now;
    lock.Unlock();
    wake_.NotifyAll();
    return std::nullopt;
  }
  if (!r.started && r.detail.empty()) r.detail = "starting (recovery not finished)";
  r.ready = r.started && r.store_ok;
  return r;
}

std::string Health::Json(const HealthReport& report) const {
  nlohmann::json j;
  j["status"] = report.ready ? "ok" : "unavailable";
  j["live"] = report.live;
  j["ready"] = report.ready;
  j["serverId"] = server_id_.empty() ? nlohmann::json(nullptr) : nlohmann::json(server_id_);
  if (!report.detail.empty()) j["detail"] = report.detail;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void Health::Loop() {
  NameThisThread("pw-health");
  MutexLock lock(mu_);
  for (;;) {
    while (!stop_ && !pending_) wake_.Wait(mu_);
    if (stop_) return;
    lock.Unlock();
    Status s;
    try {
      s = probe_();
    } catch (const std::exception& e) {
      s = Internal(std::string("probe failed: ") + e.what());
    }
    lock.Lock();
    answer_ = std::move(s);
    have_answer_ = true;
    answered_at_ = SteadyClock::now();
    pending_ = false;
  }
}

void RegisterHealthRoute(http::Server& server, Health& health) {
  http::RouteOptions pub;
  pub.auth = http::AuthMode::kPublic;
  server.Route("GET", "/health", pub, [&health](const http::Request& req, http::Response& res) {
    std::optional<HealthReport> report = health.Poll(req.received);
    if (!report) {
      res.park = true;  // The probe is running: asked again shortly, holding no thread.
      return;
    }
    res.status = report->ready ? 200 : 503;
    res.SetHeader("Content-Type", "application/json");
    res.SetHeader("Cache-Control", "no-store");
    res.body = health.Json(*report);
  });
}

}  // namespace pw::server
