#pragma once

// ActionExecutor: how the engine runs one kind of built-in action (Commands,
// Directory source and deploy, Git source, S3 source and deploy). The engine
// decides under its mutex that a run starts, copies what the run needs into
// an ActionWork and hands it to the executor on a worker thread, without the
// mutex: unpacking inputs, hashing outputs and network calls never stall
// other pipelines. The executor reports the result once through `done`,
// which the engine records durably (or keeps pending and retries: a result is never dropped).
// Job actions (custom types, Commands for remote workers) and approvals have
// no executor: they wait for an API call.
//
//   std::unique_ptr<ActionExecutor> x = NewCommandsExecutor(env);
//   x->Run(work, [](const core::ActionResult& r) { ... });

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "core/execution.h"
#include "core/machine.h"
#include "core/pipeline.h"
#include "runner/artifact_store.h"
#include "runner/deploy_dir.h"
#include "runner/sandbox.h"
#include "runner/spare_files.h"
#include "runner/unpack_cache.h"

namespace pw::runner {
class ArtifactStore;
class GitSource;
class ObjectStore;
class ProcessLauncher;
}  // namespace pw::runner

namespace pw::engine {

class WorkQueue;
struct GitConnections;
struct BuildProjects;

// One action run's work, copied under the engine mutex. Plain value.
struct ActionWork {
  std::string pipeline;
  std::string execution_id;
  std::string run_id;
  std::string stage;
  std::string action;
  // The action as declared, with the configuration and environment resolved
  // when the run started (variables substituted).
  core::ActionDecl decl;
  std::map<std::string, std::string> inputs;  // Input artifact name -> revision.
  // Commands: the commands rewritten for the shell and the values of their
  // references (core/shell_quote.h), resolved under the mutex.
  std::vector<std::string> commands;
  std::vector<std::pair<std::string, std::string>> reference_env;
  // A source action's StartPipelineExecution.sourceRevisions entry: the type
  // (COMMIT_ID, S3_OBJECT_VERSION_ID, S3_OBJECT_KEY, IMAGE_DIGEST) and value;
  // empty type: the latest revision.
  std::string source_revision_type;
  std::string source_revision_value;
  // S3 sources: an S3_OBJECT_KEY override (with AllowOverrideForS3ObjectKey),
  // alone or together with an S3_OBJECT_VERSION_ID in the fields above.
  std::string source_object_key;
  // Input artifact name -> the source revision (commit id, object version)
  // that produced it, where one did (CODEBUILD_RESOLVED_SOURCE_VERSION).
  std::map<std::string, std::string> input_source_revisions;
};

using ActionDone = std::function<void(const core::ActionResult&)>;

class ActionExecutor {
 public:
  virtual ~ActionExecutor() = default;
  // Starts `work`. Called on an engine worker thread without the engine
  // mutex; may block on I/O. Calls `done` exactly once, now or later from
  // any thread, unless the engine stops first (then the run stays InProgress
  // for Recover). Must not throw; the engine turns an escaping exception into
  // a Failed run anyway.
  virtual void Run(const ActionWork& work, ActionDone done) = 0;
  // The run was abandoned (its result will be ignored): end its process, if
  // any, now or as soon as it starts. Any thread.
  virtual void Cancel(const std::string& run_id) { (void)run_id; }
};

// What executors share; references outlive the executors.
struct ExecutorEnv {
  std::string data_dir;  // work/<run>, logs/<run>.log below it.
  const Clock* clock = nullptr;
  WorkQueue* queue = nullptr;
  runner::ProcessLauncher* launcher = nullptr;
  runner::ArtifactStore* artifacts = nullptr;
  // True once the engine stops: work that can take minutes (a directory
  // snapshot) gives up, so the server's shutdown does not wait for it.
  const std::atomic<bool>* stopping = nullptr;
  // Inputs unpacked once per revision, then an overlay or a copy per action
  // (null: Extract each time). Shared by every executor's copy of the env.
  std::shared_ptr<runner::UnpackCache> unpacked;
  // Actions' log files made ahead, in logs/.spare (null: each made at the
  // spawn). See runner/spare_files.h.
  std::shared_ptr<runner::SpareFiles> log_spares;
  // A sandboxed Commands action's inputs are mounted in a mount namespace of
  // its own (runner::ActionMountNamespace), not the server's: set when the
  // server has its own namespace, actions run in bubblewrap, and inputs are
  // overlays.
  bool action_namespaces = false;
  runner::GitSource* git = nullptr;
  // Where CodeCommit and connection sources live; null: none declared.
  const GitConnections* git_connections = nullptr;
  runner::ObjectStore* objects = nullptr;  // S3 actions' buckets; null: S3 actions fail.
  const runner::Sandbox* sandbox = nullptr;
  std::optional<runner::ActionUser> action_user;
  double kill_grace_seconds = 5;
  // CodeBuild actions: the declared projects (null: none), the region and
  // account of their ARNs, and the container runtime (absolute path; empty:
  // projects with an image are refused) with the environment it runs in.
  const BuildProjects* build_projects = nullptr;
  std::string region = "us-east-1";
  std::string account_id = "123456789012";
  std::string container_runtime;
  std::vector<std::string> container_env;

