// Creating and keeping jobs (rules 70-73): jobs for custom action types, for the
// AWS-owned types the action type table runs on workers and, without local
// runners, built-in Commands; handed to job workers by PollForJobs,
// acknowledged, answered with a result. Job documents live under kv job/<id>
// without their secrets (derived from a per-database key); an index by access
// key serves the S3-style artifact endpoint in O(1); ended jobs are removed a
// retention period after they end. Artifact I/O (copying inputs to an
// external bucket, storing uploaded outputs) runs without the mutex.

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>

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
  read_cache_.Invalidate(job.pipeline);  // GetPipelineState shows jobs waiting for a worker.
  const std::string key = "job/" + job.id;
  const std::string doc = JobToDoc(job).dump();
  if (server_id_.empty()) return store_.PutKv(key, doc);
  // Several servers: every server hands out and changes jobs, so a job
  // document changes only from what this server last read (compare-and-set
  // on its row): a worker polling two servers at once gets a job once.
  store::Batch batch;
  auto raw = job_raw_.find(job.id);
  batch.kv_expect.emplace_back(
      key, raw == job_raw_.end() ? std::nullopt : std::optional<std::string>(raw->second));
  batch.kv.emplace_back(key, doc);
  Status s = store_.Commit(batch);
  if (s.ok()) job_raw_[job.id] = doc;
  return s;
}

void Engine::PutJobLocked(Job job) {
  read_cache_.Invalidate(job.pipeline);
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
  read_cache_.Invalidate(it->second.pipeline);
  auto key = job_by_key_.find(it->second.access_key_id);
  if (key != job_by_key_.end() && key->second == job_id) job_by_key_.erase(key);
  jobs_.erase(it);
}

void Engine::NotifyJobQueuedLocked() {
  jobs_cv_.NotifyAll();
  if (on_job_queued_) on_job_queued_();
}

void Engine::LoadJobsLocked() {
  // Several servers: the jobs table is shared, so it is read again on every use.
  if (jobs_loaded_ && server_id_.empty()) return;
  auto rows = store_.ListKv("job/");
  if (!rows.ok()) {
    PW_LOG(Error) << "cannot load jobs: " << rows.status().ToString();
    return;  // Tried again on next use.
  }
  std::set<std::string> known;
  if (!server_id_.empty()) {
    for (const auto& [id, job] : jobs_) known.insert(id);
    jobs_.clear();
    job_by_key_.clear();
    job_raw_.clear();
  }
  for (const auto& [key, value] : *rows) {
    json doc = json::parse(value, nullptr, false);
    if (doc.is_discarded()) continue;
    try {
      Job j = JobFromDoc(doc);
      FillJobSecretsLocked(j);
      // Ended before jobs recorded when: the retention period starts now.
      if (!j.Open() && j.ended == 0) j.ended = clock_.Now();
      if (!server_id_.empty()) job_raw_[j.id] = value;
      const bool created = j.status == core::JobStatus::kCreated &&
                           (server_id_.empty() || (owned_.count(j.pipeline) && !known.count(j.id)));
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
    j.access_key_id = NewJobAccessKeyId();
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
    MutexLock lock(mu_);
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
    if (Status fetched = runners_.artifacts->Fetch(rev); !fetched.ok()) {
      failure = "Cannot read input artifact " + name + ": " + fetched.message();
      break;
    }
    std::ifstream f(runners_.artifacts->PathOf(rev), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (Status s = runners_.external_s3->PutObject(ref, bytes, creds); !s.ok()) {
      failure = "Cannot copy input artifact " + name + " to s3://" + j.bucket + "/" + ref.key +
                ": " + s.message();
      break;
    }
  }
  MutexLock lock(mu_);
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

namespace {
thread_local uint64_t tl_job_lookups = 0;
}  // namespace

uint64_t Engine::JobLookupsOnThisThread() { return tl_job_lookups; }

void Engine::AddJobWaitSummariesLocked(core::PipelineState& state) {
  // Only a job's run in progress without a summary can get one. Most reads
  // show none, and with several servers looking costs a read of every job
  // document, and leaves an answer a server that does not drive the pipeline
  // cannot keep (api/pipeline_ops.cc: CachedRead). An action that runs here
  // (a built-in executor) has no job: its runs are not looked for.
  auto awaiting = [](const auto& r) {
    return r.status == core::ActionStatus::kInProgress && r.summary.empty();
  };
  auto job_awaiting = [&](const core::ActionRun& r) {
    if (!awaiting(r)) return false;
    const core::ActionDecl* a = FindActionDecl(state.decl, r.stage, r.action);
    return a == nullptr || IsJobAction(*a);  // Gone from the declaration: look.
  };
  if (std::none_of(state.executions.begin(), state.executions.end(), [&](const core::Execution& e) {
        return std::any_of(e.runs.begin(), e.runs.end(), job_awaiting) ||
               std::any_of(e.rule_runs.begin(), e.rule_runs.end(), awaiting);
      })) {
    return;
  }
  ++tl_job_lookups;
  LoadJobsLocked();
  for (const auto& [id, job] : jobs_) {
    const bool waiting = job.status == core::JobStatus::kCreated ||
                         job.status == core::JobStatus::kQueued ||
                         job.status == core::JobStatus::kDispatched;
    if (!waiting || job.pipeline != state.decl.name) continue;
    core::Execution* e = state.FindExecution(job.execution_id);
    core::ActionRun* r = e != nullptr ? e->FindRun(job.run_id) : nullptr;
    if (core::RuleRun* rule = e != nullptr ? e->FindRuleRun(job.run_id) : nullptr;
        rule != nullptr && rule->status == core::ActionStatus::kInProgress &&
        rule->summary.empty()) {
      rule->summary = core::WaitingForWorkerSummary(job.type);  // A stage condition's rule.
    }
    if (r == nullptr || r->status != core::ActionStatus::kInProgress || !r->summary.empty()) {
      continue;
    }
    r->summary = core::WaitingForWorkerSummary(job.type);
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

}  // namespace pw::engine
