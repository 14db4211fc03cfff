#pragma once

// Conversion between the wire PipelineDeclaration JSON and core::PipelineDecl.
// The JSON has already passed model validation (types are right), so this
// only reads; it never fails. Thread-safe (pure).

#include <nlohmann/json.hpp>

#include "core/pipeline.h"

namespace pw::engine {

core::PipelineDecl DeclFromJson(const nlohmann::json& pipeline);

// Fills the defaults AWS returns (pipelineType V1, executionMode SUPERSEDED,
// runOrder 1, empty artifact lists) and drops `version`; returns the result.
nlohmann::json NormalizeDeclaration(nlohmann::json pipeline);

}  // namespace pw::engine
