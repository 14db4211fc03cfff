#pragma once

// A pipeline declaration's V2 `triggers` as core::TriggerDecl, and the rules
// CreatePipeline/UpdatePipeline apply to them beyond the model. Pure.
// Thread-safe.
//
//   PW_RETURN_IF_ERROR(CheckTriggers(decl));               // at create/update
//   auto triggers = TriggersOf(record.declaration);
//   if (const core::TriggerDecl* t = TriggerFor(triggers, "Source")) ...

#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "core/triggers.h"

namespace pw::engine {

// The triggers of a (normalized) pipeline declaration; malformed entries
// (which the model's validation refuses first) are skipped.
std::vector<core::TriggerDecl> TriggersOf(const nlohmann::json& decl);

// The trigger of source action `action`, or nullptr.
const core::TriggerDecl* TriggerFor(const std::vector<core::TriggerDecl>& triggers,
                                    std::string_view action);

// What Pipewright can evaluate: a trigger's source action must be a Git
// source (AWS Git, CodeCommit or CodeStarSourceConnection); pullRequest
// filters are refused (pull request events are not observable: sources poll
// branches and tags, and webhooks take push payloads); a push filter with
// tags has neither branches nor filePaths (a tag push has no branch, and
// filePaths would be ignored). kInvalidArgument, InvalidStructureException,
// naming the trigger and what to change.
Status CheckTriggers(const nlohmann::json& decl);

// The detail recorded as an execution's triggerDetail: at most 1024 bytes
// (the model's limit), cut at a UTF-8 boundary.
std::string TriggerDetail(std::string_view text);

}  // namespace pw::engine
