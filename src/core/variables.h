#pragma once

// Variables, as CodePipeline resolves them in action configuration:
//   #{variables.Name}                  a pipeline-level variable (V2), per execution
//   #{codepipeline.PipelineExecutionId} the execution's id
//   #{Namespace.Name}                  an output variable of an earlier action that
//                                      declares `namespace: Namespace`
// Pure functions. Thread-safe.
//
//   auto scope = VariableScope(state, execution);
//   auto v = ResolveVariables("s3://#{Build.Bucket}/x", scope);  // or an error

#include <map>
#include <string>
#include <string_view>

#include "common/status.h"
#include "core/execution.h"

namespace pw::core {

using Variables = std::map<std::string, std::string>;  // "Namespace.Name" -> value.

// Every variable visible to actions of `e` now: the execution's pipeline
// variables, codepipeline.*, and the output variables of the latest
// successful run of each action with a namespace.
Variables VariableScope(const PipelineState& p, const Execution& e);

// Replaces every #{Namespace.Name} in `text`. kInvalidArgument naming the
// first reference that is not in `scope` (or is malformed, or whose value
// holds a NUL byte, which no process argument or environment can carry); text without
// references is returned unchanged.
Result<std::string> ResolveVariables(std::string_view text, const Variables& scope);

// The pipeline variables of a new execution: declared defaults overridden by
// `given`. kInvalidArgument (ValidationException) for an undeclared name or a
// variable with neither a default nor a given value.
Result<Variables> ExecutionVariables(const PipelineDecl& decl, const Variables& given);

}  // namespace pw::core
