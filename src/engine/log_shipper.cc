#include "engine/log_shipper.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <fstream>
#include <utility>
#include <vector>

#include "common/log.h"
#include "common/thread_name.h"

namespace pw::engine {

LogShipper::LogShipper(store::Store& store, std::function<std::string(const std::string&)> log_path,
                       LogShipperOptions options)
    : store_(store), log_path_(std::move(log_path)), options_(options) {}

LogShipper::~LogShipper() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.NotifyAll();
  if (thread_.joinable()) thread_.join();
}

void LogShipper::Start() {
  MutexLock lock(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Loop(); });
}

void LogShipper::Follow(const std::string& run_id, const std::string& pipeline,
                        const std::string& execution_id) {
  MutexLock lock(mu_);
  followed_.try_emplace(run_id, Followed{pipeline, execution_id, 0, false});
}

Status LogShipper::Finish(const std::string& run_id) {
  MutexLock ship(ship_mu_);
  {
    MutexLock lock(mu_);
    auto it = followed_.find(run_id);
    if (it == followed_.end()) return Status::Ok();
    it->second.finished = true;
  }
  Status s = ShipLocked(run_id);
  if (s.ok()) {
    MutexLock lock(mu_);
    followed_.erase(run_id);
  }
  return s;
}

Status LogShipper::ShipRound() {
  MutexLock ship(ship_mu_);
  std::vector<std::string> ids;
  {
    MutexLock lock(mu_);
    for (const auto& [id, f] : followed_) ids.push_back(id);
  }
  Status first;
  for (const std::string& id : ids) {
    Status s = ShipLocked(id);
    if (!s.ok()) {
      if (first.ok()) first = s;
      continue;
    }
    MutexLock lock(mu_);
    auto it = followed_.find(id);
    if (it != followed_.end() && it->second.finished) followed_.erase(it);
  }
  return first;
}

size_t LogShipper::FollowedForTest() const {
  MutexLock lock(mu_);
  return followed_.size();
}

Status LogShipper::ShipLocked(const std::string& run_id) {
  Followed f;
  {
    MutexLock lock(mu_);
    auto it = followed_.find(run_id);
    if (it == followed_.end()) return Status::Ok();
    f = it->second;
  }
  const std::string path = log_path_(run_id);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::Ok();  // Nothing written yet.
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size <= f.shipped) return Status::Ok();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Ok();  // Removed meanwhile: nothing to ship.
  in.seekg(static_cast<std::streamoff>(f.shipped));
  std::string buf;
  while (in) {
    buf.resize(options_.max_chunk_bytes);
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    buf.resize(static_cast<size_t>(in.gcount()));
    if (buf.empty()) break;
    const size_t n = buf.size();
    PW_RETURN_IF_ERROR(
        store_.AppendActionLog({run_id, f.pipeline, f.execution_id, f.shipped, std::move(buf)}));
    f.shipped += n;
    MutexLock lock(mu_);
    auto it = followed_.find(run_id);
    if (it != followed_.end()) it->second.shipped = f.shipped;
    buf.clear();
  }
  return Status::Ok();
}

void LogShipper::Loop() {
  NameThisThread("pw-logship");
  const auto interval = std::chrono::duration<double>(options_.interval_seconds);
  for (;;) {
    {
      MutexLock lock(mu_);
      const auto until = std::chrono::steady_clock::now() +
                         std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval);
      while (!stop_) {
        if (wake_.WaitUntil(mu_, until) == std::cv_status::timeout) break;
      }
      if (stop_) return;
    }
    try {
      if (Status s = ShipRound(); !s.ok()) {
        PW_LOG(Warning) << "action logs not shipped to the database yet: " << s.ToString();
      }
    } catch (const std::exception& e) {
      PW_LOG(Error) << "shipping action logs failed: " << e.what();
    }
  }
}

}  // namespace pw::engine
