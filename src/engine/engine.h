#pragma once

// Engine: the one place that changes pipelines and executions. It validates
// definitions, asks core for every decision, persists each decision in one
// store transaction, then performs its effects (processes, artifacts,
// approvals) through the runner. All mutable execution state is owned here
// behind one mutex, so concurrent API calls are serialized and no race can
// half-apply a decision (e.g. two retries of one stage: exactly one wins).
// Queries get copies (snapshots) and never see a half-made change.
// Thread-safe.
//
//   Engine engine(store, clock, options);
//   PW_RETURN_IF_ERROR(engine.Recover());          // after a restart
//   auto id = engine.StartExecution("p", token, "user");

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "core/execution.h"
#include "core/machine.h"
#include "core/pipeline.h"
#include "core/retention.h"
#include "core/triggers.h"
#include "core/variables.h"
#include "engine/build_projects.h"
#include "engine/doc_cache.h"
#include "engine/executor.h"
#include "engine/git_connections.h"
#include "engine/job.h"
#include "engine/read_cache.h"
#include "engine/work_queue.h"
#include "runner/deploy_dir.h"
#include "runner/sandbox.h"
#include "store/store.h"

namespace pw::runner {
class ArtifactStore;
class S3Client;
class GitSource;
class ObjectStore;
class ProcessLauncher;
}  // namespace pw::runner

