// Walks the execution state machine rule by rule (semantics.md B-G, K.69,
// L.71). No disk, process or clock: ids come from a counter ("id-1",
// "id-2", ...) and times are plain numbers. Every Advance in the harness is
// followed by a second one that must change nothing (Advance is idempotent).

#include "core/machine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace pw::core::machine_test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

class CounterIds final : public IdSource {
 public:
  std::string NewId() override { return "id-" + std::to_string(++next_); }

 private:
  int next_ = 0;
};

ActionDecl Act(std::string name, int run_order = 1, std::vector<std::string> in = {},
               std::vector<std::string> out = {}, std::string category = "Build") {
  ActionDecl a;
  a.name = std::move(name);
  a.type = {std::move(category), "AWS", "Commands", "1"};
  if (a.type.category == "Source") a.type.provider = "Directory";
  if (a.type.category == "Approval") a.type.provider = "Manual";
  a.run_order = run_order;
  a.input_artifacts = std::move(in);
  for (auto& o : out) a.output_artifacts.push_back({o, {}});
  return a;
}

StageDecl Stage(std::string name, std::vector<ActionDecl> actions) {
  StageDecl s;
  s.name = std::move(name);
  s.actions = std::move(actions);
  return s;
}

StageDecl SourceStage() { return Stage("Source", {Act("Src", 1, {}, {"SourceOut"}, "Source")}); }

PipelineDecl Pipeline(std::vector<StageDecl> stages,
                      ExecutionMode mode = ExecutionMode::kSuperseded) {
  PipelineDecl p;
  p.name = "p";
  p.version = 1;
  p.has_artifact_store = true;
  p.pipeline_type = mode == ExecutionMode::kSuperseded ? "V1" : "V2";
  p.execution_mode = mode;
  p.stages = std::move(stages);
  return p;
}

// Source{Src} -> Build{A:1, B:1, C:2} -> Deploy{D}.
PipelineDecl ThreeStages(ExecutionMode mode = ExecutionMode::kSuperseded) {
  return Pipeline({SourceStage(),
                   Stage("Build", {Act("A", 1, {"SourceOut"}, {"BuildOut"}), Act("B", 1),
                                   Act("C", 2, {"BuildOut"})}),
                   Stage("Deploy", {Act("D")})},
                  mode);
}

// A PipelineState plus the calls a test makes, each recording its Outcome.
class Harness {
 public:
  explicit Harness(PipelineDecl decl) { p.decl = std::move(decl); }

  PipelineState p;
  CounterIds ids;
  EpochSeconds now = 1000;
  Outcome out;  // Of the last call (and the Advance that followed it).

  std::string Start() {
    out = {};
    now += 1;
    std::string id = StartExecution(p, "StartPipelineExecution", "arn:user", now, ids, &out).id;
    AdvanceInto(out);
    return id;
  }

  void Step() {
    out = {};
    now += 1;
    AdvanceInto(out);
  }

  const Execution& Exec(const std::string& id) const {
    const Execution* e = p.FindExecution(id);
    if (e == nullptr) {
      ADD_FAILURE() << "no execution " << id;
      static const Execution kNone;
      return kNone;
    }
    return *e;
  }

  std::string Status(const std::string& id) const { return std::string(Name(Exec(id).status)); }

  // "-" when the execution never entered the stage.
  std::string StageStatusOf(const std::string& id, const std::string& stage) const {
    const StageRun* sr = Exec(id).FindStageRun(stage);
    return sr == nullptr ? "-" : std::string(Name(sr->status));
  }

  const StageRun& StageRunOf(const std::string& id, const std::string& stage) const {
    const StageRun* sr = Exec(id).FindStageRun(stage);
    if (sr == nullptr) {
      ADD_FAILURE() << id << " never entered " << stage;
      static const StageRun kNone;
      return kNone;
    }
    return *sr;
  }

  // Every run of `action`, oldest first.
  std::vector<ActionRun> Runs(const std::string& id, const std::string& stage,
                              const std::string& action) const {
    std::vector<ActionRun> runs;
    for (const auto& r : Exec(id).runs) {
      if (r.stage == stage && r.action == action) runs.push_back(r);
    }
    return runs;
  }

  const ActionRun& Latest(const std::string& id, const std::string& stage,
                          const std::string& action) const {
    const StageRun& sr = StageRunOf(id, stage);
    auto it = sr.latest.find(action);
    const ActionRun* r = it == sr.latest.end() ? nullptr : Exec(id).FindRun(it->second);
    if (r == nullptr) {
      ADD_FAILURE() << id << " has no run of " << stage << "/" << action;
      static const ActionRun kNone;
      return kNone;
    }
    return *r;
  }

  std::string LatestStatus(const std::string& id, const std::string& stage,
                           const std::string& action) const {
    return std::string(Name(Latest(id, stage, action).status));
  }

  // Completes the latest run of `action`, then advances.
  pw::Status Complete(const std::string& id, const std::string& stage, const std::string& action,
                      ActionStatus status = ActionStatus::kSucceeded,
                      std::map<std::string, std::string> outputs = {}) {
    ActionResult result;
    result.status = status;
    result.outputs = std::move(outputs);
    if (status == ActionStatus::kFailed) result.error_code = "JobFailed";
    return CompleteRun(Latest(id, stage, action).id, result);
  }
  pw::Status Fail(const std::string& id, const std::string& stage, const std::string& action) {
    return Complete(id, stage, action, ActionStatus::kFailed);
  }

  pw::Status CompleteRun(const std::string& run_id, const ActionResult& result) {
    out = {};
    now += 1;
    pw::Status s = CompleteAction(p, run_id, result, now, &out);
    if (s.ok()) AdvanceInto(out);
    return s;
  }

  pw::Status Stop(const std::string& id, bool abandon, bool advance = true) {
    out = {};
    now += 1;
    pw::Status s = StopExecution(p, id, abandon, "because", now, &out);
    if (s.ok() && advance) AdvanceInto(out);
    return s;
  }

  Result<RetryPlan> Retry(const std::string& id, const std::string& stage,
                          RetryMode mode = RetryMode::kFailedActions) {
    out = {};
    now += 1;
    Result<RetryPlan> r = RetryStage(p, id, stage, mode, RetryTrigger::kManual, now, ids, &out);
    if (r.ok()) AdvanceInto(out);
    return r;
  }

  pw::Status Transition(const std::string& stage, bool enabled) {
    out = {};
    now += 1;
    pw::Status s =
        SetTransition(p, stage, enabled, enabled ? "" : "Freeze for release", "alice", now);
    if (s.ok()) AdvanceInto(out);
    return s;
  }

  void NewVersion(PipelineDecl decl) {
    out = {};
    now += 1;
    decl.version = p.decl.version + 1;
    ApplyNewVersion(p, std::move(decl), now, &out);
    AdvanceInto(out);
  }

  // "Stage/Action" of each effect of `kind` in the last outcome, in order.
  std::vector<std::string> Effects(Effect::Kind kind = Effect::Kind::kStartAction) const {
    std::vector<std::string> names;
    for (const Effect& fx : out.effects) {
      if (fx.kind != kind) continue;
      const ActionRun* r = Exec(fx.execution_id).FindRun(fx.run_id);
      names.push_back(r == nullptr ? "?" + fx.run_id : r->stage + "/" + r->action);
    }
    return names;
  }
  // Executions of the kStartAction effects of the last outcome.
  std::vector<std::string> EffectExecutions() const {
    std::vector<std::string> ids_out;
    for (const Effect& fx : out.effects) ids_out.push_back(fx.execution_id);
    return ids_out;
  }

  // Runs Advance into `o`, then checks that a second Advance changes nothing.
  void AdvanceInto(Outcome& o) {
    Advance(p, now, ids, &o);
    Outcome again;
    Advance(p, now, ids, &again);
    EXPECT_THAT(again.effects, IsEmpty()) << "Advance is not idempotent";
    EXPECT_THAT(again.changed_executions, IsEmpty()) << "Advance is not idempotent";
    EXPECT_THAT(again.changed_runs, IsEmpty()) << "Advance is not idempotent";
    ExpectOneExecutionPerStage();
  }

  // Rule 16: outside PARALLEL, never two executions in one stage.
  void ExpectOneExecutionPerStage() const {
    if (p.decl.execution_mode == ExecutionMode::kParallel) return;
    std::map<std::string, std::vector<std::string>> in;
    for (const auto& e : p.executions) {
      for (const auto& sr : e.stages) {
        if (sr.status == StageStatus::kInProgress || sr.status == StageStatus::kStopping) {
          in[sr.stage].push_back(e.id);
        }
      }
    }
    for (const auto& [stage, execs] : in) {
      EXPECT_EQ(execs.size(), 1u) << "stage " << stage << " holds " << execs.size();
    }
  }
};

// Drives an execution of ThreeStages to a failed Build: A succeeds, B fails.
std::string FailBuild(Harness& h) {
  std::string e = h.Start();
  EXPECT_TRUE(h.Complete(e, "Source", "Src", ActionStatus::kSucceeded, {{"SourceOut", "s1"}}).ok());
  EXPECT_TRUE(h.Complete(e, "Build", "A", ActionStatus::kSucceeded, {{"BuildOut", "b1"}}).ok());
  EXPECT_TRUE(h.Fail(e, "Build", "B").ok());
  EXPECT_EQ(h.Status(e), "Failed");
  return e;
}

