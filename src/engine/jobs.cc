// The job queue (rules 70-73): jobs for custom action types and, without
// local runners, built-in Commands; handed to job workers by PollForJobs,
// acknowledged, answered with a result. Job documents live under kv job/<id>
// without their secrets (derived from a per-database key); an index by access
// key serves the S3-style artifact endpoint in O(1); ended jobs are removed a
// retention period after they end. Artifact I/O (copying inputs to an
// external bucket, storing uploaded outputs) runs without the mutex.

#include <cctype>
#include <filesystem>
#include <fstream>

#include "common/ids.h"
#include "common/log.h"
#include "engine/action_types.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "engine/state_json.h"
#include "runner/artifact_store.h"
#include "runner/s3_client.h"
#include "sigv4/crypto.h"

namespace pw::engine {

namespace fs = std::filesystem;
using nlohmann::json;

Status Engine::SaveJobLocked(const Job& job) {
  return store_.PutKv("job/" + job.id, JobToDoc(job).dump());
}

void Engine::PutJobLocked(Job job) {
  auto it = jobs_.find(job.id);
  if (it != jobs_.end() && it->second.access_key_id != job.access_key_id) {
    job_by_key_.erase(it->second.access_key_id);
  }
  if (!job.external && !job.access_key_id.empty()) job_by_key_[job.access_key_id] = job.id;
  const std::string id = job.id;
  jobs_[id] = std::move(job);
}

void Engine::EraseJobLocked(const std::string& job_id) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return;
  auto key = job_by_key_.find(it->second.access_key_id);
  if (key != job_by_key_.end() && key->second == job_id) job_by_key_.erase(key);
  jobs_.erase(it);
}

void Engine::NotifyJobQueuedLocked() {
  jobs_cv_.notify_all();
  if (on_job_queued_) on_job_queued_();
}

void Engine::LoadJobsLocked() {
  if (jobs_loaded_) return;
  auto rows = store_.ListKv("job/");
  if (!rows.ok()) {
    PW_LOG(Error) << "cannot load jobs: " << rows.status().ToString();
    return;  // Tried again on next use.
  }
  for (const auto& [key, value] : *rows) {
    json doc = json::parse(value, nullptr, false);
    if (doc.is_discarded()) continue;
    try {
      Job j = JobFromDoc(doc);
      FillJobSecretsLocked(j);
      // Ended before jobs recorded when: the retention period starts now.
      if (!j.Open() && j.ended == 0) j.ended = clock_.Now();
      const bool created = j.status == core::JobStatus::kCreated;
      const std::string id = j.id;
      PutJobLocked(std::move(j));
      if (created) queue_->Enqueue([this, id] { PublishExternalJob(id); });
    } catch (const std::exception& ex) {
      PW_LOG(Error) << "unreadable job document " << key << ": " << ex.what();
    }
  }
  jobs_loaded_ = true;
}

void Engine::FillJobSecretsLocked(Job& j) {
  if (j.external) {
    j.secret_access_key = options_.artifact_s3_secret_access_key;
    j.session_token = options_.artifact_s3_session_token;
    return;
  }
  if (job_key_.empty()) {
    // One random key per database, made once: every job's secret is an HMAC
    // of it, so no job secret is ever written down.
    auto stored = store_.GetKv("server/job-credential-key");
    if (stored.ok() && stored->has_value() && (*stored)->size() == 64) {
      job_key_ = **stored;
    } else {
      job_key_ = RandomHex(64);
      if (Status s = store_.PutKv("server/job-credential-key", job_key_); !s.ok()) {
        PW_LOG(Error) << "could not persist the job credential key: " << s.ToString();
      }
    }
  }
  j.secret_access_key =
      sigv4::HexEncode(sigv4::HmacSha256(job_key_, "secret/" + j.id + "/" + j.access_key_id))
          .substr(0, 40);
  j.session_token = sigv4::HexEncode(sigv4::HmacSha256(job_key_, "token/" + j.id));
}

