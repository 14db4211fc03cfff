// The ticker's timer decisions, table by table: every job status probed just
// before, at and just after each deadline; approvals by execution and run
// state; every combination of the poller's inputs. No clock: times are plain
// numbers.

#include "core/timers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pw::core::timers_test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::string_view TimerName(JobTimer t) {
  switch (t) {
    case JobTimer::kNone:
      return "None";
    case JobTimer::kRequeue:
      return "Requeue";
    case JobTimer::kNoWorker:
      return "NoWorker";
    case JobTimer::kTimeOut:
      return "TimeOut";
    case JobTimer::kDelete:
      return "Delete";
  }
  return "?";
}

// ---------------------------------------------------------------------------
// Names.

struct NameRow {
  JobStatus status;
  std::string_view name;  // The service model's JobStatus enum value.
  bool open;
};

constexpr std::array<NameRow, 7> kNames = {{
    {JobStatus::kCreated, "Created", true},
    {JobStatus::kQueued, "Queued", true},
    {JobStatus::kDispatched, "Dispatched", true},
    {JobStatus::kInProgress, "InProgress", true},
    {JobStatus::kSucceeded, "Succeeded", false},
    {JobStatus::kFailed, "Failed", false},
    {JobStatus::kTimedOut, "TimedOut", false},
}};

TEST(JobStatusNames, AreTheModelsEnumValuesAndRoundTrip) {
  for (const NameRow& row : kNames) {
    SCOPED_TRACE(row.name);
    EXPECT_EQ(Name(row.status), row.name);
    EXPECT_EQ(ParseJobStatus(row.name), row.status);
    EXPECT_EQ(IsOpen(row.status), row.open);
  }
}

TEST(JobStatusNames, ParseRefusesAnythingElse) {
  for (std::string_view s : {"", "queued", "QUEUED", "Queued ", "In Progress", "Abandoned"}) {
    SCOPED_TRACE(s);
    EXPECT_EQ(ParseJobStatus(s), std::nullopt);
  }
}

// ---------------------------------------------------------------------------
// DecideJobTimer. One job whose four deadlines are far apart, probed half a
// second before, at and half a second after each of them; every status sees
// the same twelve probes.

constexpr JobTimerPolicy kPolicy{
    .dispatch_timeout_seconds = 60, .retention_seconds = 500, .worker_wait_seconds = 3700};
constexpr EpochSeconds kCreated = 900;        // Worker wait deadline: 4600.
constexpr EpochSeconds kDispatched = 1000;    // Requeue deadline: 1060.
constexpr EpochSeconds kAcknowledged = 2000;  // Timeout deadline: 2100 (job timeout 100).
constexpr EpochSeconds kEnded = 3000;         // Delete deadline: 3500.
constexpr double kJobTimeout = 100;

constexpr std::array<EpochSeconds, 12> kProbes = {
    1059.5, 1060, 1060.5,  // Dispatch deadline.
    2099.5, 2100, 2100.5,  // Result deadline.
    3499.5, 3500, 3500.5,  // Retention deadline.
    4599.5, 4600, 4600.5,  // Worker wait deadline.
};

struct TimerRow {
  JobStatus status;
  std::array<JobTimer, 12> expected;  // At each of kProbes.
};

void PrintTo(const TimerRow& row, std::ostream* os) { *os << Name(row.status); }

// Short names keep the table below readable.
constexpr JobTimer N = JobTimer::kNone;
constexpr JobTimer Rq = JobTimer::kRequeue;
constexpr JobTimer TO = JobTimer::kTimeOut;
constexpr JobTimer D = JobTimer::kDelete;
constexpr JobTimer NW = JobTimer::kNoWorker;

class JobTimerTable : public ::testing::TestWithParam<TimerRow> {};

TEST_P(JobTimerTable, StrictDeadlinesByStatus) {
  const TimerRow& row = GetParam();
  const JobTimes times{.status = row.status,
                       .created = kCreated,
                       .dispatched = kDispatched,
                       .acknowledged = kAcknowledged,
                       .ended = kEnded,
                       .timeout_seconds = kJobTimeout};
  for (size_t i = 0; i < kProbes.size(); ++i) {
    SCOPED_TRACE("now = " + std::to_string(kProbes[i]));
    EXPECT_EQ(TimerName(DecideJobTimer(times, kProbes[i], kPolicy)), TimerName(row.expected[i]));
  }
}