// Drives an execution of ThreeStages into Build (A and B running).
std::string IntoBuild(Harness& h) {
  std::string e = h.Start();
  EXPECT_TRUE(h.Complete(e, "Source", "Src", ActionStatus::kSucceeded, {{"SourceOut", "s1"}}).ok());
  EXPECT_EQ(h.StageStatusOf(e, "Build"), "InProgress");
  return e;
}

// ---------------------------------------------------------------------------
// B. Starting executions.

// Rules 12-13: a new execution enters stage 1 and starts its first group.
TEST(Start, EntersFirstStageAndStartsItsFirstGroup) {
  Harness h(ThreeStages());
  std::string e = h.Start();
  EXPECT_EQ(e, "id-1");
  const Execution& x = h.Exec(e);
  EXPECT_EQ(x.status, ExecutionStatus::kInProgress);
  EXPECT_EQ(x.trigger_type, "StartPipelineExecution");
  EXPECT_EQ(x.trigger_detail, "arn:user");
  EXPECT_EQ(x.pipeline_version, 1);
  EXPECT_EQ(x.started, 1001);
  EXPECT_TRUE(x.in_stage);
  EXPECT_EQ(x.stage_index, 0);
  EXPECT_EQ(h.p.stage_latest.at("Source"), e);
  ASSERT_EQ(h.out.effects.size(), 1u);
  EXPECT_EQ(h.out.effects[0].kind, Effect::Kind::kStartAction);
  EXPECT_EQ(h.out.effects[0].execution_id, "id-1");
  EXPECT_EQ(h.out.effects[0].run_id, "id-2");
  EXPECT_THAT(h.Effects(), ElementsAre("Source/Src"));
  const ActionRun& r = h.Latest(e, "Source", "Src");
  EXPECT_EQ(r.status, ActionStatus::kInProgress);
  EXPECT_EQ(r.stage_attempt, 0);
  EXPECT_EQ(r.started, 1001);
  EXPECT_TRUE(h.out.changed_executions.count(e));
  EXPECT_TRUE(h.out.changed_runs.count("id-2"));
  EXPECT_EQ(h.StageStatusOf(e, "Build"), "-");
}

// Advance is idempotent: a second call yields no effects and changes nothing.
TEST(Advance, SecondCallYieldsNoEffects) {
  Harness h(ThreeStages());
  IntoBuild(h);
  Outcome again;
  Advance(h.p, h.now, h.ids, &again);
  EXPECT_THAT(again.effects, IsEmpty());
  EXPECT_THAT(again.changed_executions, IsEmpty());
  EXPECT_THAT(again.changed_runs, IsEmpty());
}

// ---------------------------------------------------------------------------
// C. Execution flow.

struct RunOrderCase {
  const char* name;
  std::vector<std::pair<std::string, int>> actions;  // Name, runOrder, in declaration order.
  std::vector<std::vector<std::string>> groups;      // Expected start waves.
};

const RunOrderCase kRunOrderCases[] = {
    {"SameRunOrderRunsInParallel", {{"a", 1}, {"b", 1}, {"c", 1}}, {{"a", "b", "c"}}},
    {"HigherRunOrdersRunSequentially", {{"a", 1}, {"b", 2}, {"c", 3}}, {{"a"}, {"b"}, {"c"}}},
    {"GapsAreFine", {{"a", 3}, {"b", 1}, {"c", 3}}, {{"b"}, {"a", "c"}}},
    {"MixedGroups",
     {{"a", 1}, {"b", 2}, {"c", 1}, {"d", 2}, {"e", 5}},
     {{"a", "c"}, {"b", "d"}, {"e"}}},
};

void PrintTo(const RunOrderCase& c, std::ostream* os) { *os << c.name; }

class RunOrderTest : public ::testing::TestWithParam<RunOrderCase> {};

// Rule 7: same runOrder in parallel; a higher group starts only after every
// action of the lower group finished; numbers need not be contiguous.
// Rule 25: the last stage succeeding makes the execution Succeeded.
TEST_P(RunOrderTest, GroupsStartInRunOrderEachAfterThePreviousFinishes) {
  std::vector<ActionDecl> actions;
  for (const auto& [name, order] : GetParam().actions) actions.push_back(Act(name, order));
  Harness h(Pipeline({SourceStage(), Stage("Work", actions)}));
  std::string e = h.Start();
  ASSERT_TRUE(h.Complete(e, "Source", "Src").ok());
  const auto& groups = GetParam().groups;
  for (size_t g = 0; g < groups.size(); ++g) {
    std::vector<std::string> want;
    for (const auto& a : groups[g]) want.push_back("Work/" + a);
    std::vector<std::string> got = h.Effects();
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, want) << "group " << g;
    EXPECT_EQ(h.StageRunOf(e, "Work").group, static_cast<int>(g));
    for (size_t i = 0; i < groups[g].size(); ++i) {
      ASSERT_TRUE(h.Complete(e, "Work", groups[g][i]).ok());
      if (i + 1 < groups[g].size()) {
        EXPECT_THAT(h.out.effects, IsEmpty()) << "next group started before siblings finished";
      }
    }
  }
  EXPECT_THAT(h.out.effects, IsEmpty());
  EXPECT_EQ(h.StageStatusOf(e, "Work"), "Succeeded");
  EXPECT_EQ(h.Status(e), "Succeeded");
  EXPECT_EQ(h.Exec(e).runs.size(), 1 + GetParam().actions.size());
}

INSTANTIATE_TEST_SUITE_P(Rule7, RunOrderTest, ::testing::ValuesIn(kRunOrderCases),
                         [](const ::testing::TestParamInfo<RunOrderCase>& i) {
                           return std::string(i.param.name);
                         });

// Rule 17 (flow): finishing a stage enters the next one; outputs become the
// inputs of later actions.
TEST(Flow, FinishedStageEntersNextStageWithArtifacts) {
  Harness h(ThreeStages());
  std::string e = h.Start();
  ASSERT_TRUE(h.Complete(e, "Source", "Src", ActionStatus::kSucceeded, {{"SourceOut", "s1"}}).ok());
  EXPECT_EQ(h.StageStatusOf(e, "Source"), "Succeeded");
  EXPECT_THAT(h.Effects(), ElementsAre("Build/A", "Build/B"));
  EXPECT_EQ(h.Latest(e, "Build", "A").inputs.at("SourceOut"), "s1");
  EXPECT_EQ(h.p.stage_latest.at("Build"), e);
  ASSERT_TRUE(h.Complete(e, "Build", "A", ActionStatus::kSucceeded, {{"BuildOut", "b1"}}).ok());
  ASSERT_TRUE(h.Complete(e, "Build", "B").ok());
  EXPECT_THAT(h.Effects(), ElementsAre("Build/C"));
  EXPECT_EQ(h.Latest(e, "Build", "C").inputs.at("BuildOut"), "b1");
  ASSERT_TRUE(h.Complete(e, "Build", "C").ok());
  EXPECT_THAT(h.Effects(), ElementsAre("Deploy/D"));
  ASSERT_TRUE(h.Complete(e, "Deploy", "D").ok());
  EXPECT_EQ(h.Status(e), "Succeeded");
}

// Rules 21-22: a failed action lets its running siblings finish; then the
// stage and the execution fail at the same moment and later groups and stages
// never start.
TEST(Flow, FailedActionLetsSiblingsFinishThenStageAndExecutionFail) {
  Harness h(ThreeStages());
  std::string e = IntoBuild(h);
  ASSERT_TRUE(h.Fail(e, "Build", "A").ok());
  EXPECT_THAT(h.out.effects, IsEmpty());
  EXPECT_EQ(h.StageStatusOf(e, "Build"), "InProgress");
  EXPECT_EQ(h.Status(e), "InProgress");
  EXPECT_EQ(h.LatestStatus(e, "Build", "B"), "InProgress");
  ASSERT_TRUE(h.Complete(e, "Build", "B").ok());
  EXPECT_THAT(h.out.effects, IsEmpty());
  EXPECT_EQ(h.StageStatusOf(e, "Build"), "Failed");
  EXPECT_EQ(h.Status(e), "Failed");
  EXPECT_THAT(h.Exec(e).status_summary, HasSubstr("A"));
  EXPECT_TRUE(h.Runs(e, "Build", "C").empty());
  EXPECT_EQ(h.StageStatusOf(e, "Deploy"), "-");
  h.Step();
  EXPECT_THAT(h.out.effects, IsEmpty());
}

// Rule 22: the failure of the last running sibling fails the stage too.
TEST(Flow, AllActionsOfGroupFailingFailsStage) {
  Harness h(ThreeStages());
  std::string e = IntoBuild(h);
  ASSERT_TRUE(h.Fail(e, "Build", "A").ok());
  ASSERT_TRUE(h.Fail(e, "Build", "B").ok());
  EXPECT_EQ(h.StageStatusOf(e, "Build"), "Failed");
  EXPECT_EQ(h.Status(e), "Failed");
}

TEST(CompleteAction, UnknownOrFinishedRunIsRefused) {
  Harness h(ThreeStages());
  std::string e = h.Start();
  std::string src = h.Latest(e, "Source", "Src").id;
  EXPECT_EQ(h.CompleteRun("nope", {}).wire_name(), "ActionExecutionNotFoundException");
  ASSERT_TRUE(h.CompleteRun(src, {}).ok());
  pw::Status again = h.CompleteRun(src, {});
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(h.Exec(e).FindRun(src)->status, ActionStatus::kSucceeded);
}

