// Validation of pipeline declarations beyond the model and core's structure
// rules: each action's configuration against its type (engine/action_types.json
// or the custom type's properties: required keys, unknown keys, allowed values,
// conditional requirements) and its artifact counts, and the data rules (no NUL
// byte that could reach a process, Commands configuration values, local paths
// away from the data directory).

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "engine/action_types.h"
#include "engine/executor.h"
#include "engine/helpers.h"
#include "engine/internal.h"
#include "runner/codebuild.h"
#include "runner/commands.h"

namespace pw::engine {

using nlohmann::json;

namespace {

// What one action type declares, whichever table it comes from.
struct TypeRules {
  std::vector<ConfigProperty> properties;
  int min_inputs = 0, max_inputs = 0, min_outputs = 0, max_outputs = 0;
};

TypeRules RulesOfCustom(const json& t) {
  TypeRules r;
  for (const auto& p : t.value("actionConfigurationProperties", json::array())) {
    ConfigProperty c;
    c.name = p.value("name", "");
    c.required = p.value("required", false);
    r.properties.push_back(std::move(c));
  }
  auto count = [&](const char* details, const char* bound, int fallback) {
    const json d = t.value(details, json::object());
    return d.contains(bound) && d[bound].is_number_integer() ? d[bound].get<int>() : fallback;
  };
  r.min_inputs = count("inputArtifactDetails", "minimumCount", 0);
  r.max_inputs = count("inputArtifactDetails", "maximumCount", 5);
  r.min_outputs = count("outputArtifactDetails", "minimumCount", 0);
  r.max_outputs = count("outputArtifactDetails", "maximumCount", 5);
  return r;
}

Status CheckAction(const core::ActionDecl& a, const std::string& stage, const TypeRules& rules) {
  const std::string where = "Action '" + a.name + "' in stage '" + stage + "'";
  const std::string type = a.type.ToString();
  auto refuse = [](const std::string& message) {
    return InvalidArgument(message, "InvalidActionDeclarationException");
  };
  auto find = [&](const std::string& name) -> const ConfigProperty* {
    for (const auto& p : rules.properties) {
      if (p.name == name) return &p;
    }
    return nullptr;
  };
  for (const auto& [key, value] : a.configuration) {
    if (find(key) != nullptr) continue;
    std::vector<std::string> names;
    for (const auto& p : rules.properties) names.push_back(p.name);
    return refuse(where + " has the configuration property '" + key + "', which action type " +
                  type + " does not have" +
                  (names.empty() ? std::string("; it takes no configuration.")
                                 : "; its properties are " + Join(names, ", ") + "."));
  }
  for (const auto& p : rules.properties) {
    auto it = a.configuration.find(p.name);
    if (it == a.configuration.end()) {
      std::string reason;
      if (!p.required) {
        for (const auto& [other, values] : p.required_when) {
          auto o = a.configuration.find(other);
          if (o == a.configuration.end() || HasVariable(o->second)) continue;
          for (const auto& v : values) {
            if (SameText(o->second, v)) reason = " (required when " + other + " is " + v + ")";
          }
        }
        if (reason.empty()) continue;
      }
      return refuse(where + " is missing the required configuration property '" + p.name +
                    "' of action type " + type + reason + ".");
    }
    if (p.allowed_values.empty() || HasVariable(it->second)) continue;
    bool allowed = false;
    for (const auto& v : p.allowed_values) allowed = allowed || SameText(it->second, v);
    if (!allowed) {
      return refuse(where + ": configuration property '" + p.name + "' of action type " + type +
                    " must be one of " + Join(p.allowed_values, ", ") + ", not '" + it->second +
                    "'.");
    }
  }
  auto count = [&](const char* what, size_t n, int min, int max) -> Status {
    if (static_cast<int>(n) >= min && static_cast<int>(n) <= max) return Status::Ok();
    const std::string range =
        min == max ? std::to_string(min) : std::to_string(min) + " to " + std::to_string(max);
    return refuse(where + " has " + std::to_string(n) + " " + what + " artifact" +
                  (n == 1 ? "" : "s") + "; action type " + type + " takes " + range + ".");
  };
  PW_RETURN_IF_ERROR(count("input", a.input_artifacts.size(), rules.min_inputs, rules.max_inputs));
  return count("output", a.output_artifacts.size(), rules.min_outputs, rules.max_outputs);
}

}  // namespace

Status CheckConfiguration(
    const core::PipelineDecl& d,
    const std::function<std::optional<json>(const core::ActionTypeId&)>& custom) {
  for (const auto& s : d.stages) {
    for (const auto& a : s.actions) {
      TypeRules rules;
      if (const BuiltinActionType* b = FindBuiltin(a.type)) {
        rules.properties = b->properties;
        rules.min_inputs = b->min_inputs;
        rules.max_inputs = b->max_inputs;
        rules.min_outputs = b->min_outputs;
        rules.max_outputs = b->max_outputs;
      } else if (auto t = custom(a.type)) {
        rules = RulesOfCustom(*t);
      } else {
        continue;  // Unknown types are refused by core::ValidateStructure.
      }
      PW_RETURN_IF_ERROR(CheckAction(a, s.name, rules));
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
      if (IsBuiltin(a, "Build", "CodeBuild") || IsBuiltin(a, "Test", "CodeBuild")) {
        if (Status c = runner::CheckCodeBuildConfiguration(a.configuration, a.input_artifacts);
            !c.ok()) {
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
