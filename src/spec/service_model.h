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
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace pw::spec {

class ServiceModel {
 public:
  // The embedded model. Aborts if the embedded JSON is broken (a build bug).
  static const ServiceModel& Get();

  explicit ServiceModel(const nlohmann::json& model);
  ServiceModel(const ServiceModel&) = delete;
  ServiceModel& operator=(const ServiceModel&) = delete;

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
  // full matches). Unknown members are ignored (older and newer clients differ).
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
  std::map<std::string, std::regex, std::less<>> patterns_;  // By pattern text.
};

}  // namespace pw::spec
