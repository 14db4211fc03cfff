#include "core/pipeline.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

namespace pw::core {
namespace {

Status StructureError(std::string msg) {
  return InvalidArgument(std::move(msg), "InvalidStructureException");
}
Status StageError(std::string msg) {
  return InvalidArgument(std::move(msg), "InvalidStageDeclarationException");
}
Status ActionError(std::string msg) {
  return InvalidArgument(std::move(msg), "InvalidActionDeclarationException");
}

constexpr size_t kMaxStages = 50;
constexpr size_t kMaxActionsPerStage = 50;
constexpr size_t kMaxActionsPerPipeline = 500;

}  // namespace

std::vector<int> StageDecl::RunOrders() const {
  std::set<int> orders;
  for (const auto& a : actions) orders.insert(a.run_order);
  return {orders.begin(), orders.end()};
}

const std::vector<ConditionDecl>& StageDecl::Conditions(ConditionKind k) const {
  switch (k) {
    case ConditionKind::kBeforeEntry:
      return before_entry;
    case ConditionKind::kOnSuccess:
      return on_success;
    case ConditionKind::kOnFailure:
      break;
  }
  return on_failure_conditions;
}

const StageDecl* PipelineDecl::FindStage(const std::string& stage_name) const {
  for (const auto& s : stages) {
    if (s.name == stage_name) return &s;
  }
  return nullptr;
}

int PipelineDecl::StageIndex(const std::string& stage_name) const {
  for (size_t i = 0; i < stages.size(); ++i) {
    if (stages[i].name == stage_name) return static_cast<int>(i);
  }
  return -1;
}

std::string_view ExecutionModeName(ExecutionMode m) {
  switch (m) {
    case ExecutionMode::kSuperseded:
      return "SUPERSEDED";
    case ExecutionMode::kQueued:
      return "QUEUED";
    case ExecutionMode::kParallel:
      return "PARALLEL";
  }
  return "SUPERSEDED";
}

namespace {

std::string_view ResultName(FailureResult r) {
  switch (r) {
    case FailureResult::kFail:
      return "FAIL";
    case FailureResult::kRetry:
      return "RETRY";
    case FailureResult::kRollback:
      return "ROLLBACK";
    case FailureResult::kSkip:
      return "SKIP";
    case FailureResult::kNone:
      break;
  }
  return "(none)";
}

// Rules 20, 62, 63: which results each kind of condition allows, 1-5 rules
// with unique names, SKIP only with LambdaInvoke/VariableCheck rules, no
// rollback of a source stage or in PARALLEL mode, rule inputs produced
// before the condition runs.
Status ValidateConditions(const PipelineDecl& p, size_t si, const std::set<std::string>& earlier,
                          const std::vector<std::pair<int, std::string>>& stage_outputs) {
  const StageDecl& s = p.stages[si];
  const bool any =
      !s.before_entry.empty() || !s.on_success.empty() || !s.on_failure_conditions.empty();
  if (!any) return Status::Ok();
  if (p.pipeline_type != "V2") {
    return StageError("Stage '" + s.name +
                      "' declares stage conditions, which need pipelineType V2; set "
                      "\"pipelineType\": \"V2\".");
  }
  for (ConditionKind kind :
       {ConditionKind::kBeforeEntry, ConditionKind::kOnSuccess, ConditionKind::kOnFailure}) {
    const auto& list = s.Conditions(kind);
    const std::string where = "Stage '" + s.name + "' " +
                              (kind == ConditionKind::kBeforeEntry ? std::string("beforeEntry")
                               : kind == ConditionKind::kOnSuccess ? std::string("onSuccess")
                                                                   : std::string("onFailure")) +
                              " condition";
    if (list.size() > 1) return StageError(where + "s: only one condition is allowed.");
    for (const ConditionDecl& c : list) {
      const std::string got(ResultName(c.result));
      if (kind == ConditionKind::kBeforeEntry && c.result != FailureResult::kFail &&
          c.result != FailureResult::kSkip) {
        return StageError(where + " has result " + got + "; it must be FAIL or SKIP.");
      }
      if (kind == ConditionKind::kOnSuccess && c.result != FailureResult::kFail &&
          c.result != FailureResult::kRollback) {
        return StageError(where + " has result " + got + "; it must be ROLLBACK or FAIL.");
      }
      if (kind == ConditionKind::kOnFailure && c.result != FailureResult::kRollback) {
        return StageError(where + " has result " + got +
                          "; it must be ROLLBACK (automatic retry cannot have conditions).");
      }
      if (c.result == FailureResult::kRollback && si == 0) {
        return StageError(where + ": a source stage cannot roll back.");
      }
      if (c.result == FailureResult::kRollback && p.execution_mode == ExecutionMode::kParallel) {
        return StageError(where + ": rollback is not available in PARALLEL mode.");
      }
      if (c.rules.empty() || c.rules.size() > 5) {
        return StageError(where + " has " + std::to_string(c.rules.size()) +
                          " rules; a condition needs 1 to 5 rules.");
      }
      std::set<std::string> names;
      for (const RuleDecl& r : c.rules) {
        if (!names.insert(r.name).second) {
          return StageError(where + ": rule name '" + r.name +
                            "' is used more than once; rule names must be unique.");
        }
        if (c.result == FailureResult::kSkip && r.type.provider != "VariableCheck" &&
            r.type.provider != "LambdaInvoke") {
          return StageError(where +
                            " with result SKIP may only use VariableCheck or "
                            "LambdaInvoke rules, but rule '" +
                            r.name + "' is " + r.type.provider + ".");
        }
        for (const auto& in : r.input_artifacts) {
          bool found = earlier.count(in) > 0;
          if (kind != ConditionKind::kBeforeEntry) {
            for (const auto& [order, name] : stage_outputs) found = found || name == in;
          }
          if (!found) {
            return StructureError("Input artifact '" + in + "' of rule '" + r.name + "' (" + where +
                                  ") is not the output of an action that runs before "
                                  "the condition.");
          }
        }
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateStructure(const PipelineDecl& p, const ActionTypeKnown& known) {
  if (p.has_artifact_store == p.has_artifact_stores) {
    return StructureError(
        "Pipeline '" + p.name +
        "' must have either artifactStore or artifactStores, but not both and not neither.");
  }
  if (p.stages.size() < 2) {
    return StructureError("Pipeline '" + p.name + "' has " + std::to_string(p.stages.size()) +
                          " stage(s); a pipeline needs at least 2 stages: a source stage and "
                          "at least one other.");
  }
  if (p.stages.size() > kMaxStages) {
    return StructureError("Pipeline '" + p.name + "' has more than 50 stages.");
  }
  if (p.execution_mode != ExecutionMode::kSuperseded && p.pipeline_type != "V2") {
    return StructureError("Execution mode " + std::string(ExecutionModeName(p.execution_mode)) +
                          " requires pipelineType V2; set \"pipelineType\": \"V2\".");
  }

  std::set<std::string> stage_names;
  std::set<std::string> outputs_so_far;  // Outputs of earlier stages.
  size_t total_actions = 0;
  for (size_t si = 0; si < p.stages.size(); ++si) {
    const StageDecl& s = p.stages[si];
    if (!stage_names.insert(s.name).second) {
      return StageError("Stage name '" + s.name +
                        "' is used more than once; stage names must be unique.");
    }
    if (s.actions.empty()) {
      return StageError("Stage '" + s.name + "' has no actions; a stage needs 1 to 50 actions.");
    }
    if (s.actions.size() > kMaxActionsPerStage) {
      return StageError("Stage '" + s.name + "' has more than 50 actions.");
    }
    total_actions += s.actions.size();
    if (s.on_failure == FailureResult::kRetry && s.on_failure_has_conditions) {
      return StageError("Stage '" + s.name +
                        "': automatic retry (onFailure result RETRY) cannot be combined with "
                        "onFailure conditions.");
    }
    if (s.on_failure_has_retry_configuration && s.on_failure != FailureResult::kRetry) {
      return StageError("Stage '" + s.name +
                        "': onFailure.retryConfiguration is only allowed with result RETRY.");
    }
    if (s.on_failure == FailureResult::kRollback && si == 0) {
      return StageError("Stage '" + s.name + "': a source stage cannot roll back.");
    }
    if (s.on_failure == FailureResult::kRollback && p.execution_mode == ExecutionMode::kParallel) {
      return StageError("Stage '" + s.name + "': rollback is not available in PARALLEL mode.");
    }

    std::set<std::string> action_names;
    // Outputs visible to an action: earlier stages plus lower runOrder in this stage.
    std::vector<std::pair<int, std::string>> stage_outputs;
    bool has_source = false;
    for (const ActionDecl& a : s.actions) {
      if (!action_names.insert(a.name).second) {
        return ActionError("Action name '" + a.name + "' is used more than once in stage '" +
                           s.name + "'; action names must be unique within a stage.");
      }
      const bool is_source = a.type.category == "Source";
      if (si == 0 && !is_source) {
        return StageError("Stage '" + s.name +
                          "' is the first stage and may contain only source "
                          "actions, but action '" +
                          a.name + "' is in category " + a.type.category + ".");
      }
      if (si > 0 && is_source) {
        return StageError("Source action '" + a.name + "' is in stage '" + s.name +
                          "'; source actions belong in the first stage only.");
      }
      has_source = has_source || is_source;
      if (known && !known(a.type)) {
        return ActionError("Action '" + a.name + "' in stage '" + s.name +
                           "' has an unknown action type " + a.type.ToString() +
                           "; see ListActionTypes for the available types.");
      }
      for (const auto& var : a.output_variables) {
        bool ok =
            !var.empty() && (std::isalpha(static_cast<unsigned char>(var[0])) || var[0] == '_');
        for (char ch : var) ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
        if (!ok) {
          return ActionError("Output variable '" + var + "' of action '" + a.name +
                             "' is not an environment variable name (letters, digits, _).");
        }
      }
      for (const auto& out : a.output_artifacts) {
        for (const auto& [order, name] : stage_outputs) {
          if (name == out.name) {
            return StructureError("Output artifact name '" + out.name +
                                  "' is declared more than once; output artifact names must be "
                                  "unique in the pipeline.");
          }
        }
        if (outputs_so_far.count(out.name)) {
          return StructureError("Output artifact name '" + out.name +
                                "' is declared more than once; output artifact names must be "
                                "unique in the pipeline.");
        }
        stage_outputs.emplace_back(a.run_order, out.name);
      }
    }
    if (si == 0 && !has_source) {
      return StageError("The first stage '" + s.name +
                        "' must contain at least one source action.");
    }
    for (const ActionDecl& a : s.actions) {
      for (const auto& in : a.input_artifacts) {
        bool found = outputs_so_far.count(in) > 0;
        for (const auto& [order, name] : stage_outputs) {
          if (name == in && order < a.run_order) found = true;
        }
        if (!found) {
          return StructureError("Input artifact '" + in + "' of action '" + a.name +
                                "' in stage '" + s.name +
                                "' is not the output of a preceding action (an earlier "
                                "stage, or a lower runOrder in the same stage).");
        }
      }
    }
    PW_RETURN_IF_ERROR(ValidateConditions(p, si, outputs_so_far, stage_outputs));
    for (const auto& [order, name] : stage_outputs) outputs_so_far.insert(name);
  }
  if (total_actions > kMaxActionsPerPipeline) {
    return StructureError("Pipeline '" + p.name + "' has more than 500 actions.");
  }
  // Variable namespaces (AWS user guide, Variables reference): unique across the
  // pipeline and no artifact's name; `codepipeline` is CodePipeline's own
  // (#{codepipeline.PipelineExecutionId}) and `variables` the pipeline-level
  // variables' (#{variables.name}), so an action there could pass off its
  // outputs as theirs.
  std::map<std::string, std::string> namespaces;  // Namespace -> who declared it.
  for (const StageDecl& s : p.stages) {
    for (const ActionDecl& a : s.actions) {
      const std::string& ns = a.namespace_name;
      if (ns.empty()) continue;
      const std::string who = "action '" + a.name + "' in stage '" + s.name + "'";
      if (ns == "codepipeline" || ns == "variables") {
        return ActionError("Namespace '" + ns + "' of " + who + " is reserved for " +
                           (ns == "codepipeline" ? "the variables CodePipeline sets"
                                                 : "the pipeline-level variables") +
                           "; choose another namespace.");
      }
      if (outputs_so_far.count(ns)) {
        return ActionError("Namespace '" + ns + "' of " + who +
                           " is also an artifact's name; namespaces cannot conflict with "
                           "artifact names.");
      }
      auto [it, inserted] = namespaces.emplace(ns, who);
      if (!inserted) {
        return ActionError("Namespace '" + ns + "' is declared by " + it->second + " and by " +
                           who + "; namespaces must be unique in the pipeline.");
      }
    }
  }
  return Status::Ok();
}

}  // namespace pw::core
