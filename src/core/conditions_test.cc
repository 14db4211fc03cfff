// Stage conditions in the state machine (semantics.md rules 62-64) and the
// VariableCheck evaluator. No disk, process or clock.

#include "core/conditions.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/machine.h"

namespace pw::core::conditions_test {
namespace {

using ::testing::HasSubstr;

class CounterIds final : public IdSource {
 public:
  std::string NewId() override { return "id-" + std::to_string(++next_); }

 private:
  int next_ = 0;
};

ActionDecl Act(std::string name, std::string category = "Build") {
  ActionDecl a;
  a.name = std::move(name);
  a.type = {category, "AWS", category == "Source" ? "Directory" : "Commands", "1"};
  if (category == "Source") a.output_artifacts.push_back({"Out", {}});
  return a;
}

RuleDecl Rule(std::string name, std::string provider, std::map<std::string, std::string> config) {
  RuleDecl r;
  r.name = std::move(name);
  r.type = {"Rule", "AWS", std::move(provider), "1"};
  r.configuration = std::move(config);
  return r;
}

RuleDecl GateIsOpen() {
  return Rule("Gate", "VariableCheck",
              {{"Variable", "#{variables.gate}"}, {"Value", "open"}, {"Operator", "EQ"}});
}

// Source{Src} -> Deploy{D} -> Verify{V}, V2 with variable gate.
PipelineDecl Decl() {
  PipelineDecl p;
  p.name = "p";
  p.pipeline_type = "V2";
  p.has_artifact_store = true;
  p.variables["gate"] = "closed";
  for (const auto& [stage, action] : std::vector<std::pair<std::string, std::string>>{
           {"Source", "Src"}, {"Deploy", "D"}, {"Verify", "V"}}) {
    StageDecl s;
    s.name = stage;
    s.actions = {Act(action, stage == "Source" ? "Source" : "Build")};
    p.stages.push_back(std::move(s));
  }
  return p;
}

struct Harness {
  explicit Harness(PipelineDecl d) { p.decl = std::move(d); }
  PipelineState p;
  CounterIds ids;
  EpochSeconds now = 1000;
  Outcome out;

