// Engine tests with real parts: a real SQLite file in a fresh temporary
// directory per test, real child processes (/bin/sh running Commands
// actions), a real Directory source. Only time is injected (TestClock), and
// only the timeout tests move it. No sleeps as synchronisation: tests wait
// with WaitIdleForTest or poll GetSnapshot against a deadline.
//
// Actions that must stay running block on a "gate" file (Gate()); each gate
// loop also exits when the test's directory disappears, so a failed test
// cannot leave a shell spinning.

#include "engine/engine.h"

#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/test_files.h"
#include "core/execution.h"
#include "runner/artifact_store.h"
#include "runner/process_launcher.h"
#include "runner/spare_files.h"
#include "runner/temp_dir.h"
#include "store/faulty_store.h"
#include "store/store.h"

namespace pw::engine::engine_test {
namespace {

using store::FaultyStore;

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kRestartMessage =
    "The Pipewright server stopped while this action was running; retry the stage to run it "
    "again.";

// Time that moves only when a test says so. Thread-safe.
class TestClock final : public Clock {
 public:
  EpochSeconds Now() const override { return now_.load(); }
  void Advance(double seconds) { now_.store(now_.load() + seconds); }

 private:
  std::atomic<double> now_{1'700'000'000.0};
};

// --- Declarations ------------------------------------------------------------

json Pipeline(const std::string& name, const std::vector<json>& stages) {
  return {{"name", name},
          {"roleArn", "arn:aws:iam::123456789012:role/pipewright"},
          {"artifactStore", {{"type", "S3"}, {"location", "pipewright-artifacts"}}},
          {"stages", stages}};
}

json Stage(const std::string& name, const std::vector<json>& actions) {
  return {{"name", name}, {"actions", actions}};
}

json TypeId(const std::string& category, const std::string& owner, const std::string& provider) {
  return {{"category", category}, {"owner", owner}, {"provider", provider}, {"version", "1"}};
}

json DirSource(const std::string& path) {
  return {{"name", "Src"},
          {"actionTypeId", TypeId("Source", "AWS", "Directory")},
          {"configuration", {{"Path", path}}},
          {"outputArtifacts", {{{"name", "SourceOut"}}}}};
}

json Commands(const std::string& name, const std::vector<std::string>& commands,
              int run_order = 1) {
  return {{"name", name},
          {"actionTypeId", TypeId("Build", "AWS", "Commands")},
          {"runOrder", run_order},
          {"commands", commands},
          {"inputArtifacts", {{{"name", "SourceOut"}}}}};
}

json Approval(const std::string& name) {
  return {{"name", name}, {"actionTypeId", TypeId("Approval", "AWS", "Manual")}};
}

json Custom(const std::string& name, const std::string& provider, const json& configuration,
            const std::string& category = "Build") {
  return {{"name", name},
          {"actionTypeId", TypeId(category, "Custom", provider)},
          {"configuration", configuration},
          {"inputArtifacts", {{{"name", "SourceOut"}}}}};
}

json Property(const std::string& name, bool required, bool secret, bool queryable) {
  return {{"name", name},           {"required", required}, {"key", false},    {"secret", secret},
          {"queryable", queryable}, {"description", name},  {"type", "String"}};
}

// CreateCustomActionType input (the model's shape).
json CustomTypeInput(const std::string& provider, const json& properties,
                     const std::string& category = "Build") {
  return {{"category", category},
          {"provider", provider},
          {"version", "1"},
          {"configurationProperties", properties},
          {"inputArtifactDetails", {{"minimumCount", 0}, {"maximumCount", 1}}},
          {"outputArtifactDetails", {{"minimumCount", 0}, {"maximumCount", 1}}}};
}

core::ActionTypeId BuildType(const std::string& provider) {
  return {"Build", "Custom", provider, "1"};
}

// --- Snapshot helpers ----------------------------------------------------------

const core::Execution* FindExecution(const Snapshot& s, const std::string& id) {
  for (const auto& e : s.state.executions) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

// The runs of `stage`/`action`, oldest first.
std::vector<core::ActionRun> RunsOf(const core::Execution& e, const std::string& stage,
                                    const std::string& action) {
  std::vector<core::ActionRun> out;
  for (const auto& r : e.runs) {
    if (r.stage == stage && r.action == action) out.push_back(r);
  }
  return out;
}

std::string S(core::ExecutionStatus s) { return std::string(core::Name(s)); }
std::string S(core::StageStatus s) { return std::string(core::Name(s)); }
std::string S(core::ActionStatus s) { return std::string(core::Name(s)); }

// Every field, so a field the store forgets shows up by name.
void ExpectSameRun(const core::ActionRun& a, const core::ActionRun& b) {
  SCOPED_TRACE("run " + a.stage + "/" + a.action + " " + a.id);
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.execution_id, b.execution_id);
  EXPECT_EQ(a.stage, b.stage);
  EXPECT_EQ(a.action, b.action);
  EXPECT_EQ(a.stage_attempt, b.stage_attempt);
  EXPECT_EQ(S(a.status), S(b.status));
  EXPECT_EQ(a.started, b.started);
  EXPECT_EQ(a.updated, b.updated);
  EXPECT_EQ(a.summary, b.summary);
  EXPECT_EQ(a.error_code, b.error_code);
  EXPECT_EQ(a.error_message, b.error_message);
  EXPECT_EQ(a.token, b.token);
  EXPECT_EQ(a.external_id, b.external_id);
  EXPECT_EQ(a.external_url, b.external_url);
  EXPECT_EQ(a.updated_by, b.updated_by);
  EXPECT_EQ(a.percent_complete, b.percent_complete);
  EXPECT_EQ(a.inputs, b.inputs);
  EXPECT_EQ(a.outputs, b.outputs);
  EXPECT_EQ(a.output_variables, b.output_variables);
  EXPECT_EQ(a.revision_id, b.revision_id);
  EXPECT_EQ(a.revision_summary, b.revision_summary);
  EXPECT_EQ(a.revision_created, b.revision_created);
  EXPECT_EQ(a.revision_url, b.revision_url);
}

void ExpectSameExecution(const core::Execution& a, const core::Execution& b) {
  SCOPED_TRACE("execution " + a.id);
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.pipeline, b.pipeline);
  EXPECT_EQ(a.pipeline_version, b.pipeline_version);
  EXPECT_EQ(S(a.status), S(b.status));
  EXPECT_EQ(a.status_summary, b.status_summary);
  EXPECT_EQ(a.started, b.started);
  EXPECT_EQ(a.updated, b.updated);
  EXPECT_EQ(a.trigger_type, b.trigger_type);
  EXPECT_EQ(a.trigger_detail, b.trigger_detail);
  EXPECT_EQ(a.execution_type, b.execution_type);
  EXPECT_EQ(a.rollback_target, b.rollback_target);
  EXPECT_EQ(a.stop_reason, b.stop_reason);
  EXPECT_EQ(a.stop_requested, b.stop_requested);
  EXPECT_EQ(a.abandon_requested, b.abandon_requested);
  EXPECT_EQ(a.cancel_requested, b.cancel_requested);
  EXPECT_EQ(a.stage_index, b.stage_index);
  EXPECT_EQ(a.in_stage, b.in_stage);
  EXPECT_EQ(a.artifacts, b.artifacts);
  ASSERT_EQ(a.stages.size(), b.stages.size());
  for (size_t i = 0; i < a.stages.size(); ++i) {
    const core::StageRun& x = a.stages[i];
    const core::StageRun& y = b.stages[i];
    SCOPED_TRACE("stage run " + x.stage);
    EXPECT_EQ(x.stage, y.stage);
    EXPECT_EQ(S(x.status), S(y.status));
    EXPECT_EQ(x.group, y.group);
    EXPECT_EQ(x.attempt, y.attempt);
    EXPECT_EQ(x.manual_retries, y.manual_retries);
    EXPECT_EQ(x.auto_retries, y.auto_retries);
    EXPECT_EQ(x.latest_retry_trigger, y.latest_retry_trigger);
    EXPECT_EQ(x.latest, y.latest);
  }
  ASSERT_EQ(a.runs.size(), b.runs.size());
  for (size_t i = 0; i < a.runs.size(); ++i) ExpectSameRun(a.runs[i], b.runs[i]);
}

// --- Fixture -------------------------------------------------------------------

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = runner::ScopedTempDir::Create("pw-engine-test");
    ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();
    tmp_ = std::make_unique<runner::ScopedTempDir>(std::move(*tmp));
    dir_ = tmp_->path();
    src_ = dir_ + "/src";
    fs::create_directories(src_);
    fs::create_directories(dir_ + "/gates");
    fs::create_directories(dir_ + "/marks");
    std::ofstream(src_ + "/input.txt") << "directory source\n";
    options_.data_dir = dir_ + "/data";
    options_.start_on_create = false;  // Tests start what they need; one test checks rule 12.
    options_.source_poll_seconds = 0;
    options_.kill_grace_seconds = 0.2;
    OpenStore();
  }

  void TearDown() override {
    engine_.reset();  // Kills whatever still runs, before the directory goes.
    faulty_.reset();
    store_.reset();
  }

  void OpenStore() {
    auto s = store::OpenSqliteStore(dir_ + "/pipewright.db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  Engine& StartEngine() {
    engine_ = std::make_unique<Engine>(*store_, clock_, options_);
    return *engine_;
  }

  // Destroys the engine and closes the database, then reopens both, as a
  // server restart does. Recover() runs when `recover`.
  Engine& Restart(bool recover = true) {
    engine_.reset();
    store_.reset();
    OpenStore();
    Engine& e = StartEngine();
    if (recover) {
      Status s = e.Recover();
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    return e;
  }

  void Create(const json& pipeline) {
    auto rec = engine_->CreatePipeline(pipeline, {}, "tester");
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  }

  std::string Start(const std::string& pipeline, const std::string& token = "") {
    auto id = engine_->StartExecution(pipeline, token, "tester");
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : "";
  }

  Snapshot Snap(const std::string& pipeline) {
    auto s = engine_->GetSnapshot(pipeline);
    if (!s.ok()) {
      ADD_FAILURE() << "GetSnapshot(" << pipeline << "): " << s.status().ToString();
      return {};
    }
    return *s;
  }

  core::Execution Exec(const std::string& pipeline, const std::string& id) {
    Snapshot s = Snap(pipeline);
    const core::Execution* e = FindExecution(s, id);
    if (e == nullptr) {
      ADD_FAILURE() << "no execution " << id << " in " << pipeline;
      return {};
    }
    return *e;
  }

  // Polls `done` until it holds or `seconds` pass.
  static bool WaitFor(const std::function<bool()>& done, double seconds = 10) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  void WaitIdle() { ASSERT_TRUE(engine_->WaitIdleForTest(15)) << "engine did not go idle"; }

  // Waits until the execution has ended; returns it.
  core::Execution WaitEnded(const std::string& pipeline, const std::string& id) {
    core::Execution e;
    bool ended = WaitFor([&] {
      e = Exec(pipeline, id);
      return !e.id.empty() && !e.Active();
    });
    EXPECT_TRUE(ended) << "execution " << id << " still " << S(e.status);
    return e;
  }

  // A command that records it started, then blocks until Open(key).
  std::string Gate(const std::string& key) const {
    return "touch " + dir_ + "/marks/" + key + "; while [ ! -e " + dir_ + "/gates/" + key +
           " ]; do [ -d " + dir_ + "/gates ] || exit 97; sleep 0.01; done";
  }
  void WaitGateReached(const std::string& key) {
    ASSERT_TRUE(WaitFor([&] { return fs::exists(dir_ + "/marks/" + key); }))
        << "action gated on " << key << " never started";
  }
  void Open(const std::string& key) const { std::ofstream(dir_ + "/gates/" + key) << "go\n"; }

  // The one queued job of `type`, handed out by PollForJobs.
  Job PollOne(const core::ActionTypeId& type) {
    auto jobs = engine_->PollForJobs(type, 10, {}, 10);
    if (!jobs.ok() || jobs->size() != 1) {
      ADD_FAILURE() << "expected one job: "
                    << (jobs.ok() ? std::to_string(jobs->size()) : jobs.status().ToString());
      return {};
    }
    return jobs->front();
  }

  // Src -> Work (one Custom action of Build/Custom/<provider>/1).
  void CreateJobPipeline(const std::string& name, const std::string& provider = "MyWorker") {
    if (!engine_->FindCustomActionType(BuildType(provider))) {
      auto t = engine_->CreateCustomActionType(
          CustomTypeInput(provider, json::array({Property("Label", false, false, false)})));
      ASSERT_TRUE(t.ok()) << t.status().ToString();
    }
    Create(Pipeline(name, {Stage("Source", {DirSource(src_)}),
                           Stage("Work", {Custom("Job", provider, {{"Label", "a"}})})}));
  }

  // The summary of the latest run of CloudFormationPipeline's Stack action in
  // execution `id` of "p" ("" before it runs).
  std::string StackSummary(const std::string& id) {
    auto runs = RunsOf(Exec("p", id), "Deploy", "Stack");
    return runs.empty() ? std::string() : runs.back().summary;
  }
  static constexpr const char* kStackWaitsForAWorker =
      "Waiting for a worker: run pipewright worker --action-type "
      "Deploy/AWS/CloudFormation/1 -- <program>";

  // Src -> Build (the given commands).
  json BuildPipeline(const std::string& name, const std::vector<std::string>& commands) const {
    return Pipeline(
        name, {Stage("Source", {DirSource(src_)}), Stage("Build", {Commands("Build", commands)})});
  }

  std::unique_ptr<runner::ScopedTempDir> tmp_;  // Declared first: removed last.
  std::string dir_, src_;
  TestClock clock_;
  EngineOptions options_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<FaultyStore> faulty_;
  std::unique_ptr<Engine> engine_;
};

// --- Create, start, validation ---------------------------------------------------

TEST_F(EngineTest, CreatePipelineStartsFirstExecutionThatRunsToSucceeded) {
  options_.start_on_create = true;  // Rule 12.
  StartEngine();
  Create(BuildPipeline("p", {"test -f input.txt", "echo built > out.txt"}));
  WaitIdle();
  Snapshot s = Snap("p");
  ASSERT_EQ(s.state.executions.size(), 1u);
  const core::Execution& e = s.state.executions[0];
  EXPECT_EQ(S(e.status), "Succeeded") << e.status_summary;
  EXPECT_EQ(e.trigger_type, "CreatePipeline");
  EXPECT_EQ(e.pipeline_version, 1);
  auto src = RunsOf(e, "Source", "Src");
  auto build = RunsOf(e, "Build", "Build");
  ASSERT_EQ(src.size(), 1u);
  ASSERT_EQ(build.size(), 1u);
  EXPECT_EQ(S(src[0].status), "Succeeded");
  EXPECT_EQ(S(build[0].status), "Succeeded") << build[0].error_message;
  // The build saw the source's snapshot as its input.
  ASSERT_EQ(src[0].outputs.count("SourceOut"), 1u);
  EXPECT_EQ(build[0].inputs.at("SourceOut"), src[0].outputs.at("SourceOut"));
  EXPECT_EQ(src[0].revision_id, src[0].outputs.at("SourceOut"));
  EXPECT_EQ(s.state.stage_latest.at("Source"), e.id);
  EXPECT_EQ(s.state.stage_latest.at("Build"), e.id);
}

TEST_F(EngineTest, CurrentOnlySnapshotHoldsTheLatestExecutionsNotTheHistory) {
  StartEngine();
  Create(BuildPipeline("p", {"true"}));
  std::string last;
  for (int i = 0; i < 3; ++i) {
    last = Start("p");
    WaitEnded("p", last);
  }
  EXPECT_EQ(Snap("p").state.executions.size(), 3u);
  auto current = engine_->GetSnapshot("p", /*current_only=*/true);
  ASSERT_TRUE(current.ok());
  ASSERT_EQ(current->state.executions.size(), 1u);
  EXPECT_EQ(current->state.executions[0].id, last);
  EXPECT_EQ(current->state.stage_latest.at("Build"), last);
}

TEST_F(EngineTest, CreatePipelineWithStartOnCreateFalseStartsNothing) {
  StartEngine();
  Create(BuildPipeline("p", {"true"}));
  WaitIdle();
  Snapshot s = Snap("p");
  EXPECT_TRUE(s.state.executions.empty());
  EXPECT_EQ(s.record.version, 1);
  auto rows = store_->ListExecutions("p");
  ASSERT_TRUE(rows.ok());
  EXPECT_TRUE(rows->empty());
}

TEST_F(EngineTest, MissingRequiredConfigurationIsInvalidActionDeclaration) {
  StartEngine();
  json p = BuildPipeline("p", {"true"});
  p["stages"][0]["actions"][0]["configuration"] = json::object();  // Directory needs Path.
  auto rec = engine_->CreatePipeline(p, {}, "tester");
  ASSERT_FALSE(rec.ok());
  EXPECT_EQ(rec.status().wire_name(), "InvalidActionDeclarationException");
  EXPECT_NE(rec.status().message().find("'Path'"), std::string::npos) << rec.status().message();
  EXPECT_EQ(engine_->GetSnapshot("p").status().wire_name(), "PipelineNotFoundException");
}

TEST_F(EngineTest, RequiredCustomPropertyMissingIsInvalidActionDeclaration) {
  StartEngine();
  ASSERT_TRUE(engine_
                  ->CreateCustomActionType(CustomTypeInput(
                      "Needy", json::array({Property("Target", true, false, false)})))
                  .ok());
  auto rec = engine_->CreatePipeline(
      Pipeline("p", {Stage("Source", {DirSource(src_)}),
                     Stage("Work", {Custom("Job", "Needy", json::object())})}),
      {}, "tester");
  ASSERT_FALSE(rec.ok());
  EXPECT_EQ(rec.status().wire_name(), "InvalidActionDeclarationException");
  EXPECT_NE(rec.status().message().find("'Target'"), std::string::npos);
}

TEST_F(EngineTest, UnknownActionTypeIsInvalidActionDeclaration) {
  StartEngine();
  json p = BuildPipeline("p", {"true"});
  p["stages"][1]["actions"][0]["actionTypeId"]["provider"] = "NoSuchProvider";
  auto rec = engine_->CreatePipeline(p, {}, "tester");
  ASSERT_FALSE(rec.ok());
  EXPECT_EQ(rec.status().wire_name(), "InvalidActionDeclarationException");
  EXPECT_NE(rec.status().message().find("NoSuchProvider"), std::string::npos);
  // A Custom type that was never created is unknown too.
  json q = BuildPipeline("q", {"true"});
  q["stages"][1]["actions"][0] = Custom("Job", "NeverCreated", json::object());
  EXPECT_EQ(engine_->CreatePipeline(q, {}, "tester").status().wire_name(),
            "InvalidActionDeclarationException");
}

TEST_F(EngineTest, GetSnapshotOfUnknownPipelineIsPipelineNotFound) {
  StartEngine();
  auto s = engine_->GetSnapshot("nope");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s.status().wire_name(), "PipelineNotFoundException");
}

// --- Commands failures and retry ---------------------------------------------------

TEST_F(EngineTest, FailedCommandIsNamedWithItsExitCodeAndStageIsRetryable) {
  StartEngine();
  Create(BuildPipeline("p", {"true", "exit 3", "echo never"}));
  const std::string id = Start("p");
  WaitIdle();
  core::Execution e = Exec("p", id);
  EXPECT_EQ(S(e.status), "Failed");
  EXPECT_NE(e.status_summary.find("Build"), std::string::npos) << e.status_summary;
  auto build = RunsOf(e, "Build", "Build");
  ASSERT_EQ(build.size(), 1u);
  EXPECT_EQ(S(build[0].status), "Failed");
  EXPECT_EQ(build[0].error_code, "JobFailed");
  EXPECT_EQ(build[0].error_message, "Command 2 (exit 3) exited with code 3.");
  auto plan = engine_->PlanRetry("p", "Build", id, core::RetryMode::kFailedActions);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->actions_to_rerun, std::vector<std::string>{"Build"});
}

