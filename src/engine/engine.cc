// The engine's life cycle: construction (runner pieces, executors, custom
// action types), shutdown, Recover after a restart, and the small helpers the
// other engine files share. Operations are in pipeline_ops.cc, the commit
// path in commit.cc, jobs in jobs.cc, timers and the poller in ticker.cc.

#include "engine/engine.h"

#include <malloc.h>

#include <cstring>
#include <exception>
#include <filesystem>
#include <set>

#include "common/ids.h"
#include "common/log.h"
#include "engine/action_types.h"
#include "engine/decl_json.h"
#include "engine/internal.h"
#include "runner/artifact_store.h"
#include "runner/git_source.h"
#include "runner/object_store.h"
#include "runner/orphans.h"
#include "runner/process_launcher.h"
#include "runner/s3_client.h"
#include "runner/temp_dir.h"

namespace pw::engine {

namespace fs = std::filesystem;
using nlohmann::json;

class Engine::Ids final : public core::IdSource {
 public:
  std::string NewId() override { return NewUuid(); }
};

const core::ActionDecl* FindActionDecl(const core::PipelineDecl& d, const std::string& stage,
                                       const std::string& action) {
  const core::StageDecl* s = d.FindStage(stage);
  if (s == nullptr) return nullptr;
  for (const auto& a : s->actions) {
    if (a.name == action) return &a;
  }
  return nullptr;
}

core::ActionDecl WithResolvedConfiguration(const core::ActionDecl& a, const core::ActionRun& r) {
  core::ActionDecl out = a;
  if (!r.resolved_configuration.empty() || a.configuration.empty()) {
    out.configuration = r.resolved_configuration;
  }
  for (auto& var : out.environment) {
    auto it = r.resolved_environment.find(var.name);
    if (it != r.resolved_environment.end()) var.value = it->second;
  }
  return out;
}

Result<core::ShellCommands> ShellCommandsOf(const core::ActionDecl& declared,
                                            const core::Variables& scope) {
  auto it = declared.configuration.find("Commands");
  return core::RewriteForShell(
      core::CommandLines(declared.commands, it == declared.configuration.end() ? "" : it->second),
      scope);
}

Status NotFoundPipeline(const std::string& name) {
  return NotFound("The pipeline '" + name + "' was not found; check its name with list-pipelines.",
                  "PipelineNotFoundException");
}

EngineRunners::EngineRunners() = default;
EngineRunners::~EngineRunners() = default;
EngineRunners::EngineRunners(EngineRunners&&) noexcept = default;
EngineRunners& EngineRunners::operator=(EngineRunners&&) noexcept = default;

EngineRunners MakeRunners(const EngineOptions& options) {
  EngineRunners r;
  r.launcher = runner::NewPosixProcessLauncher();
  runner::ArtifactLimits limits;
  if (options.max_artifact_bytes > 0) limits.max_artifact_bytes = options.max_artifact_bytes;
  if (options.max_unpacked_bytes > 0) limits.max_unpacked_bytes = options.max_unpacked_bytes;
  if (options.max_artifact_entries > 0) limits.max_entries = options.max_artifact_entries;
  r.artifacts = std::make_unique<runner::ArtifactStore>(options.data_dir + "/artifacts", limits);
  r.git = std::make_unique<runner::GitSource>(options.data_dir + "/git-cache");
  if (!options.artifact_s3_endpoint.empty()) {
    runner::S3ClientOptions s3;
    s3.endpoint_url = options.artifact_s3_endpoint;
    s3.region = options.artifact_s3_region;
    r.external_s3 = std::make_unique<runner::S3Client>(s3);
  }
  return r;
}

Engine::Engine(store::Store& store, const Clock& clock, EngineOptions options,
               EngineRunners runners)
    : store_(store),
      clock_(clock),
      options_(std::move(options)),
      ids_(std::make_unique<Ids>()),
      runners_(std::move(runners)) {
  if (options_.data_dir.empty()) options_.data_dir = fs::temp_directory_path() / "pipewright";
  std::error_code ec;
  fs::create_directories(options_.data_dir + "/logs", ec);
  fs::create_directories(options_.data_dir + "/work", ec);
  EngineRunners defaults = MakeRunners(options_);
  if (!runners_.launcher) runners_.launcher = std::move(defaults.launcher);
  if (!runners_.artifacts) runners_.artifacts = std::move(defaults.artifacts);
  if (!runners_.git) runners_.git = std::move(defaults.git);
  if (!runners_.external_s3) runners_.external_s3 = std::move(defaults.external_s3);
  if (options_.sandbox.mode == runner::SandboxMode::kBwrap) {
    options_.sandbox.hide_dirs.push_back(fs::weakly_canonical(options_.data_dir, ec).string());
  }
  sandbox_ = std::make_unique<runner::Sandbox>(options_.sandbox);
  path_policy_.deploy_roots = options_.deploy_roots;
  path_policy_.data_dir = options_.data_dir;
  path_policy_.protected_paths = options_.protected_paths;
  queue_ = std::make_unique<WorkQueue>(2);

  ExecutorEnv env;
  env.data_dir = options_.data_dir;
  env.stopping = &stopping_;
  env.clock = &clock_;
  env.queue = queue_.get();
  env.launcher = runners_.launcher.get();
  env.artifacts = runners_.artifacts.get();
  env.unpacked = std::make_shared<runner::UnpackCache>(runners_.artifacts.get(),
                                                       options_.data_dir + "/unpacked");
  env.log_spares = std::make_shared<runner::SpareFiles>(options_.data_dir + "/logs/.spare");
  // Each action makes and later removes directories in both (its working
  // directory, its input's overlay scratch): on ext4 without a journal they
  // are spread over the block groups (see SpreadNewDirectories).
  for (const char* sub : {"/work", "/unpacked"}) {
    std::string why;
    if (!runner::OnExt4WithoutJournal(options_.data_dir + sub)) break;
    if (!runner::SpreadNewDirectories(options_.data_dir + sub, &why)) {
      PW_LOG(Debug) << options_.data_dir << sub << ": new directories not spread (" << why << ")";
    }
  }
  // Sandboxed, released inputs are unmounted at once (each bwrap copies the
  // mounts still waiting); only where that unmount cannot reach a sandbox
  // still setting itself up: see UnmountAtOnce.
  if (options_.own_mount_namespace && options_.sandbox.mode == runner::SandboxMode::kBwrap) {
    env.unpacked->UnmountAtOnce();
    env.action_namespaces = env.unpacked->overlays() && !options_.sandbox.user;
  }
  // What a previous process left in the data directory and nothing will
  // remove: working directories of runs that ended (or were interrupted)
  // before it removed them, and the mount points it kept for a while. Their
  // runs (the names without .in/.cb) are removed by Recover on a worker
  // thread with their result files (RemoveRunFilesLater; logs/ itself is not
  // listed: it holds every retained run's log). Nothing of this process has
  // run yet (the unpack cache has just unmounted the old overlays).
  // (Not a range-for: its increments throw on a read error; this stops.)
  for (auto it = fs::directory_iterator(options_.data_dir + "/work", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::string run = it->path().filename().string();
    for (const char* suffix : {".in", ".cb"}) {
      if (run.ends_with(suffix)) run.resize(run.size() - std::strlen(suffix));
    }
    left_runs_.insert(std::move(run));
  }
  if (env.unpacked->overlays() && !options_.sandbox.user) {
    PW_LOG(Info) << "input artifacts reach actions as overlay mounts of an unpacked copy";
  } else {
    PW_LOG(Info) << "input artifacts reach actions as private copies of an unpacked copy ("
                 << (options_.sandbox.user ? "an action user must own its files"
                                           : "no overlays: " + env.unpacked->overlay_problem())
                 << ")";
  }
  env.git = runners_.git.get();
  env.git_connections = &options_.git_connections;
  env.objects = runners_.objects.get();
  env.sandbox = sandbox_.get();
  env.action_user = options_.sandbox.user;
  env.kill_grace_seconds = options_.kill_grace_seconds;
  env.build_projects = &options_.build_projects;
  env.region = options_.region;
  env.account_id = options_.account_id;
  env.container_runtime = options_.container_runtime;
  env.container_env = options_.container_env;
  auto add = [this](std::unique_ptr<ActionExecutor> x, std::vector<std::string> kinds) {
    for (const auto& kind : kinds) executors_[kind] = x.get();
    executor_owners_.push_back(std::move(x));
  };
  add(NewCommandsExecutor(env), {"Build/Commands", "Test/Commands", "Compute/Commands"});
  add(NewDirectorySourceExecutor(env), {"Source/Directory"});
  add(NewGitSourceExecutor(env),
      {"Source/Git", "Source/CodeCommit", "Source/CodeStarSourceConnection"});
  add(NewDirectoryDeployExecutor(env), {"Deploy/Directory"});
  add(NewS3SourceExecutor(env), {"Source/S3"});
  add(NewS3DeployExecutor(env), {"Deploy/S3"});
  add(NewCodeBuildExecutor(env), {"Build/CodeBuild", "Test/CodeBuild"});

  if (auto types = store_.ListKv("actiontype/"); types.ok()) {
    for (const auto& [key, value] : *types) {
      json doc = json::parse(value, nullptr, false);
      if (!doc.is_discarded()) custom_types_[key.substr(std::string("actiontype/").size())] = doc;
    }
  }
}

Engine::~Engine() {
  // Intake stops and the queue drains: a queued completion may still use the
  // runner pieces or the store. The ticker ends with it. Only then the
  // launcher goes, killing running children; their exits enqueue nothing
  // after stop, so their runs stay InProgress for Recover, exactly as after
  // kill -9. Executors go last: the launcher's exit callbacks use them.
  stopping_ = true;
  queue_->Stop();
  if (ticker_.joinable()) ticker_.join();
  runners_.launcher.reset();
  executors_.clear();
  executor_owners_.clear();
}

void Engine::SetPublicUrl(const std::string& url) {
  MutexLock lock(mu_);
  options_.public_url = url;
}

std::string Engine::PipelineArn(const std::string& name) const {
  return "arn:aws:codepipeline:" + options_.region + ":" + options_.account_id + ":" + name;
}

std::string Engine::LogPath(const std::string& run_id) const {
  return options_.data_dir + "/logs/" + run_id + ".log";
}

bool Engine::IsJobAction(const core::ActionDecl& a) const {
  if (a.type.owner == "Custom" || (IsCommands(a) && !options_.local_runners)) return true;
  // AWS-owned (and ThirdParty) types without a runner here go to workers.
  const BuiltinActionType* t = FindBuiltin(a.type);
  return t != nullptr && t->runs == ActionRunner::kWorker;
}

ActionExecutor* Engine::ExecutorFor(const core::ActionDecl& a) const {
  if (a.type.owner != "AWS") return nullptr;
  auto it = executors_.find(a.type.category + "/" + a.type.provider);
  return it == executors_.end() ? nullptr : it->second;
}

bool Engine::WaitIdleForTest(double timeout_seconds) { return queue_->WaitIdle(timeout_seconds); }

size_t Engine::PendingResultsForTest() {
  MutexLock lock(mu_);
  return pending_.size();
}

Status Engine::RecoverPipelineLocked(core::PipelineState& ps, EpochSeconds now) {
  core::Outcome out;
  // Runs done by job workers survive a restart (their jobs are
  // durable); approvals keep waiting; everything that ran here was
  // interrupted.
  auto is_job_run = [&](const core::ActionRun& r) {
    const core::ActionDecl* a = FindActionDecl(ps.decl, r.stage, r.action);
    return a != nullptr && IsJobAction(*a);
  };
  auto interrupted = [&](const core::ActionRun& r) { return r.token.empty() && !is_job_run(r); };
  // Their processes may have outlived the old server: end them, so a
  // retry never runs beside a leftover copy.
  std::set<std::string> orphans;
  for (const auto& e : ps.executions) {
    for (const auto& r : e.runs) {
      if (r.status == core::ActionStatus::kInProgress && interrupted(r)) {
        orphans.insert(r.id);
      }
    }
  }
  if (int n = runner::KillActionProcesses(orphans); n > 0) {
    PW_LOG(Info) << "killed " << n << " process group(s) left by interrupted actions";
  }
  core::FailInterruptedRuns(ps, interrupted, kRestartMessage, now, &out);
  for (const auto& e : ps.executions) {
    for (const auto& r : e.runs) {
      if (r.status != core::ActionStatus::kInProgress || !is_job_run(r)) continue;
      bool has_job = false;
      for (const auto& [id, job] : jobs_) {
        has_job = has_job || (job.run_id == r.id && job.Open());
      }
      if (has_job) continue;
      // Committed but the job was never created (a crash in between):
      // create it now.
      Status c = CreateJobLocked(
          ps, e, r, WithResolvedConfiguration(*FindActionDecl(ps.decl, r.stage, r.action), r), "");
      if (!c.ok()) FailLater(ps.decl.name, r.id, Failure(c.message(), "", "ConfigurationError"));
    }
  }
  RecoverRulesLocked(ps, &out);
  core::Advance(ps, now, *ids_, &out);
  PW_RETURN_IF_ERROR(CommitLocked(ps, out));
  // Durably failed now: nothing will run in their directories again.
  RemoveRunFilesLater(std::move(orphans));
  return Status::Ok();
}

void Engine::RemoveRunFilesLater(std::set<std::string> run_ids) {
  // Run ids are the engine's own UUIDs; anything that could leave the
  // directories (a row edited by hand) is skipped.
  std::erase_if(run_ids, [](const std::string& id) {
    return id.empty() || id[0] == '.' || id.find('/') != std::string::npos;
  });
  std::vector<std::string> paths;
  for (const std::string& id : run_ids) {
    // As the executors lay them out (ExecutorEnv::WorkDir, LogPath).
    const std::string work = options_.data_dir + "/work/" + id;
    for (const std::string& path :
         {work, work + ".in", work + ".cb", LogPath(id) + ".status", LogPath(id) + ".vars"}) {
      paths.push_back(path);
    }
  }
  if (paths.empty()) return;
  queue_->Enqueue([paths = std::move(paths)] {
    std::error_code ec;
    for (const std::string& path : paths) fs::remove_all(path, ec);
  });
}

Status Engine::Recover() {
  MutexLock lock(mu_);
  PW_ASSIGN_OR_RETURN(auto all, store_.ListPipelines());
  const EpochSeconds now = clock_.Now();
  LoadJobsLocked();
  // Jobs handed out but not acknowledged: the answer may never have reached
  // a worker (the old server died, or shut down, with the reply unsent).
  // Queue them again under a new nonce rather than wait out the dispatch
  // lease; a worker that did get one is refused (InvalidNonce) and skips it.
  for (auto& [id, job] : jobs_) {
    // With leases another live server may have handed it out just now: the
    // dispatch timeout requeues it instead.
    if (job.status != core::JobStatus::kDispatched || !server_id_.empty()) continue;
    Job next = job;
    next.status = core::JobStatus::kQueued;
    next.nonce = RandomHex(32);
    if (SaveJobLocked(next).ok()) job = next;
  }
  Status first_error;
  // With leases the pipelines are recovered one by one as they are adopted
  // (AdoptPipeline), never those another live server drives.
  if (!server_id_.empty()) all.clear();
  for (const auto& rec : all) {
    // One pipeline that cannot be recovered (a store error, a document this
    // build cannot read) must not keep the others from running.
    Status s;
    try {
      auto p = LoadLocked(rec.name);
      s = p.ok() ? RecoverPipelineLocked(**p, now) : p.status();
    } catch (const std::exception& ex) {
      s = Internal("cannot recover pipeline " + rec.name + ": " + ex.what());
    }
    if (!s.ok()) {
      PW_LOG(Error) << "recovering pipeline " << rec.name << ": " << s.ToString();
      if (first_error.ok()) first_error = s;
    }
  }
  // Loading parsed every pipeline's newest documents; give the memory they
  // used back (RSS with many pipelines, issue 15).
  all.clear();
  all.shrink_to_fit();
  malloc_trim(0);
  if (!left_runs_.empty()) {
    PW_LOG(Info) << "removing the working directories and result files of " << left_runs_.size()
                 << " runs a previous server left";
    RemoveRunFilesLater(std::move(left_runs_));
    left_runs_.clear();
  }
  if (!ticker_.joinable()) ticker_ = std::thread([this] { TickerLoop(); });
  // A store that fails now fails the start (the server says why and exits);
  // a document that cannot be read leaves that pipeline for the operator.
  if (!first_error.ok() && first_error.code() != StatusCode::kInternal) return first_error;
  return Status::Ok();
}

}  // namespace pw::engine
