// Tests of the Pipewright CLI extensions (start-pipeline-execution --wait,
// logs, retry-stage-execution --dry-run/--latest, get-stage-retry-plan)
// against an in-process scripted HTTP server on a free port.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli/cli.h"
#include "cli/execution_queries.h"

namespace pw::cli::extensions_test {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kExec[] = "eeeeeeee-0000-0000-0000-000000000001";
constexpr char kOther[] = "eeeeeeee-0000-0000-0000-000000000002";

struct Answer {
  int status = 200;
  json body = json::object();
};

struct Request {
  std::string target;  // Operation name ("GetPipelineState") or "GET <path>?<query>".
  json body;
};

// Answers each operation with a scripted function and GET /logs/<id> from
// `logs`; records every request. Handlers are set before the CLI runs.
class ScriptedPipewright {
 public:
  using Handler = std::function<Answer(const json& body, int call)>;

  ScriptedPipewright() {
    server_.Post("/", [this](const httplib::Request& req, httplib::Response& res) {
      std::string target = req.get_header_value("X-Amz-Target");
      std::string op = target.substr(target.find('.') + 1);
      json body = json::parse(req.body.empty() ? "{}" : req.body, nullptr, false);
      Handler handler;
      int call = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back({op, body});
        call = calls_[op]++;
        if (auto it = handlers_.find(op); it != handlers_.end()) handler = it->second;
      }
      Answer a;
      if (handler) {
        a = handler(body, call);
      } else {
        a = {400, {{"__type", "UnknownOperationException"}, {"message", "not scripted: " + op}}};
      }
      res.status = a.status;
      res.set_content(a.body.dump(), "application/x-amz-json-1.1");
    });
    server_.Get(R"(/logs/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string id = req.matches[1].str();
      size_t offset = req.has_param("offset") ? std::stoul(req.get_param_value("offset")) : 0;
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back({"GET /logs/" + id + "?offset=" + std::to_string(offset), json()});
      int call = calls_["GET " + id]++;
      auto it = logs_.find(id);
      if (it == logs_.end()) {
        res.status = 404;
        res.set_content("no log for this action execution\n", "text/plain");
        return;
      }
      // The log grows by one chunk per fetch, as a running action's would.
      std::string log;
      for (int i = 0; i <= call && i < static_cast<int>(it->second.size()); ++i) {
        log += it->second[i];
      }
      res.set_content(offset < log.size() ? log.substr(offset) : "", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!server_.is_running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  }
  ~ScriptedPipewright() {
    server_.stop();
    thread_.join();
  }

  void On(const std::string& op, Handler handler) {
    std::lock_guard<std::mutex> lock(mu_);
    handlers_[op] = std::move(handler);
  }
  // Answers `op` with the same body every time.
  void Always(const std::string& op, json body) {
    On(op, [body](const json&, int) { return Answer{200, body}; });
  }
  // The log of action execution `id`, revealed one chunk per GET.
  void SetLog(const std::string& id, std::vector<std::string> chunks) {
    std::lock_guard<std::mutex> lock(mu_);
    logs_[id] = std::move(chunks);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  std::vector<Request> requests(const std::string& op) {
    std::vector<Request> out;
    for (auto& r : requests()) {
      if (r.target == op) out.push_back(r);
    }
    return out;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, Handler> handlers_;               // Guarded by mu_.
  std::map<std::string, std::vector<std::string>> logs_;  // Guarded by mu_.
  std::map<std::string, int> calls_;                      // Guarded by mu_.
  std::vector<Request> requests_;                         // Guarded by mu_.
};

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

// A ListActionExecutions detail.
json ActionRun(const std::string& id, const std::string& stage, const std::string& action,
               const std::string& status, double start, const std::string& message = "") {
  json d = {{"pipelineExecutionId", kExec}, {"actionExecutionId", id}, {"stageName", stage},
            {"actionName", action},         {"status", status},        {"startTime", start}};
  if (!message.empty()) {
    d["output"]["executionResult"]["errorDetails"] = {{"code", "JobFailed"}, {"message", message}};
  }
  return d;
}

// A GetPipelineState stage state; no latestExecution when `execution` is "".
json Stage(const std::string& name, const std::string& execution, const std::string& status,
           const std::vector<std::string>& actions) {
  json s = {{"stageName", name}, {"actionStates", json::array()}};
  for (const auto& a : actions) s["actionStates"].push_back({{"actionName", a}});
  if (!execution.empty()) {
    s["latestExecution"] = {{"pipelineExecutionId", execution}, {"status", status}};
  }
  return s;
}

// ListActionExecutions as the service answers: newest first.
json RunsPage(std::vector<json> oldest_first) {
  json page = {{"actionExecutionDetails", json::array()}};
  for (auto it = oldest_first.rbegin(); it != oldest_first.rend(); ++it) {
    page["actionExecutionDetails"].push_back(*it);
  }
  return page;
}

// One poll's view of an execution, for --wait.
struct Frame {
  Frame(std::string s, std::vector<json> st = {}, std::vector<json> r = {}, std::string sum = "")
      : status(std::move(s)), stages(std::move(st)), runs(std::move(r)), summary(std::move(sum)) {}
  std::string status;
  std::vector<json> stages;
  std::vector<json> runs;  // Oldest first.
  std::string summary;
};

class ExtensionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("PIPEWRIGHT_ENDPOINT");
    SetPollIntervalForTest(std::chrono::milliseconds(1));
  }
  void TearDown() override { SetPollIntervalForTest(std::chrono::milliseconds(200)); }

  Outcome Cli(std::vector<std::string> args) {
    args.push_back("--endpoint-url");
    args.push_back(server_.url());
    std::ostringstream out;
    std::ostringstream err;
    int code = RunCli(args, out, err);
    return {code, out.str(), err.str()};
  }

  // Serves `frames` to --wait: frame i answers the (i+1)th GetPipelineExecution
  // and the GetPipelineState/ListActionExecutions calls that follow it.
  void Script(std::vector<Frame> frames) {
    auto shared = std::make_shared<std::vector<Frame>>(std::move(frames));
    auto current = std::make_shared<int>(0);
    server_.Always("StartPipelineExecution", {{"pipelineExecutionId", kExec}});
    server_.On("GetPipelineExecution", [shared, current](const json& body, int call) {
      *current = std::min<int>(call, static_cast<int>(shared->size()) - 1);
      const Frame& f = (*shared)[*current];
      json pe = {{"pipelineExecutionId", body["pipelineExecutionId"]}, {"status", f.status}};
      if (!f.summary.empty()) pe["statusSummary"] = f.summary;
      return Answer{200, {{"pipelineExecution", pe}}};
    });
    server_.On("GetPipelineState", [shared, current](const json&, int) {
      return Answer{200, {{"pipelineName", "p"}, {"stageStates", (*shared)[*current].stages}}};
    });
    server_.On("ListActionExecutions", [shared, current](const json&, int) {
      return Answer{200, RunsPage((*shared)[*current].runs)};
    });
  }

  ScriptedPipewright server_;
};

// --- start-pipeline-execution --wait ---------------------------------------

TEST_F(ExtensionsTest, WaitPrintsEachStatusChangeOnceAndExitsZeroOnSuccess) {
  Script({
      {"InProgress",
       {Stage("Source", kExec, "InProgress", {"Src"}), Stage("Build", kOther, "Failed", {"Cc"})},
       {ActionRun("a1", "Source", "Src", "InProgress", 1)}},
      // Unchanged: prints nothing.
      {"InProgress",
       {Stage("Source", kExec, "InProgress", {"Src"}), Stage("Build", kOther, "Failed", {"Cc"})},
       {ActionRun("a1", "Source", "Src", "InProgress", 1)}},
      {"InProgress",
       {Stage("Source", kExec, "Succeeded", {"Src"}), Stage("Build", kExec, "InProgress", {"Cc"})},
       {ActionRun("a1", "Source", "Src", "Succeeded", 1),
        ActionRun("a2", "Build", "Cc", "InProgress", 2)}},
      {"Succeeded",
       {Stage("Source", kExec, "Succeeded", {"Src"}), Stage("Build", kExec, "Succeeded", {"Cc"})},
       {ActionRun("a1", "Source", "Src", "Succeeded", 1),
        ActionRun("a2", "Build", "Cc", "Succeeded", 2)}},
  });
  Outcome r = Cli({"start-pipeline-execution", "--name", "p", "--wait"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\n    \"pipelineExecutionId\": \"" + std::string(kExec) +
                       "\"\n}\n"
                       "Source                  InProgress\n"
                       "Source/Src              InProgress\n"
                       "Source/Src              Succeeded\n"
                       "Source                  Succeeded\n"
                       "Build                   InProgress\n"
                       "Build/Cc                InProgress\n"
                       "Build/Cc                Succeeded\n"
                       "Build                   Succeeded\n"
                       "Execution               Succeeded\n");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(server_.requests("GetPipelineExecution").size(), 4u);
  auto list = server_.requests("ListActionExecutions");
  ASSERT_FALSE(list.empty());
  EXPECT_EQ(list[0].body["filter"]["pipelineExecutionId"], kExec);
}

TEST_F(ExtensionsTest, WaitKeepsTheOperationsOwnFlags) {
  Script({{"Succeeded", {}, {}}});
  Outcome r = Cli({"start-pipeline-execution", "--wait-timeout", "60", "--name", "p",
                   "--client-request-token", "tok-1", "--variables", "name=V,value=1"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto start = server_.requests("StartPipelineExecution");
  ASSERT_EQ(start.size(), 1u);
  EXPECT_EQ(start[0].body, json::parse(R"({"name":"p","clientRequestToken":"tok-1",
                            "variables":[{"name":"V","value":"1"}]})"));
  EXPECT_EQ(server_.requests("GetPipelineExecution")[0].body["pipelineName"], "p");
}

TEST_F(ExtensionsTest, WaitExitsOneOnFailureWithSummaryAndActionErrors) {
  Script({{"Failed",
           {Stage("Build", kExec, "Failed", {"Cc", "Lint"})},
           {ActionRun("a1", "Build", "Cc", "Failed", 1, "first try broke"),
            ActionRun("a2", "Build", "Lint", "Succeeded", 1),
            ActionRun("a3", "Build", "Cc", "Failed", 2, "exit code 3")},
           "Stage Build failed"}});
  Outcome r = Cli({"start-pipeline-execution", "--name", "p", "--wait"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("Build/Cc                Failed\n"));
  EXPECT_THAT(r.out, HasSubstr("Execution               Failed\n"));
  const std::string exec = kExec;
  EXPECT_EQ(r.err, "Pipeline execution " + exec +
                       " Failed: Stage Build failed\n"
                       "  Build/Cc failed: exit code 3\n"
                       "    its log: pipewright logs --pipeline-name p --pipeline-execution-id " +
                       exec +
                       " --stage-name Build --action-name Cc\n"
                       "Retry the failed actions of stage Build once the cause is fixed:\n"
                       "  pipewright retry-stage-execution --pipeline-name p --stage-name Build "
                       "--pipeline-execution-id " +
                       exec + " --retry-mode FAILED_ACTIONS --wait\n");
  // The retry command is printed only after asking the server whether it would be accepted.
  auto plans = server_.requests("GetStageRetryPlan");
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].body["retryMode"], "FAILED_ACTIONS");
}

TEST_F(ExtensionsTest, WaitSaysWhyAFailedStageCannotBeRetried) {
  Script({{"Failed",
           {Stage("Build", kExec, "Failed", {"Cc"})},
           {ActionRun("a1", "Build", "Cc", "Failed", 1, "boom")}}});
  server_.Always("GetStageRetryPlan", {{"retryable", false},
                                       {"errorCode", "ConflictException"},
                                       {"reason", "a newer execution ran the stage"}});
  Outcome r = Cli({"start-pipeline-execution", "--name", "p", "--wait"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("Stage Build cannot be retried (ConflictException): a newer "
                               "execution ran the stage\n"));
  EXPECT_THAT(r.err, Not(HasSubstr("retry-stage-execution")));
}

TEST_F(ExtensionsTest, WaitShowsTransitionsThatHappenedBetweenPolls) {
  // The first poll already sees Source ended and Build failed: both started
  // in between, and their InProgress lines are not skipped.
  Script({{"Failed",
           {Stage("Source", kExec, "Succeeded", {"Src"}), Stage("Build", kExec, "Failed", {"Cc"})},
           {ActionRun("a1", "Source", "Src", "Succeeded", 1),
            ActionRun("a2", "Build", "Cc", "Failed", 2, "boom")}}});
  Outcome r = Cli({"start-pipeline-execution", "--name", "p", "--wait"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("Source                  InProgress\n"
                               "Source/Src              InProgress\n"
                               "Source/Src              Succeeded\n"
                               "Source                  Succeeded\n"
                               "Build                   InProgress\n"
                               "Build/Cc                InProgress\n"
                               "Build/Cc                Failed\n"
                               "Build                   Failed\n"
                               "Execution               Failed\n"));
}

TEST_F(ExtensionsTest, RetryWaitPrintsOnlyWhatTheRetryChanges) {
  // Before the retry (the baseline): Source succeeded, Build/Cc failed once.
  // The retry's attempt 2 of Cc fails again before the first poll.
  const std::vector<json> before = {ActionRun("a1", "Source", "Src", "Succeeded", 1),
                                    ActionRun("a2", "Build", "Cc", "Failed", 2, "boom")};
  std::vector<json> after = before;
  after.push_back(ActionRun("a3", "Build", "Cc", "Failed", 3, "boom again"));
  const std::vector<json> stages = {Stage("Source", kExec, "Succeeded", {"Src"}),
                                    Stage("Build", kExec, "Failed", {"Cc"})};
  server_.On("GetPipelineState", [stages](const json&, int) {
    return Answer{200, {{"pipelineName", "p"}, {"stageStates", stages}}};
  });
  server_.On("ListActionExecutions", [before, after](const json&, int call) {
    return Answer{200, RunsPage(call == 0 ? before : after)};
  });
  server_.Always("RetryStageExecution", {{"pipelineExecutionId", kExec}});
  server_.Always("GetPipelineExecution",
                 {{"pipelineExecution", {{"pipelineExecutionId", kExec}, {"status", "Failed"}}}});
  Outcome r = Cli({"retry-stage-execution", "--pipeline-name", "p", "--stage-name", "Build",
                   "--pipeline-execution-id", kExec, "--retry-mode", "FAILED_ACTIONS", "--wait"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(r.out, "{\n    \"pipelineExecutionId\": \"" + std::string(kExec) +
                       "\"\n}\n"
                       "Build                   InProgress\n"
                       "Build/Cc (attempt 2)    InProgress\n"
                       "Build/Cc (attempt 2)    Failed\n"
                       "Build                   Failed\n"
                       "Execution               Failed\n");
  EXPECT_THAT(r.err, HasSubstr("Build/Cc failed: boom again"));
  EXPECT_THAT(r.err, HasSubstr("--stage-name Build --pipeline-execution-id " + std::string(kExec) +
                               " --retry-mode FAILED_ACTIONS --wait"));
}

TEST_F(ExtensionsTest, RetryDryRunAndWaitAreRefusedTogether) {
  Outcome r = Cli({"retry-stage-execution", "--pipeline-name", "p", "--stage-name", "Build",
                   "--pipeline-execution-id", kExec, "--retry-mode", "FAILED_ACTIONS", "--wait",
                   "--dry-run"});
  EXPECT_EQ(r.code, 252);
  EXPECT_THAT(r.err, HasSubstr("--dry-run and --wait cannot be used together"));
  EXPECT_TRUE(server_.requests().empty());
}

TEST_F(ExtensionsTest, WaitExitsOneWhenStoppedOrSuperseded) {
  for (const char* status : {"Stopped", "Superseded", "Cancelled"}) {
    Script({{"InProgress", {}, {}}, {status, {}, {}}});
    Outcome r = Cli({"start-pipeline-execution", "--name", "p", "--wait"});
    EXPECT_EQ(r.code, 1) << status;
    EXPECT_THAT(r.err, HasSubstr(std::string(kExec) + " " + status)) << status;
  }
}

TEST_F(ExtensionsTest, WaitTimesOutWithExitTwo) {
  Script({{"InProgress", {}, {}}});
  Outcome r = Cli({"start-pipeline-execution", "--name", "p", "--wait-timeout", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("Timed out after 0 seconds waiting for pipeline execution " +
                               std::string(kExec) + " (status InProgress)"));
}

TEST_F(ExtensionsTest, WaitFlagErrorsAreParameterErrors) {
  Outcome bad = Cli({"start-pipeline-execution", "--name", "p", "--wait-timeout", "soon"});
  EXPECT_EQ(bad.code, 252);
  EXPECT_THAT(bad.err, HasSubstr("argument --wait-timeout: invalid seconds value: 'soon'"));
  Outcome elsewhere = Cli({"get-pipeline", "--name", "p", "--wait"});
  EXPECT_EQ(elsewhere.code, 252);
  EXPECT_THAT(elsewhere.err, HasSubstr("Unknown options: --wait"));
  EXPECT_TRUE(server_.requests().empty());
}

TEST_F(ExtensionsTest, WaitReportsAFailedPollCall) {
  Script({{"InProgress", {}, {}}});
  server_.On("GetPipelineState", [](const json&, int) {
    return Answer{400, {{"__type", "PipelineNotFoundException"}, {"message", "gone"}}};
  });
  Outcome r = Cli({"start-pipeline-execution", "--name", "p", "--wait"});
  EXPECT_EQ(r.code, 254);
  EXPECT_THAT(r.err, HasSubstr("(PipelineNotFoundException) when calling the GetPipelineState"));
}

// --- logs ------------------------------------------------------------------

class LogsTest : public ExtensionsTest {
 protected:
  void SetUp() override {
    ExtensionsTest::SetUp();
    server_.Always("ListPipelineExecutions",
                   {{"pipelineExecutionSummaries", {{{"pipelineExecutionId", kExec}}}}});
    server_.Always("ListActionExecutions",
                   RunsPage({ActionRun("s1", "Source", "Src", "Succeeded", 1),
                             ActionRun("c1", "Build", "Cc", "Failed", 2),
                             ActionRun("c2", "Build", "Cc", "Succeeded", 3)}));
    server_.Always(
        "GetPipeline",
        {{"pipeline",
          {{"name", "p"},
           {"stages",
            {{{"name", "Source"}, {"actions", {{{"name", "Src"}}}}},
             {{"name", "Build"}, {"actions", {{{"name", "Cc"}}, {{"name", "Ut"}}}}}}}}}});
    server_.SetLog("c1", {"attempt one\n"});
    server_.SetLog("c2", {"attempt two\n"});
  }
};

TEST_F(LogsTest, PrintsTheLatestAttemptOfTheLatestExecution) {
  Outcome r = Cli({"logs", "--pipeline-name", "p", "--action-name", "Cc"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "attempt two\n");
  auto list = server_.requests("ListPipelineExecutions");
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].body["pipelineName"], "p");
  auto runs = server_.requests("ListActionExecutions");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].body["filter"]["pipelineExecutionId"], kExec);
}

TEST_F(LogsTest, AttemptNumberCountsFromTheFirstRun) {
  Outcome r = Cli({"logs", "--pipeline-name", "p", "--pipeline-execution-id", kExec,
                   "--action-name", "Cc", "--stage-name", "Build", "--attempt", "1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "attempt one\n");
  EXPECT_TRUE(server_.requests("ListPipelineExecutions").empty());
  Outcome latest = Cli({"logs", "--pipeline-name", "p", "--pipeline-execution-id", kExec,
                        "--action-name", "Cc", "--attempt=latest"});
  EXPECT_EQ(latest.out, "attempt two\n");
  Outcome beyond = Cli({"logs", "--pipeline-name", "p", "--action-name", "Cc", "--attempt", "3"});
  EXPECT_EQ(beyond.code, 252);
  EXPECT_THAT(beyond.err, HasSubstr("has 2 attempt(s)"));
}

TEST_F(LogsTest, UnknownActionNamesTheValidOnes) {
  Outcome r = Cli({"logs", "--pipeline-name", "p", "--action-name", "Nope"});
  EXPECT_EQ(r.code, 252);
  EXPECT_EQ(r.err,
            "\nUnknown action 'Nope' of pipeline 'p'. Its actions: Source/Src, Build/Cc, "
            "Build/Ut\n");
  Outcome wrong_stage =
      Cli({"logs", "--pipeline-name", "p", "--action-name", "Cc", "--stage-name", "Source"});
  EXPECT_EQ(wrong_stage.code, 252);
  EXPECT_THAT(wrong_stage.err, HasSubstr("Unknown action 'Cc' in stage 'Source'"));
}

TEST_F(LogsTest, DeclaredActionThatNeverRanIsAnError) {
  Outcome r = Cli({"logs", "--pipeline-name", "p", "--action-name", "Ut"});
  EXPECT_EQ(r.code, 255);
  EXPECT_THAT(r.err,
              HasSubstr("Action 'Ut' has not run in pipeline execution " + std::string(kExec)));
}

TEST_F(LogsTest, SameActionNameInTwoStagesNeedsStageName) {
  server_.Always("ListActionExecutions", RunsPage({ActionRun("x1", "Build", "Cc", "Succeeded", 1),
                                                   ActionRun("x2", "Test", "Cc", "Succeeded", 2)}));
  server_.SetLog("x2", {"from test\n"});
  Outcome r = Cli({"logs", "--pipeline-name", "p", "--action-name", "Cc"});
  EXPECT_EQ(r.code, 252);
  EXPECT_THAT(r.err,
              HasSubstr("ran in several stages (Build, Test); choose one with --stage-name"));
  Outcome chosen =
      Cli({"logs", "--pipeline-name", "p", "--action-name", "Cc", "--stage-name", "Test"});
  EXPECT_EQ(chosen.code, 0) << chosen.err;
  EXPECT_EQ(chosen.out, "from test\n");
}

TEST_F(LogsTest, FollowFetchesFromOffsetsUntilTheActionEnds) {
  server_.On("ListActionExecutions", [](const json&, int call) {
    return Answer{
        200, RunsPage({ActionRun("f1", "Build", "Cc", call < 3 ? "InProgress" : "Succeeded", 1)})};
  });
  // One chunk more per fetch; all of it once the action has ended.
  server_.SetLog("f1", {"one\n", "two\n", "", "three\nfour\n"});
  Outcome r = Cli({"logs", "--pipeline-name", "p", "--pipeline-execution-id", kExec,
                   "--action-name", "Cc", "--follow"});
  EXPECT_EQ(r.code, 0) << r.err;
  // The fetch after the action ended prints the rest.
  EXPECT_EQ(r.out, "one\ntwo\nthree\nfour\n");
  std::vector<std::string> gets;
  for (const auto& req : server_.requests()) {
    if (req.target.rfind("GET ", 0) == 0) gets.push_back(req.target);
  }
  EXPECT_EQ(gets, (std::vector<std::string>{"GET /logs/f1?offset=0", "GET /logs/f1?offset=4",
                                            "GET /logs/f1?offset=8", "GET /logs/f1?offset=8"}));
}

TEST_F(LogsTest, FollowExitsOneWhenTheActionFails) {
  server_.On("ListActionExecutions", [](const json&, int call) {
    return Answer{
        200, RunsPage({ActionRun("f1", "Build", "Cc", call < 1 ? "InProgress" : "Failed", 1)})};
  });
  server_.SetLog("f1", {"start\n", "boom\n"});
  Outcome r = Cli({"logs", "--pipeline-name", "p", "--action-name", "Cc", "--follow"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "start\nboom\n");
}

TEST_F(LogsTest, FollowWaitsForTheActionToStart) {
  server_.On("ListActionExecutions", [](const json&, int call) {
    if (call < 2) return Answer{200, RunsPage({ActionRun("s1", "Source", "Src", "InProgress", 1)})};
    return Answer{200, RunsPage({ActionRun("s1", "Source", "Src", "Succeeded", 1),
                                 ActionRun("u1", "Build", "Ut", "Succeeded", 2)})};
  });
  server_.Always("GetPipelineExecution", {{"pipelineExecution", {{"status", "InProgress"}}}});
  server_.SetLog("u1", {"tests ok\n"});
  Outcome r = Cli({"logs", "--pipeline-name", "p", "--action-name", "Ut", "--follow"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "tests ok\n");
}

TEST_F(LogsTest, MissingLogIsNotAnError) {
  Outcome r = Cli({"logs", "--pipeline-name", "p", "--action-name", "Src"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("No log output for action execution s1"));
}

TEST_F(LogsTest, ArgumentErrorsExit252WithoutCalls) {
  Outcome missing = Cli({"logs", "--pipeline-name", "p"});
  EXPECT_EQ(missing.code, 252);
  EXPECT_THAT(missing.err, HasSubstr("the following arguments are required: --action-name"));
  Outcome bad_attempt =
      Cli({"logs", "--pipeline-name", "p", "--action-name", "Cc", "--attempt", "first"});
  EXPECT_EQ(bad_attempt.code, 252);
  Outcome unknown = Cli({"logs", "--pipeline-name", "p", "--action-name", "Cc", "--tail"});
  EXPECT_EQ(unknown.code, 252);
  EXPECT_THAT(unknown.err, HasSubstr("Unknown options: --tail"));
  EXPECT_TRUE(server_.requests().empty());
  EXPECT_THAT(Cli({"logs", "help"}).out, HasSubstr("--follow"));
}

TEST_F(LogsTest, PipelineWithoutExecutions) {
  server_.Always("ListPipelineExecutions", {{"pipelineExecutionSummaries", json::array()}});
  Outcome r = Cli({"logs", "--pipeline-name", "p", "--action-name", "Cc"});
  EXPECT_EQ(r.code, 255);
  EXPECT_THAT(r.err, HasSubstr("Pipeline 'p' has no executions"));
}

// --- retry planning --------------------------------------------------------

json Plan(bool failed_ok, bool all_ok) {
  auto one = [](bool ok, std::vector<std::string> rerun) {
    json p = {{"retryable", ok}, {"actionsToRerun", ok ? json(rerun) : json::array()}};
    if (!ok) {
      p["errorCode"] = "StageNotRetryableException";
      p["reason"] = "Stage Build succeeded";
    }
    return p;
  };
  return {{"FAILED_ACTIONS", one(failed_ok, {"Cc"})}, {"ALL_ACTIONS", one(all_ok, {"Cc", "Ut"})}};
}

class RetryTest : public ExtensionsTest {
 protected:
  void ServePlan(bool failed_ok, bool all_ok) {
    server_.On("GetStageRetryPlan", [failed_ok, all_ok](const json& in, int) {
      json out = {{"pipelineName", in["pipelineName"]},
                  {"stageName", in["stageName"]},
                  {"pipelineExecutionId", in["pipelineExecutionId"]},
                  {"plans", Plan(failed_ok, all_ok)}};
      if (in.contains("retryMode")) {
        for (auto& [k, v] : out["plans"][in["retryMode"].get<std::string>()].items()) out[k] = v;
      }
      return Answer{200, out};
    });
    server_.Always("GetPipelineState", {{"stageStates",
                                         {Stage("Source", kOther, "Succeeded", {"Src"}),
                                          Stage("Build", kExec, "Failed", {"Cc", "Ut"}),
                                          Stage("Deploy", "", "", {"D"})}}});
  }
};

TEST_F(RetryTest, DryRunPrintsThePlanInsteadOfRetrying) {
  ServePlan(true, true);
  Outcome r =
      Cli({"retry-stage-execution", "--pipeline-name", "p", "--stage-name", "Build",
           "--pipeline-execution-id", kExec, "--retry-mode", "FAILED_ACTIONS", "--dry-run"});
  EXPECT_EQ(r.code, 0) << r.err;
  json out = json::parse(r.out);
  EXPECT_EQ(out["retryable"], true);
  EXPECT_EQ(out["actionsToRerun"], json::array({"Cc"}));
  EXPECT_EQ(out["plans"]["ALL_ACTIONS"]["actionsToRerun"], json::array({"Cc", "Ut"}));
  EXPECT_THAT(r.out, ::testing::StartsWith("{\n    \"pipelineName\": \"p\",\n"));
  auto calls = server_.requests();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].target, "GetStageRetryPlan");
  EXPECT_EQ(calls[0].body, json({{"pipelineName", "p"},
                                 {"stageName", "Build"},
                                 {"pipelineExecutionId", kExec},
                                 {"retryMode", "FAILED_ACTIONS"}}));
}

TEST_F(RetryTest, DryRunRefusalExits254LikeARealRetry) {
  ServePlan(false, true);
  Outcome r =
      Cli({"retry-stage-execution", "--pipeline-name", "p", "--stage-name", "Build",
           "--pipeline-execution-id", kExec, "--retry-mode", "FAILED_ACTIONS", "--dry-run"});
  EXPECT_EQ(r.code, 254);
  EXPECT_EQ(r.err, "Retry not allowed (StageNotRetryableException): Stage Build succeeded\n");
  EXPECT_EQ(json::parse(r.out)["retryable"], false);
  Outcome all = Cli({"retry-stage-execution", "--pipeline-name", "p", "--stage-name", "Build",
                     "--pipeline-execution-id", kExec, "--retry-mode", "ALL_ACTIONS", "--dry-run"});
  EXPECT_EQ(all.code, 0) << all.err;
}

TEST_F(RetryTest, DryRunKeepsModelValidationOfRetryMode) {
  ServePlan(true, true);
  Outcome missing = Cli({"retry-stage-execution", "--pipeline-name", "p", "--stage-name", "Build",
                         "--pipeline-execution-id", kExec, "--dry-run"});
  EXPECT_EQ(missing.code, 252);
  EXPECT_THAT(missing.err, HasSubstr("the following arguments are required: --retry-mode"));
  Outcome bad = Cli({"retry-stage-execution", "--pipeline-name", "", "--stage-name", "Build",
                     "--pipeline-execution-id", kExec, "--retry-mode", "ALL_ACTIONS", "--dry-run"});
  EXPECT_EQ(bad.code, 252);
  EXPECT_THAT(bad.err, HasSubstr("Parameter validation failed"));
  EXPECT_TRUE(server_.requests().empty());
}

TEST_F(RetryTest, LatestRetriesTheStagesLatestExecution) {
  ServePlan(true, true);
  server_.Always("RetryStageExecution", {{"pipelineExecutionId", kExec}});
  Outcome r = Cli({"retry-stage-execution", "--pipeline-name", "p", "--stage-name", "Build",
                   "--retry-mode", "FAILED_ACTIONS", "--latest"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(kExec));
  auto retry = server_.requests("RetryStageExecution");
  ASSERT_EQ(retry.size(), 1u);
  EXPECT_EQ(retry[0].body["pipelineExecutionId"], kExec);
  EXPECT_EQ(server_.requests("GetPipelineState")[0].body, json({{"name", "p"}}));
}

TEST_F(RetryTest, LatestAndDryRunWorkWithCliInputJson) {
  ServePlan(true, true);
  Outcome r = Cli({"retry-stage-execution", "--latest", "--dry-run", "--cli-input-json",
                   R"({"pipelineName":"p","stageName":"Source","retryMode":"ALL_ACTIONS"})"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto plan = server_.requests("GetStageRetryPlan");
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].body["pipelineExecutionId"], kOther);
  EXPECT_EQ(plan[0].body["retryMode"], "ALL_ACTIONS");
  EXPECT_TRUE(server_.requests("RetryStageExecution").empty());
}

TEST_F(RetryTest, LatestErrors) {
  ServePlan(true, true);
  Outcome never = Cli({"retry-stage-execution", "--pipeline-name", "p", "--stage-name", "Deploy",
                       "--retry-mode", "FAILED_ACTIONS", "--latest"});
  EXPECT_EQ(never.code, 252);
  EXPECT_EQ(never.err, "\nStage 'Deploy' of pipeline 'p' has never run (--latest)\n");
  Outcome unknown = Cli({"retry-stage-execution", "--pipeline-name", "p", "--stage-name", "Nope",
                         "--retry-mode", "FAILED_ACTIONS", "--latest"});
  EXPECT_EQ(unknown.code, 252);
  EXPECT_THAT(unknown.err, HasSubstr("Stage 'Nope' does not exist in pipeline 'p'"));
  Outcome both =
      Cli({"retry-stage-execution", "--pipeline-name", "p", "--stage-name", "Build", "--retry-mode",
           "FAILED_ACTIONS", "--latest", "--pipeline-execution-id", kExec});
  EXPECT_EQ(both.code, 252);
  EXPECT_THAT(both.err, HasSubstr("cannot be used together"));
  EXPECT_TRUE(server_.requests("RetryStageExecution").empty());
}

TEST_F(RetryTest, GetStageRetryPlanVerb) {
  ServePlan(false, true);
  Outcome r = Cli({"get-stage-retry-plan", "--pipeline-name", "p", "--stage-name", "Build",
                   "--pipeline-execution-id", kExec});
  EXPECT_EQ(r.code, 0) << r.err;  // A refusing plan is still a plan.
  json out = json::parse(r.out);
  EXPECT_FALSE(out.contains("retryable"));
  EXPECT_EQ(out["plans"]["FAILED_ACTIONS"]["retryable"], false);
  EXPECT_FALSE(server_.requests("GetStageRetryPlan")[0].body.contains("retryMode"));

  Outcome latest = Cli({"get-stage-retry-plan", "--pipeline-name", "p", "--stage-name", "Build",
                        "--latest", "--retry-mode", "ALL_ACTIONS"});
  EXPECT_EQ(latest.code, 0) << latest.err;
  EXPECT_EQ(json::parse(latest.out)["retryable"], true);
  EXPECT_EQ(server_.requests("GetStageRetryPlan")[1].body["pipelineExecutionId"], kExec);

  Outcome missing = Cli({"get-stage-retry-plan", "--pipeline-name", "p", "--stage-name", "B"});
  EXPECT_EQ(missing.code, 252);
  EXPECT_THAT(missing.err, HasSubstr("--pipeline-execution-id"));
  Outcome json_missing =
      Cli({"get-stage-retry-plan", "--cli-input-json", R"({"pipelineName":"p"})"});
  EXPECT_EQ(json_missing.code, 252);
  EXPECT_THAT(json_missing.err, HasSubstr("Missing required parameter: --stage-name"));
}

TEST_F(RetryTest, PlanServiceErrorExits254) {
  server_.On("GetStageRetryPlan", [](const json&, int) {
    return Answer{400, {{"__type", "PipelineExecutionNotFoundException"}, {"message", "no"}}};
  });
  Outcome r = Cli({"get-stage-retry-plan", "--pipeline-name", "p", "--stage-name", "Build",
                   "--pipeline-execution-id", kExec});
  EXPECT_EQ(r.code, 254);
  EXPECT_EQ(r.err,
            "\nAn error occurred (PipelineExecutionNotFoundException) when calling the "
            "GetStageRetryPlan operation: no\n");
}

// --- help ------------------------------------------------------------------

TEST(ExtensionsHelp, ListsTheVerbsAndFlags) {
  std::ostringstream out;
  std::ostringstream err;
  ASSERT_EQ(RunCli({"help"}, out, err), 0);
  for (const char* line :
       {"\n  get-stage-retry-plan  ", "\n  logs  ", "\n  start-pipeline-execution --wait  ",
        "\n  retry-stage-execution --dry-run  ", "\n  retry-stage-execution --latest  ",
        "\n  retry-stage-execution --wait  ", "\n  serve  ", "\n  worker  ", "\n  status  "}) {
    EXPECT_THAT(out.str(), HasSubstr(line));
  }
  // Pipewright's verbs first, then the model's, each with its documentation's first sentence.
  EXPECT_LT(out.str().find("\n  serve  "), out.str().find("\n  acknowledge-job  "));
  EXPECT_THAT(out.str(), ::testing::ContainsRegex("\n  create-pipeline +Creates a pipeline\\.\n"));
  EXPECT_THAT(out.str(),
              ::testing::ContainsRegex("\n  retry-stage-execution +You can retry a stage that has "
                                       "failed without having to run a pipeline again from the "
                                       "beginning\\.\n"));
  std::ostringstream version;
  ASSERT_EQ(RunCli({"--version"}, version, err), 0);
  EXPECT_THAT(version.str(),
              ::testing::MatchesRegex("pipewright [0-9]+\\.[0-9]+\\.[0-9]+ \\(.+\\)\n"));
  std::ostringstream op_out;
  ASSERT_EQ(RunCli({"start-pipeline-execution", "help"}, op_out, err), 0);
  EXPECT_THAT(op_out.str(), HasSubstr("--wait-timeout <seconds>"));
  std::ostringstream retry_out;
  ASSERT_EQ(RunCli({"retry-stage-execution", "help"}, retry_out, err), 0);
  EXPECT_THAT(retry_out.str(), HasSubstr("--dry-run"));
  EXPECT_THAT(retry_out.str(), HasSubstr("--wait-timeout <seconds>"));
}

}  // namespace
}  // namespace pw::cli::extensions_test
