// Round trips of the persistent documents (state_json.h): every field that
// survives a restart must survive ToDoc -> FromDoc. Pure; no I/O.

#include "engine/state_json.h"

#include <gtest/gtest.h>

namespace pw::engine::state_json_test {
namespace {

using nlohmann::json;

// Every field set to something other than its default.
core::ActionRun FullRun() {
  core::ActionRun r;
  r.id = "run-1";
  r.execution_id = "exec-1";
  r.stage = "Build";
  r.action = "Compile";
  r.stage_attempt = 2;
  r.status = core::ActionStatus::kAbandoned;
  r.started = 100.25;
  r.updated = 200.5;
  r.summary = "summary";
  r.error_code = "JobFailed";
  r.error_message = "boom";
  r.token = "tok";
  r.external_id = "ext";
  r.external_url = "http://x/logs/run-1";
  r.updated_by = "bob";
  r.percent_complete = 55;
  r.inputs = {{"SourceOut", "rev-in"}};
  r.outputs = {{"BuildOut", "rev-out"}};
  r.output_variables = {{"K", "V"}};
  r.revision_id = "commit";
  r.revision_summary = "message";
  r.revision_created = 50.75;
  r.revision_url = "https://git.example/repo/commit/abc";
  r.entity_url = "https://git.example/repo";
  return r;
}

TEST(StateJson, ActionRunRoundTripKeepsEveryField) {
  const core::ActionRun a = FullRun();
  const core::ActionRun b = RunFromDoc(json::parse(RunToDoc(a).dump()));
  EXPECT_EQ(b.id, a.id);
  EXPECT_EQ(b.execution_id, a.execution_id);
  EXPECT_EQ(b.stage, a.stage);
  EXPECT_EQ(b.action, a.action);
  EXPECT_EQ(b.stage_attempt, a.stage_attempt);
  EXPECT_EQ(b.status, a.status);
  EXPECT_EQ(b.started, a.started);
  EXPECT_EQ(b.updated, a.updated);
  EXPECT_EQ(b.summary, a.summary);
  EXPECT_EQ(b.error_code, a.error_code);
  EXPECT_EQ(b.error_message, a.error_message);
  EXPECT_EQ(b.token, a.token);
  EXPECT_EQ(b.external_id, a.external_id);
  EXPECT_EQ(b.external_url, a.external_url);
  EXPECT_EQ(b.updated_by, a.updated_by);
  EXPECT_EQ(b.percent_complete, a.percent_complete);
  EXPECT_EQ(b.inputs, a.inputs);
  EXPECT_EQ(b.outputs, a.outputs);
  EXPECT_EQ(b.output_variables, a.output_variables);
  EXPECT_EQ(b.revision_id, a.revision_id);
  EXPECT_EQ(b.revision_summary, a.revision_summary);
  EXPECT_EQ(b.revision_created, a.revision_created);
  EXPECT_EQ(b.revision_url, a.revision_url);
  EXPECT_EQ(b.entity_url, a.entity_url);
}

TEST(StateJson, ExecutionRoundTripKeepsEveryFieldButNotRuns) {
  core::Execution a;
  a.id = "exec-1";
  a.pipeline = "p";
  a.pipeline_version = 3;
  a.status = core::ExecutionStatus::kStopping;
  a.status_summary = "stopping";
  a.started = 1.5;
  a.updated = 2.5;
  a.trigger_type = "PollForSourceChanges";
  a.trigger_detail = "poller";
  a.execution_type = core::ExecutionType::kRollback;
  a.rollback_target = "exec-0";
  a.stop_reason = "why";
  a.stop_requested = true;
  a.abandon_requested = true;
  a.cancel_requested = true;
  a.stage_index = 2;
  a.in_stage = true;
  core::StageRun sr;
  sr.stage = "Build";
  sr.status = core::StageStatus::kStopping;
  sr.group = 1;
  sr.attempt = 4;
  sr.manual_retries = 3;
  sr.auto_retries = 1;
  sr.latest_retry_trigger = core::RetryTrigger::kAutomated;
  sr.latest = {{"Compile", "run-1"}};
  a.stages.push_back(sr);
  a.artifacts = {{"SourceOut", "rev"}};
  a.source_revisions = {{"Src", "COMMIT_ID", "abc"}, {"Obj", "S3_OBJECT_KEY", "k.zip"}};
  a.runs.push_back(FullRun());

  const json doc = ExecutionToDoc(a);
  EXPECT_FALSE(doc.contains("runs")) << "action runs are rows of their own";
  const core::Execution b = ExecutionFromDoc(json::parse(doc.dump()));
  EXPECT_EQ(b.id, a.id);
  EXPECT_EQ(b.pipeline, a.pipeline);
  EXPECT_EQ(b.pipeline_version, a.pipeline_version);
  EXPECT_EQ(b.status, a.status);
  EXPECT_EQ(b.status_summary, a.status_summary);
  EXPECT_EQ(b.started, a.started);
  EXPECT_EQ(b.updated, a.updated);
  EXPECT_EQ(b.trigger_type, a.trigger_type);
  EXPECT_EQ(b.trigger_detail, a.trigger_detail);
  EXPECT_EQ(b.execution_type, a.execution_type);
  EXPECT_EQ(b.rollback_target, a.rollback_target);
  EXPECT_EQ(b.stop_reason, a.stop_reason);
  EXPECT_EQ(b.stop_requested, a.stop_requested);
  EXPECT_EQ(b.abandon_requested, a.abandon_requested);
  EXPECT_EQ(b.cancel_requested, a.cancel_requested);
  EXPECT_EQ(b.stage_index, a.stage_index);
  EXPECT_EQ(b.in_stage, a.in_stage);
  EXPECT_EQ(b.artifacts, a.artifacts);
  EXPECT_EQ(b.source_revisions, a.source_revisions);
  EXPECT_TRUE(b.runs.empty());
  ASSERT_EQ(b.stages.size(), 1u);
  EXPECT_EQ(b.stages[0].stage, sr.stage);
  EXPECT_EQ(b.stages[0].status, sr.status);
  EXPECT_EQ(b.stages[0].group, sr.group);
  EXPECT_EQ(b.stages[0].attempt, sr.attempt);
  EXPECT_EQ(b.stages[0].manual_retries, sr.manual_retries);
  EXPECT_EQ(b.stages[0].auto_retries, sr.auto_retries);
  EXPECT_EQ(b.stages[0].latest_retry_trigger, sr.latest_retry_trigger);
  EXPECT_EQ(b.stages[0].latest, sr.latest);
}

TEST(StateJson, OldExecutionDocumentWithEmbeddedRunsStillLoadsThem) {
  json doc = ExecutionToDoc(core::Execution{});
  doc["v"] = 1;
  doc["runs"] = json::array({RunToDoc(FullRun())});
  const core::Execution e = ExecutionFromDoc(doc);
  ASSERT_EQ(e.runs.size(), 1u);
  EXPECT_EQ(e.runs[0].id, "run-1");
}

TEST(StateJson, UnknownStatusesLoadAsFailed) {
  json run = RunToDoc(FullRun());
  run["status"] = "Exploded";
  EXPECT_EQ(RunFromDoc(run).status, core::ActionStatus::kFailed);
  json exec = ExecutionToDoc(core::Execution{});
  exec["status"] = "Exploded";
  EXPECT_EQ(ExecutionFromDoc(exec).status, core::ExecutionStatus::kFailed);
}

TEST(StateJson, RuntimeRoundTripKeepsTransitionsAndStageLatest) {
  core::PipelineState a;
  a.transitions["Build"] = {false, "freeze", "alice", 42.5};
  a.transitions["Ship"] = {true, "", "bob", 43};
  a.stage_latest = {{"Source", "e1"}, {"Build", "e2"}};
  core::PipelineState b;
  RuntimeFromDoc(json::parse(RuntimeToDoc(a).dump()), &b);
  ASSERT_EQ(b.transitions.size(), 2u);
  EXPECT_FALSE(b.transitions["Build"].enabled);
  EXPECT_EQ(b.transitions["Build"].disabled_reason, "freeze");
  EXPECT_EQ(b.transitions["Build"].last_changed_by, "alice");
  EXPECT_EQ(b.transitions["Build"].last_changed_at, 42.5);
  EXPECT_TRUE(b.transitions["Ship"].enabled);
  EXPECT_EQ(b.stage_latest, a.stage_latest);
}

}  // namespace
}  // namespace pw::engine::state_json_test