// One row per status, one column per probe, aligned by hand.
// clang-format off
INSTANTIATE_TEST_SUITE_P(
    EveryStatus, JobTimerTable,
    ::testing::Values(
        //                              dispatch        result          retention       worker wait
        //                              -0.5 at  +0.5   -0.5 at  +0.5   -0.5 at  +0.5   -0.5 at  +0.5
        TimerRow{JobStatus::kCreated,    {N,   N,  N,    N,   N,  N,    N,   N,  N,    N,   N,  NW}},
        TimerRow{JobStatus::kQueued,     {N,   N,  N,    N,   N,  N,    N,   N,  N,    N,   N,  NW}},
        TimerRow{JobStatus::kDispatched, {N,   N,  Rq,   Rq,  Rq, Rq,   Rq,  Rq, Rq,   Rq,  Rq, NW}},
        TimerRow{JobStatus::kInProgress, {N,   N,  N,    N,   N,  TO,   TO,  TO, TO,   TO,  TO, TO}},
        TimerRow{JobStatus::kSucceeded,  {N,   N,  N,    N,   N,  N,    N,   N,  D,    D,   D,  D}},
        TimerRow{JobStatus::kFailed,     {N,   N,  N,    N,   N,  N,    N,   N,  D,    D,   D,  D}},
        TimerRow{JobStatus::kTimedOut,   {N,   N,  N,    N,   N,  N,    N,   N,  D,    D,   D,  D}}),
    [](const ::testing::TestParamInfo<TimerRow>& row_info) {
      return std::string(Name(row_info.param.status));
    });
// clang-format on

TEST(JobTimers, FinishedJobWithoutEndTimeIsNeverDeleted) {
  for (JobStatus s : {JobStatus::kSucceeded, JobStatus::kFailed, JobStatus::kTimedOut}) {
    SCOPED_TRACE(Name(s));
    EXPECT_EQ(DecideJobTimer({.status = s, .ended = 0}, 1e9, kPolicy), JobTimer::kNone);
    EXPECT_EQ(DecideJobTimer({.status = s, .ended = 1}, 1e9, kPolicy), JobTimer::kDelete);
  }
}

TEST(JobTimers, WorkerWaitZeroOrUnknownCreationNeverFails) {
  const JobTimerPolicy never{.worker_wait_seconds = 0};
  for (JobStatus s : {JobStatus::kCreated, JobStatus::kQueued}) {
    SCOPED_TRACE(Name(s));
    EXPECT_EQ(DecideJobTimer({.status = s, .created = 1}, 1e9, never), JobTimer::kNone);
    EXPECT_EQ(DecideJobTimer({.status = s, .created = 0}, 1e9, kPolicy), JobTimer::kNone);
    EXPECT_EQ(DecideJobTimer({.status = s, .created = 1}, 1e9, kPolicy), JobTimer::kNoWorker);
  }
}

TEST(JobTimers, DefaultPolicyMatchesTheEngineDefaults) {
  const JobTimerPolicy policy;
  EXPECT_EQ(policy.dispatch_timeout_seconds, 60);
  EXPECT_EQ(policy.retention_seconds, 3600);
  EXPECT_EQ(policy.worker_wait_seconds, 3600);
  const JobTimes dispatched{.status = JobStatus::kDispatched, .dispatched = 100};
  EXPECT_EQ(DecideJobTimer(dispatched, 160, policy), JobTimer::kNone);
  EXPECT_EQ(DecideJobTimer(dispatched, 161, policy), JobTimer::kRequeue);
}

TEST(JobTimers, ZeroJobTimeoutTimesOutAsSoonAsTimePasses) {
  const JobTimes times{.status = JobStatus::kInProgress, .acknowledged = 100};
  EXPECT_EQ(DecideJobTimer(times, 100, kPolicy), JobTimer::kNone);
  EXPECT_EQ(DecideJobTimer(times, 100.25, kPolicy), JobTimer::kTimeOut);
}

