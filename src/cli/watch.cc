#include "cli/watch.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <thread>
#include <vector>

#include "cli/execution_queries.h"

namespace pw::cli {

namespace {

using json = nlohmann::json;

// Label column width: long enough for "Stage/Action" names seen in practice,
// and always at least two spaces before the status.
std::string StatusLine(const std::string& label, const std::string& status) {
  std::string line = label;
  line.append(label.size() < 22 ? 24 - label.size() : 2, ' ');
  return line + status + "\n";
}

// Remembers what was printed, to print only changes. Keys are "Stage" and
// "Stage/Action".
class ChangePrinter {
 public:
  explicit ChangePrinter(std::ostream& out) : out_(out) {}

  void Note(const std::string& label, const std::string& status) {
    if (status.empty()) return;
    auto [it, inserted] = seen_.try_emplace(label, status);
    if (!inserted && it->second == status) return;
    it->second = status;
    out_ << StatusLine(label, status) << std::flush;
  }

 private:
  std::ostream& out_;
  std::map<std::string, std::string> seen_;
};

// Prints the changes of one poll, stage by stage in pipeline order: a stage
// that starts before its actions, one that ends after them.
void PrintChanges(const json& state, const std::vector<json>& runs, const std::string& execution_id,
                  ChangePrinter& printer) {
  // The latest run of each "Stage/Action" (runs are oldest first).
  std::map<std::string, std::string> action_status;
  std::map<std::string, std::vector<std::string>> stage_actions;  // In first-run order.
  for (const json& run : runs) {
    const std::string stage = StringField(run, "stageName");
    const std::string label = stage + "/" + StringField(run, "actionName");
    if (!action_status.count(label)) stage_actions[stage].push_back(label);
    action_status[label] = StringField(run, "status");
  }
  auto stages = state.find("stageStates");
  if (stages == state.end() || !stages->is_array()) return;
  for (const json& stage : *stages) {
    const std::string name = StringField(stage, "stageName");
    std::string stage_status;
    // Only this execution's stage runs: others' would be misleading.
    if (stage.contains("latestExecution") &&
        StringField(stage["latestExecution"], "pipelineExecutionId") == execution_id) {
      stage_status = StringField(stage["latestExecution"], "status");
    }
    const bool ended = !stage_status.empty() && stage_status != "InProgress";
    if (!ended) printer.Note(name, stage_status);
    // Declared order first, then runs of actions no longer declared.
    std::vector<std::string> labels;
    if (stage.contains("actionStates") && stage["actionStates"].is_array()) {
      for (const json& a : stage["actionStates"]) {
        labels.push_back(name + "/" + StringField(a, "actionName"));
      }
    }
    for (const std::string& label : stage_actions[name]) {
      if (std::find(labels.begin(), labels.end(), label) == labels.end()) labels.push_back(label);
    }
    for (const std::string& label : labels) {
      auto it = action_status.find(label);
      if (it != action_status.end()) printer.Note(label, it->second);
    }
    if (ended) printer.Note(name, stage_status);
  }
}

void PrintFailure(const CliContext& ctx, const std::string& execution_id,
                  const ExecutionStatus& status, const std::vector<json>& runs) {
  ctx.err() << "Pipeline execution " << execution_id << " " << status.status;
  if (!status.summary.empty()) ctx.err() << ": " << status.summary;
  ctx.err() << "\n";
  std::map<std::string, const json*> latest;
  std::vector<std::string> order;
  for (const json& run : runs) {
    const std::string label = StringField(run, "stageName") + "/" + StringField(run, "actionName");
    if (!latest.count(label)) order.push_back(label);
    latest[label] = &run;
  }
  for (const std::string& label : order) {
    const json& run = *latest[label];
    if (StringField(run, "status") != "Failed") continue;
    std::string message;
    if (run.contains("output") && run["output"].is_object() &&
        run["output"].contains("executionResult") && run["output"]["executionResult"].is_object() &&
        run["output"]["executionResult"].contains("errorDetails")) {
      message = StringField(run["output"]["executionResult"]["errorDetails"], "message");
    }
    ctx.err() << "  " << label << " failed";
    if (!message.empty()) ctx.err() << ": " << message;
    ctx.err() << "\n";
  }
}

}  // namespace

int WaitForExecution(const CliContext& ctx, const std::string& pipeline,
                     const std::string& execution_id, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ChangePrinter printer(ctx.out());
  while (true) {
    // Status first: if it has ended, the state read after it is final too.
    Result<ExecutionStatus> status = GetExecutionStatus(ctx, pipeline, execution_id);
    if (!status.ok()) return ctx.PrintError(status.status(), "GetPipelineExecution");
    Result<json> state = ctx.Call(ModelTarget("GetPipelineState"), {{"name", pipeline}});
    if (!state.ok()) return ctx.PrintError(state.status(), "GetPipelineState");
    Result<std::vector<json>> runs = ListActionRuns(ctx, pipeline, execution_id);
    if (!runs.ok()) return ctx.PrintError(runs.status(), "ListActionExecutions");
    PrintChanges(*state, *runs, execution_id, printer);
    if (!IsExecutionActive(status->status)) {
      ctx.out() << StatusLine("Execution", status->status) << std::flush;
      if (status->status == "Succeeded") return 0;
      PrintFailure(ctx, execution_id, *status, *runs);
      return kExitExecutionUnsuccessful;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ctx.err() << "\nTimed out after " << std::chrono::duration<double>(timeout).count()
                << " seconds waiting for pipeline execution " << execution_id << " (status "
                << status->status << ")\n";
      return kExitWaitTimeout;
    }
    std::this_thread::sleep_for(PollInterval());
  }
}

}  // namespace pw::cli