TEST_F(EngineTest, RetryFailedActionsRerunsOnlyTheFailedActionAndKeepsBothRuns) {
  StartEngine();
  const std::string flag = dir_ + "/flag";
  Create(Pipeline(
      "p", {Stage("Source", {DirSource(src_)}),
            Stage("Build", {Commands("Steady", {"true"}), Commands("Flaky", {"cat " + flag})})}));
  const std::string id = Start("p");
  WaitIdle();
  core::Execution failed = Exec("p", id);
  ASSERT_EQ(S(failed.status), "Failed");
  auto flaky = RunsOf(failed, "Build", "Flaky");
  ASSERT_EQ(flaky.size(), 1u);
  EXPECT_EQ(flaky[0].error_message, "Command 1 (cat " + flag + ") exited with code 1.");

  std::ofstream(flag) << "now it exists\n";
  auto plan = engine_->RetryStage("p", "Build", id, core::RetryMode::kFailedActions);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->actions_to_rerun, std::vector<std::string>{"Flaky"});
  WaitIdle();

  core::Execution e = Exec("p", id);
  EXPECT_EQ(S(e.status), "Succeeded") << e.status_summary;
  auto steady = RunsOf(e, "Build", "Steady");
  flaky = RunsOf(e, "Build", "Flaky");
  ASSERT_EQ(steady.size(), 1u);  // Not rerun.
  ASSERT_EQ(flaky.size(), 2u);   // History keeps both attempts.
  EXPECT_EQ(S(flaky[0].status), "Failed");
  EXPECT_EQ(flaky[0].stage_attempt, 0);
  EXPECT_EQ(S(flaky[1].status), "Succeeded");
  EXPECT_EQ(flaky[1].stage_attempt, 1);
  EXPECT_NE(flaky[0].id, flaky[1].id);
  const core::StageRun* sr = e.FindStageRun("Build");
  ASSERT_NE(sr, nullptr);
  EXPECT_EQ(sr->attempt, 1);
  EXPECT_EQ(sr->manual_retries, 1);
  EXPECT_EQ(sr->latest_retry_trigger, core::RetryTrigger::kManual);
  EXPECT_EQ(sr->latest.at("Flaky"), flaky[1].id);
  // Both attempts are rows in the store.
  auto rows = store_->ListActionExecutions("p", id);
  ASSERT_TRUE(rows.ok());
  int flaky_rows = 0;
  for (const auto& r : *rows) flaky_rows += r.action == "Flaky" ? 1 : 0;
  EXPECT_EQ(flaky_rows, 2);
  // A succeeded stage has nothing to retry.
  EXPECT_EQ(
      engine_->RetryStage("p", "Build", id, core::RetryMode::kFailedActions).status().wire_name(),
      "StageNotRetryableException");
}

// --- Persistence and recovery --------------------------------------------------------

TEST_F(EngineTest, RestartedEngineShowsTheSameSnapshot) {
  options_.public_url = "http://pipewright.test";  // So runs carry external ids and URLs.
  StartEngine();
  const std::string flag = dir_ + "/flag";
  Create(Pipeline("p", {Stage("Source", {DirSource(src_)}),
                        Stage("Build", {Commands("Build", {"cat " + flag})}),
                        Stage("Ship", {Commands("Ship", {"true"})})}));
  const std::string first = Start("p");
  WaitIdle();
  clock_.Advance(5);
  std::ofstream(flag) << "x\n";
  ASSERT_TRUE(engine_->RetryStage("p", "Build", first, core::RetryMode::kFailedActions).ok());
  WaitIdle();
  clock_.Advance(5);
  ASSERT_TRUE(engine_->SetTransition("p", "Ship", false, "freeze", "tester").ok());
  const std::string second = Start("p");
  WaitIdle();
  Snapshot before = Snap("p");
  ASSERT_EQ(before.state.executions.size(), 2u);
  ASSERT_EQ(S(FindExecution(before, first)->status), "Succeeded");
  ASSERT_EQ(S(FindExecution(before, second)->status), "InProgress");  // Held before Ship.

  for (bool recover : {false, true}) {
    SCOPED_TRACE(recover ? "after Recover()" : "without Recover()");
    Restart(recover);
    Snapshot after = Snap("p");
    EXPECT_EQ(after.record.version, before.record.version);
    EXPECT_EQ(after.record.declaration, before.record.declaration);
    EXPECT_EQ(after.state.stage_latest, before.state.stage_latest);
    ASSERT_EQ(after.state.transitions.size(), before.state.transitions.size());
    for (const auto& [stage, t] : before.state.transitions) {
      ASSERT_EQ(after.state.transitions.count(stage), 1u) << stage;
      const core::TransitionState& u = after.state.transitions.at(stage);
      EXPECT_EQ(u.enabled, t.enabled);
      EXPECT_EQ(u.disabled_reason, t.disabled_reason);
      EXPECT_EQ(u.last_changed_by, t.last_changed_by);
      EXPECT_EQ(u.last_changed_at, t.last_changed_at);
    }
    ASSERT_EQ(after.state.executions.size(), before.state.executions.size());
    for (size_t i = 0; i < before.state.executions.size(); ++i) {
      ExpectSameExecution(before.state.executions[i], after.state.executions[i]);
    }
  }
  // And it carries on from there.
  ASSERT_TRUE(engine_->SetTransition("p", "Ship", true, "", "tester").ok());
  EXPECT_EQ(S(WaitEnded("p", second).status), "Succeeded");
}

// Actions make and remove directories in work/ and unpacked/ all the time;
// on ext4 without a journal both carry the "top directory" flag so those spread over the block
// groups (on ext4 without a journal, allocating an inode in a group full of
// recently deleted ones scanned them all: see SpreadNewDirectories).
TEST_F(EngineTest, WorkAndUnpackedSpreadTheirNewDirectoriesOnExt4) {
  StartEngine();
  struct statfs sfs {};
  ASSERT_EQ(::statfs(options_.data_dir.c_str(), &sfs), 0);
  if (sfs.f_type != EXT4_SUPER_MAGIC) GTEST_SKIP() << "the data directory is not on ext4";
  // Only without a journal (with one there is no scan to avoid).
  const bool spread = runner::OnExt4WithoutJournal(options_.data_dir);
  EXPECT_EQ(runner::SpreadsNewDirectories(options_.data_dir + "/work"), spread);
  EXPECT_EQ(runner::SpreadsNewDirectories(options_.data_dir + "/unpacked"), spread);
  EXPECT_FALSE(runner::SpreadsNewDirectories(options_.data_dir + "/logs"));
}

// An action's log is a file made ahead during an earlier action's clean-up
// and renamed (no inode allocated between a result and the next spawn: see
// runner/spare_files.h); it holds the action's output as any log would, and
// the spares stay few.
TEST_F(EngineTest, ActionLogsAreFilesMadeAheadByEarlierCleanUps) {
  StartEngine();
  Create(BuildPipeline("p", {"echo first"}));
  const std::string first = Start("p");
  ASSERT_EQ(S(WaitEnded("p", first).status), "Succeeded");
  WaitIdle();  // Its clean-up made the spares.
  const std::string spares = options_.data_dir + "/logs/.spare";
  std::set<ino_t> made;
  for (const auto& e : fs::directory_iterator(spares)) {
    struct stat st {};
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 0);
    made.insert(st.st_ino);
  }
  ASSERT_FALSE(made.empty());
  EXPECT_LE(made.size(), runner::SpareFiles::kDefaultCount);

  Create(BuildPipeline("q", {"echo second"}));
  const std::string second = Start("q");
  ASSERT_EQ(S(WaitEnded("q", second).status), "Succeeded");
  const std::string log = engine_->LogPath(RunsOf(Exec("q", second), "Build", "Build").at(0).id);
  struct stat st {};
  ASSERT_EQ(::stat(log.c_str(), &st), 0);
  EXPECT_TRUE(made.count(st.st_ino)) << log << " was not one of the spares";
  EXPECT_EQ(test_files::ReadFile(log), "second\n");
}

// While an action runs, the overlay of its input is mounted ahead for the
// next action of that revision, which gets it by a move: the second of two
// sequential actions sees its input on an overlay whose upper dir is in the
// unpack cache's premount directory (unpacked/.pm-*), the first on one of
// its own (skipped where overlays cannot be mounted). The first runs a
// while after that (0.3 s): a premount outlives the unmounts' quiet time
// (50 ms), after which it was once unmounted unused.
TEST_F(EngineTest, TheNextActionsInputIsMountedWhileTheActionBeforeItRuns) {
  StartEngine();
  const std::string show = "cat input.txt; grep \" $PWD \" /proc/self/mountinfo || true";
  // The first ends once the premount is there (polled, 10 s at most), so
  // that a slow machine cannot let the second start before it.
  const std::string wait =
      "if grep -q \" $PWD .* overlay \" /proc/self/mountinfo; then i=0; "
      "while ! grep -q /unpacked/.pm- /proc/self/mountinfo && [ $i -lt 1000 ]; do "
      "sleep 0.01; i=$((i+1)); done; sleep 0.3; fi";
  Create(Pipeline(
      "p", {Stage("Source", {DirSource(src_)}),
            Stage("Build", {Commands("First", {show, wait}, 1), Commands("Second", {show}, 2)})}));
  const std::string id = Start("p");
  ASSERT_EQ(S(WaitEnded("p", id).status), "Succeeded");
  const core::Execution e = Exec("p", id);
  const std::string first =
      test_files::ReadFile(engine_->LogPath(RunsOf(e, "Build", "First").at(0).id));
  const std::string second =
      test_files::ReadFile(engine_->LogPath(RunsOf(e, "Build", "Second").at(0).id));
  EXPECT_EQ(first.rfind("directory source\n", 0), 0u) << first;
  EXPECT_EQ(second.rfind("directory source\n", 0), 0u) << second;
  if (first.find(" overlay ") == std::string::npos) GTEST_SKIP() << "inputs are copies here";
  EXPECT_NE(first.find("upperdir=" + options_.data_dir + "/work/"), std::string::npos) << first;
  EXPECT_NE(second.find("upperdir=" + options_.data_dir + "/unpacked/.pm-"), std::string::npos)
      << second;
}

