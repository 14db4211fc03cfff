#pragma once

// Job: what PollForJobs and GetJobDetails hand a job worker (the model's Job
// and JobData), parsed out of the wire JSON into plain values. Thread-compatible
// value types; ParseJob is pure.
//
//   PW_ASSIGN_OR_RETURN(ActionTypeId type, ParseActionTypeId("Deploy/AWS/CloudFormation/1", ""));
//   PW_ASSIGN_OR_RETURN(Job job, ParseJob(poll_output["jobs"][0]));
//   Use(job.input_artifacts[0].location.key);

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "runner/s3_client.h"
#include "sigv4/sigv4.h"

namespace pw::worker {

using runner::S3Client;
using runner::S3ClientOptions;
using runner::S3ObjectRef;

struct ActionTypeId {
  std::string category;  // "Build"
  std::string owner;     // "Custom" or "AWS"
  std::string provider;  // "MyWorker"
  std::string version;   // "1"

  // "Category/Owner/Provider/Version", for log lines.
  std::string ToString() const;
  nlohmann::json ToJson() const;
};

// Parses "Category/Owner/Provider/Version" (four non-empty parts, e.g.
// Deploy/AWS/CloudFormation/1), or "Category/Provider/Version" with `owner`.
// Errors: kInvalidArgument naming the expected forms.
Result<ActionTypeId> ParseActionTypeId(std::string_view text, std::string owner);

// An input or output artifact of a job.
struct JobArtifact {
  std::string name;
  std::string revision;  // Inputs only; may be empty.
  S3ObjectRef location;  // Bucket and key of the zip file; both empty if none was given.
};

struct Job {
  std::string id;
  std::string nonce;  // Empty for GetJobDetails answers.
  std::string account_id;
  ActionTypeId action_type;
  std::map<std::string, std::string> configuration;
  std::string pipeline_name;
  std::string stage_name;
  std::string action_name;
  std::string action_execution_id;
  std::string pipeline_arn;
  std::string pipeline_execution_id;
  std::vector<JobArtifact> input_artifacts;
  std::vector<JobArtifact> output_artifacts;
  sigv4::Credentials artifact_credentials;  // Empty strings if none were given.
  std::string continuation_token;           // Empty on a first job.
};

// Parses one element of PollForJobs's `jobs` or GetJobDetails's `jobDetails`
// (`data` is the JobData). Unknown members are ignored. Errors:
// kInvalidArgument if `j` is not an object, `id` is missing or any member has
// the wrong JSON type.
Result<Job> ParseJob(const nlohmann::json& j);

}  // namespace pw::worker
