#pragma once

// Helpers shared by the engine's source files (engine.cc, commit.cc,
// pipeline_ops.cc, jobs.cc, ticker.cc). Not part of the engine's interface.

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/status.h"
#include "core/execution.h"
#include "core/pipeline.h"
#include "core/shell_quote.h"
#include "runner/deploy_dir.h"

namespace pw::engine {

inline constexpr const char* kRestartMessage =
    "The Pipewright server stopped while this action was running; retry the stage to run it "
    "again.";

const core::ActionDecl* FindActionDecl(const core::PipelineDecl& d, const std::string& stage,
                                       const std::string& action);

// `a` with the run's resolved configuration and environment (variables
// substituted when the run started). Runs recorded before resolution existed
// keep the declared values.
core::ActionDecl WithResolvedConfiguration(const core::ActionDecl& a, const core::ActionRun& r);

// The commands a Commands action runs (variables reach commands as data):
// the declared commands with each #{…} turned into a quoted expansion of a
// PW_VAR_n environment variable holding the value (core/shell_quote.h).
// `declared` is the action as declared, before variables were resolved.
// kInvalidArgument (a ConfigurationError of the run) for an unresolvable
// reference or a NUL byte.
Result<core::ShellCommands> ShellCommandsOf(const core::ActionDecl& declared,
                                            const core::Variables& scope);

Status NotFoundPipeline(const std::string& name);

// What GetPipeline shows for a secret configuration value (rule 9).
inline constexpr const char* kMasked = "****";

// validation.cc (Commands configuration values: runner::CheckCommandsConfiguration).
// Each action's configuration and artifact counts against its type (the
// action type table or the custom type): a missing required property (also
// one made required by another's value, e.g. Deploy/S3 ObjectKey when Extract
// is false), a property the type does not have, a value outside the allowed
// ones (values with #{variables} are checked when they run), too few or too
// many artifacts. InvalidActionDeclarationException naming the action, the
// property and the type. Unknown types are left to core::ValidateStructure.
Status CheckConfiguration(
    const core::PipelineDecl& d,
    const std::function<std::optional<nlohmann::json>(const core::ActionTypeId&)>& custom);
// Data rules of a declaration: no NUL byte where it could reach a process,
// Commands configuration values, local paths away from the data directory
// (paths with variables are checked when the action starts).
Status CheckActionData(const core::PipelineDecl& d, const runner::PathPolicy& policy);

}  // namespace pw::engine
