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
// The resource is the pipeline ARN when the input names a pipeline (`name`,
// `pipelineName` or `pipeline.name`), `resourceArn` as given for the tag
// operations, the action type ARN
// (arn:aws:codepipeline:<region>:<account>:actiontype:<Owner>/<Category>/<Provider>/<Version>)
// for custom action type operations, and "*" otherwise (ListPipelines,
// PollForJobs, job results…).
OperationAccess AccessFor(std::string_view operation, const nlohmann::json& input,
                          std::string_view region, std::string_view account);

}  // namespace pw::auth