TEST(JobTimedOutMessage, NamesTheJobAndWholeSeconds) {
  EXPECT_EQ(JobTimedOutMessage("job-1", 86400),
            "The job worker sent no result within 86400 seconds of acknowledging job job-1; "
            "retry the stage to run it again.");
  EXPECT_EQ(JobTimedOutMessage("j", 90.9),
            "The job worker sent no result within 90 seconds of acknowledging job j; "
            "retry the stage to run it again.");
}

TEST(WaitingForWorkerSummary, NamesTheCommandForTheType) {
  EXPECT_EQ(WaitingForWorkerSummary({"Deploy", "AWS", "CloudFormation", "1"}),
            "Waiting for a worker: run pipewright worker --action-type "
            "Deploy/AWS/CloudFormation/1 -- <program>");
  EXPECT_EQ(WaitingForWorkerSummary({"Build", "Custom", "MyWorker", "2"}),
            "Waiting for a worker: run pipewright worker --action-type Build/Custom/MyWorker/2 -- "
            "<program>");
  EXPECT_EQ(WaitingForWorkerSummary({"Test", "AWS", "Commands", "1"}),
            "Waiting for a worker: run pipewright worker --builtin");
}

TEST(NoWorkerMessage, NamesTheJobTheWaitAndTheCommand) {
  EXPECT_EQ(NoWorkerMessage("j1", {"Deploy", "AWS", "CloudFormation", "1"}, 2.5),
            "No job worker acknowledged job j1 within 2 seconds (serve --worker-wait-timeout). "
            "Waiting for a worker: run pipewright worker --action-type "
            "Deploy/AWS/CloudFormation/1 -- <program>, then retry the stage.");
}

// ---------------------------------------------------------------------------
// ExpiredApprovals. Timeout 100, now 1000: started at 900 is exactly due.

constexpr EpochSeconds kNow = 1000;
constexpr double kApprovalTimeout = 100;

// An open approval when `status` is InProgress and `token` is non-empty.
ActionRun MakeRun(std::string id, ActionStatus status, EpochSeconds started, std::string token) {
  ActionRun r;
  r.id = std::move(id);
  r.action = "Approve";
  r.status = status;
  r.started = started;
  r.token = std::move(token);
  return r;
}

Execution Exec(std::string id, ExecutionStatus status, std::vector<ActionRun> runs) {
  Execution e;
  e.id = std::move(id);
  e.status = status;
  e.runs = std::move(runs);
  return e;
}

TEST(ExpiredApprovals, DueAtExactlyTheTimeoutNotBefore) {
  PipelineState p;
  p.executions.push_back(Exec("e1", ExecutionStatus::kInProgress,
                              {MakeRun("under", ActionStatus::kInProgress, 900.5, "t1"),
                               MakeRun("at", ActionStatus::kInProgress, 900, "t2"),
                               MakeRun("over", ActionStatus::kInProgress, 899.5, "t3")}));
  EXPECT_THAT(ExpiredApprovals(p, kNow, kApprovalTimeout), ElementsAre("at", "over"));
}

TEST(ExpiredApprovals, InExecutionThenRunOrderForActiveExecutionsOnly) {
  PipelineState p;
  p.executions.push_back(Exec("running", ExecutionStatus::kInProgress,
                              {MakeRun("r2", ActionStatus::kInProgress, 0, "t"),
                               MakeRun("r1", ActionStatus::kInProgress, 0, "t")}));
  p.executions.push_back(Exec("stopping", ExecutionStatus::kStopping,
                              {MakeRun("s1", ActionStatus::kInProgress, 0, "t")}));
  for (ExecutionStatus inactive :
       {ExecutionStatus::kStopped, ExecutionStatus::kSucceeded, ExecutionStatus::kSuperseded,
        ExecutionStatus::kFailed, ExecutionStatus::kCancelled}) {
    p.executions.push_back(
        Exec(std::string(Name(inactive)), inactive,
             {MakeRun(std::string(Name(inactive)) + "-run", ActionStatus::kInProgress, 0, "t")}));
  }
  p.executions.push_back(Exec("later", ExecutionStatus::kInProgress,
                              {MakeRun("l1", ActionStatus::kInProgress, 0, "t")}));
  EXPECT_THAT(ExpiredApprovals(p, kNow, kApprovalTimeout), ElementsAre("r2", "r1", "s1", "l1"));
}