TEST(CompleteAction, KeepsTheSourceRevisionAndItsUrls) {
  Harness h(ThreeStages());
  std::string e = h.Start();
  ActionResult r;
  r.revision_id = "abc123";
  r.revision_summary = "fix the build";
  r.revision_url = "https://git.example/repo/commit/abc123";
  r.entity_url = "https://git.example/repo";
  ASSERT_TRUE(h.CompleteRun(h.Latest(e, "Source", "Src").id, r).ok());
  const ActionRun& run = h.Latest(e, "Source", "Src");
  EXPECT_EQ(run.revision_id, "abc123");
  EXPECT_EQ(run.revision_url, "https://git.example/repo/commit/abc123");
  EXPECT_EQ(run.entity_url, "https://git.example/repo");
}

// Rule 16: a stage holds one execution at a time. Rule 17: the next one waits
// at the inbound transition and enters when the stage unlocks.
TEST(Lock, SecondExecutionWaitsInFrontOfLockedStage) {
  Harness h(ThreeStages());
  std::string e1 = h.Start();
  std::string e2 = h.Start();
  EXPECT_THAT(h.out.effects, IsEmpty());
  EXPECT_FALSE(h.Exec(e2).in_stage);
  EXPECT_EQ(h.Status(e2), "InProgress");
  ASSERT_NE(InboundExecution(h.p, "Source"), nullptr);
  EXPECT_EQ(InboundExecution(h.p, "Source")->id, e2);
  ASSERT_TRUE(h.Complete(e1, "Source", "Src").ok());
  // e1 leaves Source (unlocking it) and enters Build; e2 enters Source.
  EXPECT_THAT(h.Effects(), UnorderedElementsAre("Build/A", "Build/B", "Source/Src"));
  EXPECT_EQ(InboundExecution(h.p, "Source"), nullptr);
  EXPECT_EQ(h.p.stage_latest.at("Source"), e2);
  // e2 finishes Source while e1 holds Build: e2 is Build's inbound execution.
  ASSERT_TRUE(h.Complete(e2, "Source", "Src").ok());
  EXPECT_THAT(h.out.effects, IsEmpty());
  ASSERT_NE(InboundExecution(h.p, "Build"), nullptr);
  EXPECT_EQ(InboundExecution(h.p, "Build")->id, e2);
  EXPECT_EQ(h.StageStatusOf(e2, "Build"), "-");
  ASSERT_TRUE(h.Complete(e1, "Build", "A").ok());
  ASSERT_TRUE(h.Complete(e1, "Build", "B").ok());
  ASSERT_TRUE(h.Complete(e1, "Build", "C").ok());
  // e1 moves to Deploy, e2 enters Build.
  EXPECT_THAT(h.Effects(), UnorderedElementsAre("Deploy/D", "Build/A", "Build/B"));
  EXPECT_EQ(h.StageStatusOf(e2, "Build"), "InProgress");
  EXPECT_EQ(h.p.stage_latest.at("Build"), e2);
}

// Rule 18: an older execution waiting between stages is superseded by a newer
// arrival; the execution inside the stage is never superseded; the newest
// waiting execution enters when the stage unlocks.
TEST(Superseded, OlderWaitingExecutionIsSupersededByNewerArrival) {
  Harness h(ThreeStages());
  std::string e1 = IntoBuild(h);
  std::string e2 = h.Start();
  ASSERT_TRUE(h.Complete(e2, "Source", "Src").ok());
  EXPECT_EQ(InboundExecution(h.p, "Build")->id, e2);
  std::string e3 = h.Start();
  EXPECT_EQ(h.Status(e2), "InProgress");  // Not yet: e3 is still in Source.
  ASSERT_TRUE(h.Complete(e3, "Source", "Src").ok());
  EXPECT_EQ(h.Status(e2), "Superseded");
  EXPECT_THAT(h.Exec(e2).status_summary, HasSubstr(e3));
  EXPECT_EQ(h.Status(e3), "InProgress");
  EXPECT_EQ(InboundExecution(h.p, "Build")->id, e3);
  EXPECT_EQ(h.Status(e1), "InProgress");  // Inside Build: never superseded.
  ASSERT_TRUE(h.Complete(e1, "Build", "A").ok());
  ASSERT_TRUE(h.Complete(e1, "Build", "B").ok());
  ASSERT_TRUE(h.Complete(e1, "Build", "C").ok());
  EXPECT_EQ(h.StageStatusOf(e3, "Build"), "InProgress");
  EXPECT_EQ(h.StageStatusOf(e2, "Build"), "-");
  ASSERT_TRUE(h.Complete(e1, "Deploy", "D").ok());
  EXPECT_EQ(h.Status(e1), "Succeeded");
}

// Rules 18, 48: a superseded execution cannot be retried or stopped. Here the
// stage it waited for has a latest execution, so rule 47's proposal applies
// first (NotLatest); the refusal table covers the StageNotRetryable case.
TEST(Superseded, SupersededExecutionCannotBeRetriedOrStopped) {
  Harness h(ThreeStages());
  IntoBuild(h);
  std::string e2 = h.Start();
  ASSERT_TRUE(h.Complete(e2, "Source", "Src").ok());
  std::string e3 = h.Start();
  ASSERT_TRUE(h.Complete(e3, "Source", "Src").ok());
  ASSERT_EQ(h.Status(e2), "Superseded");
  EXPECT_EQ(h.Retry(e2, "Build").status().wire_name(), "NotLatestPipelineExecutionException");
  EXPECT_EQ(h.Retry(e2, "Source").status().wire_name(), "NotLatestPipelineExecutionException");
  EXPECT_EQ(h.Stop(e2, false).wire_name(), "PipelineExecutionNotStoppableException");
}

// Rule 19: QUEUED waiting executions are never superseded and enter FIFO.
TEST(Queued, WaitingExecutionsEnterInStartOrderAndAreNeverSuperseded) {
  Harness h(ThreeStages(ExecutionMode::kQueued));
  std::string e1 = IntoBuild(h);
  std::string e2 = h.Start();
  ASSERT_TRUE(h.Complete(e2, "Source", "Src").ok());
  std::string e3 = h.Start();
  ASSERT_TRUE(h.Complete(e3, "Source", "Src").ok());
  EXPECT_EQ(h.Status(e2), "InProgress");
  EXPECT_EQ(h.Status(e3), "InProgress");
  EXPECT_FALSE(h.Exec(e2).in_stage);
  EXPECT_FALSE(h.Exec(e3).in_stage);
  ASSERT_TRUE(h.Complete(e1, "Build", "A").ok());
  ASSERT_TRUE(h.Complete(e1, "Build", "B").ok());
  ASSERT_TRUE(h.Complete(e1, "Build", "C").ok());
  EXPECT_EQ(h.StageStatusOf(e2, "Build"), "InProgress");
  EXPECT_EQ(h.StageStatusOf(e3, "Build"), "-");
  ASSERT_TRUE(h.Complete(e2, "Build", "A").ok());
  ASSERT_TRUE(h.Complete(e2, "Build", "B").ok());
  ASSERT_TRUE(h.Complete(e2, "Build", "C").ok());
  EXPECT_EQ(h.StageStatusOf(e3, "Build"), "InProgress");
  for (const auto& e : {e1, e2}) ASSERT_TRUE(h.Complete(e, "Deploy", "D").ok());
  ASSERT_TRUE(h.Complete(e3, "Build", "A").ok());
  ASSERT_TRUE(h.Complete(e3, "Build", "B").ok());
  ASSERT_TRUE(h.Complete(e3, "Build", "C").ok());
  ASSERT_TRUE(h.Complete(e3, "Deploy", "D").ok());
  EXPECT_EQ(h.Status(e1), "Succeeded");
  EXPECT_EQ(h.Status(e2), "Succeeded");
  EXPECT_EQ(h.Status(e3), "Succeeded");
}

// Rule 20: PARALLEL executions share stages without locking and finish
// independently.
TEST(Parallel, ExecutionsRunTheSameStageAtOnce) {
  Harness h(ThreeStages(ExecutionMode::kParallel));
  std::string e1 = h.Start();
  std::string e2 = h.Start();
  EXPECT_THAT(h.Effects(), ElementsAre("Source/Src"));
  EXPECT_THAT(h.EffectExecutions(), ElementsAre(e2));
  EXPECT_EQ(h.StageStatusOf(e1, "Source"), "InProgress");
  EXPECT_EQ(h.StageStatusOf(e2, "Source"), "InProgress");
  ASSERT_TRUE(h.Complete(e1, "Source", "Src").ok());
  ASSERT_TRUE(h.Complete(e2, "Source", "Src").ok());
  EXPECT_EQ(h.StageStatusOf(e1, "Build"), "InProgress");
  EXPECT_EQ(h.StageStatusOf(e2, "Build"), "InProgress");
  for (const char* a : {"A", "B", "C"}) ASSERT_TRUE(h.Complete(e2, "Build", a).ok());
  ASSERT_TRUE(h.Complete(e2, "Deploy", "D").ok());
  EXPECT_EQ(h.Status(e2), "Succeeded");
  EXPECT_EQ(h.Status(e1), "InProgress");
  ASSERT_TRUE(h.Fail(e1, "Build", "A").ok());
  ASSERT_TRUE(h.Complete(e1, "Build", "B").ok());
  EXPECT_EQ(h.Status(e1), "Failed");
  EXPECT_EQ(h.Status(e2), "Succeeded");
}

