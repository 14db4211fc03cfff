#include "cli/cli.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <mutex>

#include "cli/arguments.h"
#include "cli/formats.h"
#include "cli/logs.h"
#include "cli/model.h"
#include "cli/output.h"
#include "cli/paginator.h"
#include "cli/retry_plan.h"
#include "cli/servers.h"
#include "cli/status.h"
#include "cli/watch.h"
#include "common/ids.h"
#include "common/version.h"

namespace pw::cli {

namespace {

constexpr std::string_view kDefaultEndpoint = "http://127.0.0.1:8480";
// After "Could not connect": how to start a server or point at one.
constexpr std::string_view kConnectHint =
    "Is a Pipewright server running there? Start one with `pipewright serve` (it listens on\n"
    "127.0.0.1:8480), or point the CLI at yours with --endpoint-url URL or\n"
    "PIPEWRIGHT_ENDPOINT=URL.\n";

struct ExtraVerbEntry {
  std::string help;
  ExtraVerb fn;
};

// Guards ExtraVerbs().
std::mutex& RegistryMutex() {
  static std::mutex mu;
  return mu;
}

std::map<std::string, ExtraVerbEntry>& ExtraVerbs() {
  static std::map<std::string, ExtraVerbEntry> verbs;
  return verbs;
}

std::optional<ExtraVerbEntry> FindExtraVerb(const std::string& name) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  auto it = ExtraVerbs().find(name);
  if (it == ExtraVerbs().end()) return std::nullopt;
  return it->second;
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string TargetPrefix() {
  return OrderedModel()["metadata"].value("targetPrefix", "CodePipeline_20150709");
}

// Prints a parameter/usage error the aws way: blank line, text, newline.
int ParamFailure(std::ostream& err, const Status& status) {
  err << "\n" << status.message() << "\n";
  return kExitParamError;
}

// Columns of the terminal on stdout; 80 when it is not one (as aws).
size_t TerminalWidth() {
  winsize ws{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    return ws.ws_col;
  }
  return 80;
}

int PrintErrorTo(std::ostream& err, const Status& status, std::string_view operation,
                 const SendInfo& info) {
  if (IsConnectionFailure(status)) {
    err << "\n" << status.message() << "\n" << kConnectHint;
    return kExitOtherError;
  }
  if (status.wire_name().empty()) {
    err << "\n" << status.message() << "\n";
    return kExitOtherError;
  }
  err << "\nAn error occurred (" << status.wire_name() << ") when calling the " << operation
      << " operation";
  if (info.max_attempts_reached) err << " (reached max retries: " << info.retries << ")";
  err << ": " << status.message() << "\n";
  return kExitServiceError;
}

struct GlobalOptions {
  std::string endpoint_url;
  std::string region;
  std::string output = "json";
  std::string query;  // Empty: none.
  bool output_given = false;
  std::optional<JmesPath> compiled_query;
  bool no_paginate = false;
  bool debug = false;
  bool no_sign_request = false;
  bool no_verify_ssl = false;
  std::string ca_bundle;
  int read_timeout = 60;
  int connect_timeout = 60;
};

// Splits the global options out of `args`; the rest, in order, go to `rest`.
Status ParseGlobals(const std::vector<std::string>& args, GlobalOptions* globals,
                    std::vector<std::string>* rest) {
  CLI::App app("pipewright");
  app.allow_extras();
  app.set_help_flag();  // --help belongs to the verb.
  app.add_option("--endpoint-url", globals->endpoint_url);
  app.add_option("--region", globals->region);
  app.add_option("--output", globals->output);
  app.add_option("--query", globals->query);
  app.add_flag("--no-paginate", globals->no_paginate);
  app.add_flag("--debug", globals->debug);
  app.add_flag("--no-sign-request", globals->no_sign_request);
  app.add_flag("--no-verify-ssl", globals->no_verify_ssl);
  app.add_option("--ca-bundle", globals->ca_bundle);
  app.add_option("--cli-read-timeout", globals->read_timeout);
  app.add_option("--cli-connect-timeout", globals->connect_timeout);
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return InvalidArgument(UsageText(e.what()), "");
  }
  *rest = app.remaining();
  globals->output_given = app.count("--output") > 0 || app.count("--query") > 0;
  if (globals->output != "json" && globals->output != "text" && globals->output != "table") {
    return InvalidArgument(
        UsageText("argument --output: Invalid choice, valid choices are: json | "
                  "text | table (yaml and yaml-stream are not supported), got '" +
                  globals->output + "'"),
        "");
  }
  if (app.count("--query") > 0) {
    Result<JmesPath> compiled = JmesPath::Compile(globals->query);
    if (!compiled.ok()) {
      return InvalidArgument(
          "Bad value for --query " + globals->query + ": " + compiled.status().message(), "");
    }
    globals->compiled_query = std::move(*compiled);
  }
  return Status::Ok();
}

// Verbs whose output is text for people, not a response: --output and
// --query would be ignored, so they are refused.
bool PrintsText(std::string_view verb) { return verb == "logs" || verb == "status"; }

ClientOptions MakeClientOptions(const GlobalOptions& globals, std::ostream& err) {
  ClientOptions o;
  o.endpoint_url = globals.endpoint_url;
  if (o.endpoint_url.empty()) o.endpoint_url = Env("PIPEWRIGHT_ENDPOINT");
  if (o.endpoint_url.empty()) o.endpoint_url = std::string(kDefaultEndpoint);
  o.region = globals.region;
  if (o.region.empty()) o.region = Env("AWS_REGION");
  if (o.region.empty()) o.region = Env("AWS_DEFAULT_REGION");
  if (o.region.empty()) o.region = "us-east-1";
  if (!globals.no_sign_request && !Env("AWS_ACCESS_KEY_ID").empty() &&
      !Env("AWS_SECRET_ACCESS_KEY").empty()) {
    o.credentials = Credentials{Env("AWS_ACCESS_KEY_ID"), Env("AWS_SECRET_ACCESS_KEY"),
                                Env("AWS_SESSION_TOKEN")};
  }
  o.verify_ssl = !globals.no_verify_ssl;
  o.ca_bundle = globals.ca_bundle.empty() ? Env("AWS_CA_BUNDLE") : globals.ca_bundle;
  o.read_timeout = std::chrono::seconds(globals.read_timeout);
  o.connect_timeout = std::chrono::seconds(globals.connect_timeout);
  if (globals.debug) {
    o.debug_log = [&err](const std::string& line) { err << "DEBUG " << line << "\n"; };
  }
  return o;
}

std::string TypeLabel(const std::string& shape_name) {
  const std::string type = ShapeType(shape_name);
  if (type == "list") {
    const OJson* shape = FindShape(shape_name);
    return "list<" + ShapeType((*shape)["member"].value("shape", "")) + ">";
  }
  return type;
}

// Pipewright's own verbs, beside the model's; registered verbs of the same
// name take precedence.
struct BuiltinVerb {
  std::string_view name;
  std::string_view help;
  int (*fn)(const std::vector<std::string>& args, const CliContext& ctx);
};
constexpr BuiltinVerb kBuiltinVerbs[] = {
    {"get-stage-retry-plan", "Shows what a stage retry would rerun per retry mode, or why not",
     RunGetStageRetryPlan},
    {"status", "Shows a pipeline's stages, actions, failures and what can be retried (--wait)",
     RunStatus},
    {"logs", "Prints an action execution's log, its commands and the failing one (--follow)",
     RunLogs},
    {"servers", "Lists the servers sharing the database and the pipelines each drives", RunServers},
};

// Pipewright flags added to model verbs, for `pipewright help`.
constexpr std::pair<std::string_view, std::string_view> kExtendedVerbs[] = {
    {"start-pipeline-execution --wait",
     "Starts an execution and prints every status change until it ends (exit 0 if Succeeded)"},
    {"retry-stage-execution --wait", "Retries a stage and prints its status changes until it ends"},
    {"retry-stage-execution --dry-run",
     "Prints the retry plan instead of retrying (exit 254 if the retry would be refused)"},
    {"retry-stage-execution --latest", "Retries the execution that last ran the stage"},
};

// Verbs the `pipewright` binary runs before the client (server/main.cc).
constexpr std::pair<std::string_view, std::string_view> kProgramVerbs[] = {
    {"serve", "Runs the server: API, console, S3 endpoint (pipewright serve --help)"},
    {"worker",
     "Runs a job worker for custom and AWS-owned action types (pipewright worker --help)"},
};

void PrintVerb(std::ostream& out, std::string_view name, std::string_view help) {
  std::string line = "  " + std::string(name);
  line.append(line.size() < 38 ? 38 - line.size() : 1, ' ');
  out << line << help << "\n";
}

// The first sentence of a model documentation string, tags removed and
// whitespace collapsed: a one-line description.
std::string FirstSentence(std::string_view documentation) {
  std::string plain;
  bool in_tag = false;
  for (char c : documentation) {
    if (c == '<') in_tag = true;
    if (!in_tag) {
      const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
      if (!space) {
        plain += c;
      } else if (!plain.empty() && plain.back() != ' ') {
        plain += ' ';
      }
    }
    if (c == '>') in_tag = false;
  }
  for (size_t i = 0; i + 1 < plain.size(); ++i) {
    if (plain[i] == '.' && plain[i + 1] == ' ') return plain.substr(0, i + 1);
  }
  while (!plain.empty() && plain.back() == ' ') plain.pop_back();
  return plain;
}

void PrintVerbs(std::ostream& out) {
  out << "usage: pipewright <command> [parameters]\n"
         "       pipewright --version\n\nPipewright commands:\n";
  for (const auto& [name, help] : kProgramVerbs) PrintVerb(out, name, help);
  for (const BuiltinVerb& verb : kBuiltinVerbs) PrintVerb(out, verb.name, verb.help);
  for (const auto& [name, help] : kExtendedVerbs) PrintVerb(out, name, help);
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    for (const auto& [name, entry] : ExtraVerbs()) PrintVerb(out, name, entry.help);
  }
  out << "\nCodePipeline commands (as `aws codepipeline`):\n";
  for (const auto& [name, op] : OrderedModel()["operations"].items()) {
    PrintVerb(out, ToKebab(name), FirstSentence(op.value("documentation", "")));
  }
  out << "\nRun 'pipewright <command> help' for a command's parameters. Global options:\n"
         "  --endpoint-url URL (default $PIPEWRIGHT_ENDPOINT, else http://127.0.0.1:8480),\n"
         "  --output json|text|table, --query JMESPATH, --region, --no-paginate, --debug,\n"
         "  --no-sign-request, --no-verify-ssl, --ca-bundle, --cli-read-timeout,\n"
         "  --cli-connect-timeout\n";
}

