#include "runner/codebuild.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_files.h"
#include "runner/temp_dir.h"

namespace pw::runner::codebuild_test {
namespace {

using test_files::ReadFile;

using ::testing::HasSubstr;

class CodeBuildRun : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = ScopedTempDir::Create("codebuild-test");
    ASSERT_TRUE(tmp.ok());
    tmp_.emplace(std::move(*tmp));
    launcher_ = NewPosixProcessLauncher();
    ASSERT_EQ(mkdir((tmp_->path() + "/bin").c_str(), 0755), 0);
    const std::string t = tmp_->path() + "/bin/t";
    {
      std::ofstream script(t);
      script << "#!/bin/sh\nprintf '%s:%s ' \"$1\" \"$CODEBUILD_BUILD_SUCCEEDING\" >> "
             << tmp_->path() << "/trace\n";
    }
    ASSERT_EQ(chmod(t.c_str(), 0755), 0);
  }

  CodeBuildRequest Request(const std::string& yaml) {
    CodeBuildRequest r;
    auto spec = ParseBuildspecText(yaml);
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    if (spec.ok()) r.buildspec = *spec;
    // `t NAME` (a script on PATH) appends "NAME:$CODEBUILD_BUILD_SUCCEEDING " to the trace.
    r.base_env = {"PATH=" + tmp_->path() + "/bin:/usr/bin:/bin", "HOME=" + tmp_->path()};
    r.cwd = tmp_->path();
    r.log_path = tmp_->path() + "/log";
    r.status_file = tmp_->path() + "/status";
    r.variables_file = tmp_->path() + "/vars";
    r.kill_grace_seconds = 0.2;
    return r;
  }

