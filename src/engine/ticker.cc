// The ticker: once a second it retries results whose commit failed, runs the
// job timers (requeue, time out, remove ended jobs), expires approvals, and
// every source_poll_seconds polls followed Git branches and S3 objects. An
// exception here is logged and the ticker carries on: it must never end the
// server.

#include <exception>
#include <filesystem>
#include <optional>
#include <utility>

#include "common/ids.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "core/timers.h"
#include "engine/engine.h"
#include "engine/git_connections.h"
#include "engine/helpers.h"
#include "engine/internal.h"
#include "engine/triggers.h"
#include "runner/git_source.h"
#include "runner/object_store.h"

namespace pw::engine {

namespace fs = std::filesystem;

void Engine::TickerLoop() {
  NameThisThread("pw-ticker");
  double since_poll = 0;
  double since_sweep = 0;
  double since_orphan_scan = 0;
  while (!queue_->WaitStopped(1.0)) {
    try {
      Tick();
    } catch (const std::exception& ex) {
      PW_LOG(Error) << "engine tick failed: " << ex.what();
    }
    // Artifacts of deleted executions: once a backlog is worked off, else
    // once a minute (a sweep reads every stored document).
    since_sweep += 1;
    since_orphan_scan += 1;
    if (options_.retention_orphan_scan_seconds > 0 &&
        since_orphan_scan >= options_.retention_orphan_scan_seconds && RetentionConfigured()) {
      since_orphan_scan = 0;
      try {
        QueueStoredArtifacts();
      } catch (const std::exception& ex) {
        PW_LOG(Error) << "artifact scan failed: " << ex.what();
      }
    }
    bool sweep = false;
    {
      MutexLock lock(mu_);
      sweep = !artifact_candidates_.empty() && (retention_deleted_ == 0 || since_sweep >= 60);
    }
    if (sweep) {
      since_sweep = 0;
      try {
        SweepArtifacts();
      } catch (const std::exception& ex) {
        PW_LOG(Error) << "artifact sweep failed: " << ex.what();
      }
    }
    since_poll += 1;
    if (options_.source_poll_seconds > 0 && since_poll >= options_.source_poll_seconds) {
      since_poll = 0;
      try {
        PollSources();
      } catch (const std::exception& ex) {
        PW_LOG(Error) << "source poll failed: " << ex.what();
      }
    }
  }
}

void Engine::Tick() {
  MutexLock lock(mu_);
  const EpochSeconds now = clock_.Now();
  RetryPendingLocked();
  JobTimersLocked(now);
  retention_deleted_ = EnforceRetentionLocked(now);
  if (!artifact_young_.empty() && now >= artifact_young_due_) {
    artifact_candidates_.insert(artifact_young_.begin(), artifact_young_.end());
    artifact_young_.clear();
  }
  CheckDeploymentWindowsLocked(now);
  // Approvals without an answer in time fail. By name: a failed commit drops
  // the pipeline from pipelines_ (the next tick decides again).
  std::vector<std::string> names;
  for (const auto& [name, state] : pipelines_) names.push_back(name);
  for (const auto& name : names) {
    auto it = pipelines_.find(name);
    if (it == pipelines_.end()) continue;
    core::PipelineState& p = it->second;
    TrimLocked(p);  // Ended executions no decision needs leave memory (issue 15).
    core::Outcome out;
    for (const auto& run_id : core::ExpiredApprovals(p, now, options_.approval_timeout_seconds)) {
      (void)core::CompleteAction(p, run_id, Failure(std::string(core::kApprovalTimedOutMessage)),
                                 now, &out);
    }
    if (out.changed_executions.empty()) continue;
    core::Advance(p, now, *ids_, &out);
    if (Status s = CommitLocked(p, out); !s.ok()) {
      PW_LOG(Warning) << "approval timeouts of " << name << " wait for the next tick";
    }
  }
}

void Engine::PollSources(const std::function<void()>& after_listing) {
  // Start an execution when a followed source moves: a Git branch's head, or
  // an S3 object's version id (ETag without versioning). Reading the sources
  // happens without the mutex.
  std::vector<std::string> names;
  if (auto all = store_.ListPipelines(); all.ok()) {
    for (const auto& rec : *all) names.push_back(rec.name);
  }
  // The source's current revision, or nullopt when it cannot be read now.
  auto current = [this](const core::ActionDecl& a,
                        core::PolledSource kind) -> std::optional<std::string> {
    if (kind == core::PolledSource::kGit) {  // Git, CodeCommit, connections.
      auto remote = ResolveGitRemote(options_.git_connections, a);
      if (!remote.ok() || remote->url.empty()) return std::nullopt;  // Fails when it runs.
      runner::GitAuth auth;
      if (!remote->token_file.empty()) {
        auto token = ReadGitToken(remote->token_file);
        if (!token.ok()) return std::nullopt;
        auth = {remote->username, *token};
      }
      auto head = runners_.git->ResolveHead(remote->url, remote->branch, auth);
      if (!head.ok()) return std::nullopt;
      return head->commit_id;
    }
    const std::string bucket = ConfigValue(a, "S3Bucket");
    const std::string key = ConfigValue(a, "S3ObjectKey");
    // Values with variables are resolved only when an execution runs.
    if (bucket.empty() || key.empty() || (bucket + key).find("#{") != std::string::npos) {
      return std::nullopt;
    }
    auto head = runners_.objects->Head(bucket, key);
    if (!head.ok()) {
      PW_LOG(Debug) << "source poller cannot read s3://" << bucket << "/" << key << ": "
                    << head.status().ToString();
      return std::nullopt;
    }
    return core::S3RevisionId(head->version_id, head->etag);
  };
  struct Followed {
    core::ActionDecl action;
    core::PolledSource kind;
    // The revision the pipeline last ran, read with the state: the baseline
    // when the poller has remembered none. Read here, while this server
    // drives the pipeline; a second read after the source's (slow) head
    // would fail once a lease was lost meanwhile, and an empty baseline
    // takes the new head for the old one: the change would never start.
    std::string last_ran;
  };
  for (const auto& name : names) {
    std::vector<Followed> sources;
    // Git sources with a V2 trigger follow every branch and tag (triggers.cc).
    std::vector<core::TriggerDecl> triggers;
    if (auto rec = store_.GetPipeline(name, std::nullopt); rec.ok()) {
      triggers = TriggersOf(rec->declaration);
    }
    std::vector<std::pair<core::ActionDecl, core::TriggerDecl>> triggered;
    {
      MutexLock lock(mu_);
      auto p = LoadLocked(name);
      if (!p.ok() || (*p)->decl.stages.empty()) continue;
      for (const auto& a : (*p)->decl.stages[0].actions) {
        if (const core::TriggerDecl* t = TriggerFor(triggers, a.name); t && IsGitSource(a)) {
          triggered.emplace_back(a, *t);
          continue;
        }
        // Git-family sources follow a branch (PollForSourceChanges, or a
        // connection's DetectChanges); S3 sources an object.
        core::PolledSource kind = FollowsBranch(a) ? core::PolledSource::kGit
                                  : core::PolledSourceOf(a) == core::PolledSource::kS3
                                      ? core::PolledSource::kS3
                                      : core::PolledSource::kNone;
        if (kind == core::PolledSource::kS3 && !runners_.objects) continue;  // Nothing to read.
        if (kind != core::PolledSource::kNone) {
          sources.push_back({a, kind, core::LastRanRevision(**p, a.name)});
        }
      }
    }
    for (const auto& [a, trigger] : triggered) PollTriggeredSource(name, a, trigger, after_listing);
    for (const Followed& f : sources) {
      const core::ActionDecl& a = f.action;
      std::optional<std::string> head = current(a, f.kind);
      if (!head) continue;
      const std::string key = "poll/" + name + "/" + a.name;
      auto seen = store_.GetKv(key);
      if (!seen.ok()) continue;
      // Baseline: the last revision seen by the poller, else the last one
      // the pipeline ran (core::DecidePoll).
      core::PollDecision d = core::DecidePoll(*seen, f.last_ran, *head);
      if (d.remember && !store_.PutKv(key, *d.remember).ok()) continue;  // Next poll.
      if (!d.start) continue;
      PW_LOG(Info) << "source changed for " << name << "/" << a.name << ": starting";
      auto started = StartExecution(name, "", "Pipewright source poller", "PollForSourceChanges");
      if (!started.ok()) {
        // Forget the new revision again, so the next poll tries the start again.
        PW_LOG(Warning) << "source poller could not start " << name << ": "
                        << started.status().ToString();
        (void)(seen->has_value() ? store_.PutKv(key, **seen) : store_.DeleteKv(key));
      }
    }
  }
}

void Engine::JobTimersLocked(EpochSeconds now) {
  LoadJobsLocked();
  const core::JobTimerPolicy policy{options_.job_dispatch_timeout_seconds,
                                    options_.job_retention_seconds, options_.worker_wait_seconds};
  std::vector<std::string> ended;
  for (auto& [id, job] : jobs_) {
    const core::JobTimes times{job.status,       job.created, job.dispatched,
                               job.acknowledged, job.ended,   job.timeout_seconds};
    const core::JobTimer timer = core::DecideJobTimer(times, now, policy);
    switch (timer) {
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
      case core::JobTimer::kNoWorker:
      case core::JobTimer::kTimeOut: {
        // No worker took it, or one took it but sent no result in time: the
        // job and its run fail in one transaction (tried again next tick if
        // it cannot be committed).
        const std::string message =
            timer == core::JobTimer::kNoWorker
                ? core::NoWorkerMessage(job.id, job.type, options_.worker_wait_seconds)
                : core::JobTimedOutMessage(job.id, job.timeout_seconds);
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
        } else if (core::CompleteAction(**p, job.run_id, Failure(message), now, &out).ok()) {
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

}  // namespace pw::engine
