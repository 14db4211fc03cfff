#pragma once

// Client-side parameter validation exactly as botocore's validate.py does it
// (what the aws CLI checks before sending): required members, unknown members,
// Python-level JSON types and `min` (string/list length, integer minimum).
// `max`, `pattern` and `enum` are deliberately left to the server. Pure.
//
//   auto errors = ValidateParams(input, "GetPipelineInput");
//   // {"Missing required parameter in input: \"name\""}

#include <string>
#include <string_view>
#include <vector>

#include "cli/model.h"

namespace pw::cli {

// Returns one botocore report line per problem, in botocore's order; empty when
// `params` is valid for `shape_name`.
std::vector<std::string> ValidateParams(const OJson& params, std::string_view shape_name);

// Python's str() of a JSON value as json.loads would build it:
// {'a': [1, 'x', True, None]}.
std::string PythonStr(const OJson& value);

}  // namespace pw::cli
