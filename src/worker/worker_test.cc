// Worker tests against an in-process httplib server that plays the job API and
// the S3 endpoint (FakeCodePipeline), with real child processes.

#include "worker/worker.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/shell_quote.h"
#include "runner/artifact_store.h"
#include "runner/commands.h"
#include "runner/process_launcher.h"
#include "runner/s3_client.h"
#include "runner/temp_dir.h"
#include "sigv4/sigv4.h"
#include "worker/job.h"
#include "worker/job_program.h"

namespace pw::worker::worker_test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::seconds;

constexpr char kJobId[] = "0f8fad5b-d9cb-469f-a165-70867728950e";
constexpr char kBucket[] = "pipewright-artifacts";
const sigv4::Credentials kJobCreds{"ASIAJOBKEY", "job-secret", "job-session-token"};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// Zips `files` (relative path -> content) and returns the zip's bytes.
std::string MakeZip(const std::map<std::string, std::string>& files) {
  auto tmp = runner::ScopedTempDir::Create("wt-zip");
  EXPECT_TRUE(tmp.ok());
  for (const auto& [name, text] : files) WriteFile(tmp->path() + "/dir/" + name, text);
  fs::create_directories(tmp->path() + "/dir");
  runner::ArtifactStore store(tmp->path() + "/store");
  auto rev = store.PutDirectory(tmp->path() + "/dir");
  EXPECT_TRUE(rev.ok()) << rev.status().ToString();
  return ReadFile(store.PathOf(*rev));
}

// Unzips `bytes` and returns relative path -> content.
std::map<std::string, std::string> Unzip(const std::string& bytes) {
  std::map<std::string, std::string> out;
  auto tmp = runner::ScopedTempDir::Create("wt-unzip");
  EXPECT_TRUE(tmp.ok());
  runner::ArtifactStore store(tmp->path() + "/store");
  auto rev = store.PutZipBytes(bytes);
  EXPECT_TRUE(rev.ok()) << rev.status().ToString();
  if (!rev.ok()) return out;
  EXPECT_TRUE(store.Extract(*rev, tmp->path() + "/out").ok());
  for (const auto& e : fs::recursive_directory_iterator(tmp->path() + "/out")) {
    if (e.is_regular_file()) {
      out[fs::relative(e.path(), tmp->path() + "/out").string()] = ReadFile(e.path().string());
    }
  }
  return out;
}

json Artifact(const std::string& name, const std::string& key) {
  return {{"name", name},
          {"revision", "rev-" + name},
          {"location",
           {{"type", "S3"}, {"s3Location", {{"bucketName", kBucket}, {"objectKey", key}}}}}};
}

// A job as PollForJobs returns it: Build/Custom/MyWorker/1, one input, one output.
json MakeJob(const std::string& id = kJobId, const std::string& nonce = "nonce-1") {
  return {
      {"id", id},
      {"nonce", nonce},
      {"accountId", "123456789012"},
      {"data",
       {{"actionTypeId",
         {{"category", "Build"}, {"owner", "Custom"}, {"provider", "MyWorker"}, {"version", "1"}}},
        {"actionConfiguration", {{"configuration", {{"Greeting", "hello world"}}}}},
        {"pipelineContext",
         {{"pipelineName", "demo"},
          {"stage", {{"name", "Build"}}},
          {"action", {{"name", "Custom"}, {"actionExecutionId", "run-1"}}},
          {"pipelineArn", "arn:aws:codepipeline:us-east-1:123456789012:demo"},
          {"pipelineExecutionId", "11111111-2222-3333-4444-555555555555"}}},
        {"inputArtifacts", json::array({Artifact("Src", "demo/Src/in.zip")})},
        {"outputArtifacts", json::array({Artifact("Out", "demo/Out/out.zip")})},
        {"artifactCredentials",
         {{"accessKeyId", kJobCreds.access_key_id},
          {"secretAccessKey", kJobCreds.secret_access_key},
          {"sessionToken", kJobCreds.session_token}}}}}};
}

