#pragma once

// Read-only queries the Pipewright CLI extensions (--wait, logs, --latest)
// share, built on CliContext::Call. Thread-compatible, like CliContext.
//
//   auto runs = cli::ListActionRuns(ctx, "p", execution_id);
//   for (const auto& run : *runs) std::cout << run["actionName"] << "\n";

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "cli/cli.h"
#include "common/status.h"

namespace pw::cli {

// j[key] if `j` is an object holding a string there, else "". Server answers
// are untrusted input: no access may throw.
std::string StringField(const nlohmann::json& j, std::string_view key);

// The target of model operation `op` ("GetPipelineState" ->
// "CodePipeline_20150709.GetPipelineState").
std::string ModelTarget(std::string_view op);

// Every action execution (ListActionExecutions detail) of pipeline execution
// `execution_id`, all pages, oldest first. Errors: as CliContext::Call.
Result<std::vector<nlohmann::json>> ListActionRuns(const CliContext& ctx,
                                                   const std::string& pipeline,
                                                   const std::string& execution_id);

// The id of the pipeline's most recent execution. kNotFound (empty wire name)
// when it never ran; otherwise errors as CliContext::Call.
Result<std::string> LatestExecutionId(const CliContext& ctx, const std::string& pipeline);

// The pipeline execution's status ("InProgress", "Failed", ...) and its
// statusSummary ("" if none). Errors: as CliContext::Call.
struct ExecutionStatus {
  std::string status;
  std::string summary;
};
Result<ExecutionStatus> GetExecutionStatus(const CliContext& ctx, const std::string& pipeline,
                                           const std::string& execution_id);

// True while an execution may still change: InProgress or Stopping.
bool IsExecutionActive(std::string_view status);

// How often --wait and --follow poll the server: 200 ms unless a test set it.
std::chrono::milliseconds PollInterval();
void SetPollIntervalForTest(std::chrono::milliseconds interval);

}  // namespace pw::cli
