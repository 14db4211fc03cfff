#pragma once

// The embedded CodePipeline model as the CLI needs it: with member order kept
// (botocore validates and prints in model order) and botocore's name mangling.
//
//   const OJson* shape = cli::FindShape("GetPipelineInput");
//   cli::ToKebab("pipelineName");  // "pipeline-name"
//
// Thread-safe: the model is parsed once and never modified.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace pw::cli {

// JSON that keeps insertion order, like Python dicts (the aws CLI's data model).
using OJson = nlohmann::ordered_json;

// The whole service model, members in file order. Aborts if it cannot be parsed (a build bug).
const OJson& OrderedModel();

// The named shape, or nullptr.
const OJson* FindShape(std::string_view name);

// The operation's model entry, or nullptr.
const OJson* FindOperation(std::string_view name);

// The operation's input shape name, or "" when it has none.
std::string InputShapeName(std::string_view operation);

// The operation's output shape name, or "" when it has none.
std::string OutputShapeName(std::string_view operation);

// The shape's "type" ("structure", "list", "string", ...), or "" if unknown.
std::string ShapeType(std::string_view shape_name);

// botocore xform_name with "-": "GetPipelineState" -> "get-pipeline-state",
// "pipelineName" -> "pipeline-name", "MaxResults" -> "max-results".
std::string ToKebab(std::string_view name);

// The flag for input member `member` of `operation`: its kebab-case name, or
// the name aws gives it where `--version` would clash with the global flag
// (get-pipeline --pipeline-version, *-custom-action-type --action-version).
std::string FlagName(std::string_view operation, std::string_view member);

// The operation named by a kebab-case verb ("get-pipeline" -> "GetPipeline"), or "".
std::string OperationForVerb(std::string_view verb);

}  // namespace pw::cli
