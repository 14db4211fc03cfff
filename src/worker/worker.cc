#include "worker/worker.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "common/thread_name.h"
#include "runner/artifact_store.h"

namespace pw::worker {

namespace {

// The `files` globs of output artifact `name`, which the server passes to
// built-in Commands jobs as configuration PipewrightOutputFiles (a JSON
// object: artifact name -> list of globs). Empty: the whole directory.
std::vector<std::string> OutputGlobs(const Job& job, const std::string& name) {
  auto it = job.configuration.find("PipewrightOutputFiles");
  if (it == job.configuration.end()) return {};
  nlohmann::json files = nlohmann::json::parse(it->second, nullptr, false);
  if (!files.is_object() || !files.contains(name) || !files[name].is_array()) return {};
  std::vector<std::string> globs;
  for (const auto& g : files[name]) {
    if (g.is_string()) globs.push_back(g.get<std::string>());
  }
  return globs;
}

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

double SecondsSince(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

std::string S3Url(const S3ObjectRef& o) { return "s3://" + o.bucket + "/" + o.key; }

// The failure types of the model a worker may report; anything else is JobFailed.
std::string FailureType(const Status& status) {
  for (const char* t : {"JobFailed", "ConfigurationError", "PermissionError", "RevisionOutOfSync",
                        "RevisionUnavailable", "SystemUnavailable"}) {
    if (status.wire_name() == t) return t;
  }
  return "JobFailed";
}

Status JobFailed(std::string message) {
  return FailedPrecondition(std::move(message), "JobFailed");
}

Result<std::string> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Internal("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  if (!in && !in.eof()) return Internal("cannot read " + path);
  return s.str();
}

// Removes the job directory however the job ends.
class DirRemover {
 public:
  explicit DirRemover(std::string path) : path_(std::move(path)) {}
  DirRemover(const DirRemover&) = delete;
  DirRemover& operator=(const DirRemover&) = delete;
  ~DirRemover() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }

 private:
  std::string path_;
};

}  // namespace

Worker::Worker(WorkerOptions options, runner::ProcessLauncher& launcher)
    : options_(std::move(options)),
      launcher_(launcher),
      api_(options_.api),
      s3_(S3ClientOptions{.endpoint_url = options_.s3_endpoint_url.empty()
                                              ? options_.api.endpoint_url
                                              : options_.s3_endpoint_url,
                          .region = options_.api.region}) {}

Worker::~Worker() {
  Stop();
  std::map<uint64_t, std::thread> threads;
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return active_ == 0; });
    threads.swap(threads_);
  }
  for (auto& [id, t] : threads) t.join();
}

void Worker::Log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
    return;
  }
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::string out = "pipewright worker: " + std::string(stamp) + " " + line + "\n";
  std::fputs(out.c_str(), stderr);
  std::fflush(stderr);
}

void Worker::Stop() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  cv_.notify_all();
}

void Worker::CancelRunningJobs() {
  std::lock_guard lock(mu_);
  cancelling_ = true;
  for (const auto& [job_id, pid] : running_) launcher_.Cancel(pid);
}

WorkerStats Worker::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool Worker::SleepUnlessStopped(double seconds) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return stopping_; });
  return !stopping_;
}

