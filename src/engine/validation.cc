// Validation of pipeline declarations beyond the model and core's structure
// rules: required configuration properties of each action type, and the data
// rules (no NUL byte that could reach a process, Commands configuration
// values, local paths away from the data directory).

#include <nlohmann/json.hpp>

#include "engine/action_types.h"
#include "engine/executor.h"
#include "engine/internal.h"
#include "runner/commands.h"

namespace pw::engine {

using nlohmann::json;

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
        if (Status c = runner::CheckCommandsConfiguration(a.configuration); !c.ok()) {
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
