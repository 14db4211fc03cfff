#pragma once

// The server's metrics (GET /metrics, README: Operations): one registry per
// process, like the log. The API layer counts requests and refusals; the
// engine counts executions, action runs, retries, worker polls and store
// commits; gauges that belong to their owner (queue depth, jobs waiting,
// artifact bytes) are collected at each scrape by functions `serve` adds.
//
//   ServerMetrics& m = Metrics();
//   m.api_requests.With({"GetPipeline", ""}).Inc();
//   m.Render();  // The Prometheus text format.
//
// Thread-safe. Counters are since the process started (Prometheus handles
// resets). Executions and action runs are counted when they end in this
// process: those running at a restart are picked up when their pipeline is
// loaded (Track), so an end is counted once per run of the server.

#include <map>
#include <string>

#include "common/metrics.h"
#include "common/mutex.h"
#include "core/execution.h"
#include "core/machine.h"

namespace pw::engine {

class ServerMetrics {
 public:
  ServerMetrics();
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  metrics::Registry registry;
  metrics::Family<metrics::Gauge>& build_info;                // {version, commit}
  metrics::Family<metrics::Counter>& api_requests;            // {operation, error}
  metrics::Family<metrics::Histogram>& api_request_seconds;   // {operation, error}
  metrics::Family<metrics::Counter>& auth_refusals;           // {reason}
  metrics::Family<metrics::Counter>& executions_started;      // {trigger}
  metrics::Family<metrics::Counter>& executions_finished;     // {status}
  metrics::Family<metrics::Counter>& action_runs;             // {category, provider, status}
  metrics::Family<metrics::Counter>& retries;                 // {kind}: manual, automatic
  metrics::Family<metrics::Counter>& retry_refusals;          // {reason}
  metrics::Family<metrics::Counter>& worker_polls;            // {action_type}
  metrics::Family<metrics::Counter>& cached_reads;            // {operation, result}
  metrics::Family<metrics::Counter>& stamped_reads;           // {operation, result}
  metrics::Family<metrics::Histogram>& store_commit_seconds;  // {}

  // Records what a committed outcome changed: executions and runs that
  // ended (counted once: only those seen running), those now running.
  void Committed(const core::PipelineState& p, const core::Outcome& out) EXCLUDES(mu_);
  // Remembers the running executions and runs of a pipeline just loaded.
  void Track(const core::PipelineState& p) EXCLUDES(mu_);
  // Forgets a deleted pipeline's running work.
  void Forget(const std::string& pipeline) EXCLUDES(mu_);
  size_t RunningExecutions() const EXCLUDES(mu_);
  size_t RunningActions() const EXCLUDES(mu_);

  std::string Render() const { return registry.Render(); }

 private:
  mutable Mutex mu_;
  std::map<std::string, std::string> running_executions_ GUARDED_BY(mu_);  // Id -> pipeline.
  std::map<std::string, std::string> running_runs_ GUARDED_BY(mu_);        // Id -> pipeline.
};

// The process's metrics.
ServerMetrics& Metrics();

}  // namespace pw::engine