  std::string LogPath(const std::string& run_id) const {
    return data_dir + "/logs/" + run_id + ".log";
  }
  std::string WorkDir(const std::string& run_id) const { return data_dir + "/work/" + run_id; }
  // Puts input artifact `revision` into `dest` (see UnpackCache::Materialize):
  // a private copy when actions run as another user, who must own the files.
  // `server_namespace`: the calling thread is in the server's mount
  // namespace (not an action's own), where a premounted overlay may be moved.
  Status UnpackInput(const std::string& revision, const std::string& dest,
                     bool server_namespace = false) const {
    return unpacked
               ? unpacked->Materialize(revision, dest, action_user.has_value(), server_namespace)
               : artifacts->Extract(revision, dest);
  }
  // After an action that took `revision` as an overlay has been spawned:
  // the next action to take it finds one mounted (UnpackCache::Premount).
  void PremountInput(const std::string& revision) const {
    if (unpacked && !action_user) unpacked->Premount(revision);
  }
  // Taken before a sandboxed action's mount namespace is copied, dropped
  // once its process has exited (or did not start): released mount points
  // stay in place meanwhile (UnpackCache::HoldForSandbox). It keeps the
  // cache too: an exit callback never called (the launcher stopping) may be
  // destroyed after the engine's copy is gone.
  struct SandboxHolder {
    std::shared_ptr<runner::UnpackCache> cache;
    runner::UnpackCache::SandboxHold hold;  // Dropped first.
    // Right before the spawn (UnpackCache::SandboxSpawning).
    void Spawning() const { cache->SandboxSpawning(hold); }
  };
  // Null without a cache.
  std::shared_ptr<SandboxHolder> HoldForSandbox() const {
    if (!unpacked) return nullptr;
    return std::make_shared<SandboxHolder>(SandboxHolder{unpacked, unpacked->HoldForSandbox()});
  }
  // Makes run directory `work` (see UnpackCache::MakeDirectory: a released
  // mount point renamed, when there is one).
  Status MakeRunDir(const std::string& work) const {
    if (unpacked) return unpacked->MakeDirectory(work);
    std::error_code ec;
    std::filesystem::create_directory(work, ec);
    return ec ? Internal("mkdir " + work + ": " + ec.message()) : Status::Ok();
  }
  // Undoes UnpackInput for run directory `work` (its inputs are `work` and
  // `work`.in/*) and removes both, now or (overlays) later: see
  // UnpackCache::Release.
  void RemoveRunDirs(const std::string& work) const {
    std::error_code ec;
    for (const std::string& dir : {work, work + ".in"}) {
      if (!unpacked || !unpacked->Release(dir)) std::filesystem::remove_all(dir, ec);
    }
  }
};

std::unique_ptr<ActionExecutor> NewCommandsExecutor(const ExecutorEnv& env);
std::unique_ptr<ActionExecutor> NewDirectorySourceExecutor(const ExecutorEnv& env);
std::unique_ptr<ActionExecutor> NewDirectoryDeployExecutor(const ExecutorEnv& env);
std::unique_ptr<ActionExecutor> NewGitSourceExecutor(const ExecutorEnv& env);
// Build/CodeBuild and Test/CodeBuild (codebuild_executor.cc).
std::unique_ptr<ActionExecutor> NewCodeBuildExecutor(const ExecutorEnv& env);
// Source/S3 and Deploy/S3 (s3_executors.cc) over env.objects; with none
// configured their runs fail with a message naming serve --s3-endpoint.
std::unique_ptr<ActionExecutor> NewS3SourceExecutor(const ExecutorEnv& env);
std::unique_ptr<ActionExecutor> NewS3DeployExecutor(const ExecutorEnv& env);

// A Failed result: JobFailed unless `code` says otherwise; the summary is the
// message unless given.
core::ActionResult Failure(std::string message, std::string summary = {},
                           std::string code = "JobFailed");

// The local path rules (runner/deploy_dir.h) for one action whose
// configuration `config` is resolved (or has no variables); with
// `skip_unresolved`, values holding #{ are skipped. OK for other types.
Status CheckActionPaths(const core::ActionDecl& a, const std::map<std::string, std::string>& config,
                        const runner::PathPolicy& policy, bool skip_unresolved);

bool IsBuiltin(const core::ActionDecl& a, const char* category, const char* provider);
inline bool IsCommands(const core::ActionDecl& a) {
  return a.type.owner == "AWS" && a.type.provider == "Commands";
}

}  // namespace pw::engine
