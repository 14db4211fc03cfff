#include "runner/buildspec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pw::runner::buildspec_test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(Buildspec, ParsesARealisticFile) {
  auto spec = ParseBuildspecText(R"(version: 0.2
env:
  shell: bash
  variables:
    GREETING: "hello world"
    COUNT: 3
    EMPTY:
  parameter-store:
    DB_PASSWORD: /app/db/password
  secrets-manager:
    TOKEN: prod/api:token
    WHOLE: arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCd
  exported-variables:
    - VERSION
    - BUILT_AT
  git-credential-helper: yes
phases:
  install:
    runtime-versions:
      nodejs: 18
    commands:
      - echo install
  pre_build:
    on-failure: CONTINUE
    commands:
      - echo pre
  build:
    commands:
      - make all
      - |
        echo multi
        echo line
    finally:
      - echo cleanup
  post_build:
    commands: echo single
artifacts:
  files:
    - '**/*'
  base-directory: dist
  discard-paths: yes
  exclude-paths: ['**/*.map']
  name: my-build
  secondary-artifacts:
    Reports:
      files: [report.xml]
      base-directory: out
)");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->shell, "/bin/bash");
  EXPECT_THAT(spec->variables,
              ElementsAre(Pair("GREETING", "hello world"), Pair("COUNT", "3"), Pair("EMPTY", "")));
  EXPECT_THAT(spec->parameter_store, ElementsAre(Pair("DB_PASSWORD", "/app/db/password")));
  ASSERT_EQ(spec->secrets_manager.size(), 2u);
  EXPECT_EQ(spec->secrets_manager[0].second.secret_id, "prod/api");
  EXPECT_EQ(spec->secrets_manager[0].second.json_key, "token");
  EXPECT_EQ(spec->secrets_manager[1].second.secret_id,
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCd");
  EXPECT_EQ(spec->secrets_manager[1].second.json_key, "");
  EXPECT_THAT(spec->exported_variables, ElementsAre("VERSION", "BUILT_AT"));
  ASSERT_EQ(spec->phases.size(), 4u);
  EXPECT_THAT(spec->phases[BuildPhase::kInstall].commands, ElementsAre("echo install"));
  EXPECT_TRUE(spec->phases[BuildPhase::kPreBuild].continue_on_failure);
  EXPECT_FALSE(spec->phases[BuildPhase::kBuild].continue_on_failure);
  EXPECT_THAT(spec->phases[BuildPhase::kBuild].commands,
              ElementsAre("make all", "echo multi\necho line\n"));
  EXPECT_THAT(spec->phases[BuildPhase::kBuild].finally, ElementsAre("echo cleanup"));
  EXPECT_THAT(spec->phases[BuildPhase::kPostBuild].commands, ElementsAre("echo single"));
  ASSERT_TRUE(spec->artifacts.has_value());
  EXPECT_THAT(spec->artifacts->files, ElementsAre("**/*"));
  EXPECT_EQ(spec->artifacts->base_directory, "dist");
  EXPECT_TRUE(spec->artifacts->discard_paths);
  EXPECT_THAT(spec->artifacts->exclude_paths, ElementsAre("**/*.map"));
  ASSERT_EQ(spec->secondary_artifacts.count("Reports"), 1u);
  EXPECT_EQ(spec->secondary_artifacts["Reports"].base_directory, "out");
  // Accepted but not acted on: each is a note for the build's log.
  std::string notes;
  for (const auto& n : spec->notes) notes += n + "\n";
  EXPECT_THAT(notes, HasSubstr("env.git-credential-helper is ignored"));
  EXPECT_THAT(notes, HasSubstr("phases.install.runtime-versions is ignored"));
  EXPECT_THAT(notes, HasSubstr("artifacts.name is ignored"));
}

TEST(Buildspec, MinimalFileHasDefaults) {
  auto spec = ParseBuildspecText("version: 0.2\nphases:\n  build:\n    commands: [make]\n");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->shell, "/bin/sh");
  EXPECT_FALSE(spec->artifacts.has_value());
  EXPECT_TRUE(spec->notes.empty());
  EXPECT_EQ(spec->phases.size(), 1u);
}

