#include "worker/job_api.h"

#include <utility>

namespace pw::worker {

using nlohmann::json;

namespace {

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
std::string Truncate(std::string s, size_t max) {
  if (s.size() <= max) return s;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  return s;
}

}  // namespace

bool IsTransient(const Status& status) {
  return status.code() == StatusCode::kUnavailable ||
         status.code() == StatusCode::kResourceExhausted;
}

JobApi::JobApi(cli::ClientOptions options) : client_(std::move(options)) {}

Result<json> JobApi::Call(const char* operation, const json& input) const {
  Result<std::string> body =
      client_.Send(std::string("CodePipeline_20150709.") + operation, input.dump());
  if (!body.ok()) return body.status();
  if (body->empty()) return json::object();
  json parsed = json::parse(*body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return InvalidArgument(std::string(operation) + ": answer is not JSON: " + body->substr(0, 200),
                           "");
  }
  return parsed;
}

Result<std::vector<Job>> JobApi::PollForJobs(
    const ActionTypeId& type, int max_batch_size,
    const std::map<std::string, std::string>& query_param) const {
  json input = {{"actionTypeId", type.ToJson()}, {"maxBatchSize", max_batch_size}};
  if (!query_param.empty()) input["queryParam"] = query_param;
  PW_ASSIGN_OR_RETURN(json out, Call("PollForJobs", input));
  std::vector<Job> jobs;
  if (!out.is_object()) return InvalidArgument("PollForJobs: answer is not an object", "");
  auto it = out.find("jobs");
  if (it == out.end() || it->is_null()) return jobs;
  if (!it->is_array()) return InvalidArgument("PollForJobs: jobs is not a list", "");
  for (const json& j : *it) {
    PW_ASSIGN_OR_RETURN(Job job, ParseJob(j));
    jobs.push_back(std::move(job));
  }
  return jobs;
}

Result<std::string> JobApi::AcknowledgeJob(const std::string& job_id,
                                           const std::string& nonce) const {
  PW_ASSIGN_OR_RETURN(json out, Call("AcknowledgeJob", {{"jobId", job_id}, {"nonce", nonce}}));
  if (out.is_object() && out.contains("status") && out["status"].is_string()) {
    return out["status"].get<std::string>();
  }
  return std::string();
}

Result<Job> JobApi::GetJobDetails(const std::string& job_id) const {
  PW_ASSIGN_OR_RETURN(json out, Call("GetJobDetails", {{"jobId", job_id}}));
  if (!out.is_object() || !out.contains("jobDetails")) {
    return InvalidArgument("GetJobDetails: no jobDetails in the answer", "");
  }
  return ParseJob(out["jobDetails"]);
}

Status JobApi::PutJobSuccessResult(const JobSuccess& result) const {
  json input = {{"jobId", result.job_id}};
  json details = json::object();
  if (!result.summary.empty()) details["summary"] = Truncate(result.summary, 2048);
  if (!result.external_execution_id.empty()) {
    details["externalExecutionId"] = result.external_execution_id;
  }
  if (result.percent_complete) details["percentComplete"] = *result.percent_complete;
  if (!details.empty()) input["executionDetails"] = details;
  if (!result.continuation_token.empty()) {
    input["continuationToken"] = result.continuation_token;
  } else if (!result.output_variables.empty()) {
    input["outputVariables"] = result.output_variables;
  }
  return Call("PutJobSuccessResult", input).status();
}

Status JobApi::PutJobFailureResult(const std::string& job_id, const std::string& type,
                                   const std::string& message,
                                   const std::string& external_execution_id) const {
  json details = {{"type", type},
                  {"message", Truncate(message.empty() ? "failed" : message, 5000)}};
  if (!external_execution_id.empty()) details["externalExecutionId"] = external_execution_id;
  return Call("PutJobFailureResult", {{"jobId", job_id}, {"failureDetails", details}}).status();
}

}  // namespace pw::worker
