// The renderings of execution_ops.h on hand-built pipeline states: a source's
// revision and entity URLs reach every answer that shows them, rollback
// executions report their target's revisions, ListActionExecutions' filters.
// Pure: no engine, store or process.

#include "api/execution_ops.h"

#include <gtest/gtest.h>

namespace pw::api::execution_ops_test {
namespace {

using nlohmann::json;

core::ActionDecl Action(std::string name, std::string category, std::string provider) {
  core::ActionDecl a;
  a.name = std::move(name);
  a.type = {std::move(category), "AWS", std::move(provider), "1"};
  return a;
}

core::ActionRun MakeRun(std::string id, std::string exec, std::string stage, std::string action,
                        core::ActionStatus status = core::ActionStatus::kSucceeded) {
  core::ActionRun r;
  r.id = std::move(id);
  r.execution_id = std::move(exec);
  r.stage = std::move(stage);
  r.action = std::move(action);
  r.status = status;
  return r;
}

// Source (Src: a Git source whose revision has URLs) -> Build (Make).
core::PipelineState State() {
  core::PipelineState p;
  p.decl.name = "p";
  core::StageDecl source;
  source.name = "Source";
  source.actions.push_back(Action("Src", "Source", "Git"));
  source.actions.back().output_artifacts.push_back({"SourceOut", {}});
  core::StageDecl build;
  build.name = "Build";
  build.actions.push_back(Action("Make", "Build", "Commands"));
  p.decl.stages = {source, build};

  core::Execution e;
  e.id = "e1";
  e.status = core::ExecutionStatus::kSucceeded;
  e.started = 10;
  core::ActionRun src = MakeRun("r1", "e1", "Source", "Src");
  src.revision_id = "abc123";
  src.revision_summary = "fix the build";
  src.revision_created = 5;
  src.revision_url = "https://git.example/org/repo/commit/abc123";
  src.entity_url = "https://git.example/org/repo";
  src.outputs = {{"SourceOut", "f00d"}};
  e.runs.push_back(src);
  core::ActionRun failed = MakeRun("r2", "e1", "Build", "Make", core::ActionStatus::kFailed);
  failed.inputs = {{"SourceOut", "f00d"}};
  e.runs.push_back(failed);
  core::ActionRun retried = MakeRun("r3", "e1", "Build", "Make");
  retried.inputs = {{"SourceOut", "f00d"}};
  e.runs.push_back(retried);
  core::StageRun ssr;
  ssr.stage = "Source";
  ssr.status = core::StageStatus::kSucceeded;
  ssr.latest = {{"Src", "r1"}};
  e.stages.push_back(ssr);
  p.executions.push_back(e);
  p.stage_latest = {{"Source", "e1"}, {"Build", "e1"}};
  return p;
}

TEST(RevisionUrl, ReachesActionStateAndActionExecution) {
  const core::PipelineState p = State();
  json st = StageStateJson(p, p.decl.stages[0]);
  const json& src = st["actionStates"][0];
  EXPECT_EQ(src["currentRevision"]["revisionId"], "abc123");
  EXPECT_EQ(src["revisionUrl"], "https://git.example/org/repo/commit/abc123");
  EXPECT_EQ(src["entityUrl"], "https://git.example/org/repo");

  const json declaration = {{"artifactStore", {{"type", "S3"}, {"location", "bucket"}}}};
  json detail = ActionExecutionDetail(p, declaration, p.executions[0], p.executions[0].runs[0]);
  EXPECT_EQ(detail["output"]["executionResult"]["externalExecutionUrl"],
            "https://git.example/org/repo/commit/abc123");
  EXPECT_EQ(detail["output"]["outputArtifacts"][0]["s3location"],
            (json{{"bucket", "bucket"}, {"key", "artifacts/f00d.zip"}}));
}

TEST(RevisionUrl, AnActionsOwnPageWinsOverTheRevisionUrl) {
  core::PipelineState p = State();
  p.executions[0].runs[0].external_url = "http://server/logs/r1";
  json detail = ActionExecutionDetail(p, json::object(), p.executions[0], p.executions[0].runs[0]);
  EXPECT_EQ(detail["output"]["executionResult"]["externalExecutionUrl"], "http://server/logs/r1");
}

TEST(ArtifactLocation, ArtifactStoresUseTheActionsRegion) {
  const core::PipelineState p = State();
  const json declaration = {
      {"artifactStores",
       {{"eu-west-1", {{"type", "S3"}, {"location", "eu"}}},
        {"us-east-1", {{"type", "S3"}, {"location", "us"}}}}},
      {"stages",
       {{{"name", "Source"}, {"actions", {{{"name", "Src"}, {"region", "us-east-1"}}}}}}}};
  json detail = ActionExecutionDetail(p, declaration, p.executions[0], p.executions[0].runs[0]);
  EXPECT_EQ(detail["output"]["outputArtifacts"][0]["s3location"]["bucket"], "us");
}

TEST(SourceRuns, RollbackReportsItsTargetsRevisions) {
  core::PipelineState p = State();
  core::Execution rb;
  rb.id = "e2";
  rb.execution_type = core::ExecutionType::kRollback;
  rb.rollback_target = "e1";
  rb.runs.push_back(MakeRun("r9", "e2", "Build", "Make"));
  p.executions.push_back(rb);
  auto runs = SourceRuns(p, p.executions[1]);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]->revision_id, "abc123");
  EXPECT_EQ(runs[0]->revision_url, "https://git.example/org/repo/commit/abc123");
  // A target that no longer exists: no revisions rather than a crash.
  p.executions[1].rollback_target = "gone";
  EXPECT_TRUE(SourceRuns(p, p.executions[1]).empty());
}