Status Engine::CreateJobLocked(const core::PipelineState& p, const core::Execution& e,
                               const core::ActionRun& r, const core::ActionDecl& a,
                               const std::string& continuation_token) {
  std::optional<core::ShellCommands> shell;
  if (IsCommands(a)) {
    const core::ActionDecl* declared = FindActionDecl(p.decl, r.stage, r.action);
    PW_ASSIGN_OR_RETURN(
        shell, ShellCommandsOf(declared != nullptr ? *declared : a, core::VariableScope(p, e)));
  }
  LoadJobsLocked();
  Job j;
  j.id = NewUuid();
  j.nonce = RandomHex(32);
  j.status = core::JobStatus::kQueued;
  j.run_id = r.id;
  j.execution_id = e.id;
  j.pipeline = p.decl.name;
  j.stage = r.stage;
  j.action = r.action;
  j.type = a.type;
  j.configuration = a.configuration;
  if (IsCommands(a)) {
    // Fold what only the declaration holds into the configuration a worker
    // sees. The worker runs the same rewritten commands as the local runner,
    // the values of their references in PW_VAR_n environment variables.
    std::string joined;
    for (const auto& cmd : shell->commands) joined += (joined.empty() ? "" : "\n") + cmd;
    j.configuration["Commands"] = joined;
    j.configuration["PipewrightCommands"] = json(shell->commands).dump();  // Exact list.
    if (!a.environment.empty() || !shell->environment.empty()) {
      json vars = json::array();
      if (auto ev = j.configuration.find("EnvironmentVariables"); ev != j.configuration.end()) {
        vars = json::parse(ev->second, nullptr, false);
        if (!vars.is_array()) vars = json::array();
      }
      for (const auto& v : a.environment) vars.push_back({{"name", v.name}, {"value", v.value}});
      for (const auto& [name, value] : shell->environment) {
        vars.push_back({{"name", name}, {"value", value}});
      }
      j.configuration["EnvironmentVariables"] = vars.dump();
    }
    if (a.timeout_minutes && !j.configuration.count("TimeoutInMinutes")) {
      j.configuration["TimeoutInMinutes"] = std::to_string(*a.timeout_minutes);
    }
    json files = json::object();
    for (const auto& out : a.output_artifacts) {
      if (!out.files.empty()) files[out.name] = out.files;
    }
    if (!files.empty()) j.configuration["PipewrightOutputFiles"] = files.dump();
    std::string names;
    for (const auto& var : a.output_variables) names += (names.empty() ? "" : ",") + var;
    if (!names.empty()) j.configuration["PipewrightOutputVariables"] = names;
  }
  for (const auto& in : a.input_artifacts) {
    auto it = r.inputs.find(in);
    if (it == r.inputs.end() || it->second.empty()) continue;  // Nothing was produced.
    j.inputs.emplace_back(in, it->second);
  }
  for (const auto& out : a.output_artifacts) j.outputs.push_back(out.name);
  j.bucket = p.decl.artifact_bucket.empty() ? "pipewright-artifacts" : p.decl.artifact_bucket;
  if (runners_.external_s3) {
    j.external = true;
    j.bucket = options_.artifact_s3_bucket;
    j.key_prefix = "pipewright/" + p.decl.name + "/";
  }
  j.continuation_token = continuation_token;
  j.created = clock_.Now();
  j.timeout_seconds = a.timeout_minutes ? *a.timeout_minutes * 60.0 : options_.job_timeout_seconds;
  if (j.external) {
    // The bucket's own credentials. Its inputs are copied there first, on a
    // worker thread (PublishExternalJob): until then the job is Created.
    j.access_key_id = options_.artifact_s3_access_key_id;
    j.status = core::JobStatus::kCreated;
  } else {
    j.access_key_id = "ASIA" + RandomHex(16);
    for (char& ch : j.access_key_id) {
      ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
  }
  FillJobSecretsLocked(j);
  // A job that could not be saved still runs from memory; after a crash
  // Recover creates it again (its run is InProgress without an open job).
  if (Status s = SaveJobLocked(j); !s.ok()) {
    PW_LOG(Warning) << "job " << j.id << " not yet durable: " << s.ToString();
  }
  const std::string id = j.id;
  const bool external = j.external;
  PutJobLocked(std::move(j));
  if (external) {
    queue_->Enqueue([this, id] { PublishExternalJob(id); });
  } else {
    NotifyJobQueuedLocked();
  }
  return Status::Ok();
}

void Engine::PublishExternalJob(const std::string& job_id) {
  Job j;
  {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end() || it->second.status != core::JobStatus::kCreated) return;
    j = it->second;
  }
  // Content-addressed keys: an object already there is not uploaded again.
  const sigv4::Credentials creds{j.access_key_id, j.secret_access_key, j.session_token};
  std::string failure;
  for (const auto& [name, rev] : j.inputs) {
    runner::S3ObjectRef ref{j.bucket, j.InputKey(rev)};
    if (runners_.external_s3->HeadObject(ref, creds).ok()) continue;
    std::ifstream f(runners_.artifacts->PathOf(rev), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (Status s = runners_.external_s3->PutObject(ref, bytes, creds); !s.ok()) {
      failure = "Cannot copy input artifact " + name + " to s3://" + j.bucket + "/" + ref.key +
                ": " + s.message();
      break;
    }
  }
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.status != core::JobStatus::kCreated)
    return;  // Abandoned meanwhile.
  Job next = it->second;
  next.status = failure.empty() ? core::JobStatus::kQueued : core::JobStatus::kFailed;
  if (!failure.empty()) next.ended = clock_.Now();
  if (Status s = SaveJobLocked(next); !s.ok()) {
    PW_LOG(Warning) << "job " << job_id << " not yet durable: " << s.ToString();
  }
  const std::string pipeline = next.pipeline;
  const std::string run_id = next.run_id;
  PutJobLocked(std::move(next));
  if (failure.empty()) {
    NotifyJobQueuedLocked();
  } else {
    PW_LOG(Error) << failure;
    FailLater(pipeline, run_id, Failure(failure));
  }
}

