#pragma once

// Shared pieces of the benchmark programs: statistics, a Store decorator that
// times every call, pipeline declarations, and a wait for an execution to end.
// Benchmarks use the real parts (SQLite file, PosixProcessLauncher, Engine);
// nothing here is a fake.
//
//   PW_ASSIGN_OR_RETURN(auto env, BenchEngine::Create("bench-seq"));
//   auto rec = env->engine().CreatePipeline(SequentialPipeline("p", dir, 20), {}, "bench");
//   auto id = env->engine().StartExecution("p", "", "bench");
//   auto exec = WaitForExecution(env->engine(), "p", *id, 30);
//
// Thread-compatible unless a class says otherwise.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "core/execution.h"
#include "engine/engine.h"
#include "runner/temp_dir.h"
#include "store/store.h"

namespace pw::bench {

// Seconds on the monotonic clock.
double MonoNow();
// Seconds since the epoch (CLOCK_REALTIME), as the engine's SystemClock.
double WallNow();

// Order statistics of a sample, in the sample's unit. Empty sample: all 0.
struct Stats {
  size_t n = 0;
  double min = 0;
  double median = 0;
  double p90 = 0;
  double p99 = 0;
  double max = 0;
  double mean = 0;
};
Stats Summarize(std::vector<double> sample);
double Median(std::vector<double> sample);

// One timed Store call: which method, how long, bytes of JSON written.
struct StoreCall {
  std::string method;
  double seconds = 0;
  size_t doc_bytes = 0;  // SaveBatch with measure_bytes: execution + action docs + kv values.
  size_t rows = 0;       // SaveBatch only: executions + actions + kv rows.
};

// A Store that forwards to another and records the latency of every call.
// Thread-safe (the record is guarded by mu_). `inner` is owned.
class TimingStore final : public store::Store {
 public:
  explicit TimingStore(std::unique_ptr<store::Store> inner) : inner_(std::move(inner)) {}

  // Returns and clears the calls recorded so far.
  std::vector<StoreCall> TakeCalls();

  // When on, Commit also records doc_bytes. Off by default: measuring
  // dumps every doc once more, inside the engine's critical path.
  void set_measure_bytes(bool on) { measure_bytes_ = on; }

  // Blocks until a Commit has durably written execution `id` with a
  // status other than InProgress/Stopping, or `timeout_seconds` pass. Returns
  // the last status written for it ("" if none). Wakes on the store's own
  // condition variable, so waiting takes nothing from the engine.
  std::string WaitForFinalStatus(const std::string& id, double timeout_seconds);

  Result<store::PipelineRecord> CreatePipeline(const std::string& name, const std::string& arn,
                                               nlohmann::json declaration,
                                               const std::vector<store::Tag>& tags,
                                               EpochSeconds now, int max_pipelines) override;
  Result<store::PipelineRecord> UpdatePipeline(const std::string& name, nlohmann::json declaration,
                                               EpochSeconds now) override;
  Result<store::PipelineRecord> GetPipeline(const std::string& name,
                                            std::optional<int> version) override;
  Result<std::vector<store::PipelineRecord>> ListPipelines() override;
  Status DeletePipeline(const std::string& name) override;
  Result<std::vector<store::Tag>> ListTags(const std::string& arn) override;
  Status TagResource(const std::string& arn, const std::vector<store::Tag>& tags) override;
  Status UntagResource(const std::string& arn, const std::vector<std::string>& keys) override;
  // Recorded under "SaveBatch", the name the benchmarks look for.
  Status Commit(const store::Batch& batch) override;
  Result<std::vector<store::ExecutionRow>> ListExecutions(const std::string& pipeline) override;
  Result<std::vector<store::ActionExecutionRow>> ListActionExecutions(
      const std::string& pipeline, const std::string& execution_id) override;
  Result<std::optional<std::string>> PipelineOfActionExecution(const std::string& id) override {
    return inner_->PipelineOfActionExecution(id);
  }
  Result<std::optional<std::string>> GetKv(const std::string& key) override;
  Status PutKv(const std::string& key, const std::string& value) override;
  Status DeleteKvPrefix(const std::string& prefix) override;
  Result<std::vector<std::pair<std::string, std::string>>> ListKv(
      const std::string& prefix) override;
  Result<std::vector<std::pair<std::string, std::string>>> ScanKv(
      const store::KvScan& scan) override;

