#include "core/retention.h"

#include <map>

namespace pw::core {

std::set<std::string> KeptExecutions(const PipelineState& p, size_t recent) {
  std::set<std::string> keep;
  for (const auto& [stage, id] : p.stage_latest) keep.insert(id);
  std::map<int, std::string> ended_inbound;         // Stage index -> newest.
  std::map<std::string, std::string> last_success;  // Stage -> newest non-rollback success.
  for (const auto& e : p.executions) {              // Start order: later ones overwrite.
    if (e.Active()) keep.insert(e.id);
    if (!e.in_stage &&
        (e.status == ExecutionStatus::kStopped || e.status == ExecutionStatus::kFailed)) {
      ended_inbound[e.stage_index] = e.id;
    }
    if (e.execution_type == ExecutionType::kRollback) continue;
    for (const auto& sr : e.stages) {
      if (sr.status == StageStatus::kSucceeded) last_success[sr.stage] = e.id;
    }
  }
  for (const auto& [index, id] : ended_inbound) keep.insert(id);
  for (const auto& [stage, id] : last_success) keep.insert(id);
  for (size_t i = 0; i < recent && i < p.executions.size(); ++i) {
    keep.insert(p.executions[p.executions.size() - 1 - i].id);
  }
  // What the kept ones refer to (a rollback reports its target's revisions).
  std::set<std::string> targets;
  for (const auto& e : p.executions) {
    if (keep.count(e.id) && !e.rollback_target.empty()) targets.insert(e.rollback_target);
  }
  keep.insert(targets.begin(), targets.end());
  return keep;
}

std::vector<std::string> SelectForRetention(const std::vector<RetentionCandidate>& oldest_first,
                                            int64_t total, const std::set<std::string>& keep,
                                            const RetentionPolicy& policy, EpochSeconds now,
                                            size_t batch) {
  std::vector<std::string> out;
  if (!policy.enabled()) return out;
  const EpochSeconds cutoff = now - policy.max_age_days * 86400.0;
  for (size_t i = 0; i < oldest_first.size() && out.size() < batch; ++i) {
    const RetentionCandidate& c = oldest_first[i];
    // Position from the newest: the oldest row is number `total`.
    const int64_t from_newest = total - static_cast<int64_t>(i);
    if (from_newest <= 1) break;  // The newest execution always stays.
    const bool over_count = policy.max_executions > 0 && from_newest > policy.max_executions;
    const bool too_old = policy.max_age_days > 0 && c.updated < cutoff;
    if (!over_count && !too_old) continue;
    if (c.status == ExecutionStatus::kInProgress || c.status == ExecutionStatus::kStopping) {
      continue;
    }
    if (keep.count(c.id)) continue;
    out.push_back(c.id);
  }
  return out;
}

}  // namespace pw::core