  std::string Start(const std::string& gate) {
    out = {};
    Execution& e = StartExecution(p, "StartPipelineExecution", "u", ++now, ids, &out);
    e.variables["gate"] = gate;
    const std::string id = e.id;
    Advance(p, now, ids, &out);
    return id;
  }
  Execution& E(const std::string& id) { return *p.FindExecution(id); }
  // Completes every InProgress action run of `id` with `status`.
  void FinishActions(const std::string& id, ActionStatus status = ActionStatus::kSucceeded) {
    for (int i = 0; i < 10; ++i) {
      std::vector<std::string> running;
      for (const auto& r : E(id).runs) {
        if (r.status == ActionStatus::kInProgress) running.push_back(r.id);
      }
      if (running.empty()) return;
      for (const auto& run : running) {
        out = {};
        const ActionRun* r = E(id).FindRun(run);
        ActionResult res;
        res.status = r->stage == "Source" ? ActionStatus::kSucceeded : status;
        if (r->stage == "Source") res.outputs["Out"] = "rev";
        ASSERT_TRUE(CompleteAction(p, run, res, ++now, &out).ok());
        Advance(p, now, ids, &out);
      }
    }
  }
  const RuleRun* LatestRule(const std::string& id, const std::string& rule) {
    const RuleRun* found = nullptr;
    for (const auto& r : E(id).rule_runs) {
      if (r.rule == rule) found = &r;
    }
    return found;
  }
  void CompleteRuleRun(const std::string& rule_run, ActionStatus status) {
    out = {};
    ActionResult res;
    res.status = status;
    ASSERT_TRUE(CompleteRule(p, rule_run, res, ++now, &out).ok());
    Advance(p, now, ids, &out);
  }
};

TEST(VariableCheck, Operators) {
  EXPECT_TRUE(
      EvaluateVariableCheck({{"Variable", "a"}, {"Value", "a"}, {"Operator", "EQ"}}).passed);
  EXPECT_FALSE(
      EvaluateVariableCheck({{"Variable", "a"}, {"Value", "b"}, {"Operator", "EQ"}}).passed);
  EXPECT_TRUE(
      EvaluateVariableCheck({{"Variable", "a"}, {"Value", "b"}, {"Operator", "NE"}}).passed);
  EXPECT_TRUE(EvaluateVariableCheck(
                  {{"Variable", "release-1"}, {"Value", "ease"}, {"Operator", "CONTAINS"}})
                  .passed);
  EXPECT_TRUE(
      EvaluateVariableCheck(
          {{"Variable", "v1.2.3"}, {"Value", "v[0-9]+\\.[0-9]+\\.[0-9]+"}, {"Operator", "MATCHES"}})
          .passed);
  EXPECT_FALSE(
      EvaluateVariableCheck({{"Variable", "xv1"}, {"Value", "v1"}, {"Operator", "MATCHES"}})
          .passed);
  RuleVerdict bad =
      EvaluateVariableCheck({{"Variable", "a"}, {"Value", "("}, {"Operator", "MATCHES"}});
  EXPECT_FALSE(bad.passed);
  EXPECT_THAT(bad.summary, HasSubstr("not a valid regular expression"));
  EXPECT_THAT(EvaluateVariableCheck({{"Operator", "GT"}}).summary, HasSubstr("Unknown Operator"));
}

TEST(StageConditions, BeforeEntryFailStopsTheStage) {
  PipelineDecl d = Decl();
  d.stages[1].before_entry = {{FailureResult::kFail, {GateIsOpen()}}};
  Harness h(d);
  const std::string id = h.Start("closed");
  h.FinishActions(id);
  const StageRun* sr = h.E(id).FindStageRun("Deploy");
  ASSERT_NE(sr, nullptr);
  EXPECT_EQ(sr->status, StageStatus::kFailed);
  EXPECT_EQ(sr->FindCondition(ConditionKind::kBeforeEntry)->status, ConditionStatus::kFailed);
  EXPECT_TRUE(sr->latest.empty());  // No action ran.
  EXPECT_EQ(h.E(id).status, ExecutionStatus::kFailed);
  EXPECT_THAT(h.E(id).status_summary, HasSubstr("beforeEntry condition failed"));
  EXPECT_EQ(h.LatestRule(id, "Gate")->status, ActionStatus::kFailed);
}

TEST(StageConditions, BeforeEntryPassesWhenTheRuleSucceeds) {
  PipelineDecl d = Decl();
  d.stages[1].before_entry = {{FailureResult::kFail, {GateIsOpen()}}};
  Harness h(d);
  const std::string id = h.Start("open");
  h.FinishActions(id);
  EXPECT_EQ(h.E(id).status, ExecutionStatus::kSucceeded);
  EXPECT_EQ(h.E(id).FindStageRun("Deploy")->FindCondition(ConditionKind::kBeforeEntry)->status,
            ConditionStatus::kSucceeded);
}

TEST(StageConditions, SkipMarksTheStageSkippedAndTheExecutionContinues) {
  PipelineDecl d = Decl();
  d.stages[1].before_entry = {{FailureResult::kSkip, {GateIsOpen()}}};
  Harness h(d);
  const std::string id = h.Start("closed");
  h.FinishActions(id);
  EXPECT_EQ(h.E(id).FindStageRun("Deploy")->status, StageStatus::kSkipped);
  EXPECT_TRUE(h.E(id).FindStageRun("Deploy")->latest.empty());
  EXPECT_EQ(h.E(id).FindStageRun("Verify")->status, StageStatus::kSucceeded);
  EXPECT_EQ(h.E(id).status, ExecutionStatus::kSucceeded);
  auto plan = PlanRetry(h.p, id, "Deploy", RetryMode::kFailedActions);
  EXPECT_EQ(plan.status().wire_name(), "StageNotRetryableException");
  Outcome out;
  EXPECT_EQ(
      OverrideCondition(h.p, id, "Deploy", ConditionKind::kBeforeEntry, h.now, &out).wire_name(),
      "ConditionNotOverridableException");
}

TEST(StageConditions, WindowWaitsUntilTheRuleCompletesOrIsOverridden) {
  PipelineDecl d = Decl();
  d.stages[1].before_entry = {
      {FailureResult::kFail, {Rule("Window", "DeploymentWindow", {{"Cron", "* * 3 ? * *"}})}}};
  Harness h(d);
  const std::string id = h.Start("closed");
  h.FinishActions(id);
  const RuleRun* w = h.LatestRule(id, "Window");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->status, ActionStatus::kInProgress);
  EXPECT_THAT(w->summary, HasSubstr("Waiting for the deployment window"));
  EXPECT_EQ(h.E(id).FindStageRun("Deploy")->status, StageStatus::kInProgress);
  // A second execution waits at the locked stage.
  Outcome out;
  EXPECT_EQ(OverrideCondition(h.p, "nope", "Deploy", ConditionKind::kBeforeEntry, h.now, &out)
                .wire_name(),
            "NotLatestPipelineExecutionException");
  EXPECT_EQ(
      OverrideCondition(h.p, id, "Nope", ConditionKind::kBeforeEntry, h.now, &out).wire_name(),
      "StageNotFoundException");
  EXPECT_EQ(
      OverrideCondition(h.p, id, "Deploy", ConditionKind::kOnSuccess, h.now, &out).wire_name(),
      "ConditionNotOverridableException");
  ASSERT_TRUE(OverrideCondition(h.p, id, "Deploy", ConditionKind::kBeforeEntry, h.now, &out).ok());
  Advance(h.p, h.now, h.ids, &out);
  EXPECT_EQ(h.LatestRule(id, "Window")->status, ActionStatus::kAbandoned);
  bool abandon_effect = false;
  for (const auto& fx : out.effects) abandon_effect |= fx.kind == Effect::Kind::kAbandonRule;
  EXPECT_TRUE(abandon_effect);
  EXPECT_EQ(h.E(id).FindStageRun("Deploy")->FindCondition(ConditionKind::kBeforeEntry)->status,
            ConditionStatus::kOverridden);
  h.FinishActions(id);
  EXPECT_EQ(h.E(id).status, ExecutionStatus::kSucceeded);
}

TEST(StageConditions, RetryOfAStageFailedByItsEntryConditionEvaluatesItAgain) {
  PipelineDecl d = Decl();
  d.stages[1].before_entry = {{FailureResult::kFail, {Rule("Check", "Commands", {})}}};
  Harness h(d);
  const std::string id = h.Start("closed");
  h.FinishActions(id);
  h.CompleteRuleRun(h.LatestRule(id, "Check")->id, ActionStatus::kFailed);
  EXPECT_EQ(h.E(id).status, ExecutionStatus::kFailed);
  Outcome out;
  auto plan = RetryStage(h.p, id, "Deploy", RetryMode::kFailedActions, RetryTrigger::kManual,
                         ++h.now, h.ids, &out);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->actions_after, std::vector<std::string>{"D"});
  Advance(h.p, h.now, h.ids, &out);
  const RuleRun* again = h.LatestRule(id, "Check");
  EXPECT_EQ(again->status, ActionStatus::kInProgress);
  EXPECT_EQ(again->stage_attempt, 1);
  h.CompleteRuleRun(again->id, ActionStatus::kSucceeded);
  h.FinishActions(id);
  EXPECT_EQ(h.E(id).status, ExecutionStatus::kSucceeded);
  EXPECT_EQ(h.E(id).rule_runs.size(), 2u);
}

