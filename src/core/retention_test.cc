#include "core/retention.h"

#include <gtest/gtest.h>

namespace pw::core::retention_test {
namespace {

using S = ExecutionStatus;

std::vector<RetentionCandidate> Rows(const std::vector<std::pair<std::string, S>>& rows,
                                     EpochSeconds updated = 0) {
  std::vector<RetentionCandidate> out;
  for (const auto& [id, status] : rows) out.push_back({id, status, updated});
  return out;
}

TEST(SelectForRetentionTest, ByCountTheOldestBeyondTheLimitGo) {
  auto rows = Rows({{"e1", S::kSucceeded},
                    {"e2", S::kFailed},
                    {"e3", S::kSucceeded},
                    {"e4", S::kSucceeded},
                    {"e5", S::kSucceeded}});
  RetentionPolicy keep3{3, 0};
  EXPECT_EQ(SelectForRetention(rows, 5, {}, keep3, 0, 100), (std::vector<std::string>{"e1", "e2"}));
  // Only the oldest rows were read (total counts them all): positions still count from the newest.
  EXPECT_EQ(SelectForRetention(Rows({{"e1", S::kSucceeded}}), 5, {}, keep3, 0, 100),
            (std::vector<std::string>{"e1"}));
  EXPECT_TRUE(SelectForRetention(rows, 5, {}, RetentionPolicy{5, 0}, 0, 100).empty());
  EXPECT_TRUE(SelectForRetention(rows, 5, {}, RetentionPolicy{}, 0, 100).empty())
      << "no policy, nothing goes";
}

TEST(SelectForRetentionTest, ActiveKeptAndTheBatchBoundIsHonoured) {
  auto rows = Rows({{"e1", S::kInProgress},
                    {"e2", S::kStopping},
                    {"e3", S::kStopped},
                    {"e4", S::kSuperseded},
                    {"e5", S::kCancelled},
                    {"e6", S::kSucceeded}});
  EXPECT_EQ(SelectForRetention(rows, 6, {"e4"}, RetentionPolicy{1, 0}, 0, 100),
            (std::vector<std::string>{"e3", "e5"}))
      << "never active, never kept ones";
  EXPECT_EQ(SelectForRetention(rows, 6, {}, RetentionPolicy{1, 0}, 0, 2),
            (std::vector<std::string>{"e3", "e4"}));
}

TEST(SelectForRetentionTest, ByAgeButNeverTheNewest) {
  const EpochSeconds now = 100 * 86400.0;
  std::vector<RetentionCandidate> rows = {{"old", S::kSucceeded, now - 10 * 86400.0},
                                          {"young", S::kSucceeded, now - 3600},
                                          {"newest-old", S::kFailed, now - 20 * 86400.0}};
  EXPECT_EQ(SelectForRetention(rows, 3, {}, RetentionPolicy{0, 7}, now, 100),
            (std::vector<std::string>{"old"}))
      << "the newest execution stays however old";
  // Count and age combine: either one selects.
  EXPECT_EQ(SelectForRetention(rows, 3, {}, RetentionPolicy{1, 7}, now, 100),
            (std::vector<std::string>{"old", "young"}));
}

Execution Exec(const std::string& id, S status) {
  Execution e;
  e.id = id;
  e.status = status;
  e.in_stage = true;
  return e;
}

TEST(KeptExecutionsTest, ActiveLatestInboundSuccessTargetsAndRecent) {
  PipelineState p;
  Execution target = Exec("target", S::kSucceeded);
  target.stages.push_back({});
  target.stages.back().stage = "Deploy";
  target.stages.back().status = StageStatus::kSucceeded;
  p.executions.push_back(target);
  p.executions.push_back(Exec("old", S::kSucceeded));
  Execution failed = Exec("failed", S::kFailed);  // The Build stage's latest: retryable.
  p.executions.push_back(failed);
  Execution waited = Exec("waited", S::kStopped);  // Stopped in front of stage 2.
  waited.in_stage = false;
  waited.stage_index = 2;
  p.executions.push_back(waited);
  Execution rollback = Exec("rollback", S::kInProgress);
  rollback.execution_type = ExecutionType::kRollback;
  rollback.rollback_target = "target";
  p.executions.push_back(rollback);
  p.executions.push_back(Exec("middle", S::kSucceeded));
  p.executions.push_back(Exec("newest", S::kSucceeded));
  p.stage_latest["Build"] = "failed";
  auto keep = KeptExecutions(p, 1);
  EXPECT_EQ(keep, (std::set<std::string>{"target", "failed", "waited", "rollback", "newest"}));
  EXPECT_TRUE(KeptExecutions(p, 3).count("middle"));
}

}  // namespace
}  // namespace pw::core::retention_test
