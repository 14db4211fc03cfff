#include "api/job_ops.h"

namespace pw::api {
namespace {

using nlohmann::json;

json JobJson(engine::Engine& eng, const engine::Job& job) {
  return {{"id", job.id},
          {"nonce", job.nonce},
          {"accountId", eng.options().account_id},
          {"data", eng.JobDataJson(job)}};
}

}  // namespace

core::ActionTypeId ActionTypeFromRequest(const json& j) {
  return {j.value("category", ""), j.value("owner", ""), j.value("provider", ""),
          j.value("version", "")};
}

engine::JobSuccess JobSuccessFromRequest(const json& in) {
  engine::JobSuccess s;
  s.continuation_token = in.value("continuationToken", "");
  if (in.contains("executionDetails")) {
    const json& details = in["executionDetails"];
    s.summary = details.value("summary", "");
    s.external_id = details.value("externalExecutionId", "");
    s.percent_complete = details.value("percentComplete", -1);
  }
  if (in.contains("currentRevision")) {
    const json& r = in["currentRevision"];
    s.revision = r.value("revision", "");
    s.revision_change_id = r.value("changeIdentifier", "");
    s.revision_summary = r.value("revisionSummary", "");
    s.revision_created = r.value("created", 0.0);
  }
  return s;
}

void RegisterJobOps(Dispatcher& d, engine::Engine& eng, double poll_wait_seconds) {
  d.Register(CodePipelineTarget("CreateCustomActionType"), "CreateCustomActionType",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_ASSIGN_OR_RETURN(json type, eng.CreateCustomActionType(in));
               json out = {{"actionType", type}};
               if (in.contains("tags")) out["tags"] = in["tags"];
               return out;
             });

  d.Register(CodePipelineTarget("DeleteCustomActionType"), "DeleteCustomActionType",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               core::ActionTypeId id{in["category"], "Custom", in["provider"], in["version"]};
               PW_RETURN_IF_ERROR(eng.DeleteCustomActionType(id));
               return json::object();
             });

  d.Register(CodePipelineTarget("PollForJobs"), "PollForJobs",
             [&eng, poll_wait_seconds](const json& in, const RequestContext& ctx) -> Result<json> {
               std::map<std::string, std::string> query;
               if (in.contains("queryParam")) {
                 query = in["queryParam"].get<std::map<std::string, std::string>>();
               }
               int max = in.value("maxBatchSize", 1);
               // A long poll holds no thread: with no job yet, the HTTP front
               // parks the request and asks again until poll_wait_seconds.
               PW_ASSIGN_OR_RETURN(
                   auto jobs,
                   eng.PollForJobs(ActionTypeFromRequest(in["actionTypeId"]), max, query, 0));
               if (jobs.empty() && ctx.waited_seconds < poll_wait_seconds) {
                 ctx.park = true;
                 return json::object();
               }
               json list = json::array();
               for (const auto& j : jobs) list.push_back(JobJson(eng, j));
               return json{{"jobs", list}};
             });

  d.Register(CodePipelineTarget("AcknowledgeJob"), "AcknowledgeJob",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_ASSIGN_OR_RETURN(std::string status,
                                   eng.AcknowledgeJob(in["jobId"], in["nonce"]));
               return json{{"status", status}};
             });

  d.Register(CodePipelineTarget("GetJobDetails"), "GetJobDetails",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_ASSIGN_OR_RETURN(engine::Job job, eng.GetJob(in["jobId"]));
               return json{{"jobDetails",
                            {{"id", job.id},
                             {"data", eng.JobDataJson(job)},
                             {"accountId", eng.options().account_id}}}};
             });

  d.Register(CodePipelineTarget("PutJobSuccessResult"), "PutJobSuccessResult",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               engine::JobSuccess s = JobSuccessFromRequest(in);
               if (in.contains("outputVariables")) {
                 s.output_variables =
                     in["outputVariables"].get<std::map<std::string, std::string>>();
               }
               PW_RETURN_IF_ERROR(eng.PutJobSuccess(in["jobId"], s));
               return json::object();
             });

  d.Register(CodePipelineTarget("PutJobFailureResult"), "PutJobFailureResult",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               const json& f = in["failureDetails"];
               PW_RETURN_IF_ERROR(eng.PutJobFailure(in["jobId"], f.value("type", "JobFailed"),
                                                    f.value("message", ""),
                                                    f.value("externalExecutionId", "")));
               return json::object();
             });
}

}  // namespace pw::api