// Plays the job API and the S3 endpoint on 127.0.0.1:<free port>. PollForJobs
// hands out each queued job once; AcknowledgeJob checks the nonce; S3 requests
// must be signed with kJobCreds for service "s3".
class FakeCodePipeline {
 public:
  FakeCodePipeline() {
    server_.Post("/",
                 [this](const httplib::Request& req, httplib::Response& res) { Api(req, res); });
    server_.Get(".*",
                [this](const httplib::Request& req, httplib::Response& res) { S3(req, res); });
    server_.Put(".*",
                [this](const httplib::Request& req, httplib::Response& res) { S3(req, res); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeCodePipeline() {
    server_.stop();
    thread_.join();
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void QueueJob(json job, std::string expected_nonce = "") {
    std::lock_guard lock(mu_);
    if (expected_nonce.empty()) expected_nonce = job["nonce"].get<std::string>();
    nonces_[job["id"].get<std::string>()] = expected_nonce;
    queue_.push_back(std::move(job));
  }
  void PutObject(const std::string& key, std::string bytes) {
    std::lock_guard lock(mu_);
    objects_[key] = std::move(bytes);
  }
  std::optional<std::string> Object(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = objects_.find(key);
    if (it == objects_.end()) return std::nullopt;
    return it->second;
  }

  // Waits for the n-th result call (PutJobSuccessResult/PutJobFailureResult).
  std::optional<std::pair<std::string, json>> WaitResult(size_t n = 1) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, seconds(20), [&] { return results_.size() >= n; })) return std::nullopt;
    return results_[n - 1];
  }
  // Waits until `n` polls have been answered.
  bool WaitPolls(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, seconds(20), [&] { return polls_ >= n; });
  }
  size_t result_count() {
    std::lock_guard lock(mu_);
    return results_.size();
  }
  int acks() {
    std::lock_guard lock(mu_);
    return acks_;
  }
  json last_poll() {
    std::lock_guard lock(mu_);
    return last_poll_;
  }

 private:
  static void Error(httplib::Response& res, const std::string& type, const std::string& msg) {
    res.status = 400;
    res.set_content(json{{"__type", type}, {"message", msg}}.dump(), "application/x-amz-json-1.1");
  }

  void Api(const httplib::Request& req, httplib::Response& res) {
    const std::string target = req.get_header_value("X-Amz-Target");
    json body = json::parse(req.body, nullptr, false);
    std::lock_guard lock(mu_);
    if (target == "CodePipeline_20150709.PollForJobs") {
      ++polls_;
      last_poll_ = body;
      json jobs = json::array();
      int max = body.value("maxBatchSize", 1);
      while (!queue_.empty() && static_cast<int>(jobs.size()) < max) {
        jobs.push_back(queue_.front());
        queue_.erase(queue_.begin());
      }
      res.set_content(json{{"jobs", jobs}}.dump(), "application/x-amz-json-1.1");
    } else if (target == "CodePipeline_20150709.AcknowledgeJob") {
      ++acks_;
      auto it = nonces_.find(body.value("jobId", ""));
      if (it == nonces_.end()) return Error(res, "JobNotFoundException", "no such job");
      if (it->second != body.value("nonce", ""))
        return Error(res, "InvalidNonceException", "nonce");
      res.set_content(R"({"status":"InProgress"})", "application/x-amz-json-1.1");
    } else if (target == "CodePipeline_20150709.PutJobSuccessResult" ||
               target == "CodePipeline_20150709.PutJobFailureResult") {
      results_.emplace_back(target.substr(target.find('.') + 1), body);
      res.set_content("{}", "application/x-amz-json-1.1");
    } else {
      Error(res, "UnknownOperationException", target);
    }
    cv_.notify_all();
  }