// What a previous server left in the data directory and no run will remove
// (a crash between a run's end and its clean-up, the mount points it kept a
// while, result files) is removed at the next start; logs stay, and what this
// server's own runs create meanwhile is theirs.
TEST_F(EngineTest, RecoverRemovesWhatAPreviousServerLeftInTheDataDirectory) {
  StartEngine();
  Create(BuildPipeline("p", {"true"}));
  const std::string first = Start("p");
  ASSERT_EQ(S(WaitEnded("p", first).status), "Succeeded");
  const std::string data = options_.data_dir;
  const std::string ended = "0b5e0f4e-run-that-ended";
  const std::vector<std::string> left = {data + "/work/" + ended,
                                         data + "/work/" + ended + ".in",
                                         data + "/work/4c1d-cb-run.cb",
                                         data + "/logs/" + ended + ".log.status",
                                         data + "/logs/" + ended + ".log.vars",
                                         data + "/logs/4c1d-cb-run.log.status",
                                         data + "/logs/.spare/spare-5eed0123456789ab"};
  for (const std::string& path : left) {
    if (path.find("/logs/") != std::string::npos) {
      std::ofstream(path) << "1\n";
    } else {
      fs::create_directories(path + "/src");
      std::ofstream(path + "/src/out.o") << "object\n";
    }
  }
  std::ofstream(data + "/logs/" + ended + ".log") << "the run's log\n";
  Restart();
  const std::string second = Start("p");
  ASSERT_EQ(S(WaitEnded("p", second).status), "Succeeded");
  WaitIdle();
  for (const std::string& path : left) EXPECT_FALSE(fs::exists(path)) << path;
  EXPECT_TRUE(fs::exists(data + "/logs/" + ended + ".log")) << "logs are the runs' record";
  EXPECT_TRUE(
      fs::exists(data + "/logs/" + RunsOf(Exec("p", first), "Build", "Build")[0].id + ".log"));
}

TEST_F(EngineTest, RecoverFailsInterruptedCommandsRunAndKeepsApprovalWaiting) {
  StartEngine();
  Create(BuildPipeline("blocked", {Gate("build")}));
  Create(Pipeline(
      "approve", {Stage("Source", {DirSource(src_)}), Stage("Gatekeeper", {Approval("Approve")})}));
  const std::string blocked = Start("blocked");
  const std::string approve = Start("approve");
  WaitGateReached("build");
  std::string token;
  ASSERT_TRUE(WaitFor([&] {
    auto runs = RunsOf(Exec("approve", approve), "Gatekeeper", "Approve");
    if (!runs.empty()) token = runs[0].token;
    return !token.empty();
  }));
  ASSERT_EQ(S(RunsOf(Exec("blocked", blocked), "Build", "Build").at(0).status), "InProgress");

  Restart();  // The old engine kills the running shell; its run stays InProgress on disk.

  core::Execution b = Exec("blocked", blocked);
  auto build = RunsOf(b, "Build", "Build");
  ASSERT_EQ(build.size(), 1u);
  EXPECT_EQ(S(build[0].status), "Failed");
  EXPECT_EQ(build[0].error_message, kRestartMessage);
  EXPECT_EQ(S(b.status), "Failed");
  // Durable, not only in memory.
  auto rows = store_->ListActionExecutions("blocked", blocked);
  ASSERT_TRUE(rows.ok());
  for (const auto& r : *rows) {
    if (r.action == "Build") {
      EXPECT_EQ(r.status, "Failed");
    }
  }

  core::Execution a = Exec("approve", approve);
  auto approval = RunsOf(a, "Gatekeeper", "Approve");
  ASSERT_EQ(approval.size(), 1u);
  EXPECT_EQ(S(approval[0].status), "InProgress");
  EXPECT_EQ(approval[0].token, token);
  EXPECT_EQ(S(a.status), "InProgress");

  // Both carry on: the interrupted stage is retryable, the approval answerable.
  Open("build");
  auto plan = engine_->RetryStage("blocked", "Build", blocked, core::RetryMode::kFailedActions);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(S(WaitEnded("blocked", blocked).status), "Succeeded");
  auto approved =
      engine_->PutApproval("approve", "Gatekeeper", "Approve", token, true, "ok", "tester");
  ASSERT_TRUE(approved.ok()) << approved.status().ToString();
  EXPECT_EQ(S(WaitEnded("approve", approve).status), "Succeeded");
}

TEST_F(EngineTest, RunsAreRowsSoTheExecutionDocumentStaysSmallAcrossRetries) {
  StartEngine();
  Create(BuildPipeline("p", {"exit 3"}));
  const std::string id = Start("p");
  WaitIdle();
  auto doc_size = [&]() -> size_t {
    auto rows = store_->ListExecutions("p");
    if (!rows.ok() || rows->size() != 1) {
      ADD_FAILURE() << "expected one execution row";
      return 0;
    }
    EXPECT_FALSE(rows->front().doc.contains("runs")) << rows->front().doc.dump();
    return rows->front().doc.dump().size();
  };
  const size_t after_first = doc_size();
  constexpr int kRetries = 25;
  for (int i = 0; i < kRetries; ++i) {
    auto plan = engine_->RetryStage("p", "Build", id, core::RetryMode::kFailedActions);
    ASSERT_TRUE(plan.ok()) << "retry " << i << ": " << plan.status().ToString();
    WaitIdle();
  }
  const size_t after_retries = doc_size();
  EXPECT_LE(after_retries, after_first + 32) << "the document grows with every attempt";
  EXPECT_LT(after_retries, 4096u);
  auto rows = store_->ListActionExecutions("p", id);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 1u + 1u + kRetries);  // Src, then every Build attempt.
  // Reloading puts the rows back into the execution.
  Restart(false);
  core::Execution e = Exec("p", id);
  auto build = RunsOf(e, "Build", "Build");
  ASSERT_EQ(build.size(), 1u + kRetries);
  for (int i = 0; i <= kRetries; ++i) EXPECT_EQ(build[i].stage_attempt, i);
  EXPECT_EQ(e.FindStageRun("Build")->latest.at("Build"), build.back().id);
}

// --- UpdatePipeline ---------------------------------------------------------------

TEST_F(EngineTest, UpdateCancelsRunningExecutionAfterItsActionCompletes) {
  StartEngine();
  json v1 = Pipeline("p", {Stage("Source", {DirSource(src_)}),
                           Stage("Build", {Commands("Build", {Gate("build")})}),
                           Stage("After", {Commands("After", {"true"})})});
  Create(v1);
  const std::string id = Start("p");
  WaitGateReached("build");

  json v2 = v1;
  v2["stages"][2]["actions"][0]["commands"] = {"echo v2"};
  auto rec = engine_->UpdatePipeline(v2);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->version, 2);
  core::Execution running = Exec("p", id);
  EXPECT_EQ(S(running.status), "InProgress");  // Rule 69: the running action finishes first.
  EXPECT_TRUE(running.cancel_requested);

  Open("build");
  core::Execution e = WaitEnded("p", id);
  EXPECT_EQ(S(e.status), "Cancelled") << e.status_summary;
  auto build = RunsOf(e, "Build", "Build");
  ASSERT_EQ(build.size(), 1u);
  EXPECT_EQ(S(build[0].status), "Succeeded");
  EXPECT_EQ(S(e.FindStageRun("Build")->status), "Cancelled");
  EXPECT_TRUE(RunsOf(e, "After", "After").empty());
  EXPECT_EQ(engine_->PlanRetry("p", "Build", id, core::RetryMode::kAllActions).status().wire_name(),
            "StageNotRetryableException");
  // The next execution runs version 2.
  const std::string next = Start("p");
  core::Execution n = WaitEnded("p", next);
  EXPECT_EQ(S(n.status), "Succeeded");
  EXPECT_EQ(n.pipeline_version, 2);
}

// --- StartExecution idempotency ------------------------------------------------------

TEST_F(EngineTest, RepeatedClientRequestTokenReturnsTheFirstExecution) {
  StartEngine();
  Create(BuildPipeline("p", {"true"}));
  const std::string first = Start("p", "token-1");
  const std::string again = Start("p", "token-1");
  EXPECT_EQ(again, first);
  const std::string other = Start("p", "token-2");
  EXPECT_NE(other, first);
  WaitIdle();
  EXPECT_EQ(Snap("p").state.executions.size(), 2u);
  Restart();
  EXPECT_EQ(Start("p", "token-1"), first);  // Remembered across a restart.
  EXPECT_EQ(Snap("p").state.executions.size(), 2u);
}

// The token must be recorded in the same transaction as the execution it
// names (design.md: one transaction per decision): if the start is not
// committed, a retry of the same request must not get an id that never existed.
TEST_F(EngineTest, ClientRequestTokenOfAStartThatFailedToCommitIsNotConsumed) {
  faulty_ = std::make_unique<FaultyStore>(*store_);
  engine_ = std::make_unique<Engine>(*faulty_, clock_, options_);
  Create(BuildPipeline("p", {"true"}));
  faulty_->fail_save_batch = true;
  auto failed = engine_->StartExecution("p", "token-1", "tester");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
  faulty_->fail_save_batch = false;

  auto retried = engine_->StartExecution("p", "token-1", "tester");
  ASSERT_TRUE(retried.ok()) << retried.status().ToString();
  WaitIdle();
  Snapshot s = Snap("p");
  const core::Execution* e = FindExecution(s, *retried);
  ASSERT_NE(e, nullptr) << "StartExecution returned execution " << *retried
                        << " for the repeated token, but no such execution exists ("
                        << s.state.executions.size() << " execution(s))";
  EXPECT_EQ(S(e->status), "Succeeded");
}

// DeletePipeline removes the pipeline "with its history"; a recreated pipeline
// of the same name is a new pipeline, so an old token must not name an
// execution of the deleted one.
TEST_F(EngineTest, ClientRequestTokenDoesNotOutliveADeletedPipeline) {
  StartEngine();
  Create(BuildPipeline("p", {"true"}));
  const std::string old_id = Start("p", "token-1");
  WaitIdle();
  ASSERT_TRUE(engine_->DeletePipeline("p").ok());
  Create(BuildPipeline("p", {"true"}));
  auto id = engine_->StartExecution("p", "token-1", "tester");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_NE(*id, old_id) << "the token of the deleted pipeline's execution was reused";
  WaitIdle();
  Snapshot s = Snap("p");
  EXPECT_NE(FindExecution(s, *id), nullptr)
      << "StartExecution returned " << *id << ", which is not an execution of the pipeline";
}

// --- Transitions and approvals --------------------------------------------------------

TEST_F(EngineTest, DisabledTransitionHoldsExecutionUntilEnabled) {
  StartEngine();
  Create(BuildPipeline("p", {"true"}));
  ASSERT_TRUE(engine_->SetTransition("p", "Build", false, "code freeze", "alice").ok());
  const std::string id = Start("p");
  WaitIdle();
  Snapshot s = Snap("p");
  const core::Execution* e = FindExecution(s, id);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(S(e->status), "InProgress");
  EXPECT_FALSE(e->in_stage);
  EXPECT_EQ(e->stage_index, 1);
  EXPECT_TRUE(RunsOf(*e, "Build", "Build").empty());
  const core::TransitionState& t = s.state.transitions.at("Build");
  EXPECT_FALSE(t.enabled);
  EXPECT_EQ(t.disabled_reason, "code freeze");
  EXPECT_EQ(t.last_changed_by, "alice");
  EXPECT_EQ(t.last_changed_at, clock_.Now());

  EXPECT_EQ(engine_->SetTransition("p", "NoSuchStage", false, "x", "alice").wire_name(),
            "StageNotFoundException");
  ASSERT_TRUE(engine_->SetTransition("p", "Build", true, "", "alice").ok());
  EXPECT_EQ(S(WaitEnded("p", id).status), "Succeeded");
}

class ApprovalTest : public EngineTest {
 protected:
  // Src -> Gatekeeper (Approve) -> Build (true). Returns the execution and the token.
  std::pair<std::string, std::string> StartAwaitingApproval() {
    StartEngine();
    Create(Pipeline("p",
                    {Stage("Source", {DirSource(src_)}), Stage("Gatekeeper", {Approval("Approve")}),
                     Stage("Build", {Commands("Build", {"true"})})}));
    const std::string id = Start("p");
    WaitIdle();
    auto runs = RunsOf(Exec("p", id), "Gatekeeper", "Approve");
    EXPECT_EQ(runs.size(), 1u);
    if (runs.empty()) return {id, ""};
    EXPECT_EQ(S(runs[0].status), "InProgress");
    EXPECT_FALSE(runs[0].token.empty());
    return {id, runs[0].token};
  }
};

TEST_F(ApprovalTest, ApproveLetsTheExecutionContinue) {
  auto [id, token] = StartAwaitingApproval();
  clock_.Advance(3);
  auto at = engine_->PutApproval("p", "Gatekeeper", "Approve", token, true, "looks good", "bob");
  ASSERT_TRUE(at.ok()) << at.status().ToString();
  EXPECT_EQ(*at, clock_.Now());
  core::Execution e = WaitEnded("p", id);
  EXPECT_EQ(S(e.status), "Succeeded");
  auto approval = RunsOf(e, "Gatekeeper", "Approve").at(0);
  EXPECT_EQ(S(approval.status), "Succeeded");
  EXPECT_EQ(approval.summary, "looks good");
  EXPECT_EQ(approval.updated_by, "bob");
  EXPECT_TRUE(approval.token.empty());
  EXPECT_EQ(RunsOf(e, "Build", "Build").size(), 1u);
  // Answered once only.
  EXPECT_EQ(engine_->PutApproval("p", "Gatekeeper", "Approve", token, true, "", "bob")
                .status()
                .wire_name(),
            "ApprovalAlreadyCompletedException");
}

TEST_F(ApprovalTest, RejectFailsTheStage) {
  auto [id, token] = StartAwaitingApproval();
  ASSERT_TRUE(
      engine_->PutApproval("p", "Gatekeeper", "Approve", token, false, "not today", "bob").ok());
  core::Execution e = WaitEnded("p", id);
  EXPECT_EQ(S(e.status), "Failed");
  auto approval = RunsOf(e, "Gatekeeper", "Approve").at(0);
  EXPECT_EQ(S(approval.status), "Failed");
  EXPECT_EQ(approval.error_message, "Rejected by bob: not today");
  EXPECT_TRUE(RunsOf(e, "Build", "Build").empty());
}

TEST_F(ApprovalTest, WrongTokenIsInvalidApprovalTokenAndChangesNothing) {
  auto [id, token] = StartAwaitingApproval();
  auto r = engine_->PutApproval("p", "Gatekeeper", "Approve", "not-the-token", true, "", "bob");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().wire_name(), "InvalidApprovalTokenException");
  EXPECT_EQ(engine_->PutApproval("p", "Gatekeeper", "Nobody", token, true, "", "bob")
                .status()
                .wire_name(),
            "ActionNotFoundException");
  auto approval = RunsOf(Exec("p", id), "Gatekeeper", "Approve").at(0);
  EXPECT_EQ(S(approval.status), "InProgress");
  EXPECT_EQ(approval.token, token);
}

TEST_F(ApprovalTest, ApprovalFailsWhenTheClockPassesItsTimeout) {
  options_.approval_timeout_seconds = 100;
  auto [id, token] = StartAwaitingApproval();
  ASSERT_TRUE(engine_->Recover().ok());  // Starts the ticker.
  clock_.Advance(101);
  core::Execution e = WaitEnded("p", id);
  EXPECT_EQ(S(e.status), "Failed");
  auto approval = RunsOf(e, "Gatekeeper", "Approve").at(0);
  EXPECT_EQ(approval.error_message, "The approval timed out without a response.");
  EXPECT_TRUE(approval.token.empty());
}

// --- Custom action types -----------------------------------------------------------------

