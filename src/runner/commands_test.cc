#include "runner/commands.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_files.h"
#include "runner/process_launcher.h"
#include "runner/temp_dir.h"

namespace pw::runner::commands_test {
namespace {

using test_files::ReadFile;

using namespace std::string_literals;

// The value of `name` in `env`, and how many entries set it.
std::pair<std::string, int> EnvValue(const std::vector<std::string>& env, const std::string& name) {
  std::pair<std::string, int> out;
  for (const std::string& e : env) {
    if (e.rfind(name + "=", 0) == 0) {
      out.first = e.substr(name.size() + 1);
      ++out.second;
    }
  }
  return out;
}

// --- CheckCommandsConfiguration: what CreatePipeline refuses. ---

struct ConfigCase {
  const char* key;
  std::string value;
  const char* refusal;  // Substring of the message; nullptr = accepted.
};

TEST(CheckCommandsConfiguration, AcceptsAndRefusesConfigurationValues) {
  const std::vector<ConfigCase> cases = {
      {"EnvironmentVariables", R"([{"name":"A","value":"1"}])", nullptr},
      {"EnvironmentVariables", R"([{"name":"A"}])", nullptr},
      {"EnvironmentVariables", "[]", nullptr},
      {"EnvironmentVariables", R"([{"name":"A","value":1}])", "EnvironmentVariables[0] must be"},
      {"EnvironmentVariables", R"([{"name":"A","value":"x"},{"name":"B","value":true}])",
       "EnvironmentVariables[1] must be"},
      {"EnvironmentVariables", R"([{"name":"A","value":null}])", "EnvironmentVariables[0]"},
      {"EnvironmentVariables", R"([{"value":"x"}])", "EnvironmentVariables[0]"},
      {"EnvironmentVariables", R"([{"name":7,"value":"x"}])", "EnvironmentVariables[0]"},
      {"EnvironmentVariables", R"(["A=1"])", "EnvironmentVariables[0]"},
      {"EnvironmentVariables", R"({"name":"A","value":"1"})", "must be a JSON list"},
      {"EnvironmentVariables", "not json", "must be a JSON list"},
      {"EnvironmentVariables", "#{variables.env}", nullptr},  // Checked when it runs.
      {"TimeoutInMinutes", "1", nullptr},
      {"TimeoutInMinutes", "480", nullptr},
      {"TimeoutInMinutes", "0480", nullptr},
      {"TimeoutInMinutes", "#{variables.minutes}", nullptr},
      {"TimeoutInMinutes", "5abc", "not '5abc'"},
      {"TimeoutInMinutes", "0", "from 1 to 480"},
      {"TimeoutInMinutes", "481", "from 1 to 480"},
      {"TimeoutInMinutes", "", "from 1 to 480"},
      {"TimeoutInMinutes", "-5", "from 1 to 480"},
      {"TimeoutInMinutes", "+5", "from 1 to 480"},
      {"TimeoutInMinutes", " 5", "from 1 to 480"},
      {"TimeoutInMinutes", "5.0", "from 1 to 480"},
      {"TimeoutInMinutes", "99999999999999999999", "from 1 to 480"},
      {"Commands", "anything", nullptr},  // Not a value the check parses.
  };
  for (const ConfigCase& c : cases) {
    SCOPED_TRACE(std::string(c.key) + " = " + c.value);
    Status s = CheckCommandsConfiguration({{c.key, c.value}});
    if (c.refusal == nullptr) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      continue;
    }
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message().rfind(std::string("configuration ") + c.key, 0), 0u) << s.message();
    EXPECT_NE(s.message().find(c.refusal), std::string::npos) << s.message();
  }
}

TEST(CheckCommandsConfiguration, MessagesAreTheEngines) {
  EXPECT_EQ(CheckCommandsConfiguration({{"TimeoutInMinutes", "5abc"}}).message(),
            "configuration TimeoutInMinutes must be a whole number of minutes from 1 to 480, "
            "not '5abc'.");
  EXPECT_EQ(CheckCommandsConfiguration({{"EnvironmentVariables", R"([{"name":"N","value":2}])"}})
                .message(),
            "configuration EnvironmentVariables[0] must be {\"name\": string, \"value\": string}; "
            "write numbers as strings, e.g. \"value\": \"1\".");
}

