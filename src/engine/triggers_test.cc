#include "engine/triggers.h"

#include <gtest/gtest.h>

namespace pw::engine::triggers_test {
namespace {

using nlohmann::json;

json Decl(const json& triggers, const std::string& provider = "Git") {
  json d = json::parse(R"({"name": "p", "pipelineType": "V2",
      "stages": [{"name": "Source", "actions": [{"name": "Src", "actionTypeId":
          {"category": "Source", "owner": "AWS", "provider": "Git", "version": "1"}}]}]})");
  d["stages"][0]["actions"][0]["actionTypeId"]["provider"] = provider;
  d["triggers"] = triggers;
  return d;
}

json Trigger(const json& git) {
  json g = git;
  g["sourceActionName"] = "Src";
  return json::array({{{"providerType", "CodeStarSourceConnection"}, {"gitConfiguration", g}}});
}

TEST(TriggersOf, ParsesPushAndPullRequestFilters) {
  json d = Decl(Trigger(
      {{"push",
        {{{"branches", {{"includes", {"main", "release/**"}}, {"excludes", {"release/old"}}}},
          {"filePaths", {{"includes", {"src/**"}}}}},
         {{"tags", {{"includes", {"v*"}}}}}}},
       {"pullRequest", {{{"events", {"OPEN"}}, {"branches", {{"includes", {"main"}}}}}}}}));
  auto ts = TriggersOf(d);
  ASSERT_EQ(ts.size(), 1u);
  const core::TriggerDecl& t = ts[0];
  EXPECT_EQ(t.source_action, "Src");
  EXPECT_EQ(t.provider_type, "CodeStarSourceConnection");
  ASSERT_EQ(t.push.size(), 2u);
  ASSERT_TRUE(t.push[0].branches);
  EXPECT_EQ(t.push[0].branches->includes, (std::vector<std::string>{"main", "release/**"}));
  EXPECT_EQ(t.push[0].branches->excludes, std::vector<std::string>{"release/old"});
  ASSERT_TRUE(t.push[0].file_paths);
  EXPECT_FALSE(t.push[0].tags);
  ASSERT_TRUE(t.push[1].tags);
  EXPECT_EQ(t.push[1].tags->includes, std::vector<std::string>{"v*"});
  ASSERT_EQ(t.pull_request.size(), 1u);
  EXPECT_EQ(t.pull_request[0].events, std::vector<std::string>{"OPEN"});
  EXPECT_EQ(TriggerFor(ts, "Src"), &ts[0]);
  EXPECT_EQ(TriggerFor(ts, "Other"), nullptr);
  EXPECT_TRUE(TriggersOf(json::object()).empty());
}

TEST(CheckTriggers, AcceptsPushFiltersOnGitSources) {
  for (const char* provider : {"Git", "CodeCommit", "CodeStarSourceConnection"}) {
    json d = Decl(Trigger({{"push", {{{"filePaths", {{"includes", {"src/**"}}}}}}}}), provider);
    EXPECT_TRUE(CheckTriggers(d).ok()) << provider << ": " << CheckTriggers(d).ToString();
  }
  EXPECT_TRUE(CheckTriggers(Decl(json::array())).ok());
}

TEST(CheckTriggers, RefusesWhatCannotBeEvaluated) {
  Status pr = CheckTriggers(Decl(Trigger({{"pullRequest", {{{"events", {"OPEN"}}}}}})));
  ASSERT_FALSE(pr.ok());
  EXPECT_EQ(pr.wire_name(), "InvalidStructureException");
  EXPECT_NE(pr.message().find("pullRequest"), std::string::npos) << pr.message();

  Status s3 = CheckTriggers(Decl(Trigger({{"push", {{{"tags", {{"includes", {"v*"}}}}}}}}), "S3"));
  ASSERT_FALSE(s3.ok());
  EXPECT_NE(s3.message().find("Source/AWS/S3"), std::string::npos) << s3.message();

  Status mixed = CheckTriggers(Decl(Trigger(
      {{"push", {{{"tags", {{"includes", {"v*"}}}}, {"branches", {{"includes", {"main"}}}}}}}})));
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.message().find("push filter 1"), std::string::npos) << mixed.message();
}

TEST(TriggerDetail, KeepsTheModelsLimitOnAUtf8Boundary) {
  EXPECT_EQ(TriggerDetail("short"), "short");
  std::string s(1023, 'a');
  s += "\xc3\xa9";  // 'é' across byte 1024.
  std::string d = TriggerDetail(s);
  EXPECT_EQ(d.size(), 1023u);
}

}  // namespace
}  // namespace pw::engine::triggers_test
