#include "core/variables.h"

#include <gtest/gtest.h>

namespace pw::core::variables_test {
namespace {

TEST(Variables, ResolvesEveryReference) {
  Variables scope = {{"Build.Tag", "v1"}, {"variables.env", "prod"}};
  auto r = ResolveVariables("deploy #{Build.Tag} to #{variables.env}#{Build.Tag}", scope);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "deploy v1 to prodv1");
  EXPECT_EQ(*ResolveVariables("no references {here}", scope), "no references {here}");
}

TEST(Variables, UnknownOrUnterminatedReferenceIsAnError) {
  EXPECT_NE(ResolveVariables("#{Nope.X}", {}).status().message().find("#{Nope.X}"),
            std::string::npos);
  EXPECT_FALSE(ResolveVariables("#{Build.Tag", {{"Build.Tag", "x"}}).ok());
}

TEST(Variables, ValueWithNulByteIsAnError) {
  auto r = ResolveVariables("x=#{variables.v}", {{"variables.v", std::string("a\0b", 3)}});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("NUL"), std::string::npos);
}

TEST(Variables, ExecutionVariablesUseDefaultsAndOverrides) {
  PipelineDecl d;
  d.name = "p";
  d.variables = {{"env", std::string("dev")}, {"region", std::nullopt}};
  EXPECT_FALSE(ExecutionVariables(d, {}).ok()) << "region has no default";
  auto v = ExecutionVariables(d, {{"region", "eu"}});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, (Variables{{"env", "dev"}, {"region", "eu"}}));
  EXPECT_EQ(ExecutionVariables(d, {{"region", "eu"}, {"bogus", "1"}}).status().wire_name(),
            "ValidationException");
}

TEST(Variables, ScopeHasNamespacedOutputsOfSucceededRunsOnly) {
  PipelineState p;
  p.decl.name = "p";
  StageDecl s;
  s.name = "Build";
  ActionDecl a;
  a.name = "Compile";
  a.namespace_name = "BuildVars";
  ActionDecl b;
  b.name = "Other";
  b.namespace_name = "OtherVars";
  s.actions = {a, b};
  p.decl.stages = {s};
  Execution e;
  e.id = "e1";
  e.variables = {{"env", "prod"}};
  StageRun sr;
  sr.stage = "Build";
  sr.latest = {{"Compile", "r1"}, {"Other", "r2"}};
  e.stages = {sr};
  ActionRun r1;
  r1.id = "r1";
  r1.status = ActionStatus::kSucceeded;
  r1.output_variables = {{"Tag", "v7"}};
  ActionRun r2;
  r2.id = "r2";
  r2.status = ActionStatus::kFailed;
  r2.output_variables = {{"Tag", "bad"}};
  e.runs = {r1, r2};
  Variables scope = VariableScope(p, e);
  EXPECT_EQ(scope.at("BuildVars.Tag"), "v7");
  EXPECT_EQ(scope.count("OtherVars.Tag"), 0u);
  EXPECT_EQ(scope.at("variables.env"), "prod");
  EXPECT_EQ(scope.at("codepipeline.PipelineExecutionId"), "e1");
}

// A pipeline stored before reserved namespaces were refused: its action's
// outputs do not pass for CodePipeline's or the pipeline's variables.
TEST(Variables, OutputsInAReservedNamespaceAreNotInTheScope) {
  PipelineState p;
  StageDecl s;
  s.name = "Build";
  ActionDecl a;
  a.name = "Job";
  a.namespace_name = "codepipeline";
  ActionDecl b;
  b.name = "Job2";
  b.namespace_name = "variables";
  s.actions = {a, b};
  p.decl.stages = {s};
  Execution e;
  e.id = "e1";
  StageRun sr;
  sr.stage = "Build";
  sr.latest = {{"Job", "r1"}, {"Job2", "r2"}};
  e.stages = {sr};
  ActionRun r1;
  r1.id = "r1";
  r1.status = ActionStatus::kSucceeded;
  r1.output_variables = {{"PipelineExecutionId", "SPOOFED"}};
  ActionRun r2 = r1;
  r2.id = "r2";
  r2.output_variables = {{"env", "SPOOFED"}};
  e.runs = {r1, r2};
  Variables scope = VariableScope(p, e);
  EXPECT_EQ(scope.at("codepipeline.PipelineExecutionId"), "e1");
  EXPECT_EQ(scope.count("variables.env"), 0u);
}

}  // namespace
}  // namespace pw::core::variables_test