// --- PrepareCommands: refusals and the program it builds. ---

CommandsRequest Request(std::vector<std::string> commands = {"true"}) {
  CommandsRequest r;
  r.commands = std::move(commands);
  r.base_env = {"PATH=/usr/bin:/bin", "HOME=/nonexistent"};
  r.cwd = "/";
  r.status_file = "/nonexistent/status";
  r.variables_file = "/nonexistent/vars";
  return r;
}

void ExpectConfigurationError(const Result<CommandsProgram>& p, const std::string& part) {
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().wire_name(), "ConfigurationError");
  EXPECT_NE(p.status().message().find(part), std::string::npos) << p.status().message();
}

TEST(PrepareCommands, RefusesWhatCreatePipelineRefusesAndUnresolvedValuesToo) {
  for (const ConfigCase& c : std::vector<ConfigCase>{
           {"EnvironmentVariables", R"([{"name":"A","value":1}])",
            "Configuration EnvironmentVariables[0] must be"},
           {"EnvironmentVariables", "#{variables.env}", "Configuration EnvironmentVariables must"},
           {"TimeoutInMinutes", "5abc", "Configuration TimeoutInMinutes must"},
           {"TimeoutInMinutes", "0", "not '0'"},
           {"TimeoutInMinutes", "481", "not '481'"},
           {"TimeoutInMinutes", "", "not ''"},
           {"TimeoutInMinutes", "#{variables.t}", "not '#{variables.t}'"},
       }) {
    SCOPED_TRACE(std::string(c.key) + " = " + c.value);
    CommandsRequest r = Request();
    r.configuration[c.key] = c.value;
    ExpectConfigurationError(PrepareCommands(r), c.refusal);
  }
}

TEST(PrepareCommands, RefusesNoCommands) {
  ExpectConfigurationError(PrepareCommands(Request({})), "no commands");
}

TEST(PrepareCommands, RefusesANulByteInACommandOrTheEnvironment) {
  ExpectConfigurationError(PrepareCommands(Request({"true", std::string("echo a\0b", 8)})),
                           "Command 2 holds a NUL byte");
  CommandsRequest base = Request();
  base.base_env.push_back(std::string("HOST=a\0b", 8));
  ExpectConfigurationError(PrepareCommands(base), "Environment variable HOST holds a NUL byte");
  CommandsRequest configured = Request();
  configured.configuration["EnvironmentVariables"] = R"([{"name":"V","value":"a\u0000b"}])";
  ExpectConfigurationError(PrepareCommands(configured), "Environment variable V holds a NUL");
  CommandsRequest extra = Request();
  extra.extra_env = {{"PW_VAR_1", std::string("a\0b", 3)}};
  ExpectConfigurationError(PrepareCommands(extra), "Environment variable PW_VAR_1 holds a NUL");
}

TEST(PrepareCommands, OutputVariablesMustBeShellNames) {
  for (const std::string bad : {"", "1A", "A-B", "A B", "$(touch M)", "A;B", "Ä"}) {
    SCOPED_TRACE(bad);
    CommandsRequest r = Request();
    r.output_variables = {"GOOD", bad};
    ExpectConfigurationError(PrepareCommands(r), "Output variable '" + bad + "'");
  }
  CommandsRequest r = Request();
  r.output_variables = {"_a1", "Version", "X"};
  EXPECT_TRUE(PrepareCommands(r).ok());
}

