#pragma once

// The CodePipeline service model (botocore service-2.json, newest version,
// a superset of what older clients send), embedded in the binary.
//
//   const auto& model = pw::spec::ServiceModel::Get();
//   if (!model.HasOperation("GetPipeline")) ...
//   pw::Status s = model.ValidateInput("GetPipeline", body);  // ValidationException
//
// Thread-safe after construction (immutable); Get() constructs once.

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace re2 {
class RE2;
}

namespace pw::spec {

// Compiles a model `pattern` the way the validator uses it (RE2, UTF-8, full
// match). Returns kInvalidArgument naming the pattern and RE2's reason when
// RE2 cannot compile it. RE2 runs in time linear in the input and never
// recurses on it, so no request string can exhaust the stack (std::regex did,
// on a 50,000-character ARN). Differences from the model's ECMAScript: none
// for the patterns of either model in spec/ (tested), except that '.' also
// matches '\r', U+2028 and U+2029.
Status CheckModelPattern(const std::string& pattern);

// The longest prefix of `s` of at most `max_bytes` bytes that does not end
// inside a UTF-8 character, followed by "..." when anything was cut. Request
// values quoted in messages go through it, so a reply is always valid UTF-8.
std::string TruncateUtf8(std::string_view s, size_t max_bytes);

// Bytes of a request value quoted in a validation message, at most.
inline constexpr size_t kMaxQuotedBytes = 256;

class ServiceModel {
 public:
  static constexpr size_t kMaxListedErrors = 20;

  // The embedded model. Aborts if the embedded JSON is broken (a build bug).
  static const ServiceModel& Get();

  explicit ServiceModel(const nlohmann::json& model);
  ServiceModel(const ServiceModel&) = delete;
  ServiceModel& operator=(const ServiceModel&) = delete;
  ~ServiceModel();

  const nlohmann::json& raw() const { return model_; }
  bool HasOperation(std::string_view op) const;
  // The operation's model entry, or nullptr.
  const nlohmann::json* Operation(std::string_view op) const;
  // The named shape, or nullptr.
  const nlohmann::json* Shape(std::string_view name) const;
  // Operation names in model order (alphabetical).
  std::vector<std::string> OperationNames() const;

  // Checks `input` against the operation's input shape: JSON types, required
  // members, string/list/map lengths, integer ranges, enums and patterns (as
  // full matches; lengths are checked first, so a pattern never sees an
  // over-long string). Unknown members and null members are ignored (older and
  // newer clients differ). Values quoted in messages are cut to
  // kMaxQuotedBytes; at most kMaxListedErrors errors are listed.
  // Returns OK, or kInvalidArgument with wire name ValidationException and an
  // AWS-style message naming each offending field, e.g.
  //   1 validation error detected: Value 'a b' at 'pipeline.name' failed to
  //   satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\-_]+
  Status ValidateInput(std::string_view op, const nlohmann::json& input) const;

  // Validates `value` against the named shape; `path` names it in messages.
  Status ValidateShape(std::string_view shape, const nlohmann::json& value,
                       const std::string& path) const;

 private:
  void Walk(const std::string& shape_name, const nlohmann::json& value, const std::string& path,
            std::vector<std::string>* errors) const;

  nlohmann::json model_;
  // Compiled patterns by pattern text.
  std::map<std::string, std::unique_ptr<re2::RE2>, std::less<>> patterns_;
};

}  // namespace pw::spec