json Engine::JobDataJson(const Job& j) {
  auto location = [&](const std::string& key) {
    return json{{"type", "S3"}, {"s3Location", {{"bucketName", j.bucket}, {"objectKey", key}}}};
  };
  json inputs = json::array();
  for (const auto& [name, rev] : j.inputs) {
    inputs.push_back({{"name", name}, {"revision", rev}, {"location", location(j.InputKey(rev))}});
  }
  json outputs = json::array();
  for (const auto& name : j.outputs) {
    outputs.push_back({{"name", name}, {"location", location(j.OutputKey(name))}});
  }
  json data = {{"actionTypeId",
                {{"category", j.type.category},
                 {"owner", j.type.owner},
                 {"provider", j.type.provider},
                 {"version", j.type.version}}},
               {"actionConfiguration", {{"configuration", j.configuration}}},
               {"pipelineContext",
                {{"pipelineName", j.pipeline},
                 {"stage", {{"name", j.stage}}},
                 {"action", {{"name", j.action}, {"actionExecutionId", j.run_id}}},
                 {"pipelineArn", PipelineArn(j.pipeline)},
                 {"pipelineExecutionId", j.execution_id}}},
               {"inputArtifacts", inputs},
               {"outputArtifacts", outputs},
               {"artifactCredentials",
                {{"accessKeyId", j.access_key_id},
                 {"secretAccessKey", j.secret_access_key},
                 {"sessionToken", j.session_token}}}};
  if (!j.continuation_token.empty()) data["continuationToken"] = j.continuation_token;
  return data;
}

