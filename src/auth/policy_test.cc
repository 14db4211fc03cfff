#include "auth/policy.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

namespace pw::auth::policy_test {
namespace {

constexpr const char* kPipe = "arn:aws:codepipeline:us-east-1:123456789012:MyPipeline";
constexpr const char* kOther = "arn:aws:codepipeline:us-east-1:123456789012:Other";

Policy MustParse(const std::string& text) {
  auto p = Policy::Parse(text);
  if (!p.ok()) ADD_FAILURE() << p.status().message();
  return std::move(p).value();  // Throws (failing the test) when parsing failed.
}

const char* kReadOnly = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["codepipeline:Get*","codepipeline:List*"],"Resource":"*"}]})";
const char* kOperator = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["codepipeline:Get*","codepipeline:List*",
    "codepipeline:StartPipelineExecution","codepipeline:StopPipelineExecution",
    "codepipeline:RetryStageExecution","codepipeline:PutApprovalResult",
    "codepipeline:EnableStageTransition","codepipeline:DisableStageTransition",
    "codepipeline:RollbackStage"],"Resource":"*"}]})";
const char* kAdmin =
    R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"codepipeline:*","Resource":"*"}})";

struct Case {
  const char* policy;
  const char* action;
  const char* resource;
  Decision want;
};

TEST(Policy, RolesAllowWhatTheyListAndNothingElse) {
  const Case cases[] = {
      {kReadOnly, "codepipeline:GetPipelineState", kPipe, Decision::kAllow},
      {kReadOnly, "codepipeline:ListPipelines", "*", Decision::kAllow},
      {kReadOnly, "codepipeline:GetStageRetryPlan", kPipe, Decision::kAllow},
      {kReadOnly, "codepipeline:RetryStageExecution", kPipe, Decision::kImplicitDeny},
      {kReadOnly, "codepipeline:DeletePipeline", kPipe, Decision::kImplicitDeny},
      {kOperator, "codepipeline:RetryStageExecution", kPipe, Decision::kAllow},
      {kOperator, "codepipeline:PutApprovalResult", kPipe, Decision::kAllow},
      {kOperator, "codepipeline:GetPipeline", kPipe, Decision::kAllow},
      {kOperator, "codepipeline:UpdatePipeline", kPipe, Decision::kImplicitDeny},
      {kOperator, "codepipeline:CreatePipeline", kPipe, Decision::kImplicitDeny},
      {kAdmin, "codepipeline:DeletePipeline", kPipe, Decision::kAllow},
      {kAdmin, "codepipeline:PollForJobs", "*", Decision::kAllow},
      {kAdmin, "s3:GetObject", "*", Decision::kImplicitDeny},
  };
  for (const Case& c : cases) {
    Policy p = MustParse(c.policy);
    EXPECT_EQ(p.Evaluate(c.action, c.resource), c.want) << c.action << " on " << c.resource;
  }
}

TEST(Policy, ActionNamesCompareCaseInsensitivelyResourcesDoNot) {
  Policy p = MustParse(R"({"Statement":{"Effect":"Allow","Action":"CodePipeline:getpipeline*",
                            "Resource":"arn:aws:codepipeline:us-east-1:123456789012:MyPipeline"}})");
  EXPECT_EQ(p.Evaluate("codepipeline:GetPipelineState", kPipe), Decision::kAllow);
  EXPECT_EQ(p.Evaluate("codepipeline:GetPipelineState",
                       "arn:aws:codepipeline:us-east-1:123456789012:mypipeline"),
            Decision::kImplicitDeny);
}

TEST(Policy, ExplicitDenyWinsOverAllow) {
  Policy p = MustParse(R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":"codepipeline:*","Resource":"*"},
    {"Effect":"Deny","Action":"codepipeline:DeletePipeline",
     "Resource":"arn:aws:codepipeline:*:*:Prod*"}]})");
  EXPECT_EQ(p.Evaluate("codepipeline:DeletePipeline",
                       "arn:aws:codepipeline:us-east-1:123456789012:ProdWeb"),
            Decision::kExplicitDeny);
  EXPECT_EQ(p.Evaluate("codepipeline:DeletePipeline", kPipe), Decision::kAllow);
  EXPECT_EQ(
      p.Evaluate("codepipeline:GetPipeline", "arn:aws:codepipeline:us-east-1:123456789012:ProdWeb"),
      Decision::kAllow);
}

