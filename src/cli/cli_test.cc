// End-to-end tests of the CLI against an in-process HTTP server on a free port.
#include "cli/cli.h"

#ifdef PW_HAVE_SIGV4
#include "sigv4/sigv4.h"
#endif

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace pw::cli::cli_test {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Request {
  std::string target;
  nlohmann::json body;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string raw_body;
};

// Answers canned responses by X-Amz-Target and records every request.
class FakePipewright {
 public:
  FakePipewright() {
    server_.Post("/", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      Request r{req.get_header_value("X-Amz-Target"),
                nlohmann::json::parse(req.body.empty() ? "{}" : req.body, nullptr, false),
                req.get_header_value("Content-Type"),
                {req.headers.begin(), req.headers.end()},
                req.body};
      requests_.push_back(r);
      Answer(r, res);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // No sleeps: poll with a deadline until the listener runs.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!server_.is_running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  }
  ~FakePipewright() {
    server_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Answer(const Request& r, httplib::Response& res) {
    const std::string ct = "application/x-amz-json-1.1";
    const std::string op = r.target.substr(r.target.find('.') + 1);
    if (op == "GetPipeline") {
      res.set_content(R"({"pipeline":{"name":"p","roleArn":"r","stages":[],"version":2},)"
                      R"("metadata":{"pipelineArn":"arn:p","created":1700000000.5},"extra":1})",
                      ct);
    } else if (op == "GetPipelineState") {
      res.status = 400;
      res.set_content(R"({"__type":"PipelineNotFoundException","message":"The pipeline 'x' )"
                      R"(was not found"})",
                      ct);
    } else if (op == "StartPipelineExecution") {
      if (++start_calls_ == 1) {
        res.status = 500;
        res.set_content(R"({"__type":"InternalFailure","message":"boom"})", ct);
      } else {
        res.set_content(R"({"pipelineExecutionId":"11111111-2222-3333-4444-555555555555"})", ct);
      }
    } else if (op == "CreatePipeline") {
      res.status = 400;
      res.set_content(R"({"__type":"LimitExceededException","message":"too many"})", ct);
    } else if (op == "ListPipelines") {
      int page = 0;
      if (r.body.contains("nextToken")) {
        page = std::stoi(r.body["nextToken"].get<std::string>().substr(1));
      }
      nlohmann::json out;
      out["pipelines"] = nlohmann::json::array();
      for (int i = 0; i < 2; ++i) {
        out["pipelines"].push_back({{"name", "p" + std::to_string(page * 2 + i)}, {"version", 1}});
      }
      if (page < 2) out["nextToken"] = "t" + std::to_string(page + 1);
      res.set_content(out.dump(), ct);
    } else if (op == "DeletePipeline") {
      res.set_content("", ct);
    } else if (op == "GetStageRetryPlan") {
      res.set_content(R"({"plan":["a"]})", ct);
    } else {
      res.status = 400;
      res.set_content(R"({"__type":"UnknownOperationException","message":"no"})", ct);
    }
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Request> requests_;  // Guarded by mu_.
  int start_calls_ = 0;            // Guarded by mu_.
};

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

Outcome RunArgs(std::vector<std::string> args) {
  std::ostringstream out;
  std::ostringstream err;
  int code = RunCli(args, out, err);
  return {code, out.str(), err.str()};
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Hermetic: no credentials or endpoint from the environment running the tests.
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("PIPEWRIGHT_ENDPOINT");
  }
  Outcome Call(std::vector<std::string> args) {
    args.push_back("--endpoint-url");
    args.push_back(server_.url());
    return RunArgs(std::move(args));
  }
  FakePipewright server_;
};

TEST_F(CliTest, SuccessPrintsShapedJson) {
  Outcome r = Call({"get-pipeline", "--name", "p"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\n"
            "    \"pipeline\": {\n"
            "        \"name\": \"p\",\n"
            "        \"roleArn\": \"r\",\n"
            "        \"stages\": [],\n"
            "        \"version\": 2\n"
            "    },\n"
            "    \"metadata\": {\n"
            "        \"pipelineArn\": \"arn:p\",\n"
            "        \"created\": \"2023-11-14T22:13:20.500000+00:00\"\n"
            "    }\n"
            "}\n");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target, "CodePipeline_20150709.GetPipeline");
  EXPECT_EQ(reqs[0].content_type, "application/x-amz-json-1.1");
  EXPECT_EQ(reqs[0].body, nlohmann::json::parse(R"({"name":"p"})"));
}

TEST_F(CliTest, EmptyBodyPrintsNothing) {
  Outcome r = Call({"delete-pipeline", "--name", "p"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(CliTest, ServiceErrorExits254) {
  Outcome r = Call({"get-pipeline-state", "--name", "x"});
  EXPECT_EQ(r.code, 254);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "\nAn error occurred (PipelineNotFoundException) when calling the GetPipelineState "
            "operation: The pipeline 'x' was not found\n");
  EXPECT_EQ(server_.requests().size(), 1u);  // Client errors are not retried.
}

TEST_F(CliTest, RetriesServerErrorWithTheSameIdempotencyToken) {
  Outcome r = Call({"start-pipeline-execution", "--name", "p"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("11111111-2222-3333-4444-555555555555"));
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  ASSERT_TRUE(reqs[0].body.contains("clientRequestToken"));
  std::string token = reqs[0].body["clientRequestToken"];
  EXPECT_EQ(token.size(), 36u);
  EXPECT_EQ(reqs[1].body["clientRequestToken"], token);
}

TEST_F(CliTest, ThrottlingCodeRetriedThreeTimes) {
  Outcome r = Call({"create-pipeline", "--pipeline", R"({"name":"p","roleArn":"r","stages":[]})"});
  EXPECT_EQ(r.code, 254);
  EXPECT_EQ(r.err,
            "\nAn error occurred (LimitExceededException) when calling the CreatePipeline "
            "operation (reached max retries: 2): too many\n");
  EXPECT_EQ(server_.requests().size(), 3u);
}

TEST_F(CliTest, PaginatesAndMerges) {
  Outcome r = Call({"list-pipelines"});
  EXPECT_EQ(r.code, 0) << r.err;
  nlohmann::json out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["pipelines"].size(), 6u);
  EXPECT_FALSE(out.contains("nextToken"));
  EXPECT_EQ(server_.requests().size(), 3u);
}

TEST_F(CliTest, MaxItemsPrintsResumeTokenThatResumes) {
  Outcome first = Call({"list-pipelines", "--max-items", "3"});
  ASSERT_EQ(first.code, 0) << first.err;
  nlohmann::json out = nlohmann::json::parse(first.out);
  EXPECT_EQ(out["pipelines"].size(), 3u);
  ASSERT_TRUE(out.contains("NextToken"));
  Outcome second = Call({"list-pipelines", "--starting-token", out["NextToken"]});
  ASSERT_EQ(second.code, 0) << second.err;
  nlohmann::json rest = nlohmann::json::parse(second.out);
  ASSERT_EQ(rest["pipelines"].size(), 3u);
  EXPECT_EQ(rest["pipelines"][0]["name"], "p3");
}

TEST_F(CliTest, NoPaginateAndExplicitTokenFetchOnePage) {
  Outcome r = Call({"list-pipelines", "--no-paginate"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["nextToken"], "t1");
  Outcome r2 = Call({"list-pipelines", "--next-token", "t1"});
  EXPECT_EQ(nlohmann::json::parse(r2.out)["nextToken"], "t2");
  EXPECT_EQ(server_.requests().size(), 2u);
}

TEST_F(CliTest, ParameterErrorsExit252WithoutSending) {
  Outcome missing = Call({"get-pipeline", "--cli-input-json", "{}"});
  EXPECT_EQ(missing.code, 252);
  EXPECT_EQ(missing.err,
            "\nParameter validation failed:\nMissing required parameter in input: \"name\"\n");
  Outcome file = Call({"get-pipeline", "--cli-input-json", "file:///nonexistent/x.json"});
  EXPECT_EQ(file.code, 252);
  EXPECT_EQ(file.err,
            "\nError parsing parameter '--cli-input-json': Unable to load paramfile "
            "file:///nonexistent/x.json: [Errno 2] No such file or directory: "
            "'/nonexistent/x.json'\n");
  Outcome unknown = Call({"get-pipeline", "--name", "p", "--bogus"});
  EXPECT_EQ(unknown.code, 252);
  EXPECT_THAT(unknown.err, HasSubstr("Unknown options: --bogus"));
  Outcome verb = Call({"get-pipelinex"});
  EXPECT_EQ(verb.code, 252);
  EXPECT_THAT(verb.err, HasSubstr("Invalid choice: 'get-pipelinex'"));
  Outcome output = Call({"get-pipeline", "--name", "p", "--output", "yaml"});
  EXPECT_EQ(output.code, 252);
  EXPECT_THAT(output.err, HasSubstr("json | text | table"));
  Outcome query = Call({"get-pipeline", "--name", "p", "--query", "pipeline.[name"});
  EXPECT_EQ(query.code, 252);
  EXPECT_THAT(query.err, HasSubstr("Bad value for --query pipeline.[name: syntax:"));
  EXPECT_TRUE(server_.requests().empty());
}

TEST_F(CliTest, HelpListsVerbsAndFlags) {
  Outcome all = RunArgs({"help"});
  EXPECT_EQ(all.code, 0);
  EXPECT_THAT(all.out, ::testing::ContainsRegex("\n  get-pipeline-state +Returns information"));
  EXPECT_THAT(all.out, ::testing::ContainsRegex("\n  list-tags-for-resource +Gets the set"));
  Outcome one = RunArgs({"stop-pipeline-execution", "help"});
  EXPECT_EQ(one.code, 0);
  EXPECT_THAT(one.out, HasSubstr("--pipeline-name <string>  (required)"));
  EXPECT_THAT(one.out, HasSubstr("--abandon | --no-abandon  (boolean)"));
  Outcome tags = RunArgs({"untag-resource", "--help"});
  EXPECT_THAT(tags.out, HasSubstr("--tag-keys <list<string>>  (required)"));
}

#ifdef PW_HAVE_SIGV4
TEST_F(CliTest, SignsWithEnvironmentCredentials) {
  setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
  Outcome r = Call({"get-pipeline", "--name", "p", "--region", "eu-west-1"});
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  ASSERT_EQ(r.code, 0) << r.err;
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  sigv4::HttpRequestView view{"POST", "/", "", reqs[0].headers, reqs[0].raw_body};
  std::string auth;
  for (const auto& [k, v] : reqs[0].headers) {
    if (k == "Authorization") auth = v;
  }
  EXPECT_THAT(auth, HasSubstr("/eu-west-1/codepipeline/aws4_request, "
                              "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "));
  Result<std::string> akid =
      sigv4::Verify(view, "codepipeline", static_cast<int64_t>(std::time(nullptr)),
                    [](std::string_view id) -> std::optional<sigv4::SecretInfo> {
                      if (id != "AKIDTEST") return std::nullopt;
                      return sigv4::SecretInfo{"secret", "", 0};
                    });
  ASSERT_TRUE(akid.ok()) << akid.status().message();
  EXPECT_EQ(*akid, "AKIDTEST");
}
#endif

TEST_F(CliTest, UnsignedWithoutCredentials) {
  Outcome r = Call({"get-pipeline", "--name", "p"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  for (const auto& [k, v] : reqs[0].headers) EXPECT_NE(k, "Authorization");
}

TEST(CliConnection, UnreachableEndpointExits255) {
  // A port that was free a moment ago: bind, read it back, close.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  int port = ntohs(addr.sin_port);
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  Outcome r = RunArgs({"get-pipeline", "--name", "p", "--endpoint-url", url});
  EXPECT_EQ(r.code, 255);
  EXPECT_THAT(r.err, StartsWith("\nCould not connect to the endpoint URL: \"" + url + "/\"\n"));
  EXPECT_THAT(r.err, HasSubstr("`pipewright serve`"));
  EXPECT_THAT(r.err, HasSubstr("PIPEWRIGHT_ENDPOINT=URL"));
}

TEST_F(CliTest, ExtraVerbGetsContextAndCall) {
  RegisterExtraVerb(
      "retry-plan", "Shows a stage retry plan",
      [](const std::vector<std::string>& args, const CliContext& ctx) {
        if (args != std::vector<std::string>{"p"}) return 99;
        auto ok = ctx.Call("Pipewright_20261125.GetStageRetryPlan", {{"pipelineName", args[0]}});
        if (!ok.ok() || (*ok)["plan"][0] != "a") return 98;
        auto bad = ctx.Call("CodePipeline_20150709.GetPipelineState", {{"name", "x"}});
        if (bad.ok() || bad.status().wire_name() != "PipelineNotFoundException") {
          return 97;
        }
        ctx.out() << ctx.region();
        return ctx.PrintError(bad.status(), "GetPipelineState");
      });
  Outcome r = Call({"retry-plan", "p", "--region", "eu-west-1"});
  EXPECT_EQ(r.code, 254);
  EXPECT_EQ(r.out, "eu-west-1");
  EXPECT_THAT(r.err, StartsWith("\nAn error occurred (PipelineNotFoundException)"));
  EXPECT_THAT(RunArgs({"help"}).out,
              ::testing::ContainsRegex("\n  retry-plan +Shows a stage retry plan\n"));
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].target, "Pipewright_20261125.GetStageRetryPlan");
}

}  // namespace
}  // namespace pw::cli::cli_test
