#pragma once

// The rule types of stage conditions: one data file, engine/rule_types.json,
// embedded at build time like action_types.json and in its format (category
// Rule). ListRuleTypes answers from it, CreatePipeline checks each rule's
// configuration against it, and `runs` says whether the server evaluates a
// rule (builtin) or queues it as a job for a worker. Pure data after the
// first call; thread-safe.
//
//   if (const BuiltinActionType* t = FindRuleType(rule.type); t == nullptr) ...  // unknown

#include <string_view>
#include <vector>

#include "engine/action_types.h"

namespace pw::engine {

// The embedded table, parsed once (one that does not parse is a build defect:
// the process aborts, and the unit tests catch it first).
const std::vector<BuiltinActionType>& BuiltinRuleTypes();
// The entry of `id` (category Rule, owner AWS), or nullptr.
const BuiltinActionType* FindRuleType(const core::ActionTypeId& id);
// The embedded file's text, for tests.
std::string_view EmbeddedRuleTypesJson();

}  // namespace pw::engine
