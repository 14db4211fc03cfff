#include "core/timers.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace pw::core {
namespace {

constexpr std::array<std::pair<JobStatus, std::string_view>, 7> kJob = {{
    {JobStatus::kCreated, "Created"},
    {JobStatus::kQueued, "Queued"},
    {JobStatus::kDispatched, "Dispatched"},
    {JobStatus::kInProgress, "InProgress"},
    {JobStatus::kSucceeded, "Succeeded"},
    {JobStatus::kFailed, "Failed"},
    {JobStatus::kTimedOut, "TimedOut"},
}};

}  // namespace

std::string_view Name(JobStatus s) {
  for (const auto& [k, name] : kJob) {
    if (k == s) return name;
  }
  return "";
}

std::optional<JobStatus> ParseJobStatus(std::string_view s) {
  for (const auto& [k, name] : kJob) {
    if (name == s) return k;
  }
  return std::nullopt;
}

bool IsOpen(JobStatus s) {
  switch (s) {
    case JobStatus::kCreated:
    case JobStatus::kQueued:
    case JobStatus::kDispatched:
    case JobStatus::kInProgress:
      return true;
    case JobStatus::kSucceeded:
    case JobStatus::kFailed:
    case JobStatus::kTimedOut:
      return false;
  }
  return false;
}

JobTimer DecideJobTimer(const JobTimes& times, EpochSeconds now, const JobTimerPolicy& policy) {
  const bool unacknowledged = times.status == JobStatus::kCreated ||
                              times.status == JobStatus::kQueued ||
                              times.status == JobStatus::kDispatched;
  if (unacknowledged && policy.worker_wait_seconds > 0 && times.created > 0 &&
      now - times.created > policy.worker_wait_seconds) {
    return JobTimer::kNoWorker;
  }
  switch (times.status) {
    case JobStatus::kCreated:
    case JobStatus::kQueued:
      return JobTimer::kNone;
    case JobStatus::kDispatched:
      return now - times.dispatched > policy.dispatch_timeout_seconds ? JobTimer::kRequeue
                                                                      : JobTimer::kNone;
    case JobStatus::kInProgress:
      return now - times.acknowledged > times.timeout_seconds ? JobTimer::kTimeOut
                                                              : JobTimer::kNone;
    case JobStatus::kSucceeded:
    case JobStatus::kFailed:
    case JobStatus::kTimedOut:
      return times.ended > 0 && now - times.ended > policy.retention_seconds ? JobTimer::kDelete
                                                                             : JobTimer::kNone;
  }
  return JobTimer::kNone;
}

std::string JobTimedOutMessage(std::string_view job_id, double timeout_seconds) {
  return "The job worker sent no result within " +
         std::to_string(static_cast<long long>(timeout_seconds)) +
         " seconds of acknowledging job " + std::string(job_id) +
         "; retry the stage to run it again.";
}

std::string WaitingForWorkerSummary(const ActionTypeId& type) {
  if (type.owner == "AWS" && type.provider == "Commands") {
    return "Waiting for a worker: run pipewright worker --builtin";
  }
  return "Waiting for a worker: run pipewright worker --action-type " + type.ToString() +
         " -- <program>";
}

std::string NoWorkerMessage(std::string_view job_id, const ActionTypeId& type,
                            double wait_seconds) {
  return "No job worker acknowledged job " + std::string(job_id) + " within " +
         std::to_string(static_cast<long long>(wait_seconds)) +
         " seconds (serve --worker-wait-timeout). " + WaitingForWorkerSummary(type) +
         ", then retry the stage.";
}

std::vector<std::string> ExpiredApprovals(const PipelineState& p, EpochSeconds now,
                                          double timeout_seconds) {
  std::vector<std::string> expired;
  for (const auto& e : p.executions) {
    if (!e.Active()) continue;
    for (const auto& r : e.runs) {
      if (r.status != ActionStatus::kInProgress || r.token.empty()) continue;
      if (now - r.started >= timeout_seconds) expired.push_back(r.id);
    }
  }
  return expired;
}

std::string LastRanRevision(const PipelineState& p, std::string_view action) {
  std::string last;
  for (const auto& e : p.executions) {
    for (const auto& r : e.runs) {
      if (r.action == action && !r.revision_id.empty()) last = r.revision_id;
    }
  }
  return last;
}

PolledSource PolledSourceOf(const ActionDecl& a) {
  if (a.type.owner != "AWS" || a.type.category != "Source") return PolledSource::kNone;
  auto poll = a.configuration.find("PollForSourceChanges");
  if (poll != a.configuration.end()) {
    std::string v = poll->second;
    std::transform(v.begin(), v.end(), v.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (v == "false") return PolledSource::kNone;
  }
  if (a.type.provider == "Git") return PolledSource::kGit;
  if (a.type.provider == "S3") return PolledSource::kS3;
  return PolledSource::kNone;
}

std::string S3RevisionId(std::string_view version_id, std::string_view etag) {
  if (!version_id.empty() && version_id != "null") return std::string(version_id);
  return std::string(etag);
}

PollDecision DecidePoll(const std::optional<std::string>& seen, const std::string& last_ran,
                        const std::string& head) {
  const std::string& baseline = seen.has_value() && !seen->empty() ? *seen : last_ran;
  PollDecision d;
  if (baseline == head) {
    if (!seen.has_value()) d.remember = head;
    return d;
  }
  d.remember = head;
  d.start = !baseline.empty();
  return d;
}

}  // namespace pw::core