TEST(PrepareCommands, LaterEnvironmentEntriesReplaceEarlierOnesOfTheSameName) {
  CommandsRequest r = Request();
  r.base_env.push_back("SHARED=base");
  r.base_env.push_back("ONLY_BASE=b");
  r.configuration["EnvironmentVariables"] =
      R"([{"name":"SHARED","value":"configured"},{"name":"HOME","value":"/home/ev"},)"
      R"({"name":"ONLY_EV"},{"name":"PIPEWRIGHT_STATUS_FILE","value":"/tmp/hijack"}])";
  r.extra_env = {{"SHARED", "declared"}, {"PW_VAR_1", "v"}, {"SHARED", "reference"}};
  auto p = PrepareCommands(r);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const auto& env = p->spec.env;
  EXPECT_EQ(EnvValue(env, "SHARED"), std::make_pair(std::string("reference"), 1));
  EXPECT_EQ(EnvValue(env, "HOME"), std::make_pair(std::string("/home/ev"), 1));
  EXPECT_EQ(EnvValue(env, "ONLY_BASE"), std::make_pair(std::string("b"), 1));
  EXPECT_EQ(EnvValue(env, "ONLY_EV"), std::make_pair(std::string(""), 1));
  EXPECT_EQ(EnvValue(env, "PW_VAR_1"), std::make_pair(std::string("v"), 1));
  // The result files are the runner's, whatever the configuration says.
  EXPECT_EQ(EnvValue(env, "PIPEWRIGHT_STATUS_FILE"), std::make_pair(r.status_file, 1));
  EXPECT_EQ(EnvValue(env, "PIPEWRIGHT_VARIABLES_FILE"), std::make_pair(r.variables_file, 1));
  EXPECT_EQ(env.front(), "PATH=/usr/bin:/bin");  // Replacing keeps the first position.
}

TEST(PrepareCommands, BuildsTheShellScriptOneCommandPerLine) {
  CommandsRequest r = Request({"echo one", "echo \"${PW_VAR_1}\""});
  r.cwd = "/work";
  r.log_path = "/work.log";
  r.kill_grace_seconds = 2;
  auto p = PrepareCommands(r);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->spec.argv.size(), 5u);
  EXPECT_EQ(p->spec.argv[0], "/bin/sh");
  EXPECT_EQ(p->spec.argv[1], "-e");
  EXPECT_EQ(p->spec.argv[2], "-c");
  const std::string& script = p->spec.argv[3];
  EXPECT_EQ(script.rfind("trap '", 0), 0u) << script;
  EXPECT_NE(script.find("' EXIT\nPW_CMD=1\necho one\nPW_CMD=2\necho \"${PW_VAR_1}\"\n"),
            std::string::npos)
      << script;
  EXPECT_EQ(script.find("PIPEWRIGHT_VARIABLES_FILE"), std::string::npos)
      << "no output variables, no export";
  EXPECT_EQ(p->spec.cwd, "/work");
  EXPECT_EQ(p->spec.log_path, "/work.log");
  EXPECT_EQ(p->spec.kill_grace_seconds, 2);
  EXPECT_EQ(p->commands, r.commands);
}

TEST(PrepareCommands, APlainCommandRunsItsProgramWithoutAShell) {
  auto p = PrepareCommands(Request({"true"}));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_TRUE(p->direct);
  EXPECT_EQ(p->spec.argv, std::vector<std::string>{"/usr/bin/true"});
  // Blanks separate words; every character that is not plain sends a command to the shell.
  p = PrepareCommands(Request({"  ls\t-l  /tmp,x:y@z%w+v=1_.  "}));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_TRUE(p->direct);
  EXPECT_EQ(p->spec.argv, (std::vector<std::string>{"/usr/bin/ls", "-l", "/tmp,x:y@z%w+v=1_."}));
  EXPECT_EQ(p->commands, std::vector<std::string>{"  ls\t-l  /tmp,x:y@z%w+v=1_.  "});
}