TEST_F(EngineTest, CustomActionTypeIsCreatedListedFoundAndDeleted) {
  StartEngine();
  auto t = engine_->CreateCustomActionType(
      CustomTypeInput("MyWorker", json::array({Property("Label", true, false, true)})));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)["id"]["owner"], "Custom");
  EXPECT_EQ((*t)["id"]["provider"], "MyWorker");
  EXPECT_EQ((*t)["actionConfigurationProperties"][0]["name"], "Label");
  EXPECT_TRUE(engine_->ActionTypeKnown(BuildType("MyWorker")));
  ASSERT_EQ(engine_->CustomActionTypes().size(), 1u);
  EXPECT_TRUE(engine_->FindCustomActionType(BuildType("MyWorker")).has_value());

  ASSERT_TRUE(engine_->DeleteCustomActionType(BuildType("MyWorker")).ok());
  EXPECT_TRUE(engine_->CustomActionTypes().empty());
  EXPECT_FALSE(engine_->FindCustomActionType(BuildType("MyWorker")).has_value());
  EXPECT_FALSE(engine_->ActionTypeKnown(BuildType("MyWorker")));
  EXPECT_EQ(engine_->DeleteCustomActionType(BuildType("MyWorker")).wire_name(),
            "ActionTypeNotFoundException");
  EXPECT_EQ(engine_->DeleteCustomActionType(BuildType("NeverMade")).wire_name(),
            "ActionTypeNotFoundException");
}

TEST_F(EngineTest, DuplicateCustomActionTypeIsRefused) {
  StartEngine();
  ASSERT_TRUE(engine_->CreateCustomActionType(CustomTypeInput("MyWorker", json::array())).ok());
  auto again = engine_->CreateCustomActionType(CustomTypeInput("MyWorker", json::array()));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().wire_name(), "ValidationException");
  EXPECT_NE(again.status().message().find("already exists"), std::string::npos);
  // Another version or category is another type.
  json v2 = CustomTypeInput("MyWorker", json::array());
  v2["version"] = "2";
  EXPECT_TRUE(engine_->CreateCustomActionType(v2).ok());
  EXPECT_TRUE(
      engine_->CreateCustomActionType(CustomTypeInput("MyWorker", json::array(), "Test")).ok());
}

TEST_F(EngineTest, CustomActionTypesBeyondTheLimitAreRefused) {
  options_.max_custom_action_types = 2;
  StartEngine();
  ASSERT_TRUE(engine_->CreateCustomActionType(CustomTypeInput("A", json::array())).ok());
  ASSERT_TRUE(engine_->CreateCustomActionType(CustomTypeInput("B", json::array())).ok());
  auto third = engine_->CreateCustomActionType(CustomTypeInput("C", json::array()));
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().wire_name(), "LimitExceededException");
  EXPECT_EQ(third.status().code(), StatusCode::kResourceExhausted);
  // Deleted types no longer count.
  ASSERT_TRUE(engine_->DeleteCustomActionType(BuildType("A")).ok());
  EXPECT_TRUE(engine_->CreateCustomActionType(CustomTypeInput("C", json::array())).ok());
}

TEST_F(EngineTest, DeletedCustomActionTypeCannotBeCreatedAgainEvenAfterRestart) {
  StartEngine();
  ASSERT_TRUE(engine_->CreateCustomActionType(CustomTypeInput("Old", json::array())).ok());
  ASSERT_TRUE(engine_->CreateCustomActionType(CustomTypeInput("Kept", json::array())).ok());
  ASSERT_TRUE(engine_->DeleteCustomActionType(BuildType("Old")).ok());
  auto again = engine_->CreateCustomActionType(CustomTypeInput("Old", json::array()));
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("deleted"), std::string::npos)
      << again.status().message();
  Restart();
  EXPECT_FALSE(engine_->CreateCustomActionType(CustomTypeInput("Old", json::array())).ok());
  EXPECT_TRUE(engine_->FindCustomActionType(BuildType("Kept")).has_value());
  EXPECT_FALSE(engine_->FindCustomActionType(BuildType("Old")).has_value());
}

TEST_F(EngineTest, QueryablePropertyMustBeRequiredNotSecretAndAtMostOne) {
  StartEngine();
  auto optional = engine_->CreateCustomActionType(
      CustomTypeInput("A", json::array({Property("Q", false, false, true)})));
  EXPECT_EQ(optional.status().wire_name(), "ValidationException");
  auto secret = engine_->CreateCustomActionType(
      CustomTypeInput("B", json::array({Property("Q", true, true, true)})));
  EXPECT_EQ(secret.status().wire_name(), "ValidationException");
  auto two = engine_->CreateCustomActionType(CustomTypeInput(
      "C", json::array({Property("Q1", true, false, true), Property("Q2", true, false, true)})));
  EXPECT_EQ(two.status().wire_name(), "ValidationException");
  EXPECT_NE(two.status().message().find("at most one queryable"), std::string::npos);
  EXPECT_TRUE(engine_->CustomActionTypes().empty());  // Nothing half-created.
  EXPECT_TRUE(engine_
                  ->CreateCustomActionType(
                      CustomTypeInput("D", json::array({Property("Q", true, false, true)})))
                  .ok());
}

// --- Secrets -------------------------------------------------------------------------------

TEST_F(EngineTest, SecretPropertiesAreMaskedAndAMaskedValueIsKeptOnUpdate) {
  StartEngine();
  ASSERT_TRUE(engine_
                  ->CreateCustomActionType(
                      CustomTypeInput("Vault",
                                      json::array({Property("Token", true, true, false),
                                                   Property("Label", false, false, false)}),
                                      "Deploy"))
                  .ok());
  json decl = Pipeline(
      "p", {Stage("Source", {DirSource(src_)}),
            Stage("Ship",
                  {Custom("Ship", "Vault", {{"Token", "s3cr3t"}, {"Label", "prod"}}, "Deploy")})});
  Create(decl);
  json masked = engine_->MaskSecrets(Snap("p").record.declaration);
  const json& config = masked["stages"][1]["actions"][0]["configuration"];
  EXPECT_EQ(config["Token"], "****");
  EXPECT_EQ(config["Label"], "prod");

  // A client sends back what it read, with one change.
  json update = masked;
  update["stages"][1]["actions"][0]["configuration"]["Label"] = "staging";
  auto rec = engine_->UpdatePipeline(update);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  auto stored = store_->GetPipeline("p", 2);
  ASSERT_TRUE(stored.ok());
  const json& kept = stored->declaration["stages"][1]["actions"][0]["configuration"];
  EXPECT_EQ(kept["Token"], "s3cr3t");
  EXPECT_EQ(kept["Label"], "staging");
  // The worker gets the real value.
  Start("p");
  Job job = PollOne({"Deploy", "Custom", "Vault", "1"});
  EXPECT_EQ(job.configuration["Token"], "s3cr3t");
  EXPECT_EQ(job.configuration["Label"], "staging");
}

// --- Jobs ------------------------------------------------------------------------------------

TEST_F(EngineTest, CustomActionQueuesAJobThatIsHandedOutOnceWithANonce) {
  StartEngine();
  CreateJobPipeline("p");
  const std::string id = Start("p");
  WaitIdle();
  core::Execution e = Exec("p", id);
  auto runs = RunsOf(e, "Work", "Job");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(S(runs[0].status), "InProgress");
  auto stored = store_->ListKv("job/");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ(json::parse(stored->front().second)["status"], "Queued");

  Job job = PollOne(BuildType("MyWorker"));
  EXPECT_EQ(core::Name(job.status), "Dispatched");
  EXPECT_FALSE(job.nonce.empty());
  EXPECT_EQ(job.run_id, runs[0].id);
  EXPECT_EQ(job.execution_id, id);
  EXPECT_EQ(job.configuration["Label"], "a");
  ASSERT_EQ(job.inputs.size(), 1u);
  EXPECT_EQ(job.inputs[0].first, "SourceOut");
  EXPECT_EQ(job.inputs[0].second, e.artifacts.at("SourceOut"));
  json data = engine_->JobDataJson(job);
  EXPECT_EQ(data["pipelineContext"]["pipelineExecutionId"], id);
  EXPECT_FALSE(data.contains("continuationToken"));

  auto second = engine_->PollForJobs(BuildType("MyWorker"), 10, {}, 0);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->empty());
}

TEST_F(EngineTest, PollForJobsServesOnlyJobsMatchingTheQuery) {
  StartEngine();
  CreateJobPipeline("p");
  Start("p");
  WaitIdle();
  auto other = engine_->PollForJobs(BuildType("MyWorker"), 10, {{"Label", "b"}}, 0);
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->empty());
  auto mine = engine_->PollForJobs(BuildType("MyWorker"), 10, {{"Label", "a"}}, 0);
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(mine->size(), 1u);
  EXPECT_EQ(engine_->PollForJobs(BuildType("Unknown"), 1, {}, 0).status().wire_name(),
            "ActionTypeNotFoundException");
  // Built-in Commands actions run locally here: no jobs for them.
  EXPECT_FALSE(engine_->PollForJobs({"Build", "AWS", "Commands", "1"}, 1, {}, 0).ok());
}

TEST_F(EngineTest, AcknowledgeWithAWrongNonceIsInvalidNonce) {
  StartEngine();
  CreateJobPipeline("p");
  Start("p");
  Job job = PollOne(BuildType("MyWorker"));
  auto wrong = engine_->AcknowledgeJob(job.id, "0000");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().wire_name(), "InvalidNonceException");
  EXPECT_EQ(core::Name(engine_->GetJob(job.id)->status), "Dispatched");
  EXPECT_EQ(engine_->AcknowledgeJob("no-such-job", job.nonce).status().wire_name(),
            "JobNotFoundException");
  auto right = engine_->AcknowledgeJob(job.id, job.nonce);
  ASSERT_TRUE(right.ok()) << right.status().ToString();
  EXPECT_EQ(*right, "InProgress");
  EXPECT_EQ(core::Name(engine_->GetJob(job.id)->status), "InProgress");
}

TEST_F(EngineTest, JobResultBeforeAcknowledgeIsInvalidJobState) {
  StartEngine();
  CreateJobPipeline("p");
  const std::string id = Start("p");
  Job job = PollOne(BuildType("MyWorker"));
  Status s = engine_->PutJobSuccess(job.id, JobSuccess{});
  EXPECT_EQ(s.wire_name(), "InvalidJobStateException");
  EXPECT_EQ(engine_->PutJobFailure(job.id, "JobFailed", "x", "").wire_name(),
            "InvalidJobStateException");
  EXPECT_EQ(S(RunsOf(Exec("p", id), "Work", "Job").at(0).status), "InProgress");
}

TEST_F(EngineTest, ContinuationTokenKeepsActionInProgressAndQueuesAFollowUpJob) {
  StartEngine();
  CreateJobPipeline("p");
  const std::string id = Start("p");
  Job first = PollOne(BuildType("MyWorker"));
  ASSERT_TRUE(engine_->AcknowledgeJob(first.id, first.nonce).ok());
  JobSuccess progress;
  progress.continuation_token = "page-2";
  progress.percent_complete = 40;
  progress.summary = "halfway";
  progress.external_id = "ext-1";
  Status s = engine_->PutJobSuccess(first.id, progress);
  ASSERT_TRUE(s.ok()) << s.ToString();

  core::Execution e = Exec("p", id);
  auto runs = RunsOf(e, "Work", "Job");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(S(runs[0].status), "InProgress");
  EXPECT_EQ(runs[0].percent_complete, 40);
  EXPECT_EQ(runs[0].summary, "halfway");
  EXPECT_EQ(runs[0].external_id, "ext-1");
  EXPECT_EQ(S(e.status), "InProgress");
  EXPECT_EQ(core::Name(engine_->GetJob(first.id)->status), "Succeeded");
  // Progress is durable.
  auto rows = store_->ListActionExecutions("p", id);
  ASSERT_TRUE(rows.ok());
  for (const auto& r : *rows) {
    if (r.action == "Job") {
      EXPECT_EQ(r.doc["percent_complete"], 40);
    }
  }

  Job follow = PollOne(BuildType("MyWorker"));
  EXPECT_NE(follow.id, first.id);
  EXPECT_EQ(follow.continuation_token, "page-2");
  EXPECT_EQ(follow.run_id, runs[0].id);
  EXPECT_EQ(engine_->JobDataJson(follow)["continuationToken"], "page-2");
  ASSERT_TRUE(engine_->AcknowledgeJob(follow.id, follow.nonce).ok());
  JobSuccess done;
  done.summary = "all pages";
  ASSERT_TRUE(engine_->PutJobSuccess(follow.id, done).ok());

  e = WaitEnded("p", id);
  EXPECT_EQ(S(e.status), "Succeeded");
  runs = RunsOf(e, "Work", "Job");
  ASSERT_EQ(runs.size(), 1u);  // One action execution throughout.
  EXPECT_EQ(S(runs[0].status), "Succeeded");
  EXPECT_EQ(runs[0].summary, "all pages");
  EXPECT_EQ(engine_->PutJobSuccess(follow.id, done).wire_name(), "InvalidJobStateException");
}

TEST_F(EngineTest, PutJobFailureFailsTheActionAndTheStageIsRetryable) {
  StartEngine();
  CreateJobPipeline("p");
  const std::string id = Start("p");
  Job job = PollOne(BuildType("MyWorker"));
  ASSERT_TRUE(engine_->AcknowledgeJob(job.id, job.nonce).ok());
  Status s = engine_->PutJobFailure(job.id, "ConfigurationError", "bad label", "ext-9");
  ASSERT_TRUE(s.ok()) << s.ToString();
  core::Execution e = WaitEnded("p", id);
  EXPECT_EQ(S(e.status), "Failed");
  auto run = RunsOf(e, "Work", "Job").at(0);
  EXPECT_EQ(S(run.status), "Failed");
  EXPECT_EQ(run.error_code, "ConfigurationError");
  EXPECT_EQ(run.error_message, "bad label");
  EXPECT_EQ(run.external_id, "ext-9");
  EXPECT_EQ(core::Name(engine_->GetJob(job.id)->status), "Failed");

  // The retry queues a new job for a new run.
  ASSERT_TRUE(engine_->RetryStage("p", "Work", id, core::RetryMode::kFailedActions).ok());
  Job again = PollOne(BuildType("MyWorker"));
  EXPECT_NE(again.id, job.id);
  EXPECT_NE(again.run_id, job.run_id);
}

TEST_F(EngineTest, AcknowledgedJobWithoutAResultTimesOutAndFailsTheAction) {
  options_.job_timeout_seconds = 30;
  StartEngine();
  ASSERT_TRUE(engine_->Recover().ok());  // Starts the ticker.
  CreateJobPipeline("p");
  const std::string id = Start("p");
  Job job = PollOne(BuildType("MyWorker"));
  ASSERT_TRUE(engine_->AcknowledgeJob(job.id, job.nonce).ok());
  clock_.Advance(31);
  core::Execution e = WaitEnded("p", id);
  EXPECT_EQ(S(e.status), "Failed");
  auto run = RunsOf(e, "Work", "Job").at(0);
  EXPECT_EQ(S(run.status), "Failed");
  EXPECT_NE(run.error_message.find("no result within 30 seconds"), std::string::npos)
      << run.error_message;
  EXPECT_EQ(core::Name(engine_->GetJob(job.id)->status), "TimedOut");
  EXPECT_EQ(engine_->PutJobSuccess(job.id, JobSuccess{}).wire_name(), "InvalidJobStateException");
  EXPECT_TRUE(engine_->PlanRetry("p", "Work", id, core::RetryMode::kFailedActions).ok());
}