int Worker::Run() {
  if (options_.action_types.empty()) {
    Log("no action type to poll for");
    return 2;
  }
  std::string types;
  for (const auto& t : options_.action_types) types += (types.empty() ? "" : ", ") + t.ToString();
  Log("polling " + options_.api.endpoint_url + " for " + types + " (up to " +
      std::to_string(options_.max_jobs) + " job(s) at once)");
  const size_t n = options_.action_types.size();
  size_t next = 0;
  SteadyClock::time_point round_start = SteadyClock::now();
  bool round_found = false;
  std::vector<std::string> last_errors(n);  // Per action type: log each error once.
  for (;;) {
    int capacity = 0;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || active_ < options_.max_jobs; });
      if (stopping_) break;
      capacity = options_.max_jobs - active_;
    }
    ReapFinishedThreads();
    if (next == 0) {
      round_start = SteadyClock::now();
      round_found = false;
    }
    const size_t index = next;
    const ActionTypeId& type = options_.action_types[index];
    next = (next + 1) % n;
    Result<std::vector<Job>> jobs = api_.PollForJobs(type, capacity, options_.query_param);
    std::string& last_error = last_errors[index];
    if (!jobs.ok()) {
      const Status& st = jobs.status();
      std::string error = (st.wire_name().empty() ? "" : st.wire_name() + ": ") + st.message();
      if (error != last_error) Log("poll for " + type.ToString() + " failed: " + error);
      last_error = error;
      SleepUnlessStopped(options_.poll_interval_seconds);
      continue;
    }
    if (!last_error.empty()) {
      Log("poll for " + type.ToString() + " works again");
      last_error.clear();
    }
    for (const Job& job : *jobs) {
      // A transient failure (the server restarting, a dropped connection) is
      // retried within the dispatch lease, as results are; the job would
      // otherwise wait out the lease before another worker gets it.
      Result<std::string> ack = api_.AcknowledgeJob(job.id, job.nonce);
      const SteadyClock::time_point ack_start = SteadyClock::now();
      while (!ack.ok() && IsTransient(ack.status()) &&
             SecondsSince(ack_start) < std::min(30.0, options_.report_retry_seconds) &&
             SleepUnlessStopped(0.5)) {
        ack = api_.AcknowledgeJob(job.id, job.nonce);
      }
      if (!ack.ok()) {
        const Status& st = ack.status();
        if (st.wire_name() == "InvalidNonceException") {
          Log("job " + job.id + ": skipped, another worker acknowledged it");
        } else {
          Log("job " + job.id + ": skipped, acknowledge failed: " +
              (st.wire_name().empty() ? "" : st.wire_name() + ": ") + st.message());
        }
        std::lock_guard lock(mu_);
        ++stats_.skipped;
        continue;
      }
      round_found = true;
      StartJobThread(job);
    }
    if (next == 0 && !round_found) {
      double elapsed = SecondsSince(round_start);
      if (elapsed < options_.poll_interval_seconds) {
        SleepUnlessStopped(options_.poll_interval_seconds - elapsed);
      }
    }
  }
  int running = 0;
  {
    std::lock_guard lock(mu_);
    running = active_;
  }
  Log(running > 0 ? "stopping: waiting for " + std::to_string(running) + " running job(s)"
                  : "stopping");
  std::map<uint64_t, std::thread> threads;
  WorkerStats s;
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return active_ == 0; });
    threads.swap(threads_);
    finished_threads_.clear();
    s = stats_;
  }
  for (auto& [id, t] : threads) t.join();
  Log("stopped: " + std::to_string(s.succeeded) + " succeeded, " + std::to_string(s.continued) +
      " continued, " + std::to_string(s.failed) + " failed, " + std::to_string(s.skipped) +
      " skipped");
  return 0;
}

void Worker::StartJobThread(const Job& job) {
  std::lock_guard lock(mu_);
  ++stats_.acknowledged;
  ++active_;
  const uint64_t id = next_thread_++;
  threads_[id] = std::thread([this, job, id] {
    NameThisThread("pw-job");
    try {
      RunJob(job);
    } catch (const std::exception& e) {
      Log("job " + job.id + ": internal error: " + e.what());
    } catch (...) {
      Log("job " + job.id + ": internal error");
    }
    std::lock_guard done(mu_);
    --active_;
    finished_threads_.push_back(id);
    cv_.notify_all();
  });
}

void Worker::ReapFinishedThreads() {
  std::vector<std::thread> done;
  {
    std::lock_guard lock(mu_);
    for (uint64_t id : finished_threads_) {
      auto it = threads_.find(id);
      if (it == threads_.end()) continue;
      done.push_back(std::move(it->second));
      threads_.erase(it);
    }
    finished_threads_.clear();
  }
  for (auto& t : done) t.join();
}

