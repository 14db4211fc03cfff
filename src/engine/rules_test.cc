// The rule type table, time zones, and condition state surviving the
// execution document round trip.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/rule_types.h"
#include "engine/state_json.h"
#include "engine/time_zone.h"

namespace pw::engine::rules_test {
namespace {

using ::testing::HasSubstr;

TEST(RuleTypes, TableParsesAndListsTheDocumentedTypes) {
  std::vector<std::string> providers;
  for (const auto& t : BuiltinRuleTypes()) {
    EXPECT_EQ(t.id.category, "Rule");
    EXPECT_EQ(t.id.owner, "AWS");
    providers.push_back(t.id.provider);
  }
  EXPECT_THAT(providers,
              ::testing::UnorderedElementsAre("VariableCheck", "DeploymentWindow", "Commands",
                                              "CloudWatchAlarm", "LambdaInvoke"));
  const BuiltinActionType* vc = FindRuleType({"Rule", "AWS", "VariableCheck", "1"});
  ASSERT_NE(vc, nullptr);
  EXPECT_EQ(vc->runs, ActionRunner::kBuiltin);
  EXPECT_TRUE(vc->FindProperty("Operator")->required);
  EXPECT_EQ(FindRuleType({"Rule", "AWS", "LambdaInvoke", "1"})->runs, ActionRunner::kWorker);
  EXPECT_EQ(FindRuleType({"Rule", "AWS", "Nope", "1"}), nullptr);
}

TEST(TimeZone, FixedOffsetsAndTheDatabase) {
  EXPECT_EQ(*UtcOffsetSeconds("UTC", 0), 0);
  EXPECT_EQ(*UtcOffsetSeconds("UTC+02:00", 0), 7200);
  EXPECT_EQ(*UtcOffsetSeconds("-0530", 0), -19800);
  EXPECT_EQ(*UtcOffsetSeconds("GMT+3", 0), 10800);
  // 2026-01-15 and 2026-07-15, 12:00 UTC.
  EXPECT_EQ(*UtcOffsetSeconds("Europe/Berlin", 1768478400), 3600);
  EXPECT_EQ(*UtcOffsetSeconds("Europe/Berlin", 1784116800), 7200);
  EXPECT_EQ(*UtcOffsetSeconds("America/New_York", 1784116800), -4 * 3600);
  EXPECT_EQ(*UtcOffsetSeconds("Asia/Kolkata", 1784116800), 19800);
  EXPECT_THAT(UtcOffsetSeconds("../../etc/passwd", 0).status().message(),
              HasSubstr("not a time zone name"));
  EXPECT_THAT(UtcOffsetSeconds("Mars/Olympus", 0).status().message(),
              HasSubstr("not in the time zone database"));
  EXPECT_THAT(UtcOffsetSeconds("Europe", 0).status().message(),
              HasSubstr("not in the time zone database"));
  EXPECT_FALSE(TzifOffset("TZif", 0).ok());
}

TEST(StateJson, ConditionsAndRuleRunsRoundTrip) {
  core::Execution e;
  e.id = "e1";
  core::StageRun sr;
  sr.stage = "Deploy";
  sr.phase = core::StagePhase::kBeforeEntry;
  core::ConditionRun cr;
  cr.kind = core::ConditionKind::kBeforeEntry;
  cr.status = core::ConditionStatus::kInProgress;
  cr.summary = "waiting";
  cr.latest["Window"] = "r1";
  sr.conditions.push_back(cr);
  sr.status = core::StageStatus::kSkipped;
  e.stages.push_back(sr);
  core::RuleRun r;
  r.id = "r1";
  r.execution_id = "e1";
  r.stage = "Deploy";
  r.rule = "Window";
  r.kind = core::ConditionKind::kOnSuccess;
  r.summary = "Waiting";
  r.resolved_configuration["Cron"] = "* * * ? * *";
  e.rule_runs.push_back(r);
  core::Execution back = ExecutionFromDoc(ExecutionToDoc(e));
  ASSERT_EQ(back.stages.size(), 1u);
  EXPECT_EQ(back.stages[0].status, core::StageStatus::kSkipped);
  EXPECT_EQ(back.stages[0].phase, core::StagePhase::kBeforeEntry);
  ASSERT_EQ(back.stages[0].conditions.size(), 1u);
  EXPECT_EQ(back.stages[0].conditions[0].status, core::ConditionStatus::kInProgress);
  EXPECT_EQ(back.stages[0].conditions[0].latest.at("Window"), "r1");
  ASSERT_EQ(back.rule_runs.size(), 1u);
  EXPECT_EQ(back.rule_runs[0].execution_id, "e1");
  EXPECT_EQ(back.rule_runs[0].kind, core::ConditionKind::kOnSuccess);
  EXPECT_EQ(back.rule_runs[0].status, core::ActionStatus::kInProgress);
  EXPECT_EQ(back.rule_runs[0].resolved_configuration.at("Cron"), "* * * ? * *");
}

}  // namespace
}  // namespace pw::engine::rules_test