namespace pw::engine {

class LogShipper;

struct EngineOptions {
  std::string region = "us-east-1";
  std::string account_id = "123456789012";
  std::string data_dir;    // Artifacts, logs and workspaces live below it.
  std::string public_url;  // Base URL of this server, for externalExecutionUrl.
  int max_pipelines = 1000;
  bool start_on_create = true;  // Rule 12: CreatePipeline starts the first execution.
  double approval_timeout_seconds = 7 * 24 * 3600;
  double source_poll_seconds = 30;  // Git/S3 PollForSourceChanges period; 0 = off.
  double kill_grace_seconds = 5;
  bool local_runners = true;                 // false: Commands actions become jobs for workers.
  double job_timeout_seconds = 24 * 3600;    // From acknowledgement to a result (rule 8).
  double job_dispatch_timeout_seconds = 60;  // Polled but not acknowledged: back to the queue.
  // A job no worker acknowledged this long after it was queued fails (0: never).
  double worker_wait_seconds = 3600;
  int max_custom_action_types = 50;
  // An S3-compatible bucket elsewhere for job artifacts (empty endpoint: the
  // server's own S3-style endpoint over its data directory). Job workers get
  // these credentials, so scope them to the bucket.
  std::string artifact_s3_endpoint;
  std::string artifact_s3_bucket;
  std::string artifact_s3_region = "us-east-1";
  std::string artifact_s3_access_key_id;
  std::string artifact_s3_secret_access_key;
  std::string artifact_s3_session_token;
  // Ended jobs (and their documents) are removed this long after they end.
  double job_retention_seconds = 3600;
  // How Commands actions are confined (serve --sandbox, --action-user). With
  // kBwrap the data directory is always among the hidden directories.
  runner::SandboxOptions sandbox;
  // The process is in a mount namespace of its own whose overlays propagate
  // nowhere (serve: runner::EnterOwnMountNamespace): then a sandboxed
  // server's released inputs are unmounted at once (UnpackCache::UnmountAtOnce).
  bool own_mount_namespace = false;
  // Deploy/Directory targets must lie below one of these absolute paths
  // (serve --deploy-root); empty: Deploy/Directory is refused.
  std::vector<std::string> deploy_roots;
  // The server's files that a Source/Directory or local Git path may not read
  // and a deploy may not replace (runner::PathPolicy::protected_paths).
  std::vector<std::string> protected_paths;
  // Artifact limits (serve --max-artifact-bytes, --max-unpacked-bytes,
  // --max-artifact-entries); zero keeps the default.
  uint64_t max_artifact_bytes = 0;
  uint64_t max_unpacked_bytes = 0;
  uint64_t max_artifact_entries = 0;
  // Where CodeStarSourceConnection and CodeCommit sources fetch from
  // (serve --git-connections).
  GitConnections git_connections;
  // CodeBuild actions (serve --build-projects, --container-runtime): the
  // declared projects and secrets source; the runtime's absolute path (empty:
  // none) and the environment it runs with.
  BuildProjects build_projects;
  std::string container_runtime;
  std::vector<std::string> container_env;
  // Rule 15: active executions a QUEUED or PARALLEL pipeline may have
  // (ConcurrentPipelineExecutionsLimitExceededException beyond); 0 = no limit.
  int max_concurrent_executions = 50;
  // History retention (issue 15; serve --retain-executions, --retain-days,
  // the configuration file's `retention`): ended executions beyond a
  // pipeline's newest `max_executions`, or last updated more than
  // `max_age_days` ago, are deleted by the ticker with their action runs,
  // logs and the artifacts nothing else refers to. Per-pipeline entries
  // replace the default. Empty policies keep everything.
  core::RetentionPolicy retention;
  std::map<std::string, core::RetentionPolicy> retention_by_pipeline;
  size_t retention_batch = 100;  // Executions deleted per tick at most.
  // Artifacts written less than this long ago are never removed (a result
  // naming them may not be committed yet).
  double retention_artifact_grace_seconds = 3600;
  // With retention configured, this often every stored artifact older than
  // the grace period becomes a candidate for the sweep too, not only those of
  // the executions retention deleted: artifacts of deleted pipelines, and with
  // several servers the copies fetched from the shared bucket. 0: never.
  double retention_orphan_scan_seconds = 3600;
};

// PutActionRevision's answer: whether the revision is new to the pipeline,
// and the execution that runs it (new) or last ran it (not new).
struct PutActionRevisionResult {
  bool new_revision = false;
  std::string execution_id;
};

// What a POST to a url no webhook has is answered (404).
inline constexpr std::string_view kNoSuchWebhookUrl =
    "No webhook has this url (deleted or re-created webhooks get a new one).";

// One POST to a webhook's url, as the HTTP front received it.
struct WebhookRequest {
  std::string token;  // From the url.
  std::string body;
  std::string peer;           // The sender's address.
  std::string signature_256;  // X-Hub-Signature-256 ("" when absent).
  std::string gitlab_token;   // X-Gitlab-Token ("" when absent).
  std::string event;          // X-GitHub-Event or X-Gitlab-Event ("" when absent).
};
struct WebhookReply {
  int status = 200;  // 401 bad signature, 403 address outside the range, 404 unknown url, …
  std::string message;
  std::string execution_id;  // The execution started, if any.
  // For a status >= 400, the error's `__type` (the model's names where it has
  // one): ValidationException, AccessDeniedException, WebhookNotFoundException,
  // PipelineNotFoundException, ActionNotFoundException, ConflictException.
  std::string error_type;
};

// What a job worker reports with PutJobSuccessResult.
struct JobSuccess {
  std::string continuation_token;
  std::string summary;
  std::string external_id;
  int percent_complete = -1;
  std::string revision;
  std::string revision_change_id;
  std::string revision_summary;
  EpochSeconds revision_created = 0;
  std::map<std::string, std::string> output_variables;
};

// The runner pieces the engine drives; serve.cc makes the real ones
// (MakeRunners), tests may pass fakes. Null members are made by the engine.
struct EngineRunners {
  EngineRunners();
  ~EngineRunners();  // Out of line: the runner types are incomplete here.
  EngineRunners(EngineRunners&&) noexcept;
  EngineRunners& operator=(EngineRunners&&) noexcept;
  std::unique_ptr<runner::ProcessLauncher> launcher;
  std::unique_ptr<runner::ArtifactStore> artifacts;
  std::unique_ptr<runner::GitSource> git;
  std::unique_ptr<runner::S3Client> external_s3;  // Only with an external artifact bucket.
  // The buckets of the S3 actions (the server's own, or `serve --s3-endpoint`);
  // shared with the API's S3 endpoint. Null: S3 actions fail with a message.
  std::shared_ptr<runner::ObjectStore> objects;
  // Several servers (serve --server-id): ships each action's log to the
  // database as it runs, completely before its result is committed. Null:
  // logs stay files in the data directory only.
  std::shared_ptr<LogShipper> log_shipper;
};
// The real runner pieces for `options` (data directory, artifact limits,
// external bucket).
EngineRunners MakeRunners(const EngineOptions& options);

// A consistent copy of one pipeline for queries.
struct Snapshot {
  store::PipelineRecord record;  // Current version.
  core::PipelineState state;
};

// Which action runs a page of history loads with its executions: none, only
// the first stage's (the source revisions of ListPipelineExecutions and
// ListPipelines), or all.
enum class PageRuns { kNone, kFirstStage, kAll };

// One page of history (Engine::HistoryPage).
struct ExecutionPage {
  // The current version; `state` holds the declaration, transitions, each
  // stage's latest, and as executions the page's (with their runs) and the
  // rollback targets they name.
  Snapshot snap;
  std::vector<std::string> ids;  // The page, newest first.
  bool more = false;             // Further executions match after the page.
};

// ListRuleExecutions' order: newest start first, ties by rule run id
// (descending). A page starts after a position in it (started, id).
struct RuleRunPosition {
  EpochSeconds started = 0;
  std::string id;
};
inline bool RuleRunBefore(const RuleRunPosition& a, const RuleRunPosition& b) {
  return a.started != b.started ? a.started > b.started : a.id > b.id;
}

// One page of the rule runs of every execution (Engine::RuleRunsPage).
struct RuleRunPage {
  // The current version's context; as executions, those the page's runs
  // belong to (without their action runs).
  Snapshot snap;
  std::vector<std::pair<std::string, std::string>> runs;  // (execution, rule run), in order.
  bool more = false;                                      // Further rule runs follow the page.
};

class Engine {
 public:
  // `store` and `clock` must outlive the engine.
  Engine(store::Store& store, const Clock& clock, EngineOptions options,
         EngineRunners runners = {});
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  // Stops intake, drains the work queue and joins its threads, then tears
  // down the runner (running actions are killed; Recover fails them as
  // interrupted on the next start, exactly as after kill -9).
  ~Engine();

  const EngineOptions& options() const { return options_; }
  void SetPublicUrl(const std::string& url);
  store::Store& store() { return store_; }
  std::string PipelineArn(const std::string& name) const;
  // kNotFound, PipelineNotFoundException, in AWS's words: "Account '<account
  // id>' does not have a pipeline with name '<name>'".
  Status PipelineNotFound(const std::string& name) const;

  // After a restart: actions that were running when the server stopped are
  // marked Failed (retryable); approvals keep waiting; executions waiting
  // between stages carry on. Also starts the background ticker.
  Status Recover();

  // Validates the structure (A.6-A.10, unknown action types), stores version
  // 1 and (rule 12) starts the first execution. Errors: Invalid*Exception,
  // PipelineNameInUseException, LimitExceededException, TooManyTagsException.
  Result<store::PipelineRecord> CreatePipeline(const nlohmann::json& pipeline,
                                               const std::vector<store::Tag>& tags,
                                               const std::string& caller);
  // Stores the next version and applies rule 69 to running executions.
  Result<store::PipelineRecord> UpdatePipeline(const nlohmann::json& pipeline);
  // Abandons running work and removes the pipeline with its history.
  Status DeletePipeline(const std::string& name);

