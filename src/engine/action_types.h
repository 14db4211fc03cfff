#pragma once

// The built-in action types (owner AWS, version 1) and their configuration
// properties, as ListActionTypes / GetActionType describe them. Pure data.

#include <optional>
#include <string>
#include <vector>

#include "core/pipeline.h"

namespace pw::engine {

struct ConfigProperty {
  std::string name;
  bool required = false;
  bool key = false;
  bool secret = false;
  bool queryable = false;
  std::string description;
};

struct BuiltinActionType {
  core::ActionTypeId id;
  std::string description;
  std::vector<ConfigProperty> properties;
  int min_inputs = 0, max_inputs = 0, min_outputs = 0, max_outputs = 0;
};

const std::vector<BuiltinActionType>& BuiltinActionTypes();
const BuiltinActionType* FindBuiltin(const core::ActionTypeId& id);

}  // namespace pw::engine
