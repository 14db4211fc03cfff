#include "cli/execution_queries.h"

#include <algorithm>
#include <atomic>

#include "cli/model.h"

namespace pw::cli {

namespace {

// Milliseconds; atomic because tests may set it while nothing polls yet.
std::atomic<int64_t> poll_interval_ms{200};

}  // namespace

std::string StringField(const nlohmann::json& j, std::string_view key) {
  if (!j.is_object()) return "";
  auto it = j.find(std::string(key));
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string ModelTarget(std::string_view op) {
  return OrderedModel()["metadata"].value("targetPrefix", "CodePipeline_20150709") + "." +
         std::string(op);
}

Result<std::vector<nlohmann::json>> ListActionRuns(const CliContext& ctx,
                                                   const std::string& pipeline,
                                                   const std::string& execution_id) {
  std::vector<nlohmann::json> runs;
  nlohmann::json input = {{"pipelineName", pipeline},
                          {"filter", {{"pipelineExecutionId", execution_id}}}};
  while (true) {
    PW_ASSIGN_OR_RETURN(nlohmann::json page, ctx.Call(ModelTarget("ListActionExecutions"), input));
    auto details = page.find("actionExecutionDetails");
    if (details != page.end() && details->is_array()) {
      for (const auto& d : *details) {
        if (d.is_object()) runs.push_back(d);
      }
    }
    const std::string next = StringField(page, "nextToken");
    if (next.empty()) break;
    input["nextToken"] = next;
  }
  // The service lists newest first; a stable sort on start time keeps the
  // order of runs that started in the same instant.
  std::reverse(runs.begin(), runs.end());
  std::stable_sort(runs.begin(), runs.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    double ta =
        a.contains("startTime") && a["startTime"].is_number() ? a["startTime"].get<double>() : 0;
    double tb =
        b.contains("startTime") && b["startTime"].is_number() ? b["startTime"].get<double>() : 0;
    return ta < tb;
  });
  return runs;
}

Result<std::string> LatestExecutionId(const CliContext& ctx, const std::string& pipeline) {
  PW_ASSIGN_OR_RETURN(nlohmann::json page,
                      ctx.Call(ModelTarget("ListPipelineExecutions"),
                               {{"pipelineName", pipeline}, {"maxResults", 1}}));
  auto summaries = page.find("pipelineExecutionSummaries");
  std::string id;
  if (summaries != page.end() && summaries->is_array() && !summaries->empty()) {
    id = StringField((*summaries)[0], "pipelineExecutionId");
  }
  if (id.empty()) return NotFound("Pipeline '" + pipeline + "' has no executions", "");
  return id;
}

Result<ExecutionStatus> GetExecutionStatus(const CliContext& ctx, const std::string& pipeline,
                                           const std::string& execution_id) {
  PW_ASSIGN_OR_RETURN(nlohmann::json r, ctx.Call(ModelTarget("GetPipelineExecution"),
                                                 {{"pipelineName", pipeline},
                                                  {"pipelineExecutionId", execution_id}}));
  const nlohmann::json& pe = r.is_object() && r.contains("pipelineExecution")
                                 ? r["pipelineExecution"]
                                 : nlohmann::json::object();
  return ExecutionStatus{StringField(pe, "status"), StringField(pe, "statusSummary")};
}

bool IsExecutionActive(std::string_view status) {
  return status == "InProgress" || status == "Stopping";
}

std::chrono::milliseconds PollInterval() {
  return std::chrono::milliseconds(poll_interval_ms.load());
}

void SetPollIntervalForTest(std::chrono::milliseconds interval) {
  poll_interval_ms.store(interval.count());
}

}  // namespace pw::cli
