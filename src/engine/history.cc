// History read straight from the store by index (issue 15): pages of
// executions newest first and single executions, so a list costs the same at
// 10^2 and 10^5 past executions and the engine keeps only its working set
// (commit.cc LoadLocked) in memory.

#include <algorithm>
#include <map>
#include <set>

#include "engine/decl_json.h"
#include "engine/engine.h"
#include "engine/state_json.h"

namespace pw::engine {

namespace {

Status InvalidToken() {
  return InvalidArgument("The nextToken is no longer valid; start the listing again.",
                         "InvalidNextTokenException");
}

}  // namespace

Result<ExecutionPage> Engine::HistoryPage(const std::string& pipeline, size_t max,
                                          const std::string& after,
                                          const std::function<bool(const core::Execution&)>& keep,
                                          PageRuns runs) {
  // Driven elsewhere: the head (and the record) from the store; the page
  // reads its executions.
  store::PipelineRecord record;
  PW_ASSIGN_OR_RETURN(auto read, ReadHeadIfDrivenElsewhere(pipeline, &record));
  const bool read_head = read.has_value();
  ExecutionPage page;
  {
    MutexLock lock(mu_);
    PW_ASSIGN_OR_RETURN(page, HistoryHeadLocked(pipeline, &read));
  }
  // The record goes with the head it was read with: not if this server has
  // taken the pipeline on meanwhile (then the head came from memory, and
  // ReadHistoryPage reads the record).
  if (read_head && !read.has_value()) page.snap.record = std::move(record);
  // The page itself comes from the store, without the engine mutex: up to
  // `max` execution documents and their runs parsed, which would hold up
  // every pipeline's progress (and, at a server that does not drive the
  // pipeline, serialise its concurrent reads behind one another).
  PW_RETURN_IF_ERROR(ReadHistoryPage(pipeline, max, after, keep, runs, &page));
  if (runs != PageRuns::kNone) {
    MutexLock lock(mu_);
    AddJobWaitSummariesLocked(page.snap.state);
  }
  return page;
}

Result<ExecutionPage> Engine::HistoryPageLocked(
    const std::string& pipeline, size_t max, const std::string& after,
    const std::function<bool(const core::Execution&)>& keep, PageRuns runs,
    std::optional<core::PipelineState>* read) {
  PW_ASSIGN_OR_RETURN(ExecutionPage page, HistoryHeadLocked(pipeline, read));
  PW_RETURN_IF_ERROR(ReadHistoryPage(pipeline, max, after, keep, runs, &page));
  if (runs != PageRuns::kNone) AddJobWaitSummariesLocked(page.snap.state);
  return page;
}

Result<ExecutionPage> Engine::HistoryHeadLocked(const std::string& pipeline,
                                                std::optional<core::PipelineState>* read) {
  core::PipelineState scratch;  // Driven by another server: read from the store.
  PW_ASSIGN_OR_RETURN(const core::PipelineState* p, ViewLocked(pipeline, &scratch, "", read));
  ExecutionPage page;
  page.snap.state.decl = p->decl;
  page.snap.state.transitions = p->transitions;
  page.snap.state.stage_latest = p->stage_latest;
  return page;
}

Status Engine::ReadHistoryPage(const std::string& pipeline, size_t max, const std::string& after,
                               const std::function<bool(const core::Execution&)>& keep,
                               PageRuns runs, ExecutionPage* out) const {
  ExecutionPage& page = *out;
  if (page.snap.record.name.empty()) {  // Unless read with the head (driven elsewhere).
    PW_ASSIGN_OR_RETURN(page.snap.record, store_.GetPipeline(pipeline, std::nullopt));
  }
  std::vector<core::Execution> found;  // Newest first.
  std::string cursor = after;
  const size_t chunk = max >= 200 ? 200 : std::max<size_t>(max + 1, 10);
  while (!page.more) {
    // The documents' text: those read before are not parsed again.
    auto rows = store_.ListExecutionsPage(pipeline, chunk, cursor, store::Docs::kText);
    if (!rows.ok()) {
      if (rows.status().code() == StatusCode::kNotFound) return InvalidToken();
      return rows.status();
    }
    for (auto& row : *rows) {
      core::Execution e = ExecutionOf(row, pipeline);
      if (keep && !keep(e)) continue;
      if (found.size() == max) {
        page.more = true;
        break;
      }
      found.push_back(std::move(e));
    }
    if (rows->size() < chunk) break;
    cursor = rows->back().id;
  }
  core::PipelineState& st = page.snap.state;
  const bool with_runs = runs != PageRuns::kNone;
  if (with_runs) {  // One read for the page's runs, not one per execution.
    std::vector<core::Execution*> listed;
    for (core::Execution& e : found) listed.push_back(&e);
    // Only the first stage's: the other stages' run documents are neither
    // read nor parsed (a pipeline of N actions: N times fewer).
    const core::PipelineDecl& decl = page.snap.state.decl;  // From the head.
    const std::string stage = runs == PageRuns::kFirstStage && !decl.stages.empty()
                                  ? decl.stages.front().name
                                  : std::string();
    PW_RETURN_IF_ERROR(LoadStoredRunsOf(pipeline, listed, nullptr, stage));
  }
  for (auto it = found.rbegin(); it != found.rend(); ++it) {
    page.ids.push_back(it->id);
    st.executions.push_back(std::move(*it));
  }
  std::reverse(page.ids.begin(), page.ids.end());
  if (with_runs) {
    // A rollback execution reports its target's source revisions.
    std::vector<std::string> targets;
    for (const auto& e : st.executions) {
      if (!e.rollback_target.empty() && st.FindExecution(e.rollback_target) == nullptr) {
        targets.push_back(e.rollback_target);
      }
    }
    for (const auto& id : targets) {
      if (st.FindExecution(id) != nullptr) continue;
      PW_ASSIGN_OR_RETURN(auto row, store_.GetExecution(pipeline, id));
      if (!row) continue;
      core::Execution e = ExecutionOf(*row, pipeline);
      PW_RETURN_IF_ERROR(LoadStoredRuns(e, nullptr));
      st.executions.insert(st.executions.begin(), std::move(e));
    }
  }
  return Status::Ok();
}

namespace {

// Whether a stage of the declaration has a condition (of any kind).
bool DeclaresConditions(const core::PipelineDecl& d) {
  for (const auto& stage : d.stages) {
    for (core::ConditionKind kind :
         {core::ConditionKind::kBeforeEntry, core::ConditionKind::kOnSuccess,
          core::ConditionKind::kOnFailure}) {
      if (!stage.Conditions(kind).empty()) return true;
    }
  }
  return false;
}

}  // namespace

Result<RuleRunPage> Engine::RuleRunsPage(const std::string& pipeline, size_t max,
                                         const std::optional<RuleRunPosition>& after) {
  RuleRunPage page;
  {
    store::PipelineRecord record;  // Read with the head when driven elsewhere.
    PW_ASSIGN_OR_RETURN(auto read, ReadHeadIfDrivenElsewhere(pipeline, &record));  // (All.)
    const bool read_head = read.has_value();
    MutexLock lock(mu_);
    core::PipelineState scratch;  // Driven by another server: read from the store.
    PW_ASSIGN_OR_RETURN(const core::PipelineState* p, ViewLocked(pipeline, &scratch, "", &read));
    if (read_head && !read.has_value()) {  // The head read was used (see HistoryPage).
      page.snap.record = std::move(record);
    } else {
      PW_ASSIGN_OR_RETURN(page.snap.record, store_.GetPipeline(pipeline, std::nullopt));
    }
    page.snap.state.decl = p->decl;
    page.snap.state.transitions = p->transitions;
    page.snap.state.stage_latest = p->stage_latest;
  }
  // Rule runs come only from conditions: none in any version, nothing to read.
  const int version = page.snap.record.version;
  bool conditions = DeclaresConditions(page.snap.state.decl);
  int seen = 0;  // Versions up to this one were looked at before.
  {
    MutexLock lock(conditions_mu_);
    auto it = conditions_seen_.find(pipeline);
    if (it != conditions_seen_.end() && it->second.created == page.snap.record.created &&
        it->second.version <= version) {
      seen = it->second.version;
      conditions = conditions || it->second.conditions;
    }
  }
  for (int v = version - 1; v > seen && !conditions; --v) {
    auto old = store_.GetPipeline(pipeline, v);
    if (!old.ok()) {
      if (old.status().code() == StatusCode::kNotFound) continue;
      return old.status();
    }
    conditions = DeclaresConditions(DeclFromJson(old->declaration));
  }
  {
    MutexLock lock(conditions_mu_);
    conditions_seen_[pipeline] = {page.snap.record.created, version, conditions};
  }
  if (!conditions || max == 0) return page;

  // The best max + 1 positions so far (the extra one says whether more
  // follow), and the executions they belong to.
  struct Found {
    RuleRunPosition at;
    std::string execution;
  };
  std::vector<Found> best;
  std::map<std::string, core::Execution> holders;
  auto prune = [&] {
    std::set<std::string> used;
    for (const auto& f : best) used.insert(f.execution);
    std::erase_if(holders, [&used](const auto& h) { return !used.count(h.first); });
  };
  // Rows per read: a small page reads few executions past its own.
  const size_t chunk = std::clamp<size_t>(max + 1, 16, 64);
  EpochSeconds cursor_updated = 0;
  std::string cursor_id;
  for (bool done = false; !done;) {
    PW_ASSIGN_OR_RETURN(auto rows,
                        store_.ListExecutionsByUpdate(pipeline, chunk, cursor_updated, cursor_id));
    for (auto& row : rows) {
      if (best.size() > max && best.back().at.started > row.updated) {
        done = true;  // Every run left started no later than row.updated.
        break;
      }
      // Started after the position: so did its rule runs; none is on this page.
      if (after && row.started > after->started) continue;
      core::Execution e = ExecutionOf(row, pipeline);
      bool used = false;
      for (const core::RuleRun& r : e.rule_runs) {
        const RuleRunPosition at{r.started, r.id};
        if (after && !RuleRunBefore(*after, at)) continue;
        if (best.size() > max && !RuleRunBefore(at, best.back().at)) continue;
        auto it = std::upper_bound(
            best.begin(), best.end(), at,
            [](const RuleRunPosition& x, const Found& f) { return RuleRunBefore(x, f.at); });
        best.insert(it, Found{at, e.id});
        if (best.size() > max + 1) best.pop_back();
        used = true;
      }
      if (used) holders[e.id] = std::move(e);
    }
    if (holders.size() > 2 * (max + 1)) prune();
    if (rows.size() < chunk) break;
    cursor_updated = rows.back().updated;
    cursor_id = rows.back().id;
  }
  page.more = best.size() > max;
  if (page.more) best.pop_back();
  prune();
  for (const auto& f : best) page.runs.emplace_back(f.execution, f.at.id);
  for (auto& [id, e] : holders) page.snap.state.executions.push_back(std::move(e));
  return page;
}

Result<Snapshot> Engine::ExecutionSnapshot(const std::string& pipeline, const std::string& id) {
  // Driven elsewhere: `id` is read with the working set, before the lock.
  PW_ASSIGN_OR_RETURN(auto read, ReadIfDrivenElsewhere(pipeline, id));
  Snapshot snap;
  std::optional<core::Execution> wanted;  // `id`, and its rollback target, from memory.
  std::optional<core::Execution> target;
  std::string target_id;
  {
    MutexLock lock(mu_);
    core::PipelineState scratch;  // Driven by another server: read from the store.
    PW_ASSIGN_OR_RETURN(const core::PipelineState* p, ViewLocked(pipeline, &scratch, "", &read));
    PW_ASSIGN_OR_RETURN(snap.record, store_.GetPipeline(pipeline, std::nullopt));
    snap.state.decl = p->decl;
    snap.state.transitions = p->transitions;
    snap.state.stage_latest = p->stage_latest;
    if (const core::Execution* e = p->FindExecution(id)) {
      wanted = *e;
      target_id = e->rollback_target;
      if (const core::Execution* t = target_id.empty() ? nullptr : p->FindExecution(target_id)) {
        target = *t;
      }
    }
  }
  // An execution outside the working set has ended: what the store has is
  // all there is, read without the engine mutex (every pipeline's progress
  // waits for it; a poller of an unknown id would hold it up at every call).
  if (!wanted) {
    core::Execution e;
    PW_ASSIGN_OR_RETURN(bool found, ReadStoredExecution(pipeline, id, &e, nullptr));
    if (!found) {
      return NotFound("Pipeline execution " + id + " was not found in pipeline " + pipeline +
                          "; list them with list-pipeline-executions.",
                      "PipelineExecutionNotFoundException");
    }
    target_id = e.rollback_target;
    wanted = std::move(e);
  }
  if (!target_id.empty() && !target) {
    // Committed state, as memory holds it (every change is committed first).
    core::Execution t;
    PW_ASSIGN_OR_RETURN(bool found, ReadStoredExecution(pipeline, target_id, &t, nullptr));
    if (found) target = std::move(t);
  }
  if (target) snap.state.executions.push_back(std::move(*target));  // The target first.
  snap.state.executions.push_back(std::move(*wanted));
  MutexLock lock(mu_);
  AddJobWaitSummariesLocked(snap.state);
  return snap;
}

}  // namespace pw::engine
