#pragma once

// Stage condition operations (rules 62-64): OverrideStageCondition,
// ListRuleExecutions, ListRuleTypes, and the condition states of
// GetPipelineState's StageState. The engine must outlive the dispatcher.

#include <nlohmann/json.hpp>
#include <string>

#include "api/dispatcher.h"
#include "core/execution.h"
#include "engine/engine.h"

namespace pw::api {

void RegisterConditionOps(Dispatcher& d, engine::Engine& engine);

// Adds beforeEntryConditionState / onSuccessConditionState /
// onFailureConditionState to `stage_state` for each condition `s` declares:
// the latest evaluation in `sr` of execution `e` (both may be null: nothing
// evaluated yet, only the rule names).
void AddConditionStates(const core::StageDecl& s, const core::Execution* e,
                        const core::StageRun* sr, nlohmann::json& stage_state);

// One RuleExecutionDetail of ListRuleExecutions. `region` is the server's.
nlohmann::json RuleExecutionDetail(const core::PipelineState& p, const core::Execution& e,
                                   const core::RuleRun& r, const std::string& bucket,
                                   const std::string& region);

}  // namespace pw::api