  void S3(const httplib::Request& req, httplib::Response& res) {
    sigv4::HttpRequestView view;
    view.method = req.method;
    view.path = req.target.substr(0, req.target.find('?'));
    for (const auto& [k, v] : req.headers) {
      // httplib adds these itself on the server side.
      if (k == "REMOTE_ADDR" || k == "REMOTE_PORT" || k == "LOCAL_ADDR" || k == "LOCAL_PORT") {
        continue;
      }
      view.headers.emplace_back(k, v);
    }
    view.body = req.body;
    auto who = sigv4::Verify(view, "s3", std::time(nullptr), [](std::string_view id) {
      std::optional<sigv4::SecretInfo> info;
      if (id == kJobCreds.access_key_id) {
        info = sigv4::SecretInfo{kJobCreds.secret_access_key, kJobCreds.session_token, 0};
      }
      return info;
    });
    if (!who.ok()) {
      res.status = 403;
      res.set_content("<Error><Code>" + who.status().wire_name() + "</Code><Message>" +
                          who.status().message() + "</Message></Error>",
                      "application/xml");
      return;
    }
    const std::string prefix = std::string("/") + kBucket + "/";
    if (req.path.rfind(prefix, 0) != 0) {
      res.status = 404;
      res.set_content("<Error><Code>NoSuchBucket</Code></Error>", "application/xml");
      return;
    }
    const std::string key = req.path.substr(prefix.size());
    std::lock_guard lock(mu_);
    if (req.method == "PUT") {
      objects_[key] = req.body;
      cv_.notify_all();
      return;
    }
    auto it = objects_.find(key);
    if (it == objects_.end()) {
      res.status = 404;
      res.set_content(
          "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist."
          "</Message></Error>",
          "application/xml");
      return;
    }
    res.set_content(it->second, "application/zip");
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<json> queue_;                            // Guarded by mu_.
  std::map<std::string, std::string> nonces_;          // Job id -> expected nonce. Guarded by mu_.
  std::map<std::string, std::string> objects_;         // Key -> bytes. Guarded by mu_.
  std::vector<std::pair<std::string, json>> results_;  // Guarded by mu_.
  int polls_ = 0;                                      // Guarded by mu_.
  int acks_ = 0;                                       // Guarded by mu_.
  json last_poll_;                                     // Guarded by mu_.
};

// A Worker running Run() on its own thread against a FakeCodePipeline.
class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = runner::ScopedTempDir::Create("worker-test");
    ASSERT_TRUE(tmp.ok());
    tmp_.emplace(std::move(*tmp));
    launcher_ = runner::NewPosixProcessLauncher();
    fake_.PutObject("demo/Src/in.zip", MakeZip({{"input.txt", "from the source\n"}}));
  }
  void TearDown() override {
    StopWorker();
    worker_.reset();
    launcher_.reset();
  }

  WorkerOptions Options(std::vector<std::string> program) {
    WorkerOptions o;
    o.api.endpoint_url = fake_.endpoint();
    o.api.region = "us-east-1";
    o.api.max_attempts = 1;
    o.action_types = {ActionTypeId{"Build", "Custom", "MyWorker", "1"}};
    o.program.program = std::move(program);
    o.poll_interval_seconds = 0.02;
    o.work_dir = tmp_->path() + "/work";
    o.report_retry_seconds = 0;
    o.log = [this](const std::string& line) {
      std::lock_guard lock(log_mu_);
      log_ += line + "\n";
    };
    return o;
  }
  // Runs `script` with /bin/sh -c.
  WorkerOptions ShellOptions(const std::string& script) {
    return Options({"/bin/sh", "-c", script});
  }

  void StartWorker(WorkerOptions options) {
    worker_ = std::make_unique<Worker>(std::move(options), *launcher_);
    run_ = std::thread([this] { run_status_ = worker_->Run(); });
  }
  void StopWorker() {
    if (!worker_ || !run_.joinable()) return;
    worker_->Stop();
    run_.join();
  }
  std::string log() {
    std::lock_guard lock(log_mu_);
    return log_;
  }

  FakeCodePipeline fake_;
  std::optional<runner::ScopedTempDir> tmp_;
  std::unique_ptr<runner::ProcessLauncher> launcher_;
  std::unique_ptr<Worker> worker_;
  std::thread run_;
  int run_status_ = -1;
  std::mutex log_mu_;
  std::string log_;
};

TEST(ParseActionTypeId, AcceptsCategoryProviderVersion) {
  auto t = ParseActionTypeId("Build/MyWorker/1", "Custom");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->ToString(), "Build/Custom/MyWorker/1");
  EXPECT_FALSE(ParseActionTypeId("Build/MyWorker", "Custom").ok());
  EXPECT_FALSE(ParseActionTypeId("Build//1", "Custom").ok());
  EXPECT_FALSE(ParseActionTypeId("a/b/c/d/e", "Custom").ok());
  EXPECT_FALSE(ParseActionTypeId("Deploy//CloudFormation/1", "Custom").ok());
}

TEST(ParseActionTypeId, AcceptsCategoryOwnerProviderVersion) {
  auto t = ParseActionTypeId("Deploy/AWS/CloudFormation/1", "Custom");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->owner, "AWS");
  EXPECT_EQ(t->category, "Deploy");
  EXPECT_EQ(t->provider, "CloudFormation");
  EXPECT_EQ(t->version, "1");
  EXPECT_EQ(ParseActionTypeId("Build/Custom/MyWorker/2", "AWS")->owner, "Custom");
}