void PrintOperationHelp(std::ostream& out, const std::string& verb, const std::string& op) {
  out << "usage: pipewright " << verb << " [parameters]\n\n";
  const OJson* o = FindOperation(op);
  if (o != nullptr && o->contains("documentation")) {
    std::string doc = (*o)["documentation"].get<std::string>();
    std::string plain;
    bool in_tag = false;
    for (char c : doc) {
      if (c == '<') in_tag = true;
      if (!in_tag) plain += c;
      if (c == '>') in_tag = false;
    }
    out << plain << "\n\n";
  }
  out << "Parameters:\n";
  const OJson* shape = FindShape(InputShapeName(op));
  if (shape != nullptr && shape->contains("members")) {
    std::vector<std::string> required;
    for (const auto& r : shape->value("required", OJson::array())) {
      required.push_back(r.get<std::string>());
    }
    for (const auto& [name, m] : (*shape)["members"].items()) {
      const std::string member_shape = m.value("shape", "");
      const std::string flag = FlagName(op, name);
      bool req = std::find(required.begin(), required.end(), name) != required.end();
      if (ShapeType(member_shape) == "boolean") {
        out << "  --" << flag << " | --no-" << flag << "  (boolean)";
      } else {
        out << "  --" << flag << " <" << TypeLabel(member_shape) << ">";
      }
      if (req) out << "  (required)";
      out << "\n";
    }
  }
  out << "  --cli-input-json <JSON or file://path>\n";
  if (op == "StartPipelineExecution" || op == "RetryStageExecution") {
    out << "  --wait  print stage and action status changes until the execution ends;\n"
           "         exit 0 if it Succeeded, 1 if not (with the command that retries it),\n"
           "         2 on timeout\n"
           "  --wait-timeout <seconds>  (default 3600; implies --wait)\n";
  }
  if (op == "RetryStageExecution") {
    out << "  --dry-run  print the retry plan (GetStageRetryPlan) instead of retrying\n"
           "  --latest  use the execution that last ran the stage as --pipeline-execution-id\n";
  }
  if (FindPaginator(op) != nullptr) {
    out << "  --max-items <integer>\n  --starting-token <string>\n  --page-size <integer>\n";
  }
  out << "\nGlobal options: --endpoint-url, --region, --output json|text|table, --query,\n"
         "  --no-paginate, --debug,\n"
         "  --no-sign-request, --no-verify-ssl, --cli-read-timeout, --cli-connect-timeout\n";
}