// Rule 52: in PARALLEL, retry applies per execution (no "latest" check).
TEST(Parallel, RetryAppliesPerExecutionEvenAfterALaterRunOfTheStage) {
  Harness h(ThreeStages(ExecutionMode::kParallel));
  std::string e1 = FailBuild(h);
  std::string e2 = IntoBuild(h);
  ASSERT_EQ(h.p.stage_latest.at("Build"), e2);
  auto r = h.Retry(e1, "Build");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(h.Effects(), ElementsAre("Build/B"));
  EXPECT_THAT(h.EffectExecutions(), ElementsAre(e1));
}

// Rule 53 in PARALLEL: the automatic retry is not blocked by a later run.
TEST(Parallel, AutomaticRetryIgnoresOtherExecutions) {
  PipelineDecl d = ThreeStages(ExecutionMode::kParallel);
  d.stages[1].on_failure = FailureResult::kRetry;
  d.stages[1].on_failure_retry_mode = "FAILED_ACTIONS";
  Harness h(d);
  std::string e1 = IntoBuild(h);
  std::string e2 = IntoBuild(h);
  ASSERT_TRUE(h.Complete(e1, "Build", "A").ok());
  ASSERT_TRUE(h.Fail(e1, "Build", "B").ok());
  EXPECT_THAT(h.out.auto_retried, ElementsAre(e1 + "/Build"));
  EXPECT_EQ(h.Status(e1), "InProgress");
  EXPECT_EQ(h.Status(e2), "InProgress");
}

// Rules 23 and 47: a failure releases the lock; a later execution enters the
// failed stage; from then on the failed one is not the latest.
TEST(Lock, FailureReleasesLockAndFailedExecutionIsNoLongerLatest) {
  Harness h(ThreeStages());
  std::string e1 = FailBuild(h);
  EXPECT_TRUE(PlanRetry(h.p, e1, "Build", RetryMode::kFailedActions).ok());
  std::string e2 = IntoBuild(h);  // Enters Build at once: not locked.
  EXPECT_EQ(h.p.stage_latest.at("Build"), e2);
  auto r = h.Retry(e1, "Build");
  EXPECT_EQ(r.status().wire_name(), "NotLatestPipelineExecutionException");
  EXPECT_THAT(r.status().message(), HasSubstr(e2));
  // Whatever the later run's status.
  ASSERT_TRUE(h.Fail(e2, "Build", "A").ok());
  ASSERT_TRUE(h.Fail(e2, "Build", "B").ok());
  EXPECT_EQ(h.Retry(e1, "Build").status().wire_name(), "NotLatestPipelineExecutionException");
  EXPECT_TRUE(h.Retry(e2, "Build").ok());
}

// ---------------------------------------------------------------------------
// D. Stage transitions.

// Rules 26, 27, 31: a disabled transition holds the execution at the stage's
// inbound; enabling lets it in; state records reason, who and when.
TEST(Transition, DisabledHoldsExecutionUntilEnabled) {
  Harness h(ThreeStages());
  ASSERT_TRUE(h.Transition("Build", false).ok());
  const TransitionState& t = h.p.transitions.at("Build");
  EXPECT_FALSE(t.enabled);
  EXPECT_EQ(t.disabled_reason, "Freeze for release");
  EXPECT_EQ(t.last_changed_by, "alice");
  EXPECT_EQ(t.last_changed_at, h.now);
  std::string e = h.Start();
  ASSERT_TRUE(h.Complete(e, "Source", "Src").ok());
  EXPECT_THAT(h.out.effects, IsEmpty());
  EXPECT_EQ(InboundExecution(h.p, "Build")->id, e);
  EXPECT_EQ(h.Status(e), "InProgress");
  h.Step();
  EXPECT_THAT(h.out.effects, IsEmpty());
  ASSERT_TRUE(h.Transition("Build", true).ok());
  EXPECT_THAT(h.Effects(), ElementsAre("Build/A", "Build/B"));
  EXPECT_TRUE(h.p.transitions.at("Build").enabled);
  EXPECT_EQ(h.p.transitions.at("Build").disabled_reason, "");
  EXPECT_EQ(h.p.transitions.at("Build").last_changed_at, h.now);
  EXPECT_EQ(InboundExecution(h.p, "Build"), nullptr);
}

// Rule 26: executions already in (or past) the stage continue.
TEST(Transition, DisablingDoesNotStopExecutionAlreadyInStage) {
  Harness h(ThreeStages());
  std::string e = IntoBuild(h);
  ASSERT_TRUE(h.Transition("Build", false).ok());
  for (const char* a : {"A", "B", "C"}) ASSERT_TRUE(h.Complete(e, "Build", a).ok());
  EXPECT_EQ(h.StageStatusOf(e, "Deploy"), "InProgress");
}

// Rule 27: in SUPERSEDED, a newer arrival supersedes the execution waiting at
// a disabled transition; on enable the latest one enters.
TEST(Transition, NewerArrivalSupersedesExecutionWaitingAtDisabledTransition) {
  Harness h(ThreeStages());
  ASSERT_TRUE(h.Transition("Build", false).ok());
  std::string e1 = h.Start();
  ASSERT_TRUE(h.Complete(e1, "Source", "Src").ok());
  std::string e2 = h.Start();
  ASSERT_TRUE(h.Complete(e2, "Source", "Src").ok());
  EXPECT_EQ(h.Status(e1), "Superseded");
  ASSERT_TRUE(h.Transition("Build", true).ok());
  EXPECT_THAT(h.EffectExecutions(), ElementsAre(e2, e2));
  EXPECT_EQ(h.StageStatusOf(e2, "Build"), "InProgress");
}

// Rule 31: enabling an enabled transition is a no-op success; unknown stage.
TEST(Transition, EnableIsNoOpWhenEnabledAndUnknownStageIsNotFound) {
  Harness h(ThreeStages());
  ASSERT_TRUE(h.Transition("Build", true).ok());
  EXPECT_EQ(h.p.transitions.count("Build") ? h.p.transitions.at("Build").last_changed_at : 0, 0);
  EXPECT_EQ(h.Transition("Nope", false).wire_name(), "StageNotFoundException");
}

// ---------------------------------------------------------------------------
// E. Stopping executions.

// Rule 33: stop-and-wait lets running actions finish, starts nothing more,
// keeps the stage locked until then; Stopping then Stopped.
TEST(Stop, StopAndWaitLetsRunningActionsFinishThenStops) {
  Harness h(ThreeStages());
  std::string e1 = IntoBuild(h);
  std::string e2 = h.Start();
  ASSERT_TRUE(h.Complete(e2, "Source", "Src").ok());
  ASSERT_TRUE(h.Stop(e1, false).ok());
  EXPECT_THAT(h.out.effects, IsEmpty());
  EXPECT_EQ(h.Status(e1), "Stopping");
  EXPECT_EQ(h.StageStatusOf(e1, "Build"), "Stopping");
  EXPECT_EQ(h.Exec(e1).stop_reason, "because");
  ASSERT_TRUE(h.Complete(e1, "Build", "A").ok());
  EXPECT_EQ(h.Status(e1), "Stopping");
  EXPECT_EQ(h.StageStatusOf(e2, "Build"), "-");  // Still locked.
  ASSERT_TRUE(h.Fail(e1, "Build", "B").ok());
  EXPECT_EQ(h.Status(e1), "Stopped");
  EXPECT_EQ(h.StageStatusOf(e1, "Build"), "Stopped");
  EXPECT_TRUE(h.Runs(e1, "Build", "C").empty());
  EXPECT_EQ(h.StageStatusOf(e1, "Deploy"), "-");
  // The stage unlocked: e2 enters it.
  EXPECT_THAT(h.EffectExecutions(), ElementsAre(e2, e2));
  EXPECT_EQ(h.StageStatusOf(e2, "Build"), "InProgress");
}