std::vector<std::string> Ids(const core::PipelineState& p, const json& filter) {
  auto runs = FilterActionRuns(p, filter);
  EXPECT_TRUE(runs.ok()) << runs.status().ToString();
  std::vector<std::string> ids;
  if (runs.ok()) {
    for (const auto& [e, r] : *runs) ids.push_back(r->id);
  }
  return ids;
}

TEST(FilterActionRuns, LatestKeepsTheLatestAttemptOfEachAction) {
  core::PipelineState p = State();
  core::Execution other;
  other.id = "e0";
  other.runs.push_back(MakeRun("r0", "e0", "Source", "Src"));
  p.executions.insert(p.executions.begin(), other);
  EXPECT_EQ(Ids(p, nullptr), (std::vector<std::string>{"r3", "r2", "r1", "r0"}));
  EXPECT_EQ(Ids(p, {{"pipelineExecutionId", "e1"}}), (std::vector<std::string>{"r3", "r2", "r1"}));
  const json latest = {{"pipelineExecutionId", "e1"}, {"startTimeRange", "Latest"}};
  EXPECT_EQ(Ids(p, {{"latestInPipelineExecution", latest}}),
            (std::vector<std::string>{"r3", "r1"}));
  const json all = {{"pipelineExecutionId", "e1"}, {"startTimeRange", "All"}};
  EXPECT_EQ(Ids(p, {{"latestInPipelineExecution", all}}),
            (std::vector<std::string>{"r3", "r2", "r1"}));
}

TEST(FilterActionRuns, RefusesBothFiltersAndUnknownExecutions) {
  const core::PipelineState p = State();
  const json latest = {{"pipelineExecutionId", "e1"}, {"startTimeRange", "Latest"}};
  auto both =
      FilterActionRuns(p, {{"pipelineExecutionId", "e1"}, {"latestInPipelineExecution", latest}});
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.status().wire_name(), "ValidationException");
  const json unknown = {{"pipelineExecutionId", "nope"}, {"startTimeRange", "All"}};
  auto missing = FilterActionRuns(p, {{"latestInPipelineExecution", unknown}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().wire_name(), "PipelineExecutionNotFoundException");
}

// Rules 28-29: an execution stopped or failed while waiting stays visible
// as the stage's inbound execution until a newer one reaches the stage.
TEST(InboundExecution, StoppedWaiterStaysVisibleUntilANewerOneEnters) {
  core::PipelineState p = State();
  core::Execution waiting;
  waiting.id = "e2";
  waiting.started = 20;
  waiting.status = core::ExecutionStatus::kStopped;
  waiting.stage_index = 1;
  waiting.in_stage = false;
  p.executions.push_back(waiting);
  json st = StageStateJson(p, p.decl.stages[1]);
  EXPECT_EQ(st["inboundExecution"],
            (json{{"pipelineExecutionId", "e2"}, {"status", "Stopped"}, {"type", "STANDARD"}}));
  EXPECT_EQ(st["inboundExecutions"].size(), 1u);

  core::Execution newer;
  newer.id = "e3";
  newer.started = 30;
  newer.status = core::ExecutionStatus::kInProgress;
  newer.stage_index = 1;
  newer.in_stage = true;
  p.executions.push_back(newer);
  p.stage_latest["Build"] = "e3";
  EXPECT_FALSE(StageStateJson(p, p.decl.stages[1]).contains("inboundExecution"));
}

}  // namespace
}  // namespace pw::api::execution_ops_test
