#include "api/job_ops.h"

#include <sys/stat.h>

#include <cstdio>
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

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// S3-style XML error.
void S3Error(http::Response& res, int status, const std::string& code, const std::string& msg) {
  res.status = status;
  res.SetHeader("x-amz-request-id", NewUuid());
  res.SetHeader("Content-Type", "application/xml");
  res.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + XmlEscape(code) +
             "</Code><Message>" + XmlEscape(msg) + "</Message></Error>";
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
             [&eng, poll_wait_seconds](const json& in, const RequestContext& ctx) -> Result<json> {
               std::map<std::string, std::string> query;
               if (in.contains("queryParam")) {
                 query = in["queryParam"].get<std::map<std::string, std::string>>();
               }
               int max = in.value("maxBatchSize", 1);
               // A long poll holds no thread: with no job yet, the HTTP front
               // parks the request and asks again until poll_wait_seconds.
               PW_ASSIGN_OR_RETURN(auto jobs,
                                   eng.PollForJobs(TypeFrom(in["actionTypeId"]), max, query, 0));
               if (jobs.empty() && ctx.waited_seconds < poll_wait_seconds) {
                 ctx.park = true;
                 return json::object();
               }
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

void RegisterArtifactEndpoint(http::Server& server, engine::Engine& eng,
                              const std::string& temp_dir) {
  // Authenticates with the job's artifact credentials (SigV4, service s3).
  // Before the body: the signature over the headers, with the client's own
  // x-amz-content-sha256 (required, as S3 requires it); after the body: that
  // hash against the bytes received. An unsigned upload is refused before a
  // byte of its body is read.
  http::Authenticator auth = [&eng](http::AuthPhase phase, http::Request& req,
                                    http::Response& res) -> Status {
    sigv4::HttpRequestView view;
    view.method = req.method;
    view.path = req.path;
    view.query = req.query;
    for (const auto& [k, v] : req.headers) view.headers.emplace_back(k, v);
    std::string declared = req.Header("x-amz-content-sha256");
    if (declared.empty()) {
      Status s = InvalidArgument(
          "Requests to the artifact store must be signed (SigV4, service "
          "s3) with an x-amz-content-sha256 header.",
          "AccessDenied");
      S3Error(res, 403, "AccessDenied", s.message());
      return s;
    }
    // Before the body: the client's declared hash (the headers' signature);
    // after it: the hash of what was streamed (a GET has no body: hashed empty).
    if (phase == http::AuthPhase::kHeaders) {
      view.body_sha256 = declared;
    } else if (!req.body_file.empty()) {
      view.body_sha256 = req.body_sha256;
    }
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
      return who.status();
    }
    if (req.params.empty() || req.params[0] != job->bucket) {
      Status s =
          InvalidArgument("These credentials are for bucket " + job->bucket + ".", "AccessDenied");
      S3Error(res, 403, "AccessDenied", s.message());
      return s;
    }
    req.access_key_id = *who;
    return Status::Ok();
  };
  // The object path an authenticated GET reads, or an S3 error.
  auto object_of = [&eng](const http::Request& req,
                          http::Response& res) -> std::optional<std::string> {
    auto job = eng.JobForAccessKey(req.access_key_id);
    if (!job) {
      S3Error(res, 403, "AccessDenied", "The job of these credentials has ended.");
      return std::nullopt;
    }
    auto path = eng.JobObjectPath(*job, http::PercentDecode(req.params[1]), /*for_write=*/false);
    if (!path.ok()) {
      S3Error(res, 403, "AccessDenied", path.status().message());
      return std::nullopt;
    }
    return *path;
  };
  const char* kPattern = R"(/([a-zA-Z0-9.\-]{3,63})/(.+))";
  http::RouteOptions get_opts;
  get_opts.authenticator = auth;
  server.Route("GET", kPattern, get_opts,
               [object_of](const http::Request& req, http::Response& res) {
                 auto path = object_of(req, res);
                 if (!path) return;
                 struct stat st {};
                 if (::stat(path->c_str(), &st) != 0) {
                   return S3Error(res, 404, "NoSuchKey", "The specified key does not exist.");
                 }
                 res.SetHeader("ETag", "\"" + std::to_string(st.st_size) + "\"");
                 res.SetHeader("Content-Type", "application/zip");
                 res.file = *path;
               });
  http::RouteOptions put_opts;
  put_opts.authenticator = auth;
  put_opts.body = http::BodyMode::kStream;
  put_opts.max_body_bytes =
      eng.options().max_artifact_bytes > 0 ? eng.options().max_artifact_bytes : uint64_t{1} << 30;
  put_opts.temp_dir = temp_dir;
  server.Route("PUT", kPattern, put_opts, [&eng](const http::Request& req, http::Response& res) {
    auto job = eng.JobForAccessKey(req.access_key_id);
    if (!job) {
      return S3Error(res, 403, "AccessDenied", "The job of these credentials has ended.");
    }
    if (req.body_file.empty()) {
      return S3Error(res, 400, "InvalidRequest", "An artifact upload must not be empty.");
    }
    // The engine checks the upload (a zip within the artifact limits).
    Status stored = eng.PutJobObjectFile(*job, http::PercentDecode(req.params[1]), req.body_file);
    if (stored.code() == StatusCode::kFailedPrecondition) {
      return S3Error(res, 403, "AccessDenied", stored.message());
    }
    if (stored.code() == StatusCode::kInvalidArgument) {
      return S3Error(res, 400, "InvalidRequest", stored.message());
    }
    if (!stored.ok()) return S3Error(res, 500, "InternalError", stored.message());
    res.SetHeader("ETag", "\"" + std::to_string(req.body_size) + "\"");
  });
}

}  // namespace pw::api