TEST(StageConditions, FailedFailConditionCanBeOverriddenAndTheExecutionResumes) {
  PipelineDecl d = Decl();
  d.stages[1].before_entry = {{FailureResult::kFail, {GateIsOpen()}}};
  Harness h(d);
  const std::string id = h.Start("closed");
  h.FinishActions(id);
  ASSERT_EQ(h.E(id).status, ExecutionStatus::kFailed);
  Outcome out;
  ASSERT_TRUE(
      OverrideCondition(h.p, id, "Deploy", ConditionKind::kBeforeEntry, ++h.now, &out).ok());
  Advance(h.p, h.now, h.ids, &out);
  h.FinishActions(id);
  EXPECT_EQ(h.E(id).status, ExecutionStatus::kSucceeded);
}

TEST(StageConditions, OnSuccessFailFailsTheStageAfterItsActions) {
  PipelineDecl d = Decl();
  d.stages[1].on_success = {{FailureResult::kFail, {GateIsOpen()}}};
  Harness h(d);
  const std::string id = h.Start("closed");
  h.FinishActions(id);
  const StageRun* sr = h.E(id).FindStageRun("Deploy");
  EXPECT_EQ(sr->status, StageStatus::kFailed);
  EXPECT_EQ(h.E(id).FindRun(sr->latest.at("D"))->status, ActionStatus::kSucceeded);
  EXPECT_EQ(sr->FindCondition(ConditionKind::kOnSuccess)->status, ConditionStatus::kFailed);
  EXPECT_THAT(h.E(id).status_summary, HasSubstr("onSuccess condition failed"));
  EXPECT_EQ(h.E(id).FindStageRun("Verify"), nullptr);
}