TEST(Buildspec, NotedKeysAreAcceptedWithANote) {
  for (const char* key : {"proxy", "cache", "reports"}) {
    auto spec = ParseBuildspecText(std::string("version: 0.2\n") + key +
                                   ":\n  x: y\nphases:\n  build:\n    commands: [make]\n");
    ASSERT_TRUE(spec.ok()) << key << ": " << spec.status().ToString();
    ASSERT_EQ(spec->notes.size(), 1u) << key;
    EXPECT_THAT(spec->notes[0], HasSubstr(std::string(key) + " is ignored"));
  }
}

struct Refusal {
  const char* yaml;
  const char* message;  // Substring of the refusal.
};

TEST(Buildspec, RefusesWhatItCannotHonourNamingTheKey) {
  const std::vector<Refusal> cases = {
      {"phases: {}", "version is required"},
      {"version: 0.1\nphases: {}", "0.1 runs each command in its own shell"},
      {"version: 1.0", "version must be 0.2"},
      {"- a\n- b", "must be a YAML mapping"},
      {"version: 0.2\nfoo: 1", "unknown key foo (line 2)"},
      {"version: 0.2\nrun-as: root", "run-as is not supported"},
      {"version: 0.2\nbatch:\n  build-list: []", "batch is not supported"},
      {"version: 0.2\nenv:\n  shell: powershell.exe", "env.shell must be bash or /bin/sh"},
      {"version: 0.2\nenv:\n  variables:\n    1BAD: x", "'1BAD'"},
      {"version: 0.2\nenv:\n  variables:\n    A: {b: c}", "env.variables.A must be a single value"},
      {"version: 0.2\nenv:\n  variables: [A]", "env.variables must be a mapping"},
      {"version: 0.2\nenv:\n  exported-variables: [A-B]", "'A-B' is not an environment"},
      {"version: 0.2\nenv:\n  secrets-manager:\n    T: id:key:AWSCURRENT", "version stages"},
      {"version: 0.2\nenv:\n  vars: {}", "unknown key env.vars"},
      {"version: 0.2\nphases:\n  compile:\n    commands: [x]", "unknown key phases.compile"},
      {"version: 0.2\nphases:\n  build:\n    on-failure: RETRY-2", "phase retries"},
      {"version: 0.2\nphases:\n  build:\n    on-failure: SKIP", "ABORT or CONTINUE, not 'SKIP'"},
      {"version: 0.2\nphases:\n  build:\n    run-as: root", "phases.build.run-as"},
      {"version: 0.2\nphases:\n  build:\n    runtime-versions: {go: 1}", "only allowed in"},
      {"version: 0.2\nphases:\n  build:\n    commands:\n      - a: b", "commands[0] must be"},
      {"version: 0.2\nphases:\n  build:\n    command: [x]", "unknown key phases.build.command"},
      {"version: 0.2\nartifacts:\n  base-directory: x", "artifacts.files is required"},
      {"version: 0.2\nartifacts:\n  files: [a]\n  base-directory: ../up", "inside the source"},
      {"version: 0.2\nartifacts:\n  files: [a]\n  base-directory: /etc", "inside the source"},
      {"version: 0.2\nartifacts:\n  files: [a]\n  discard-paths: maybe", "yes or no"},
      {"version: 0.2\nartifacts:\n  files: [a]\n  secondary-artifacts: [x]",
       "must map artifactIdentifier"},
      {"version: 0.2\nartifacts:\n  secondary-artifacts:\n    A:\n      name: x",
       "secondary-artifacts.A.files is required"},
      {"version: 0.2\nphases: [\n", "not valid YAML"},
  };
  for (const Refusal& c : cases) {
    SCOPED_TRACE(c.yaml);
    auto spec = ParseBuildspecText(c.yaml);
    ASSERT_FALSE(spec.ok());
    EXPECT_THAT(spec.status().message(), HasSubstr("buildspec: "));
    EXPECT_THAT(spec.status().message(), HasSubstr(c.message));
    EXPECT_EQ(spec.status().wire_name(), "ConfigurationError");
  }
}

}  // namespace
}  // namespace pw::runner::buildspec_test