TEST(PrepareCommands, EverythingElseRunsUnderTheShell) {
  const std::vector<std::string> shell_commands = {"echo hi",
                                                   "printf x",
                                                   "pwd",
                                                   "test -f x",
                                                   "[ -f x ]",
                                                   "kill 1",
                                                   "cd /tmp",
                                                   "exec true",
                                                   "export A",
                                                   "set -x",
                                                   "if",
                                                   "true; false",
                                                   "true && ls",
                                                   "ls | cat",
                                                   "ls > f",
                                                   "ls < f",
                                                   "ls &",
                                                   "(ls)",
                                                   "{ ls; }",
                                                   "! ls",
                                                   "A=1 ls",
                                                   "ls $HOME",
                                                   "ls ${A}",
                                                   "ls `date`",
                                                   "ls *",
                                                   "ls ?",
                                                   "ls [a]",
                                                   "ls ~",
                                                   "ls 'a'",
                                                   "ls \"a\"",
                                                   "ls a\\ b",
                                                   "ls # comment",
                                                   "ls\nls",
                                                   "ls^",
                                                   "./tool",
                                                   "/usr/bin/true",
                                                   "bin/tool",
                                                   "caf\xc3\xa9",
                                                   "",
                                                   "   ",
                                                   "pipewright-no-such-program"};
  for (const std::string& command : shell_commands) {
    SCOPED_TRACE(command);
    auto p = PrepareCommands(Request({command}));
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_FALSE(p->direct);
    EXPECT_EQ(p->spec.argv.front(), "/bin/sh");
  }
  // Two commands; output variables to export; a directory outside the system's searched
  // before the program is found (the sandbox may not show it as it is here); no PATH.
  auto p = PrepareCommands(Request({"true", "true"}));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->spec.argv.front(), "/bin/sh");
  CommandsRequest r = Request({"true"});
  r.output_variables = {"X"};
  p = PrepareCommands(r);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->spec.argv.front(), "/bin/sh");
  r = Request({"true"});
  r.base_env = {"PATH=/opt/tools:/usr/bin:/bin"};
  p = PrepareCommands(r);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->spec.argv.front(), "/bin/sh");
  r.base_env = {"HOME=/nonexistent"};
  p = PrepareCommands(r);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->spec.argv.front(), "/bin/sh");
  // The program the configuration's PATH finds first, as the shell would.
  r.base_env = {"PATH=/usr/local/bin:/bin:/usr/bin"};
  p = PrepareCommands(r);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->spec.argv, std::vector<std::string>{"/bin/true"});
}

TEST(ReadCommandsOutcome, ADirectCommandIsNamedWhenItFailsOrIsKilled) {
  auto p = PrepareCommands(Request({"sleep 30"}));
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(p->direct);
  ProcessExit exit;
  exit.exit_code = 2;
  EXPECT_EQ(ReadCommandsOutcome(*p, exit).failure_message,
            "Command 1 (sleep 30) exited with code 2.");
  exit.signal = 9;
  EXPECT_EQ(ReadCommandsOutcome(*p, exit).failure_message,
            "Command 1 (sleep 30) was killed by signal 9.");
}

TEST(PrepareCommands, TimeoutIsTheConfigurationsThenTheActionsThenAnHour) {
  CommandsRequest r = Request();
  auto p = PrepareCommands(r);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->timeout_minutes, 60);
  EXPECT_EQ(p->spec.timeout_seconds, 3600);

  r.default_timeout_minutes = 5;
  p = PrepareCommands(r);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->timeout_minutes, 5);
  EXPECT_EQ(p->spec.timeout_seconds, 300);

  r.configuration["TimeoutInMinutes"] = "7";
  p = PrepareCommands(r);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->timeout_minutes, 7);
  EXPECT_EQ(p->timeout_seconds, 420);

  r.max_timeout_seconds = 90;  // A cap below it wins; one above it changes nothing.
  p = PrepareCommands(r);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->timeout_minutes, 7);
  EXPECT_EQ(p->spec.timeout_seconds, 90);
  r.max_timeout_seconds = 1000;
  EXPECT_EQ(PrepareCommands(r)->spec.timeout_seconds, 420);

  r.configuration.clear();
  r.default_timeout_minutes = 0;
  ExpectConfigurationError(PrepareCommands(r), "at least 1 minute");
}

// --- ReadCommandsOutcome without running anything. ---

TEST(ReadCommandsOutcome, TimeoutIsReportedInMinutes) {
  CommandsRequest r = Request({"sleep 1000"});
  r.default_timeout_minutes = 5;
  auto p = PrepareCommands(r);
  ASSERT_TRUE(p.ok());
  ProcessExit exit;
  exit.signal = 15;
  exit.timed_out = true;
  exit.output_tail = "last words\n";
  CommandsOutcome o = ReadCommandsOutcome(*p, exit);
  EXPECT_FALSE(o.succeeded);
  EXPECT_EQ(o.failure_message, "Timed out after 5 minute(s).");
  EXPECT_EQ(o.summary, "last words\n");
}

