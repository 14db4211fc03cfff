#include "spec/service_model.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace pw::spec::service_model_test {
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
    {"integer past 32 bits", "GetPipeline", R"({"name":"p","version":4294967297})",
     "Member must be a 32-bit integer"},
    {"integer 2^31", "GetPipeline", R"({"name":"p","version":2147483648})",
     "Member must be a 32-bit integer"},
    {"integer past 64 bits", "GetPipeline", R"({"name":"p","version":9223372036854775808})",
     "Member must be a 32-bit integer"},
    {"integer below 32 bits", "ListPipelines", R"({"maxResults":-2147483649})",
     "Member must be a 32-bit integer"},
    {"integer at 2^31-1", "GetPipeline", R"({"name":"p","version":2147483647})", nullptr},
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

json LoadModel(const std::string& file) {
  std::ifstream f(std::string(PW_SPEC_DIR) + "/" + file);
  std::stringstream ss;
  ss << f.rdbuf();
  return json::parse(ss.str(), nullptr, false);
}

TEST(ModelPatterns, EveryPatternOfBothModelsCompilesInRe2) {
  for (const char* file : {"codepipeline-2015-07-09.service-2.json",
                           "codepipeline-2015-07-09.service-2.botocore-1.29.27.json"}) {
    json model = LoadModel(file);
    ASSERT_TRUE(model.is_object() && model.contains("shapes")) << file;
    int patterns = 0;
    for (const auto& [name, shape] : model["shapes"].items()) {
      if (!shape.contains("pattern")) continue;
      ++patterns;
      Status s = CheckModelPattern(shape["pattern"].get<std::string>());
      EXPECT_TRUE(s.ok()) << file << " " << name << ": " << s.ToString();
    }
    EXPECT_GT(patterns, 20) << file;
  }
  EXPECT_FALSE(CheckModelPattern("[a-z").ok());
  EXPECT_FALSE(CheckModelPattern("(?<=a)b").ok()) << "lookbehind is not RE2";
}

TEST(ModelPatterns, FullMatchAndAnchorsBehaveAsInTheModel) {
  const auto& m = ServiceModel::Get();
  // ClientRequestToken is written "^[a-zA-Z0-9-]+$".
  auto start = [&](const std::string& token) {
    return m.ValidateInput("StartPipelineExecution",
                           json{{"name", "p"}, {"clientRequestToken", token}});
  };
  EXPECT_TRUE(start("abc-123").ok());
  EXPECT_FALSE(start("abc 123").ok());
  EXPECT_FALSE(start("abc\n").ok());
  // Alternation must match as a whole: "AWS|ThirdParty" does not accept "AWSx".
  json id = {{"category", "Build"}, {"owner", "AWSx"}, {"provider", "P"}, {"version", "1"}};
  EXPECT_FALSE(m.ValidateShape("ActionTypeId", id, "").ok());
  id["owner"] = "ThirdParty";
  EXPECT_TRUE(m.ValidateShape("ActionTypeId", id, "").ok());
}

// std::regex recursed once per character and overflowed the stack (SIGSEGV) here.
TEST(ModelPatterns, FiftyThousandCharacterValuesDoNotCrash) {
  const auto& m = ServiceModel::Get();
  const std::string good_arn =
      "arn:aws:codepipeline:us-east-1:123456789012:" + std::string(50000, 'a');
  EXPECT_TRUE(m.ValidateInput("ListTagsForResource", json{{"resourceArn", good_arn}}).ok());
  Status s = m.ValidateInput("ListTagsForResource",
                             json{{"resourceArn", "arn:aws:" + std::string(50000, 'x')}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("regular expression pattern"), std::string::npos);
  EXPECT_LT(s.message().size(), 1000u) << "the quoted value is cut";
  json put = {{"jobId", "3137f7cb-7cf7-4a3e-9b1e-0123456789ab"},
              {"outputVariables", {{std::string(50000, 'k') + " ", "v"}}}};
  s = m.ValidateInput("PutJobSuccessResult", put);
  ASSERT_FALSE(s.ok());
  EXPECT_LT(s.message().size(), 2000u) << "the path naming the key is cut";
}

TEST(ValidationMessage, CutsQuotedValuesWithoutSplittingUtf8Characters) {
  // 'é' is two bytes; 300 of them put the 256-byte cut inside a character at odd offsets.
  for (const std::string prefix : {"", "x"}) {
    std::string v = prefix;
    for (int i = 0; i < 300; ++i) v += "\u00e9";
    Status s =
        ServiceModel::Get().ValidateInput("GetPipeline", json::parse(R"({"name":")" + v + R"("})"));
    ASSERT_FALSE(s.ok());
    // Dumping throws type_error 316 on invalid UTF-8 (that was a 500).
    EXPECT_NO_THROW((void)json(s.message()).dump()) << s.message();
    EXPECT_NE(s.message().find("...'"), std::string::npos);
  }
  EXPECT_EQ(TruncateUtf8("ab\xc3\xa9", 3), "ab...");
  EXPECT_EQ(TruncateUtf8("ab\xc3\xa9", 4), "ab\xc3\xa9");
  EXPECT_EQ(TruncateUtf8("\xe2\x82\xac\xe2\x82\xac", 5), "\xe2\x82\xac...");
}

TEST(ValidationMessage, QuotesDeepAndLargeValuesBoundedly) {
  json deep = json::array();
  for (int i = 0; i < 60; ++i) deep = json::array({deep});
  Status s = ServiceModel::Get().ValidateInput("GetPipeline", json{{"name", deep}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("Member must be a string"), std::string::npos);
  EXPECT_LT(s.message().size(), 600u) << s.message();
  json many = json::array();
  for (int i = 0; i < 500; ++i) many.push_back(i);
  json vars = json::array();
  for (int i = 0; i < 50; ++i) vars.push_back(5);
  s = ServiceModel::Get().ValidateInput("StartPipelineExecution",
                                        json{{"name", many}, {"variables", vars}});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind("51 validation errors detected", 0), 0u) << s.message();
  EXPECT_NE(s.message().find("; and 31 more"), std::string::npos);
  EXPECT_LT(s.message().size(), 8000u);
}

}  // namespace
}  // namespace pw::spec::service_model_test
