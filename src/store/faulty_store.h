#pragma once

// FaultyStore: a test double for the tests of the layers above the store
// (see the class comment).

#include <atomic>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/store.h"

namespace pw::store {

// A Store that forwards every call to a real store and can be told to fail
// Commit (and so SaveBatch, which goes through it), to see what the engine
// leaves behind when a commit fails; to fail AppendActionLog (a database
// that is down, for the log shipper); or to drop the lease fence from every
// commit, so the engine's several-servers logic (EnableLeases,
// AdoptPipeline) runs on one SQLite file, which refuses fences. Leases and
// server records keep Store's defaults (SQLite has none either).
class FaultyStore final : public Store {
 public:
  explicit FaultyStore(Store& real) : real_(real) {}
  std::atomic<bool> fail_save_batch{false};  // Every Commit fails while set.
  // When >= 0: that many more Commits go through, then every later one fails.
  std::atomic<int> fail_commits_after{-1};
  std::atomic<bool> drop_fences{false};
  std::atomic<bool> fail_log_appends{false};  // AppendActionLog fails while set.
  std::atomic<int> log_appends{0};            // AppendActionLog calls passed on.
  std::atomic<size_t> rows_by_update{0};      // Rows ListExecutionsByUpdate returned.
  std::atomic<int> job_lists{0};              // ListKv("job/") calls passed on.
  std::atomic<size_t> kv_rows_read{0};        // Rows ListKv and ScanKv returned.
  // Bytes of the values GetKv, ListKv and ScanKv returned, and of the values
  // Commits put (kv, kv_inserts) and PutKv wrote.
  std::atomic<size_t> kv_bytes_read{0};
  std::atomic<size_t> kv_bytes_written{0};
  // Called with each batch before it is passed on, on the committing thread
  // (may block it). Set it before the engine runs.
  std::function<void(const Batch&)> on_commit;
  // Called with the pipeline's name by each ListActiveExecutions before it is
  // passed on, on the reading thread (may block it). Set it before the reads.
  std::function<void(const std::string&)> on_list_active;
  // The same for each ListExecutionsPage (a history page's read).
  std::function<void(const std::string&)> on_list_page;
  // The same with the key of each GetKv (e.g. "pstate/<pipeline>", read
  // with every stored read of a pipeline).
  std::function<void(const std::string&)> on_get_kv;
  // The same with the pipeline's name by each GetPipeline.
  std::function<void(const std::string&)> on_get_pipeline;
  // The same with the execution's id by each GetExecution.
  std::function<void(const std::string&)> on_get_execution;