void Worker::RunJob(const Job& job) {
  std::string what = job.pipeline_name + "/" + job.stage_name + "/" + job.action_name;
  if (!job.continuation_token.empty()) what += ", continuing " + job.continuation_token;
  Log("job " + job.id + ": acknowledged (" + what + ")");
  JobSuccess success;
  Status st = Work(job, &success);
  if (!st.ok())
    Log("job " + job.id + ": failed: " + st.message().substr(0, st.message().find('\n')));
  Report(job, st, success);
}

std::string JobDirParent(const std::string& work_dir) {
  if (!work_dir.empty()) return work_dir;
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp";
}

Status Worker::Work(const Job& job, JobSuccess* success) {
  const std::string base = JobDirParent(options_.work_dir);
  std::error_code ec;
  fs::create_directories(base, ec);
  std::string templ = base + "/pw-job-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    return Status(StatusCode::kInternal, "The worker cannot create a working directory in " + base,
                  "SystemUnavailable");
  }
  const std::string root = fs::absolute(buf.data(), ec).string();
  DirRemover remover(root);
  const JobDirs dirs = JobDirs::Under(root);
  for (const std::string& d : {dirs.src, dirs.inputs, dirs.meta, dirs.zips}) {
    fs::create_directories(d, ec);
    if (ec) {
      return Status(StatusCode::kInternal, "The worker cannot create " + d + ": " + ec.message(),
                    "SystemUnavailable");
    }
  }
  runner::ArtifactStore zips(dirs.zips);

  std::vector<std::pair<std::string, std::string>> input_dirs;
  for (size_t i = 0; i < job.input_artifacts.size(); ++i) {
    const JobArtifact& in = job.input_artifacts[i];
    if (in.location.bucket.empty() || in.location.key.empty()) {
      return JobFailed("Input artifact " + in.name + " has no S3 location.");
    }
    Result<std::string> bytes = s3_.GetObject(in.location, job.artifact_credentials);
    if (!bytes.ok()) {
      return JobFailed("Cannot download input artifact " + in.name + " from " + S3Url(in.location) +
                       ": " + bytes.status().message());
    }
    Result<std::string> rev = zips.PutZipBytes(*bytes);
    if (!rev.ok()) {
      return JobFailed("Input artifact " + in.name +
                       " is not a usable zip file: " + rev.status().message());
    }
    const std::string dest = dirs.InputDir(i, in.name);
    if (Status x = zips.Extract(*rev, dest); !x.ok()) {
      return JobFailed("Cannot unpack input artifact " + in.name + ": " + x.message());
    }
    input_dirs.emplace_back(in.name, dest);
    Log("job " + job.id + ": input " + in.name + " (" + std::to_string(bytes->size()) +
        " bytes) from " + S3Url(in.location) + " unpacked in " + dest);
  }

  Result<PreparedProgram> prepared = PrepareProgram(job, dirs, input_dirs, options_.program);
  if (!prepared.ok()) return prepared.status();
  if (options_.program.program.empty()) {
    // Built-in Commands: the job sees its own directory, not its siblings.
    runner::SandboxOptions confine = options_.sandbox;
    if (confine.mode == runner::SandboxMode::kBwrap) {
      confine.hide_dirs.push_back(fs::weakly_canonical(base, ec).string());
    }
    runner::Sandbox sandbox(std::move(confine));
    if (sandbox.active()) {
      if (const auto& user = options_.sandbox.user) {
        for (auto it = fs::recursive_directory_iterator(root, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
          [[maybe_unused]] int rc = lchown(it->path().c_str(), user->uid, user->gid);
        }
        [[maybe_unused]] int rc = lchown(root.c_str(), user->uid, user->gid);
      }
      runner::SandboxPaths paths;
      paths.cwd = dirs.src;
      paths.writable = {root};
      prepared->spec.argv = sandbox.Wrap(prepared->spec.argv, paths);
    }
  }

  // Shared with the callback: the launcher's thread may still be inside
  // set_value when get() returns here.
  auto exited = std::make_shared<std::promise<runner::ProcessExit>>();
  std::future<runner::ProcessExit> exit_future = exited->get_future();
  {
    std::lock_guard lock(mu_);
    if (cancelling_) return JobFailed("The job was cancelled (the worker is shutting down).");
    // Started under mu_ so CancelRunningJobs cannot miss it; the callback
    // takes no lock of ours.
    Result<runner::ProcessId> pid = launcher_.Start(
        prepared->spec,
        [exited](runner::ProcessId, const runner::ProcessExit& x) { exited->set_value(x); });
    if (!pid.ok()) {
      return JobFailed("Cannot start " + prepared->spec.argv[0] + ": " + pid.status().message());
    }
    running_[job.id] = *pid;
  }
  Log("job " + job.id + ": running " + prepared->spec.argv[0]);
  const runner::ProcessExit exit = exit_future.get();
  {
    std::lock_guard lock(mu_);
    running_.erase(job.id);
  }
  ProgramResult result = ReadProgramResult(*prepared, dirs, exit);
  if (!result.succeeded) return JobFailed(result.failure_message);

  success->job_id = job.id;
  success->summary = result.summary;
  success->external_execution_id = job.id;
  success->percent_complete = result.percent_complete;
  if (!result.continuation_token.empty()) {
    // The action goes on: its outputs are uploaded by the job that finishes it.
    success->continuation_token = result.continuation_token;
    return Status::Ok();
  }
  for (const JobArtifact& out : job.output_artifacts) {
    if (out.location.bucket.empty() || out.location.key.empty()) {
      return JobFailed("Output artifact " + out.name + " has no S3 location.");
    }
    Result<std::string> rev = zips.PutDirectory(dirs.src, OutputGlobs(job, out.name));
    if (!rev.ok()) {
      return JobFailed("Cannot zip output artifact " + out.name + ": " + rev.status().message());
    }
    Result<std::string> bytes = ReadBytes(zips.PathOf(*rev));
    if (!bytes.ok()) return JobFailed(bytes.status().message());
    if (Status put = s3_.PutObject(out.location, *bytes, job.artifact_credentials); !put.ok()) {
      return JobFailed("Cannot upload output artifact " + out.name + " to " + S3Url(out.location) +
                       ": " + put.message());
    }
    Log("job " + job.id + ": output " + out.name + " (" + std::to_string(bytes->size()) +
        " bytes) uploaded to " + S3Url(out.location));
  }
  success->output_variables = std::move(result.output_variables);
  return Status::Ok();
}