  // Starts an execution; a repeated client_token returns the first id (rule 14).
  // Pipeline variables: the declared defaults overridden by `variables`
  // (ValidationException for an undeclared name or a missing value).
  // `source_revisions` (StartPipelineExecution.sourceRevisions) are checked
  // by CheckSourceRevisions (ValidationException) and kept on the execution.
  Result<std::string> StartExecution(
      const std::string& pipeline, const std::string& client_token, const std::string& caller,
      const std::string& trigger_type = "StartPipelineExecution",
      const core::Variables& variables = {},
      const std::vector<core::SourceRevisionOverride>& source_revisions = {});
  Status StopExecution(const std::string& pipeline, const std::string& execution_id, bool abandon,
                       const std::string& reason);
  Result<core::RetryPlan> PlanRetry(const std::string& pipeline, const std::string& stage,
                                    const std::string& execution_id, core::RetryMode mode);
  Result<core::RetryPlan> RetryStage(const std::string& pipeline, const std::string& stage,
                                     const std::string& execution_id, core::RetryMode mode);
  // RollbackStage (rules 58-60): returns the new rollback execution's id.
  Result<std::string> RollbackStage(const std::string& pipeline, const std::string& stage,
                                    const std::string& target_execution_id);
  Status SetTransition(const std::string& pipeline, const std::string& stage, bool enabled,
                       const std::string& reason, const std::string& caller);
  // Answers an approval; returns approvedAt.
  Result<EpochSeconds> PutApproval(const std::string& pipeline, const std::string& stage,
                                   const std::string& action, const std::string& token,
                                   bool approved, const std::string& summary,
                                   const std::string& caller);

  // OverrideStageCondition (rule 64): see core::OverrideCondition for the
  // errors; PipelineNotFoundException for an unknown pipeline.
  Status OverrideStageCondition(const std::string& pipeline, const std::string& stage,
                                const std::string& execution_id, core::ConditionKind kind);

  // A copy of the pipeline's state. With `current_only`, only the executions
  // GetPipelineState can show (active ones and each stage's latest), so a
  // console polling once a second does not copy a long history. Without it
  // every execution, read from the store (the engine keeps only its working
  // set in memory): for tests and tools, not for request paths.
  Result<Snapshot> GetSnapshot(const std::string& pipeline, bool current_only = false);
  // --- history.cc: history read from the store by index (issue 15), so a
  // page costs the same however long the history is.
  // Up to `max` executions of `pipeline`, newest first, after execution
  // `after` ("": from the newest), those `keep` accepts (null: all), with
  // the action runs `runs` says. InvalidNextTokenException when
  // `after` is not an execution of the pipeline; PipelineNotFoundException.
  Result<ExecutionPage> HistoryPage(const std::string& pipeline, size_t max,
                                    const std::string& after,
                                    const std::function<bool(const core::Execution&)>& keep,
                                    PageRuns runs = PageRuns::kAll);
  // At most `max` rule runs of all the executions of `pipeline` in
  // ListRuleExecutions' order, after `after` if given. Reads the executions
  // most recently updated first, a few at a time and outside the engine
  // mutex, and stops once those left were updated before the page's last
  // run started (a rule run starts no later than its execution's last
  // update); a pipeline none of whose versions declares a condition has no
  // rule runs and reads none. PipelineNotFoundException.
  Result<RuleRunPage> RuleRunsPage(const std::string& pipeline, size_t max,
                                   const std::optional<RuleRunPosition>& after);
  // One execution with its runs (and its rollback target).
  // PipelineExecutionNotFoundException, PipelineNotFoundException.
  Result<Snapshot> ExecutionSnapshot(const std::string& pipeline, const std::string& id);
  // Serialised responses of frequent reads (read_cache.h), invalidated by
  // every commit; the API answers GetPipeline, GetPipelineState and the first
  // page of ListPipelineExecutions from it. set_enabled(false) bypasses it.
  ReadCache& read_cache() { return read_cache_; }
  // With several servers, the same reads of a pipeline another server
  // drives: the store's change stamp of `pipeline` (read it before computing
  // the answer) when it is driven elsewhere and the store has one, else
  // nullopt (read as usual). Kept answers go to stamped_cache().
  std::optional<int64_t> ChangeStampIfDrivenElsewhere(const std::string& pipeline) EXCLUDES(mu_);
  StampedReadCache& stamped_cache() { return stamped_cache_; }
  // The parsed execution and action run documents history reads keep
  // (doc_cache.h): hits, misses and entries, for tests and metrics.
  DocCache<core::Execution>::Counts execution_doc_counts() const {
    return execution_docs_.counts();
  }
  DocCache<core::ActionRun>::Counts run_doc_counts() const { return run_docs_.counts(); }
  // How many of each it keeps: a few pages of history of a few pipelines.
  static constexpr size_t kKeptExecutionDocs = 2048;
  static constexpr size_t kKeptRunDocs = 4096;
  // How many reads on this thread have looked at job documents so far
  // (AddJobWaitSummariesLocked). An answer computed while this moved may
  // depend on a job, which the change stamp does not cover: not kept.
  static uint64_t JobLookupsOnThisThread();
  // Where an action run's output is logged.
  std::string LogPath(const std::string& run_id) const;

  bool ActionTypeKnown(const core::ActionTypeId& id) const;

  // Rule 9: configuration values of properties declared `secret` come back
  // as "****" (GetPipeline, CreatePipeline/UpdatePipeline output).
  nlohmann::json MaskSecrets(nlohmann::json declaration) const;