 private:
  void Record(StoreCall call);
  // Runs `f`, records its latency under `method`, returns its result.
  template <typename F>
  auto Time(const char* method, F&& f) -> decltype(f());

  std::unique_ptr<store::Store> inner_;
  std::atomic<bool> measure_bytes_{false};
  std::mutex mu_;
  std::vector<StoreCall> calls_;  // Guarded by mu_.
  std::condition_variable status_cv_;
  std::map<std::string, std::string> status_;  // Execution id -> last saved. Guarded by mu_.
};

// A real engine on a fresh temp data dir with a real SQLite file, wrapped in a
// TimingStore. start_on_create is off, Git polling off. With `recover`,
// Engine::Recover() is called as the server does, which starts the 1 s
// ticker thread. With `files_on_tmpfs`, the engine's data dir (work dirs,
// scripts, logs) is a fresh directory under /dev/shm while the SQLite file
// stays on disk: an A/B for what the engine's per-action files cost.
// Destruction stops the engine first, then removes both directories.
class BenchEngine {
 public:
  static Result<std::unique_ptr<BenchEngine>> Create(const std::string& prefix,
                                                     bool recover = false,
                                                     bool files_on_tmpfs = false);
  BenchEngine(const BenchEngine&) = delete;
  BenchEngine& operator=(const BenchEngine&) = delete;
  ~BenchEngine();

  engine::Engine& engine() { return *engine_; }
  TimingStore& store() { return *store_; }
  // The temp dir root; the SQLite file is path()/data/pipewright.db.
  const std::string& path() const { return tmp_.path(); }
  // The engine's data dir: path()/data, or under /dev/shm.
  const std::string& data_dir() const { return data_dir_; }

 private:
  explicit BenchEngine(runner::ScopedTempDir tmp) : tmp_(std::move(tmp)) {}

  runner::ScopedTempDir tmp_;
  std::string data_dir_;
  std::string shm_dir_;  // Owned; removed by the destructor. Empty unless files_on_tmpfs.
  SystemClock clock_;
  std::unique_ptr<TimingStore> store_;
  std::unique_ptr<engine::Engine> engine_;
};

// Pipeline declarations. Stage "Source": one Source/Directory action reading
// `source_dir`; then one stage `stage` of Build/Commands actions A01..AN.
// runOrders 1..n when `sequential`, else all 1.
nlohmann::json CommandsPipeline(const std::string& name, const std::string& source_dir,
                                const std::string& stage, int n, bool sequential,
                                const std::string& commands);

// Waits until execution `id` is durably no longer InProgress/Stopping
// (TimingStore::WaitForFinalStatus), then returns a copy of it from
// GetSnapshot. kUnavailable after `timeout`, with the runs' states.
//
// Deliberately not Engine::WaitIdleForTest: it waits on the same condition
// variable as the engine's workers, and Enqueue's notify_one can wake the
// waiter instead of a worker, stranding the task (seen: a run stuck
// InProgress with its exit task queued and both workers asleep).
Result<core::Execution> WaitForExecution(BenchEngine& env, const std::string& pipeline,
                                         const std::string& id, double timeout_seconds);

// The first three fields of /proc/loadavg ("?" if unreadable): the machine is
// shared, and other load shows in every figure.
std::string LoadAverage();

// Formats seconds as milliseconds with 3 decimals, e.g. "1.234".
std::string Ms(double seconds);

}  // namespace pw::bench
