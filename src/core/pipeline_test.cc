#include "core/pipeline.h"

#include <gtest/gtest.h>

namespace pw::core::pipeline_test {
namespace {

StageDecl Stage(std::string name, std::vector<ActionDecl> actions) {
  StageDecl s;
  s.name = std::move(name);
  s.actions = std::move(actions);
  return s;
}

ActionDecl Action(std::string name, std::string category, int run_order = 1,
                  std::vector<std::string> in = {}, std::vector<std::string> out = {}) {
  ActionDecl a;
  a.name = std::move(name);
  a.type = {std::move(category), "AWS", category == "Source" ? "Directory" : "Commands", "1"};
  if (a.type.category == "Approval") a.type.provider = "Manual";
  a.run_order = run_order;
  a.input_artifacts = std::move(in);
  for (auto& o : out) a.output_artifacts.push_back({o, {}});
  return a;
}

PipelineDecl Valid() {
  PipelineDecl p;
  p.name = "p";
  p.has_artifact_store = true;
  p.stages.push_back(Stage("Source", {Action("Src", "Source", 1, {}, {"SourceOut"})}));
  p.stages.push_back(Stage("Build", {Action("A", "Build", 1, {"SourceOut"}, {"BuildOut"}),
                                     Action("B", "Test", 2, {"BuildOut"})}));
  return p;
}

bool KnownAll(const ActionTypeId&) { return true; }

struct Case {
  const char* name;
  std::function<void(PipelineDecl&)> mutate;
  const char* wire;  // nullptr = valid
};

const Case kCases[] = {
    {"valid", [](PipelineDecl&) {}, nullptr},
    {"one stage", [](PipelineDecl& p) { p.stages.pop_back(); }, "InvalidStructureException"},
    {"both stores", [](PipelineDecl& p) { p.has_artifact_stores = true; },
     "InvalidStructureException"},
    {"no store", [](PipelineDecl& p) { p.has_artifact_store = false; },
     "InvalidStructureException"},
    {"duplicate stage", [](PipelineDecl& p) { p.stages[1].name = "Source"; },
     "InvalidStageDeclarationException"},
    {"empty stage", [](PipelineDecl& p) { p.stages[1].actions.clear(); },
     "InvalidStageDeclarationException"},
    {"non-source first", [](PipelineDecl& p) { p.stages[0].actions[0].type.category = "Build"; },
     "InvalidStageDeclarationException"},
    {"source later", [](PipelineDecl& p) { p.stages[1].actions.push_back(Action("S2", "Source")); },
     "InvalidStageDeclarationException"},
    {"duplicate action", [](PipelineDecl& p) { p.stages[1].actions[1].name = "A"; },
     "InvalidActionDeclarationException"},
    {"duplicate output",
     [](PipelineDecl& p) { p.stages[1].actions[0].output_artifacts[0].name = "SourceOut"; },
     "InvalidStructureException"},
    {"input from nowhere",
     [](PipelineDecl& p) { p.stages[1].actions[0].input_artifacts = {"Nope"}; },
     "InvalidStructureException"},
    {"input from same runOrder", [](PipelineDecl& p) { p.stages[1].actions[1].run_order = 1; },
     "InvalidStructureException"},
    {"runOrder gaps allowed", [](PipelineDecl& p) { p.stages[1].actions[1].run_order = 7; },
     nullptr},
    {"queued needs V2", [](PipelineDecl& p) { p.execution_mode = ExecutionMode::kQueued; },
     "InvalidStructureException"},
    {"queued with V2",
     [](PipelineDecl& p) {
       p.execution_mode = ExecutionMode::kQueued;
       p.pipeline_type = "V2";
     },
     nullptr},
    {"retry with conditions",
     [](PipelineDecl& p) {
       p.stages[1].on_failure = FailureResult::kRetry;
       p.stages[1].on_failure_has_conditions = true;
     },
     "InvalidStageDeclarationException"},
    {"retryConfiguration without RETRY",
     [](PipelineDecl& p) {
       p.stages[1].on_failure = FailureResult::kFail;
       p.stages[1].on_failure_has_retry_configuration = true;
     },
     "InvalidStageDeclarationException"},
    {"rollback of source stage",
     [](PipelineDecl& p) { p.stages[0].on_failure = FailureResult::kRollback; },
     "InvalidStageDeclarationException"},
    {"distinct namespaces",
     [](PipelineDecl& p) {
       p.stages[0].actions[0].namespace_name = "SourceVariables";
       p.stages[1].actions[0].namespace_name = "BuildVariables";
     },
     nullptr},
    // Before: accepted, and a job worker's output variables then resolved as
    // #{codepipeline.PipelineExecutionId} in later actions.
    {"namespace codepipeline",
     [](PipelineDecl& p) { p.stages[1].actions[0].namespace_name = "codepipeline"; },
     "InvalidActionDeclarationException"},
    {"namespace variables",
     [](PipelineDecl& p) { p.stages[1].actions[0].namespace_name = "variables"; },
     "InvalidActionDeclarationException"},
    {"namespace twice",
     [](PipelineDecl& p) {
       p.stages[0].actions[0].namespace_name = "NS";
       p.stages[1].actions[1].namespace_name = "NS";
     },
     "InvalidActionDeclarationException"},
    {"namespace named like an artifact",
     [](PipelineDecl& p) { p.stages[1].actions[1].namespace_name = "SourceOut"; },
     "InvalidActionDeclarationException"},
};

class StructureTest : public ::testing::TestWithParam<Case> {};

TEST_P(StructureTest, Rule) {
  PipelineDecl p = Valid();
  GetParam().mutate(p);
  Status s = ValidateStructure(p, KnownAll);
  if (GetParam().wire == nullptr) {
    EXPECT_TRUE(s.ok()) << s.ToString();
  } else {
    EXPECT_EQ(s.wire_name(), GetParam().wire) << s.ToString();
  }
}

INSTANTIATE_TEST_SUITE_P(A6, StructureTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           std::string n = i.param.name;
                           for (char& ch : n) {
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return n;
                         });

TEST(Structure, UnknownActionTypeIsActionDeclarationError) {
  PipelineDecl p = Valid();
  Status s = ValidateStructure(p, [](const ActionTypeId& t) { return t.category != "Test"; });
  EXPECT_EQ(s.wire_name(), "InvalidActionDeclarationException");
  EXPECT_NE(s.message().find("Test/AWS/Commands/1"), std::string::npos);
}

TEST(Structure, RunOrdersAreSortedAndDistinct) {
  StageDecl s =
      Stage("S", {Action("a", "Build", 3), Action("b", "Build", 1), Action("c", "Build", 3)});
  EXPECT_EQ(s.RunOrders(), (std::vector<int>{1, 3}));
}

}  // namespace
}  // namespace pw::core::pipeline_test
