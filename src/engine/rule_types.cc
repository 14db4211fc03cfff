#include "engine/rule_types.h"

#include <cstdio>

#include "common/check.h"

namespace pw::engine {

// Defined in the file generated from rule_types.json (engine/CMakeLists.txt).
extern const std::string_view kRuleTypesJson;

std::string_view EmbeddedRuleTypesJson() { return kRuleTypesJson; }

const std::vector<BuiltinActionType>& BuiltinRuleTypes() {
  static const std::vector<BuiltinActionType> kTypes = [] {
    auto parsed = ParseTypeTable(kRuleTypesJson, "ruleTypes");
    if (!parsed.ok()) std::fprintf(stderr, "%s\n", parsed.status().message().c_str());
    // The table is part of the source: one that does not parse is a bug.
    PW_CHECK(parsed.ok());
    return *std::move(parsed);
  }();
  return kTypes;
}

const BuiltinActionType* FindRuleType(const core::ActionTypeId& id) {
  for (const auto& t : BuiltinRuleTypes()) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

}  // namespace pw::engine
