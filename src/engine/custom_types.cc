// The action-type registry: the table's types (action_types.json) and custom
// action types (owner Custom), stored under kv actiontype/, never reused once
// deleted; and rule 9's masking of their secret properties.

#include "engine/action_types.h"
#include "engine/engine.h"
#include "engine/internal.h"

namespace pw::engine {

using nlohmann::json;

bool Engine::ActionTypeKnown(const core::ActionTypeId& id) const {
  if (id.owner == "Custom") return FindCustomActionType(id).has_value();
  return FindBuiltin(id) != nullptr;
}

namespace {

// Secret property names of a custom type (its document) or, without one, of
// the table's type `id` (e.g. ThirdParty GitHub's OAuthToken).
std::vector<std::string> SecretProperties(const std::optional<json>& custom,
                                          const core::ActionTypeId& id) {
  std::vector<std::string> out;
  if (!custom) {
    if (const BuiltinActionType* t = FindBuiltin(id)) {
      for (const auto& p : t->properties) {
        if (p.secret) out.push_back(p.name);
      }
    }
    return out;
  }
  for (const auto& p : custom->value("actionConfigurationProperties", json::array())) {
    if (p.value("secret", false)) out.push_back(p.value("name", ""));
  }
  return out;
}

core::ActionTypeId TypeOf(const json& action) {
  const json t = action.value("actionTypeId", json::object());
  return {t.value("category", ""), t.value("owner", ""), t.value("provider", ""),
          t.value("version", "")};
}

}  // namespace

json Engine::MaskSecrets(json decl) const {
  if (!decl.contains("stages") || !decl["stages"].is_array()) return decl;
  for (auto& s : decl["stages"]) {
    if (!s.contains("actions") || !s["actions"].is_array()) continue;
    for (auto& a : s["actions"]) {
      const core::ActionTypeId id = TypeOf(a);
      for (const auto& name : SecretProperties(FindCustomActionType(id), id)) {
        if (a.contains("configuration") && a["configuration"].contains(name)) {
          a["configuration"][name] = kMasked;
        }
      }
    }
  }
  return decl;
}

namespace {

std::string TypeKey(const core::ActionTypeId& id) {
  return id.category + "/" + id.provider + "/" + id.version;
}

}  // namespace

Result<json> Engine::CreateCustomActionType(const json& in) {
  core::ActionTypeId id{in["category"], "Custom", in["provider"], in["version"]};
  json props = in.value("configurationProperties", json::array());
  int queryable = 0;
  for (const auto& p : props) {
    if (!p.value("queryable", false)) continue;
    ++queryable;
    if (!p.value("required", false) || p.value("secret", false)) {
      return InvalidArgument("Configuration property '" + p.value("name", "") +
                             "' is queryable, so it must be required and not secret.");
    }
  }
  if (queryable > 1) {
    return InvalidArgument("A custom action type can have at most one queryable property.");
  }
  json type = {{"id",
                {{"category", id.category},
                 {"owner", "Custom"},
                 {"provider", id.provider},
                 {"version", id.version}}},
               {"settings", in.value("settings", json::object())},
               {"actionConfigurationProperties", props},
               {"inputArtifactDetails", in["inputArtifactDetails"]},
               {"outputArtifactDetails", in["outputArtifactDetails"]}};
  MutexLock lock(types_mu_);
  const std::string key = TypeKey(id);
  auto it = custom_types_.find(key);
  if (it != custom_types_.end()) {
    return InvalidArgument(it->second.value("deleted", false)
                               ? "Custom action type " + id.ToString() +
                                     " was deleted and cannot be created again; use a new version."
                               : "Custom action type " + id.ToString() + " already exists.");
  }
  int live = 0;
  for (const auto& [k, doc] : custom_types_) live += doc.value("deleted", false) ? 0 : 1;
  if (live >= options_.max_custom_action_types) {
    return ResourceExhausted("The limit of " + std::to_string(options_.max_custom_action_types) +
                                 " custom action types has been reached.",
                             "LimitExceededException");
  }
  PW_RETURN_IF_ERROR(store_.PutKv("actiontype/" + key, type.dump()));
  custom_types_[key] = type;
  read_cache_.Clear();  // Secret masking of GetPipeline depends on the types.
  return type;
}

Status Engine::DeleteCustomActionType(const core::ActionTypeId& id) {
  MutexLock lock(types_mu_);
  auto it = custom_types_.find(TypeKey(id));
  if (it == custom_types_.end() || it->second.value("deleted", false)) {
    return NotFound("Custom action type " + id.ToString() + " does not exist.",
                    "ActionTypeNotFoundException");
  }
  json doc = it->second;
  doc["deleted"] = true;
  PW_RETURN_IF_ERROR(store_.PutKv("actiontype/" + TypeKey(id), doc.dump()));
  it->second = doc;
  read_cache_.Clear();
  return Status::Ok();
}

std::vector<json> Engine::CustomActionTypes() const {
  MutexLock lock(types_mu_);
  std::vector<json> out;
  for (const auto& [k, doc] : custom_types_) {
    if (doc.value("deleted", false)) continue;
    json t = doc;
    t.erase("deleted");
    out.push_back(t);
  }
  return out;
}

std::optional<json> Engine::FindCustomActionType(const core::ActionTypeId& id) const {
  if (id.owner != "Custom") return std::nullopt;
  {
    MutexLock lock(types_mu_);
    auto it = custom_types_.find(TypeKey(id));
    if (it != custom_types_.end()) {
      if (it->second.value("deleted", false)) return std::nullopt;
      return it->second;
    }
  }
  // Not known here: another server sharing the database may have created it.
  auto stored = store_.GetKv("actiontype/" + TypeKey(id));
  if (!stored.ok() || !stored->has_value()) return std::nullopt;
  json doc = json::parse(**stored, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || doc.value("deleted", false)) return std::nullopt;
  return doc;
}

}  // namespace pw::engine