TEST_F(EngineTest, DispatchedJobNotAcknowledgedGoesBackToTheQueueWithANewNonce) {
  options_.job_dispatch_timeout_seconds = 60;
  StartEngine();
  ASSERT_TRUE(engine_->Recover().ok());
  CreateJobPipeline("p");
  Start("p");
  Job job = PollOne(BuildType("MyWorker"));
  clock_.Advance(61);
  ASSERT_TRUE(WaitFor([&] { return engine_->GetJob(job.id)->status == core::JobStatus::kQueued; }));
  Job again = PollOne(BuildType("MyWorker"));
  EXPECT_EQ(again.id, job.id);
  EXPECT_NE(again.nonce, job.nonce);
  EXPECT_EQ(engine_->AcknowledgeJob(job.id, job.nonce).status().wire_name(),
            "InvalidNonceException");
  EXPECT_TRUE(engine_->AcknowledgeJob(again.id, again.nonce).ok());
}

// Src -> Deploy/AWS/CloudFormation/1: a type the action type table runs on workers.
json CloudFormationPipeline(const std::string& name, const std::string& src) {
  return Pipeline(name,
                  {Stage("Source", {DirSource(src)}),
                   Stage("Deploy", {{{"name", "Stack"},
                                     {"actionTypeId", TypeId("Deploy", "AWS", "CloudFormation")},
                                     {"configuration",
                                      {{"ActionMode", "CREATE_UPDATE"},
                                       {"StackName", "my-stack"},
                                       {"TemplatePath", "SourceOut::template.yml"}}},
                                     {"inputArtifacts", {{{"name", "SourceOut"}}}}}})});
}

// An action that runs here (a built-in executor) has no job: the reads made
// while it runs look up no job document. With several servers that lookup
// read every job document, under the engine mutex, and left the answer of a
// server that does not drive the pipeline uncacheable. A job's run waiting
// for a worker is still looked up and gets its summary.
TEST_F(EngineTest, ReadsWhileABuiltInActionRunsLookUpNoJobs) {
  StartEngine();
  Create(BuildPipeline("p", {Gate("build")}));
  const std::string id = Start("p");
  WaitGateReached("build");
  const uint64_t before = Engine::JobLookupsOnThisThread();
  auto snap = engine_->GetSnapshot("p");
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  ASSERT_TRUE(engine_->ExecutionSnapshot("p", id).ok());
  ASSERT_TRUE(engine_->HistoryPage("p", 10, "", nullptr).ok());
  EXPECT_EQ(Engine::JobLookupsOnThisThread(), before);
  ASSERT_EQ(RunsOf(snap->state.executions.front(), "Build", "Build").size(), 1u);
  EXPECT_EQ(S(RunsOf(snap->state.executions.front(), "Build", "Build")[0].status), "InProgress");
  Open("build");
  EXPECT_EQ(S(WaitEnded("p", id).status), "Succeeded");

  Create(CloudFormationPipeline("cfn", src_));
  const std::string cfn = Start("cfn");
  ASSERT_TRUE(WaitFor([&] { return !RunsOf(Exec("cfn", cfn), "Deploy", "Stack").empty(); }));
  const uint64_t waiting = Engine::JobLookupsOnThisThread();
  auto job_snap = engine_->ExecutionSnapshot("cfn", cfn);
  ASSERT_TRUE(job_snap.ok()) << job_snap.status().ToString();
  EXPECT_GT(Engine::JobLookupsOnThisThread(), waiting);
  EXPECT_EQ(RunsOf(job_snap->state.executions.front(), "Deploy", "Stack").back().summary,
            kStackWaitsForAWorker);
}

TEST_F(EngineTest, AwsOwnedWorkerTypeWaitsAsAJobThatSaysWhatToRun) {
  StartEngine();
  Create(CloudFormationPipeline("p", src_));
  const std::string id = Start("p");
  const core::ActionTypeId cfn{"Deploy", "AWS", "CloudFormation", "1"};
  auto summary = [&] { return StackSummary(id); };
  ASSERT_TRUE(WaitFor([&] { return !summary().empty(); }));
  EXPECT_EQ(summary(), kStackWaitsForAWorker);
  // Built-in and unknown types are not served to workers.
  EXPECT_EQ(engine_->PollForJobs({"Deploy", "AWS", "Directory", "1"}, 1, {}, 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->PollForJobs({"Deploy", "AWS", "Nope", "1"}, 1, {}, 0).status().wire_name(),
            "ActionTypeNotFoundException");
  Job job = PollOne(cfn);
  EXPECT_EQ(job.type.owner, "AWS");
  EXPECT_EQ(job.configuration.at("StackName"), "my-stack");
  EXPECT_EQ(engine_->JobDataJson(job)["actionTypeId"]["owner"], "AWS");
  ASSERT_TRUE(engine_->AcknowledgeJob(job.id, job.nonce).ok());
  EXPECT_EQ(summary(), "");  // Taken: the summary is the worker's to set.
  JobSuccess done;
  done.summary = "stack updated";
  ASSERT_TRUE(engine_->PutJobSuccess(job.id, done).ok());
  core::Execution e = WaitEnded("p", id);
  EXPECT_EQ(S(e.status), "Succeeded") << e.status_summary;
  EXPECT_EQ(RunsOf(e, "Deploy", "Stack").back().summary, "stack updated");
}

// With several servers every look at the jobs re-reads all job documents
// (ListKv "job/"). A read only looks when a run in progress lacks a summary:
// the waiting run still says what to run, and reads of a pipeline with none
// read no job at all (before: one full read per call).
TEST_F(EngineTest, ReadsLookAtJobsOnlyForARunThatMayBeWaitingForAWorker) {
  // Leases on one SQLite file: the store drops the fences SQLite refuses.
  faulty_ = std::make_unique<FaultyStore>(*store_);
  faulty_->drop_fences = true;
  engine_ = std::make_unique<Engine>(*faulty_, clock_, options_);
  engine_->EnableLeases("s1", 10);
  Create(CloudFormationPipeline("p", src_));
  ASSERT_TRUE(engine_->AdoptPipeline("p", 1).ok());
  const std::string id = Start("p");
  auto summary = [&] { return StackSummary(id); };
  ASSERT_TRUE(WaitFor([&] { return !summary().empty(); }));
  EXPECT_EQ(summary(), kStackWaitsForAWorker);
  Job job = PollOne({"Deploy", "AWS", "CloudFormation", "1"});
  ASSERT_TRUE(engine_->AcknowledgeJob(job.id, job.nonce).ok());
  ASSERT_TRUE(engine_->PutJobSuccess(job.id, {}).ok());
  EXPECT_EQ(S(WaitEnded("p", id).status), "Succeeded");
  const int before = faulty_->job_lists.load();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(engine_->GetSnapshot("p", true).ok());
  // The ticker may look once meanwhile; the reads themselves never.
  EXPECT_LT(faulty_->job_lists.load() - before, 3) << "reads re-read every job document";
}

TEST_F(EngineTest, JobNoWorkerTakesWithinTheWorkerWaitFailsItsAction) {
  options_.worker_wait_seconds = 100;
  StartEngine();
  ASSERT_TRUE(engine_->Recover().ok());  // Starts the ticker.
  Create(CloudFormationPipeline("p", src_));
  const std::string id = Start("p");
  ASSERT_TRUE(WaitFor([&] { return !RunsOf(Exec("p", id), "Deploy", "Stack").empty(); }));
  clock_.Advance(99);
  engine_->TickForTest();
  EXPECT_TRUE(Exec("p", id).Active());
  clock_.Advance(2);
  core::Execution e = WaitEnded("p", id);
  EXPECT_EQ(S(e.status), "Failed");
  const auto run = RunsOf(e, "Deploy", "Stack").back();
  EXPECT_NE(run.error_message.find("within 100 seconds (serve --worker-wait-timeout). Waiting for "
                                   "a worker: run pipewright worker --action-type "
                                   "Deploy/AWS/CloudFormation/1 -- <program>"),
            std::string::npos)
      << run.error_message;
  EXPECT_TRUE(engine_->PlanRetry("p", "Deploy", id, core::RetryMode::kFailedActions).ok());
}

// DeletePipeline "abandons running work": a queued job of a deleted pipeline
// must not be handed to a worker any more.
TEST_F(EngineTest, DeletePipelineWithdrawsItsQueuedJobs) {
  StartEngine();
  CreateJobPipeline("p");
  Start("p");
  WaitIdle();
  auto stored = store_->ListKv("job/");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  ASSERT_TRUE(engine_->DeletePipeline("p").ok());
  auto jobs = engine_->PollForJobs(BuildType("MyWorker"), 10, {}, 0);
  ASSERT_TRUE(jobs.ok());
  EXPECT_TRUE(jobs->empty()) << "PollForJobs handed out job " << jobs->front().id
                             << " of deleted pipeline " << jobs->front().pipeline;
}

TEST_F(EngineTest, JobsSurviveARestart) {
  StartEngine();
  CreateJobPipeline("p");
  const std::string acked_exec = Start("p");
  Job acked = PollOne(BuildType("MyWorker"));
  ASSERT_TRUE(engine_->AcknowledgeJob(acked.id, acked.nonce).ok());
  // A second pipeline whose job is still queued at the restart.
  CreateJobPipeline("q");
  const std::string queued_exec = Start("q");
  WaitIdle();

  Restart();

  // Recover neither fails job runs nor creates duplicate jobs.
  EXPECT_EQ(S(RunsOf(Exec("p", acked_exec), "Work", "Job").at(0).status), "InProgress");
  EXPECT_EQ(S(RunsOf(Exec("q", queued_exec), "Work", "Job").at(0).status), "InProgress");
  auto stored = store_->ListKv("job/");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->size(), 2u);
  EXPECT_EQ(core::Name(engine_->GetJob(acked.id)->status), "InProgress");

  ASSERT_TRUE(engine_->PutJobSuccess(acked.id, JobSuccess{}).ok());
  EXPECT_EQ(S(WaitEnded("p", acked_exec).status), "Succeeded");

  Job queued = PollOne(BuildType("MyWorker"));
  EXPECT_EQ(queued.pipeline, "q");
  ASSERT_TRUE(engine_->AcknowledgeJob(queued.id, queued.nonce).ok());
  ASSERT_TRUE(engine_->PutJobSuccess(queued.id, JobSuccess{}).ok());
  EXPECT_EQ(S(WaitEnded("q", queued_exec).status), "Succeeded");
}

// --- Failure paths: no result is ever lost --------------------------------------

namespace failure {

// A launcher whose Start throws, as a buggy runner piece might.
class ThrowingLauncher final : public runner::ProcessLauncher {
 public:
  Result<runner::ProcessId> Start(
      const runner::ProcessSpec&,
      std::function<void(runner::ProcessId, const runner::ProcessExit&)>) override {
    throw std::runtime_error("launcher exploded");
  }
  void Cancel(runner::ProcessId) override {}
};

}  // namespace failure

TEST_F(EngineTest, ResultWhoseCommitFailsIsKeptPendingAndRecordedOnALaterTick) {
  faulty_ = std::make_unique<FaultyStore>(*store_);
  engine_ = std::make_unique<Engine>(*faulty_, clock_, options_);
  Create(BuildPipeline("p", {Gate("build")}));
  const std::string id = Start("p");
  WaitGateReached("build");
  faulty_->fail_save_batch = true;
  Open("build");
  ASSERT_TRUE(WaitFor([&] { return engine_->PendingResultsForTest() == 1; }))
      << "the result whose commit failed was dropped";
  // Until it is recorded the run is still running on disk: no retry, no loss.
  EXPECT_FALSE(engine_->RetryStage("p", "Build", id, core::RetryMode::kFailedActions).ok());
  faulty_->fail_save_batch = false;
  engine_->TickForTest();
  EXPECT_EQ(engine_->PendingResultsForTest(), 0u);
  core::Execution e = WaitEnded("p", id);
  EXPECT_EQ(S(e.status), "Succeeded");
  EXPECT_EQ(S(RunsOf(e, "Build", "Build").at(0).status), "Succeeded");
}

// Group commit: the results of a parallel group that end while a commit is
// in flight are decided together and share the next transaction.
class GroupCommitTest : public EngineTest {
 protected:
  static constexpr int kActions = 8;

  // Runs Build's kActions gated actions until A0's result is being committed
  // (the commit held) and the other results are queued behind it; then
  // `before_release`, then lets the commit go. Returns the execution id.
  std::string RunUntilQueued(const std::function<void()>& before_release) {
    faulty_ = std::make_unique<FaultyStore>(*store_);
    faulty_->on_commit = [this](const store::Batch& b) {
      int succeeded = 0;
      for (const auto& row : b.actions) {
        succeeded += row.stage == "Build" && row.status == "Succeeded";
      }
      std::unique_lock<std::mutex> lock(m_);
      if (succeeded > 0) succeeded_per_commit_.push_back(succeeded);
      if (hold_ && succeeded > 0) {
        held_ = true;
        cv_.notify_all();
        cv_.wait(lock, [this] { return !hold_; });
      }
    };
    engine_ = std::make_unique<Engine>(*faulty_, clock_, options_);
    std::vector<json> actions;
    for (int i = 0; i < kActions; ++i) {
      actions.push_back(Commands("A" + std::to_string(i), {Gate("a" + std::to_string(i))}));
    }
    Create(Pipeline("p", {Stage("Source", {DirSource(src_)}), Stage("Build", actions)}));
    const std::string id = Start("p");
    for (int i = 0; i < kActions; ++i) WaitGateReached("a" + std::to_string(i));
    {
      std::lock_guard<std::mutex> lock(m_);
      hold_ = true;
    }
    Open("a0");
    {
      std::unique_lock<std::mutex> lock(m_);
      EXPECT_TRUE(cv_.wait_for(lock, std::chrono::seconds(10), [this] { return held_; }))
          << "A0's result was never committed";
    }
    for (int i = 1; i < kActions; ++i) Open("a" + std::to_string(i));
    EXPECT_TRUE(WaitFor([&] { return engine_->QueuedResultsForTest() == kActions - 1; }))
        << "the results that ended during A0's commit did not queue behind it ("
        << engine_->QueuedResultsForTest() << " queued)";
    before_release();
    {
      std::lock_guard<std::mutex> lock(m_);
      hold_ = false;
    }
    cv_.notify_all();
    return id;
  }

  std::vector<int> SucceededPerCommit() {
    std::lock_guard<std::mutex> lock(m_);
    return succeeded_per_commit_;
  }

  std::mutex m_;
  std::condition_variable cv_;
  bool hold_ = false;
  bool held_ = false;
  std::vector<int> succeeded_per_commit_;  // Build's runs recorded Succeeded, per commit.
};

TEST_F(GroupCommitTest, ResultsThatEndDuringACommitShareTheNextOne) {
  const std::string id = RunUntilQueued([] {});
  core::Execution e = WaitEnded("p", id);
  EXPECT_EQ(S(e.status), "Succeeded");
  for (int i = 0; i < kActions; ++i) {
    EXPECT_EQ(S(RunsOf(e, "Build", "A" + std::to_string(i)).at(0).status), "Succeeded") << i;
  }
  // A0 alone, then the other seven in one transaction (before: one each).
  EXPECT_EQ(SucceededPerCommit(), (std::vector<int>{1, kActions - 1}));
  WaitIdle();
  EXPECT_EQ(engine_->QueuedResultsForTest(), 0u);
}

