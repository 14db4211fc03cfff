#pragma once

// JobApi: the job worker's side of the CodePipeline job operations
// (PollForJobs, AcknowledgeJob, GetJobDetails, PutJobSuccessResult,
// PutJobFailureResult) over cli::Client, so calls are SigV4-signed when
// credentials are given and retried as the CLI retries them.
//
//   JobApi api({.endpoint_url = "http://127.0.0.1:8480"});
//   PW_ASSIGN_OR_RETURN(std::vector<Job> jobs, api.PollForJobs(type, 1, {}));
//   PW_RETURN_IF_ERROR(api.AcknowledgeJob(jobs[0].id, jobs[0].nonce).status());
//   PW_RETURN_IF_ERROR(api.PutJobSuccessResult({.job_id = jobs[0].id, .summary = "done"}));
//
// Thread-safe: every call opens its own connection; the object is immutable.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/client.h"
#include "common/status.h"
#include "worker/job.h"

namespace pw::worker {

struct JobSuccess {
  std::string job_id;
  std::string continuation_token;       // Non-empty: the action stays InProgress.
  std::string summary;                  // executionDetails.summary; omitted when empty.
  std::string external_execution_id;    // executionDetails.externalExecutionId; omitted when empty.
  std::optional<int> percent_complete;  // executionDetails.percentComplete (0..100).
  std::map<std::string, std::string> output_variables;  // Sent only without a continuation token.
};

class JobApi {
 public:
  explicit JobApi(cli::ClientOptions options);

  // Polls for up to `max_batch_size` jobs of `type`; the server may hold the
  // call open briefly (long poll) when there are none. Errors: as
  // cli::Client::Send (wire_name = the service's exception, e.g.
  // ActionTypeNotFoundException); kInvalidArgument if the answer is not JSON
  // or a job cannot be parsed.
  Result<std::vector<Job>> PollForJobs(const ActionTypeId& type, int max_batch_size,
                                       const std::map<std::string, std::string>& query_param) const;

  // Claims job `job_id` with the nonce PollForJobs returned and returns the
  // job's status ("InProgress"). Errors: wire_name InvalidNonceException when
  // another worker holds the job; JobNotFoundException; as Send otherwise.
  Result<std::string> AcknowledgeJob(const std::string& job_id, const std::string& nonce) const;

  // Errors: JobNotFoundException; as PollForJobs otherwise.
  Result<Job> GetJobDetails(const std::string& job_id) const;

  // Errors: InvalidJobStateException when the job is no longer workable (timed
  // out, abandoned); JobNotFoundException; as Send otherwise.
  Status PutJobSuccessResult(const JobSuccess& result) const;

  // Reports failure `type` ("JobFailed", ...) with `message`, cut to the
  // model's 5000 characters. Errors as PutJobSuccessResult.
  Status PutJobFailureResult(const std::string& job_id, const std::string& type,
                             const std::string& message,
                             const std::string& external_execution_id) const;

  const cli::ClientOptions& options() const { return client_.options(); }

 private:
  Result<nlohmann::json> Call(const char* operation, const nlohmann::json& input) const;

  cli::Client client_;
};

// True for the errors after which retrying the same call later can succeed:
// no connection, 5xx, throttling.
bool IsTransient(const Status& status);

}  // namespace pw::worker