// Rule 34: stop-and-abandon abandons running actions at once (kAbandonAction
// effects), the execution ends Stopped and the stage unlocks.
TEST(Stop, StopAndAbandonAbandonsRunningActionsAtOnce) {
  Harness h(ThreeStages());
  std::string e1 = IntoBuild(h);
  std::string e2 = h.Start();
  ASSERT_TRUE(h.Complete(e2, "Source", "Src").ok());
  ASSERT_TRUE(h.Complete(e1, "Build", "A").ok());
  std::string b = h.Latest(e1, "Build", "B").id;
  ASSERT_TRUE(h.Stop(e1, true, /*advance=*/false).ok());
  EXPECT_EQ(h.Status(e1), "Stopping");
  ASSERT_EQ(h.out.effects.size(), 1u);
  EXPECT_EQ(h.out.effects[0].kind, Effect::Kind::kAbandonAction);
  EXPECT_EQ(h.out.effects[0].run_id, b);
  EXPECT_TRUE(h.out.changed_runs.count(b));
  EXPECT_EQ(h.LatestStatus(e1, "Build", "B"), "Abandoned");
  EXPECT_EQ(h.LatestStatus(e1, "Build", "A"), "Succeeded");
  h.Step();
  EXPECT_EQ(h.Status(e1), "Stopped");
  EXPECT_EQ(h.StageStatusOf(e1, "Build"), "Stopped");
  EXPECT_EQ(h.StageStatusOf(e2, "Build"), "InProgress");
  // The abandoned work reporting late changes nothing.
  EXPECT_EQ(h.CompleteRun(b, {}).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(h.Exec(e1).FindRun(b)->status, ActionStatus::kAbandoned);
}

struct DuplicateStopCase {
  const char* name;
  bool first_abandon;
  bool second_abandon;
  const char* wire;  // nullptr: accepted.
};

const DuplicateStopCase kDuplicateStopCases[] = {
    {"WaitThenWait", false, false, "DuplicatedStopRequestException"},
    {"WaitThenAbandonIsAllowed", false, true, nullptr},
    {"AbandonThenAbandon", true, true, "DuplicatedStopRequestException"},
    {"AbandonThenWait", true, false, "DuplicatedStopRequestException"},
};

void PrintTo(const DuplicateStopCase& c, std::ostream* os) { *os << c.name; }

class DuplicateStopTest : public ::testing::TestWithParam<DuplicateStopCase> {};

// Rule 35.
TEST_P(DuplicateStopTest, SecondStopOfStoppingExecution) {
  Harness h(ThreeStages());
  std::string e = IntoBuild(h);
  ASSERT_TRUE(h.Stop(e, GetParam().first_abandon, /*advance=*/false).ok());
  pw::Status s = h.Stop(e, GetParam().second_abandon, /*advance=*/false);
  if (GetParam().wire == nullptr) {
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_THAT(h.Effects(Effect::Kind::kAbandonAction), ElementsAre("Build/A", "Build/B"));
  } else {
    EXPECT_EQ(s.wire_name(), GetParam().wire);
    EXPECT_THAT(h.out.effects, IsEmpty());
  }
}

INSTANTIATE_TEST_SUITE_P(Rule35, DuplicateStopTest, ::testing::ValuesIn(kDuplicateStopCases),
                         [](const ::testing::TestParamInfo<DuplicateStopCase>& i) {
                           return std::string(i.param.name);
                         });

struct NotStoppableCase {
  const char* name;
  std::function<std::string(Harness&)> setup;  // Returns the id to stop.
};

const NotStoppableCase kNotStoppableCases[] = {
    {"Stopped",
     [](Harness& h) {
       std::string e = IntoBuild(h);
       EXPECT_TRUE(h.Stop(e, true).ok());
       return e;
     }},
    {"Succeeded",
     [](Harness& h) {
       std::string e = IntoBuild(h);
       for (const char* a : {"A", "B", "C"}) EXPECT_TRUE(h.Complete(e, "Build", a).ok());
       EXPECT_TRUE(h.Complete(e, "Deploy", "D").ok());
       return e;
     }},
    {"Failed", [](Harness& h) { return FailBuild(h); }},
    {"Superseded",
     [](Harness& h) {
       IntoBuild(h);
       std::string e2 = h.Start();
       EXPECT_TRUE(h.Complete(e2, "Source", "Src").ok());
       std::string e3 = h.Start();
       EXPECT_TRUE(h.Complete(e3, "Source", "Src").ok());
       EXPECT_EQ(h.Status(e2), "Superseded");
       return e2;
     }},
    {"Cancelled",
     [](Harness& h) {
       std::string e = IntoBuild(h);
       h.NewVersion(ThreeStages());
       EXPECT_TRUE(h.Complete(e, "Build", "A").ok());
       EXPECT_TRUE(h.Complete(e, "Build", "B").ok());
       EXPECT_EQ(h.Status(e), "Cancelled");
       return e;
     }},
    {"UnknownId", [](Harness&) { return std::string("no-such-execution"); }},
};

void PrintTo(const NotStoppableCase& c, std::ostream* os) { *os << c.name; }

class NotStoppableTest : public ::testing::TestWithParam<NotStoppableCase> {};

// Rule 36: only an InProgress execution can be stopped.
TEST_P(NotStoppableTest, StopIsRefused) {
  Harness h(ThreeStages());
  std::string e = GetParam().setup(h);
  pw::Status s = h.Stop(e, false);
  EXPECT_EQ(s.wire_name(), "PipelineExecutionNotStoppableException") << s.ToString();
  EXPECT_EQ(h.Stop(e, true).wire_name(), "PipelineExecutionNotStoppableException");
}

INSTANTIATE_TEST_SUITE_P(Rule36, NotStoppableTest, ::testing::ValuesIn(kNotStoppableCases),
                         [](const ::testing::TestParamInfo<NotStoppableCase>& i) {
                           return std::string(i.param.name);
                         });

// Rule 37: a stopped (abandoned) stage can be retried: its abandoned actions
// rerun, then the groups that never started, then the later stages.
TEST(Stop, StoppedStageIsRetryableAndRerunsAbandonedActions) {
  Harness h(ThreeStages());
  std::string e = IntoBuild(h);
  ASSERT_TRUE(h.Complete(e, "Build", "A").ok());
  ASSERT_TRUE(h.Stop(e, true).ok());
  ASSERT_EQ(h.Status(e), "Stopped");
  auto r = h.Retry(e, "Build");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(r->actions_to_rerun, ElementsAre("B"));
  EXPECT_THAT(r->actions_after, ElementsAre("C"));
  EXPECT_EQ(h.Status(e), "InProgress");
  EXPECT_EQ(h.StageStatusOf(e, "Build"), "InProgress");
  EXPECT_THAT(h.Effects(), ElementsAre("Build/B"));
  EXPECT_EQ(h.Runs(e, "Build", "A").size(), 1u);
  ASSERT_TRUE(h.Complete(e, "Build", "B").ok());
  EXPECT_THAT(h.Effects(), ElementsAre("Build/C"));
  ASSERT_TRUE(h.Complete(e, "Build", "C").ok());
  ASSERT_TRUE(h.Complete(e, "Deploy", "D").ok());
  EXPECT_EQ(h.Status(e), "Succeeded");
}

// Rule 37: FAILED_ACTIONS on a stopped stage reruns its Failed and its
// Abandoned actions.
TEST(Stop, RetryOfStoppedStageRerunsFailedAndAbandonedActions) {
  Harness h(ThreeStages());
  std::string e = IntoBuild(h);
  ASSERT_TRUE(h.Fail(e, "Build", "A").ok());
  ASSERT_TRUE(h.Stop(e, true).ok());
  ASSERT_EQ(h.Status(e), "Stopped");
  EXPECT_EQ(h.LatestStatus(e, "Build", "B"), "Abandoned");
  auto r = h.Retry(e, "Build");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(r->actions_to_rerun, ElementsAre("A", "B"));
  EXPECT_THAT(h.Effects(), ElementsAre("Build/A", "Build/B"));
}

// Rule 37: stop-and-wait whose group succeeded: the retry continues with the
// groups that never started.
TEST(Stop, StoppedAfterGroupSucceededRetryRunsTheRemainingGroups) {
  Harness h(ThreeStages());
  std::string e = IntoBuild(h);
  ASSERT_TRUE(h.Stop(e, false).ok());
  ASSERT_TRUE(h.Complete(e, "Build", "A").ok());
  ASSERT_TRUE(h.Complete(e, "Build", "B").ok());
  ASSERT_EQ(h.Status(e), "Stopped");
  auto r = h.Retry(e, "Build");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(r->actions_to_rerun, IsEmpty());
  EXPECT_THAT(r->actions_after, ElementsAre("C"));
  EXPECT_THAT(h.Effects(), ElementsAre("Build/C"));
  EXPECT_EQ(h.Exec(e).stop_requested, false);
}

// Rules 28 and 36: a waiting (inbound) execution can be stopped; it stops at
// once, never enters the stage, and cannot be retried there.
TEST(Stop, StoppingWaitingExecutionStopsItAndItNeverEnters) {
  Harness h(ThreeStages());
  std::string e1 = IntoBuild(h);
  std::string e2 = h.Start();
  ASSERT_TRUE(h.Complete(e2, "Source", "Src").ok());
  ASSERT_TRUE(h.Stop(e2, false).ok());
  EXPECT_EQ(h.Status(e2), "Stopped");
  EXPECT_THAT(h.out.effects, IsEmpty());
  EXPECT_EQ(InboundExecution(h.p, "Build"), nullptr);
  for (const char* a : {"A", "B", "C"}) ASSERT_TRUE(h.Complete(e1, "Build", a).ok());
  EXPECT_THAT(h.EffectExecutions(), ElementsAre(e1));  // Only Deploy/D of e1.
  EXPECT_EQ(h.StageStatusOf(e2, "Build"), "-");
  EXPECT_EQ(h.Retry(e2, "Build").status().wire_name(), "NotLatestPipelineExecutionException");
  EXPECT_EQ(h.Stop(e2, false).wire_name(), "PipelineExecutionNotStoppableException");
}

// Rule 28: with no other run of the stage, a stopped inbound execution is
// still not retryable ("no failed actions to retry").
TEST(Stop, StoppedInboundExecutionIsNotRetryable) {
  Harness h(ThreeStages());
  ASSERT_TRUE(h.Transition("Build", false).ok());
  std::string e = h.Start();
  ASSERT_TRUE(h.Complete(e, "Source", "Src").ok());
  ASSERT_TRUE(h.Stop(e, false).ok());
  EXPECT_EQ(h.Status(e), "Stopped");
  EXPECT_EQ(h.Retry(e, "Build").status().wire_name(), "StageNotRetryableException");
  EXPECT_EQ(h.Retry(e, "Source").status().wire_name(), "StageNotRetryableException");
  ASSERT_TRUE(h.Transition("Build", true).ok());
  EXPECT_THAT(h.out.effects, IsEmpty());
}

// ---------------------------------------------------------------------------
// F. Manual retry.

// Rules 40, 44, 45: FAILED_ACTIONS continues the same execution, reruns only
// the failed actions, then the groups that never ran, then later stages;
// succeeded actions keep their runs; history keeps every run with its own id.
TEST(Retry, FailedActionsRerunsOnlyFailedActionsThenLaterGroups) {
  Harness h(ThreeStages());
  std::string e = FailBuild(h);
  std::string a_before = h.Latest(e, "Build", "A").id;
  auto r = h.Retry(e, "Build", RetryMode::kFailedActions);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(r->actions_to_rerun, ElementsAre("B"));
  EXPECT_THAT(r->actions_after, ElementsAre("C"));
  EXPECT_EQ(h.p.executions.size(), 1u);  // Same execution, no new one.
  EXPECT_EQ(h.Status(e), "InProgress");
  EXPECT_EQ(h.StageStatusOf(e, "Build"), "InProgress");
  EXPECT_THAT(h.Effects(), ElementsAre("Build/B"));
  EXPECT_THAT(h.EffectExecutions(), ElementsAre(e));
  EXPECT_EQ(h.Latest(e, "Build", "A").id, a_before);
  EXPECT_EQ(h.Runs(e, "Build", "A").size(), 1u);
  std::vector<ActionRun> b = h.Runs(e, "Build", "B");
  ASSERT_EQ(b.size(), 2u);
  EXPECT_NE(b[0].id, b[1].id);
  EXPECT_EQ(b[0].status, ActionStatus::kFailed);
  EXPECT_EQ(b[1].status, ActionStatus::kInProgress);
  EXPECT_EQ(b[0].stage_attempt, 0);
  EXPECT_EQ(b[1].stage_attempt, 1);
  ASSERT_TRUE(h.Complete(e, "Build", "B").ok());
  EXPECT_THAT(h.Effects(), ElementsAre("Build/C"));
  ASSERT_TRUE(h.Complete(e, "Build", "C").ok());
  EXPECT_THAT(h.Effects(), ElementsAre("Deploy/D"));
  ASSERT_TRUE(h.Complete(e, "Deploy", "D").ok());
  EXPECT_EQ(h.Status(e), "Succeeded");
  EXPECT_EQ(h.Exec(e).runs.size(), 6u);  // Src, A, B, B, C, D.
}

// Rule 45: ALL_ACTIONS reruns the whole stage from group 1, including
// previously succeeded actions; the old runs stay in the history.
TEST(Retry, AllActionsRerunsWholeStageFromFirstGroup) {
  Harness h(ThreeStages());
  std::string e = FailBuild(h);
  auto r = h.Retry(e, "Build", RetryMode::kAllActions);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(r->actions_to_rerun, ElementsAre("A", "B", "C"));
  EXPECT_THAT(h.Effects(), ElementsAre("Build/A", "Build/B"));
  std::vector<ActionRun> a = h.Runs(e, "Build", "A");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_NE(a[0].id, a[1].id);
  EXPECT_EQ(a[0].status, ActionStatus::kSucceeded);
  EXPECT_EQ(a[1].status, ActionStatus::kInProgress);
  ASSERT_TRUE(h.Complete(e, "Build", "A").ok());
  EXPECT_THAT(h.out.effects, IsEmpty());
  ASSERT_TRUE(h.Complete(e, "Build", "B").ok());
  EXPECT_THAT(h.Effects(), ElementsAre("Build/C"));
  ASSERT_TRUE(h.Complete(e, "Build", "C").ok());
  ASSERT_TRUE(h.Complete(e, "Deploy", "D").ok());
  EXPECT_EQ(h.Status(e), "Succeeded");
}

// Rule 45: a rerun's outputs replace the artifacts, and later actions take
// their inputs from the execution's current artifacts; history keeps the old.
TEST(Retry, RerunOutputsReplaceArtifactsForLaterActions) {
  Harness h(ThreeStages());
  std::string e = FailBuild(h);
  EXPECT_EQ(h.Exec(e).artifacts.at("BuildOut"), "b1");
  ASSERT_TRUE(h.Retry(e, "Build", RetryMode::kAllActions).ok());
  EXPECT_EQ(h.Latest(e, "Build", "A").inputs.at("SourceOut"), "s1");
  ASSERT_TRUE(h.Complete(e, "Build", "A", ActionStatus::kSucceeded, {{"BuildOut", "b2"}}).ok());
  EXPECT_EQ(h.Exec(e).artifacts.at("BuildOut"), "b2");
  ASSERT_TRUE(h.Complete(e, "Build", "B").ok());
  EXPECT_EQ(h.Latest(e, "Build", "C").inputs.at("BuildOut"), "b2");
  EXPECT_EQ(h.Runs(e, "Build", "A")[0].outputs.at("BuildOut"), "b1");
}

// Rule 45: a failed rerun does not overwrite the artifact.
TEST(Retry, FailedRunLeavesArtifactsUnchanged) {
  Harness h(ThreeStages());
  std::string e = FailBuild(h);
  ASSERT_TRUE(h.Retry(e, "Build", RetryMode::kAllActions).ok());
  ASSERT_TRUE(h.Complete(e, "Build", "A", ActionStatus::kFailed, {{"BuildOut", "bad"}}).ok());
  EXPECT_EQ(h.Exec(e).artifacts.at("BuildOut"), "b1");
}

struct RefusalCase {
  const char* name;
  // Prepares the state; returns the execution to retry.
  std::function<std::string(Harness&)> setup;
  const char* stage;
  RetryMode mode;
  const char* wire;
  const char* message;  // A fragment the message must contain.
};

const RefusalCase kRefusalCases[] = {
    // Rule 50.
    {"UnknownStage", FailBuild, "Nope", RetryMode::kFailedActions, "StageNotFoundException",
     "Nope"},
    // Rule 41.
    {"SucceededStage", FailBuild, "Source", RetryMode::kFailedActions, "StageNotRetryableException",
     "no failed actions"},
    {"SucceededStageAllActions", FailBuild, "Source", RetryMode::kAllActions,
     "StageNotRetryableException", "no failed actions"},
    {"StageNeverEntered", FailBuild, "Deploy", RetryMode::kFailedActions,
     "StageNotRetryableException", "never ran"},
    {"RunningStageWithoutFailure", IntoBuild, "Build", RetryMode::kFailedActions,
     "StageNotRetryableException", "A, B"},
    // DECISION under rule 45: refused in either mode while any action runs;
    // the message names the running actions.
    {"FailedActionsWhileSiblingRuns",
     [](Harness& h) {
       std::string e = IntoBuild(h);
       EXPECT_TRUE(h.Fail(e, "Build", "A").ok());
       return e;
     },
     "Build", RetryMode::kFailedActions, "StageNotRetryableException", "(B)"},
    {"AllActionsWhileSiblingRuns",
     [](Harness& h) {
       std::string e = IntoBuild(h);
       EXPECT_TRUE(h.Fail(e, "Build", "B").ok());
       return e;
     },
     "Build", RetryMode::kAllActions, "StageNotRetryableException", "(A)"},
    // Rule 43 (and the DECISION: the message names the running actions).
    {"RetryAlreadyInProgress",
     [](Harness& h) {
       std::string e = FailBuild(h);
       EXPECT_TRUE(h.Retry(e, "Build").ok());
       return e;
     },
     "Build", RetryMode::kFailedActions, "StageNotRetryableException", "already in progress"},
    {"RetryAlreadyInProgressNamesRunningActions",
     [](Harness& h) {
       std::string e = FailBuild(h);
       EXPECT_TRUE(h.Retry(e, "Build").ok());
       return e;
     },
     "Build", RetryMode::kAllActions, "StageNotRetryableException", "(B)"},
    // Rule 42: the structure changed since the stage failed.
    {"StructureChanged",
     [](Harness& h) {
       std::string e = FailBuild(h);
       h.NewVersion(ThreeStages());
       return e;
     },
     "Build", RetryMode::kFailedActions, "StageNotRetryableException", "structure changed"},
    // Rule 48 (superseded: it never ran Build).
    {"Superseded",
     [](Harness& h) {
       EXPECT_TRUE(h.Transition("Build", false).ok());
       std::string e1 = h.Start();
       EXPECT_TRUE(h.Complete(e1, "Source", "Src").ok());
       std::string e2 = h.Start();
       EXPECT_TRUE(h.Complete(e2, "Source", "Src").ok());
       EXPECT_EQ(h.Status(e1), "Superseded");
       return e1;
     },
     "Build", RetryMode::kFailedActions, "StageNotRetryableException", ""},
    // Rule 69: cancelled by a pipeline update.
    {"Cancelled",
     [](Harness& h) {
       std::string e = IntoBuild(h);
       h.NewVersion(ThreeStages());
       EXPECT_TRUE(h.Fail(e, "Build", "A").ok());
       EXPECT_TRUE(h.Complete(e, "Build", "B").ok());
       EXPECT_EQ(h.Status(e), "Cancelled");
       return e;
     },
     "Build", RetryMode::kFailedActions, "StageNotRetryableException", ""},
    // Rules 23, 47.
    {"NotLatest",
     [](Harness& h) {
       std::string e = FailBuild(h);
       IntoBuild(h);
       return e;
     },
     "Build", RetryMode::kAllActions, "NotLatestPipelineExecutionException", "later execution"},
    {"UnknownExecution", [](Harness&) { return std::string("nope"); }, "Source",
     RetryMode::kFailedActions, "StageNotRetryableException", ""},
};

void PrintTo(const RefusalCase& c, std::ostream* os) { *os << c.name; }

class RetryRefusalTest : public ::testing::TestWithParam<RefusalCase> {};

// Each refusal carries its wire name and leaves the state unchanged.
TEST_P(RetryRefusalTest, IsRefusedWithWireName) {
  Harness h(ThreeStages());
  std::string e = GetParam().setup(h);
  const size_t runs = e == "nope" ? 0 : h.Exec(e).runs.size();
  Result<RetryPlan> plan = PlanRetry(h.p, e, GetParam().stage, GetParam().mode);
  ASSERT_FALSE(plan.ok());
  Result<RetryPlan> r = h.Retry(e, GetParam().stage, GetParam().mode);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().wire_name(), GetParam().wire) << r.status().ToString();
  EXPECT_EQ(plan.status().wire_name(), GetParam().wire);
  EXPECT_THAT(r.status().message(), HasSubstr(GetParam().message));
  EXPECT_THAT(h.out.effects, IsEmpty());
  EXPECT_THAT(h.out.changed_executions, IsEmpty());
  if (e != "nope") {
    EXPECT_EQ(h.Exec(e).runs.size(), runs);
  }
}

