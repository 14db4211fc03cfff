#include "auth/operation_access.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

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

// Before: the pipeline was taken from pipelineName, else name, else
// pipeline.name, whatever the operation, while each handler reads its own
// member: a key allowed only pub-* sent {"pipelineName":"pub-a",
// "pipeline":{"name":"secret-b"}} and rewrote (and ran) secret-b.
TEST(AccessFor, OnlyTheMemberTheOperationDefinesNamesThePipeline) {
  const json decoy = {
      {"pipelineName", "pub-a"}, {"name", "pub-b"}, {"pipeline", {{"name", "pub-c"}}}};
  auto resource = [&](const char* op, const char* member, const char* target) {
    json in = decoy;
    if (std::string(member) == "pipeline.name") {
      in["pipeline"]["name"] = target;
    } else {
      in[member] = target;
    }
    return AccessFor(op, in, "us-east-1", "123456789012").resource;
  };
  const std::string secret = "arn:aws:codepipeline:us-east-1:123456789012:secret";
  EXPECT_EQ(resource("UpdatePipeline", "pipeline.name", "secret"), secret);
  EXPECT_EQ(resource("CreatePipeline", "pipeline.name", "secret"), secret);
  for (const char* op :
       {"GetPipeline", "DeletePipeline", "StartPipelineExecution", "GetPipelineState"}) {
    EXPECT_EQ(resource(op, "name", "secret"), secret) << op;
  }
  EXPECT_EQ(resource("RetryStageExecution", "pipelineName", "secret"), secret);
  // An operation on no pipeline stays on "*" whatever names it carries.
  EXPECT_EQ(AccessFor("ListPipelines", decoy, "us-east-1", "123456789012").resource, "*");
  EXPECT_EQ(AccessFor("PollForJobs", decoy, "us-east-1", "123456789012").resource, "*");
}

// Every operation of the newest service model: PipelineMemberOf names the
// member its input shape defines (name, pipelineName or pipeline), or none.
TEST(AccessFor, PipelineMembersMatchTheServiceModel) {
  std::ifstream f(std::string(PW_SPEC_DIR) + "/codepipeline-2015-07-09.service-2.json");
  ASSERT_TRUE(f.good());
  json model = json::parse(f);
  int checked = 0;
  for (const auto& [op, o] : model["operations"].items()) {
    json members = json::object();
    if (o.contains("input"))
      members = model["shapes"][o["input"]["shape"].get<std::string>()]["members"];
    PipelineMember want = PipelineMember::kNone;
    if (op == "DeleteWebhook") {
      want = PipelineMember::kNone;  // Its `name` is the webhook's.
    } else if (members.contains("pipelineName")) {
      want = PipelineMember::kPipelineName;
    } else if (members.contains("pipeline")) {
      want = PipelineMember::kDeclarationName;
    } else if (members.contains("name")) {
      want = PipelineMember::kName;
    }
    EXPECT_EQ(static_cast<int>(PipelineMemberOf(op)), static_cast<int>(want)) << op;
    ++checked;
  }
  EXPECT_GE(checked, 40);
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