Result<std::vector<Job>> Engine::PollForJobs(const core::ActionTypeId& type, int max_jobs,
                                             const std::map<std::string, std::string>& query,
                                             double wait_seconds) {
  const bool builtin_job = type.owner == "AWS" && !options_.local_runners &&
                           type.provider == "Commands" && FindBuiltin(type) != nullptr;
  if (type.owner != "Custom" && !builtin_job) {
    return InvalidArgument("PollForJobs serves only action types with owner Custom" +
                           std::string(options_.local_runners
                                           ? ""
                                           : " (and AWS/Commands, as this server runs no local "
                                             "runners)") +
                           "; " + type.ToString() + " is run by the server itself.");
  }
  if (type.owner == "Custom" && !FindCustomActionType(type)) {
    return NotFound("Custom action type " + type.ToString() + " does not exist.",
                    "ActionTypeNotFoundException");
  }
  std::unique_lock lock(mu_);
  LoadJobsLocked();
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_seconds);
  for (;;) {
    std::vector<Job> out;
    for (auto& [id, job] : jobs_) {
      if (static_cast<int>(out.size()) >= max_jobs) break;
      if (job.status != core::JobStatus::kQueued || !(job.type == type)) continue;
      bool match = true;
      for (const auto& [k, v] : query) {
        auto it = job.configuration.find(k);
        match = match && it != job.configuration.end() && it->second == v;
      }
      if (!match) continue;
      Job next = job;
      next.status = core::JobStatus::kDispatched;
      next.dispatched = clock_.Now();
      next.nonce = RandomHex(32);
      // Handed out only once durable: otherwise a restart would hand it out
      // again under another nonce while the first worker runs it.
      if (Status s = SaveJobLocked(next); !s.ok()) {
        if (out.empty()) return s;
        break;
      }
      job = next;
      out.push_back(job);
    }
    if (!out.empty() || std::chrono::steady_clock::now() >= deadline) return out;
    jobs_cv_.wait_until(lock, deadline);
  }
}

Result<std::string> Engine::AcknowledgeJob(const std::string& job_id, const std::string& nonce) {
  std::lock_guard lock(mu_);
  PW_ASSIGN_OR_RETURN(Job * found, FindJobLocked(job_id));
  Job& job = *found;
  if (job.nonce != nonce) {
    return InvalidArgument("The nonce does not match job " + job_id +
                               ": another worker was handed this job, or it was handed out again.",
                           "InvalidNonceException");
  }
  if (job.status == core::JobStatus::kDispatched) {
    Job next = job;
    next.status = core::JobStatus::kInProgress;
    next.acknowledged = clock_.Now();
    PW_RETURN_IF_ERROR(SaveJobLocked(next));
    job = next;
  }
  return std::string(core::Name(job.status));
}

Result<Job*> Engine::FindJobLocked(const std::string& job_id) {
  LoadJobsLocked();
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    return NotFound("Job " + job_id + " does not exist.", "JobNotFoundException");
  }
  return &it->second;
}

Result<Job> Engine::GetJob(const std::string& job_id) {
  std::lock_guard lock(mu_);
  PW_ASSIGN_OR_RETURN(Job * job, FindJobLocked(job_id));
  return *job;
}

namespace {

Status JobNotWorkable(const Job& job) {
  return FailedPrecondition(
      "Job " + job.id + " is " + std::string(core::Name(job.status)) +
          (job.status == core::JobStatus::kQueued || job.status == core::JobStatus::kDispatched ||
                   job.status == core::JobStatus::kCreated
               ? "; acknowledge it (AcknowledgeJob) before reporting a result."
               : "; it no longer accepts results."),
      "InvalidJobStateException");
}

}  // namespace

