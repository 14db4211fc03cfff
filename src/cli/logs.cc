#include "cli/logs.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <thread>
#include <variant>

#include "cli/arguments.h"
#include "cli/execution_queries.h"

namespace pw::cli {

namespace {

using json = nlohmann::json;

struct LogsArgs {
  std::string pipeline;
  std::string execution_id;  // Empty: the latest execution.
  std::string action;
  std::string stage;  // Empty: any stage, if the action name is unique.
  int attempt = 0;    // 1-based; 0 = latest.
  bool follow = false;
  bool help = false;
};

void PrintLogsUsage(std::ostream& out) {
  out << "usage: pipewright logs [parameters]\n\n"
         "Prints the log of an action execution.\n\n"
         "Parameters:\n"
         "  --pipeline-name <string>  (required)\n"
         "  --action-name <string>  (required)\n"
         "  --pipeline-execution-id <string>  (default: the latest execution)\n"
         "  --stage-name <string>  (needed when several stages have the action name)\n"
         "  --attempt latest|<N>  (default latest; 1 is the first attempt)\n"
         "  --follow  keep printing while the action runs; exit 0 only if it Succeeded\n";
}

Result<LogsArgs> ParseLogsArgs(const std::vector<std::string>& args) {
  LogsArgs out;
  std::vector<std::string> unknown;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> value;
    if (auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    if (flag == "help" || flag == "--help") {
      out.help = true;
      continue;
    }
    if (flag == "--follow") {
      out.follow = true;
      continue;
    }
    std::string* target = nullptr;
    std::string attempt;
    if (flag == "--pipeline-name") target = &out.pipeline;
    if (flag == "--pipeline-execution-id") target = &out.execution_id;
    if (flag == "--action-name") target = &out.action;
    if (flag == "--stage-name") target = &out.stage;
    if (flag == "--attempt") target = &attempt;
    if (target == nullptr) {
      unknown.push_back(args[i]);
      continue;
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        return InvalidArgument(UsageText("argument " + flag + ": expected one argument"), "");
      }
      value = args[++i];
    }
    *target = *value;
    if (flag == "--attempt" && attempt != "latest") {
      if (attempt.empty() || attempt.size() > 6 ||
          attempt.find_first_not_of("0123456789") != std::string::npos || std::stoi(attempt) < 1) {
        return InvalidArgument(
            UsageText("argument --attempt: expected 'latest' or a number from 1, got '" + attempt +
                      "'"),
            "");
      }
      out.attempt = std::stoi(attempt);
    }
  }
  if (!unknown.empty()) {
    std::string line = "Unknown options:";
    for (size_t i = 0; i < unknown.size(); ++i) line += (i ? ", " : " ") + unknown[i];
    return InvalidArgument(UsageText(line), "");
  }
  if (out.help) return out;
  std::vector<std::string> missing;
  if (out.pipeline.empty()) missing.push_back("--pipeline-name");
  if (out.action.empty()) missing.push_back("--action-name");
  if (!missing.empty()) {
    std::string line = "the following arguments are required:";
    for (size_t i = 0; i < missing.size(); ++i) line += (i ? ", " : " ") + missing[i];
    return InvalidArgument(UsageText(line), "");
  }
  return out;
}

int Fail(const CliContext& ctx, const std::string& message, int code) {
  ctx.err() << "\n" << message << "\n";
  return code;
}

// "Stage/Action" for every declared action named `action` (in `stage`, if
// set), or every declared action when none matches, for the error message.
Result<std::vector<std::string>> DeclaredActions(const CliContext& ctx, const LogsArgs& a,
                                                 bool* matched) {
  PW_ASSIGN_OR_RETURN(json r, ctx.Call(ModelTarget("GetPipeline"), {{"name", a.pipeline}}));
  std::vector<std::string> all;
  std::vector<std::string> matching;
  const json& stages = r.is_object() && r.contains("pipeline") && r["pipeline"].is_object() &&
                               r["pipeline"].contains("stages") &&
                               r["pipeline"]["stages"].is_array()
                           ? r["pipeline"]["stages"]
                           : json::array();
  for (const json& s : stages) {
    const std::string stage = StringField(s, "name");
    if (!s.contains("actions") || !s["actions"].is_array()) continue;
    for (const json& action : s["actions"]) {
      const std::string name = StringField(action, "name");
      all.push_back(stage + "/" + name);
      if (name == a.action && (a.stage.empty() || a.stage == stage)) {
        matching.push_back(stage + "/" + name);
      }
    }
  }
  *matched = !matching.empty();
  return *matched ? matching : all;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// The action execution the arguments name, waiting for it to start with
// --follow. Returns an exit status instead when there is none.
struct FoundRun {
  json run;
  int attempt = 0;  // 1-based.
};

std::variant<FoundRun, int> FindRun(const CliContext& ctx, const LogsArgs& a) {
  while (true) {
    Result<std::vector<json>> runs = ListActionRuns(ctx, a.pipeline, a.execution_id);
    if (!runs.ok()) return ctx.PrintError(runs.status(), "ListActionExecutions");
    std::vector<json> matching;
    std::set<std::string> stages;
    for (const json& run : *runs) {
      if (StringField(run, "actionName") != a.action) continue;
      if (!a.stage.empty() && StringField(run, "stageName") != a.stage) continue;
      matching.push_back(run);
      stages.insert(StringField(run, "stageName"));
    }
    if (stages.size() > 1) {
      return Fail(ctx,
                  "Action '" + a.action + "' ran in several stages (" +
                      Join({stages.begin(), stages.end()}) + "); choose one with --stage-name",
                  kExitParamError);
    }
    if (!matching.empty()) {
      if (a.attempt == 0) {
        return FoundRun{matching.back(), static_cast<int>(matching.size())};
      }
      if (static_cast<size_t>(a.attempt) <= matching.size()) {
        return FoundRun{matching[a.attempt - 1], a.attempt};
      }
      return Fail(ctx,
                  "Action '" + a.action + "' has " + std::to_string(matching.size()) +
                      " attempt(s) in pipeline execution " + a.execution_id + "; there is no " +
                      "attempt " + std::to_string(a.attempt),
                  kExitParamError);
    }
    bool declared = false;
    Result<std::vector<std::string>> actions = DeclaredActions(ctx, a, &declared);
    if (!actions.ok()) return ctx.PrintError(actions.status(), "GetPipeline");
    if (!declared) {
      std::string where = a.stage.empty() ? "" : " in stage '" + a.stage + "'";
      return Fail(ctx,
                  "Unknown action '" + a.action + "'" + where + " of pipeline '" + a.pipeline +
                      "'. Its actions: " + Join(*actions),
                  kExitParamError);
    }
    if (a.follow) {
      Result<ExecutionStatus> exec = GetExecutionStatus(ctx, a.pipeline, a.execution_id);
      if (!exec.ok()) return ctx.PrintError(exec.status(), "GetPipelineExecution");
      if (IsExecutionActive(exec->status)) {
        std::this_thread::sleep_for(PollInterval());
        continue;
      }
    }
    return Fail(ctx,
                "Action '" + a.action + "' has not run in pipeline execution " + a.execution_id,
                kExitOtherError);
  }
}

// The log bytes from `offset` on; "" when there is no log (yet).
Result<std::string> FetchLog(const CliContext& ctx, const std::string& id, size_t offset) {
  Result<std::string> body =
      ctx.client().Get("/logs/" + id + (offset > 0 ? "?offset=" + std::to_string(offset) : ""));
  if (!body.ok() && body.status().code() == StatusCode::kNotFound) return std::string();
  return body;
}

// The run's Commands (resolved configuration first), one per line; empty for
// other action types.
std::vector<std::string> RunCommands(const json& run) {
  std::vector<std::string> out;
  if (!run.contains("input") || !run["input"].is_object()) return out;
  std::string text;
  for (const char* key : {"resolvedConfiguration", "configuration"}) {
    if (run["input"].contains(key)) text = StringField(run["input"][key], "Commands");
    if (!text.empty()) break;
  }
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// After the log of an attempt that did not succeed: its error and, for a
// Commands action, each command with the one that failed marked ("Command N
// (...) exited with code C." is the runner's message).
void PrintOutcome(const CliContext& ctx, const json& run, int attempt, const std::string& status) {
  if (status == "Succeeded" || status == "InProgress") return;
  std::string message;
  if (run.contains("output") && run["output"].is_object() &&
      run["output"].contains("executionResult") && run["output"]["executionResult"].is_object() &&
      run["output"]["executionResult"].contains("errorDetails")) {
    message = StringField(run["output"]["executionResult"]["errorDetails"], "message");
  }
  std::ostream& err = ctx.err();
  err << "\n"
      << StringField(run, "stageName") << "/" << StringField(run, "actionName") << " attempt "
      << attempt << " " << status;
  if (!message.empty()) err << ": " << message;
  err << "\n";
  size_t failed = 0;
  std::string how;
  if (message.rfind("Command ", 0) == 0) {
    size_t digits = message.find_first_not_of("0123456789", 8);
    if (digits != std::string::npos && digits > 8 && digits - 8 < 6) {
      failed = std::stoul(message.substr(8, digits - 8));
      size_t tail = message.rfind(") ");
      if (tail != std::string::npos) how = message.substr(tail + 2);
      while (!how.empty() && how.back() == '.') how.pop_back();
    }
  }
  const std::vector<std::string> commands = RunCommands(run);
  if (commands.empty()) return;
  err << "Commands:\n";
  for (size_t i = 0; i < commands.size(); ++i) {
    err << (i + 1 == failed ? "  > " : "    ") << i + 1 << "  " << commands[i];
    if (i + 1 == failed) err << "    <- " << how;
    err << "\n";
  }
}

}  // namespace

int RunLogs(const std::vector<std::string>& args, const CliContext& ctx) {
  Result<LogsArgs> parsed = ParseLogsArgs(args);
  if (!parsed.ok()) return Fail(ctx, parsed.status().message(), kExitParamError);
  LogsArgs a = std::move(*parsed);
  if (a.help) {
    PrintLogsUsage(ctx.out());
    return 0;
  }
  if (a.execution_id.empty()) {
    Result<std::string> latest = LatestExecutionId(ctx, a.pipeline);
    if (!latest.ok()) {
      if (latest.status().code() == StatusCode::kNotFound && latest.status().wire_name().empty()) {
        return Fail(ctx, latest.status().message(), kExitOtherError);
      }
      return ctx.PrintError(latest.status(), "ListPipelineExecutions");
    }
    a.execution_id = *latest;
  }
  std::variant<FoundRun, int> found = FindRun(ctx, a);
  if (const int* code = std::get_if<int>(&found)) return *code;
  const json run = std::get<FoundRun>(found).run;
  const int attempt = std::get<FoundRun>(found).attempt;
  const std::string id = StringField(run, "actionExecutionId");
  std::string status = StringField(run, "status");
  json latest_run = run;
  size_t offset = 0;
  while (true) {
    Result<std::string> chunk = FetchLog(ctx, id, offset);
    if (!chunk.ok()) return ctx.PrintError(chunk.status(), "GetLog");
    if (!a.follow && chunk->empty())
      ctx.err() << "No log output for action execution " << id << "\n";
    ctx.out() << *chunk << std::flush;
    offset += chunk->size();
    if (!a.follow) {
      PrintOutcome(ctx, run, attempt, status);
      return 0;
    }
    if (status != "InProgress") {
      PrintOutcome(ctx, latest_run, attempt, status);
      return status == "Succeeded" ? 0 : 1;
    }
    std::this_thread::sleep_for(PollInterval());
    // Status before the fetch: once it has ended, the next fetch is the rest.
    Result<std::vector<json>> runs = ListActionRuns(ctx, a.pipeline, a.execution_id);
    if (!runs.ok()) return ctx.PrintError(runs.status(), "ListActionExecutions");
    for (const json& r : *runs) {
      if (StringField(r, "actionExecutionId") == id) {
        status = StringField(r, "status");
        latest_run = r;
      }
    }
  }
}

}  // namespace pw::cli