void Worker::Report(const Job& job, const Status& outcome, const JobSuccess& success) {
  const SteadyClock::time_point start = SteadyClock::now();
  for (int attempt = 1;; ++attempt) {
    Status st = outcome.ok() ? api_.PutJobSuccessResult(success)
                             : api_.PutJobFailureResult(job.id, FailureType(outcome),
                                                        outcome.message(), job.id);
    if (st.ok()) {
      std::lock_guard lock(mu_);
      if (!outcome.ok()) {
        ++stats_.failed;
      } else if (!success.continuation_token.empty()) {
        ++stats_.continued;
      } else {
        ++stats_.succeeded;
      }
      break;
    }
    if (IsTransient(st) && SecondsSince(start) < options_.report_retry_seconds) {
      if (attempt == 1) Log("job " + job.id + ": cannot report yet, retrying: " + st.message());
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    Log("job " + job.id + ": result not accepted: " +
        (st.wire_name().empty() ? "" : st.wire_name() + ": ") + st.message());
    std::lock_guard lock(mu_);
    ++stats_.skipped;
    return;
  }
  std::string how = !outcome.ok() ? "reported failure"
                    : !success.continuation_token.empty()
                        ? "reported progress, continuation token " + success.continuation_token
                        : "reported success";
  if (outcome.ok() && success.percent_complete) {
    how += " (" + std::to_string(*success.percent_complete) + "% complete)";
  }
  Log("job " + job.id + ": " + how);
}

}  // namespace pw::worker