void Engine::AbandonJobsLocked(const std::string& run_id, store::Batch* batch,
                               std::vector<Job>* changed) {
  for (const auto& [id, job] : jobs_) {
    if (job.run_id != run_id || !job.Open()) continue;
    Job next = job;
    next.status = core::JobStatus::kFailed;  // Abandoned: results for it are refused.
    next.ended = clock_.Now();
    batch->kv.emplace_back("job/" + next.id, JobToDoc(next).dump());
    changed->push_back(std::move(next));
  }
}

Status Engine::PutJobSuccess(const std::string& job_id, const JobSuccess& result) {
  if (!result.continuation_token.empty() && !result.output_variables.empty()) {
    return InvalidArgument("outputVariables can be sent only without a continuationToken.");
  }
  Job job;
  {
    std::lock_guard lock(mu_);
    PW_ASSIGN_OR_RETURN(Job * found, FindJobLocked(job_id));
    if (found->status != core::JobStatus::kInProgress) return JobNotWorkable(*found);
    job = *found;
  }
  // Output artifacts are read and stored (hashed) without the mutex.
  core::ActionResult r;
  r.summary = result.summary;
  r.external_id = result.external_id;
  r.output_variables = result.output_variables;
  r.revision_id = result.revision;
  r.revision_summary = result.revision_summary;
  r.revision_created = result.revision_created;
  if (result.continuation_token.empty()) {
    for (const auto& name : job.outputs) {
      Result<std::string> rev = NotFound("not uploaded");
      if (job.external && runners_.external_s3) {
        auto bytes = runners_.external_s3->GetObject(
            {job.bucket, job.OutputKey(name)},
            sigv4::Credentials{job.access_key_id, job.secret_access_key, job.session_token});
        rev = bytes.ok() ? runners_.artifacts->PutZipBytes(*bytes)
                         : Result<std::string>(bytes.status());
      } else {
        const std::string path = options_.data_dir + "/uploads/" + job.id + "/" + name + ".zip";
        std::ifstream f(path, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        if (f) rev = runners_.artifacts->PutZipBytes(bytes);
      }
      if (!rev.ok()) {
        r = Failure("Output artifact " + name + " was not uploaded as a zip to s3://" + job.bucket +
                    "/" + job.OutputKey(name) + " (" + rev.status().message() + ").");
        break;
      }
      r.outputs[name] = *rev;
    }
  }

  std::lock_guard lock(mu_);
  PW_ASSIGN_OR_RETURN(Job * found, FindJobLocked(job_id));
  if (found->status != core::JobStatus::kInProgress)
    return JobNotWorkable(*found);  // Answered meanwhile.
  job = *found;
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(job.pipeline));
  const EpochSeconds now = clock_.Now();
  core::Outcome out;
  core::Execution* e = p->FindExecution(job.execution_id);
  core::ActionRun* run = e ? e->FindRun(job.run_id) : nullptr;
  Job next = job;
  next.ended = now;
  if (run == nullptr || run->status != core::ActionStatus::kInProgress) {
    next.status = core::JobStatus::kFailed;
    PW_RETURN_IF_ERROR(SaveJobLocked(next));
    PutJobLocked(next);
    return JobNotWorkable(next);
  }
  store::Batch batch;
  if (!result.continuation_token.empty()) {
    // Still in progress: record progress, issue the follow-up job.
    if (!result.summary.empty()) run->summary = result.summary;
    if (result.percent_complete >= 0) run->percent_complete = result.percent_complete;
    if (!result.external_id.empty()) run->external_id = result.external_id;
    run->updated = now;
    out.changed_runs.insert(run->id);
    out.changed_executions.insert(e->id);
    next.status = core::JobStatus::kSucceeded;
    batch.kv.emplace_back("job/" + next.id, JobToDoc(next).dump());
    // Nothing recorded on failure: the worker may report again.
    PW_RETURN_IF_ERROR(CommitLocked(*p, out, std::move(batch)));
    PutJobLocked(next);
    // CommitLocked may not reload; look the run up again.
    auto again = LoadLocked(job.pipeline);
    core::Execution* e2 = again.ok() ? (*again)->FindExecution(job.execution_id) : nullptr;
    core::ActionRun* run2 = e2 ? e2->FindRun(job.run_id) : nullptr;
    const core::ActionDecl* a =
        run2 ? FindActionDecl((*again)->decl, run2->stage, run2->action) : nullptr;
    if (a != nullptr) {
      Status created = CreateJobLocked(**again, *e2, *run2, WithResolvedConfiguration(*a, *run2),
                                       result.continuation_token);
      if (!created.ok()) {
        FailLater(job.pipeline, job.run_id, Failure(created.message(), "", "ConfigurationError"));
      }
    }
    return Status::Ok();
  }
  PW_RETURN_IF_ERROR(core::CompleteAction(*p, job.run_id, r, now, &out));
  core::Advance(*p, now, *ids_, &out);
  next.status = r.status == core::ActionStatus::kSucceeded ? core::JobStatus::kSucceeded
                                                           : core::JobStatus::kFailed;
  batch.kv.emplace_back("job/" + next.id, JobToDoc(next).dump());
  PW_RETURN_IF_ERROR(CommitLocked(*p, out, std::move(batch)));
  PutJobLocked(next);
  std::error_code ec;
  fs::remove_all(options_.data_dir + "/uploads/" + job.id, ec);
  return Status::Ok();
}

