#include "cli/cli.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <mutex>

#include "cli/arguments.h"
#include "cli/model.h"
#include "cli/output.h"
#include "cli/paginator.h"
#include "common/ids.h"

namespace pw::cli {

namespace {

constexpr int kExitServiceError = 254;
constexpr int kExitOtherError = 255;
constexpr std::string_view kDefaultEndpoint = "http://127.0.0.1:8480";

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

int PrintErrorTo(std::ostream& err, const Status& status, std::string_view operation,
                 const SendInfo& info) {
  if (IsConnectionFailure(status) || status.wire_name().empty()) {
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
  bool no_paginate = false;
  bool debug = false;
  bool no_sign_request = false;
  bool no_verify_ssl = false;
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
  app.add_flag("--no-paginate", globals->no_paginate);
  app.add_flag("--debug", globals->debug);
  app.add_flag("--no-sign-request", globals->no_sign_request);
  app.add_flag("--no-verify-ssl", globals->no_verify_ssl);
  app.add_option("--cli-read-timeout", globals->read_timeout);
  app.add_option("--cli-connect-timeout", globals->connect_timeout);
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return InvalidArgument(UsageText(e.what()), "");
  }
  *rest = app.remaining();
  if (globals->output != "json") {
    return InvalidArgument(UsageText("argument --output: Invalid choice: '" + globals->output +
                                     "' (only json is supported)"),
                           "");
  }
  return Status::Ok();
}

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

void PrintVerbs(std::ostream& out) {
  out << "usage: pipewright <command> [parameters]\n\nCommands:\n";
  for (const auto& [name, op] : OrderedModel()["operations"].items()) {
    out << "  " << ToKebab(name) << "\n";
  }
  std::lock_guard<std::mutex> lock(RegistryMutex());
  if (!ExtraVerbs().empty()) {
    out << "\nPipewright commands:\n";
    for (const auto& [name, entry] : ExtraVerbs()) {
      out << "  " << name << "  " << entry.help << "\n";
    }
  }
  out << "\nRun 'pipewright <command> help' for a command's parameters.\n";
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
      const std::string flag = ToKebab(name);
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
  if (FindPaginator(op) != nullptr) {
    out << "  --max-items <integer>\n  --starting-token <string>\n  --page-size <integer>\n";
  }
  out << "\nGlobal options: --endpoint-url, --region, --output json, --no-paginate, --debug,\n"
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

int RunOperation(const std::string& verb, const std::string& op,
                 const std::vector<std::string>& args, const GlobalOptions& globals,
                 std::ostream& out, std::ostream& err) {
  Result<ParsedArgs> parsed = ParseOperationArgs(op, args, ReadParamFile);
  if (!parsed.ok()) return ParamFailure(err, parsed.status());
  if (parsed->help) {
    PrintOperationHelp(out, verb, op);
    return 0;
  }
  // Tokens are filled once, so every retry carries the same one.
  OJson input = FillIdempotencyTokens(op, std::move(parsed->input), [] { return NewUuid(); });
  if (Status s = ValidateRequest(op, input); !s.ok()) return ParamFailure(err, s);

  Client client(MakeClientOptions(globals, err));
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
  out << RenderJson(*result);
  return 0;
}

int RunCliUnguarded(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    err << "\n" << UsageText("the following arguments are required: command") << "\n";
    return kExitParamError;
  }
  const std::string verb = args[0];
  if (verb == "help" || verb == "--help") {
    PrintVerbs(out);
    return 0;
  }
  GlobalOptions globals;
  std::vector<std::string> rest;
  if (Status s = ParseGlobals({args.begin() + 1, args.end()}, &globals, &rest); !s.ok()) {
    return ParamFailure(err, s);
  }
  if (std::optional<ExtraVerbEntry> extra = FindExtraVerb(verb)) {
    CliContext ctx(MakeClientOptions(globals, err), out, err);
    return extra->fn(rest, ctx);
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