TEST(ParseJob, ReadsJobData) {
  json j = MakeJob();
  j["data"]["continuationToken"] = "tok";
  auto job = ParseJob(j);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->id, kJobId);
  EXPECT_EQ(job->nonce, "nonce-1");
  EXPECT_EQ(job->configuration.at("Greeting"), "hello world");
  EXPECT_EQ(job->stage_name, "Build");
  EXPECT_EQ(job->action_execution_id, "run-1");
  ASSERT_EQ(job->input_artifacts.size(), 1u);
  EXPECT_EQ(job->input_artifacts[0].location.key, "demo/Src/in.zip");
  EXPECT_EQ(job->artifact_credentials.session_token, "job-session-token");
  EXPECT_EQ(job->continuation_token, "tok");
  EXPECT_FALSE(ParseJob(json{{"nonce", "x"}}).ok());
  j["data"]["inputArtifacts"] = "nope";
  EXPECT_FALSE(ParseJob(j).ok());
}

TEST(S3Client, EncodesKeysPathStyle) {
  S3Client s3({.endpoint_url = "http://h:1/base/"});
  EXPECT_EQ(s3.PathOf({"b", "dir/a b+c.zip"}), "/base/b/dir/a%20b%2Bc.zip");
}

TEST_F(WorkerTest, SucceedsUploadsOutputAndReportsVariables) {
  json job = MakeJob();
  job["data"]["inputArtifacts"].push_back(Artifact("Second", "demo/Second/two.zip"));
  fake_.PutObject("demo/Second/two.zip", MakeZip({{"two.txt", "two"}}));
  fake_.QueueJob(job);
  StartWorker(ShellOptions(
      "set -e\n"
      "cat input.txt > out.txt\n"
      "echo \"$PIPEWRIGHT_CONFIG_Greeting from $PIPEWRIGHT_PIPELINE/$PIPEWRIGHT_STAGE/"
      "$PIPEWRIGHT_ACTION\" >> out.txt\n"
      "test \"$(cat \"$PIPEWRIGHT_INPUT_Second/two.txt\")\" = two\n"
      "test \"$PIPEWRIGHT_INPUT_Src\" = \"$PWD\"\n"
      "test -z \"${PIPEWRIGHT_CONTINUATION_TOKEN+x}\"\n"
      "echo \"$PIPEWRIGHT_JOB_ID $PIPEWRIGHT_PIPELINE_EXECUTION_ID\" > ids.txt\n"
      "printf 'COLOR=blue\\nEMPTY=\\n\\nMSG=a=b\\n' > \"$PIPEWRIGHT_OUTPUT_VARIABLES_FILE\"\n"));
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result) << log();
  EXPECT_EQ(result->first, "PutJobSuccessResult") << result->second.dump() << log();
  const json& body = result->second;
  EXPECT_EQ(body["jobId"], kJobId);
  EXPECT_EQ(body["executionDetails"]["summary"], "exit 0");
  EXPECT_EQ(body["executionDetails"]["externalExecutionId"], kJobId);
  EXPECT_EQ(body["outputVariables"], (json{{"COLOR", "blue"}, {"EMPTY", ""}, {"MSG", "a=b"}}));
  EXPECT_FALSE(body.contains("continuationToken"));
  auto out = fake_.Object("demo/Out/out.zip");
  ASSERT_TRUE(out);
  auto files = Unzip(*out);
  EXPECT_EQ(files["out.txt"], "from the source\nhello world from demo/Build/Custom\n");
  EXPECT_EQ(files["input.txt"], "from the source\n");
  EXPECT_EQ(files["ids.txt"], std::string(kJobId) + " 11111111-2222-3333-4444-555555555555\n");
  EXPECT_EQ(files.count("two.txt"), 0u);  // Other inputs live outside the working directory.
  StopWorker();
  EXPECT_EQ(run_status_, 0);
  EXPECT_EQ(worker_->stats().succeeded, 1);
  // The job directory is gone.
  EXPECT_TRUE(fs::is_empty(tmp_->path() + "/work"));
  EXPECT_EQ(fake_.last_poll()["actionTypeId"]["provider"], "MyWorker");
}

