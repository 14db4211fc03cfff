#pragma once

// What an API call asks permission for: the IAM action and resource ARN of
// one operation with its input, named as AWS CodePipeline names them. Pure;
// thread-safe.
//
//   OperationAccess a = AccessFor("RetryStageExecution", {{"pipelineName", "MyPipeline"}, …},
//                                 "us-east-1", "123456789012");
//   // a.action   == "codepipeline:RetryStageExecution"
//   // a.resource == "arn:aws:codepipeline:us-east-1:123456789012:MyPipeline"

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace pw::auth {

struct OperationAccess {
  std::string action;    // "codepipeline:<Operation>".
  std::string resource;  // An ARN, or "*" for operations on no single resource.
};

// `operation` is the operation name without its X-Amz-Target prefix
// ("GetPipelineState"; Pipewright's extension operations such as
// "GetStageRetryPlan" map to codepipeline: actions of the same name).
// The resource is the pipeline ARN when the input names a pipeline in the
// member its operation defines (PipelineMemberOf), `resourceArn` as given for the tag
// operations, the action type ARN
// (arn:aws:codepipeline:<region>:<account>:actiontype:<Owner>/<Category>/<Provider>/<Version>)
// for custom action type operations, and "*" otherwise (ListPipelines,
// PollForJobs, job results…).
OperationAccess AccessFor(std::string_view operation, const nlohmann::json& input,
                          std::string_view region, std::string_view account);

// Which input member names the pipeline an operation acts on: exactly the
// member of its input shape in the service model (and the one its handler
// reads). Other members that happen to hold a name are never looked at.
enum class PipelineMember {
  kNone,             // ListPipelines, PollForJobs, job results, tags, types…
  kName,             // GetPipeline, DeletePipeline, GetPipelineState, StartPipelineExecution.
  kPipelineName,     // RetryStageExecution, ListPipelineExecutions, … (and GetStageRetryPlan).
  kDeclarationName,  // CreatePipeline, UpdatePipeline: pipeline.name.
};
PipelineMember PipelineMemberOf(std::string_view operation);

}  // namespace pw::auth