  // Custom action types (owner Custom). The ActionType JSON of the model.
  // Errors: ValidationException (exists, or bad queryable property),
  // LimitExceededException.
  Result<nlohmann::json> CreateCustomActionType(const nlohmann::json& input);
  // ActionTypeNotFoundException when absent.
  Status DeleteCustomActionType(const core::ActionTypeId& id);
  std::vector<nlohmann::json> CustomActionTypes() const;
  std::optional<nlohmann::json> FindCustomActionType(const core::ActionTypeId& id) const;

  // Called (under the engine mutex: it must not call back into the engine)
  // whenever a job is queued, e.g. to wake parked PollForJobs requests. Set
  // before serving.
  // Clear it (nullptr) before whatever it calls goes away.
  void SetJobQueuedListener(std::function<void()> f) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    on_job_queued_ = std::move(f);
  }
  // Jobs (rules 70-73). PollForJobs hands out queued jobs of `type` (status
  // Dispatched, a fresh nonce), waiting up to `wait_seconds` for one.
  Result<std::vector<Job>> PollForJobs(const core::ActionTypeId& type, int max_jobs,
                                       const std::map<std::string, std::string>& query,
                                       double wait_seconds);
  // InvalidNonceException, JobNotFoundException. Returns the job status.
  Result<std::string> AcknowledgeJob(const std::string& job_id, const std::string& nonce);
  Result<Job> GetJob(const std::string& job_id);
  // InvalidJobStateException unless the job is InProgress (acknowledged).
  Status PutJobSuccess(const std::string& job_id, const JobSuccess& result);
  Status PutJobFailure(const std::string& job_id, const std::string& type,
                       const std::string& message, const std::string& external_id);
  // The open job whose artifact credentials use `access_key_id`, if any.
  std::optional<Job> JobForAccessKey(const std::string& access_key_id);
  // Where the job's object `key` lives on disk: inputs for reading, outputs
  // for reading and writing. kNotFound / kFailedPrecondition (AccessDenied).
  Result<std::string> JobObjectPath(const Job& job, const std::string& key, bool for_write);
  // Stores a job worker's upload of output object `key`: written beside its
  // JobObjectPath, checked with runner::ValidateZipFile (not empty, a zip,
  // within the artifact limits), then moved into place. Errors:
  // kInvalidArgument (the upload is refused: HTTP 400) naming the rule;
  // kFailedPrecondition (AccessDenied) as JobObjectPath; kInternal on I/O.
  // On error nothing is stored.
  Status PutJobObject(const Job& job, const std::string& key, std::string_view bytes);
  // The same for an upload already on disk (streamed by the HTTP front):
  // validated, then renamed into place (so it must be on the data directory's
  // file system); removed when refused.
  Status PutJobObjectFile(const Job& job, const std::string& key, const std::string& upload);
  // The pipeline ARN and JobData of a job, as PollForJobs returns them.
  nlohmann::json JobDataJson(const Job& job);

  // For GET /metrics: open jobs no worker has acknowledged yet (Queued or
  // Dispatched), by action type "Category/Owner/Provider/Version"; and tasks
  // waiting for the engine's worker threads.
  std::map<std::string, size_t> JobsWaiting() EXCLUDES(mu_);
  size_t QueuedWork() const;
  // --- triggers.cc, webhooks.cc, third_party.cc: triggers, webhooks and the
  // rest of the model (issue 13).
  // PutActionRevision: a Git source takes a commit id, an S3 source an object
  // version id. A revision the action already ran starts nothing
  // (new_revision false). PipelineNotFoundException, StageNotFoundException,
  // ActionNotFoundException, ValidationException, rule 15's limit.
  Result<PutActionRevisionResult> PutActionRevision(const std::string& pipeline,
                                                    const std::string& stage,
                                                    const std::string& action,
                                                    const std::string& revision_id,
                                                    const std::string& caller);
  // PutWebhook (create or replace): the ListWebhookItem, secret masked.
  // `tags` is the request's TagList (null: none). Errors: PipelineNotFound,
  // ValidationException (target not a Git source of the first stage),
  // InvalidWebhookFilterPatternException, InvalidWebhookAuthenticationParametersException,
  // LimitExceededException.
  Result<nlohmann::json> PutWebhook(const nlohmann::json& definition, const nlohmann::json& tags);
  // Every webhook's ListWebhookItem, by name, secrets masked.
  Result<std::vector<nlohmann::json>> ListWebhooks();
  // OK also when absent (as AWS).
  Status DeleteWebhook(const std::string& name);
  // Register/DeregisterWebhookWithThirdParty: records it (the repository
  // host is configured by hand with the url). WebhookNotFoundException.
  Status RegisterWebhook(const std::string& name, bool registered);
  // The last deliveries of a webhook, newest first. WebhookNotFoundException.
  Result<nlohmann::json> WebhookDeliveries(const std::string& name);
  // Handles a POST to a webhook's url (authentication, filters, trigger,
  // start) and records it. Never throws.
  WebhookReply DeliverWebhook(const WebhookRequest& request);
  // Whether some webhook has the url of `token` (true too when the store does
  // not answer: DeliverWebhook decides then). Lets the HTTP front refuse a
  // url no webhook has before reading the body.
  bool WebhookUrlKnown(const std::string& token);
  // ThirdParty jobs: the job API for action types with owner ThirdParty, on
  // the same jobs. Each job handed out gets a clientId; the first clientToken
  // presented for a job (GetThirdPartyJobDetails or AcknowledgeThirdPartyJob)
  // is bound to it and every later call must present the same one
  // (InvalidClientTokenException). JobNotFoundException for jobs of other owners.
  Result<std::vector<Job>> PollForThirdPartyJobs(const core::ActionTypeId& type, int max_jobs);
  Result<Job> ThirdPartyJob(const std::string& job_id, const std::string& client_token);
  // UpdateActionType (owners AWS and ThirdParty, as the model allows):
  // ValidationException for a type of the built-in table (its definition is
  // fixed), ActionTypeNotFoundException otherwise.
  Status UpdateActionType(const nlohmann::json& declaration);
  // ListDeployActionExecutionTargets: the targets of a Deploy/Directory or
  // Deploy/S3 action execution (DeployActionExecutionTarget JSON).
  // ActionExecutionNotFoundException, PipelineNotFoundException.
  Result<std::vector<nlohmann::json>> DeployTargets(const std::string& pipeline,
                                                    const std::string& action_execution_id);