TEST_F(WorkerTest, ReportsFailureWithExitCodeAndLastLines) {
  fake_.QueueJob(MakeJob());
  StartWorker(ShellOptions("echo first line; echo boom >&2; exit 3"));
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result) << log();
  EXPECT_EQ(result->first, "PutJobFailureResult");
  const json& d = result->second["failureDetails"];
  EXPECT_EQ(d["type"], "JobFailed");
  EXPECT_EQ(d["externalExecutionId"], kJobId);
  std::string message = d["message"];
  EXPECT_NE(message.find("exited with code 3"), std::string::npos) << message;
  EXPECT_NE(message.find("first line"), std::string::npos) << message;
  EXPECT_NE(message.find("boom"), std::string::npos) << message;
  EXPECT_FALSE(fake_.Object("demo/Out/out.zip"));  // Nothing uploaded on failure.
  StopWorker();
  EXPECT_EQ(worker_->stats().failed, 1);
}

TEST_F(WorkerTest, MissingInputObjectFailsTheJob) {
  json job = MakeJob();
  job["data"]["inputArtifacts"][0]["location"]["s3Location"]["objectKey"] = "demo/Src/missing.zip";
  fake_.QueueJob(job);
  StartWorker(ShellOptions("touch ran"));
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result) << log();
  EXPECT_EQ(result->first, "PutJobFailureResult");
  std::string message = result->second["failureDetails"]["message"];
  EXPECT_NE(message.find("NoSuchKey"), std::string::npos) << message;
}

TEST_F(WorkerTest, WrongArtifactCredentialsAreRefusedByS3) {
  json job = MakeJob();
  job["data"]["artifactCredentials"]["sessionToken"] = "stale";
  fake_.QueueJob(job);
  StartWorker(ShellOptions("true"));
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result) << log();
  EXPECT_EQ(result->first, "PutJobFailureResult");
  std::string message = result->second["failureDetails"]["message"];
  EXPECT_NE(message.find("Cannot download input artifact Src"), std::string::npos) << message;
}

TEST_F(WorkerTest, ContinuationTokenKeepsTheActionGoing) {
  json job = MakeJob();
  job["data"]["continuationToken"] = "step-1";
  fake_.QueueJob(job);
  StartWorker(
      ShellOptions("test \"$PIPEWRIGHT_CONTINUATION_TOKEN\" = step-1 || exit 9\n"
                   "echo step-2 > \"$PIPEWRIGHT_CONTINUATION_TOKEN_FILE\"\n"
                   "echo 40 > \"$PIPEWRIGHT_PERCENT_COMPLETE_FILE\"\n"
                   "echo IGNORED=1 > \"$PIPEWRIGHT_OUTPUT_VARIABLES_FILE\"\n"));
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result) << log();
  ASSERT_EQ(result->first, "PutJobSuccessResult") << result->second.dump();
  EXPECT_EQ(result->second["continuationToken"], "step-2");
  EXPECT_EQ(result->second["executionDetails"]["percentComplete"], 40);
  EXPECT_FALSE(result->second.contains("outputVariables"));
  EXPECT_FALSE(fake_.Object("demo/Out/out.zip"));  // The last job of the action uploads.
  StopWorker();
  EXPECT_EQ(worker_->stats().continued, 1);
}

TEST_F(WorkerTest, SkipsAJobAnotherWorkerAcknowledged) {
  fake_.QueueJob(MakeJob(), /*expected_nonce=*/"someone-elses-nonce");
  const std::string marker = tmp_->path() + "/ran";
  StartWorker(ShellOptions("touch " + marker));
  ASSERT_TRUE(fake_.WaitPolls(3));  // Polled on past the job.
  StopWorker();
  EXPECT_EQ(fake_.acks(), 1);
  EXPECT_EQ(fake_.result_count(), 0u);
  EXPECT_FALSE(fs::exists(marker));
  EXPECT_EQ(worker_->stats().skipped, 1);
  EXPECT_EQ(worker_->stats().acknowledged, 0);
  EXPECT_NE(log().find("another worker"), std::string::npos) << log();
}

TEST_F(WorkerTest, StopLetsTheRunningJobFinishAndReport) {
  fake_.QueueJob(MakeJob());
  const std::string started = tmp_->path() + "/started";
  const std::string go = tmp_->path() + "/go";
  StartWorker(ShellOptions("touch " + started +
                           "\n"
                           "while [ ! -e " +
                           go +
                           " ]; do sleep 0.02; done\n"
                           "echo done > out.txt\n"));
  for (int i = 0; i < 1000 && !fs::exists(started); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(fs::exists(started)) << log();
  worker_->Stop();  // As on SIGTERM: no more polls, the running job goes on.
  fake_.QueueJob(MakeJob("1f8fad5b-d9cb-469f-a165-70867728950e", "nonce-2"));
  WriteFile(go, "");
  run_.join();
  EXPECT_EQ(run_status_, 0);
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->first, "PutJobSuccessResult");
  EXPECT_EQ(Unzip(*fake_.Object("demo/Out/out.zip"))["out.txt"], "done\n");
  EXPECT_EQ(fake_.result_count(), 1u);  // The job queued after Stop() was never polled.
  EXPECT_EQ(fake_.acks(), 1);
}