// Sends one operation call and shapes its response by the output model.
Result<OJson> CallOperation(const Client& client, const std::string& op, const OJson& input,
                            SendInfo* info) {
  Result<std::string> body = client.Send(TargetPrefix() + "." + op, input.dump(), info);
  if (!body.ok()) return body.status();
  if (body->empty()) return OJson::object();
  OJson parsed = OJson::parse(*body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Internal("Unable to parse response (not valid JSON): " + *body);
  const std::string out_shape = OutputShapeName(op);
  return out_shape.empty() ? OJson::object() : ShapeOutput(parsed, out_shape);
}

// Pipewright flags on model verbs, taken out before the model parses the rest.
struct ExtensionFlags {
  bool wait = false;                                 // start-pipeline-execution
  std::chrono::milliseconds wait_timeout{3600'000};  // start-pipeline-execution
  bool dry_run = false;                              // retry-stage-execution
  bool latest = false;                               // retry-stage-execution
};

Result<ExtensionFlags> TakeExtensionFlags(const std::string& op, std::vector<std::string>& args) {
  ExtensionFlags flags;
  if (op == "RetryStageExecution") {
    flags.latest = TakeLatestFlag(args);
    auto it = std::remove(args.begin(), args.end(), "--dry-run");
    flags.dry_run = it != args.end();
    args.erase(it, args.end());
  }
  if (op != "StartPipelineExecution" && op != "RetryStageExecution") return flags;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--wait") {
      flags.wait = true;
      continue;
    }
    std::string value;
    if (args[i] == "--wait-timeout") {
      if (i + 1 >= args.size()) {
        return InvalidArgument(UsageText("argument --wait-timeout: expected one argument"), "");
      }
      value = args[++i];
    } else if (args[i].rfind("--wait-timeout=", 0) == 0) {
      value = args[i].substr(std::string_view("--wait-timeout=").size());
    } else {
      rest.push_back(args[i]);
      continue;
    }
    char* end = nullptr;
    double seconds = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size() || !(seconds >= 0) || seconds > 1e9) {
      return InvalidArgument(
          UsageText("argument --wait-timeout: invalid seconds value: '" + value + "'"), "");
    }
    flags.wait = true;
    flags.wait_timeout = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  }
  args = std::move(rest);
  if (flags.wait && flags.dry_run) {
    return InvalidArgument(
        UsageText("--dry-run and --wait cannot be used together: a dry run starts nothing"), "");
  }
  return flags;
}

