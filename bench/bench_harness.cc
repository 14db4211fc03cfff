#include "bench_harness.h"

#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>

namespace pw::bench {

using nlohmann::json;

double MonoNow() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double WallNow() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

namespace {

// Nearest-rank percentile of a sorted, non-empty sample.
double Rank(const std::vector<double>& sorted, double q) {
  size_t k = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  k = std::clamp<size_t>(k, 1, sorted.size());
  return sorted[k - 1];
}

}  // namespace

Stats Summarize(std::vector<double> sample) {
  Stats s;
  if (sample.empty()) return s;
  std::sort(sample.begin(), sample.end());
  s.n = sample.size();
  s.min = sample.front();
  s.max = sample.back();
  s.median = Median(sample);
  s.p90 = Rank(sample, 0.90);
  s.p99 = Rank(sample, 0.99);
  s.mean = std::accumulate(sample.begin(), sample.end(), 0.0) / static_cast<double>(s.n);
  return s;
}

double Median(std::vector<double> sample) {
  if (sample.empty()) return 0;
  std::sort(sample.begin(), sample.end());
  const size_t n = sample.size();
  return n % 2 == 1 ? sample[n / 2] : (sample[n / 2 - 1] + sample[n / 2]) / 2;
}

std::string Ms(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", seconds * 1e3);
  return buf;
}

std::string LoadAverage() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  if (!(f >> a >> b >> c)) return "?";
  return a + " " + b + " " + c;
}

// ---------------------------------------------------------------------------
// TimingStore

std::vector<StoreCall> TimingStore::TakeCalls() {
  std::lock_guard lock(mu_);
  std::vector<StoreCall> out;
  out.swap(calls_);
  return out;
}

void TimingStore::Record(StoreCall call) {
  std::lock_guard lock(mu_);
  calls_.push_back(std::move(call));
}

template <typename F>
auto TimingStore::Time(const char* method, F&& f) -> decltype(f()) {
  const double t0 = MonoNow();
  auto r = f();
  Record(StoreCall{method, MonoNow() - t0, 0, 0});
  return r;
}

#define PW_TIMED(method, expr) Time(method, [&] { return (expr); })

Result<store::PipelineRecord> TimingStore::CreatePipeline(const std::string& name,
                                                          const std::string& arn, json declaration,
                                                          const std::vector<store::Tag>& tags,
                                                          EpochSeconds now, int max_pipelines) {
  return PW_TIMED("CreatePipeline", inner_->CreatePipeline(name, arn, std::move(declaration), tags,
                                                           now, max_pipelines));
}
Result<store::PipelineRecord> TimingStore::UpdatePipeline(const std::string& name, json declaration,
                                                          EpochSeconds now) {
  return PW_TIMED("UpdatePipeline", inner_->UpdatePipeline(name, std::move(declaration), now));
}
Result<store::PipelineRecord> TimingStore::GetPipeline(const std::string& name,
                                                       std::optional<int> version) {
  return PW_TIMED("GetPipeline", inner_->GetPipeline(name, version));
}
Result<std::vector<store::PipelineRecord>> TimingStore::ListPipelines() {
  return PW_TIMED("ListPipelines", inner_->ListPipelines());
}
Status TimingStore::DeletePipeline(const std::string& name) {
  return PW_TIMED("DeletePipeline", inner_->DeletePipeline(name));
}
Result<std::vector<store::Tag>> TimingStore::ListTags(const std::string& arn) {
  return PW_TIMED("ListTags", inner_->ListTags(arn));
}
Status TimingStore::TagResource(const std::string& arn, const std::vector<store::Tag>& tags) {
  return PW_TIMED("TagResource", inner_->TagResource(arn, tags));
}
Status TimingStore::UntagResource(const std::string& arn, const std::vector<std::string>& keys) {
  return PW_TIMED("UntagResource", inner_->UntagResource(arn, keys));
}
Result<std::vector<store::ExecutionRow>> TimingStore::ListExecutions(const std::string& pipeline) {
  return PW_TIMED("ListExecutions", inner_->ListExecutions(pipeline));
}
Result<std::vector<store::ActionExecutionRow>> TimingStore::ListActionExecutions(
    const std::string& pipeline, const std::string& execution_id) {
  return PW_TIMED("ListActionExecutions", inner_->ListActionExecutions(pipeline, execution_id));
}
Result<std::optional<std::string>> TimingStore::GetKv(const std::string& key) {
  return PW_TIMED("GetKv", inner_->GetKv(key));
}
Status TimingStore::PutKv(const std::string& key, const std::string& value) {
  return PW_TIMED("PutKv", inner_->PutKv(key, value));
}
Result<std::vector<std::pair<std::string, std::string>>> TimingStore::ListKv(
    const std::string& prefix) {
  return inner_->ListKv(prefix);
}

Result<std::vector<std::pair<std::string, std::string>>> TimingStore::ScanKv(
    const store::KvScan& scan) {
  return inner_->ScanKv(scan);
}

Status TimingStore::DeleteKvPrefix(const std::string& prefix) {
  return PW_TIMED("DeleteKvPrefix", inner_->DeleteKvPrefix(prefix));
}

#undef PW_TIMED