TEST_F(GroupCommitTest, ResultsOfAGroupCommitThatFailsStayPendingAndAreRecordedLater) {
  const std::string id = RunUntilQueued([this] { faulty_->fail_save_batch = true; });
  ASSERT_TRUE(WaitFor([&] { return engine_->PendingResultsForTest() == kActions; }))
      << engine_->PendingResultsForTest() << " of " << kActions << " results kept pending";
  EXPECT_EQ(S(Exec("p", id).status), "InProgress");
  faulty_->fail_save_batch = false;
  engine_->TickForTest();
  EXPECT_EQ(engine_->PendingResultsForTest(), 0u);
  core::Execution e = WaitEnded("p", id);
  EXPECT_EQ(S(e.status), "Succeeded");
  for (int i = 0; i < kActions; ++i) {
    EXPECT_EQ(S(RunsOf(e, "Build", "A" + std::to_string(i)).at(0).status), "Succeeded") << i;
  }
}

TEST_F(EngineTest, UpdatePipelineThatCannotCommitChangesNothing) {
  faulty_ = std::make_unique<FaultyStore>(*store_);
  engine_ = std::make_unique<Engine>(*faulty_, clock_, options_);
  Create(BuildPipeline("p", {Gate("build")}));
  const std::string id = Start("p");
  WaitGateReached("build");
  json v2 = BuildPipeline("p", {"true", "true"});
  faulty_->fail_save_batch = true;
  auto updated = engine_->UpdatePipeline(v2);
  faulty_->fail_save_batch = false;
  ASSERT_FALSE(updated.ok()) << "UpdatePipeline said OK though nothing could be committed";
  EXPECT_EQ(updated.status().code(), StatusCode::kUnavailable);
  // Neither the version nor rule 69's cancellation happened.
  auto rec = store_->GetPipeline("p", std::nullopt);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->version, 1);
  Open("build");
  EXPECT_EQ(S(WaitEnded("p", id).status), "Succeeded");
  // Sent again, it is one transaction that does both.
  ASSERT_TRUE(engine_->UpdatePipeline(v2).ok());
  EXPECT_EQ(store_->GetPipeline("p", std::nullopt)->version, 2);
}

TEST_F(EngineTest, ExceptionInAnActionRunnerFailsTheRunWithAMessage) {
  EngineRunners runners;
  runners.launcher = std::make_unique<failure::ThrowingLauncher>();
  engine_ = std::make_unique<Engine>(*store_, clock_, options_, std::move(runners));
  ASSERT_TRUE(engine_->Recover().ok());
  Create(BuildPipeline("p", {"true"}));
  const std::string id = Start("p");
  core::Execution e = WaitEnded("p", id);
  EXPECT_EQ(S(e.status), "Failed");
  auto run = RunsOf(e, "Build", "Build").at(0);
  EXPECT_EQ(S(run.status), "Failed");
  EXPECT_NE(run.error_message.find("launcher exploded"), std::string::npos) << run.error_message;
  EXPECT_TRUE(engine_->PlanRetry("p", "Build", id, core::RetryMode::kFailedActions).ok());
}

TEST_F(EngineTest, EndedJobsAndTheirCredentialsAreRemovedAfterTheRetentionPeriod) {
  options_.job_retention_seconds = 600;
  StartEngine();
  CreateJobPipeline("p");
  const std::string id = Start("p");
  Job job = PollOne(BuildType("MyWorker"));
  ASSERT_TRUE(engine_->JobForAccessKey(job.access_key_id).has_value());
  ASSERT_TRUE(engine_->AcknowledgeJob(job.id, job.nonce).ok());
  ASSERT_TRUE(engine_->PutJobSuccess(job.id, JobSuccess{}).ok());
  EXPECT_EQ(S(WaitEnded("p", id).status), "Succeeded");
  // Ended: its credentials open nothing any more, but it is still there.
  EXPECT_FALSE(engine_->JobForAccessKey(job.access_key_id).has_value());
  engine_->TickForTest();
  EXPECT_TRUE(engine_->GetJob(job.id).ok());
  clock_.Advance(601);
  engine_->TickForTest();
  EXPECT_EQ(engine_->GetJob(job.id).status().wire_name(), "JobNotFoundException");
  auto rows = store_->ListKv("job/");
  ASSERT_TRUE(rows.ok());
  EXPECT_TRUE(rows->empty()) << rows->size() << " job document(s) left";
}

// Commit-failure injection at every commit point of a run (start, each
// action's result, each stage transition): after the store heals, the state
// is consistent and every decision is eventually taken.
TEST_F(EngineTest, CommitFailureAtEveryCommitPointIsDecidedOnceTheStoreHeals) {
  options_.start_on_create = false;
  faulty_ = std::make_unique<FaultyStore>(*store_);
  engine_ = std::make_unique<Engine>(*faulty_, clock_, options_);
  ASSERT_TRUE(engine_->Recover().ok());
  constexpr int kCommitPoints = 10;  // A run of this pipeline commits 7 times.
  for (int n = 0; n <= kCommitPoints; ++n) {
    SCOPED_TRACE("commits allowed before the failure: " + std::to_string(n));
    const std::string name = "p" + std::to_string(n);
    Create(Pipeline(name, {Stage("Source", {DirSource(src_)}),
                           Stage("Build", {Commands("A", {"true"}), Commands("B", {"true"})}),
                           Stage("Ship", {Commands("Ship", {"true"})})}));
    faulty_->fail_commits_after = n;
    auto started = engine_->StartExecution(name, "tok", "tester");
    // Let the run go as far as the allowed commits take it.
    WaitIdle();
    faulty_->fail_commits_after = -1;
    if (!started.ok()) started = engine_->StartExecution(name, "tok", "tester");
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    ASSERT_TRUE(WaitFor([&] {
      engine_->TickForTest();
      core::Execution e = Exec(name, *started);
      return !e.id.empty() && !e.Active();
    })) << "execution never ended";
    EXPECT_EQ(engine_->PendingResultsForTest(), 0u);
    core::Execution e = Exec(name, *started);
    EXPECT_EQ(S(e.status), "Succeeded") << e.status_summary;
    for (const auto& r : e.runs) {
      EXPECT_EQ(S(r.status), "Succeeded") << r.stage << "/" << r.action << ": " << r.error_message;
    }
    // What is on disk agrees with what the engine shows.
    auto rows = store_->ListActionExecutions(name, *started);
    ASSERT_TRUE(rows.ok());
    EXPECT_EQ(rows->size(), 4u);
    for (const auto& r : *rows) EXPECT_EQ(r.status, "Succeeded") << r.action;
  }
}

TEST_F(EngineTest, JobHandedOutButNotAcknowledgedIsQueuedAgainAfterARestart) {
  // The reply to PollForJobs may never have reached a worker (the server died
  // right after committing the dispatch): no waiting out the lease.
  StartEngine();
  CreateJobPipeline("p");
  Start("p");
  Job job = PollOne(BuildType("MyWorker"));
  Restart();
  auto again = engine_->PollForJobs(BuildType("MyWorker"), 10, {}, 0);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_EQ(again->size(), 1u) << "the dispatched job was not queued again";
  EXPECT_EQ(again->front().id, job.id);
  EXPECT_NE(again->front().nonce, job.nonce);
  EXPECT_EQ(engine_->AcknowledgeJob(job.id, job.nonce).status().wire_name(),
            "InvalidNonceException");
  EXPECT_TRUE(engine_->AcknowledgeJob(job.id, again->front().nonce).ok());
}

// --- StartPipelineExecution.sourceRevisions ------------------------------------

// A local Git repository made with the git program; returns the commit ids,
// oldest first, of commits writing "v1", "v2", … into f.txt on main.
std::vector<std::string> MakeGitRepo(const std::string& dir, int commits) {
  const std::string git = "git -c user.name=t -c user.email=t@example.com -C " + dir + " ";
  std::vector<std::string> ids;
  if (std::system(("git init -q -b main " + dir).c_str()) != 0) return ids;
  for (int i = 1; i <= commits; ++i) {
    std::ofstream(dir + "/f.txt") << "v" << i << "\n";
    if (std::system((git + "add f.txt && " + git + "commit -q -m v" + std::to_string(i)).c_str()) !=
        0) {
      return {};
    }
    const std::string out = dir + "/.head";
    if (std::system((git + "rev-parse HEAD > " + out).c_str()) != 0) return {};
    std::ifstream in(out);
    std::string id;
    in >> id;
    ids.push_back(id);
  }
  return ids;
}

json GitSource(const std::string& repo) {
  return {{"name", "Src"},
          {"actionTypeId", TypeId("Source", "AWS", "Git")},
          {"configuration", {{"RepositoryPath", repo}, {"BranchName", "main"}}},
          {"outputArtifacts", {{{"name", "SourceOut"}}}}};
}

TEST_F(EngineTest, InvalidSourceRevisionsAreRefusedAndStartNothing) {
  StartEngine();
  Create(Pipeline("p", {Stage("Source", {GitSource(dir_ + "/repo")}),
                        Stage("Build", {Commands("Build", {"true"})})}));
  const std::string commit(40, 'a');
  struct Case {
    std::vector<core::SourceRevisionOverride> revs;
    std::string message;
  } cases[] = {
      {{{"Build", "COMMIT_ID", commit}}, "action 'Build' is not a source action of pipeline p"},
      {{{"Src", "S3_OBJECT_KEY", "k"}}, "its revisionType is COMMIT_ID, not S3_OBJECT_KEY"},
      {{{"Src", "COMMIT_ID", commit}, {"Src", "COMMIT_ID", commit}}, "named more than once"},
  };
  for (const auto& c : cases) {
    auto id = engine_->StartExecution("p", "", "tester", "StartPipelineExecution", {}, c.revs);
    ASSERT_FALSE(id.ok()) << c.message;
    EXPECT_EQ(id.status().wire_name(), "ValidationException");
    EXPECT_NE(id.status().message().find(c.message), std::string::npos) << id.status().message();
  }
  EXPECT_TRUE(Snap("p").state.executions.empty());
}

TEST_F(EngineTest, GitSourceRunsTheChosenCommitAlsoWhenItsStageIsRetried) {
  const std::string repo = dir_ + "/repo";
  const std::vector<std::string> commits = MakeGitRepo(repo, 2);
  ASSERT_EQ(commits.size(), 2u);
  // The repository is away at first: the source fails and is retried.
  fs::rename(repo, repo + ".away");
  StartEngine();
  Create(Pipeline("p", {Stage("Source", {GitSource(repo)}),
                        Stage("Build", {Commands("Build", {"grep -qx v1 f.txt"})})}));
  std::string upper = commits[0];
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto id = engine_->StartExecution("p", "", "tester", "StartPipelineExecution", {},
                                    {{"Src", "COMMIT_ID", upper}});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  core::Execution e = WaitEnded("p", *id);
  EXPECT_EQ(S(e.status), "Failed");
  ASSERT_EQ(e.source_revisions.size(), 1u);
  EXPECT_EQ(e.source_revisions[0].value, commits[0]) << "kept in lower case";

  // Kept across a restart, and the retry runs the same (older) commit.
  fs::rename(repo + ".away", repo);
  Restart();
  EXPECT_EQ(Exec("p", *id).source_revisions, e.source_revisions);
  ASSERT_TRUE(engine_->RetryStage("p", "Source", *id, core::RetryMode::kFailedActions).ok());
  e = WaitEnded("p", *id);
  ASSERT_EQ(S(e.status), "Succeeded") << e.status_summary;
  auto src = RunsOf(e, "Source", "Src");
  ASSERT_EQ(src.size(), 2u);
  EXPECT_EQ(src[1].revision_id, commits[0]);
  EXPECT_EQ(src[1].revision_summary, "v1");

  // Without sourceRevisions the branch head runs (and fails the v1 check);
  // a commit that does not exist fails the source with a clear message.
  e = WaitEnded("p", Start("p"));
  EXPECT_EQ(RunsOf(e, "Source", "Src")[0].revision_id, commits[1]);
  auto missing = engine_->StartExecution("p", "", "tester", "StartPipelineExecution", {},
                                         {{"Src", "COMMIT_ID", std::string(40, 'b')}});
  ASSERT_TRUE(missing.ok());
  e = WaitEnded("p", *missing);
  auto failed = RunsOf(e, "Source", "Src");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].error_message, "Commit " + std::string(40, 'b') +
                                         " (sourceRevisions) does not exist in " + repo + ".");
}

// Issue 15's multi-server fix of the trigger poller (8f8a4c5), made
// deterministic: the pipeline is released while its refs are listed, on the
// poller's first look (nothing remembered: the repository was away when the
// pipeline was created). Before the fix the branch's new head became the
// baseline and the push never started anywhere.
TEST_F(EngineTest, APipelineReleasedWhileATriggeredSourceIsListedKeepsItsPush) {
  const std::string repo = dir_ + "/repo";
  const std::vector<std::string> commits = MakeGitRepo(repo, 1);
  ASSERT_EQ(commits.size(), 1u);
  fs::rename(repo, repo + ".away");
  // Leases on one SQLite file: the store drops the fences SQLite refuses.
  faulty_ = std::make_unique<FaultyStore>(*store_);
  faulty_->drop_fences = true;
  engine_ = std::make_unique<Engine>(*faulty_, clock_, options_);
  engine_->EnableLeases("s1", 10);
  json p = Pipeline(
      "p", {Stage("Source", {GitSource(repo)}), Stage("Build", {Commands("Build", {"true"})})});
  p["pipelineType"] = "V2";
  p["triggers"] = json::array(
      {{{"providerType", "CodeStarSourceConnection"},
        {"gitConfiguration",
         {{"sourceActionName", "Src"}, {"push", {{{"branches", {{"includes", {"main"}}}}}}}}}}});
  Create(p);
  ASSERT_TRUE(engine_->AdoptPipeline("p", 1).ok());
  fs::rename(repo + ".away", repo);
  core::Execution first = WaitEnded("p", Start("p"));
  ASSERT_EQ(S(first.status), "Succeeded") << first.status_summary;

  const std::string git = "git -c user.name=t -c user.email=t@example.com -C " + repo + " ";
  std::ofstream(repo + "/f.txt") << "v2\n";
  ASSERT_EQ(std::system((git + "commit -q -a -m v2").c_str()), 0);
  bool listed = false;
  engine_->PollSourcesForTest([&] {
    listed = true;
    engine_->DisownPipeline("p");
  });
  ASSERT_TRUE(listed) << "the poller did not list the triggered source";

  // The next owner (here the same engine again) sees the push and starts it.
  ASSERT_TRUE(engine_->AdoptPipeline("p", 2).ok());
  engine_->PollSourcesForTest();
  std::vector<core::Execution> all;
  ASSERT_TRUE(WaitFor([&] {
    all = Snap("p").state.executions;
    return all.size() == 2 && !all[0].Active() && !all[1].Active();
  })) << all.size()
      << " executions: the new head was taken for the baseline and never started";
  const core::Execution& second = all[0].id == first.id ? all[1] : all[0];
  EXPECT_EQ(second.trigger_type, "WebhookV2");
  EXPECT_EQ(S(second.status), "Succeeded") << second.status_summary;
  ASSERT_EQ(RunsOf(second, "Source", "Src").size(), 1u);
  EXPECT_NE(RunsOf(second, "Source", "Src")[0].revision_id, commits[0]) << "the push, not v1";
}