TEST(Policy, ResourceWildcardsStarAndQuestionMark) {
  Policy p = MustParse(R"({"Statement":{"Effect":"Allow","Action":"*","Resource":[
    "arn:aws:codepipeline:us-east-1:123456789012:MyPipeline*",
    "arn:aws:codepipeline:us-east-1:123456789012:app-?"]}})");
  EXPECT_EQ(p.Evaluate("codepipeline:GetPipeline", kPipe), Decision::kAllow);
  EXPECT_EQ(p.Evaluate("codepipeline:GetPipeline", std::string(kPipe) + "-2"), Decision::kAllow);
  EXPECT_EQ(
      p.Evaluate("codepipeline:GetPipeline", "arn:aws:codepipeline:us-east-1:123456789012:app-1"),
      Decision::kAllow);
  EXPECT_EQ(
      p.Evaluate("codepipeline:GetPipeline", "arn:aws:codepipeline:us-east-1:123456789012:app-12"),
      Decision::kImplicitDeny);
  EXPECT_EQ(p.Evaluate("codepipeline:GetPipeline", kOther), Decision::kImplicitDeny);
  // An operation on no single pipeline needs Resource "*", as in IAM.
  EXPECT_EQ(p.Evaluate("codepipeline:ListPipelines", "*"), Decision::kImplicitDeny);
}

TEST(Policy, NotActionAllowsEverythingElse) {
  Policy p = MustParse(R"({"Statement":{"Effect":"Allow",
    "NotAction":["codepipeline:Delete*","codepipeline:UpdatePipeline"],"Resource":"*"}})");
  EXPECT_EQ(p.Evaluate("codepipeline:GetPipeline", kPipe), Decision::kAllow);
  EXPECT_EQ(p.Evaluate("codepipeline:StartPipelineExecution", kPipe), Decision::kAllow);
  EXPECT_EQ(p.Evaluate("codepipeline:DeletePipeline", kPipe), Decision::kImplicitDeny);
  EXPECT_EQ(p.Evaluate("codepipeline:UpdatePipeline", kPipe), Decision::kImplicitDeny);

  Policy deny_not = MustParse(R"({"Statement":[
    {"Effect":"Allow","Action":"*","Resource":"*"},
    {"Effect":"Deny","NotAction":"codepipeline:Get*","Resource":"*"}]})");
  EXPECT_EQ(deny_not.Evaluate("codepipeline:GetPipeline", kPipe), Decision::kAllow);
  EXPECT_EQ(deny_not.Evaluate("codepipeline:StartPipelineExecution", kPipe),
            Decision::kExplicitDeny);
}

