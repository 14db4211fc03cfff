#include "auth/operation_access.h"

#include <functional>
#include <set>

namespace pw::auth {
namespace {

std::string StringField(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

}  // namespace

OperationAccess AccessFor(std::string_view operation, const nlohmann::json& input,
                          std::string_view region, std::string_view account) {
  OperationAccess out;
  out.action = "codepipeline:" + std::string(operation);
  out.resource = "*";
  std::string prefix = "arn:aws:codepipeline:" + std::string(region) + ":" + std::string(account);

  if (operation == "TagResource" || operation == "UntagResource" ||
      operation == "ListTagsForResource") {
    std::string arn = StringField(input, "resourceArn");
    if (!arn.empty()) out.resource = arn;
    return out;
  }
  if (operation == "CreateCustomActionType" || operation == "DeleteCustomActionType" ||
      operation == "GetActionType" || operation == "UpdateActionType") {
    // Custom action types have the owner "Custom"; GetActionType names it,
    // UpdateActionType nests the id in actionType.id.
    const nlohmann::json* id = &input;
    if (operation == "UpdateActionType" && input.contains("actionType") &&
        input["actionType"].is_object() && input["actionType"].contains("id")) {
      id = &input["actionType"]["id"];
    }
    std::string owner = StringField(*id, "owner");
    if (owner.empty()) owner = "Custom";
    std::string category = StringField(*id, "category");
    std::string provider = StringField(*id, "provider");
    std::string version = StringField(*id, "version");
    if (!category.empty() && !provider.empty() && !version.empty()) {
      out.resource =
          prefix + ":actiontype:" + owner + "/" + category + "/" + provider + "/" + version;
    }
    return out;
  }
  if (operation == "PutWebhook" || operation == "DeleteWebhook" ||
      operation == "RegisterWebhookWithThirdParty" ||
      operation == "DeregisterWebhookWithThirdParty" || operation == "ListWebhookDeliveries") {
    // A webhook's ARN: arn:aws:codepipeline:<region>:<account>:webhook:<name>.
    std::string name = operation == "PutWebhook" && input.is_object() && input.contains("webhook")
                           ? StringField(input["webhook"], "name")
                       : operation == "DeleteWebhook" || operation == "ListWebhookDeliveries"
                           ? StringField(input, "name")
                           : StringField(input, "webhookName");
    if (!name.empty()) out.resource = prefix + ":webhook:" + name;
    return out;
  }
  // The pipeline is read from the one member the operation's input shape
  // defines and its handler reads, never from another: an input may carry
  // extra members (ignored by the handler), and authorizing a name the
  // handler does not act on would let a key scoped to some pipelines act on
  // any other. Operations that name no pipeline are on "*" whatever they carry.
  std::string pipeline;
  switch (PipelineMemberOf(operation)) {
    case PipelineMember::kName:
      pipeline = StringField(input, "name");
      break;
    case PipelineMember::kPipelineName:
      pipeline = StringField(input, "pipelineName");
      break;
    case PipelineMember::kDeclarationName:
      if (input.is_object() && input.contains("pipeline")) {
        pipeline = StringField(input["pipeline"], "name");
      }
      break;
    case PipelineMember::kNone:
      break;
  }
  if (!pipeline.empty()) out.resource = prefix + ":" + pipeline;
  return out;
}

PipelineMember PipelineMemberOf(std::string_view operation) {
  static const std::set<std::string_view, std::less<>> kByName = {
      "GetPipeline", "DeletePipeline", "GetPipelineState", "StartPipelineExecution"};
  static const std::set<std::string_view, std::less<>> kByPipelineName = {
      "DisableStageTransition",
      "EnableStageTransition",
      "GetPipelineExecution",
      "ListActionExecutions",
      "ListDeployActionExecutionTargets",
      "ListPipelineExecutions",
      "ListRuleExecutions",
      "OverrideStageCondition",
      "PutActionRevision",
      "PutApprovalResult",
      "RetryStageExecution",
      "RollbackStage",
      "StopPipelineExecution",
      "GetStageRetryPlan",  // Pipewright's: RetryStageExecution's input.
  };
  if (kByName.contains(operation)) return PipelineMember::kName;
  if (kByPipelineName.contains(operation)) return PipelineMember::kPipelineName;
  if (operation == "CreatePipeline" || operation == "UpdatePipeline") {
    return PipelineMember::kDeclarationName;
  }
  return PipelineMember::kNone;
}

}  // namespace pw::auth