int RunOperation(const std::string& verb, const std::string& op, std::vector<std::string> args,
                 const GlobalOptions& globals, std::ostream& out, std::ostream& err) {
  Result<ExtensionFlags> ext = TakeExtensionFlags(op, args);
  if (!ext.ok()) return ParamFailure(err, ext.status());
  std::vector<std::string> not_required;
  if (ext->latest) not_required.push_back("pipelineExecutionId");
  Result<ParsedArgs> parsed = ParseOperationArgs(op, args, ReadParamFile, not_required);
  if (!parsed.ok()) return ParamFailure(err, parsed.status());
  if (parsed->help) {
    PrintOperationHelp(out, verb, op);
    return 0;
  }
  CliContext ctx(MakeClientOptions(globals, err), out, err);
  ctx.SetOutput(globals.output, globals.compiled_query);
  const Client& client = ctx.client();
  // Tokens are filled once, so every retry carries the same one.
  OJson input = FillIdempotencyTokens(op, std::move(parsed->input), [] { return NewUuid(); });
  if (ext->latest) {
    if (Status s = FillLatestStageExecution(ctx, input); !s.ok()) {
      if (s.code() == StatusCode::kInvalidArgument && s.wire_name().empty()) {
        return ParamFailure(err, s);
      }
      return ctx.PrintError(s, "GetPipelineState");
    }
  }
  if (Status s = ValidateRequest(op, input); !s.ok()) return ParamFailure(err, s);
  if (ext->dry_run) return PrintRetryDryRun(ctx, input);

  // A retry reruns part of an execution that already ran: what it showed
  // before is the baseline, so --wait prints only what the retry changes.
  std::optional<WaitBaseline> baseline;
  if (ext->wait && op == "RetryStageExecution") {
    Result<WaitBaseline> b = ReadWaitBaseline(ctx, input.value("pipelineName", ""),
                                              input.value("pipelineExecutionId", ""));
    if (!b.ok()) return ctx.PrintError(b.status(), "ListActionExecutions");
    baseline = std::move(*b);
  }
  SendInfo info;
  const PaginatorSpec* pager = FindPaginator(op);
  bool paginate = pager != nullptr && !globals.no_paginate;
  if (paginate) {
    // As aws: an explicit page token or limit turns pagination off.
    for (const auto& m : parsed->explicit_members) {
      if (m == pager->input_token || m == pager->limit_key) paginate = false;
    }
  }
  Result<OJson> result = OJson::object();
  if (paginate) {
    PaginateOptions options{parsed->max_items, parsed->page_size, parsed->starting_token};
    result = Paginate(*pager, input, options, [&](const OJson& page_input) {
      return CallOperation(client, op, page_input, &info);
    });
    if (!result.ok() && result.status().code() == StatusCode::kInvalidArgument &&
        result.status().wire_name().empty()) {
      return ParamFailure(err, result.status());
    }
  } else {
    result = CallOperation(client, op, input, &info);
  }
  if (!result.ok()) return PrintErrorTo(err, result.status(), op, info);
  if (int printed = ctx.PrintResult(op, *result); printed != 0) return printed;
  if (ext->wait) {
    auto id = result->find("pipelineExecutionId");
    if (id == result->end() || !id->is_string()) {
      err << "\nThe service returned no pipelineExecutionId to wait for\n";
      return kExitOtherError;
    }
    const std::string pipeline =
        op == "RetryStageExecution" ? input.value("pipelineName", "") : input.value("name", "");
    return WaitForExecution(ctx, pipeline, id->get<std::string>(), ext->wait_timeout,
                            baseline ? &*baseline : nullptr);
  }
  return 0;
}