Status Engine::PutJobFailure(const std::string& job_id, const std::string& type,
                             const std::string& message, const std::string& external_id) {
  std::lock_guard lock(mu_);
  PW_ASSIGN_OR_RETURN(Job * found, FindJobLocked(job_id));
  if (found->status != core::JobStatus::kInProgress) return JobNotWorkable(*found);
  Job next = *found;
  next.status = core::JobStatus::kFailed;
  next.ended = clock_.Now();
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(next.pipeline));
  core::ActionResult r = Failure(message);
  r.error_code = type;
  r.external_id = external_id;
  core::Outcome out;
  const EpochSeconds now = clock_.Now();
  if (!core::CompleteAction(*p, next.run_id, r, now, &out).ok()) {
    // Its action is gone or finished (abandoned).
    PW_RETURN_IF_ERROR(SaveJobLocked(next));
    PutJobLocked(next);
    return JobNotWorkable(next);
  }
  core::Advance(*p, now, *ids_, &out);
  store::Batch batch;
  batch.kv.emplace_back("job/" + next.id, JobToDoc(next).dump());
  PW_RETURN_IF_ERROR(CommitLocked(*p, out, std::move(batch)));
  PutJobLocked(next);
  return Status::Ok();
}

std::optional<Job> Engine::JobForAccessKey(const std::string& access_key_id) {
  std::lock_guard lock(mu_);
  LoadJobsLocked();
  auto key = job_by_key_.find(access_key_id);
  if (key == job_by_key_.end()) return std::nullopt;
  auto it = jobs_.find(key->second);
  if (it == jobs_.end() || !it->second.Open() || it->second.external) return std::nullopt;
  return it->second;
}

