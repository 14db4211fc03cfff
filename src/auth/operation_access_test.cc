#include "auth/operation_access.h"

#include <gtest/gtest.h>

namespace pw::auth::operation_access_test {
namespace {

using nlohmann::json;

TEST(AccessFor, MapsOperationsToActionsAndPipelineArns) {
  struct Case {
    const char* op;
    json input;
    const char* resource;
  };
  const std::string p = "arn:aws:codepipeline:eu-west-1:111122223333:";
  const Case cases[] = {
      {"GetPipelineState", {{"name", "Web"}}, "Web"},
      {"RetryStageExecution", {{"pipelineName", "Web"}, {"stageName", "Build"}}, "Web"},
      {"CreatePipeline", {{"pipeline", {{"name", "New"}}}}, "New"},
      {"UpdatePipeline", {{"pipeline", {{"name", "Web"}}}}, "Web"},
      {"GetStageRetryPlan", {{"pipelineName", "Web"}}, "Web"},
      {"ListPipelines", json::object(), nullptr},
      {"PollForJobs", {{"actionTypeId", {{"category", "Build"}}}}, nullptr},
      {"PutJobSuccessResult", {{"jobId", "j"}}, nullptr},
  };
  for (const Case& c : cases) {
    OperationAccess a = AccessFor(c.op, c.input, "eu-west-1", "111122223333");
    EXPECT_EQ(a.action, std::string("codepipeline:") + c.op);
    EXPECT_EQ(a.resource, c.resource ? p + c.resource : "*") << c.op;
  }
}

TEST(AccessFor, TagOperationsUseTheResourceArn) {
  std::string arn = "arn:aws:codepipeline:us-east-1:123456789012:Web";
  EXPECT_EQ(AccessFor("TagResource", {{"resourceArn", arn}}, "us-east-1", "1").resource, arn);
  EXPECT_EQ(AccessFor("ListTagsForResource", {{"resourceArn", arn}}, "us-east-1", "1").resource,
            arn);
}

TEST(AccessFor, CustomActionTypesUseTheActionTypeArn) {
  json in = {{"category", "Build"}, {"provider", "MyTool"}, {"version", "1"}};
  EXPECT_EQ(AccessFor("CreateCustomActionType", in, "us-east-1", "123456789012").resource,
            "arn:aws:codepipeline:us-east-1:123456789012:actiontype:Custom/Build/MyTool/1");
  EXPECT_EQ(AccessFor("DeleteCustomActionType", in, "us-east-1", "123456789012").resource,
            "arn:aws:codepipeline:us-east-1:123456789012:actiontype:Custom/Build/MyTool/1");
  EXPECT_EQ(AccessFor("ListActionTypes", json::object(), "us-east-1", "1").resource, "*");
}

}  // namespace
}  // namespace pw::auth::operation_access_test

namespace pw::auth::operation_access_test {
namespace {

TEST(AccessFor, WebhookOperationsUseTheWebhookArn) {
  const std::string arn = "arn:aws:codepipeline:us-east-1:1:webhook:hook";
  EXPECT_EQ(AccessFor("PutWebhook", {{"webhook", {{"name", "hook"}}}}, "us-east-1", "1").resource,
            arn);
  EXPECT_EQ(AccessFor("DeleteWebhook", {{"name", "hook"}}, "us-east-1", "1").resource, arn);
  EXPECT_EQ(AccessFor("RegisterWebhookWithThirdParty", {{"webhookName", "hook"}}, "us-east-1", "1")
                .resource,
            arn);
  EXPECT_EQ(AccessFor("ListWebhooks", nlohmann::json::object(), "us-east-1", "1").resource, "*");
  EXPECT_EQ(AccessFor("PutWebhook", {{"webhook", {{"name", "hook"}}}}, "us-east-1", "1").action,
            "codepipeline:PutWebhook");
}

}  // namespace
}  // namespace pw::auth::operation_access_test