int RunCliUnguarded(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    err << "\n" << UsageText("the following arguments are required: command") << "\n";
    return kExitParamError;
  }
  const std::string verb = args[0];
  if (verb == "help" || verb == "--help" || verb == "-h") {
    PrintVerbs(out);
    return 0;
  }
  if (verb == "--version" || verb == "version") {
    out << "pipewright " << Version() << " (" << GitCommit() << ")\n";
    return 0;
  }
  GlobalOptions globals;
  std::vector<std::string> rest;
  if (Status s = ParseGlobals({args.begin() + 1, args.end()}, &globals, &rest); !s.ok()) {
    return ParamFailure(err, s);
  }
  if (std::optional<ExtraVerbEntry> extra = FindExtraVerb(verb)) {
    CliContext ctx(MakeClientOptions(globals, err), out, err);
    ctx.SetOutput(globals.output, globals.compiled_query);
    return extra->fn(rest, ctx);
  }
  for (const BuiltinVerb& builtin : kBuiltinVerbs) {
    if (builtin.name == verb) {
      if (PrintsText(verb) && globals.output_given) {
        return ParamFailure(err, InvalidArgument("pipewright " + verb +
                                                     " prints text for people: --output and "
                                                     "--query do not apply to it",
                                                 ""));
      }
      CliContext ctx(MakeClientOptions(globals, err), out, err);
      ctx.SetOutput(globals.output, globals.compiled_query);
      return builtin.fn(rest, ctx);
    }
  }
  const std::string op = OperationForVerb(verb);
  if (op.empty()) {
    err << "\n"
        << UsageText("argument command: Invalid choice: '" + verb +
                     "' (run 'pipewright help' for the list of commands)")
        << "\n";
    return kExitParamError;
  }
  return RunOperation(verb, op, rest, globals, out, err);
}

}  // namespace

Result<nlohmann::json> CliContext::Call(std::string_view target,
                                        const nlohmann::json& input) const {
  Result<std::string> body = client_.Send(target, input.dump());
  if (!body.ok()) return body.status();
  if (body->empty()) return nlohmann::json::object();
  nlohmann::json parsed = nlohmann::json::parse(*body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Internal("Unable to parse response (not valid JSON): " + *body);
  return parsed;
}

int CliContext::PrintResult(std::string_view title, const OJson& result) const {
  OJson shown = result;
  if (query_) {
    Result<OJson> searched = query_->Search(result);
    if (!searched.ok()) {
      *err_ << "\n" << searched.status().message() << "\n";
      return kExitOtherError;
    }
    shown = std::move(*searched);
  }
  if (output_format_ == "text") {
    if (!(shown.is_object() && shown.empty())) *out_ << RenderText(shown);
  } else if (output_format_ == "table") {
    *out_ << RenderTable(title, shown, TerminalWidth());
  } else if (query_ && shown.is_null()) {
    *out_ << "null\n";  // As aws: a query that selects nothing prints null.
  } else {
    *out_ << RenderJson(shown);
  }
  *out_ << std::flush;
  return 0;
}

int CliContext::PrintError(const Status& status, std::string_view operation) const {
  return PrintErrorTo(*err_, status, operation, SendInfo{});
}

void RegisterExtraVerb(std::string name, std::string help, ExtraVerb fn) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  ExtraVerbs()[std::move(name)] = ExtraVerbEntry{std::move(help), std::move(fn)};
}

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  try {
    return RunCliUnguarded(args, out, err);
  } catch (const std::exception& e) {
    err << "\n" << e.what() << "\n";
  } catch (...) {
    err << "\nunknown error\n";
  }
  return kExitOtherError;
}

int RunCli(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return RunCli(args, std::cout, std::cerr);
}

}  // namespace pw::cli