INSTANTIATE_TEST_SUITE_P(Rules41To50, RetryRefusalTest, ::testing::ValuesIn(kRefusalCases),
                         [](const ::testing::TestParamInfo<RefusalCase>& i) {
                           return std::string(i.param.name);
                         });

// Rule 51: retry metadata counts manual retries and records the trigger.
TEST(Retry, MetadataCountsManualRetriesPerStage) {
  Harness h(ThreeStages());
  std::string e = FailBuild(h);
  const StageRun& before = h.StageRunOf(e, "Build");
  EXPECT_EQ(before.manual_retries, 0);
  EXPECT_EQ(before.auto_retries, 0);
  EXPECT_FALSE(before.latest_retry_trigger.has_value());
  ASSERT_TRUE(h.Retry(e, "Build").ok());
  ASSERT_TRUE(h.Fail(e, "Build", "B").ok());
  ASSERT_TRUE(h.Retry(e, "Build").ok());
  const StageRun& sr = h.StageRunOf(e, "Build");
  EXPECT_EQ(sr.manual_retries, 2);
  EXPECT_EQ(sr.auto_retries, 0);
  EXPECT_EQ(sr.attempt, 2);
  EXPECT_EQ(sr.latest_retry_trigger, RetryTrigger::kManual);
  EXPECT_EQ(h.Latest(e, "Build", "B").stage_attempt, 2);
  // Per (execution, stage): a new execution starts without metadata.
  ASSERT_TRUE(h.Complete(e, "Build", "B").ok());
  ASSERT_TRUE(h.Complete(e, "Build", "C").ok());
  std::string e2 = IntoBuild(h);
  EXPECT_EQ(h.StageRunOf(e2, "Build").manual_retries, 0);
  EXPECT_FALSE(h.StageRunOf(e2, "Build").latest_retry_trigger.has_value());
  EXPECT_EQ(h.StageRunOf(e, "Build").manual_retries, 2);
}