TEST_F(WorkerTest, CancelRunningJobsFailsThem) {
  fake_.QueueJob(MakeJob());
  const std::string started = tmp_->path() + "/started";
  WorkerOptions o = ShellOptions("touch " + started + "; exec sleep 30");
  o.program.kill_grace_seconds = 0.2;
  StartWorker(o);
  for (int i = 0; i < 1000 && !fs::exists(started); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(fs::exists(started)) << log();
  worker_->Stop();
  worker_->CancelRunningJobs();  // As on a second SIGTERM.
  run_.join();
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->first, "PutJobFailureResult");
  std::string message = result->second["failureDetails"]["message"];
  EXPECT_NE(message.find("cancelled"), std::string::npos) << message;
}

TEST_F(WorkerTest, TimeoutFailsTheJob) {
  fake_.QueueJob(MakeJob());
  WorkerOptions o = ShellOptions("echo waiting; exec sleep 30");
  o.program.timeout_seconds = 0.3;
  o.program.kill_grace_seconds = 0.2;
  StartWorker(o);
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result) << log();
  EXPECT_EQ(result->first, "PutJobFailureResult");
  std::string message = result->second["failureDetails"]["message"];
  EXPECT_NE(message.find("Timed out"), std::string::npos) << message;
  EXPECT_NE(message.find("waiting"), std::string::npos) << message;
}

TEST_F(WorkerTest, RunsJobsConcurrentlyUpToMaxJobs) {
  const std::string dir = tmp_->path() + "/marks";
  fs::create_directories(dir);
  for (int i = 0; i < 3; ++i) {
    json job = MakeJob("0f8fad5b-d9cb-469f-a165-70867728950" + std::to_string(i), "n");
    job["data"]["outputArtifacts"] = json::array();
    fake_.QueueJob(job);
  }
  // Each job waits until all three are running at once.
  WorkerOptions o = ShellOptions("touch " + dir +
                                 "/$PIPEWRIGHT_JOB_ID\n"
                                 "i=0; while [ $(ls " +
                                 dir +
                                 " | wc -l) -lt 3 ]; do\n"
                                 "  i=$((i+1)); [ $i -lt 500 ] || exit 7; sleep 0.02; done\n");
  o.max_jobs = 3;
  StartWorker(o);
  for (size_t n = 1; n <= 3; ++n) {
    auto result = fake_.WaitResult(n);
    ASSERT_TRUE(result) << log();
    EXPECT_EQ(result->first, "PutJobSuccessResult") << result->second.dump();
  }
}

TEST_F(WorkerTest, BuiltinCommandsRunAsTheServerRunsThem) {
  json job = MakeJob();
  job["data"]["actionTypeId"] = {
      {"category", "Build"}, {"owner", "AWS"}, {"provider", "Commands"}, {"version", "1"}};
  job["data"]["actionConfiguration"]["configuration"] = {
      {"Commands",
       "echo built > built.txt\ncat input.txt >> built.txt\n"
       "echo \"$GREETING\" >> built.txt"},
      {"EnvironmentVariables", R"([{"name":"GREETING","value":"hi"}])"}};
  fake_.QueueJob(job);
  WorkerOptions o = Options({});
  o.action_types = {ActionTypeId{"Test", "AWS", "Commands", "1"},
                    ActionTypeId{"Build", "AWS", "Commands", "1"}};
  StartWorker(o);
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result) << log();
  ASSERT_EQ(result->first, "PutJobSuccessResult") << result->second.dump();
  EXPECT_EQ(Unzip(*fake_.Object("demo/Out/out.zip"))["built.txt"], "built\nfrom the source\nhi\n");
}

TEST_F(WorkerTest, BuiltinCommandsNameTheFailingCommand) {
  json job = MakeJob();
  job["data"]["actionConfiguration"]["configuration"] = {
      {"Commands", "echo one\nfalse\necho never"}};
  fake_.QueueJob(job);
  StartWorker(Options({}));
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result) << log();
  ASSERT_EQ(result->first, "PutJobFailureResult");
  std::string message = result->second["failureDetails"]["message"];
  EXPECT_NE(message.find("Command 2 (false) exited with code 1."), std::string::npos) << message;
  EXPECT_EQ(message.find("never"), std::string::npos) << message;
}

