#pragma once

// The table of action types Pipewright accepts besides custom ones (owner
// Custom): AWS's documented types and Pipewright's own, with their
// configuration properties and artifact counts, as ListActionTypes /
// GetActionType describe them and CreatePipeline checks them. The table is one
// data file, engine/action_types.json, embedded in the binary at build time
// (engine/CMakeLists.txt); this header only reads it. Each type says how it
// runs: built in (an executor or an approval) or on a job worker. Pure data
// after the first call; thread-safe.
//
//   if (const BuiltinActionType* t = FindBuiltin(decl.type); t && t->runs == ActionRunner::kWorker)
//     ...  // Queued as a job for `pipewright worker --action-type ...`.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "core/pipeline.h"

namespace pw::engine {

struct ConfigProperty {
  std::string name;
  bool required = false;
  bool key = false;
  bool secret = false;
  bool queryable = false;
  std::string type = "String";  // The model's ActionConfigurationPropertyType.
  std::string description;
  // If not empty: the only values accepted (compared case-insensitively;
  // values holding "#{" are resolved later and not checked here).
  std::vector<std::string> allowed_values;
  // Required as well when another property has one of these values
  // (case-insensitive), e.g. Deploy/S3 ObjectKey when Extract is false.
  std::map<std::string, std::vector<std::string>> required_when;
};

// How actions of a type run.
enum class ActionRunner {
  kBuiltin,  // By the server: an executor (engine/executor.h) or an approval.
  kWorker,   // As a job for a job worker (PollForJobs), like custom actions.
};

struct BuiltinActionType {
  core::ActionTypeId id;
  std::string description;
  std::vector<ConfigProperty> properties;
  int min_inputs = 0, max_inputs = 0, min_outputs = 0, max_outputs = 0;
  ActionRunner runs = ActionRunner::kBuiltin;

  const ConfigProperty* FindProperty(std::string_view name) const;
};

// The embedded table, parsed once (a table that does not parse is a build
// defect: the process aborts, and the unit tests catch it first).
const std::vector<BuiltinActionType>& BuiltinActionTypes();
// The entry of `id`, or nullptr (custom types are not in the table).
const BuiltinActionType* FindBuiltin(const core::ActionTypeId& id);

// Parses a table in the format of engine/action_types.json. kInvalidArgument
// naming the entry and field that is wrong (unknown runs value, counts out of
// order, a duplicate type or property, a requiredWhen naming no property).
Result<std::vector<BuiltinActionType>> ParseActionTypes(std::string_view json_text);

// The same for a table whose entries are under `list` (rule_types.json:
// "ruleTypes").
Result<std::vector<BuiltinActionType>> ParseTypeTable(std::string_view json_text,
                                                      const std::string& list);

// The embedded file's text, for tests.
std::string_view EmbeddedActionTypesJson();

}  // namespace pw::engine
