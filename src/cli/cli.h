#pragma once

// The `pipewright` command-line client: `aws codepipeline` for a Pipewright
// server. Every model operation is a kebab-case verb with one flag per input
// member; output, errors, exit codes, retries and pagination follow the aws
// CLI v2 (exit 0 ok, 252 bad parameters, 254 service error, 255 other).
// Pipewright adds `logs` (cli/logs.h), `get-stage-retry-plan`, and
// `retry-stage-execution --dry-run/--latest` (cli/retry_plan.h) and
// `start-pipeline-execution --wait` (cli/watch.h).
//
//   int main(int argc, char** argv) { return pw::cli::RunCli(argc, argv); }
//
// Other layers add verbs at start-up, before RunCli:
//
//   pw::cli::RegisterExtraVerb("retry-plan", "Shows a stage's retry plan",
//       [](const std::vector<std::string>& args, const pw::cli::CliContext& ctx) {
//         auto r = ctx.Call("Pipewright_20261125.GetStageRetryPlan", {{"pipelineName", args[0]}});
//         ...
//       });
//
// Global options (anywhere after the verb): --endpoint-url (default
// $PIPEWRIGHT_ENDPOINT, else http://127.0.0.1:8480), --region (else
// $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1), --output json|text|table,
// --query (JMESPath, cli/jmespath.h), --no-paginate,
// --debug, --no-sign-request, --no-verify-ssl, --cli-read-timeout,
// --cli-connect-timeout. Credentials come from AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.

#include <functional>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/client.h"
#include "cli/jmespath.h"
#include "cli/model.h"
#include "common/status.h"

namespace pw::cli {

// What an extension verb gets: where and as whom to call. Immutable;
// thread-compatible.
class CliContext {
 public:
  // `out` and `err` are borrowed and must outlive the context.
  CliContext(ClientOptions options, std::ostream& out, std::ostream& err)
      : client_(std::move(options)), out_(&out), err_(&err) {}

  const std::string& endpoint() const { return client_.options().endpoint_url; }
  const std::string& region() const { return client_.options().region; }
  // Empty when no credentials were found (requests are then unsigned).
  const std::optional<Credentials>& credentials() const { return client_.options().credentials; }
  bool debug() const { return static_cast<bool>(client_.options().debug_log); }

  // Calls `target` (the full X-Amz-Target, e.g. "CodePipeline_20150709.GetPipelineState")
  // with `input` as the body, retrying as the CLI does. Returns the parsed
  // response ({} for an empty body). Errors: the service's error as a Status
  // whose wire_name is its `__type` and message its `message`; kUnavailable
  // with empty wire_name when the endpoint cannot be reached; kInternal if the
  // response is not JSON.
  Result<nlohmann::json> Call(std::string_view target, const nlohmann::json& input) const;

  // Where the verb prints results and diagnostics.
  std::ostream& out() const { return *out_; }
  std::ostream& err() const { return *err_; }

  // Prints `status` (from Call) to err() as the aws CLI does -
  // "\nAn error occurred (<wire_name>) when calling the <operation> operation: <message>"
  // or the connection error - and returns the exit status (254, or 255).
  int PrintError(const Status& status, std::string_view operation) const;

  const Client& client() const { return client_; }

  // How results are printed: --output json|text|table and --query.
  void SetOutput(std::string format, std::optional<JmesPath> query) {
    output_format_ = std::move(format);
    query_ = std::move(query);
  }
  // Prints `result` (a response, `title` its operation name for table
  // headings) to out() as --output and --query ask. Returns 0, or 255 after
  // writing the error to err() if the query fails on it (e.g. a function
  // given the wrong type).
  int PrintResult(std::string_view title, const OJson& result) const;

 private:
  Client client_;
  std::string output_format_ = "json";
  std::optional<JmesPath> query_;
  std::ostream* out_;
  std::ostream* err_;
};

// An extension verb: receives the arguments after the verb (global options
// removed) and returns the process exit status.
using ExtraVerb = std::function<int(const std::vector<std::string>& args, const CliContext& ctx)>;

// Adds (or replaces) verb `name`, listed by `pipewright help` with `help`.
// Thread-safe; call before RunCli.
void RegisterExtraVerb(std::string name, std::string help, ExtraVerb fn);

// Runs one command; argv[1] is the verb. Writes results to stdout and
// diagnostics to stderr; returns the exit status. Never throws.
int RunCli(int argc, char** argv);

// As RunCli, for `args` = argv[1..], writing to `out` and `err` instead.
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace pw::cli
