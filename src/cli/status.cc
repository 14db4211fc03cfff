#include "cli/status.h"

#include <chrono>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cli/arguments.h"
#include "cli/execution_queries.h"
#include "cli/watch.h"

namespace pw::cli {

namespace {

using json = nlohmann::json;

struct StatusArgs {
  std::string name;
  bool wait = false;
  double wait_seconds = 3600;
  bool help = false;
};

void PrintStatusUsage(std::ostream& out) {
  out << "usage: pipewright status NAME [--wait [--wait-timeout SECONDS]]\n\n"
         "Shows a pipeline's stages and actions with their statuses, each failure, and the\n"
         "command that retries a failed stage. Never changes anything.\n\n"
         "Parameters:\n"
         "  NAME or --name <string>  (required) the pipeline\n"
         "  --wait  first follow the latest execution until it ends, printing each change;\n"
         "          exit 0 if it Succeeded, 1 if not, 2 on timeout\n"
         "  --wait-timeout <seconds>  (default 3600; implies --wait)\n";
}

Result<StatusArgs> ParseStatusArgs(const std::vector<std::string>& args) {
  StatusArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "help" || a == "--help") {
      out.help = true;
    } else if (a == "--wait") {
      out.wait = true;
    } else if (a == "--name" || a == "--wait-timeout") {
      if (i + 1 >= args.size()) {
        return InvalidArgument(UsageText("argument " + a + ": expected one argument"), "");
      }
      const std::string& value = args[++i];
      if (a == "--name") {
        out.name = value;
        continue;
      }
      char* end = nullptr;
      out.wait_seconds = std::strtod(value.c_str(), &end);
      if (value.empty() || end != value.c_str() + value.size() || !(out.wait_seconds >= 0) ||
          out.wait_seconds > 1e9) {
        return InvalidArgument(
            UsageText("argument --wait-timeout: invalid seconds value: '" + value + "'"), "");
      }
      out.wait = true;
    } else if (a.rfind("-", 0) != 0 && out.name.empty()) {
      out.name = a;
    } else {
      return InvalidArgument(UsageText("Unknown options: " + a), "");
    }
  }
  if (!out.help && out.name.empty()) {
    return InvalidArgument(UsageText("the following arguments are required: NAME (or --name)"), "");
  }
  return out;
}

std::string Column(const std::string& text, size_t width) {
  std::string out = text;
  out.append(out.size() < width ? width - out.size() : 2, ' ');
  return out;
}

// The status of an action in words: the API's status, or what it waits for.
std::string ActionWords(const json& action_state, const std::string& category) {
  if (!action_state.contains("latestExecution")) return "Not run";
  const json& e = action_state["latestExecution"];
  const std::string status = StringField(e, "status");
  if (status == "InProgress") {
    if (category == "Approval") return "Waiting for approval";
    if (StringField(e, "summary").rfind("Waiting for a worker", 0) == 0) {
      return "Waiting for a worker";
    }
  }
  return status.empty() ? "Unknown" : status;
}

// "Stage/Action" -> category, from the declaration.
std::map<std::string, std::string> Categories(const json& pipeline) {
  std::map<std::string, std::string> out;
  if (!pipeline.contains("pipeline") || !pipeline["pipeline"].contains("stages") ||
      !pipeline["pipeline"]["stages"].is_array()) {
    return out;
  }
  for (const json& s : pipeline["pipeline"]["stages"]) {
    if (!s.is_object() || !s.contains("actions") || !s["actions"].is_array()) continue;
    for (const json& a : s["actions"]) {
      if (!a.is_object() || !a.contains("actionTypeId")) continue;
      out[StringField(s, "name") + "/" + StringField(a, "name")] =
          StringField(a["actionTypeId"], "category");
    }
  }
  return out;
}

