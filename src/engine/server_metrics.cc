#include "engine/server_metrics.h"

#include "common/log.h"
#include "engine/internal.h"

namespace pw::engine {
namespace {

bool Running(core::ExecutionStatus s) {
  return s == core::ExecutionStatus::kInProgress || s == core::ExecutionStatus::kStopping;
}

}  // namespace

ServerMetrics::ServerMetrics()
    : build_info(registry.AddGauge("pipewright_build_info",
                                   "Always 1; the labels name the running build.",
                                   {"version", "commit"})),
      api_requests(registry.AddCounter(
          "pipewright_api_requests_total",
          "API requests answered, by operation and error code (\"\" when it succeeded).",
          {"operation", "error"})),
      api_request_seconds(registry.AddHistogram(
          "pipewright_api_request_duration_seconds",
          "Time to answer an API request (a long poll counts its wait), by operation and error "
          "code.",
          {"operation", "error"})),
      auth_refusals(registry.AddCounter(
          "pipewright_auth_refusals_total",
          "Requests refused by authentication or by a key's policy, by error code.", {"reason"})),
      executions_started(registry.AddCounter("pipewright_executions_started_total",
                                             "Pipeline executions started, by trigger.",
                                             {"trigger"})),
      executions_finished(registry.AddCounter(
          "pipewright_executions_finished_total",
          "Pipeline executions that ended (Succeeded, Failed, Stopped, Superseded, Cancelled).",
          {"status"})),
      action_runs(registry.AddCounter("pipewright_action_runs_total",
                                      "Action executions that ended, by action type and status.",
                                      {"category", "provider", "status"})),
      retries(registry.AddCounter("pipewright_retries_total",
                                  "Stage retries: manual (RetryStageExecution) or automatic "
                                  "(onFailure result RETRY).",
                                  {"kind"})),
      retry_refusals(registry.AddCounter("pipewright_retry_refusals_total",
                                         "RetryStageExecution requests refused, by error code.",
                                         {"reason"})),
      worker_polls(registry.AddCounter("pipewright_worker_polls_total",
                                       "PollForJobs calls by job workers, by action type.",
                                       {"action_type"})),
      cached_reads(registry.AddCounter(
          "pipewright_cached_reads_total",
          "GetPipeline, GetPipelineState, ListPipelineExecutions (first page), "
          "GetPipelineExecution and ListActionExecutions through the server's read cache: a kept "
          "answer (hit), computed "
          "(miss; every one with several servers, where pipewright_stamped_reads_total counts "
          "the reads of pipelines driven elsewhere), or the answer another request was "
          "computing since the pipeline last changed (shared).",
          {"operation", "result"})),
      stamped_reads(registry.AddCounter(
          "pipewright_stamped_reads_total",
          "Reads of a pipeline another server drives (several servers): answers kept by the "
          "pipeline's change stamp (hit), computed from the database (miss), given the answer "
          "another request was computing at the same stamp (shared), or computed and not kept "
          "(uncacheable: they depend on job documents).",
          {"operation", "result"})),
      store_commit_seconds(registry.AddHistogram(
          "pipewright_store_commit_duration_seconds",
          "Time to commit one engine decision to the store (one transaction).", {})) {
  registry.AddCollected("pipewright_executions_running", "Executions in progress or stopping.", {},
                        [this] {
                          return std::vector<std::pair<metrics::Labels, double>>{
                              {{}, static_cast<double>(RunningExecutions())}};
                        });
  registry.AddCollected("pipewright_actions_running", "Action executions in progress.", {}, [this] {
    return std::vector<std::pair<metrics::Labels, double>>{
        {{}, static_cast<double>(RunningActions())}};
  });
}

void ServerMetrics::Committed(const core::PipelineState& p, const core::Outcome& out) {
  MutexLock lock(mu_);
  for (const auto& id : out.changed_executions) {
    const core::Execution* e = p.FindExecution(id);
    if (e == nullptr) continue;
    if (Running(e->status)) {
      running_executions_[e->id] = e->pipeline;
    } else if (running_executions_.erase(e->id) > 0) {
      executions_finished.With({std::string(core::Name(e->status))}).Inc();
      PW_LOG(Info)
              .Field("pipeline", e->pipeline)
              .Field("execution_id", e->id)
              .Field("status", core::Name(e->status))
              .Field("duration_ms", static_cast<int64_t>((e->updated - e->started) * 1000))
          << "execution ended";
    }
    for (const auto& r : e->runs) {
      if (!out.changed_runs.count(r.id)) continue;
      if (r.status == core::ActionStatus::kInProgress) {
        running_runs_[r.id] = e->pipeline;
      } else if (running_runs_.erase(r.id) > 0) {
        const core::ActionDecl* a = FindActionDecl(p.decl, r.stage, r.action);
        action_runs
            .With({a ? a->type.category : "", a ? a->type.provider : "",
                   std::string(core::Name(r.status))})
            .Inc();
        PW_LOG(Info)
                .Field("pipeline", e->pipeline)
                .Field("execution_id", e->id)
                .Field("action_execution_id", r.id)
                .Field("stage", r.stage)
                .Field("action", r.action)
                .Field("status", core::Name(r.status))
                .Field("error", r.error_code)
                .Field("duration_ms", static_cast<int64_t>((r.updated - r.started) * 1000))
            << "action ended";
      }
    }
  }
  if (!out.auto_retried.empty()) retries.With({"automatic"}).Inc(out.auto_retried.size());
}

void ServerMetrics::Track(const core::PipelineState& p) {
  MutexLock lock(mu_);
  for (const auto& e : p.executions) {
    if (!Running(e.status)) continue;
    running_executions_[e.id] = e.pipeline;
    for (const auto& r : e.runs) {
      if (r.status == core::ActionStatus::kInProgress) running_runs_[r.id] = e.pipeline;
    }
  }
}

void ServerMetrics::Forget(const std::string& pipeline) {
  MutexLock lock(mu_);
  std::erase_if(running_executions_, [&pipeline](const auto& kv) { return kv.second == pipeline; });
  std::erase_if(running_runs_, [&pipeline](const auto& kv) { return kv.second == pipeline; });
}

size_t ServerMetrics::RunningExecutions() const {
  MutexLock lock(mu_);
  return running_executions_.size();
}

size_t ServerMetrics::RunningActions() const {
  MutexLock lock(mu_);
  return running_runs_.size();
}

ServerMetrics& Metrics() {
  static ServerMetrics* const metrics = new ServerMetrics();  // Never destroyed: threads may
  return *metrics;                                            // count while the process exits.
}

}  // namespace pw::engine