TEST_F(WorkerTest, BuiltinCommandsFromTheServersListKeepAMultiLineCommandWhole) {
  // A declared command may span lines (an if … fi); the server sends the
  // exact list as PipewrightCommands, so the worker numbers commands as the
  // server's runner does.
  json job = MakeJob();
  const json list = {"if true; then\n  echo inside\nfi", "false"};
  job["data"]["actionConfiguration"]["configuration"] = {
      {"Commands", "if true; then\n  echo inside\nfi\nfalse"}, {"PipewrightCommands", list.dump()}};
  fake_.QueueJob(job);
  StartWorker(Options({}));
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result) << log();
  ASSERT_EQ(result->first, "PutJobFailureResult");
  std::string message = result->second["failureDetails"]["message"];
  EXPECT_NE(message.find("Command 2 (false) exited with code 1."), std::string::npos) << message;
}

TEST_F(WorkerTest, BuiltinWithoutCommandsIsAConfigurationError) {
  json job = MakeJob();
  job["data"]["actionConfiguration"]["configuration"] = json::object();
  fake_.QueueJob(job);
  StartWorker(Options({}));
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result) << log();
  ASSERT_EQ(result->first, "PutJobFailureResult");
  EXPECT_EQ(result->second["failureDetails"]["type"], "ConfigurationError");
}

TEST_F(WorkerTest, MalformedOutputVariablesFailTheJob) {
  fake_.QueueJob(MakeJob());
  StartWorker(ShellOptions("echo 'no equals sign' > \"$PIPEWRIGHT_OUTPUT_VARIABLES_FILE\""));
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result) << log();
  ASSERT_EQ(result->first, "PutJobFailureResult");
  std::string message = result->second["failureDetails"]["message"];
  EXPECT_NE(message.find("line 1"), std::string::npos) << message;
}

// The server hands a worker Commands rewritten by core::RewriteForShell and
// the values as environment variables; run through the real /bin/sh, every
// payload stays data and arrives byte for byte, whatever the quoting.
TEST_F(WorkerTest, BuiltinCommandsGetVariableValuesAsData) {
  const std::vector<std::string> payloads = {
      "$(touch M)",      "`touch M`",  "1.0; touch M",  "'; touch M; '",
      "\"; touch M; \"", "two\nlines", "back\\slash\\", "${HOME}",
  };
  core::Variables scope;
  std::vector<std::string> written;
  for (size_t i = 0; i < payloads.size(); ++i) {
    const std::string ref = "#{variables.p" + std::to_string(i) + "}";
    const std::string n = std::to_string(i);
    scope["variables.p" + n] = payloads[i];
    written.push_back("printf '%s' " + ref + " > unquoted" + n);
    written.push_back("printf '%s' \"" + ref + "\" > double" + n);
    written.push_back("printf '%s' '" + ref + "' > single" + n);
    written.push_back("printf '%s' \"$(printf '%s' " + ref + ")\" > subst" + n);
  }
  auto shell = core::RewriteForShell(written, scope);
  ASSERT_TRUE(shell.ok()) << shell.status().ToString();
  std::string commands;
  for (const auto& c : shell->commands) commands += c + "\n";
  json env = json::array();
  for (const auto& [name, value] : shell->environment) {
    env.push_back({{"name", name}, {"value", value}});
  }
  json job = MakeJob();
  job["data"]["actionConfiguration"]["configuration"] = {{"Commands", commands},
                                                         {"EnvironmentVariables", env.dump()}};
  fake_.QueueJob(job);
  StartWorker(Options({}));
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result) << log();
  ASSERT_EQ(result->first, "PutJobSuccessResult") << result->second.dump();
  auto files = Unzip(*fake_.Object("demo/Out/out.zip"));
  EXPECT_EQ(files.count("M"), 0u) << "a command substitution ran";
  for (size_t i = 0; i < payloads.size(); ++i) {
    SCOPED_TRACE(payloads[i]);
    const std::string n = std::to_string(i);
    for (const std::string name : {"unquoted", "double", "single", "subst"}) {
      ASSERT_EQ(files.count(name + n), 1u) << name;
      EXPECT_EQ(files[name + n], payloads[i]) << name;
    }
  }
}

