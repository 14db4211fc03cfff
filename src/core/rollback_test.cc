// Rollback (semantics.md H.58-61): RollbackStage and onFailure ROLLBACK.

#include <gtest/gtest.h>

#include "core/machine.h"

namespace pw::core::rollback_test {
namespace {

class CounterIds final : public IdSource {
 public:
  std::string NewId() override { return "id-" + std::to_string(++n_); }

 private:
  int n_ = 0;
};

ActionDecl Act(std::string name, std::string category, std::string provider) {
  ActionDecl a;
  a.name = std::move(name);
  a.type = {std::move(category), "AWS", std::move(provider), "1"};
  return a;
}

class Rollback : public ::testing::Test {
 protected:
  void SetUp() override {
    p_.decl.name = "p";
    p_.decl.version = 1;
    StageDecl src;
    src.name = "Source";
    src.actions.push_back(Act("Src", "Source", "Directory"));
    src.actions[0].output_artifacts.push_back({"Out", {}});
    StageDecl deploy;
    deploy.name = "Deploy";
    deploy.actions.push_back(Act("Ship", "Deploy", "Directory"));
    deploy.actions[0].input_artifacts.push_back("Out");
    p_.decl.stages = {src, deploy};
  }
  // Finishes every InProgress run with `status`; a source run outputs `rev`.
  void FinishAll(ActionStatus status, const std::string& rev = "rev") {
    for (;;) {
      std::string id;
      for (auto& e : p_.executions) {
        for (auto& r : e.runs) {
          if (r.status == ActionStatus::kInProgress) id = r.id;
        }
      }
      if (id.empty()) return;
      ActionResult res;
      res.status = status;
      res.outputs["Out"] = rev;
      Outcome out;
      ASSERT_TRUE(CompleteAction(p_, id, res, now_, &out).ok());
      Advance(p_, now_, ids_, &out);
    }
  }
  std::string Run(ActionStatus deploy_result, const std::string& rev) {
    Outcome out;
    std::string id = StartExecution(p_, "StartPipelineExecution", "t", now_, ids_, &out).id;
    Advance(p_, now_, ids_, &out);
    // Source succeeds, then the deploy gets `deploy_result`.
    for (auto& r : p_.FindExecution(id)->runs) {
      if (r.status == ActionStatus::kInProgress) {
        ActionResult res;
        res.outputs["Out"] = rev;
        EXPECT_TRUE(CompleteAction(p_, r.id, res, now_, &out).ok());
      }
    }
    Advance(p_, now_, ids_, &out);
    FinishAll(deploy_result, rev);
    return id;
  }
  PipelineState p_;
  CounterIds ids_;
  EpochSeconds now_ = 100;
};

TEST_F(Rollback, ManualRollbackRunsOnlyTheStageWithTheTargetsArtifacts) {  // Rule 58.
  std::string good = Run(ActionStatus::kSucceeded, "rev-good");
  std::string bad = Run(ActionStatus::kFailed, "rev-bad");
  ASSERT_EQ(p_.FindExecution(bad)->status, ExecutionStatus::kFailed);
  Outcome out;
  auto rb = StartRollback(p_, "Deploy", good, "ManualRollback", now_, ids_, &out);
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  Advance(p_, now_, ids_, &out);
  const Execution* e = p_.FindExecution(*rb);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->execution_type, ExecutionType::kRollback);
  EXPECT_EQ(e->rollback_target, good);
  ASSERT_EQ(e->runs.size(), 1u) << "only the rolled-back stage runs";
  EXPECT_EQ(e->runs[0].stage, "Deploy");
  EXPECT_EQ(e->runs[0].inputs.at("Out"), "rev-good");
  EXPECT_EQ(p_.stage_latest["Deploy"], *rb);
  FinishAll(ActionStatus::kSucceeded);
  EXPECT_EQ(p_.FindExecution(*rb)->status, ExecutionStatus::kSucceeded);
}

TEST_F(Rollback, Refusals) {  // Rules 59-60.
  std::string good = Run(ActionStatus::kSucceeded, "a");
  std::string bad = Run(ActionStatus::kFailed, "b");
  Outcome out;
  EXPECT_EQ(
      StartRollback(p_, "Source", good, "ManualRollback", now_, ids_, &out).status().wire_name(),
      "UnableToRollbackStageException");
  EXPECT_EQ(
      StartRollback(p_, "Nope", good, "ManualRollback", now_, ids_, &out).status().wire_name(),
      "StageNotFoundException");
  EXPECT_EQ(
      StartRollback(p_, "Deploy", "zz", "ManualRollback", now_, ids_, &out).status().wire_name(),
      "PipelineExecutionNotFoundException");
  EXPECT_EQ(
      StartRollback(p_, "Deploy", bad, "ManualRollback", now_, ids_, &out).status().wire_name(),
      "UnableToRollbackStageException");
  p_.decl.version = 2;
  EXPECT_EQ(
      StartRollback(p_, "Deploy", good, "ManualRollback", now_, ids_, &out).status().wire_name(),
      "PipelineExecutionOutdatedException");
  p_.decl.version = 1;
  p_.decl.execution_mode = ExecutionMode::kParallel;
  EXPECT_EQ(
      StartRollback(p_, "Deploy", good, "ManualRollback", now_, ids_, &out).status().wire_name(),
      "UnableToRollbackStageException");
}

TEST_F(Rollback, RefusedWhileTheStageRuns) {
  std::string good = Run(ActionStatus::kSucceeded, "a");
  Outcome out;
  std::string id = StartExecution(p_, "StartPipelineExecution", "t", now_, ids_, &out).id;
  Advance(p_, now_, ids_, &out);
  for (auto& r : p_.FindExecution(id)->runs) {
    ActionResult res;
    res.outputs["Out"] = "c";
    ASSERT_TRUE(CompleteAction(p_, r.id, res, now_, &out).ok());
  }
  Advance(p_, now_, ids_, &out);  // Deploy of `id` is now running.
  EXPECT_EQ(
      StartRollback(p_, "Deploy", good, "ManualRollback", now_, ids_, &out).status().wire_name(),
      "UnableToRollbackStageException");
}

TEST_F(Rollback, AutomaticOnFailureRollsBackToTheLastSuccess) {  // Rule 61.
  p_.decl.stages[1].on_failure = FailureResult::kRollback;
  std::string first_bad = Run(ActionStatus::kFailed, "x");
  // No earlier success: nothing happens.
  EXPECT_EQ(p_.executions.size(), 1u);
  std::string good = Run(ActionStatus::kSucceeded, "good");
  std::string bad = Run(ActionStatus::kFailed, "bad");
  ASSERT_EQ(p_.executions.size(), 4u);
  const Execution& rb = p_.executions.back();
  EXPECT_EQ(rb.execution_type, ExecutionType::kRollback);
  EXPECT_EQ(rb.trigger_type, "AutomatedRollback");
  EXPECT_EQ(rb.rollback_target, good);
  EXPECT_EQ(p_.FindExecution(bad)->status, ExecutionStatus::kFailed);
  (void)first_bad;
}

}  // namespace
}  // namespace pw::core::rollback_test