Status TimingStore::Commit(const store::Batch& batch) {
  // The inner store dumps each doc itself; measuring the size here costs one
  // more dump (outside the timed region, but on the engine's thread).
  size_t bytes = 0;
  if (measure_bytes_) {
    for (const auto& e : batch.executions) bytes += e.doc.dump().size();
    for (const auto& a : batch.actions) bytes += a.doc.dump().size();
    for (const auto& [k, v] : batch.kv) bytes += v.size();
  }
  const double t0 = MonoNow();
  Status s = inner_->Commit(batch);
  Record(StoreCall{"SaveBatch", MonoNow() - t0, bytes,
                   batch.executions.size() + batch.actions.size() + batch.kv.size()});
  if (s.ok()) {
    {
      std::lock_guard lock(mu_);
      for (const auto& e : batch.executions) status_[e.id] = e.status;
    }
    status_cv_.notify_all();
  }
  return s;
}

std::string TimingStore::WaitForFinalStatus(const std::string& id, double timeout_seconds) {
  std::unique_lock lock(mu_);
  auto final = [&] {
    auto it = status_.find(id);
    return it != status_.end() && it->second != "InProgress" && it->second != "Stopping";
  };
  status_cv_.wait_for(lock, std::chrono::duration<double>(timeout_seconds), final);
  auto it = status_.find(id);
  return it == status_.end() ? std::string() : it->second;
}

// ---------------------------------------------------------------------------
// BenchEngine

Result<std::unique_ptr<BenchEngine>> BenchEngine::Create(const std::string& prefix, bool recover,
                                                         bool files_on_tmpfs) {
  PW_ASSIGN_OR_RETURN(runner::ScopedTempDir tmp, runner::ScopedTempDir::Create(prefix));
  std::unique_ptr<BenchEngine> env(new BenchEngine(std::move(tmp)));
  std::filesystem::create_directories(env->path() + "/data");
  env->data_dir_ = env->path() + "/data";
  if (files_on_tmpfs) {
    std::string templ = "/dev/shm/" + prefix + "-XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) return Internal("mkdtemp " + templ);
    env->shm_dir_ = templ;
    env->data_dir_ = templ;
  }
  PW_ASSIGN_OR_RETURN(auto sqlite, store::OpenSqliteStore(env->path() + "/data/pipewright.db"));
  env->store_ = std::make_unique<TimingStore>(std::move(sqlite));
  engine::EngineOptions options;
  options.data_dir = env->data_dir_;
  options.start_on_create = false;
  options.source_poll_seconds = 0;
  env->engine_ = std::make_unique<engine::Engine>(*env->store_, env->clock_, options);
  if (recover) PW_RETURN_IF_ERROR(env->engine_->Recover());
  return env;
}

BenchEngine::~BenchEngine() {
  engine_.reset();  // Before the store it uses.
  store_.reset();
  if (!shm_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(shm_dir_, ec);
  }
}

// ---------------------------------------------------------------------------
// Pipelines and waiting

json CommandsPipeline(const std::string& name, const std::string& source_dir,
                      const std::string& stage, int n, bool sequential,
                      const std::string& commands) {
  auto type = [](const char* category, const char* provider) {
    return json{{"category", category}, {"owner", "AWS"}, {"provider", provider}, {"version", "1"}};
  };
  json source = {{"name", "Src"},
                 {"actionTypeId", type("Source", "Directory")},
                 {"runOrder", 1},
                 {"configuration", {{"Path", source_dir}}},
                 {"inputArtifacts", json::array()},
                 {"outputArtifacts", json::array({{{"name", "SourceOut"}}})}};
  json actions = json::array();
  for (int i = 1; i <= n; ++i) {
    char action_name[16];
    std::snprintf(action_name, sizeof action_name, "A%02d", i);
    actions.push_back({{"name", action_name},
                       {"actionTypeId", type("Build", "Commands")},
                       {"runOrder", sequential ? i : 1},
                       {"configuration", {{"Commands", commands}}},
                       {"inputArtifacts", json::array()},
                       {"outputArtifacts", json::array()}});
  }
  return {{"name", name},
          {"roleArn", "arn:aws:iam::123456789012:role/pipewright"},
          {"artifactStore", {{"type", "S3"}, {"location", "pipewright-artifacts"}}},
          {"stages", json::array({{{"name", "Source"}, {"actions", json::array({source})}},
                                  {{"name", stage}, {"actions", actions}}})}};
}

Result<core::Execution> WaitForExecution(BenchEngine& env, const std::string& pipeline,
                                         const std::string& id, double timeout_seconds) {
  (void)env.store().WaitForFinalStatus(id, timeout_seconds);
  PW_ASSIGN_OR_RETURN(engine::Snapshot snap, env.engine().GetSnapshot(pipeline));
  const core::Execution* e = snap.state.FindExecution(id);
  if (e == nullptr) return NotFound("execution " + id + " not found");
  if (!e->Active()) return *e;
  std::string runs;
  for (const auto& r : e->runs) {
    runs += " " + r.stage + "/" + r.action + "=" + std::string(core::Name(r.status));
  }
  return Unavailable("execution " + id + " still " + std::string(core::Name(e->status)) +
                     " after " + std::to_string(timeout_seconds) + " s at stage " +
                     std::to_string(e->stage_index) + (e->in_stage ? "" : " (waiting to enter)") +
                     "; runs:" + runs);
}

}  // namespace pw::bench