  // --- leases.cc: several servers on one PostgreSQL database (leases.h).
  // Off until EnableLeases: then this engine drives only the pipelines it
  // adopts, fences each commit with their lease epoch and the row versions
  // it read, answers reads of other pipelines from the store, and Recover()
  // recovers no pipeline (AdoptPipeline recovers each). Call before Recover.
  void EnableLeases(const std::string& server_id, double lease_seconds) EXCLUDES(mu_);
  // Starts driving `pipeline` at lease `epoch`: loads it from the store and
  // recovers it alone (runs that were running fail, retryable; jobs
  // survive; waiting executions carry on).
  Status AdoptPipeline(const std::string& pipeline, int64_t epoch) EXCLUDES(mu_);
  // Stops driving it: forgets its cached state and pending results.
  void DisownPipeline(const std::string& pipeline) EXCLUDES(mu_);
  // Pipeline -> epoch of the leases this engine drives.
  std::map<std::string, int64_t> DrivenPipelines() EXCLUDES(mu_);
  // Driven pipelines with an execution in progress.
  std::set<std::string> BusyPipelines() EXCLUDES(mu_);
  // "" when leases are off.
  std::string ServerId() EXCLUDES(mu_);

  // Test hook: waits until no action work is queued or running. False on timeout.
  bool WaitIdleForTest(double timeout_seconds);
  // Results whose decision awaits a successful commit (retried every tick).
  size_t PendingResultsForTest();
  // Results queued for the thread that is committing (group commit).
  size_t QueuedResultsForTest() EXCLUDES(finished_mu_) {
    MutexLock lock(finished_mu_);
    return finished_.size();
  }
  // Executions of `pipeline` held in memory (its working set; 0 if not loaded).
  size_t LoadedExecutionsForTest(const std::string& pipeline) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    auto it = pipelines_.find(pipeline);
    return it == pipelines_.end() ? 0 : it->second.executions.size();
  }
  // Runs retention's artifact sweep now; `after_scan` (if any) runs once the
  // referenced revisions are collected, before anything is removed.
  void SweepArtifactsForTest(const std::function<void()>& after_scan = {}) {
    SweepArtifacts(after_scan);
  }
  // Runs one tick now (approval expiry, job timers, pending results).
  void TickForTest() { Tick(); }
  // Makes every stored artifact older than the grace period a sweep candidate.
  void QueueStoredArtifactsForTest() { QueueStoredArtifacts(); }
  // Sweep candidates now, and those waiting to be looked at again.
  std::pair<size_t, size_t> ArtifactCandidatesForTest() EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return {artifact_candidates_.size(), artifact_young_.size()};
  }
  // Polls the followed sources now (Git branches, S3 objects);
  // `after_listing` (if any) runs once a triggered Git source's refs are
  // listed, before the poller looks at the pipeline again.
  void PollSourcesForTest(const std::function<void()>& after_listing = {}) {
    PollSources(after_listing);
  }

 private:
  class Ids;
  // An action's result whose decision could not be committed yet.
  struct PendingResult {
    std::string pipeline;
    core::ActionResult result;
  };

  // Model, structure, required configuration and data rules of a declaration
  // (CreatePipeline and UpdatePipeline).
  Status ValidateDeclaration(const core::PipelineDecl& d) const;

  // --- commit.cc: the pipeline cache, decide-and-commit, effects.
  // The cached state of a pipeline this engine drives (loaded on first use).
  // With leases, kUnavailable (NotDrivenHere) for a pipeline it does not drive.
  Result<core::PipelineState*> LoadLocked(const std::string& name) REQUIRES(mu_);
  // The pipeline as stored (never cached); records row versions with leases.
  Result<core::PipelineState> ReadStateLocked(const std::string& name) REQUIRES(mu_);
  // The same read touching no engine state (no lock needed): the versions of
  // the rows read go to `versions` when given.
  Result<core::PipelineState> ReadStoredState(const std::string& name,
                                              std::map<std::string, int64_t>* versions) const;
  // Only its head: the declaration, transitions and each stage's latest
  // execution id, without executions (two reads: the pipeline and its
  // runtime document). What history pages and single executions need.
  // `record`, when given, gets the pipeline's record read with it.
  Result<core::PipelineState> ReadStoredHead(const std::string& name,
                                             store::PipelineRecord* record = nullptr) const;
  // For reads: the cached state when driven here, else the stored one in
  // *scratch; with `execution_id`, that execution is loaded too (if stored).
  // `read`: what ReadIfDrivenElsewhere read before the lock, used (and
  // emptied) when the pipeline is still driven elsewhere.
  Result<const core::PipelineState*> ViewLocked(const std::string& name,
                                                core::PipelineState* scratch,
                                                const std::string& execution_id = "",
                                                std::optional<core::PipelineState>* read = nullptr)
      REQUIRES(mu_);
  // With several servers, a pipeline another server drives is read from the
  // store by every read call. This does that read without the engine mutex
  // (its dozen database round trips would hold up this server's own
  // pipelines), for the caller to pass to ViewLocked; empty when this server
  // drives the pipeline (or runs alone).
  Result<std::optional<core::PipelineState>> ReadIfDrivenElsewhere(
      const std::string& name, const std::string& execution_id = "") EXCLUDES(mu_);
  // With leases, whether another server drives `name` (this one does not).
  bool DrivenElsewhere(const std::string& name) EXCLUDES(mu_);
  bool DrivenElsewhereLocked(const std::string& name) const REQUIRES(mu_);
  // The same, reading only the head (ReadStoredHead): for reads that take
  // their executions from the store themselves (history pages, single
  // executions, rule runs), 2 database reads instead of the working set's 5.
  // `record`, when given, gets the pipeline's record if the head was read.
  Result<std::optional<core::PipelineState>> ReadHeadIfDrivenElsewhere(
      const std::string& name, store::PipelineRecord* record = nullptr) EXCLUDES(mu_);
  Status NotDrivenHere(const std::string& name) const REQUIRES(mu_);
  // Recover() for one loaded pipeline: fail interrupted runs, recreate
  // missing jobs, carry executions on, commit; then remove the interrupted
  // runs' files (RemoveRunFilesLater).
  Status RecoverPipelineLocked(core::PipelineState& ps, EpochSeconds now) REQUIRES(mu_);
  // Removes, on a worker thread, what runs `run_ids` left in the data
  // directory: their working directories (work/<run>, .in, .cb) and result
  // files (logs/<run>.log.status, .vars). Their logs stay: they are the runs'
  // record. For runs whose executor can no longer clean up (interrupted).
  void RemoveRunFilesLater(std::set<std::string> run_ids);
  // The action runs of `e` from the store, appended in start order; their
  // row versions recorded in `versions` when given.
  Status LoadRunsLocked(core::Execution& e, std::map<std::string, int64_t>* versions = nullptr)
      REQUIRES(mu_);
  Status LoadStoredRuns(core::Execution& e, std::map<std::string, int64_t>* versions) const;
  // The same for several executions (of one pipeline) in one store read
  // (Store::ListActionExecutionsOf); with a `stage`, only its runs.
  // The execution (its `pipeline` set) or run a row read with
  // store::Docs::kText holds, parsed through the kept documents; a row read
  // parsed is converted as it is.
  core::Execution ExecutionOf(const store::ExecutionRow& row, const std::string& pipeline) const;
  core::ActionRun RunOf(const store::ActionExecutionRow& row) const;
  Status LoadStoredRunsOf(const std::string& pipeline,
                          const std::vector<core::Execution*>& executions,
                          std::map<std::string, int64_t>* versions,
                          const std::string& stage = {}) const;
  // Reads one stored execution and its runs into `*out`; false when it does
  // not exist. Row versions go to `versions` when given.
  Result<bool> ReadStoredExecution(const std::string& pipeline, const std::string& id,
                                   core::Execution* out,
                                   std::map<std::string, int64_t>* versions) const;
  // EnsureExecutionLocked's read, touching no engine state.
  Status EnsureStoredExecution(core::PipelineState& p, const std::string& id,
                               std::map<std::string, int64_t>* versions) const;
  // Where the row versions of `p` are kept: the cached state of a pipeline
  // driven here with leases; else nullptr (nothing to record).
  std::map<std::string, int64_t>* VersionsOfLocked(const core::PipelineState& p) REQUIRES(mu_);
  // Brings execution `id` of `p` (and its rollback target) into memory if it
  // is stored but not loaded; OK also when it does not exist (the core call
  // that follows reports that). Store errors are returned.
  Status EnsureExecutionLocked(core::PipelineState& p, const std::string& id) REQUIRES(mu_);
  // Drops ended executions no decision needs (core::KeptExecutions) from
  // memory; called by the ticker, when no pointer into `p` is held.
  void TrimLocked(core::PipelineState& p) REQUIRES(mu_);
  // HistoryPage's parts: the page's declaration and runtime (transitions,
  // each stage's latest), from memory or `read`, under the mutex; then the
  // page's executions and runs from the store, without it (the store is
  // thread-safe and has every committed execution), and the pipeline's
  // record unless `out` has it (read with the head).
  Result<ExecutionPage> HistoryHeadLocked(const std::string& pipeline,
                                          std::optional<core::PipelineState>* read) REQUIRES(mu_);
  Status ReadHistoryPage(const std::string& pipeline, size_t max, const std::string& after,
                         const std::function<bool(const core::Execution&)>& keep, PageRuns runs,
                         ExecutionPage* page) const;
  Result<ExecutionPage> HistoryPageLocked(const std::string& pipeline, size_t max,
                                          const std::string& after,
                                          const std::function<bool(const core::Execution&)>& keep,
                                          PageRuns runs,
                                          std::optional<core::PipelineState>* read = nullptr)
      REQUIRES(mu_);
  // Persists what `out` changed in one transaction (with `extra`: new
  // version, idempotency tokens, job documents), then performs the effects.
  // On failure memory is dropped (reloaded from the store on next use) and
  // no effect is performed.
  Status CommitLocked(core::PipelineState& p, core::Outcome& out, store::Batch extra = {})
      REQUIRES(mu_);
  void PerformLocked(core::PipelineState& p, const core::Effect& fx) REQUIRES(mu_);
  // Hands `work` to `x` on a worker thread; its result reaches FinishRun.
  void StartWork(ActionExecutor* x, ActionWork work);
  // Fails the run from a worker thread (never under the mutex).
  void FailLater(const std::string& pipeline, const std::string& run_id, core::ActionResult r);
  // An action's work is done: decide and commit; when the commit fails the
  // result stays pending and the ticker retries it. Group commit: results
  // that arrive while another thread commits are queued, and that thread
  // commits them next, one transaction per pipeline (a parallel group's
  // actions that end together share a commit). The caller may then return
  // before its result is durable; the work queue counts it as busy until it
  // is, so WaitIdle still means "every result recorded".
  void FinishRun(const std::string& pipeline, const std::string& run_id,
                 const core::ActionResult& result) EXCLUDES(mu_, finished_mu_);
  struct FinishedRun {
    std::string pipeline;
    std::string run_id;
    core::ActionResult result;
  };
  // Decides on `runs` (in order), one commit per pipeline; the results of a
  // failed commit stay pending.
  void ApplyResultsLocked(const std::vector<FinishedRun>& runs) REQUIRES(mu_);
  // Decides on `results`, all of `pipeline`, in order (results of runs
  // abandoned or already finished are ignored), and commits them in one
  // transaction. Ok when there was nothing to commit.
  Status ApplyResultsLocked(const std::string& pipeline,
                            const std::vector<const FinishedRun*>& results) REQUIRES(mu_);
  void RetryPendingLocked() REQUIRES(mu_);
  ActionExecutor* ExecutorFor(const core::ActionDecl& a) const;
  bool IsJobAction(const core::ActionDecl& a) const;

  // --- rules.cc: stage condition rules (engine/rule_types.json).
  // Each rule's type, configuration and commands against the rule type table.
  // InvalidStageDeclarationException naming the stage, condition and rule.
  Status CheckRuleDeclarations(const core::PipelineDecl& d) const;
  // kStartRule / kAbandonRule effects.
  void PerformRuleLocked(core::PipelineState& p, const core::Effect& fx) REQUIRES(mu_);
  // DeploymentWindow rules in progress whose window opened succeed (ticker).
  void CheckDeploymentWindowsLocked(EpochSeconds now) REQUIRES(mu_);
  // After a restart: every rule in progress without an open job is evaluated
  // again (effects added to `out`).
  void RecoverRulesLocked(core::PipelineState& p, core::Outcome* out) REQUIRES(mu_);

  // --- retention.cc: history retention (EngineOptions::retention).
  const core::RetentionPolicy& RetentionFor(const std::string& pipeline) const;
  bool RetentionConfigured() const;
  // Deletes up to retention_batch executions the policies let go, from a few
  // pipelines per call (rotating); returns how many went. Their artifacts
  // become candidates for SweepArtifacts.
  size_t EnforceRetentionLocked(EpochSeconds now) REQUIRES(mu_);
  // Removes the candidate artifacts no stored execution or action run (nor a
  // pending result) refers to and older than the grace period. Reads the
  // store without the engine mutex.
  void SweepArtifacts(const std::function<void()>& after_scan = {}) EXCLUDES(mu_);
  // Every stored artifact older than the grace period becomes a candidate
  // (EngineOptions::retention_orphan_scan_seconds).
  void QueueStoredArtifacts() EXCLUDES(mu_);

  // --- ticker.cc: timers and the source poller.
  void TickerLoop();
  void Tick();
  void PollSources(const std::function<void()>& after_listing = {});

  // --- jobs.cc: the job queue.
  // Queues a job for `a` (resolved). kInvalidArgument, and no job, when a
  // Commands action's commands cannot be rewritten (core/shell_quote.h):
  // the caller fails the run with ConfigurationError.
  Status CreateJobLocked(const core::PipelineState& p, const core::Execution& e,
                         const core::ActionRun& r, const core::ActionDecl& a,
                         const std::string& continuation_token) REQUIRES(mu_);
  // Copies an external job's inputs to the bucket, then queues it.
  void PublishExternalJob(const std::string& job_id);
  Status SaveJobLocked(const Job& job) REQUIRES(mu_);
  void PutJobLocked(Job job) REQUIRES(mu_);  // Into jobs_ and the access key index.
  void EraseJobLocked(const std::string& job_id) REQUIRES(mu_);
  void LoadJobsLocked() REQUIRES(mu_);
  void NotifyJobQueuedLocked() REQUIRES(mu_);
  // The job, or JobNotFoundException. Requires mu_.
  Result<Job*> FindJobLocked(const std::string& job_id) REQUIRES(mu_);
  // Sets j's secret and session token: derived from job_key_ (own endpoint) or
  // the configured external bucket's; they are never stored with the job.
  void FillJobSecretsLocked(Job& j) REQUIRES(mu_);
  // Job documents of the open jobs of `run_id`, failed (abandoned), for a batch.
  void AbandonJobsLocked(const std::string& run_id, store::Batch* batch, std::vector<Job>* changed)
      REQUIRES(mu_);
  void JobTimersLocked(EpochSeconds now) REQUIRES(mu_);
  // Sets the summary of each InProgress run of `state` whose job no worker has
  // acknowledged yet (and that has no summary of its own) to
  // core::WaitingForWorkerSummary: GetPipelineState shows what to start.
  void AddJobWaitSummariesLocked(core::PipelineState& state) REQUIRES(mu_);

  // --- triggers.cc, webhooks.cc.
  // Rule 15: refused when `adding` more active executions would pass
  // max_concurrent_executions (QUEUED and PARALLEL pipelines only).
  Status CheckConcurrencyLimitLocked(const core::PipelineState& p, int adding = 1) const
      REQUIRES(mu_);
  // Starts `pipeline` with source action `action` at `commit`.
  Result<std::string> StartAtCommit(const std::string& pipeline, const std::string& action,
                                    const std::string& commit, const std::string& trigger_type,
                                    const std::string& detail);
  // At CreatePipeline: every branch and tag of each Git source with a V2
  // trigger as it is now, so the poller compares later changes with the
  // repository as the pipeline was created (a push made before its first poll
  // is not taken for the baseline). Failures leave that to the first poll.
  void RememberTriggerRefs(const core::PipelineDecl& d, const nlohmann::json& decl);
  // The poller for a Git source with a V2 trigger: every branch and tag.
  void PollTriggeredSource(const std::string& pipeline, const core::ActionDecl& a,
                           const core::TriggerDecl& trigger,
                           const std::function<void()>& after_listing);
  std::string WebhookUrl(const std::string& token) EXCLUDES(mu_);
  nlohmann::json WebhookItem(const nlohmann::json& doc) EXCLUDES(mu_);
  Mutex webhooks_mu_;  // Serializes read-modify-write of webhook documents.
  // RuleRunsPage: per pipeline, when it was created (a pipeline deleted and
  // made again, here or on another server, is another one), the newest
  // version looked at, and whether it or an older one declares a condition
  // (versions never change once written): a call reads only newer versions.
  struct ConditionsSeen {
    EpochSeconds created = 0;
    int version = 0;
    bool conditions = false;
  };
  Mutex conditions_mu_;
  std::map<std::string, ConditionsSeen> conditions_seen_ GUARDED_BY(conditions_mu_);

  store::Store& store_;
  const Clock& clock_;
  EngineOptions options_;
  std::unique_ptr<core::IdSource> ids_;
  EngineRunners runners_;
  std::unique_ptr<runner::Sandbox> sandbox_;
  runner::PathPolicy path_policy_;  // From options_; fixed after construction.
  std::unique_ptr<WorkQueue> queue_;
  // Built-in executors by "Category/Provider" (owner AWS).
  std::vector<std::unique_ptr<ActionExecutor>> executor_owners_;
  std::map<std::string, ActionExecutor*> executors_;

  Mutex mu_;  // Serializes every decision; guards the members below.
  std::map<std::string, core::PipelineState> pipelines_ GUARDED_BY(mu_);  // Loaded pipelines.
  std::map<std::string, PendingResult> pending_ GUARDED_BY(mu_);          // By run id.
  std::map<std::string, Job> jobs_ GUARDED_BY(mu_);                       // By job id.
  std::map<std::string, std::string> job_by_key_ GUARDED_BY(mu_);  // Access key id -> job id.
  bool jobs_loaded_ GUARDED_BY(mu_) = false;
  CondVar jobs_cv_;  // A job was queued.
  std::function<void()> on_job_queued_ GUARDED_BY(mu_);
  // Leases (leases.cc): this server's id ("" = off, the engine drives every
  // pipeline), the pipelines it drives with their epochs, row versions read.
  std::string server_id_ GUARDED_BY(mu_);
  // !server_id_.empty(), readable without mu_: reads check it before taking
  // the lock (set once, by EnableLeases at start-up).
  std::atomic<bool> leases_{false};
  // Set first thing in the destructor: long snapshots (Source/Directory) stop.
  std::atomic<bool> stopping_{false};
  double lease_seconds_ GUARDED_BY(mu_) = 10;
  std::map<std::string, int64_t> owned_ GUARDED_BY(mu_);
  std::map<std::string, std::map<std::string, int64_t>> row_versions_ GUARDED_BY(mu_);
  std::map<std::string, std::string> job_raw_ GUARDED_BY(mu_);  // Job documents as read.
  std::string job_key_
      GUARDED_BY(mu_);  // HMAC key of job credentials (kv server/job-credential-key).

  mutable Mutex types_mu_;  // Guards custom_types_.
  std::map<std::string, nlohmann::json> custom_types_
      GUARDED_BY(types_mu_);  // "Category/Provider/Version" -> doc.

  // Group commit (FinishRun): results waiting for the committing thread.
  // Never held while taking mu_.
  Mutex finished_mu_;
  std::vector<FinishedRun> finished_ GUARDED_BY(finished_mu_);
  bool committing_ GUARDED_BY(finished_mu_) = false;

  std::thread ticker_;
  std::string retention_cursor_ GUARDED_BY(mu_);               // Last pipeline looked at.
  std::set<std::string> artifact_candidates_ GUARDED_BY(mu_);  // Revisions to sweep.
  // The runs whose work/ entries were found at construction: a previous
  // process's, their files removed by Recover (RemoveRunFilesLater).
  std::set<std::string> left_runs_ GUARDED_BY(mu_);
  // Candidates a sweep found too young (or could not remove): candidates
  // again at artifact_young_due_ (a sweep reads every stored document, so
  // not at every tick).
  std::set<std::string> artifact_young_ GUARDED_BY(mu_);
  EpochSeconds artifact_young_due_ GUARDED_BY(mu_) = 0;
  size_t retention_deleted_ GUARDED_BY(mu_) = 0;  // By the last tick.
  ReadCache read_cache_;            // Own mutex; invalidated under mu_ with each change.
  StampedReadCache stamped_cache_;  // Own mutex; needs no invalidation.
  // Own mutexes; need no invalidation (an entry is used only for the same text).
  mutable DocCache<core::Execution> execution_docs_{kKeptExecutionDocs};
  mutable DocCache<core::ActionRun> run_docs_{kKeptRunDocs};
};

}  // namespace pw::engine
