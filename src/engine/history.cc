// History read straight from the store by index (issue 15): pages of
// executions newest first and single executions, so a list costs the same at
// 10^2 and 10^5 past executions and the engine keeps only its working set
// (commit.cc LoadLocked) in memory.

#include <algorithm>

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
                                          bool with_runs) {
  MutexLock lock(mu_);
  return HistoryPageLocked(pipeline, max, after, keep, with_runs);
}

Result<ExecutionPage> Engine::HistoryPageLocked(
    const std::string& pipeline, size_t max, const std::string& after,
    const std::function<bool(const core::Execution&)>& keep, bool with_runs) {
  core::PipelineState scratch;  // Driven by another server: read from the store.
  PW_ASSIGN_OR_RETURN(const core::PipelineState* p, ViewLocked(pipeline, &scratch));
  PW_ASSIGN_OR_RETURN(auto rec, store_.GetPipeline(pipeline, std::nullopt));
  ExecutionPage page;
  page.snap.record = std::move(rec);
  page.snap.state.decl = p->decl;
  page.snap.state.transitions = p->transitions;
  page.snap.state.stage_latest = p->stage_latest;
  std::vector<core::Execution> found;  // Newest first.
  std::string cursor = after;
  const size_t chunk = max >= 200 ? 200 : std::max<size_t>(max + 1, 10);
  while (!page.more) {
    auto rows = store_.ListExecutionsPage(pipeline, chunk, cursor);
    if (!rows.ok()) {
      if (rows.status().code() == StatusCode::kNotFound) return InvalidToken();
      return rows.status();
    }
    for (auto& row : *rows) {
      core::Execution e = ExecutionFromDoc(row.doc);
      if (e.pipeline.empty()) e.pipeline = pipeline;
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
  for (auto it = found.rbegin(); it != found.rend(); ++it) {
    page.ids.push_back(it->id);
    if (with_runs) PW_RETURN_IF_ERROR(LoadRunsLocked(*it));
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
      core::Execution e = ExecutionFromDoc(row->doc);
      if (e.pipeline.empty()) e.pipeline = pipeline;
      PW_RETURN_IF_ERROR(LoadRunsLocked(e));
      st.executions.insert(st.executions.begin(), std::move(e));
    }
    AddJobWaitSummariesLocked(st);
  }
  return page;
}

Result<Snapshot> Engine::ExecutionSnapshot(const std::string& pipeline, const std::string& id) {
  MutexLock lock(mu_);
  core::PipelineState scratch;  // Driven by another server: read from the store.
  PW_ASSIGN_OR_RETURN(const core::PipelineState* p, ViewLocked(pipeline, &scratch));
  PW_ASSIGN_OR_RETURN(auto rec, store_.GetPipeline(pipeline, std::nullopt));
  Snapshot snap{std::move(rec), {}};
  snap.state.decl = p->decl;
  snap.state.transitions = p->transitions;
  snap.state.stage_latest = p->stage_latest;
  auto add = [&](const std::string& want) -> Result<bool> {
    mu_.AssertHeld();  // Called below, under the lock.
    if (const core::Execution* e = p->FindExecution(want)) {
      snap.state.executions.push_back(*e);
      return true;
    }
    PW_ASSIGN_OR_RETURN(auto row, store_.GetExecution(pipeline, want));
    if (!row) return false;
    core::Execution e = ExecutionFromDoc(row->doc);
    if (e.pipeline.empty()) e.pipeline = pipeline;
    PW_RETURN_IF_ERROR(LoadRunsLocked(e));
    snap.state.executions.push_back(std::move(e));
    return true;
  };
  PW_ASSIGN_OR_RETURN(bool exists, add(id));
  if (!exists) {
    return NotFound("Pipeline execution " + id + " was not found in pipeline " + pipeline +
                        "; list them with list-pipeline-executions.",
                    "PipelineExecutionNotFoundException");
  }
  const std::string target = snap.state.executions.front().rollback_target;
  if (!target.empty()) {
    PW_ASSIGN_OR_RETURN(bool has_target, add(target));
    if (has_target) std::swap(snap.state.executions.front(), snap.state.executions.back());
  }
  AddJobWaitSummariesLocked(snap.state);
  return snap;
}

}  // namespace pw::engine