TEST(ExpiredApprovals, IgnoresRunsThatAreNotOpenApprovals) {
  PipelineState p;
  p.executions.push_back(Exec("e1", ExecutionStatus::kInProgress,
                              {
                                  MakeRun("no-token", ActionStatus::kInProgress, 0, ""),
                                  MakeRun("succeeded", ActionStatus::kSucceeded, 0, "t"),
                                  MakeRun("failed", ActionStatus::kFailed, 0, "t"),
                                  MakeRun("abandoned", ActionStatus::kAbandoned, 0, "t"),
                              }));
  EXPECT_THAT(ExpiredApprovals(p, kNow, kApprovalTimeout), IsEmpty());
  p.executions[0].runs.push_back(MakeRun("open", ActionStatus::kInProgress, 0, "t"));
  EXPECT_THAT(ExpiredApprovals(p, kNow, kApprovalTimeout), ElementsAre("open"));
}

// ---------------------------------------------------------------------------
// LastRanRevision.

ActionRun Source(std::string action, std::string revision) {
  ActionRun r = MakeRun("run-" + revision, ActionStatus::kSucceeded, 0, "");
  r.action = std::move(action);
  r.revision_id = std::move(revision);
  return r;
}

TEST(LastRanRevision, LastRunOfTheActionWithARevisionInAnyExecution) {
  PipelineState p;
  EXPECT_EQ(LastRanRevision(p, "Src"), "");
  p.executions.push_back(Exec("e1", ExecutionStatus::kSucceeded,
                              {Source("Src", "a"), Source("Other", "x"), Source("Src", "b")}));
  p.executions.push_back(Exec("e2", ExecutionStatus::kFailed,
                              {Source("Src", "c"), Source("Src", ""), Source("Other", "y")}));
  EXPECT_EQ(LastRanRevision(p, "Src"), "c");
  EXPECT_EQ(LastRanRevision(p, "Other"), "y");
  EXPECT_EQ(LastRanRevision(p, "Missing"), "");
}

// ---------------------------------------------------------------------------
// DecidePoll: every combination of seen (none / same as head / other) and
// last_ran (empty / same as head / other), plus a stored empty revision.

struct PollRow {
  std::string_view name;
  std::optional<std::string> seen;
  std::string last_ran;
  bool start;
  std::optional<std::string> remember;
};

void PrintTo(const PollRow& row, std::ostream* os) { *os << row.name; }

class DecidePollTable : public ::testing::TestWithParam<PollRow> {};

TEST_P(DecidePollTable, StartsOnlyWhenTheBranchMovedFromAKnownBaseline) {
  const PollRow& row = GetParam();
  const PollDecision d = DecidePoll(row.seen, row.last_ran, "head");
  EXPECT_EQ(d.start, row.start);
  EXPECT_EQ(d.remember, row.remember);
}

const std::optional<std::string> kNothing = std::nullopt;

INSTANTIATE_TEST_SUITE_P(
    AllCombinations, DecidePollTable,
    ::testing::Values(
        // Nothing seen yet: the last run is the baseline.
        PollRow{"NoneSeen_NeverRan_RemembersOnly", kNothing, "", false, "head"},
        PollRow{"NoneSeen_RanHead_RemembersOnly", kNothing, "head", false, "head"},
        PollRow{"NoneSeen_RanOther_Starts", kNothing, "old", true, "head"},
        // Seen the head: nothing to do, whatever ran.
        PollRow{"SeenHead_NeverRan_Nothing", "head", "", false, kNothing},
        PollRow{"SeenHead_RanHead_Nothing", "head", "head", false, kNothing},
        PollRow{"SeenHead_RanOther_Nothing", "head", "old", false, kNothing},
        // Seen another revision: the branch moved, whatever ran.
        PollRow{"SeenOther_NeverRan_Starts", "old", "", true, "head"},
        PollRow{"SeenOther_RanHead_Starts", "old", "head", true, "head"},
        PollRow{"SeenOther_RanOther_Starts", "old", "older", true, "head"},
        // A stored empty revision counts as seen but not as a baseline.
        PollRow{"SeenEmpty_NeverRan_RemembersOnly", "", "", false, "head"},
        PollRow{"SeenEmpty_RanHead_Nothing", "", "head", false, kNothing},
        PollRow{"SeenEmpty_RanOther_Starts", "", "old", true, "head"}),
    [](const ::testing::TestParamInfo<PollRow>& row_info) {
      return std::string(row_info.param.name);
    });

