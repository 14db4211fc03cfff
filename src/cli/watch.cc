#include "cli/watch.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <thread>
#include <vector>

#include "cli/execution_queries.h"
#include "cli/retry_plan.h"

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

bool IsEndStatus(const std::string& status) {
  return status == "Succeeded" || status == "Failed" || status == "Stopped" ||
         status == "Abandoned" || status == "Cancelled";
}

// Remembers what was printed, to print only changes. Keys are "stage:<name>"
// and "run:<actionExecutionId>". Prints nothing while `out` is null (the
// baseline of a retry).
class ChangePrinter {
 public:
  explicit ChangePrinter(std::ostream* out) : out_(out) {}
  void SetOut(std::ostream* out) { out_ = out; }

  // Records `status` for `key`; prints it under `label` if it changed. An end
  // status whose key was not last seen InProgress gets an InProgress line
  // first: it started and ended between two polls.
  void Note(const std::string& key, const std::string& label, const std::string& status) {
    if (status.empty()) return;
    const std::string last = Last(key);
    if (last == status) return;
    if (IsEndStatus(status) && last != "InProgress" && last != "Stopping")
      Print(label, "InProgress");
    seen_[key] = status;
    Print(label, status);
  }
  // Prints InProgress for `key` unless that is what it last showed.
  void Started(const std::string& key, const std::string& label) {
    if (Last(key) == "InProgress") return;
    seen_[key] = "InProgress";
    Print(label, "InProgress");
  }
  void Forget(const std::string& key) { seen_.erase(key); }
  bool Seen(const std::string& key) const { return seen_.count(key) > 0; }
  std::string Last(const std::string& key) const {
    auto it = seen_.find(key);
    return it == seen_.end() ? "" : it->second;
  }

 private:
  void Print(const std::string& label, const std::string& status) {
    if (out_ != nullptr) *out_ << StatusLine(label, status) << std::flush;
  }

  std::ostream* out_;
  std::map<std::string, std::string> seen_;
};

// One action's attempts in this execution, oldest first.
using Attempts = std::vector<const json*>;

// Prints the changes of one poll, stage by stage in pipeline order: a stage
// that starts before its actions, one that ends after them.
void PrintChanges(const json& state, const std::vector<json>& runs, const std::string& execution_id,
                  ChangePrinter& printer) {
  std::map<std::string, std::map<std::string, Attempts>> by_stage;  // stage -> action -> runs
  std::map<std::string, std::vector<std::string>> run_order;        // stage -> actions
  for (const json& run : runs) {
    const std::string stage = StringField(run, "stageName");
    const std::string action = StringField(run, "actionName");
    Attempts& attempts = by_stage[stage][action];
    if (attempts.empty()) run_order[stage].push_back(action);
    attempts.push_back(&run);
  }
  auto stages = state.find("stageStates");
  if (stages == state.end() || !stages->is_array()) return;
  for (const json& stage : *stages) {
    const std::string name = StringField(stage, "stageName");
    const std::string stage_key = "stage:" + name;
    std::string stage_status;
    // Only this execution's stage runs: others' would be misleading.
    if (stage.contains("latestExecution") &&
        StringField(stage["latestExecution"], "pipelineExecutionId") == execution_id) {
      stage_status = StringField(stage["latestExecution"], "status");
    }
    // Declared order first, then runs of actions no longer declared.
    std::vector<std::string> actions;
    if (stage.contains("actionStates") && stage["actionStates"].is_array()) {
      for (const json& a : stage["actionStates"]) actions.push_back(StringField(a, "actionName"));
    }
    for (const std::string& a : run_order[name]) {
      if (std::find(actions.begin(), actions.end(), a) == actions.end()) actions.push_back(a);
    }
    // A new attempt in a stage that had ended: the stage ran again (a retry),
    // even if it ended again before this poll.
    bool new_run = false;
    for (const auto& [action, attempts] : by_stage[name]) {
      for (const json* run : attempts) {
        if (!printer.Seen("run:" + StringField(*run, "actionExecutionId"))) new_run = true;
      }
    }
    if (new_run && IsEndStatus(printer.Last(stage_key))) printer.Forget(stage_key);
    const bool ended = IsEndStatus(stage_status);
    if (!stage_status.empty()) {
      if (ended) {
        if (printer.Last(stage_key) != stage_status) printer.Started(stage_key, name);
      } else {
        printer.Note(stage_key, name, stage_status);
      }
    }
    for (const std::string& action : actions) {
      const Attempts& attempts = by_stage[name][action];
      for (size_t i = 0; i < attempts.size(); ++i) {
        std::string label = name + "/" + action;
        if (i > 0) label += " (attempt " + std::to_string(i + 1) + ")";
        printer.Note("run:" + StringField(*attempts[i], "actionExecutionId"), label,
                     StringField(*attempts[i], "status"));
      }
    }
    if (ended) printer.Note(stage_key, name, stage_status);
  }
}

