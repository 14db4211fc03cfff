#pragma once

// The pure parts of webhooks (PutWebhook, and the POSTs to a webhook's url):
// the JsonPath subset of filter rules, `{Key}` references to the target
// action's configuration in matchEquals, GitHub's X-Hub-Signature-256, IP
// ranges, and reading a GitHub- or GitLab-style push payload. No I/O.
// Thread-safe.
//
//   PW_ASSIGN_OR_RETURN(auto path, ParseJsonPath("$.ref"));
//   std::optional<nlohmann::json> v = EvalJsonPath(path, payload);
//   if (!GithubSignatureValid(secret, body, req.Header("X-Hub-Signature-256"))) -> 401

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"

namespace pw::engine {

// One step of a JsonPath: a member name or an array index.
using JsonPathStep = std::variant<std::string, size_t>;

// Parses the definite JsonPath subset webhook filters use: `$` followed by
// `.name`, `['name']` / `["name"]` and `[n]` steps (e.g. "$.ref",
// "$.repository.full_name", "$.commits[0].id", "$['head_commit']['id']").
// Wildcards, filters, slices and deep scans are refused:
// kInvalidArgument, InvalidWebhookFilterPatternException naming the problem.
Result<std::vector<JsonPathStep>> ParseJsonPath(std::string_view path);

// The value at `path` in `doc`, or nullopt when a step is missing.
std::optional<nlohmann::json> EvalJsonPath(const std::vector<JsonPathStep>& path,
                                           const nlohmann::json& doc);

// `match` with each `{Key}` replaced by configuration value Key of the target
// action. kInvalidArgument (InvalidWebhookFilterPatternException) for a key
// the configuration does not have or an unclosed brace.
Result<std::string> ExpandMatchEquals(std::string_view match,
                                      const std::map<std::string, std::string>& configuration);

// Whether the selected value equals `expected`: strings as they are, other
// JSON values by their compact JSON text (true, 42). A missing value never
// matches; with no matchEquals (nullopt) any present, non-null value does.
bool FilterValueMatches(const std::optional<nlohmann::json>& value,
                        const std::optional<std::string>& expected);

// GitHub's X-Hub-Signature-256 ("sha256=" + hex HMAC-SHA256 of the body under
// the secret), compared in constant time. False for a missing or malformed header.
bool GithubSignatureValid(std::string_view secret, std::string_view body, std::string_view header);
// The header value GitHub would send (for tests and tools).
std::string GithubSignature(std::string_view secret, std::string_view body);

// An IPv4 or IPv6 range in CIDR notation ("10.0.0.0/8", "::1/128"; a bare
// address is a /32 or /128).
struct IpRange {
  std::vector<unsigned char> address;  // 4 or 16 bytes.
  int prefix = 0;
};
// kInvalidArgument (InvalidWebhookAuthenticationParametersException) naming the value.
Result<IpRange> ParseIpRange(std::string_view cidr);
// Whether `address` (textual, IPv4 or IPv6; an IPv4-mapped IPv6 address
// counts as IPv4) lies in `range`.
bool IpInRange(const IpRange& range, std::string_view address);

// What a push payload says (GitHub: ref, before, after, commits[].added/
// modified/removed; GitLab: the same plus checkout_sha).
struct PushPayload {
  std::string ref;     // "refs/heads/main", "refs/tags/v1".
  std::string before;  // Previous commit, "" when absent or all zeros.
  std::string after;   // The pushed commit, "" when the ref was deleted.
  bool deleted = false;
  std::vector<std::string> files;  // From commits[]: sorted, unique.
  bool files_listed = false;       // A commits[] list was present.
};
PushPayload ReadPushPayload(const nlohmann::json& payload);

// True for 40 hex digits.
bool IsCommitId(std::string_view s);

}  // namespace pw::engine
