// History retention (issue 15): the ticker deletes old ended executions in
// small batches (each batch of a pipeline one store transaction) with their
// action runs, rule runs (inside the execution document) and logs; then,
// outside the engine mutex, artifacts no remaining execution refers to.
// Which executions go is core::SelectForRetention over
// core::KeptExecutions: never an active one, a stage's latest (retryable, so
// its input artifacts stay), the newest, nor a rollback target in use.

#include "core/retention.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <system_error>

#include "common/log.h"
#include "engine/engine.h"
#include "engine/state_json.h"
#include "runner/artifact_store.h"

namespace pw::engine {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Pipelines looked at per tick (each costs a COUNT over its index).
constexpr size_t kPipelinesPerTick = 20;
// Retention keeps what decisions need and the newest execution (memory's
// "recent few" are a cache, not a need).
constexpr size_t kRecentKept = 1;

// Every string in `j` that is an artifact revision (64 lower-case hex digits).
void CollectRevisions(const json& j, std::set<std::string>* out) {
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    if (runner::IsArtifactRevision(s)) out->insert(s);
  } else if (j.is_structured()) {
    for (const auto& v : j) CollectRevisions(v, out);
  }
}

}  // namespace

const core::RetentionPolicy& Engine::RetentionFor(const std::string& pipeline) const {
  auto it = options_.retention_by_pipeline.find(pipeline);
  return it != options_.retention_by_pipeline.end() ? it->second : options_.retention;
}

bool Engine::RetentionConfigured() const {
  if (options_.retention.enabled()) return true;
  for (const auto& [name, policy] : options_.retention_by_pipeline) {
    if (policy.enabled()) return true;
  }
  return false;
}

size_t Engine::EnforceRetentionLocked(EpochSeconds now) {
  if (!RetentionConfigured() || pipelines_.empty()) return 0;
  size_t budget = options_.retention_batch;
  size_t deleted = 0;
  auto it = pipelines_.upper_bound(retention_cursor_);
  for (size_t visited = 0; visited < std::min(kPipelinesPerTick, pipelines_.size()) && budget > 0;
       ++visited) {
    if (it == pipelines_.end()) it = pipelines_.begin();
    const std::string name = it->first;
    core::PipelineState& p = it->second;
    ++it;
    retention_cursor_ = name;
    // Several servers: only the owner deletes (its lease was renewed within
    // the last third of its term; the row deletes carry no fence).
    if (DrivenElsewhereLocked(name)) continue;
    const core::RetentionPolicy& policy = RetentionFor(name);
    if (!policy.enabled()) continue;
    auto total = store_.CountExecutions(name);
    if (!total.ok()) continue;
    if (policy.max_age_days <= 0 && *total <= policy.max_executions) continue;
    const std::set<std::string> keep = core::KeptExecutions(p, kRecentKept);
    auto rows = store_.ListOldestExecutions(name, budget + keep.size() + 1);
    if (!rows.ok()) continue;
    std::vector<core::RetentionCandidate> candidates;
    std::map<std::string, core::Execution> docs;
    for (const auto& row : *rows) {
      core::Execution e = ExecutionFromDoc(row.doc);
      candidates.push_back({row.id, e.status, e.updated > 0 ? e.updated : row.updated});
      docs.emplace(row.id, std::move(e));
    }
    std::vector<std::string> doomed =
        core::SelectForRetention(candidates, *total, keep, policy, now, budget);
    if (doomed.empty()) continue;
    // What goes with them: action runs (their logs), rule runs (logs too),
    // the artifacts they refer to (removed later if nothing else does).
    std::vector<std::string> logs;
    std::set<std::string> revisions;
    bool listed = true;
    for (const auto& id : doomed) {
      auto runs = store_.ListActionExecutions(name, id);
      if (!runs.ok()) {
        listed = false;
        break;
      }
      for (const auto& r : *runs) {
        logs.push_back(r.id);
        CollectRevisions(r.doc, &revisions);
      }
      const core::Execution& e = docs[id];
      for (const auto& rr : e.rule_runs) logs.push_back(rr.id);
      for (const auto& [artifact, revision] : e.artifacts) {
        if (runner::IsArtifactRevision(revision)) revisions.insert(revision);
      }
    }
    if (!listed) continue;
    if (Status s = store_.DeleteExecutions(name, doomed); !s.ok()) {
      PW_LOG(Warning) << "retention of " << name << " waits for the next tick: " << s.ToString();
      continue;
    }
    if (!server_id_.empty()) {
      // Logs shipped to the database (several servers); one server's logs
      // are files, removed below.
      if (Status s = store_.DeleteActionLogs(doomed); !s.ok()) {
        PW_LOG(Warning) << "retention of " << name << " left shipped logs: " << s.ToString();
      }
    }
    const std::set<std::string> gone(doomed.begin(), doomed.end());
    std::erase_if(p.executions, [&gone](const core::Execution& e) { return gone.count(e.id); });
    read_cache_.Invalidate(name);
    for (const auto& run_id : logs) {
      std::error_code ec;
      fs::remove(LogPath(run_id), ec);
    }
    artifact_candidates_.insert(revisions.begin(), revisions.end());
    PW_LOG(Info).Field("pipeline", name).Field("executions", static_cast<int64_t>(doomed.size()))
        << "retention removed " << doomed.size() << " execution(s) of " << name;
    deleted += doomed.size();
    budget -= std::min(budget, doomed.size());
  }
  return deleted;
}