int PrintStatus(const CliContext& ctx, const std::string& name) {
  Result<json> declared = ctx.Call(ModelTarget("GetPipeline"), {{"name", name}});
  if (!declared.ok()) return ctx.PrintError(declared.status(), "GetPipeline");
  Result<json> state = ctx.Call(ModelTarget("GetPipelineState"), {{"name", name}});
  if (!state.ok()) return ctx.PrintError(state.status(), "GetPipelineState");
  const std::map<std::string, std::string> categories = Categories(*declared);
  std::ostream& out = ctx.out();
  out << "Pipeline " << name;
  if (state->contains("pipelineVersion") && (*state)["pipelineVersion"].is_number()) {
    out << " (version " << (*state)["pipelineVersion"].get<int64_t>() << ")";
  }
  Result<std::string> latest = LatestExecutionId(ctx, name);
  if (latest.ok()) {
    Result<ExecutionStatus> exec = GetExecutionStatus(ctx, name, *latest);
    if (exec.ok()) out << ": latest execution " << *latest << " " << exec->status;
  } else if (latest.status().code() == StatusCode::kNotFound &&
             latest.status().wire_name().empty()) {
    out << ": never ran";
  }
  out << "\n";
  const json& stages = state->contains("stageStates") && (*state)["stageStates"].is_array()
                           ? (*state)["stageStates"]
                           : json::array();
  for (const json& stage : stages) {
    const std::string stage_name = StringField(stage, "stageName");
    std::string words = "Not run";
    std::string detail;
    if (stage.contains("latestExecution")) {
      words = StringField(stage["latestExecution"], "status");
      detail = "execution " + StringField(stage["latestExecution"], "pipelineExecutionId");
    }
    if (stage.contains("inboundTransitionState") && stage["inboundTransitionState"].is_object() &&
        stage["inboundTransitionState"].value("enabled", true) == false) {
      const std::string reason = StringField(stage["inboundTransitionState"], "disabledReason");
      const std::string waiting =
          stage.contains("inboundExecution")
              ? StringField(stage["inboundExecution"], "pipelineExecutionId")
              : "";
      if (!waiting.empty()) {
        words = "Blocked at transition";
        detail = "execution " + waiting + " waits";
      } else {
        detail += std::string(detail.empty() ? "" : "; ") + "transition disabled";
      }
      if (!reason.empty()) detail += ": " + reason;
    }
    out << "  " << Column(stage_name, 22) << Column(words, 22) << detail << "\n";
    if (!stage.contains("actionStates") || !stage["actionStates"].is_array()) continue;
    for (const json& action : stage["actionStates"]) {
      const std::string action_name = StringField(action, "actionName");
      auto category = categories.find(stage_name + "/" + action_name);
      const std::string action_words =
          ActionWords(action, category == categories.end() ? "" : category->second);
      std::string message;
      if (action.contains("latestExecution")) {
        const json& e = action["latestExecution"];
        if (e.contains("errorDetails")) message = StringField(e["errorDetails"], "message");
        if (message.empty() && action_words != "Succeeded") message = StringField(e, "summary");
      }
      out << "    " << Column(action_name, 20) << Column(action_words, 22) << message << "\n";
    }
  }
  PrintRetryHints(ctx, out, name, "", *state);
  return 0;
}

}  // namespace

int RunStatus(const std::vector<std::string>& args, const CliContext& ctx) {
  Result<StatusArgs> parsed = ParseStatusArgs(args);
  if (!parsed.ok()) {
    ctx.err() << "\n" << parsed.status().message() << "\n";
    return kExitParamError;
  }
  if (parsed->help) {
    PrintStatusUsage(ctx.out());
    return 0;
  }
  if (!parsed->wait) return PrintStatus(ctx, parsed->name);
  Result<std::string> latest = LatestExecutionId(ctx, parsed->name);
  if (!latest.ok()) {
    if (latest.status().code() == StatusCode::kNotFound && latest.status().wire_name().empty()) {
      ctx.err() << "\n" << latest.status().message() << "\n";
      return 255;
    }
    return ctx.PrintError(latest.status(), "ListPipelineExecutions");
  }
  const int code = WaitForExecution(
      ctx, parsed->name, *latest,
      std::chrono::milliseconds(static_cast<int64_t>(parsed->wait_seconds * 1000)));
  if (code != 0 && code != kExitExecutionUnsuccessful) return code;
  ctx.out() << "\n";
  const int shown = PrintStatus(ctx, parsed->name);
  return shown != 0 ? shown : code;
}

}  // namespace pw::cli
