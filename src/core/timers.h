#pragma once

// Timer decisions the engine's ticker makes every second, as pure functions of
// the state and `now`: jobs dispatched but never acknowledged go back to the
// queue, jobs no worker acknowledged within the worker wait fail, acknowledged
// jobs without a result time out, finished jobs are deleted after a retention
// period, manual approvals expire, and the source poller decides whether a Git
// branch or an S3 object moved. No I/O, no clock (time is
// passed in), no threads. Thread-safe.
//
//   switch (DecideJobTimer(times, now, policy)) {
//     case JobTimer::kRequeue: ...  // Queued again, with a new nonce.
//     case JobTimer::kNoWorker: ... // TimedOut; fail the run with NoWorkerMessage().
//     case JobTimer::kTimeOut: ...  // TimedOut; fail the run with JobTimedOutMessage().
//     case JobTimer::kDelete: ...   // Forget the job.
//     case JobTimer::kNone: break;
//   }
//   for (const std::string& run : ExpiredApprovals(state, now, timeout)) ...
//   PollDecision d = DecidePoll(seen, LastRanRevision(state, action), head);

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "core/execution.h"

namespace pw::core {

// A job's status, as the service model's JobStatus enum spells it.
enum class JobStatus {
  kCreated,     // In the model only; Pipewright creates jobs Queued.
  kQueued,      // Waiting for a worker's PollForJobs.
  kDispatched,  // Handed to a worker; waiting for its AcknowledgeJob.
  kInProgress,  // Acknowledged; waiting for its result.
  kSucceeded,   // PutJobSuccessResult.
  kFailed,      // PutJobFailureResult.
  kTimedOut,    // Acknowledged, but no result within its timeout.
};

// "Created", "Queued", "Dispatched", "InProgress", "Succeeded", "Failed",
// "TimedOut". ParseJobStatus is its inverse (exact, case-sensitive match);
// nullopt for any other string.
std::string_view Name(JobStatus s);
std::optional<JobStatus> ParseJobStatus(std::string_view s);

// True while the job may still produce a result: Created, Queued, Dispatched
// or InProgress.
bool IsOpen(JobStatus s);

// The times of one job that its timers count from. 0 = not happened (yet).
struct JobTimes {
  JobStatus status = JobStatus::kQueued;
  EpochSeconds created = 0;       // Queued (a follow-up job of a continuation: its own time).
  EpochSeconds dispatched = 0;    // Last handed to a worker.
  EpochSeconds acknowledged = 0;  // Acknowledged by that worker.
  EpochSeconds ended = 0;         // Became Succeeded, Failed or TimedOut.
  double timeout_seconds = 0;     // The job's own result timeout, counted from `acknowledged`.
};

// What the ticker must do with a job now.
enum class JobTimer {
  kNone,      // Nothing yet.
  kRequeue,   // Dispatched too long without an acknowledgement: Queued again, new nonce.
  kNoWorker,  // No worker acknowledged it within the worker wait: TimedOut, its run fails.
  kTimeOut,   // InProgress too long without a result: TimedOut, and its action run fails.
  kDelete,    // Finished longer ago than the retention period: delete it.
};

struct JobTimerPolicy {
  double dispatch_timeout_seconds = 60;  // From dispatch to acknowledgement.
  double retention_seconds = 3600;       // From the end of a finished job to its deletion.
  // From creation to an acknowledgement (serve --worker-wait-timeout); 0 = wait forever.
  double worker_wait_seconds = 3600;
};

// Decides, by status (each deadline is strict: a job exactly at it is kNone):
//   Created, Queued, Dispatched (never acknowledged, for every job type):
//                kNoWorker once now - created > policy.worker_wait_seconds, unless
//                that is 0 or `created` is 0 (unknown); this comes first;
//   Dispatched:  kRequeue once now - dispatched > policy.dispatch_timeout_seconds;
//   InProgress:  kTimeOut once now - acknowledged > times.timeout_seconds;
//   Succeeded, Failed, TimedOut: kDelete once now - ended > policy.retention_seconds,
//                but never while `ended` is 0 (unknown, e.g. a job stored before
//                end times were recorded: stamp it before it can be collected);
//   Created, Queued: otherwise kNone.
JobTimer DecideJobTimer(const JobTimes& times, EpochSeconds now, const JobTimerPolicy& policy);

// The error message of the action run whose job timed out, e.g. "The job
// worker sent no result within 86400 seconds of acknowledging job <id>; retry
// the stage to run it again." (seconds truncated to an integer).
std::string JobTimedOutMessage(std::string_view job_id, double timeout_seconds);

// What an action whose job waits for a worker says (its summary in
// GetPipelineState) and how to start one:
// "Waiting for a worker: run pipewright worker --action-type
// Deploy/AWS/CloudFormation/1 -- <program>"; for AWS's Commands (a server
// without local runners) "... run pipewright worker --builtin".
std::string WaitingForWorkerSummary(const ActionTypeId& type);

// The error message of an action run whose job no worker acknowledged in
// time: "No job worker acknowledged job <id> within <n> seconds (serve
// --worker-wait-timeout). " + WaitingForWorkerSummary(type) + ", then retry
// the stage." (seconds truncated to an integer).
std::string NoWorkerMessage(std::string_view job_id, const ActionTypeId& type, double wait_seconds);

// The error message of an approval run that expired.
inline constexpr std::string_view kApprovalTimedOutMessage =
    "The approval timed out without a response.";

// The ids of the open manual approvals that have waited at least
// `timeout_seconds` (now - started >= timeout_seconds): InProgress runs with a
// non-empty token, of active (InProgress or Stopping) executions only; in
// execution order, then run order. Fail each with kApprovalTimedOutMessage
// (CompleteAction), then Advance.
std::vector<std::string> ExpiredApprovals(const PipelineState& p, EpochSeconds now,
                                          double timeout_seconds);

// The revision the pipeline last ran for source action `action`: the
// revision_id of the last run named `action` that has one, in execution order
// then run order, whatever the run's or execution's status, in any stage.
// "" if none.
std::string LastRanRevision(const PipelineState& p, std::string_view action);

// Which source poller follows an action (PollSources).
enum class PolledSource {
  kNone,  // Not polled: not a polled source type, or PollForSourceChanges is false.
  kGit,   // Source/Git: the head of its branch.
  kS3,    // Source/S3: the version id (or ETag) of its object.
};

// kGit or kS3 for an AWS-owned Source action of provider Git or S3 whose
// PollForSourceChanges is absent (AWS's default is to poll) or anything but
// "false" (any case); kNone otherwise.
PolledSource PolledSourceOf(const ActionDecl& a);

// The revision id of an S3 source object, as the Source/S3 action reports it
// and its poller compares it: the version id, or the ETag (without quotes)
// when the store names no version ("" or "null": an unversioned bucket).
std::string S3RevisionId(std::string_view version_id, std::string_view etag);

// What the source poller does after resolving a followed branch's head.
struct PollDecision {
  bool start = false;                   // Start an execution (PollForSourceChanges).
  std::optional<std::string> remember;  // Store this as the poller's seen revision.
};

// `seen`: the revision the poller stored last time (nullopt if none);
// `last_ran`: LastRanRevision() for the action; `head`: the branch head now.
// The baseline is `seen`, or `last_ran` when `seen` is absent or empty.
//   baseline == head: remember head only if nothing was stored; don't start.
//   otherwise:        remember head, and start unless the baseline is empty
//                     (never seen and never ran: only remember, then wait).
PollDecision DecidePoll(const std::optional<std::string>& seen, const std::string& last_ran,
                        const std::string& head);

}  // namespace pw::core