void Engine::QueueStoredArtifacts() {
  if (options_.data_dir.empty()) return;
  std::vector<std::string> old =
      runners_.artifacts->ListOlderThan(options_.retention_artifact_grace_seconds);
  MutexLock lock(mu_);
  artifact_candidates_.insert(old.begin(), old.end());
}

void Engine::SweepArtifacts(const std::function<void()>& after_scan) {
  std::set<std::string> candidates;
  {
    MutexLock lock(mu_);
    candidates.swap(artifact_candidates_);
  }
  if (candidates.empty() || options_.data_dir.empty()) return;
  // Every revision a stored execution or action run still names, read
  // without the mutex (store reads are thread-safe). An artifact made
  // meanwhile is younger than the grace period, so it is never removed.
  const EpochSeconds started = clock_.Now();
  std::set<std::string> referenced;
  auto pipelines = store_.ListPipelines();
  if (!pipelines.ok()) {
    MutexLock lock(mu_);
    artifact_candidates_.insert(candidates.begin(), candidates.end());  // Next time.
    return;
  }
  for (const auto& rec : *pipelines) {
    std::string cursor;
    for (;;) {
      auto rows = store_.ListExecutionsPage(rec.name, 200, cursor, store::Docs::kParsed);
      if (!rows.ok()) break;  // Deleted meanwhile (or an error: keep what it named).
      for (const auto& row : *rows) CollectRevisions(row.doc, &referenced);
      if (rows->size() < 200) break;
      cursor = rows->back().id;
    }
    if (auto runs = store_.ListActionExecutions(rec.name, ""); runs.ok()) {
      for (const auto& r : *runs) CollectRevisions(r.doc, &referenced);
    } else {
      MutexLock lock(mu_);
      artifact_candidates_.insert(candidates.begin(), candidates.end());
      return;
    }
  }
  {
    // Results not yet committed name their outputs only in memory.
    MutexLock lock(mu_);
    for (const auto& [run_id, pending] : pending_) {
      for (const auto& [artifact, revision] : pending.result.outputs) referenced.insert(revision);
    }
  }
  if (after_scan) after_scan();
  using Removal = runner::ArtifactStore::Removal;
  const double grace = options_.retention_artifact_grace_seconds;
  size_t removed = 0;
  size_t mirror_removed = 0;
  std::vector<std::string> young;
  for (const auto& revision : candidates) {
    if (referenced.count(revision)) continue;
    // Atomic with the store's Puts: an action that produced the same content
    // again since the scan above (its result not recorded yet) made it young.
    Removal local = runners_.artifacts->RemoveIfOlderThan(revision, grace);
    if (local == Removal::kYoung || local == Removal::kFailed) {
      young.push_back(revision);  // Looked at again by a later sweep.
      continue;
    }
    if (local == Removal::kRemoved) ++removed;
    // Several servers: the shared bucket's copy too, once no server has
    // relied on it for the grace period (runner::MirrorLedger).
    switch (runners_.artifacts->RemoveMirrorCopyIfOlderThan(revision, grace)) {
      case Removal::kRemoved:
        ++mirror_removed;
        break;
      case Removal::kYoung:
      case Removal::kFailed:
        young.push_back(revision);
        break;
      case Removal::kAbsent:
        break;
    }
  }
  if (!young.empty()) {
    // Looked at again once a good part of the grace period has passed.
    MutexLock lock(mu_);
    if (artifact_young_.empty()) {
      artifact_young_due_ = clock_.Now() + std::max(1.0, grace / 4);
    }
    artifact_young_.insert(young.begin(), young.end());
  }
  if (removed > 0) {
    PW_LOG(Info).Field("artifacts", static_cast<int64_t>(removed))
        << "retention removed " << removed << " unreferenced artifact(s) (scan from " << started
        << ")";
  }
  if (mirror_removed > 0) {
    PW_LOG(Info).Field("artifacts", static_cast<int64_t>(mirror_removed))
        << "retention removed " << mirror_removed
        << " unreferenced artifact(s) from the shared artifact bucket";
  }
}

}  // namespace pw::engine