TEST(ReadCommandsOutcome, CancelledOrTimedOutIsAFailureEvenWithExitZero) {
  auto p = PrepareCommands(Request());
  ASSERT_TRUE(p.ok());
  ProcessExit exit;
  exit.exit_code = 0;
  exit.cancelled = true;
  CommandsOutcome o = ReadCommandsOutcome(*p, exit);
  EXPECT_FALSE(o.succeeded);
  EXPECT_EQ(o.failure_message, "The action was cancelled.");
  EXPECT_EQ(o.summary, o.failure_message);  // No output: the message.
  exit.cancelled = false;
  exit.timed_out = true;
  EXPECT_EQ(ReadCommandsOutcome(*p, exit).failure_message, "Timed out after 60 minute(s).");
}

// --- Through the real launcher and /bin/sh. ---

class CommandsRun : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = ScopedTempDir::Create("commands-test");
    ASSERT_TRUE(tmp.ok());
    tmp_.emplace(std::move(*tmp));
    launcher_ = NewPosixProcessLauncher();
  }

  CommandsRequest RunRequest(std::vector<std::string> commands) {
    CommandsRequest r = Request(std::move(commands));
    r.cwd = tmp_->path();
    r.log_path = tmp_->path() + "/log";
    r.status_file = tmp_->path() + "/status";
    r.variables_file = tmp_->path() + "/vars";
    r.kill_grace_seconds = 0.2;
    return r;
  }

  // Prepares, runs and reads `r`; the exit goes to *exit when given.
  CommandsOutcome Run(const CommandsRequest& r, ProcessExit* exit = nullptr) {
    auto p = PrepareCommands(r);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    if (!p.ok()) return {};
    auto done = std::make_shared<std::promise<ProcessExit>>();
    std::future<ProcessExit> future = done->get_future();
    auto id =
        launcher_->Start(p->spec, [done](ProcessId, const ProcessExit& x) { done->set_value(x); });
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    if (!id.ok()) return {};
    EXPECT_EQ(future.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    ProcessExit x = future.get();
    if (exit != nullptr) *exit = x;
    return ReadCommandsOutcome(*p, x);
  }

  std::optional<ScopedTempDir> tmp_;
  std::unique_ptr<ProcessLauncher> launcher_;
};

TEST_F(CommandsRun, OutputVariablesRoundTripWithNewlinesAndEquals) {
  CommandsRequest r = RunRequest(
      {"MULTI=$(printf 'line one\\nline two\\n\\nend')", "EQ='a=b=c'", "export FROM_ENV"});
  r.extra_env = {{"FROM_ENV", "from the environment"}};
  r.output_variables = {"MULTI", "EQ", "FROM_ENV", "NEVER_SET"};
  CommandsOutcome o = Run(r);
  ASSERT_TRUE(o.succeeded) << o.failure_message << ReadFile(r.log_path);
  EXPECT_EQ(o.summary, "3 command(s) succeeded");
  EXPECT_EQ(o.output_variables,
            (std::map<std::string, std::string>{{"MULTI", "line one\nline two\n\nend"},
                                                {"EQ", "a=b=c"},
                                                {"FROM_ENV", "from the environment"},
                                                {"NEVER_SET", ""}}));
  // NUL-separated records: the only newlines are the value's.
  EXPECT_EQ(ReadFile(r.variables_file),
            "MULTI=line one\nline two\n\nend\0EQ=a=b=c\0FROM_ENV=from the environment\0"
            "NEVER_SET=\0"s);
}

