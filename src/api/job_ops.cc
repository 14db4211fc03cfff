#include "api/job_ops.h"

#include <httplib.h>

#include <ctime>
#include <fstream>
#include <iterator>

#include "common/ids.h"
#include "sigv4/sigv4.h"

namespace pw::api {
namespace {

using nlohmann::json;

std::string Target(const char* op) { return std::string(kCodePipelinePrefix) + op; }

core::ActionTypeId TypeFrom(const json& j) {
  return {j.value("category", ""), j.value("owner", ""), j.value("provider", ""),
          j.value("version", "")};
}

json JobJson(engine::Engine& eng, const engine::Job& job) {
  return {{"id", job.id},
          {"nonce", job.nonce},
          {"accountId", eng.options().account_id},
          {"data", eng.JobDataJson(job)}};
}

// S3-style XML error.
void S3Error(httplib::Response& res, int status, const std::string& code, const std::string& msg) {
  res.status = status;
  res.set_header("x-amz-request-id", NewUuid());
  res.set_content("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code +
                      "</Code><Message>" + msg + "</Message></Error>",
                  "application/xml");
}

}  // namespace

void RegisterJobOps(Dispatcher& d, engine::Engine& eng, double poll_wait_seconds) {
  d.Register(Target("CreateCustomActionType"), "CreateCustomActionType",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_ASSIGN_OR_RETURN(json type, eng.CreateCustomActionType(in));
               json out = {{"actionType", type}};
               if (in.contains("tags")) out["tags"] = in["tags"];
               return out;
             });

  d.Register(Target("DeleteCustomActionType"), "DeleteCustomActionType",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               core::ActionTypeId id{in["category"], "Custom", in["provider"], in["version"]};
               PW_RETURN_IF_ERROR(eng.DeleteCustomActionType(id));
               return json::object();
             });

  d.Register(Target("PollForJobs"), "PollForJobs",
             [&eng, poll_wait_seconds](const json& in, const RequestContext&) -> Result<json> {
               std::map<std::string, std::string> query;
               if (in.contains("queryParam")) {
                 query = in["queryParam"].get<std::map<std::string, std::string>>();
               }
               int max = in.value("maxBatchSize", 1);
               PW_ASSIGN_OR_RETURN(auto jobs, eng.PollForJobs(TypeFrom(in["actionTypeId"]), max,
                                                              query, poll_wait_seconds));
               json list = json::array();
               for (const auto& j : jobs) list.push_back(JobJson(eng, j));
               return json{{"jobs", list}};
             });

  d.Register(Target("AcknowledgeJob"), "AcknowledgeJob",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_ASSIGN_OR_RETURN(std::string status,
                                   eng.AcknowledgeJob(in["jobId"], in["nonce"]));
               return json{{"status", status}};
             });

  d.Register(Target("GetJobDetails"), "GetJobDetails",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_ASSIGN_OR_RETURN(engine::Job job, eng.GetJob(in["jobId"]));
               return json{{"jobDetails",
                            {{"id", job.id},
                             {"data", eng.JobDataJson(job)},
                             {"accountId", eng.options().account_id}}}};
             });

  d.Register(Target("PutJobSuccessResult"), "PutJobSuccessResult",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
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
               if (in.contains("outputVariables")) {
                 s.output_variables =
                     in["outputVariables"].get<std::map<std::string, std::string>>();
               }
               PW_RETURN_IF_ERROR(eng.PutJobSuccess(in["jobId"], s));
               return json::object();
             });

  d.Register(Target("PutJobFailureResult"), "PutJobFailureResult",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               const json& f = in["failureDetails"];
               PW_RETURN_IF_ERROR(eng.PutJobFailure(in["jobId"], f.value("type", "JobFailed"),
                                                    f.value("message", ""),
                                                    f.value("externalExecutionId", "")));
               return json::object();
             });
}

void RegisterArtifactEndpoint(httplib::Server& server, engine::Engine& eng) {
  // Returns the job whose credentials signed `req`, or answers with an S3 error.
  auto authorize = [&eng](const httplib::Request& req, httplib::Response& res,
                          const std::string& body) -> std::optional<engine::Job> {
    sigv4::HttpRequestView view;
    view.method = req.method;
    const std::string& target = req.target;
    auto q = target.find('?');
    view.path = q == std::string::npos ? target : target.substr(0, q);
    view.query = q == std::string::npos ? "" : target.substr(q + 1);
    for (const auto& [k, v] : req.headers) view.headers.emplace_back(k, v);
    view.body = body;
    std::optional<engine::Job> job;
    auto who =
        sigv4::Verify(view, "s3", static_cast<int64_t>(std::time(nullptr)),
                      [&](std::string_view akid) -> std::optional<sigv4::SecretInfo> {
                        job = eng.JobForAccessKey(std::string(akid));
                        if (!job) return std::nullopt;
                        return sigv4::SecretInfo{job->secret_access_key, job->session_token, 0};
                      });
    if (!who.ok()) {
      S3Error(res, 403,
              who.status().wire_name().empty() ? "AccessDenied" : who.status().wire_name(),
              who.status().message());
      return std::nullopt;
    }
    return job;
  };
  auto key_of = [](const httplib::Request& req, const engine::Job& job,
                   httplib::Response& res) -> std::optional<std::string> {
    const std::string bucket = req.matches[1].str();
    if (bucket != job.bucket) {
      S3Error(res, 403, "AccessDenied", "These credentials are for bucket " + job.bucket + ".");
      return std::nullopt;
    }
    return httplib::detail::decode_url(req.matches[2].str(), false);
  };
  auto read = [&eng, authorize, key_of](const httplib::Request& req, httplib::Response& res) {
    auto job = authorize(req, res, "");
    if (!job) return;
    auto key = key_of(req, *job, res);
    if (!key) return;
    auto path = eng.JobObjectPath(*job, *key, /*for_write=*/false);
    if (!path.ok()) return S3Error(res, 403, "AccessDenied", path.status().message());
    std::ifstream f(*path, std::ios::binary);
    if (!f) return S3Error(res, 404, "NoSuchKey", "The specified key does not exist.");
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    res.set_header("ETag", "\"" + std::to_string(bytes.size()) + "\"");
    if (req.method == "HEAD") {
      res.set_header("Content-Length", std::to_string(bytes.size()));
      res.set_header("Content-Type", "application/zip");
      return;
    }
    res.set_content(bytes, "application/zip");
  };
  const char* kPattern = R"(/([a-zA-Z0-9.\-]{3,63})/(.+))";
  server.Get(kPattern, read);
  server.Put(kPattern,
             [&eng, authorize, key_of](const httplib::Request& req, httplib::Response& res) {
               auto job = authorize(req, res, req.body);
               if (!job) return;
               auto key = key_of(req, *job, res);
               if (!key) return;
               // The engine checks the upload (a zip within the artifact limits).
               Status stored = eng.PutJobObject(*job, *key, req.body);
               if (stored.code() == StatusCode::kFailedPrecondition) {
                 return S3Error(res, 403, "AccessDenied", stored.message());
               }
               if (stored.code() == StatusCode::kInvalidArgument) {
                 return S3Error(res, 400, "InvalidRequest", stored.message());
               }
               if (!stored.ok()) return S3Error(res, 500, "InternalError", stored.message());
               res.set_header("ETag", "\"" + std::to_string(req.body.size()) + "\"");
               res.status = 200;
             });
}

}  // namespace pw::api
