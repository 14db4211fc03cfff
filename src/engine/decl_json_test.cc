// DeclFromJson and NormalizeDeclaration (decl_json.h). Pure; no I/O.

#include "engine/decl_json.h"

#include <gtest/gtest.h>

namespace pw::engine::decl_json_test {
namespace {

using nlohmann::json;

json Declaration() {
  return json::parse(R"({
    "name": "p", "version": 7, "roleArn": "arn:aws:iam::123456789012:role/r",
    "pipelineType": "V2", "executionMode": "QUEUED",
    "artifactStore": {"type": "S3", "location": "bucket-1"},
    "stages": [
      {"name": "Source", "actions": [
        {"name": "Src", "actionTypeId": {"category": "Source", "owner": "AWS",
                                         "provider": "Directory", "version": "1"},
         "configuration": {"Path": "/srv/src"}, "outputArtifacts": [{"name": "SourceOut"}]}]},
      {"name": "Build",
       "onFailure": {"result": "RETRY", "retryConfiguration": {"retryMode": "ALL_ACTIONS"}},
       "actions": [
        {"name": "Compile", "runOrder": 2,
         "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "Commands",
                          "version": "1"},
         "commands": ["make", "make test"], "timeoutInMinutes": 5, "namespace": "BuildVars",
         "environmentVariables": [{"name": "MODE", "value": "release"}],
         "inputArtifacts": [{"name": "SourceOut"}],
         "outputArtifacts": [{"name": "BuildOut", "files": ["dist/**"]}],
         "configuration": {"TimeoutInMinutes": "5", "NotAString": 3}}]}]})");
}

TEST(DeclJson, DeclFromJsonReadsWhatDecisionsNeed) {
  core::PipelineDecl d = DeclFromJson(Declaration());
  EXPECT_EQ(d.name, "p");
  EXPECT_EQ(d.version, 7);
  EXPECT_EQ(d.pipeline_type, "V2");
  EXPECT_EQ(d.execution_mode, core::ExecutionMode::kQueued);
  EXPECT_TRUE(d.has_artifact_store);
  EXPECT_FALSE(d.has_artifact_stores);
  EXPECT_EQ(d.artifact_bucket, "bucket-1");
  ASSERT_EQ(d.stages.size(), 2u);
  const core::StageDecl& build = d.stages[1];
  EXPECT_EQ(build.on_failure, core::FailureResult::kRetry);
  EXPECT_EQ(build.on_failure_retry_mode, "ALL_ACTIONS");
  EXPECT_TRUE(build.on_failure_has_retry_configuration);
  ASSERT_EQ(build.actions.size(), 1u);
  const core::ActionDecl& a = build.actions[0];
  EXPECT_EQ(a.type.ToString(), "Build/AWS/Commands/1");
  EXPECT_EQ(a.run_order, 2);
  EXPECT_EQ(a.commands, (std::vector<std::string>{"make", "make test"}));
  EXPECT_EQ(a.timeout_minutes, 5);
  EXPECT_EQ(a.namespace_name, "BuildVars");
  ASSERT_EQ(a.environment.size(), 1u);
  EXPECT_EQ(a.environment[0].name, "MODE");
  EXPECT_EQ(a.environment[0].value, "release");
  EXPECT_EQ(a.input_artifacts, std::vector<std::string>{"SourceOut"});
  ASSERT_EQ(a.output_artifacts.size(), 1u);
  EXPECT_EQ(a.output_artifacts[0].name, "BuildOut");
  EXPECT_EQ(a.output_artifacts[0].files, std::vector<std::string>{"dist/**"});
  EXPECT_EQ(a.configuration.at("TimeoutInMinutes"), "5");
  EXPECT_EQ(a.configuration.count("NotAString"), 0u);  // Only string values are kept.
  EXPECT_EQ(d.stages[0].actions[0].configuration.at("Path"), "/srv/src");
}

TEST(DeclJson, DefaultsAreSupersededV1RunOrderOneAndBucketFromArtifactStores) {
  json p = {
      {"name", "p"},
      {"artifactStores", {{"us-east-1", {{"type", "S3"}, {"location", "regional"}}}}},
      {"stages", json::array({{{"name", "S"}, {"actions", json::array({{{"name", "A"}}})}}})}};
  core::PipelineDecl d = DeclFromJson(p);
  EXPECT_EQ(d.version, 1);
  EXPECT_EQ(d.pipeline_type, "V1");
  EXPECT_EQ(d.execution_mode, core::ExecutionMode::kSuperseded);
  EXPECT_FALSE(d.has_artifact_store);
  EXPECT_TRUE(d.has_artifact_stores);
  EXPECT_EQ(d.artifact_bucket, "regional");
  EXPECT_EQ(d.stages[0].on_failure, core::FailureResult::kNone);
  EXPECT_EQ(d.stages[0].actions[0].run_order, 1);
  EXPECT_FALSE(d.stages[0].actions[0].timeout_minutes.has_value());
}

TEST(DeclJson, NormalizeFillsAwsDefaultsAndDropsVersion) {
  json p = {
      {"name", "p"},
      {"version", 3},
      {"stages", json::array({{{"name", "S"}, {"actions", json::array({{{"name", "A"}}})}}})}};
  json n = NormalizeDeclaration(p);
  EXPECT_FALSE(n.contains("version"));
  EXPECT_EQ(n["pipelineType"], "V1");
  EXPECT_EQ(n["executionMode"], "SUPERSEDED");
  const json& a = n["stages"][0]["actions"][0];
  EXPECT_EQ(a["runOrder"], 1);
  EXPECT_EQ(a["inputArtifacts"], json::array());
  EXPECT_EQ(a["outputArtifacts"], json::array());
  EXPECT_EQ(a["configuration"], json::object());
  // What was given is kept.
  json q = Declaration();
  json m = NormalizeDeclaration(q);
  EXPECT_EQ(m["executionMode"], "QUEUED");
  EXPECT_EQ(m["stages"][1]["actions"][0]["runOrder"], 2);
}

}  // namespace
}  // namespace pw::engine::decl_json_test