TEST_F(CommandsRun, OnlyDeclaredVariablesAreRead) {
  // Without declared names nothing is read, even what a command wrote there itself.
  CommandsRequest r = RunRequest({"printf 'OTHER=x\\0' > \"$PIPEWRIGHT_VARIABLES_FILE\""});
  CommandsOutcome o = Run(r);
  ASSERT_TRUE(o.succeeded) << o.failure_message << ReadFile(r.log_path);
  ASSERT_EQ(ReadFile(r.variables_file), "OTHER=x\0"s);
  EXPECT_TRUE(o.output_variables.empty());
}

TEST_F(CommandsRun, EnvironmentReachesTheCommandsInOrder) {
  CommandsRequest r = RunRequest({"printf '%s|%s|%s' \"$A\" \"$B\" \"$PW_VAR_1\" > env.txt"});
  r.base_env.push_back("A=base");
  r.configuration["EnvironmentVariables"] = R"([{"name":"A","value":"ev"},{"name":"B"}])";
  r.extra_env = {{"PW_VAR_1", "$(touch M) \"quoted\""}, {"A", "extra"}};
  CommandsOutcome o = Run(r);
  ASSERT_TRUE(o.succeeded) << o.failure_message << ReadFile(r.log_path);
  EXPECT_EQ(ReadFile(tmp_->path() + "/env.txt"), "extra||$(touch M) \"quoted\"");
}

TEST_F(CommandsRun, TheFailingCommandIsNamedWithItsStatus) {
  CommandsRequest r = RunRequest({"echo one", "sh -c 'exit 3'", "echo never > never.txt"});
  r.output_variables = {"X"};
  ProcessExit exit;
  CommandsOutcome o = Run(r, &exit);
  EXPECT_FALSE(o.succeeded);
  EXPECT_EQ(o.failure_message, "Command 2 (sh -c 'exit 3') exited with code 3.");
  EXPECT_EQ(o.summary, exit.output_tail);
  EXPECT_NE(o.summary.find("one"), std::string::npos) << o.summary;
  EXPECT_TRUE(o.output_variables.empty());
  EXPECT_FALSE(std::ifstream(tmp_->path() + "/never.txt").good());
}

TEST_F(CommandsRun, APlainCommandIsItsOwnProcess) {
  // No shell in between: the process's argv is the resolved program and its words (a shell
  // would have passed "cat" as argv[0]), and it inherits the same environment.
  CommandsRequest r = RunRequest({"cat /proc/self/cmdline /proc/self/environ"});
  r.extra_env = {{"PW_VAR_1", "value"}};
  CommandsOutcome o = Run(r);
  ASSERT_TRUE(o.succeeded) << o.failure_message << ReadFile(r.log_path);
  EXPECT_EQ(o.summary, "1 command(s) succeeded");
  std::string log = ReadFile(r.log_path);
  EXPECT_EQ(log.rfind("/usr/bin/cat\0/proc/self/cmdline\0/proc/self/environ\0"s, 0), 0u) << log;
  EXPECT_NE(log.find("\0PW_VAR_1=value\0"s), std::string::npos) << log;
  EXPECT_NE(log.find("PIPEWRIGHT_STATUS_FILE=" + r.status_file), std::string::npos) << log;

  o = Run(RunRequest({"false"}));
  EXPECT_FALSE(o.succeeded);
  EXPECT_EQ(o.failure_message, "Command 1 (false) exited with code 1.");
}

TEST_F(CommandsRun, AShellKilledBeforeItsTrapNamesNoCommand) {
  CommandsOutcome o = Run(RunRequest({"kill -KILL $$"}));
  EXPECT_FALSE(o.succeeded);
  EXPECT_EQ(o.failure_message, "The commands were killed by signal 9.");
}

TEST_F(CommandsRun, TimeoutEndsTheRun) {
  CommandsRequest r = RunRequest({"echo waiting", "exec sleep 30"});
  r.max_timeout_seconds = 0.3;  // TimeoutInMinutes cannot be shorter than a minute.
  CommandsOutcome o = Run(r);
  EXPECT_FALSE(o.succeeded);
  EXPECT_EQ(o.failure_message, "Timed out after 0.3 second(s) (the runner's limit).");
  EXPECT_NE(o.summary.find("waiting"), std::string::npos) << o.summary;
}

}  // namespace
}  // namespace pw::runner::commands_test
