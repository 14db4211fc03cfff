#include "engine/build_projects.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <string>
#include <vector>

#include "runner/temp_dir.h"

namespace pw::engine::build_projects_test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

Result<BuildProjects> Parse(const std::string& yaml) {
  return ParseBuildProjects(YAML::Load(yaml));
}

TEST(BuildProjects, ParsesProjectsAndSecrets) {
  auto p = Parse(R"(
projects:
  web-app:
    buildspec: ci/buildspec.yml
    environment-variables:
      STAGE: prod
      EMPTY:
    image: localhost/builder:1
    timeout: 30
    privileged: true
  inline-one:
    buildspec:
      version: 0.2
      phases:
        build:
          commands: [make]
  as-text:
    buildspec: |
      version: 0.2
      phases:
        build:
          commands: [make test]
  bare:
secrets:
  parameter-store:
    /app/stage: {value: prod}
  secrets-manager:
    prod/api: {file: /etc/pipewright/api.json}
)");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->projects.size(), 4u);
  const BuildProject& web = p->projects.at("web-app");
  EXPECT_TRUE(web.declared);
  EXPECT_EQ(web.buildspec_path, "ci/buildspec.yml");
  EXPECT_FALSE(web.inline_buildspec.has_value());
  EXPECT_THAT(web.environment, ElementsAre(Pair("STAGE", "prod"), Pair("EMPTY", "")));
  EXPECT_EQ(web.image, "localhost/builder:1");
  EXPECT_EQ(web.timeout_minutes, 30);
  EXPECT_TRUE(web.privileged);
  ASSERT_TRUE(p->projects.at("inline-one").inline_buildspec.has_value());
  EXPECT_THAT(
      p->projects.at("inline-one").inline_buildspec->phases[runner::BuildPhase::kBuild].commands,
      ElementsAre("make"));
  ASSERT_TRUE(p->projects.at("as-text").inline_buildspec.has_value());
  EXPECT_EQ(p->projects.at("bare").buildspec_path, "buildspec.yml");
  EXPECT_EQ(p->projects.at("bare").timeout_minutes, 60);
  EXPECT_EQ(p->parameters.at("/app/stage").value, "prod");
  EXPECT_EQ(p->secrets.at("prod/api").file, "/etc/pipewright/api.json");

  BuildProject undeclared = ProjectFor(*p, "other");
  EXPECT_FALSE(undeclared.declared);
  EXPECT_EQ(undeclared.buildspec_path, "buildspec.yml");
  EXPECT_EQ(undeclared.timeout_minutes, 60);
  EXPECT_TRUE(undeclared.image.empty());
}

TEST(BuildProjects, EmptyDocumentHasNoProjects) {
  auto p = Parse("");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->projects.empty());
}

TEST(BuildProjects, RefusesMistakesNamingThem) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {"project: {}", "unknown key 'project'"},
      {"projects:\n  x: {}", "project name 'x'"},
      {"projects:\n  -bad: {}", "project name '-bad'"},
      {"projects:\n  ok-1:\n    image-name: x", "projects.ok-1: unknown key 'image-name'"},
      {"projects:\n  ok-1:\n    timeout: 0", "from 1 to 2160, not '0'"},
      {"projects:\n  ok-1:\n    timeout: 3000", "from 1 to 2160"},
      {"projects:\n  ok-1:\n    buildspec: ../up.yml", "inside the primary source"},
      {"projects:\n  ok-1:\n    buildspec: /etc/x.yml", "inside the primary source"},
      {"projects:\n  ok-1:\n    buildspec: {version: 0.1}", "projects.ok-1.buildspec: buildspec:"},
      {"projects:\n  ok-1:\n    image: '-v /:/x'", "image reference"},
      {"projects:\n  ok-1:\n    privileged: maybe", "true or false"},
      {"projects:\n  ok-1:\n    environment-variables: {A-B: 1}", "'A-B'"},
      {"secrets:\n  vault: {}", "unknown key 'vault'"},
      {"secrets:\n  parameter-store:\n    /a: {file: /x, value: y}", "exactly one of file"},
      {"secrets:\n  parameter-store:\n    /a: {}", "exactly one of file"},
      {"secrets:\n  parameter-store:\n    /a: {file: rel}", "absolute path"},
  };
  for (const auto& [yaml, message] : cases) {
    SCOPED_TRACE(yaml);
    auto p = Parse(yaml);
    ASSERT_FALSE(p.ok());
    EXPECT_THAT(p.status().message(), HasSubstr(message));
  }
}

TEST(BuildProjects, ResolvesParametersAndSecretsFromTheDeclaredSource) {
  auto tmp = runner::ScopedTempDir::Create("build-projects");
  ASSERT_TRUE(tmp.ok());
  const std::string file = tmp->path() + "/api.json";
  std::ofstream(file) << R"({"token": "s3cr3t", "port": 8443})"
                      << "\n";
  const std::string pw = tmp->path() + "/pw";
  std::ofstream(pw) << "hunter2\n";
  auto p = Parse("secrets:\n  parameter-store:\n    /db/pw: {file: " + pw +
                 "}\n    /plain: {value: v}\n    /gone: {file: " + tmp->path() +
                 "/missing}\n  secrets-manager:\n    prod/api: {file: " + file + "}\n");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(*ResolveParameter(*p, "/db/pw"), "hunter2");
  EXPECT_EQ(*ResolveParameter(*p, "/plain"), "v");
  EXPECT_THAT(ResolveParameter(*p, "/nope").status().message(),
              HasSubstr("'/nope' is not declared. Declare it in the server's build projects file"));
  EXPECT_THAT(ResolveParameter(*p, "/gone").status().message(), HasSubstr("Cannot read the file"));
  EXPECT_EQ(*ResolveSecret(*p, {"prod/api", "token"}), "s3cr3t");
  EXPECT_EQ(*ResolveSecret(*p, {"prod/api", "port"}), "8443");
  EXPECT_EQ(*ResolveSecret(*p, {"prod/api", ""}), R"({"token": "s3cr3t", "port": 8443})");
  EXPECT_THAT(ResolveSecret(*p, {"prod/api", "nokey"}).status().message(),
              HasSubstr("has no key 'nokey'"));
  auto missing = ResolveSecret(*p, {"other", ""});
  EXPECT_THAT(missing.status().message(), HasSubstr("secrets-manager: 'other'"));
  EXPECT_EQ(missing.status().wire_name(), "ConfigurationError");
}

TEST(BuildProjects, LoadNamesAMissingFileAndYamlErrors) {
  EXPECT_EQ(LoadBuildProjects("/nonexistent/pw.yml").status().code(), StatusCode::kNotFound);
  auto tmp = runner::ScopedTempDir::Create("build-projects");
  ASSERT_TRUE(tmp.ok());
  std::ofstream(tmp->path() + "/bad.yml") << "projects: [\n";
  EXPECT_THAT(LoadBuildProjects(tmp->path() + "/bad.yml").status().message(),
              HasSubstr("not valid YAML"));
}

}  // namespace
}  // namespace pw::engine::build_projects_test
