#pragma once

// Which executions a pipeline must keep, in memory and on disk (issue 15).
// Pure functions over core::PipelineState; the engine loads only the
// executions KeptExecutions names (not the whole history) and the ticker's
// retention deletes only what SelectForRetention picks.
//
//   std::set<std::string> keep = core::KeptExecutions(state, 5);
//   auto doomed = core::SelectForRetention(oldest_first, total, keep, policy, now, 100);

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "core/execution.h"

namespace pw::core {

// The executions decisions and GetPipelineState need, among those in `p`:
// every active one (InProgress, Stopping); each stage's latest (only it may be
// retried, so a retryable Failed execution and its input artifacts stay);
// per stage index the newest one stopped or failed while waiting in front of
// it (rules 28-29); per stage the newest non-rollback execution that
// succeeded in it (rule 61's automatic rollback target); the rollback targets
// of those; and the `recent` newest executions.
std::set<std::string> KeptExecutions(const PipelineState& p, size_t recent);

// How much history a pipeline keeps. Zero means no limit of that kind.
struct RetentionPolicy {
  int64_t max_executions = 0;  // Keep at most this many (the newest).
  double max_age_days = 0;     // Remove ended executions last updated longer ago.
  bool enabled() const { return max_executions > 0 || max_age_days > 0; }
};

// One stored execution as retention sees it.
struct RetentionCandidate {
  std::string id;
  ExecutionStatus status = ExecutionStatus::kInProgress;
  EpochSeconds updated = 0;
};

// The ids to delete now, oldest first, at most `batch`: among `oldest_first`
// (the pipeline's oldest stored executions, in start order) those beyond
// `policy`'s count (counting from the newest of `total` stored executions)
// or older than its age, that have ended (never InProgress or Stopping) and
// are not in `keep`. The newest stored execution is never selected: `total`
// counts it, and with `oldest_first` holding all rows it is the last one.
std::vector<std::string> SelectForRetention(const std::vector<RetentionCandidate>& oldest_first,
                                            int64_t total, const std::set<std::string>& keep,
                                            const RetentionPolicy& policy, EpochSeconds now,
                                            size_t batch);

}  // namespace pw::core
