#include "spec/service_model.h"

#include <gtest/gtest.h>

namespace pw::spec {
namespace {

using nlohmann::json;

struct Case {
  const char* name;
  const char* op;
  const char* body;
  const char* want_in_message;  // nullptr = valid
};

const Case kCases[] = {
    {"valid get", "GetPipeline", R"({"name":"p1"})", nullptr},
    {"required missing", "GetPipeline", R"({})",
     "at 'name' failed to satisfy constraint: Member must not be null"},
    {"pattern is a full match", "GetPipeline", R"({"name":"a b"})", "regular expression pattern"},
    {"max length", "GetPipeline",
     R"({"name":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})",
     "length less than or equal to 100"},
    {"min length", "GetPipeline", R"({"name":""})", "length greater than or equal to 1"},
    {"integer range min", "GetPipeline", R"({"name":"p","version":0})",
     "value greater than or equal to 1"},
    {"wrong json type", "GetPipeline", R"({"name":5})", "Member must be a string"},
    {"enum", "RetryStageExecution",
     R"({"pipelineName":"p","stageName":"s","pipelineExecutionId":"3137f7cb-7cf7-4a3e-9b1e-0123456789ab","retryMode":"BOGUS"})",
     "enum value set: [FAILED_ACTIONS, ALL_ACTIONS]"},
    {"enum ok", "RetryStageExecution",
     R"({"pipelineName":"p","stageName":"s","pipelineExecutionId":"3137f7cb-7cf7-4a3e-9b1e-0123456789ab","retryMode":"ALL_ACTIONS"})",
     nullptr},
    {"uuid pattern", "RetryStageExecution",
     R"({"pipelineName":"p","stageName":"s","pipelineExecutionId":"nope","retryMode":"ALL_ACTIONS"})",
     "at 'pipelineExecutionId'"},
    {"nested list path", "CreatePipeline",
     R"({"pipeline":{"name":"p","roleArn":"arn:aws:iam::123456789012:role/x","stages":[{"name":"bad name","actions":[]}]}})",
     "at 'pipeline.stages.1.member.name'"},
    {"unknown members ignored", "ListPipelines", R"({"whatever":1})", nullptr},
    {"list max", "ListPipelines", R"({"maxResults":1001})", "value less than or equal to 1000"},
    {"boolean type", "StopPipelineExecution",
     R"({"pipelineName":"p","pipelineExecutionId":"3137f7cb-7cf7-4a3e-9b1e-0123456789ab","abandon":"yes"})",
     "Member must be a boolean"},
};

class ValidateInputTest : public ::testing::TestWithParam<Case> {};

TEST_P(ValidateInputTest, MatchesModelConstraint) {
  const Case& c = GetParam();
  Status s = ServiceModel::Get().ValidateInput(c.op, json::parse(c.body));
  if (c.want_in_message == nullptr) {
    EXPECT_TRUE(s.ok()) << s.ToString();
  } else {
    ASSERT_FALSE(s.ok()) << c.name;
    EXPECT_EQ(s.wire_name(), "ValidationException");
    EXPECT_NE(s.message().find(c.want_in_message), std::string::npos) << s.message();
  }
}

INSTANTIATE_TEST_SUITE_P(Rules, ValidateInputTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& p) {
                           std::string n = p.param.name;
                           for (char& ch : n) {
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return n;
                         });

TEST(ServiceModel, KnowsEveryOperation) {
  const auto& m = ServiceModel::Get();
  EXPECT_EQ(m.OperationNames().size(), 44u);
  EXPECT_TRUE(m.HasOperation("RetryStageExecution"));
  EXPECT_FALSE(m.HasOperation("Nope"));
}

TEST(ServiceModel, CountsErrors) {
  Status s = ServiceModel::Get().ValidateInput("GetPipeline",
                                               json::parse(R"({"name":"a b","version":0})"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind("2 validation errors detected", 0), 0u) << s.message();
}

}  // namespace
}  // namespace pw::spec
