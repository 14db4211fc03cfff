#include "core/pipeline.h"

#include <algorithm>
#include <cctype>
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
    for (const auto& [order, name] : stage_outputs) outputs_so_far.insert(name);
  }
  if (total_actions > kMaxActionsPerPipeline) {
    return StructureError("Pipeline '" + p.name + "' has more than 500 actions.");
  }
  return Status::Ok();
}

}  // namespace pw::core