TEST(StageConditions, OnSuccessRollbackRollsBackToTheLastSuccess) {
  PipelineDecl d = Decl();
  d.stages[1].on_success = {{FailureResult::kRollback, {GateIsOpen()}}};
  Harness h(d);
  const std::string good = h.Start("open");
  h.FinishActions(good);
  ASSERT_EQ(h.E(good).status, ExecutionStatus::kSucceeded);
  const std::string bad = h.Start("closed");
  h.FinishActions(bad);
  EXPECT_EQ(h.E(bad).status, ExecutionStatus::kFailed);
  const Execution& rb = h.p.executions.back();
  EXPECT_EQ(rb.execution_type, ExecutionType::kRollback);
  EXPECT_EQ(rb.rollback_target, good);
}

TEST(StageConditions, OnFailureConditionDecidesTheRollback) {
  for (const std::string gate : {"closed", "open"}) {
    PipelineDecl d = Decl();
    d.stages[1].on_failure = FailureResult::kRollback;
    d.stages[1].on_failure_has_conditions = true;
    d.stages[1].on_failure_conditions = {{FailureResult::kRollback, {GateIsOpen()}}};
    Harness h(d);
    const std::string good = h.Start("open");
    h.FinishActions(good);
    const std::string bad = h.Start(gate);
    h.FinishActions(bad, ActionStatus::kFailed);
    EXPECT_EQ(h.E(bad).status, ExecutionStatus::kFailed) << gate;
    const bool rolled_back = h.p.executions.back().execution_type == ExecutionType::kRollback;
    // The result (ROLLBACK) engages when the condition fails (rule 62).
    EXPECT_EQ(rolled_back, gate == "closed") << gate;
  }
}

TEST(StageConditions, StructureRules) {
  auto check = [](PipelineDecl d) { return ValidateStructure(d, nullptr); };
  PipelineDecl d = Decl();
  d.stages[1].before_entry = {{FailureResult::kRollback, {GateIsOpen()}}};
  EXPECT_THAT(check(d).message(), HasSubstr("must be FAIL or SKIP"));
  d = Decl();
  d.stages[1].on_success = {{FailureResult::kSkip, {GateIsOpen()}}};
  EXPECT_THAT(check(d).message(), HasSubstr("must be ROLLBACK or FAIL"));
  d = Decl();
  d.stages[1].before_entry = {{FailureResult::kSkip, {Rule("C", "Commands", {})}}};
  EXPECT_THAT(check(d).message(), HasSubstr("VariableCheck or LambdaInvoke"));
  d = Decl();
  d.stages[1].before_entry = {{FailureResult::kFail, {}}};
  EXPECT_THAT(check(d).message(), HasSubstr("1 to 5 rules"));
  d = Decl();
  d.stages[1].before_entry = {{FailureResult::kFail, {GateIsOpen(), GateIsOpen()}}};
  EXPECT_THAT(check(d).message(), HasSubstr("unique"));
  d = Decl();
  d.pipeline_type = "V1";
  d.stages[1].before_entry = {{FailureResult::kFail, {GateIsOpen()}}};
  EXPECT_THAT(check(d).message(), HasSubstr("V2"));
  EXPECT_EQ(check(d).wire_name(), "InvalidStageDeclarationException");
  d = Decl();
  d.execution_mode = ExecutionMode::kParallel;
  d.stages[1].on_success = {{FailureResult::kRollback, {GateIsOpen()}}};
  EXPECT_THAT(check(d).message(), HasSubstr("PARALLEL"));
  d = Decl();
  d.stages[1].before_entry = {{FailureResult::kFail, {GateIsOpen()}}};
  d.stages[1].on_success = {{FailureResult::kFail, {GateIsOpen()}}};
  EXPECT_TRUE(check(d).ok()) << check(d).message();
}

}  // namespace
}  // namespace pw::core::conditions_test
