#include "cli/retry_plan.h"

#include <algorithm>
#include <ostream>

#include "cli/arguments.h"
#include "cli/execution_queries.h"
#include "cli/output.h"

namespace pw::cli {

namespace {

std::string InputString(const OJson& input, const char* key) {
  auto it = input.find(key);
  return it != input.end() && it->is_string() ? it->get<std::string>() : "";
}

// The plan in a stable, readable order: names, the requested mode's fields,
// then both plans.
OJson OrderedPlan(const nlohmann::json& plan) {
  OJson out = OJson::object();
  for (const char* key : {"pipelineName", "stageName", "pipelineExecutionId", "retryable",
                          "errorCode", "reason", "actionsToRerun", "actionsToRunAfter"}) {
    if (plan.contains(key)) out[key] = OJson::parse(plan[key].dump());
  }
  for (const auto& [key, value] : plan.items()) {
    if (!out.contains(key)) out[key] = OJson::parse(value.dump());
  }
  return out;
}

Result<nlohmann::json> CallPlan(const CliContext& ctx, const OJson& input) {
  nlohmann::json request = nlohmann::json::object();
  for (const char* key : {"pipelineName", "stageName", "pipelineExecutionId", "retryMode"}) {
    if (input.contains(key)) request[key] = nlohmann::json::parse(input[key].dump());
  }
  return ctx.Call(kGetStageRetryPlanTarget, request);
}

int ParamError(const CliContext& ctx, const std::string& message) {
  ctx.err() << "\n" << message << "\n";
  return kExitParamError;
}

void PrintRetryPlanUsage(std::ostream& out) {
  out << "usage: pipewright get-stage-retry-plan [parameters]\n\n"
         "Shows what retry-stage-execution would rerun in each retry mode, or why it would be\n"
         "refused. Never changes anything.\n\n"
         "Parameters:\n"
         "  --pipeline-name <string>  (required)\n"
         "  --stage-name <string>  (required)\n"
         "  --pipeline-execution-id <string>  (required unless --latest)\n"
         "  --latest  use the execution that last ran the stage\n"
         "  --retry-mode <string>  also show this mode's plan at the top level\n"
         "  --cli-input-json <JSON or file://path>\n";
}

}  // namespace

bool TakeLatestFlag(std::vector<std::string>& args) {
  auto it = std::remove(args.begin(), args.end(), "--latest");
  bool found = it != args.end();
  args.erase(it, args.end());
  return found;
}

Status FillLatestStageExecution(const CliContext& ctx, OJson& input) {
  const std::string pipeline = InputString(input, "pipelineName");
  const std::string stage = InputString(input, "stageName");
  if (pipeline.empty() || stage.empty()) {
    return InvalidArgument("--latest needs --pipeline-name and --stage-name", "");
  }
  if (input.contains("pipelineExecutionId")) {
    return InvalidArgument("--latest and --pipeline-execution-id cannot be used together", "");
  }
  PW_ASSIGN_OR_RETURN(nlohmann::json state,
                      ctx.Call(ModelTarget("GetPipelineState"), {{"name", pipeline}}));
  auto stages = state.find("stageStates");
  if (stages != state.end() && stages->is_array()) {
    for (const nlohmann::json& s : *stages) {
      if (StringField(s, "stageName") != stage) continue;
      std::string id;
      if (s.contains("latestExecution")) {
        id = StringField(s["latestExecution"], "pipelineExecutionId");
      }
      if (id.empty()) {
        return InvalidArgument(
            "Stage '" + stage + "' of pipeline '" + pipeline + "' has never run (--latest)", "");
      }
      input["pipelineExecutionId"] = id;
      return Status::Ok();
    }
  }
  return InvalidArgument("Stage '" + stage + "' does not exist in pipeline '" + pipeline + "'", "");
}

int PrintRetryDryRun(const CliContext& ctx, const OJson& input) {
  Result<nlohmann::json> plan = CallPlan(ctx, input);
  if (!plan.ok()) return ctx.PrintError(plan.status(), "GetStageRetryPlan");
  if (int printed = ctx.PrintResult("GetStageRetryPlan", OrderedPlan(*plan)); printed != 0) {
    return printed;
  }
  auto retryable = plan->is_object() ? plan->find("retryable") : plan->end();
  if (retryable != plan->end() && retryable->is_boolean() && retryable->get<bool>()) return 0;
  ctx.err() << "Retry not allowed (" << StringField(*plan, "errorCode")
            << "): " << StringField(*plan, "reason") << "\n";
  return kExitServiceError;
}

int RunGetStageRetryPlan(const std::vector<std::string>& args, const CliContext& ctx) {
  std::vector<std::string> rest = args;
  const bool latest = TakeLatestFlag(rest);
  std::vector<std::string> not_required = {"retryMode"};
  if (latest) not_required.push_back("pipelineExecutionId");
  Result<ParsedArgs> parsed =
      ParseOperationArgs("RetryStageExecution", rest, ReadParamFile, not_required);
  if (!parsed.ok()) return ParamError(ctx, parsed.status().message());
  if (parsed->help) {
    PrintRetryPlanUsage(ctx.out());
    return 0;
  }
  OJson input = std::move(parsed->input);
  if (latest) {
    if (Status s = FillLatestStageExecution(ctx, input); !s.ok()) {
      if (s.code() == StatusCode::kInvalidArgument && s.wire_name().empty()) {
        return ParamError(ctx, s.message());
      }
      return ctx.PrintError(s, "GetPipelineState");
    }
  }
  for (const char* key : {"pipelineName", "stageName", "pipelineExecutionId"}) {
    if (InputString(input, key).empty()) {
      return ParamError(
          ctx, std::string("Missing required parameter: --") + ToKebab(key) +
                   (std::string_view(key) == "pipelineExecutionId" ? " (or --latest)" : ""));
    }
  }
  Result<nlohmann::json> plan = CallPlan(ctx, input);
  if (!plan.ok()) return ctx.PrintError(plan.status(), "GetStageRetryPlan");
  return ctx.PrintResult("GetStageRetryPlan", OrderedPlan(*plan));
}

}  // namespace pw::cli