// With several servers, every read of a pipeline another server drives reads
// it from the store. That read (a dozen database round trips with
// PostgreSQL) happens without the engine mutex: while one is held up in the
// store, this server answers about its own pipeline, and the held read still
// returns the stored state. Before, it held the mutex throughout.
// A history page (ListPipelineExecutions, ListActionExecutions,
// ListPipelines) is read from the store without the engine mutex: while one
// page read waits in the store, the engine answers about other pipelines.
// Before, the page's documents were read and parsed under the mutex, which
// held up every pipeline's progress and, at a server that does not drive the
// pipeline, served concurrent list calls one at a time.
// A store call held in a FaultyStore hook until the test lets it go.
struct HeldCall {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  void Hold() {  // From the hook: says the call is there, then waits.
    entered.set_value();
    released.wait();
  }
  bool Entered() {
    return entered.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  }
};

// Whether `engine` answers a snapshot of `other` within 5 s while `held`
// waits in the store; lets `held` go either way.
bool AnswersMeanwhile(Engine& engine, const std::string& other, HeldCall& held) {
  auto snap =
      std::async(std::launch::async, [&] { return engine.GetSnapshot(other, true).status(); });
  const bool answered = snap.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  held.release.set_value();
  return answered && snap.get().ok();
}

TEST_F(EngineTest, AHistoryPageIsReadWithoutTheEngineMutex) {
  faulty_ = std::make_unique<FaultyStore>(*store_);
  HeldCall held;
  std::atomic<bool> hold{false};
  faulty_->on_list_page = [&](const std::string& pipeline) {
    if (pipeline == "p" && hold.exchange(false)) held.Hold();
  };
  engine_ = std::make_unique<Engine>(*faulty_, clock_, options_);
  Create(BuildPipeline("p", {"true"}));
  Create(BuildPipeline("q", {"true"}));
  const std::string id = Start("p");
  ASSERT_EQ(S(WaitEnded("p", id).status), "Succeeded");
  hold = true;
  auto page = std::async(std::launch::async, [&] {
    return engine_->HistoryPage("p", 10, "", {}, PageRuns::kFirstStage);
  });
  ASSERT_TRUE(held.Entered()) << "the page was never read from the store";
  EXPECT_TRUE(AnswersMeanwhile(*engine_, "q", held)) << "the page read held the engine";
  auto got = page.get();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->ids, (std::vector<std::string>{id}));
}

// An execution outside the working set (or one that does not exist) is read
// from the store without the engine mutex: GetPipelineExecution polled with
// an unknown id no longer holds up every pipeline at each call.
TEST_F(EngineTest, AnExecutionNotInMemoryIsReadWithoutTheEngineMutex) {
  faulty_ = std::make_unique<FaultyStore>(*store_);
  HeldCall held;
  faulty_->on_get_execution = [&](const std::string& id) {
    if (id == "no-such-execution") held.Hold();
  };
  engine_ = std::make_unique<Engine>(*faulty_, clock_, options_);
  Create(BuildPipeline("p", {"true"}));
  Create(BuildPipeline("q", {"true"}));
  const std::string id = Start("p");
  ASSERT_EQ(S(WaitEnded("p", id).status), "Succeeded");
  auto lookup = std::async(std::launch::async,
                           [&] { return engine_->ExecutionSnapshot("p", "no-such-execution"); });
  ASSERT_TRUE(held.Entered()) << "the execution was never looked for in the store";
  EXPECT_TRUE(AnswersMeanwhile(*engine_, "q", held)) << "the store read held the engine";
  auto got = lookup.get();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().wire_name(), "PipelineExecutionNotFoundException");
  // One in memory still comes without a store read, with its runs.
  auto known = engine_->ExecutionSnapshot("p", id);
  ASSERT_TRUE(known.ok()) << known.status().ToString();
  ASSERT_EQ(known->state.executions.size(), 1u);
  EXPECT_EQ(known->state.executions.front().id, id);
  EXPECT_FALSE(known->state.executions.front().runs.empty());
}

TEST_F(EngineTest, AReadOfAPipelineDrivenElsewhereDoesNotHoldUpThisServersOwn) {
  // Leases on one SQLite file: the store drops the fences SQLite refuses.
  faulty_ = std::make_unique<FaultyStore>(*store_);
  faulty_->drop_fences = true;
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> hold{false};
  // Every stored read of a pipeline reads its runtime document (ReadStoredHead).
  faulty_->on_get_kv = [&](const std::string& key) {
    if (key == "pstate/theirs" && hold.exchange(false)) {
      entered.set_value();
      released.wait();
    }
  };
  engine_ = std::make_unique<Engine>(*faulty_, clock_, options_);
  engine_->EnableLeases("s1", 10);
  Create(BuildPipeline("mine", {"true"}));
  Create(BuildPipeline("theirs", {"true"}));
  ASSERT_TRUE(engine_->AdoptPipeline("mine", 1).ok());
  engine_->DisownPipeline("theirs");

  hold = true;
  for (int call = 0; call < 3; ++call) {  // Snapshot, a history page, an execution.
    auto slow = std::async(std::launch::async, [&]() -> Status {
      switch (call) {
        case 0:
          return engine_->GetSnapshot("theirs", true).status();
        case 1:
          return engine_->HistoryPage("theirs", 10, "", {}, PageRuns::kNone).status();
        default:
          return engine_->PlanRetry("theirs", "Build", "nope", core::RetryMode::kFailedActions)
              .status();
      }
    });
    ASSERT_EQ(entered.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready)
        << "call " << call << " never read the pipeline from the store";
    auto mine =
        std::async(std::launch::async, [&] { return engine_->GetSnapshot("mine", true).status(); });
    const bool answered = mine.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    release.set_value();
    EXPECT_TRUE(answered) << "call " << call << ": the read of 'theirs' held the engine";
    EXPECT_TRUE(mine.get().ok());
    Status held = slow.get();
    if (call < 2) {
      EXPECT_TRUE(held.ok()) << held.ToString();
    } else {
      EXPECT_EQ(held.wire_name(), "StageNotRetryableException") << held.ToString();
    }
    entered = std::promise<void>();
    release = std::promise<void>();
    released = release.get_future().share();
    hold = true;
  }
  hold = false;
}

// A history page of a pipeline another server drives reads the pipeline's
// head (declaration, runtime document) and the page: not its working set
// (active executions, the newest 20 and their runs) as well.
TEST_F(EngineTest, AHistoryPageOfAPipelineDrivenElsewhereReadsOnlyItsHeadAndThePage) {
  faulty_ = std::make_unique<FaultyStore>(*store_);
  faulty_->drop_fences = true;
  std::atomic<int> active_reads{0};
  std::atomic<int> page_reads{0};
  std::atomic<int> record_reads{0};
  faulty_->on_list_active = [&](const std::string& pipeline) {
    if (pipeline == "theirs") ++active_reads;
  };
  faulty_->on_get_pipeline = [&](const std::string& pipeline) {
    if (pipeline == "theirs") ++record_reads;
  };
  faulty_->on_list_page = [&](const std::string& pipeline) {
    if (pipeline == "theirs") ++page_reads;
  };
  engine_ = std::make_unique<Engine>(*faulty_, clock_, options_);
  engine_->EnableLeases("s1", 10);
  Create(BuildPipeline("theirs", {"true"}));
  ASSERT_TRUE(engine_->AdoptPipeline("theirs", 1).ok());
  const std::string id = Start("theirs");
  ASSERT_EQ(S(WaitEnded("theirs", id).status), "Succeeded");
  WaitIdle();
  engine_->DisownPipeline("theirs");
  active_reads = 0;
  page_reads = 0;
  record_reads = 0;

  auto page = engine_->HistoryPage("theirs", 10, "", {}, PageRuns::kFirstStage);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_FALSE(page->ids.empty());
  EXPECT_EQ(page->ids.front(), id);
  EXPECT_EQ(page->snap.state.decl.stages.size(), 2u) << "the head, from the store";
  EXPECT_EQ(active_reads.load(), 0) << "the working set was read too";
  EXPECT_EQ(page_reads.load(), 1) << "the page only";
  EXPECT_EQ(record_reads.load(), 1) << "the record is read once, with the head";
  EXPECT_EQ(page->snap.record.name, "theirs");
  EXPECT_EQ(page->snap.record.version, 1);
  // A page of rule runs too.
  record_reads = 0;
  auto rules = engine_->RuleRunsPage("theirs", 10, std::nullopt);
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  EXPECT_EQ(rules->snap.record.name, "theirs");
  EXPECT_EQ(record_reads.load(), 1);
  // A single execution still comes with the working set, read before the lock.
  active_reads = 0;
  auto one = engine_->ExecutionSnapshot("theirs", id);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->state.executions.front().id, id);
  EXPECT_EQ(active_reads.load(), 1);
}

}  // namespace
}  // namespace pw::engine::engine_test

// --- Issue 15: working set, history pages, read cache, retention -------------------

namespace pw::engine::engine_test {
namespace {

class HistoryTest : public EngineTest {
 protected:
  // `n` executions of a pipeline whose Build fails while `flag` is absent.
  std::vector<std::string> RunMany(int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      clock_.Advance(1);
      ids.push_back(Start("p"));
      WaitEnded("p", ids.back());
    }
    return ids;
  }
};

TEST_F(HistoryTest, AfterARestartOnlyTheWorkingSetIsInMemoryAndOldOnesLoadOnDemand) {
  StartEngine();
  const std::string flag = dir_ + "/flag";
  Create(BuildPipeline("p", {"cat " + flag}));
  const std::string old_failed = RunMany(1).front();
  std::ofstream(flag) << "x\n";
  auto ids = RunMany(14);
  Restart();
  ASSERT_TRUE(engine_->GetSnapshot("p", true).ok());
  EXPECT_LE(engine_->LoadedExecutionsForTest("p"), 6u) << "the newest few, not the history";
  EXPECT_GE(engine_->LoadedExecutionsForTest("p"), 1u);
  EXPECT_EQ(Snap("p").state.executions.size(), 15u) << "a full snapshot reads the store";
  // Decisions about an old execution load it: it is not the Build stage's latest.
  auto plan = engine_->PlanRetry("p", "Build", old_failed, core::RetryMode::kFailedActions);
  EXPECT_EQ(plan.status().wire_name(), "NotLatestPipelineExecutionException")
      << plan.status().ToString();
  auto stop = engine_->StopExecution("p", old_failed, false, "");
  EXPECT_EQ(stop.wire_name(), "PipelineExecutionNotStoppableException") << stop.ToString();
  EXPECT_EQ(engine_->ExecutionSnapshot("p", old_failed)->state.executions.front().id, old_failed);
  EXPECT_EQ(engine_->ExecutionSnapshot("p", "nope").status().wire_name(),
            "PipelineExecutionNotFoundException");
  // The ticker trims what decisions loaded on demand.
  for (size_t i = 0; i < 8; ++i) {
    (void)engine_->PlanRetry("p", "Build", ids[i], core::RetryMode::kFailedActions);
  }
  EXPECT_GT(engine_->LoadedExecutionsForTest("p"), 10u);
  engine_->TickForTest();
  EXPECT_LE(engine_->LoadedExecutionsForTest("p"), 6u);
}

TEST_F(HistoryTest, PagesNewestFirstWithAFilterAndATokenFromTheStore) {
  StartEngine();
  const std::string flag = dir_ + "/flag";
  Create(BuildPipeline("p", {"cat " + flag}));
  auto failed = RunMany(3);
  std::ofstream(flag) << "x\n";
  auto ok = RunMany(4);
  auto first = engine_->HistoryPage("p", 3, "", {}, PageRuns::kAll);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->ids, (std::vector<std::string>{ok[3], ok[2], ok[1]}));
  EXPECT_TRUE(first->more);
  const core::Execution* newest = first->snap.state.FindExecution(ok[3]);
  ASSERT_NE(newest, nullptr);
  EXPECT_EQ(RunsOf(*newest, "Build", "Build").size(), 1u) << "with its runs";
  EXPECT_EQ(RunsOf(*newest, "Source", "Src").size(), 1u);
  // The first stage's runs only (ListPipelineExecutions' source revisions):
  // the other stages' run documents are not read.
  auto sources = engine_->HistoryPage("p", 3, "", {}, PageRuns::kFirstStage);
  ASSERT_TRUE(sources.ok()) << sources.status().ToString();
  EXPECT_EQ(sources->ids, first->ids);
  for (const std::string& id : sources->ids) {
    const core::Execution* e = sources->snap.state.FindExecution(id);
    ASSERT_NE(e, nullptr);
    ASSERT_EQ(e->runs.size(), 1u) << id;
    EXPECT_EQ(e->runs[0].stage, "Source");
    EXPECT_FALSE(e->runs[0].revision_id.empty());
  }
  auto next = engine_->HistoryPage("p", 3, ok[1], {}, PageRuns::kAll);
  EXPECT_EQ(next->ids, (std::vector<std::string>{ok[0], failed[2], failed[1]}));
  auto last = engine_->HistoryPage("p", 3, failed[1], {}, PageRuns::kAll);
  EXPECT_EQ(last->ids, (std::vector<std::string>{failed[0]}));
  EXPECT_FALSE(last->more);
  auto only_failed = engine_->HistoryPage(
      "p", 2, "",
      [](const core::Execution& e) { return e.status == core::ExecutionStatus::kFailed; },
      PageRuns::kNone);
  EXPECT_EQ(only_failed->ids, (std::vector<std::string>{failed[2], failed[1]}));
  EXPECT_TRUE(only_failed->more);
  EXPECT_EQ(engine_->HistoryPage("p", 3, "gone", {}, PageRuns::kAll).status().wire_name(),
            "InvalidNextTokenException");
}

// A page read again parses only the documents that changed since (issue
// 15: a console listing history while executions run). A changed row, e.g. a
// retried execution, is read as it is now, never as it was kept.
TEST_F(HistoryTest, APageReadAgainParsesOnlyWhatChangedAndNeverServesAnOldDocument) {
  StartEngine();
  const std::string flag = dir_ + "/flag";
  Create(BuildPipeline("p", {"cat " + flag}));
  const std::vector<std::string> ids = RunMany(3);  // Each fails: no flag.
  auto page = [&] {
    auto read = engine_->HistoryPage("p", 10, "", {}, PageRuns::kAll);
    EXPECT_TRUE(read.ok()) << read.status().ToString();
    return read.ok() ? *read : ExecutionPage{};
  };
  auto first = page();
  ASSERT_EQ(first.ids.size(), 3u);
  const auto e0 = engine_->execution_doc_counts();
  const auto r0 = engine_->run_doc_counts();
  auto again = page();
  EXPECT_EQ(again.ids, first.ids);
  const auto e1 = engine_->execution_doc_counts();
  const auto r1 = engine_->run_doc_counts();
  EXPECT_EQ(e1.misses, e0.misses) << "no execution document parsed again";
  EXPECT_EQ(e1.hits, e0.hits + 3);
  EXPECT_EQ(r1.misses, r0.misses) << "no run document parsed again";
  EXPECT_EQ(r1.hits, r0.hits + 6) << "Source and Build of each";

  // The newest execution changes: retried, it succeeds with a second Build run.
  std::ofstream(flag) << "x\n";
  ASSERT_TRUE(engine_->RetryStage("p", "Build", ids[2], core::RetryMode::kFailedActions).ok());
  WaitIdle();  // (Not WaitEnded: its snapshots read the store, through the same kept documents.)
  auto after = page();
  const core::Execution* retried = after.snap.state.FindExecution(ids[2]);
  ASSERT_NE(retried, nullptr);
  EXPECT_EQ(S(retried->status), "Succeeded") << "the row as it is now";
  EXPECT_EQ(RunsOf(*retried, "Build", "Build").size(), 2u);
  const core::Execution* old = after.snap.state.FindExecution(ids[0]);
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(S(old->status), "Failed");
  const auto e2 = engine_->execution_doc_counts();
  const auto r2 = engine_->run_doc_counts();
  EXPECT_EQ(e2.misses, e1.misses + 1) << "the retried execution's new version only";
  EXPECT_EQ(r2.misses, r1.misses + 1) << "the new Build run only";
}