// ---------------------------------------------------------------------------
// G. Automatic retry.

PipelineDecl AutoRetry(const char* mode) {
  PipelineDecl d = ThreeStages();
  d.stages[1].on_failure = FailureResult::kRetry;
  d.stages[1].on_failure_has_retry_configuration = true;
  d.stages[1].on_failure_retry_mode = mode;
  return d;
}

// Rule 53: a stage that fails once then succeeds ends Succeeded with
// autoStageRetryAttempt 1 and trigger AutomatedStageRetry.
TEST(AutoRetry, FailsOnceThenSucceeds) {
  Harness h(AutoRetry("FAILED_ACTIONS"));
  std::string e = IntoBuild(h);
  ASSERT_TRUE(h.Complete(e, "Build", "A").ok());
  ASSERT_TRUE(h.Fail(e, "Build", "B").ok());
  EXPECT_THAT(h.out.auto_retried, ElementsAre(e + "/Build"));
  EXPECT_THAT(h.Effects(), ElementsAre("Build/B"));
  EXPECT_EQ(h.Status(e), "InProgress");
  EXPECT_EQ(h.StageStatusOf(e, "Build"), "InProgress");
  ASSERT_TRUE(h.Complete(e, "Build", "B").ok());
  ASSERT_TRUE(h.Complete(e, "Build", "C").ok());
  ASSERT_TRUE(h.Complete(e, "Deploy", "D").ok());
  EXPECT_EQ(h.Status(e), "Succeeded");
  const StageRun& sr = h.StageRunOf(e, "Build");
  EXPECT_EQ(sr.status, StageStatus::kSucceeded);
  EXPECT_EQ(sr.auto_retries, 1);
  EXPECT_EQ(sr.manual_retries, 0);
  EXPECT_EQ(sr.latest_retry_trigger, RetryTrigger::kAutomated);
  EXPECT_EQ(h.Runs(e, "Build", "A").size(), 1u);
  EXPECT_EQ(h.Runs(e, "Build", "B").size(), 2u);
}

// Rule 53: ALL_ACTIONS automatic retry reruns the whole stage.
TEST(AutoRetry, AllActionsModeRerunsWholeStage) {
  Harness h(AutoRetry("ALL_ACTIONS"));
  std::string e = IntoBuild(h);
  ASSERT_TRUE(h.Complete(e, "Build", "A").ok());
  ASSERT_TRUE(h.Fail(e, "Build", "B").ok());
  EXPECT_THAT(h.Effects(), ElementsAre("Build/A", "Build/B"));
  EXPECT_EQ(h.Runs(e, "Build", "A").size(), 2u);
}

// Rules 53-54: an action that always fails runs exactly twice, then the stage
// fails; a manual retry is still allowed and triggers no further automatic one.
TEST(AutoRetry, AlwaysFailingRunsTwiceThenFailsAndManualRetryStillAllowed) {
  Harness h(AutoRetry("FAILED_ACTIONS"));
  std::string e = IntoBuild(h);
  ASSERT_TRUE(h.Complete(e, "Build", "A").ok());
  ASSERT_TRUE(h.Fail(e, "Build", "B").ok());
  ASSERT_TRUE(h.Fail(e, "Build", "B").ok());
  EXPECT_THAT(h.out.auto_retried, IsEmpty());
  EXPECT_EQ(h.Runs(e, "Build", "B").size(), 2u);
  EXPECT_EQ(h.StageStatusOf(e, "Build"), "Failed");
  EXPECT_EQ(h.Status(e), "Failed");
  auto r = h.Retry(e, "Build");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const StageRun& sr = h.StageRunOf(e, "Build");
  EXPECT_EQ(sr.auto_retries, 1);
  EXPECT_EQ(sr.manual_retries, 1);
  EXPECT_EQ(sr.latest_retry_trigger, RetryTrigger::kManual);
  ASSERT_TRUE(h.Fail(e, "Build", "B").ok());
  EXPECT_THAT(h.out.auto_retried, IsEmpty());
  EXPECT_EQ(h.Runs(e, "Build", "B").size(), 3u);
  EXPECT_EQ(h.Status(e), "Failed");
}

// Rule 57: no automatic retry for abandoned actions.
TEST(AutoRetry, NotTriggeredByAbandonedActions) {
  Harness h(AutoRetry("FAILED_ACTIONS"));
  std::string e = IntoBuild(h);
  ASSERT_TRUE(h.Stop(e, true).ok());
  EXPECT_THAT(h.out.auto_retried, IsEmpty());
  EXPECT_EQ(h.Status(e), "Stopped");
  EXPECT_EQ(h.StageRunOf(e, "Build").auto_retries, 0);
}

// Rule 57: no automatic retry while the execution is being stopped.
TEST(AutoRetry, NotTriggeredWhileStopping) {
  Harness h(AutoRetry("FAILED_ACTIONS"));
  std::string e = IntoBuild(h);
  ASSERT_TRUE(h.Stop(e, false).ok());
  ASSERT_TRUE(h.Fail(e, "Build", "A").ok());
  ASSERT_TRUE(h.Complete(e, "Build", "B").ok());
  EXPECT_THAT(h.out.auto_retried, IsEmpty());
  EXPECT_THAT(h.out.effects, IsEmpty());
  EXPECT_EQ(h.Status(e), "Stopped");
  EXPECT_EQ(h.Runs(e, "Build", "A").size(), 1u);
}

// ---------------------------------------------------------------------------
// K.69 / D.29: a new pipeline version.

// Active executions are cancelled after their running actions complete;
// waiting ones fail at once; nothing new starts.
TEST(NewVersion, ActiveCancelledAfterRunningActionsAndWaitingFailed) {
  Harness h(ThreeStages());
  std::string e1 = IntoBuild(h);
  std::string e2 = h.Start();
  ASSERT_TRUE(h.Complete(e2, "Source", "Src").ok());
  h.NewVersion(ThreeStages());
  EXPECT_EQ(h.p.decl.version, 2);
  EXPECT_EQ(h.Status(e2), "Failed");
  EXPECT_EQ(h.Status(e1), "InProgress");
  EXPECT_EQ(h.StageStatusOf(e1, "Build"), "InProgress");
  EXPECT_THAT(h.out.effects, IsEmpty());
  ASSERT_TRUE(h.Complete(e1, "Build", "A").ok());
  EXPECT_EQ(h.Status(e1), "InProgress");
  ASSERT_TRUE(h.Complete(e1, "Build", "B").ok());
  EXPECT_EQ(h.Status(e1), "Cancelled");
  EXPECT_EQ(h.StageStatusOf(e1, "Build"), "Cancelled");
  EXPECT_TRUE(h.Runs(e1, "Build", "C").empty());
  EXPECT_THAT(h.out.effects, IsEmpty());
  EXPECT_EQ(h.p.executions.size(), 2u);
  // The stage is free for a new execution.
  std::string e3 = IntoBuild(h);
  EXPECT_EQ(h.Exec(e3).pipeline_version, 2);
}

