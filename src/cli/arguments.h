#pragma once

// Turns an operation's command-line arguments into its JSON request body, the
// way `aws codepipeline <verb>` does: one flag per input member (`fooBar` ->
// `--foo-bar`), converted by the member's model type, `file://` paramfiles,
// aws shorthand, `--cli-input-json` as the base input, then botocore's
// client-side validation. Pure apart from the injected file reader.
//
//   auto parsed = ParseOperationArgs("TagResource",
//       {"--resource-arn", "a", "--tags", "key=k,value=v"}, ReadParamFile);
//   if (!parsed.ok()) { print parsed.status().message(); exit 252; }
//   OJson body = parsed->input;  // {"resourceArn":"a","tags":[{"key":"k","value":"v"}]}
//
// Every failure is kInvalidArgument whose message is the full text the aws
// CLI prints (without the leading blank line); the CLI exits 252 for all.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/model.h"
#include "common/status.h"

namespace pw::cli {

// The aws CLI's exit status for any parameter or usage error.
inline constexpr int kExitParamError = 252;
// Its exit status for an error the service answered, and for any other failure.
inline constexpr int kExitServiceError = 254;
inline constexpr int kExitOtherError = 255;

// Reads a `file://` path (relative to the working directory). Fails with a
// message in Python's form: "[Errno 2] No such file or directory: 'x.json'".
using ParamFileReader = std::function<Result<std::string>(const std::string& path)>;

// Reads from the real file system.
Result<std::string> ReadParamFile(const std::string& path);

struct ParsedArgs {
  OJson input = OJson::object();  // Flags merged over --cli-input-json; not yet validated.
  bool help = false;              // `help` or `--help` was given.
  // Paging controls (only accepted for paginated operations).
  std::optional<int64_t> max_items;
  std::optional<int64_t> page_size;
  std::string starting_token;
  std::vector<std::string> explicit_members;  // Members set by flags, in flag order.
};

// Parses `args` (everything after the verb, global options removed) for
// `operation`, which must exist in the model. Required members listed in
// `not_required` may be absent (a Pipewright flag such as --latest supplies them).
Result<ParsedArgs> ParseOperationArgs(std::string_view operation,
                                      const std::vector<std::string>& args,
                                      const ParamFileReader& read_file,
                                      const std::vector<std::string>& not_required = {});

// Converts the raw values given to one flag into JSON of `shape_name`'s type.
// `flag` ("--tags") names the parameter in error messages.
Result<OJson> ConvertFlagValues(std::string_view flag, std::string_view shape_name,
                                const std::vector<std::string>& values,
                                const ParamFileReader& read_file);

// Fills absent idempotency-token members (StartPipelineExecution's
// clientRequestToken) from `new_token`. Returns the input unchanged otherwise.
OJson FillIdempotencyTokens(std::string_view operation, OJson input,
                            const std::function<std::string()>& new_token);

// botocore's client-side validation. OK, or kInvalidArgument with message
// "Parameter validation failed:\n<one line per problem>".
Status ValidateRequest(std::string_view operation, const OJson& input);

// The aws-style usage error text ending in "<program>: error: <what>" (or the
// bare "Unknown options: ..." line, as aws prints it).
std::string UsageText(std::string_view error_line);

}  // namespace pw::cli