TEST_F(HistoryTest, EveryMutationInvalidatesTheCachedReads) {
  StartEngine();
  const std::string flag = dir_ + "/flag";
  Create(BuildPipeline("p", {"cat " + flag}));
  ReadCache& cache = engine_->read_cache();
  auto cached = [&] {
    auto g = cache.Get("p", "k");
    cache.Put("p", "k", "body", g.generation);
    return cache.Get("p", "k").body.has_value();
  };
  ASSERT_TRUE(cached());
  const std::string id = Start("p");  // A commit.
  WaitEnded("p", id);
  EXPECT_FALSE(cache.Get("p", "k").body) << "a start and its commits";
  ASSERT_TRUE(cached());
  std::ofstream(flag) << "x\n";
  ASSERT_TRUE(engine_->RetryStage("p", "Build", id, core::RetryMode::kFailedActions).ok());
  EXPECT_FALSE(cache.Get("p", "k").body) << "a retry";
  WaitEnded("p", id);
  ASSERT_TRUE(cached());
  json updated = BuildPipeline("p", {"true"});
  ASSERT_TRUE(engine_->UpdatePipeline(updated).ok());
  EXPECT_FALSE(cache.Get("p", "k").body) << "an update";
  WaitIdle();
  ASSERT_TRUE(cached());
  ASSERT_TRUE(engine_->DeletePipeline("p").ok());
  EXPECT_FALSE(cache.Get("p", "k").body) << "a delete";
  // A read computed before a commit is not stored after it.
  auto before = cache.Get("q", "k");
  Create(BuildPipeline("q", {"true"}));
  Start("q");
  cache.Put("q", "k", "stale", before.generation);
  EXPECT_FALSE(cache.Get("q", "k").body);
  WaitIdle();
}

TEST_F(HistoryTest, RetentionDeletesOldEndedExecutionsInBatchesButKeepsTheRetryable) {
  options_.retention = {3, 0};
  options_.retention_batch = 2;
  options_.retention_artifact_grace_seconds = 0;
  StartEngine();
  const std::string flag = dir_ + "/flag";
  Create(BuildPipeline("p", {"cat " + flag}));
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) {  // Each with its own source content; each fails in Build.
    std::ofstream(src_ + "/input.txt") << "revision " << i << "\n";
    clock_.Advance(1);
    ids.push_back(Start("p"));
    WaitEnded("p", ids.back());
  }
  ASSERT_EQ(*store_->CountExecutions("p"), 8);
  const core::Execution oldest = Exec("p", ids[0]);
  const core::ActionRun oldest_build = RunsOf(oldest, "Build", "Build").at(0);
  const std::string log = engine_->LogPath(oldest_build.id);
  const std::string old_artifact =
      options_.data_dir + "/artifacts/" + oldest_build.inputs.at("SourceOut") + ".zip";
  ASSERT_TRUE(fs::exists(log));
  ASSERT_TRUE(fs::exists(old_artifact));
  engine_->TickForTest();
  EXPECT_EQ(*store_->CountExecutions("p"), 6) << "one batch of 2";
  EXPECT_FALSE(fs::exists(log)) << "its logs went with it";
  for (int i = 0; i < 5; ++i) engine_->TickForTest();
  EXPECT_EQ(*store_->CountExecutions("p"), 3);
  EXPECT_FALSE(store_->GetExecution("p", ids[4])->has_value());
  EXPECT_TRUE(store_->GetExecution("p", ids[7])->has_value());
  engine_->SweepArtifactsForTest();
  EXPECT_FALSE(fs::exists(old_artifact)) << "no remaining execution refers to it";
  // The retryable (latest) failed execution keeps its input artifact.
  const core::Execution last = Exec("p", ids[7]);
  const std::string input = RunsOf(last, "Build", "Build").at(0).inputs.at("SourceOut");
  EXPECT_TRUE(fs::exists(options_.data_dir + "/artifacts/" + input + ".zip"));
  std::ofstream(flag) << "x\n";
  ASSERT_TRUE(engine_->RetryStage("p", "Build", ids[7], core::RetryMode::kFailedActions).ok());
  EXPECT_EQ(S(WaitEnded("p", ids[7]).status), "Succeeded");
}

TEST_F(HistoryTest, TheScanOfStoredArtifactsSweepsThoseOfADeletedPipeline) {
  options_.retention = {5, 0};
  options_.retention_artifact_grace_seconds = 3600;
  StartEngine();
  std::map<std::string, std::string> zip;
  for (const std::string name : {"kept", "gone", "young"}) {
    Create(BuildPipeline(name, {"true"}));
    std::ofstream(src_ + "/input.txt") << name << "\n";
    clock_.Advance(1);
    const std::string id = Start(name);
    WaitEnded(name, id);
    zip[name] = options_.data_dir + "/artifacts/" +
                RunsOf(Exec(name, id), "Build", "Build").at(0).inputs.at("SourceOut") + ".zip";
  }
  ASSERT_TRUE(engine_->DeletePipeline("gone").ok());
  ASSERT_TRUE(engine_->DeletePipeline("young").ok());
  const auto old = fs::file_time_type::clock::now() - std::chrono::hours(2);
  fs::last_write_time(zip["kept"], old);
  fs::last_write_time(zip["gone"], old);
  // Retention deleted no execution: without the scan nothing is a candidate.
  engine_->SweepArtifactsForTest();
  EXPECT_TRUE(fs::exists(zip["gone"]));
  engine_->QueueStoredArtifactsForTest();
  engine_->SweepArtifactsForTest();
  EXPECT_FALSE(fs::exists(zip["gone"])) << "old, and its pipeline is deleted";
  EXPECT_TRUE(fs::exists(zip["kept"])) << "an execution still names it";
  EXPECT_TRUE(fs::exists(zip["young"])) << "within the grace period";
}

TEST_F(HistoryTest, TheSweepKeepsAnArtifactProducedAgainAfterItsScan) {
  // Content A, then C, then B; only the newest execution is kept. A and C
  // become unreferenced and old. While the sweep runs (after it collected
  // the referenced revisions), an action produces A again: its result, not
  // yet recorded, will name A, so A must stay; C goes.
  options_.retention = {1, 0};
  options_.retention_artifact_grace_seconds = 3600;
  StartEngine();
  Create(BuildPipeline("p", {"true"}));
  std::map<std::string, std::string> revision;
  for (const std::string content : {"A", "C", "B"}) {
    std::ofstream(src_ + "/input.txt") << content << "\n";
    clock_.Advance(1);
    const std::string id = Start("p");
    WaitEnded("p", id);
    revision[content] = RunsOf(Exec("p", id), "Build", "Build").at(0).inputs.at("SourceOut");
  }
  for (int i = 0; i < 3; ++i) engine_->TickForTest();
  ASSERT_EQ(*store_->CountExecutions("p"), 1);
  const auto zip = [&](const std::string& content) {
    return options_.data_dir + "/artifacts/" + revision[content] + ".zip";
  };
  const auto old = fs::file_time_type::clock::now() - std::chrono::hours(2);
  fs::last_write_time(zip("A"), old);
  fs::last_write_time(zip("C"), old);
  std::ofstream(src_ + "/input.txt") << "A\n";
  engine_->SweepArtifactsForTest([&] {
    runner::ArtifactStore again(options_.data_dir + "/artifacts");
    auto put = again.PutDirectory(src_);
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    ASSERT_EQ(*put, revision["A"]);
  });
  EXPECT_TRUE(fs::exists(zip("A"))) << "produced again since the scan";
  EXPECT_FALSE(fs::exists(zip("C"))) << "unreferenced and old";
  EXPECT_TRUE(fs::exists(zip("B"))) << "the newest execution names it";
  // A is looked at again later, not by a sweep (a read of every document) at
  // every tick: a quarter of the grace period later.
  using Counts = std::pair<size_t, size_t>;
  EXPECT_EQ(engine_->ArtifactCandidatesForTest(), Counts(0, 1));
  clock_.Advance(3600 / 4 - 10);
  engine_->TickForTest();
  EXPECT_EQ(engine_->ArtifactCandidatesForTest(), Counts(0, 1));
  clock_.Advance(20);
  engine_->TickForTest();
  EXPECT_EQ(engine_->ArtifactCandidatesForTest(), Counts(1, 0));
}

// Issue 15: an unfiltered ListRuleExecutions read (and parsed, under the
// engine mutex) every execution of the pipeline: 6-8 s and a 437 MiB peak at
// 10^5 executions. RuleRunsPage reads the recently updated ones and stops.
TEST_F(HistoryTest, RuleRunsPageReadsOnlyWhatThePageNeedsInStartOrder) {
  faulty_ = std::make_unique<FaultyStore>(*store_);
  engine_ = std::make_unique<Engine>(*faulty_, clock_, options_);
  const auto gate = [](const std::string& variable) {
    json rule = {
        {"name", "Gate"},
        {"ruleTypeId",
         {{"category", "Rule"}, {"owner", "AWS"}, {"provider", "VariableCheck"}, {"version", "1"}}},
        {"configuration",
         {{"Variable", "#{variables." + variable + "}"}, {"Value", "open"}, {"Operator", "EQ"}}}};
    return json{{"conditions", json::array({{{"result", "FAIL"}, {"rules", {rule}}}})}};
  };
  json p = Pipeline(
      "p", {Stage("Source", {DirSource(src_)}), Stage("Deploy", {Commands("Deploy", {"true"})}),
            Stage("Verify", {Commands("Verify", {"true"})})});
  p["pipelineType"] = "V2";
  p["variables"] = json::array({{{"name", "dgate"}, {"defaultValue", "closed"}},
                                {{"name", "vgate"}, {"defaultValue", "closed"}}});
  p["stages"][1]["beforeEntry"] = gate("dgate");
  p["stages"][2]["beforeEntry"] = gate("vgate");
  Create(p);
  Create(Pipeline("plain", {Stage("Source", {DirSource(src_)}),
                            Stage("Build", {Commands("Build", {"true"})})}));
  // The oldest execution passes Deploy's gate and stops at Verify's; the 39
  // later ones stop at Deploy's. One rule run each, two for the oldest.
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    clock_.Advance(1);
    auto id =
        engine_->StartExecution("p", "", "tester", "StartPipelineExecution",
                                i == 0 ? core::Variables{{"dgate", "open"}} : core::Variables{});
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(*id);
    ASSERT_EQ(S(WaitEnded("p", ids.back()).status), "Failed");
  }
  // Verify's latest execution is the oldest one: retried, its new rule run is
  // the newest of all, in the execution started first.
  clock_.Advance(1);
  auto retried = engine_->RetryStage("p", "Verify", ids[0], core::RetryMode::kFailedActions);
  ASSERT_TRUE(retried.ok()) << retried.status().ToString();
  ASSERT_EQ(S(WaitEnded("p", ids[0]).status), "Failed");

  faulty_->rows_by_update = 0;
  auto page = engine_->RuleRunsPage("p", 5, std::nullopt);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->runs.size(), 5u);
  EXPECT_TRUE(page->more);
  std::vector<std::string> executions;
  for (const auto& [e, r] : page->runs) executions.push_back(e);
  EXPECT_EQ(executions, (std::vector<std::string>{ids[0], ids[39], ids[38], ids[37], ids[36]}));
  EXPECT_LE(faulty_->rows_by_update.load(), 16u) << "read one chunk, not 40 executions";
  EXPECT_EQ(page->snap.state.executions.size(), 5u) << "only the page's executions are kept";

  // Paging three at a time from each page's last position gives the whole list.
  auto all = engine_->RuleRunsPage("p", 100, std::nullopt);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->runs.size(), 42u);
  EXPECT_FALSE(all->more);
  std::vector<std::pair<std::string, std::string>> paged;
  std::optional<RuleRunPosition> after;
  for (int guard = 0; guard < 30; ++guard) {
    auto part = engine_->RuleRunsPage("p", 3, after);
    ASSERT_TRUE(part.ok());
    paged.insert(paged.end(), part->runs.begin(), part->runs.end());
    if (!part->more) break;
    const auto& [e, r] = part->runs.back();
    const core::RuleRun* run = part->snap.state.FindExecution(e)->FindRuleRun(r);
    after = RuleRunPosition{run->started, run->id};
  }
  EXPECT_EQ(paged, all->runs);

  // No version with a condition: nothing is read at all.
  faulty_->rows_by_update = 0;
  auto none = engine_->RuleRunsPage("plain", 100, std::nullopt);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->runs.empty());
  EXPECT_EQ(faulty_->rows_by_update.load(), 0u);
  // An older version's conditions still count: its rule runs are listed.
  json v2 = p;
  v2["stages"][1].erase("beforeEntry");
  v2["stages"][2].erase("beforeEntry");
  ASSERT_TRUE(engine_->UpdatePipeline(v2).ok());
  auto after_update = engine_->RuleRunsPage("p", 100, std::nullopt);
  ASSERT_TRUE(after_update.ok());
  EXPECT_EQ(after_update->runs.size(), 42u);
  EXPECT_EQ(engine_->RuleRunsPage("nope", 5, std::nullopt).status().wire_name(),
            "PipelineNotFoundException");

  // What a call learnt about "plain"'s versions does not hide a condition
  // added by a later version, nor one of a pipeline of the same name made
  // again after a delete.
  json plain = Pipeline("plain", {Stage("Source", {DirSource(src_)}),
                                  Stage("Deploy", {Commands("Deploy", {"true"})})});
  plain["pipelineType"] = "V2";
  plain["variables"] = json::array({{{"name", "dgate"}, {"defaultValue", "closed"}}});
  plain["stages"][1]["beforeEntry"] = gate("dgate");
  clock_.Advance(1);
  ASSERT_TRUE(engine_->UpdatePipeline(plain).ok());
  ASSERT_EQ(S(WaitEnded("plain", Start("plain")).status), "Failed");
  EXPECT_EQ(engine_->RuleRunsPage("plain", 100, std::nullopt)->runs.size(), 1u);
  ASSERT_TRUE(engine_->DeletePipeline("plain").ok());
  clock_.Advance(1);
  Create(Pipeline("plain", {Stage("Source", {DirSource(src_)}),
                            Stage("Build", {Commands("Build", {"true"})})}));
  EXPECT_TRUE(engine_->RuleRunsPage("plain", 100, std::nullopt)->runs.empty());
  ASSERT_TRUE(engine_->DeletePipeline("plain").ok());
  clock_.Advance(1);
  Create(plain);
  ASSERT_EQ(S(WaitEnded("plain", Start("plain")).status), "Failed");
  json without = plain;
  without["stages"][1].erase("beforeEntry");
  ASSERT_TRUE(engine_->UpdatePipeline(without).ok());
  EXPECT_EQ(engine_->RuleRunsPage("plain", 100, std::nullopt)->runs.size(), 1u)
      << "made again with a condition at version 1, none at version 2";
}

}  // namespace
}  // namespace pw::engine::engine_test