// Rules 29 and 48: the inbound execution failed by the update cannot be retried.
TEST(NewVersion, FailedInboundExecutionIsNotRetryable) {
  Harness h(ThreeStages());
  IntoBuild(h);
  std::string e2 = h.Start();
  ASSERT_TRUE(h.Complete(e2, "Source", "Src").ok());
  h.NewVersion(ThreeStages());
  ASSERT_EQ(h.Status(e2), "Failed");
  EXPECT_EQ(h.Retry(e2, "Build").status().wire_name(), "NotLatestPipelineExecutionException");
  EXPECT_EQ(h.Retry(e2, "Source").status().wire_name(), "StageNotRetryableException");
  EXPECT_EQ(h.Retry(e2, "Source", RetryMode::kAllActions).status().wire_name(),
            "StageNotRetryableException");
}

// The same, when the new version moves the stage the execution is in.
TEST(NewVersion, CancelsAfterRunningActionsEvenWhenStagesMoved) {
  Harness h(ThreeStages());
  std::string e1 = IntoBuild(h);
  PipelineDecl v2 = ThreeStages();
  v2.stages.insert(v2.stages.begin() + 1, Stage("Lint", {Act("L")}));
  h.NewVersion(v2);
  std::string e2 = h.Start();
  ASSERT_TRUE(h.Complete(e2, "Source", "Src").ok());
  ASSERT_TRUE(h.Complete(e2, "Lint", "L").ok());
  EXPECT_EQ(h.StageStatusOf(e2, "Build"), "-") << "Build is still locked by e1";
  ASSERT_TRUE(h.Complete(e1, "Build", "A").ok());
  ASSERT_TRUE(h.Complete(e1, "Build", "B").ok());
  EXPECT_EQ(h.Status(e1), "Cancelled");
  EXPECT_EQ(h.StageStatusOf(e1, "Build"), "Cancelled");
  EXPECT_EQ(h.StageStatusOf(e2, "Build"), "InProgress");
}

// The same, when the new version drops the stage the execution is in.
TEST(NewVersion, CancelsAfterRunningActionsEvenWhenStageRemoved) {
  Harness h(ThreeStages());
  std::string e1 = IntoBuild(h);
  h.NewVersion(Pipeline({SourceStage(), Stage("Deploy", {Act("D")})}));
  ASSERT_TRUE(h.Complete(e1, "Build", "A").ok());
  EXPECT_EQ(h.Status(e1), "InProgress");
  ASSERT_TRUE(h.Complete(e1, "Build", "B").ok());
  EXPECT_EQ(h.Status(e1), "Cancelled");
}

// PARALLEL to PARALLEL leaves executions running; other mode changes cancel.
TEST(NewVersion, ParallelToParallelLeavesExecutionsRunning) {
  Harness h(ThreeStages(ExecutionMode::kParallel));
  std::string e = IntoBuild(h);
  h.NewVersion(ThreeStages(ExecutionMode::kParallel));
  EXPECT_FALSE(h.Exec(e).cancel_requested);
  for (const char* a : {"A", "B", "C"}) ASSERT_TRUE(h.Complete(e, "Build", a).ok());
  ASSERT_TRUE(h.Complete(e, "Deploy", "D").ok());
  EXPECT_EQ(h.Status(e), "Succeeded");
}

TEST(NewVersion, SupersededToParallelCancels) {
  Harness h(ThreeStages());
  std::string e = IntoBuild(h);
  h.NewVersion(ThreeStages(ExecutionMode::kParallel));
  ASSERT_TRUE(h.Complete(e, "Build", "A").ok());
  ASSERT_TRUE(h.Complete(e, "Build", "B").ok());
  EXPECT_EQ(h.Status(e), "Cancelled");
}

TEST(NewVersion, FinishedExecutionsAreUntouched) {
  Harness h(ThreeStages());
  std::string e = FailBuild(h);
  h.NewVersion(ThreeStages());
  EXPECT_EQ(h.Status(e), "Failed");
  EXPECT_FALSE(h.Exec(e).cancel_requested);
}

// ---------------------------------------------------------------------------
// L.71 approvals, and rule 24.

PipelineDecl WithApproval() {
  return Pipeline({SourceStage(),
                   Stage("Gate", {Act("Approve", 1, {}, {}, "Approval"), Act("Check", 1)}),
                   Stage("Deploy", {Act("D")})});
}

TEST(Approval, FindsOpenRunByTokenAndRefusesWrongOrUsedTokens) {
  Harness h(WithApproval());
  std::string e = h.Start();
  ASSERT_TRUE(h.Complete(e, "Source", "Src").ok());
  const ActionRun& run = h.Latest(e, "Gate", "Approve");
  const std::string token = run.token;
  const std::string run_id = run.id;
  EXPECT_FALSE(token.empty());
  EXPECT_NE(token, run_id);
  EXPECT_TRUE(h.Latest(e, "Gate", "Check").token.empty());

  auto found = FindApprovalRun(h.p, "Gate", "Approve", token);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, run_id);
  EXPECT_EQ(FindApprovalRun(h.p, "Gate", "Approve", "wrong").status().wire_name(),
            "InvalidApprovalTokenException");
  EXPECT_EQ(FindApprovalRun(h.p, "Gate", "Check", token).status().wire_name(),
            "ActionNotFoundException");
  EXPECT_EQ(FindApprovalRun(h.p, "Gate", "Nope", token).status().wire_name(),
            "ActionNotFoundException");
  EXPECT_EQ(FindApprovalRun(h.p, "Nope", "Approve", token).status().wire_name(),
            "StageNotFoundException");

  ASSERT_TRUE(h.Complete(e, "Gate", "Approve").ok());
  EXPECT_EQ(FindApprovalRun(h.p, "Gate", "Approve", token).status().wire_name(),
            "ApprovalAlreadyCompletedException");
}

// Rule 24: a rejection fails the action, the stage and the execution.
TEST(Approval, RejectionFailsTheExecution) {
  Harness h(WithApproval());
  std::string e = h.Start();
  ASSERT_TRUE(h.Complete(e, "Source", "Src").ok());
  ASSERT_TRUE(h.Complete(e, "Gate", "Check").ok());
  ASSERT_TRUE(h.Fail(e, "Gate", "Approve").ok());
  EXPECT_EQ(h.StageStatusOf(e, "Gate"), "Failed");
  EXPECT_EQ(h.Status(e), "Failed");
}

// Rule 20: in PARALLEL the run id serves as the token.
TEST(Approval, ParallelAcceptsRunIdAsToken) {
  PipelineDecl d = WithApproval();
  d.execution_mode = ExecutionMode::kParallel;
  d.pipeline_type = "V2";
  Harness h(d);
  std::string e = h.Start();
  ASSERT_TRUE(h.Complete(e, "Source", "Src").ok());
  const std::string run_id = h.Latest(e, "Gate", "Approve").id;
  auto found = FindApprovalRun(h.p, "Gate", "Approve", run_id);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, run_id);
  ASSERT_TRUE(h.Complete(e, "Gate", "Approve").ok());
  EXPECT_EQ(FindApprovalRun(h.p, "Gate", "Approve", run_id).status().wire_name(),
            "ApprovalAlreadyCompletedException");
}

// ---------------------------------------------------------------------------
// Crash recovery.

TEST(FailInterruptedRuns, MarksMatchingRunsFailedAndStageBecomesRetryable) {
  Harness h(ThreeStages());
  std::string e = IntoBuild(h);
  const std::string a = h.Latest(e, "Build", "A").id;
  const std::string b = h.Latest(e, "Build", "B").id;
  Outcome o;
  FailInterruptedRuns(
      h.p, [&](const ActionRun& r) { return r.id == a || r.id == b; }, "server restarted", h.now,
      &o);
  EXPECT_THAT(o.changed_runs, UnorderedElementsAre(a, b));
  EXPECT_TRUE(o.changed_executions.count(e));
  EXPECT_THAT(o.effects, IsEmpty());
  const ActionRun& ra = h.Latest(e, "Build", "A");
  EXPECT_EQ(ra.status, ActionStatus::kFailed);
  EXPECT_EQ(ra.error_code, "JobFailed");
  EXPECT_EQ(ra.error_message, "server restarted");
  EXPECT_EQ(h.LatestStatus(e, "Source", "Src"), "Succeeded");
  h.Step();
  EXPECT_EQ(h.StageStatusOf(e, "Build"), "Failed");
  EXPECT_EQ(h.Status(e), "Failed");
  auto r = h.Retry(e, "Build");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(h.Effects(), ElementsAre("Build/A", "Build/B"));
}

TEST(FailInterruptedRuns, LeavesUnmatchedRunsRunning) {
  Harness h(ThreeStages());
  std::string e = IntoBuild(h);
  const std::string a = h.Latest(e, "Build", "A").id;
  Outcome o;
  FailInterruptedRuns(
      h.p, [&](const ActionRun& r) { return r.id == a; }, "gone", h.now, &o);
  h.Step();
  EXPECT_EQ(h.LatestStatus(e, "Build", "B"), "InProgress");
  EXPECT_EQ(h.StageStatusOf(e, "Build"), "InProgress");
}

}  // namespace
}  // namespace pw::core::machine_test