// The server's runner and `worker --builtin` share runner/commands.h: output
// variables are NUL-separated records, so a value keeps its newlines.
TEST_F(WorkerTest, BuiltinOutputVariablesAreTheServers) {
  json job = MakeJob();
  job["data"]["actionConfiguration"]["configuration"] = {
      {"Commands", "NOTES=$(printf 'line one\\nline two')\nPAIR='k=v'"},
      {"PipewrightOutputVariables", "NOTES,PAIR,UNSET"}};
  fake_.QueueJob(job);
  StartWorker(Options({}));
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result) << log();
  ASSERT_EQ(result->first, "PutJobSuccessResult") << result->second.dump();
  EXPECT_EQ(result->second["outputVariables"],
            (json{{"NOTES", "line one\nline two"}, {"PAIR", "k=v"}, {"UNSET", ""}}));
  EXPECT_EQ(result->second["executionDetails"]["summary"], "2 command(s) succeeded");
}

// What CreatePipeline refuses in the server (runner::CheckCommandsConfiguration)
// a worker refuses too, with the server's run-time message: no more "5abc" as
// 5 minutes, nor a number silently run as "".
TEST_F(WorkerTest, BuiltinRefusesTheConfigurationTheServerRefuses) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"TimeoutInMinutes", "5abc"},
      {"TimeoutInMinutes", "0"},
      {"TimeoutInMinutes", "481"},
      {"EnvironmentVariables", R"([{"name":"N","value":"1"},{"name":"M","value":2}])"},
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    json job = MakeJob("0f8fad5b-d9cb-469f-a165-70867728951" + std::to_string(i), "n");
    job["data"]["actionConfiguration"]["configuration"] = {{"Commands", "touch ran"},
                                                           {bad[i].first, bad[i].second}};
    fake_.QueueJob(job);
  }
  StartWorker(Options({}));
  for (size_t i = 0; i < bad.size(); ++i) {
    SCOPED_TRACE(bad[i].first + " = " + bad[i].second);
    Status at_create = runner::CheckCommandsConfiguration({bad[i]});
    ASSERT_FALSE(at_create.ok());
    auto result = fake_.WaitResult(i + 1);
    ASSERT_TRUE(result) << log();
    ASSERT_EQ(result->first, "PutJobFailureResult");
    const json& d = result->second["failureDetails"];
    EXPECT_EQ(d["type"], "ConfigurationError");
    EXPECT_EQ(d["message"], "C" + at_create.message().substr(1));
  }
  EXPECT_NE(runner::CheckCommandsConfiguration({bad[0]}).message().find("not '5abc'"),
            std::string::npos);
  EXPECT_NE(runner::CheckCommandsConfiguration({bad[3]}).message().find("EnvironmentVariables[1]"),
            std::string::npos);
  EXPECT_FALSE(fake_.Object("demo/Out/out.zip"));
}

TEST_F(WorkerTest, BuiltinTimeoutIsCappedByTheWorkersTimeout) {
  json job = MakeJob();
  job["data"]["actionConfiguration"]["configuration"] = {
      {"Commands", "echo waiting\nexec sleep 30"}, {"TimeoutInMinutes", "5"}};
  fake_.QueueJob(job);
  WorkerOptions o = Options({});
  o.program.timeout_seconds = 0.3;
  o.program.kill_grace_seconds = 0.2;
  StartWorker(o);
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result) << log();
  ASSERT_EQ(result->first, "PutJobFailureResult");
  std::string message = result->second["failureDetails"]["message"];
  EXPECT_EQ(message.rfind("Timed out after 0.3 second(s) (the runner's limit).\nwaiting", 0), 0u)
      << message;
}

TEST_F(WorkerTest, BuiltinCommandsWithANulByteAreAConfigurationError) {
  json job = MakeJob();
  job["data"]["actionConfiguration"]["configuration"] = {
      {"Commands", std::string("true\0touch M", 12)}};
  fake_.QueueJob(job);
  StartWorker(Options({}));
  auto result = fake_.WaitResult();
  ASSERT_TRUE(result) << log();
  ASSERT_EQ(result->first, "PutJobFailureResult");
  EXPECT_EQ(result->second["failureDetails"]["type"], "ConfigurationError");
  EXPECT_NE(std::string(result->second["failureDetails"]["message"]).find("NUL"),
            std::string::npos);
}

}  // namespace
}  // namespace pw::worker::worker_test
