#pragma once

// The pipeline declaration as the engine needs it: stages, actions, artifacts,
// and the structural rules of semantics.md A.6-A.10. The full declaration JSON
// (every field the model allows) is stored and returned verbatim by the store;
// this typed view holds only what decisions need. Pure: no I/O.
// Thread-compatible value types.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace pw::core {

struct ActionTypeId {
  std::string category;  // Source, Build, Deploy, Test, Invoke, Approval, Compute.
  std::string owner;     // AWS, ThirdParty, Custom.
  std::string provider;
  std::string version;
  std::string ToString() const { return category + "/" + owner + "/" + provider + "/" + version; }
  bool operator==(const ActionTypeId&) const = default;
  bool operator<(const ActionTypeId& o) const { return ToString() < o.ToString(); }
};

struct EnvVar {
  std::string name;
  std::string value;
};

struct OutputArtifactDecl {
  std::string name;
  std::vector<std::string> files;  // Globs; empty = the whole working directory.
};

struct ActionDecl {
  std::string name;
  ActionTypeId type;
  int run_order = 1;
  std::map<std::string, std::string> configuration;
  std::vector<std::string> commands;  // Newer model's `commands`.
  std::vector<std::string> input_artifacts;
  std::vector<OutputArtifactDecl> output_artifacts;
  std::vector<EnvVar> environment;
  std::optional<int> timeout_minutes;
  std::string namespace_name;
  std::vector<std::string> output_variables;  // Commands: environment variables to export.
};

enum class FailureResult { kNone, kFail, kRetry, kRollback, kSkip };

// A rule of a stage condition (the model's RuleDeclaration).
struct RuleDecl {
  std::string name;
  ActionTypeId type;  // category "Rule", owner "AWS", provider, version ("1" when omitted).
  std::map<std::string, std::string> configuration;
  std::vector<std::string> commands;  // Commands rules.
  std::vector<std::string> input_artifacts;
  std::string region;
  std::string role_arn;
  std::optional<int> timeout_minutes;
};

// Where a condition sits on a stage.
enum class ConditionKind {
  kBeforeEntry,  // Checked before the stage's actions start (results FAIL, SKIP).
  kOnSuccess,    // Checked after every action succeeded (results FAIL, ROLLBACK).
  kOnFailure,    // Checked after the stage failed (result ROLLBACK).
};
std::string_view Name(ConditionKind k);  // BEFORE_ENTRY, ON_SUCCESS, ON_FAILURE.

// A stage condition: the rules must all succeed; `result` engages when the
// condition fails (semantics.md rule 62).
struct ConditionDecl {
  FailureResult result = FailureResult::kNone;
  std::vector<RuleDecl> rules;
};

struct StageDecl {
  std::string name;
  std::vector<ActionDecl> actions;
  FailureResult on_failure = FailureResult::kNone;
  std::string on_failure_retry_mode;  // FAILED_ACTIONS / ALL_ACTIONS, when kRetry.
  bool on_failure_has_retry_configuration = false;
  bool on_failure_has_conditions = false;
  // Stage conditions (the model allows one condition per list).
  std::vector<ConditionDecl> before_entry;
  std::vector<ConditionDecl> on_success;
  std::vector<ConditionDecl> on_failure_conditions;

  const std::vector<ConditionDecl>& Conditions(ConditionKind k) const;

  // Distinct run orders of the actions, ascending.
  std::vector<int> RunOrders() const;
};

enum class ExecutionMode { kSuperseded, kQueued, kParallel };

struct PipelineDecl {
  std::string name;
  int version = 1;
  std::vector<StageDecl> stages;
  bool has_artifact_store = false;
  bool has_artifact_stores = false;
  std::string pipeline_type = "V1";
  std::string artifact_bucket;  // artifactStore.location: the bucket job workers see.
  ExecutionMode execution_mode = ExecutionMode::kSuperseded;
  // Pipeline-level variables (V2): name -> default value, if any.
  std::map<std::string, std::optional<std::string>> variables;

  const StageDecl* FindStage(const std::string& name) const;
  int StageIndex(const std::string& name) const;  // -1 when absent.
};

// Answers whether an action type exists (built-in or custom).
using ActionTypeKnown = std::function<bool(const ActionTypeId&)>;

// Checks the structural rules (semantics.md A.6, A.7, A.10, G.55/56). Returns
// OK or kInvalidArgument with wire name InvalidStructureException (pipeline
// level), InvalidStageDeclarationException (stage level) or
// InvalidActionDeclarationException (action level), naming what to fix.
Status ValidateStructure(const PipelineDecl& p, const ActionTypeKnown& known);

std::string_view ExecutionModeName(ExecutionMode m);

}  // namespace pw::core
