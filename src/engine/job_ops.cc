// What job workers call (rules 70-73): PollForJobs (long-polled), AcknowledgeJob,
// GetJobDetails, PutJobSuccessResult/PutJobFailureResult, and the S3-style
// artifact endpoint's object paths and uploads. A result's outputs are read
// and stored without the mutex; the decision and the job document are one
// commit. Job credentials open objects only while their job is open (the
// index by access key makes that lookup O(1)).

#include <filesystem>
#include <fstream>

#include "common/ids.h"
#include "common/log.h"
#include "engine/action_types.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "engine/server_metrics.h"
#include "runner/artifact_store.h"
#include "runner/s3_client.h"
#include "sigv4/crypto.h"

namespace pw::engine {

namespace fs = std::filesystem;
using nlohmann::json;

Result<std::vector<Job>> Engine::PollForJobs(const core::ActionTypeId& type, int max_jobs,
                                             const std::map<std::string, std::string>& query,
                                             double wait_seconds) {
  const BuiltinActionType* listed = FindBuiltin(type);
  const bool builtin_job = type.owner == "AWS" && !options_.local_runners &&
                           type.provider == "Commands" && listed != nullptr;
  const bool worker_type = listed != nullptr && listed->runs == ActionRunner::kWorker;
  if (type.owner != "Custom" && listed == nullptr) {
    return NotFound("Action type " + type.ToString() + " does not exist; see list-action-types.",
                    "ActionTypeNotFoundException");
  }
  if (type.owner != "Custom" && !builtin_job && !worker_type) {
    return InvalidArgument(
        "PollForJobs serves action types with owner Custom and the types "
        "ListActionTypes shows as run by job workers" +
        std::string(options_.local_runners ? ""
                                           : " (and AWS/Commands, as this server runs no local "
                                             "runners)") +
        "; " + type.ToString() + " is run by the server itself.");
  }
  if (type.owner == "Custom" && !FindCustomActionType(type)) {
    return NotFound("Custom action type " + type.ToString() + " does not exist.",
                    "ActionTypeNotFoundException");
  }
  Metrics().worker_polls.With({type.ToString()}).Inc();  // Known types only: bounded labels.
  MutexLock lock(mu_);
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
        // Another server handed it out first (several servers): not ours.
        if (s.code() == StatusCode::kAborted) continue;
        if (out.empty()) return s;
        break;
      }
      job = next;
      out.push_back(job);
    }
    if (!out.empty() || std::chrono::steady_clock::now() >= deadline) return out;
    jobs_cv_.WaitUntil(mu_, deadline);
    LoadJobsLocked();  // Several servers: what the others queued meanwhile.
  }
}

Result<std::string> Engine::AcknowledgeJob(const std::string& job_id, const std::string& nonce) {
  MutexLock lock(mu_);
  PW_ASSIGN_OR_RETURN(Job * found, FindJobLocked(job_id));
  Job& job = *found;
  if (!sigv4::ConstantTimeEquals(job.nonce, nonce)) {  // The nonce is a credential.
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
  MutexLock lock(mu_);
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
    MutexLock lock(mu_);
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

  MutexLock lock(mu_);
  PW_ASSIGN_OR_RETURN(Job * found, FindJobLocked(job_id));
  if (found->status != core::JobStatus::kInProgress)
    return JobNotWorkable(*found);  // Answered meanwhile.
  job = *found;
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(job.pipeline));
  const EpochSeconds now = clock_.Now();
  core::Outcome out;
  core::Execution* e = p->FindExecution(job.execution_id);
  core::ActionRun* run = e ? e->FindRun(job.run_id) : nullptr;
  // A stage condition's rule (rules.cc) reports like an action, without follow-up jobs.
  const core::RuleRun* rule = e ? e->FindRuleRun(job.run_id) : nullptr;
  if (rule != nullptr && !result.continuation_token.empty()) {
    return InvalidArgument("Jobs of stage condition rules do not take a continuationToken.");
  }
  Job next = job;
  next.ended = now;
  if ((run == nullptr || run->status != core::ActionStatus::kInProgress) &&
      (rule == nullptr || rule->status != core::ActionStatus::kInProgress)) {
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
  MutexLock lock(mu_);
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
  MutexLock lock(mu_);
  LoadJobsLocked();
  auto key = job_by_key_.find(access_key_id);
  if (key == job_by_key_.end()) return std::nullopt;
  auto it = jobs_.find(key->second);
  if (it == jobs_.end() || !it->second.Open() || it->second.external) return std::nullopt;
  return it->second;
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
      if (key == job.InputKey(rev) && runner::IsArtifactRevision(rev)) {
        PW_RETURN_IF_ERROR(runners_.artifacts->Fetch(rev));
        return runners_.artifacts->PathOf(rev);
      }
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

std::map<std::string, size_t> Engine::JobsWaiting() {
  MutexLock lock(mu_);
  LoadJobsLocked();
  std::map<std::string, size_t> out;
  for (const auto& [id, job] : jobs_) {
    if (job.status == core::JobStatus::kQueued || job.status == core::JobStatus::kDispatched) {
      ++out[job.type.ToString()];
    }
  }
  return out;
}

size_t Engine::QueuedWork() const { return queue_->Depth(); }

}  // namespace pw::engine
