// Validation of pipeline declarations beyond the model and core's structure
// rules: required configuration properties of each action type, and the data
// rules (no NUL byte that could reach a process, Commands configuration
// values, local paths away from the data directory).

#include <nlohmann/json.hpp>

#include "engine/action_types.h"
#include "engine/executor.h"
#include "engine/internal.h"

namespace pw::engine {

using nlohmann::json;

// The Commands configuration values the runner parses: EnvironmentVariables
// a JSON list of {"name": string, "value": string}; TimeoutInMinutes a whole
// number of minutes, 1 to 480. Values with variables are checked at run time.
// kInvalidArgument naming the field.
Status CheckCommandsConfiguration(const std::map<std::string, std::string>& config) {
  if (auto it = config.find("EnvironmentVariables");
      it != config.end() && it->second.find("#{") == std::string::npos) {
    json list = json::parse(it->second, nullptr, false);
    if (!list.is_array()) {
      return InvalidArgument(
          "configuration EnvironmentVariables must be a JSON list of {\"name\": \"…\", "
          "\"value\": \"…\"} objects.");
    }
    for (size_t i = 0; i < list.size(); ++i) {
      const json& v = list[i];
      if (!v.is_object() || !v.contains("name") || !v["name"].is_string() ||
          (v.contains("value") && !v["value"].is_string())) {
        return InvalidArgument("configuration EnvironmentVariables[" + std::to_string(i) +
                               "] must be {\"name\": string, \"value\": string}; write numbers "
                               "as strings, e.g. \"value\": \"1\".");
      }
    }
  }
  if (auto it = config.find("TimeoutInMinutes");
      it != config.end() && it->second.find("#{") == std::string::npos) {
    const std::string& t = it->second;
    bool digits =
        !t.empty() && t.size() <= 4 && t.find_first_not_of("0123456789") == std::string::npos;
    int n = digits ? std::stoi(t) : 0;
    if (!digits || n < 1 || n > 480) {
      return InvalidArgument(
          "configuration TimeoutInMinutes must be a whole number of minutes "
          "from 1 to 480, not '" +
          t.substr(0, 32) + "'.");
    }
  }
  return Status::Ok();
}

// Required configuration properties of built-in and custom action types.
Status CheckRequiredConfiguration(
    const core::PipelineDecl& d,
    const std::function<std::optional<json>(const core::ActionTypeId&)>& custom) {
  for (const auto& s : d.stages) {
    for (const auto& a : s.actions) {
      std::vector<std::string> required;
      if (const BuiltinActionType* b = FindBuiltin(a.type)) {
        for (const auto& p : b->properties) {
          if (p.required) required.push_back(p.name);
        }
      } else if (auto t = custom(a.type)) {
        for (const auto& p : t->value("actionConfigurationProperties", json::array())) {
          if (p.value("required", false)) required.push_back(p.value("name", ""));
        }
      }
      for (const auto& name : required) {
        if (!a.configuration.count(name)) {
          return InvalidArgument("Action '" + a.name + "' in stage '" + s.name +
                                     "' is missing the required configuration property '" + name +
                                     "' of action type " + a.type.ToString() + ".",
                                 "InvalidActionDeclarationException");
        }
      }
    }
  }
  return Status::Ok();
}

// Data rules of a declaration (README "Variables reach commands as data"): no
// NUL byte where it could reach a process (it would silently cut a command
// list or value short), and local paths that keep away from the data
// directory (paths with variables are checked when the action starts).
Status CheckActionData(const core::PipelineDecl& d, const runner::PathPolicy& policy) {
  for (const auto& s : d.stages) {
    for (const auto& a : s.actions) {
      const std::string where = "Action '" + a.name + "' in stage '" + s.name + "': ";
      auto refuse = [&](const std::string& field) {
        return InvalidArgument(where + field + " holds a NUL byte; remove it.",
                               "InvalidActionDeclarationException");
      };
      auto has_nul = [](const std::string& v) { return v.find('\0') != std::string::npos; };
      for (const auto& [key, value] : a.configuration) {
        if (has_nul(key) || has_nul(value)) return refuse("configuration property " + key);
      }
      for (size_t i = 0; i < a.commands.size(); ++i) {
        if (has_nul(a.commands[i])) return refuse("commands[" + std::to_string(i) + "]");
      }
      for (const auto& v : a.environment) {
        if (has_nul(v.name) || has_nul(v.value)) return refuse("environment variable " + v.name);
      }
      if (IsBuiltin(a, "Build", "Commands") || IsBuiltin(a, "Test", "Commands") ||
          IsBuiltin(a, "Compute", "Commands")) {
        if (Status c = CheckCommandsConfiguration(a.configuration); !c.ok()) {
          return InvalidArgument(where + c.message(), "InvalidActionDeclarationException");
        }
      }
      Status paths = CheckActionPaths(a, a.configuration, policy, /*skip_unresolved=*/true);
      if (!paths.ok()) {
        return InvalidArgument(where + paths.message(), "InvalidActionDeclarationException");
      }
    }
  }
  return Status::Ok();
}

}  // namespace pw::engine