  Result<PipelineRecord> CreatePipeline(const std::string& name, const std::string& arn,
                                        nlohmann::json declaration, const std::vector<Tag>& tags,
                                        EpochSeconds now, int max_pipelines) override {
    return real_.CreatePipeline(name, arn, std::move(declaration), tags, now, max_pipelines);
  }
  Result<PipelineRecord> UpdatePipeline(const std::string& name, nlohmann::json declaration,
                                        EpochSeconds now) override {
    return real_.UpdatePipeline(name, std::move(declaration), now);
  }
  Result<PipelineRecord> GetPipeline(const std::string& name, std::optional<int> version) override {
    if (on_get_pipeline) on_get_pipeline(name);
    return real_.GetPipeline(name, version);
  }
  Result<std::vector<PipelineRecord>> ListPipelines() override { return real_.ListPipelines(); }
  Status DeletePipeline(const std::string& name) override { return real_.DeletePipeline(name); }
  Result<std::vector<Tag>> ListTags(const std::string& arn) override { return real_.ListTags(arn); }
  Status TagResource(const std::string& arn, const std::vector<Tag>& tags) override {
    return real_.TagResource(arn, tags);
  }
  Status UntagResource(const std::string& arn, const std::vector<std::string>& keys) override {
    return real_.UntagResource(arn, keys);
  }
  Status Commit(const Batch& batch) override {
    if (on_commit) on_commit(batch);
    if (fail_save_batch || !TakeAllowedCommit()) return Unavailable("injected: database is locked");
    for (const auto& [k, v] : batch.kv) kv_bytes_written += v.size();
    for (const auto& [k, v] : batch.kv_inserts) kv_bytes_written += v.size();
    if (drop_fences && batch.fence) {
      Batch unfenced = batch;
      unfenced.fence.reset();
      return real_.Commit(unfenced);
    }
    return real_.Commit(batch);
  }
  Result<std::vector<ExecutionRow>> ListExecutions(const std::string& pipeline) override {
    return real_.ListExecutions(pipeline);
  }
  Result<std::vector<ActionExecutionRow>> ListActionExecutions(
      const std::string& pipeline, const std::string& execution_id) override {
    return real_.ListActionExecutions(pipeline, execution_id);
  }
  Result<std::vector<ActionExecutionRow>> ListActionExecutionsOf(
      const std::string& pipeline, const std::vector<std::string>& execution_ids,
      const std::string& stage, Docs docs) override {
    return real_.ListActionExecutionsOf(pipeline, execution_ids, stage, docs);
  }
  Result<std::vector<ExecutionRow>> ListExecutionsPage(const std::string& pipeline, size_t limit,
                                                       const std::string& before_id,
                                                       Docs docs) override {
    if (on_list_page) on_list_page(pipeline);
    return real_.ListExecutionsPage(pipeline, limit, before_id, docs);
  }
  Result<std::vector<ExecutionRow>> ListExecutionsByUpdate(const std::string& pipeline,
                                                           size_t limit,
                                                           EpochSeconds before_updated,
                                                           const std::string& before_id) override {
    auto rows = real_.ListExecutionsByUpdate(pipeline, limit, before_updated, before_id);
    if (rows.ok()) rows_by_update += rows->size();
    return rows;
  }
  Result<std::vector<ExecutionRow>> ListOldestExecutions(const std::string& pipeline,
                                                         size_t limit) override {
    return real_.ListOldestExecutions(pipeline, limit);
  }
  Result<std::vector<ExecutionRow>> ListActiveExecutions(const std::string& pipeline) override {
    if (on_list_active) on_list_active(pipeline);
    return real_.ListActiveExecutions(pipeline);
  }
  Result<std::optional<std::string>> PipelineOfActionExecution(const std::string& id) override {
    return real_.PipelineOfActionExecution(id);
  }
  Result<std::optional<ExecutionRow>> GetExecution(const std::string& pipeline,
                                                   const std::string& id) override {
    if (on_get_execution) on_get_execution(id);
    return real_.GetExecution(pipeline, id);
  }
  Result<int64_t> CountExecutions(const std::string& pipeline) override {
    return real_.CountExecutions(pipeline);
  }
  Status DeleteExecutions(const std::string& pipeline,
                          const std::vector<std::string>& ids) override {
    return real_.DeleteExecutions(pipeline, ids);
  }
  Status AppendActionLog(const ActionLogChunk& chunk) override {
    if (fail_log_appends) return Unavailable("injected: the database is down");
    ++log_appends;
    return real_.AppendActionLog(chunk);
  }
  Result<std::optional<std::string>> ReadActionLog(const std::string& id, uint64_t offset,
                                                   size_t max_bytes) override {
    return real_.ReadActionLog(id, offset, max_bytes);
  }
  Status DeleteActionLogs(const std::vector<std::string>& execution_ids) override {
    return real_.DeleteActionLogs(execution_ids);
  }
  Result<std::optional<std::string>> GetKv(const std::string& key) override {
    if (on_get_kv) on_get_kv(key);
    auto got = real_.GetKv(key);
    if (got.ok() && *got) kv_bytes_read += (*got)->size();
    return got;
  }
  Status PutKv(const std::string& key, const std::string& value) override {
    kv_bytes_written += value.size();
    return real_.PutKv(key, value);
  }
  Status DeleteKvPrefix(const std::string& prefix) override { return real_.DeleteKvPrefix(prefix); }
  Result<std::vector<std::pair<std::string, std::string>>> ListKv(
      const std::string& prefix) override {
    if (prefix == "job/") ++job_lists;
    auto rows = real_.ListKv(prefix);
    CountRead(rows);
    return rows;
  }
  Result<std::vector<std::pair<std::string, std::string>>> ScanKv(const KvScan& scan) override {
    auto rows = real_.ScanKv(scan);
    CountRead(rows);
    return rows;
  }

 private:
  void CountRead(const Result<std::vector<std::pair<std::string, std::string>>>& rows) {
    if (!rows.ok()) return;
    kv_rows_read += rows->size();
    for (const auto& [k, v] : *rows) kv_bytes_read += v.size();
  }
  // False once fail_commits_after has counted down to 0.
  bool TakeAllowedCommit() {
    int left = fail_commits_after.load();
    while (left > 0 && !fail_commits_after.compare_exchange_weak(left, left - 1)) {
    }
    return left != 0;
  }

  Store& real_;
};

}  // namespace pw::store
