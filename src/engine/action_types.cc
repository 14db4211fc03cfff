#include "engine/action_types.h"

#include <nlohmann/json.hpp>
#include <set>

#include "common/check.h"

namespace pw::engine {

// Defined in the file generated from action_types.json (engine/CMakeLists.txt).
extern const std::string_view kActionTypesJson;

namespace {

using nlohmann::json;

Status Bad(const std::string& where, const std::string& what) {
  return InvalidArgument("action type table: " + where + ": " + what);
}

Result<int> Count(const json& entry, const char* field, const char* bound,
                  const std::string& where) {
  const json* details = entry.contains(field) ? &entry[field] : nullptr;
  if (details == nullptr || !details->is_object() || !details->contains(bound) ||
      !(*details)[bound].is_number_integer()) {
    return Bad(where, std::string(field) + "." + bound + " must be an integer");
  }
  int n = (*details)[bound].get<int>();
  if (n < 0 || n > 10) return Bad(where, std::string(field) + "." + bound + " must be 0..10");
  return n;
}

Result<ConfigProperty> ParseProperty(const json& p, const std::string& where) {
  if (!p.is_object() || !p.contains("name") || !p["name"].is_string()) {
    return Bad(where, "a property without a name");
  }
  ConfigProperty out;
  out.name = p["name"].get<std::string>();
  const std::string at = where + " property " + out.name;
  for (const auto& [field, value] : p.items()) {
    if (field == "name") continue;
    if (field == "required" || field == "key" || field == "secret" || field == "queryable") {
      if (!value.is_boolean()) return Bad(at, field + " must be true or false");
      bool b = value.get<bool>();
      (field == "required" ? out.required
       : field == "key"    ? out.key
       : field == "secret" ? out.secret
                           : out.queryable) = b;
    } else if (field == "type") {
      if (!value.is_string() || (value != "String" && value != "Number" && value != "Boolean")) {
        return Bad(at, "type must be String, Number or Boolean");
      }
      out.type = value.get<std::string>();
    } else if (field == "description") {
      if (!value.is_string()) return Bad(at, "description must be a string");
      out.description = value.get<std::string>();
    } else if (field == "allowedValues") {
      if (!value.is_array() || value.empty()) return Bad(at, "allowedValues must be a list");
      for (const auto& v : value) {
        if (!v.is_string()) return Bad(at, "allowedValues must hold strings");
        out.allowed_values.push_back(v.get<std::string>());
      }
    } else if (field == "requiredWhen") {
      if (!value.is_object() || value.empty()) return Bad(at, "requiredWhen must be an object");
      for (const auto& [other, values] : value.items()) {
        std::vector<std::string> list;
        if (values.is_string()) {
          list.push_back(values.get<std::string>());
        } else if (values.is_array()) {
          for (const auto& v : values) {
            if (!v.is_string()) return Bad(at, "requiredWhen values must be strings");
            list.push_back(v.get<std::string>());
          }
        } else {
          return Bad(at, "requiredWhen values must be a string or a list");
        }
        out.required_when[other] = std::move(list);
      }
    } else {
      return Bad(at, "unknown field " + field);
    }
  }
  return out;
}

Result<BuiltinActionType> ParseEntry(const json& e) {
  if (!e.is_object()) return Bad("an entry", "not an object");
  BuiltinActionType t;
  for (const char* f : {"category", "owner", "provider", "version", "runs"}) {
    if (!e.contains(f) || !e[f].is_string() || e[f].get<std::string>().empty()) {
      return Bad(e.dump().substr(0, 80), std::string(f) + " must be a non-empty string");
    }
  }
  t.id = {e["category"], e["owner"], e["provider"], e["version"]};
  const std::string where = t.id.ToString();
  if (t.id.owner != "AWS" && t.id.owner != "ThirdParty") {
    return Bad(where, "owner must be AWS or ThirdParty (custom types are created by the API)");
  }
  const std::string runs = e["runs"];
  if (runs == "builtin") {
    t.runs = ActionRunner::kBuiltin;
  } else if (runs == "worker") {
    t.runs = ActionRunner::kWorker;
  } else {
    return Bad(where, "runs must be builtin or worker, not " + runs);
  }
  t.description = e.value("description", "");
  PW_ASSIGN_OR_RETURN(t.min_inputs, Count(e, "inputArtifacts", "min", where));
  PW_ASSIGN_OR_RETURN(t.max_inputs, Count(e, "inputArtifacts", "max", where));
  PW_ASSIGN_OR_RETURN(t.min_outputs, Count(e, "outputArtifacts", "min", where));
  PW_ASSIGN_OR_RETURN(t.max_outputs, Count(e, "outputArtifacts", "max", where));
  if (t.min_inputs > t.max_inputs || t.min_outputs > t.max_outputs) {
    return Bad(where, "a minimum artifact count above its maximum");
  }
  if (!e.contains("properties") || !e["properties"].is_array()) {
    return Bad(where, "properties must be a list");
  }
  std::set<std::string> names;
  for (const auto& p : e["properties"]) {
    PW_ASSIGN_OR_RETURN(ConfigProperty prop, ParseProperty(p, where));
    if (!names.insert(prop.name).second) return Bad(where, "property " + prop.name + " twice");
    t.properties.push_back(std::move(prop));
  }
  for (const auto& p : t.properties) {
    for (const auto& [other, values] : p.required_when) {
      if (!names.count(other)) {
        return Bad(where, "property " + p.name + " is requiredWhen an unknown property " + other);
      }
    }
  }
  return t;
}

}  // namespace

const ConfigProperty* BuiltinActionType::FindProperty(std::string_view name) const {
  for (const auto& p : properties) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

Result<std::vector<BuiltinActionType>> ParseActionTypes(std::string_view json_text) {
  return ParseTypeTable(json_text, "actionTypes");
}

Result<std::vector<BuiltinActionType>> ParseTypeTable(std::string_view json_text,
                                                      const std::string& list) {
  json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains(list) || !doc[list].is_array()) {
    return InvalidArgument("action type table: not a JSON object with an " + list + " list");
  }
  std::vector<BuiltinActionType> out;
  std::set<std::string> ids;
  for (const auto& e : doc[list]) {
    PW_ASSIGN_OR_RETURN(BuiltinActionType t, ParseEntry(e));
    if (!ids.insert(t.id.ToString()).second) return Bad(t.id.ToString(), "listed twice");
    out.push_back(std::move(t));
  }
  return out;
}

std::string_view EmbeddedActionTypesJson() { return kActionTypesJson; }

const std::vector<BuiltinActionType>& BuiltinActionTypes() {
  static const std::vector<BuiltinActionType> kTypes = [] {
    auto parsed = ParseActionTypes(kActionTypesJson);
    if (!parsed.ok()) std::fprintf(stderr, "%s\n", parsed.status().message().c_str());
    // The table is part of the source: one that does not parse is a bug.
    PW_CHECK(parsed.ok());
    return *std::move(parsed);
  }();
  return kTypes;
}

const BuiltinActionType* FindBuiltin(const core::ActionTypeId& id) {
  for (const auto& t : BuiltinActionTypes()) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

}  // namespace pw::engine