  CodeBuildOutcome Run(const CodeBuildRequest& r) {
    // Fresh result files and trace per run.
    std::remove(r.status_file.c_str());
    std::remove(r.variables_file.c_str());
    std::remove((tmp_->path() + "/trace").c_str());
    std::remove(r.log_path.c_str());
    auto p = PrepareCodeBuild(r);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    if (!p.ok()) return {};
    auto done = std::make_shared<std::promise<ProcessExit>>();
    std::future<ProcessExit> future = done->get_future();
    auto id =
        launcher_->Start(p->spec, [done](ProcessId, const ProcessExit& x) { done->set_value(x); });
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    if (!id.ok()) return {};
    EXPECT_EQ(future.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    return ReadCodeBuildOutcome(*p, future.get());
  }

  std::string Trace() { return ReadFile(tmp_->path() + "/trace"); }

  std::optional<ScopedTempDir> tmp_;
  std::unique_ptr<ProcessLauncher> launcher_;
};

// Each phase's commands: `t NAME` records that it ran and what
// CODEBUILD_BUILD_SUCCEEDING was; `false` fails.
struct PhaseCase {
  const char* name;
  const char* phases;     // The YAML under phases:.
  const char* trace;      // What ran, in order.
  const char* failure;    // Substring of failure_message; nullptr = succeeded.
  const char* log_lines;  // Substring of the log, or nullptr.
};

TEST_F(CodeBuildRun, PhaseSemanticsAsCodeBuildDocumentsThem) {
  const std::vector<PhaseCase> cases = {
      {"all succeed",
       "  install: {commands: [t i]}\n  pre_build: {commands: [t p]}\n"
       "  build: {commands: [t b1, t b2]}\n  post_build: {commands: [t pb]}\n",
       "i:1 p:1 b1:1 b2:1 pb:1 ", nullptr, "Phase complete: POST_BUILD State: SUCCEEDED"},
      {"failing install ends the build",
       "  install: {commands: [t i, 'false', t never]}\n  pre_build: {commands: [t p]}\n"
       "  build: {commands: [t b]}\n  post_build: {commands: [t pb]}\n",
       "i:1 ", "Phase INSTALL: command 2 (false) exited with code 1.",
       "Command did not exit successfully false exit status 1"},
      {"failing pre_build ends the build",
       "  pre_build: {commands: ['exit_with() { return $1; }; exit_with 7']}\n"
       "  build: {commands: [t b]}\n  post_build: {commands: [t pb]}\n",
       "",
       "Phase PRE_BUILD: command 1 (exit_with() { return $1; }; exit_with 7) exited with code 7.",
       "Phase complete: PRE_BUILD State: FAILED"},
      {"failing build still runs post_build with SUCCEEDING=0",
       "  build: {commands: [t b, 'false', t never]}\n  post_build: {commands: [t pb]}\n",
       "b:1 pb:0 ", "Phase BUILD: command 2 (false) exited with code 1.",
       "Entering phase POST_BUILD"},
      {"failing post_build fails the build",
       "  build: {commands: [t b]}\n  post_build: {commands: ['false', t never]}\n", "b:1 ",
       "Phase POST_BUILD: command 1 (false) exited with code 1.", nullptr},
      {"on-failure CONTINUE runs the next phases, the build still fails",
       "  install: {on-failure: CONTINUE, commands: ['false', t never]}\n"
       "  pre_build: {commands: [t p]}\n  build: {commands: [t b]}\n",
       "p:0 b:0 ", "Phase INSTALL: command 1 (false) exited with code 1.", nullptr},
      {"finally runs after a failing command and the phase fails",
       "  pre_build: {commands: [t p, 'false'], finally: [t f1, t f2]}\n"
       "  build: {commands: [t b]}\n",
       "p:1 f1:0 f2:0 ", "Phase PRE_BUILD: command 2 (false) exited with code 1.", nullptr},
      {"finally runs after success too",
       "  build: {commands: [t b], finally: [t f]}\n  post_build: {commands: [t pb]}\n",
       "b:1 f:1 pb:1 ", nullptr, nullptr},
      {"a failing finally fails the phase",
       "  build: {commands: [t b], finally: ['false', t never]}\n"
       "  post_build: {commands: [t pb]}\n",
       "b:1 pb:0 ", "Phase BUILD: finally command 1 (false) exited with code 1.", nullptr},
      {"shell state carries between commands and phases",
       "  install: {commands: ['mkdir -p sub && cd sub', 'export CARRIED=yes', 'PLAIN=also']}\n"
       "  build: {commands: ['t \"$(basename \"$PWD\")-$CARRIED-$PLAIN\"']}\n",
       "sub-yes-also:1 ", nullptr, nullptr},
      {"a command that calls exit fails the build naming it",
       "  build: {commands: [t b, 'exit 0', t never]}\n  post_build: {commands: [t pb]}\n", "b:1 ",
       "The build shell exited with code 0 in phase BUILD, command 2 (exit 0) before the build "
       "ended (a command called exit, or the shell could not read a command).",
       nullptr},
  };
  for (const PhaseCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::string yaml = std::string("version: 0.2\nphases:\n") + c.phases;
    CodeBuildRequest r = Request(yaml);
    CodeBuildOutcome o = Run(r);
    std::string log = ReadFile(r.log_path);
    EXPECT_EQ(Trace(), c.trace) << log;
    if (c.failure == nullptr) {
      EXPECT_TRUE(o.succeeded) << o.failure_message << "\n" << log;
    } else {
      EXPECT_FALSE(o.succeeded) << log;
      EXPECT_EQ(o.failure_message, c.failure);
    }
    if (c.log_lines != nullptr) {
      EXPECT_THAT(log, HasSubstr(c.log_lines));
    }
  }
}

TEST_F(CodeBuildRun, FailureMessageNamesPhaseCommandAndExitCode) {
  CodeBuildRequest r = Request(
      "version: 0.2\nphases:\n  build:\n    commands:\n      - echo ok\n      - sh -c 'exit 42'\n");
  CodeBuildOutcome o = Run(r);
  EXPECT_FALSE(o.succeeded);
  EXPECT_EQ(o.failure_message, "Phase BUILD: command 2 (sh -c 'exit 42') exited with code 42.");
  EXPECT_EQ(o.phase, "BUILD");
  std::string log = ReadFile(r.log_path);
  EXPECT_THAT(log, HasSubstr("[Container] Entering phase BUILD\n"));
  EXPECT_THAT(log, HasSubstr("[Container] Running command echo ok\nok\n"));
  EXPECT_THAT(log,
              HasSubstr("[Container] Command did not exit successfully sh -c 'exit 42' exit status "
                        "42\n[Container] Phase complete: BUILD State: FAILED"));
}

TEST_F(CodeBuildRun, ExportedVariablesAreReadBackOnSuccessOnly) {
  CodeBuildRequest r = Request(R"yaml(version: 0.2
env:
  variables:
    FROM_SPEC: spec
    OVERRIDDEN: spec
  exported-variables: [VERSION, FROM_SPEC, OVERRIDDEN, MULTI, NEVER_SET]
phases:
  build:
    commands:
      - export VERSION="1.2.$BUILD_N"
      - MULTI="$(printf 'a\nb=c')"
)yaml");
  r.env = r.buildspec.variables;
  r.env.emplace_back("OVERRIDDEN", "action");
  r.env.emplace_back("BUILD_N", "7");
  CodeBuildOutcome o = Run(r);
  ASSERT_TRUE(o.succeeded) << o.failure_message << ReadFile(r.log_path);
  EXPECT_EQ(o.exported_variables["VERSION"], "1.2.7");
  EXPECT_EQ(o.exported_variables["FROM_SPEC"], "spec");
  EXPECT_EQ(o.exported_variables["OVERRIDDEN"], "action");
  EXPECT_EQ(o.exported_variables["MULTI"], "a\nb=c");
  EXPECT_EQ(o.exported_variables["NEVER_SET"], "");
  EXPECT_EQ(o.summary, "Build succeeded: 2 command(s) in 1 phase(s)");

  r.buildspec.phases[BuildPhase::kPostBuild].commands = {"false"};
  o = Run(r);
  EXPECT_FALSE(o.succeeded);
  EXPECT_TRUE(o.exported_variables.empty());
}

TEST_F(CodeBuildRun, NotesAreLoggedAndBashIsUsedWhenAsked) {
  CodeBuildRequest r = Request(R"(version: 0.2
env:
  shell: bash
  git-credential-helper: yes
phases:
  build:
    commands:
      - 'echo "shell=${BASH_VERSION:+bash}"'
      - 'echo "it''s quoted"'
)");
  CodeBuildOutcome o = Run(r);
  ASSERT_TRUE(o.succeeded) << o.failure_message;
  std::string log = ReadFile(r.log_path);
  EXPECT_THAT(log, HasSubstr("[Container] Note: env.git-credential-helper is ignored"));
  EXPECT_THAT(log, HasSubstr("shell=bash\n"));
  EXPECT_THAT(log, HasSubstr("[Container] Running command echo \"it's quoted\"\nit's quoted\n"));
}

TEST_F(CodeBuildRun, TimeoutNamesThePhase) {
  CodeBuildRequest r = Request("version: 0.2\nphases:\n  build:\n    commands: [sleep 30]\n");
  auto p = PrepareCodeBuild(r);
  ASSERT_TRUE(p.ok());
  p->spec.timeout_seconds = 0.5;
  auto done = std::make_shared<std::promise<ProcessExit>>();
  auto future = done->get_future();
  ASSERT_TRUE(
      launcher_->Start(p->spec, [done](ProcessId, const ProcessExit& x) { done->set_value(x); })
          .ok());
  ASSERT_EQ(future.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  CodeBuildOutcome o = ReadCodeBuildOutcome(*p, future.get());
  EXPECT_FALSE(o.succeeded);
  EXPECT_EQ(o.failure_message, "Timed out after 60 minute(s) in phase BUILD.");
}

TEST_F(CodeBuildRun, ArtifactsHonourBaseDirectoryDiscardPathsAndExcludes) {
  namespace fs = std::filesystem;
  const std::string src = tmp_->path() + "/src";
  for (const char* f : {"dist/bin/app", "dist/share/doc.txt", "dist/share/x.tmp", "dist/top.txt",
                        "other/skip.txt"}) {
    fs::create_directories(fs::path(src + "/" + f).parent_path());
    std::ofstream(src + "/" + f) << f;
  }
  BuildspecArtifacts a;
  a.files = {"**/*"};
  a.base_directory = "dist";
  a.exclude_paths = {"**/*.tmp"};
  const std::string kept = tmp_->path() + "/kept";
  ASSERT_TRUE(CollectArtifactFiles(src, a, kept).ok());
  EXPECT_EQ(ReadFile(kept + "/bin/app"), "dist/bin/app");
  EXPECT_TRUE(fs::exists(kept + "/share/doc.txt"));
  EXPECT_TRUE(fs::exists(kept + "/top.txt"));
  EXPECT_FALSE(fs::exists(kept + "/share/x.tmp"));
  EXPECT_FALSE(fs::exists(kept + "/other"));

  a.discard_paths = true;
  const std::string flat = tmp_->path() + "/flat";
  ASSERT_TRUE(CollectArtifactFiles(src, a, flat).ok());
  EXPECT_TRUE(fs::exists(flat + "/app"));
  EXPECT_TRUE(fs::exists(flat + "/doc.txt"));
  EXPECT_FALSE(fs::exists(flat + "/bin"));

  std::ofstream(src + "/dist/bin/doc.txt") << "again";
  EXPECT_THAT(CollectArtifactFiles(src, a, tmp_->path() + "/clash").message(),
              HasSubstr("discard-paths puts both"));
  a.files = {"*.none"};
  EXPECT_THAT(CollectArtifactFiles(src, a, tmp_->path() + "/none").message(),
              HasSubstr("no file in base-directory 'dist' matches files [*.none]"));
  a.base_directory = "missing";
  EXPECT_THAT(CollectArtifactFiles(src, a, tmp_->path() + "/none").message(),
              HasSubstr("does not exist after the build"));
  fs::create_symlink("/etc", src + "/escape");
  a.base_directory = "escape";
  EXPECT_THAT(CollectArtifactFiles(src, a, tmp_->path() + "/none").message(),
              HasSubstr("leaves the source directory"));
}

TEST(CheckCodeBuildConfiguration, AcceptsAndRefusesNamingTheField) {
  const std::vector<std::string> one = {"Src"};
  const std::vector<std::string> two = {"Src", "Lib"};
  EXPECT_TRUE(CheckCodeBuildConfiguration({{"ProjectName", "my-app_1"}}, one).ok());
  EXPECT_TRUE(CheckCodeBuildConfiguration({{"ProjectName", "#{variables.p}"}}, one).ok());
  EXPECT_TRUE(
      CheckCodeBuildConfiguration({{"ProjectName", "p1"}, {"PrimarySource", "Lib"}}, two).ok());
  EXPECT_TRUE(
      CheckCodeBuildConfiguration({{"ProjectName", "p1"}, {"BatchEnabled", "false"}}, one).ok());
  const std::vector<std::pair<std::map<std::string, std::string>, const char*>> refused = {
      {{{"ProjectName", "a b"}}, "configuration ProjectName 'a b'"},
      {{{"ProjectName", "p1"}}, "PrimarySource is required"},
      {{{"ProjectName", "p1"}, {"PrimarySource", "X"}}, "PrimarySource 'X' must name"},
      {{{"ProjectName", "p1"}, {"BatchEnabled", "true"}}, "BatchEnabled true is not supported"},
      {{{"ProjectName", "p1"}, {"CombineArtifacts", "true"}}, "CombineArtifacts true"},
      {{{"ProjectName", "p1"}, {"EnvironmentVariables", "{}"}}, "must be a JSON list"},
      {{{"ProjectName", "p1"}, {"EnvironmentVariables", R"([{"name":"A","type":"X"}])"}},
       "EnvironmentVariables[0].type must be PLAINTEXT"},
  };
  for (const auto& [config, message] : refused) {
    SCOPED_TRACE(message);
    const auto& inputs = config.count("PrimarySource") || config.size() == 1 ? two : one;
    Status s =
        CheckCodeBuildConfiguration(config, config.at("ProjectName") == "a b" ? one : inputs);
    EXPECT_THAT(s.message(), HasSubstr(message));
  }
  auto vars = ParseCodeBuildEnvironmentVariables(
      R"([{"name":"A","value":"1"},{"name":"B","value":"/p","type":"PARAMETER_STORE"}])");
  ASSERT_TRUE(vars.ok());
  ASSERT_EQ(vars->size(), 2u);
  EXPECT_EQ((*vars)[0].type, "PLAINTEXT");
  EXPECT_EQ((*vars)[1].type, "PARAMETER_STORE");
}

TEST(PrepareCodeBuild, RefusesAnEmptyBuildAndNulBytes) {
  CodeBuildRequest r;
  r.buildspec = *ParseBuildspecText("version: 0.2\nphases:\n  build: {}\n");
  EXPECT_THAT(PrepareCodeBuild(r).status().message(), HasSubstr("has no commands"));
  r.buildspec.phases[BuildPhase::kBuild].commands = {"true"};
  r.env = {{"BAD", std::string("a\0b", 3)}};
  EXPECT_THAT(PrepareCodeBuild(r).status().message(), HasSubstr("BAD holds a NUL byte"));
}

TEST(ShellSingleQuote, RoundTripsThroughTheShell) {
  EXPECT_EQ(ShellSingleQuote("a'b"), "'a'\\''b'");
  EXPECT_EQ(ShellSingleQuote(""), "''");
}

}  // namespace
}  // namespace pw::runner::codebuild_test