TEST(Policy, RefusesWhatItCannotHonour) {
  struct Bad {
    const char* text;
    const char* says;
  };
  const Bad bads[] = {
      {"not json", "not valid JSON"},
      {"[]", "JSON object"},
      {R"({"Version":"2020-01-01","Statement":[]})", "Version"},
      {R"({"Version":"2012-10-17"})", "no Statement"},
      {R"({"Statement":[]})", "empty"},
      {R"({"Id":"x","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}})", "Id"},
      {R"({"Statement":{"Effect":"Allow","Action":"*","Resource":"*",
          "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}})",
       "Statement 1: Condition is not supported"},
      {R"({"Statement":{"Effect":"Allow","Action":"*","NotResource":"*"}})", "NotResource"},
      {R"({"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*"}})",
       "Principal"},
      {R"({"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
          {"Effect":"Maybe","Action":"*","Resource":"*"}]})",
       "Statement 2: Effect"},
      {R"({"Statement":{"Action":"*","Resource":"*"}})", "no Effect"},
      {R"({"Statement":{"Effect":"Allow","Resource":"*"}})", "no Action"},
      {R"({"Statement":{"Effect":"Allow","Action":"*"}})", "no Resource"},
      {R"({"Statement":{"Effect":"Allow","Action":"*","NotAction":"x:y","Resource":"*"}})",
       "both Action and NotAction"},
      {R"({"Statement":{"Effect":"Allow","Action":"GetPipeline","Resource":"*"}})",
       "service:Operation"},
      {R"({"Statement":{"Effect":"Allow","Action":[1],"Resource":"*"}})", "list of strings"},
      {R"({"Statement":{"Effect":"Allow","Action":"*","Resource":"MyPipeline"}})", "ARN"},
      {R"({"Statement":{"Effect":"Allow","Action":"*",
          "Resource":"arn:aws:codepipeline:*:*:${aws:username}"}})",
       "policy variable"},
  };
  for (const Bad& b : bads) {
    auto p = Policy::Parse(b.text);
    ASSERT_FALSE(p.ok()) << b.text;
    EXPECT_NE(p.status().message().find(b.says), std::string::npos)
        << p.status().message() << " should say " << b.says;
  }
}

TEST(WildcardMatch, Table) {
  EXPECT_TRUE(WildcardMatch("*", "", false));
  EXPECT_TRUE(WildcardMatch("a*b*c", "axxbyyc", false));
  EXPECT_FALSE(WildcardMatch("a*b*c", "axxbyy", false));
  EXPECT_TRUE(WildcardMatch("a?c", "abc", false));
  EXPECT_FALSE(WildcardMatch("a?c", "ac", false));
  EXPECT_TRUE(WildcardMatch("ABC", "abc", true));
  EXPECT_FALSE(WildcardMatch("ABC", "abc", false));
  EXPECT_TRUE(WildcardMatch("**x", "x", false));
  // Many stars over a long text stays fast (no exponential backtracking).
  EXPECT_FALSE(WildcardMatch("*a*a*a*a*a*a*a*b", std::string(5000, 'a'), false));
}

}  // namespace
}  // namespace pw::auth::policy_test

namespace pw::auth::policy_test {
namespace {

std::string ReadDoc(const std::string& name) {
  const char* src = std::getenv("PW_SOURCE_DIR");
  std::ifstream in(std::string(src ? src : ".") + "/docs/policies/" + name);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(Policy, ShippedExamplePoliciesParseAndMeanTheirRole) {
  Policy ro = MustParse(ReadDoc("read-only.json"));
  Policy op = MustParse(ReadDoc("operator.json"));
  Policy admin = MustParse(ReadDoc("admin.json"));
  EXPECT_EQ(ro.Evaluate("codepipeline:GetPipelineState", kPipe), Decision::kAllow);
  EXPECT_EQ(ro.Evaluate("codepipeline:StartPipelineExecution", kPipe), Decision::kImplicitDeny);
  EXPECT_EQ(op.Evaluate("codepipeline:StartPipelineExecution", kPipe), Decision::kAllow);
  EXPECT_EQ(op.Evaluate("codepipeline:RollbackStage", kPipe), Decision::kAllow);
  EXPECT_EQ(op.Evaluate("codepipeline:DeletePipeline", kPipe), Decision::kImplicitDeny);
  EXPECT_EQ(admin.Evaluate("codepipeline:DeletePipeline", kPipe), Decision::kAllow);
  // Before: Get* let readers fetch a job's details, which carry the job's artifact
  // credentials (write access to its output); those are for workers.
  for (const Policy* p : {&ro, &op}) {
    EXPECT_EQ(p->Evaluate("codepipeline:GetJobDetails", "*"), Decision::kExplicitDeny);
    EXPECT_EQ(p->Evaluate("codepipeline:GetThirdPartyJobDetails", "*"), Decision::kExplicitDeny);
    EXPECT_EQ(p->Evaluate("codepipeline:GetPipelineExecution", kPipe), Decision::kAllow);
  }
}

}  // namespace
}  // namespace pw::auth::policy_test