void Engine::JobTimersLocked(EpochSeconds now) {
  LoadJobsLocked();
  const core::JobTimerPolicy policy{options_.job_dispatch_timeout_seconds,
                                    options_.job_retention_seconds};
  std::vector<std::string> ended;
  for (auto& [id, job] : jobs_) {
    const core::JobTimes times{job.status, job.dispatched, job.acknowledged, job.ended,
                               job.timeout_seconds};
    switch (core::DecideJobTimer(times, now, policy)) {
      case core::JobTimer::kNone:
        break;
      case core::JobTimer::kRequeue: {
        // Polled but never acknowledged: back to the queue with a new nonce.
        Job next = job;
        next.status = core::JobStatus::kQueued;
        next.nonce = RandomHex(32);
        if (!SaveJobLocked(next).ok()) break;  // Tried again next tick.
        job = next;
        NotifyJobQueuedLocked();
        break;
      }
      case core::JobTimer::kTimeOut: {
        // Acknowledged without a result in time: the job and its run fail in
        // one transaction (tried again next tick if it cannot be committed).
        Job next = job;
        next.status = core::JobStatus::kTimedOut;
        next.ended = now;
        store::Batch batch;
        batch.kv.emplace_back("job/" + next.id, JobToDoc(next).dump());
        auto p = LoadLocked(job.pipeline);
        Status s;
        core::Outcome out;
        if (!p.ok()) {
          s = p.status().code() == StatusCode::kNotFound ? store_.Commit(batch) : p.status();
        } else if (core::CompleteAction(
                       **p, job.run_id,
                       Failure(core::JobTimedOutMessage(job.id, job.timeout_seconds)), now, &out)
                       .ok()) {
          core::Advance(**p, now, *ids_, &out);
          s = CommitLocked(**p, out, std::move(batch));
        } else {
          s = store_.Commit(batch);
        }
        if (s.ok()) job = next;
        break;
      }
      case core::JobTimer::kDelete:
        ended.push_back(id);
        break;
    }
  }
  // Ended jobs go, with their documents (nothing of a credential stays).
  if (!ended.empty()) {
    store::Batch batch;
    for (const auto& id : ended) batch.kv_deletes.push_back("job/" + id);
    if (Status s = store_.Commit(batch); s.ok()) {
      for (const auto& id : ended) EraseJobLocked(id);
      std::error_code ec;
      for (const auto& id : ended) fs::remove_all(options_.data_dir + "/uploads/" + id, ec);
    }
  }
}

Result<std::string> Engine::JobObjectPath(const Job& job, const std::string& key, bool for_write) {
  for (const auto& name : job.outputs) {
    if (key == job.OutputKey(name)) {
      std::string dir = options_.data_dir + "/uploads/" + job.id;
      std::error_code ec;
      if (for_write) fs::create_directories(dir, ec);
      return dir + "/" + name + ".zip";
    }
  }
  if (!for_write) {
    for (const auto& [name, rev] : job.inputs) {
      if (key == job.InputKey(rev) && runner::IsArtifactRevision(rev))
        return runners_.artifacts->PathOf(rev);
    }
  }
  return FailedPrecondition("These credentials do not allow " +
                                std::string(for_write ? "writing " : "reading ") + key + ".",
                            "AccessDenied");
}

Status Engine::PutJobObjectFile(const Job& job, const std::string& key, const std::string& upload) {
  std::error_code ec;
  auto path = JobObjectPath(job, key, /*for_write=*/true);
  if (!path.ok()) {
    fs::remove(upload, ec);
    return path.status();
  }
  if (Status valid = runner::ValidateZipFile(upload, runners_.artifacts->limits()); !valid.ok()) {
    fs::remove(upload, ec);
    return InvalidArgument("Output object " + key + " is refused: " + valid.message() + ".",
                           "InvalidRequest");
  }
  fs::rename(upload, *path, ec);
  if (ec) {
    fs::remove(upload, ec);
    return Internal("Cannot store the object " + key + ": " + ec.message());
  }
  return Status::Ok();
}

Status Engine::PutJobObject(const Job& job, const std::string& key, std::string_view bytes) {
  PW_ASSIGN_OR_RETURN(std::string path, JobObjectPath(job, key, /*for_write=*/true));
  const std::string tmp = path + ".tmp-" + RandomHex(8);
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      return Internal("Cannot store the object " + key + ".");
    }
  }
  if (Status valid = runner::ValidateZipFile(tmp, runners_.artifacts->limits()); !valid.ok()) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return InvalidArgument("Output object " + key + " is refused: " + valid.message() + ".",
                           "InvalidRequest");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return Internal("Cannot store the object " + key + ": " + ec.message());
  }
  return Status::Ok();
}

}  // namespace pw::engine