// ---------------------------------------------------------------------------
// PolledSourceOf: which sources the poller follows, by type and by
// PollForSourceChanges (absent = poll, as AWS defaults).

struct PolledRow {
  std::string_view name;
  ActionTypeId type;
  std::optional<std::string> poll;  // PollForSourceChanges, if declared.
  PolledSource want;
};

void PrintTo(const PolledRow& row, std::ostream* os) { *os << row.name; }

class PolledSourceTable : public ::testing::TestWithParam<PolledRow> {};

TEST_P(PolledSourceTable, PollsGitAndS3SourcesUnlessPollForSourceChangesIsFalse) {
  const PolledRow& row = GetParam();
  ActionDecl a;
  a.name = "Src";
  a.type = row.type;
  if (row.poll) a.configuration["PollForSourceChanges"] = *row.poll;
  EXPECT_EQ(PolledSourceOf(a), row.want);
}

const ActionTypeId kGitSource{"Source", "AWS", "Git", "1"};
const ActionTypeId kS3Source{"Source", "AWS", "S3", "1"};

INSTANTIATE_TEST_SUITE_P(
    ByTypeAndFlag, PolledSourceTable,
    ::testing::Values(
        PolledRow{"Git_Absent_Polled", kGitSource, std::nullopt, PolledSource::kGit},
        PolledRow{"Git_True_Polled", kGitSource, "true", PolledSource::kGit},
        PolledRow{"Git_False_NotPolled", kGitSource, "false", PolledSource::kNone},
        PolledRow{"S3_Absent_Polled", kS3Source, std::nullopt, PolledSource::kS3},
        PolledRow{"S3_True_Polled", kS3Source, "true", PolledSource::kS3},
        PolledRow{"S3_CapitalTrue_Polled", kS3Source, "True", PolledSource::kS3},
        PolledRow{"S3_False_NotPolled", kS3Source, "false", PolledSource::kNone},
        PolledRow{"S3_CapitalFalse_NotPolled", kS3Source, "FALSE", PolledSource::kNone},
        PolledRow{"DirectorySource_NotPolled",
                  {"Source", "AWS", "Directory", "1"},
                  std::nullopt,
                  PolledSource::kNone},
        PolledRow{
            "S3Deploy_NotPolled", {"Deploy", "AWS", "S3", "1"}, std::nullopt, PolledSource::kNone},
        PolledRow{"CustomS3_NotPolled",
                  {"Source", "Custom", "S3", "1"},
                  std::nullopt,
                  PolledSource::kNone}),
    [](const ::testing::TestParamInfo<PolledRow>& row_info) {
      return std::string(row_info.param.name);
    });

TEST(S3RevisionId, IsTheVersionIdOrTheETagWhenTheStoreNamesNoVersion) {
  EXPECT_EQ(S3RevisionId("3HL4kqtJlcpXroDTDmJ", "9b2cf535f27731c974343645a3985328"),
            "3HL4kqtJlcpXroDTDmJ");
  EXPECT_EQ(S3RevisionId("", "9b2cf535f27731c974343645a3985328"),
            "9b2cf535f27731c974343645a3985328");
  EXPECT_EQ(S3RevisionId("null", "9b2cf535f27731c974343645a3985328"),
            "9b2cf535f27731c974343645a3985328");
}

}  // namespace
}  // namespace pw::core::timers_test