std::string ErrorMessage(const json& run) {
  if (run.contains("output") && run["output"].is_object() &&
      run["output"].contains("executionResult") && run["output"]["executionResult"].is_object() &&
      run["output"]["executionResult"].contains("errorDetails")) {
    return StringField(run["output"]["executionResult"]["errorDetails"], "message");
  }
  return "";
}

void PrintFailure(const CliContext& ctx, const std::string& pipeline,
                  const std::string& execution_id, const ExecutionStatus& status, const json& state,
                  const std::vector<json>& runs) {
  std::ostream& err = ctx.err();
  err << "Pipeline execution " << execution_id << " " << status.status;
  if (!status.summary.empty()) err << ": " << status.summary;
  err << "\n";
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
    const std::string message = ErrorMessage(run);
    err << "  " << label << " failed";
    if (!message.empty()) err << ": " << message;
    err << "\n    its log: pipewright logs --pipeline-name " << pipeline
        << " --pipeline-execution-id " << execution_id << " --stage-name "
        << StringField(run, "stageName") << " --action-name " << StringField(run, "actionName")
        << "\n";
  }
  PrintRetryHints(ctx, err, pipeline, execution_id, state);
}

}  // namespace

void PrintRetryHints(const CliContext& ctx, std::ostream& out, const std::string& pipeline,
                     const std::string& execution_id, const json& state) {
  auto stages = state.find("stageStates");
  if (stages == state.end() || !stages->is_array()) return;
  for (const json& stage : *stages) {
    if (!stage.contains("latestExecution")) continue;
    const std::string id = StringField(stage["latestExecution"], "pipelineExecutionId");
    if (id.empty() || (!execution_id.empty() && id != execution_id)) continue;
    const std::string stage_status = StringField(stage["latestExecution"], "status");
    if (stage_status != "Failed" && stage_status != "Stopped") continue;
    const std::string name = StringField(stage, "stageName");
    Result<json> plan = ctx.Call(kGetStageRetryPlanTarget, {{"pipelineName", pipeline},
                                                            {"stageName", name},
                                                            {"pipelineExecutionId", id},
                                                            {"retryMode", "FAILED_ACTIONS"}});
    if (plan.ok() && plan->is_object() && plan->contains("retryable") &&
        (*plan)["retryable"].is_boolean() && !(*plan)["retryable"].get<bool>()) {
      out << "Stage " << name << " cannot be retried (" << StringField(*plan, "errorCode")
          << "): " << StringField(*plan, "reason") << "\n";
      continue;
    }
    out << "Retry the failed actions of stage " << name << " once the cause is fixed:\n"
        << "  pipewright retry-stage-execution --pipeline-name " << pipeline << " --stage-name "
        << name << " --pipeline-execution-id " << id << " --retry-mode FAILED_ACTIONS --wait\n";
  }
}

Result<WaitBaseline> ReadWaitBaseline(const CliContext& ctx, const std::string& pipeline,
                                      const std::string& execution_id) {
  WaitBaseline b;
  PW_ASSIGN_OR_RETURN(b.state, ctx.Call(ModelTarget("GetPipelineState"), {{"name", pipeline}}));
  PW_ASSIGN_OR_RETURN(b.runs, ListActionRuns(ctx, pipeline, execution_id));
  return b;
}

int WaitForExecution(const CliContext& ctx, const std::string& pipeline,
                     const std::string& execution_id, std::chrono::milliseconds timeout,
                     const WaitBaseline* baseline) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ChangePrinter printer(nullptr);
  if (baseline != nullptr) PrintChanges(baseline->state, baseline->runs, execution_id, printer);
  printer.SetOut(&ctx.out());
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
      PrintFailure(ctx, pipeline, execution_id, *status, *state, *runs);
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
