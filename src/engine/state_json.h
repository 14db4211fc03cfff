#pragma once

// Persistent documents for execution state: a core::Execution (without its
// action runs, which are stored one row per attempt: RunToDoc) and a
// pipeline's runtime state (transitions, latest execution
// per stage) as JSON, and back. Internal format, versioned by "v". Pure.

#include <nlohmann/json.hpp>

#include "core/execution.h"

namespace pw::engine {

nlohmann::json ExecutionToDoc(const core::Execution& e);
core::Execution ExecutionFromDoc(const nlohmann::json& j);
nlohmann::json RunToDoc(const core::ActionRun& r);
core::ActionRun RunFromDoc(const nlohmann::json& j);

// Transitions and stage_latest of `p` (not the declaration, not executions).
nlohmann::json RuntimeToDoc(const core::PipelineState& p);
void RuntimeFromDoc(const nlohmann::json& j, core::PipelineState* p);

}  // namespace pw::engine
