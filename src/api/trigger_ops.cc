#include "api/trigger_ops.h"

#include <algorithm>
#include <fstream>
#include <iterator>

#include "api/job_ops.h"
#include "spec/service_model.h"

namespace pw::api {
namespace {

using nlohmann::json;

std::string EncodeName(const std::string& name) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "pw1.";
  for (unsigned char c : name) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

Result<std::string> DecodeName(const std::string& token, const char* field) {
  auto bad = [&] {
    return InvalidArgument(std::string("The ") + field + " '" +
                               spec::TruncateUtf8(token, spec::kMaxQuotedBytes) +
                               "' is not valid; pass back a token returned by a previous call.",
                           "InvalidNextTokenException");
  };
  if (token.rfind("pw1.", 0) != 0 || token.size() % 2 != 0) return bad();
  std::string out;
  for (size_t i = 4; i + 1 < token.size(); i += 2) {
    int v = 0;
    for (size_t k = i; k < i + 2; ++k) {
      const char c = token[k];
      v = v * 16 + (c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -999);
    }
    if (v < 0) return bad();
    out.push_back(static_cast<char>(v));
  }
  return out;
}

Status CheckTags(const json& tags) {
  if (!tags.is_array()) return Status::Ok();
  if (tags.size() > 50) {
    return InvalidArgument(
        "A webhook can have at most 50 tags; " + std::to_string(tags.size()) + " were given.",
        "TooManyTagsException");
  }
  std::set<std::string> seen;
  for (const auto& t : tags) {
    const std::string key = t.value("key", "");
    if (!seen.insert(key).second) {
      return InvalidArgument("Tag key '" + spec::TruncateUtf8(key, spec::kMaxQuotedBytes) +
                                 "' is given more than once; give each key once.",
                             "InvalidTagsException");
    }
    if (key.rfind("aws:", 0) == 0) {
      return InvalidArgument(
          "Tag key '" + spec::TruncateUtf8(key, spec::kMaxQuotedBytes) +
              "' is reserved (system tags start with 'aws:'); choose another key.",
          "InvalidTagsException");
    }
  }
  return Status::Ok();
}

}  // namespace

void RegisterTriggerOps(Dispatcher& d, engine::Engine& eng) {
  // --- Webhooks.
  d.Register(CodePipelineTarget("PutWebhook"), "PutWebhook",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               json tags = in.contains("tags") ? in["tags"] : json();
               PW_RETURN_IF_ERROR(CheckTags(tags));
               PW_ASSIGN_OR_RETURN(json item, eng.PutWebhook(in["webhook"], tags));
               return json{{"webhook", item}};
             });
  d.Register(CodePipelineTarget("ListWebhooks"), "ListWebhooks",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               std::string from;
               if (in.contains("NextToken")) {
                 PW_ASSIGN_OR_RETURN(from, DecodeName(in["NextToken"], "NextToken"));
               }
               const size_t max = static_cast<size_t>(in.value("MaxResults", 100));
               PW_ASSIGN_OR_RETURN(auto all, eng.ListWebhooks());
               json page = json::array();
               json out = json::object();
               for (const auto& w : all) {
                 const std::string name = w["definition"].value("name", "");
                 if (!from.empty() && name < from) continue;
                 if (page.size() == max) {
                   out["NextToken"] = EncodeName(name);
                   break;
                 }
                 page.push_back(w);
               }
               out["webhooks"] = page;
               return out;
             });
  d.Register(CodePipelineTarget("DeleteWebhook"), "DeleteWebhook",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_RETURN_IF_ERROR(eng.DeleteWebhook(in["name"]));
               return json::object();
             });
  d.Register(CodePipelineTarget("RegisterWebhookWithThirdParty"), "RegisterWebhookWithThirdParty",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_RETURN_IF_ERROR(eng.RegisterWebhook(in.value("webhookName", ""), true));
               return json::object();
             });
  d.Register(CodePipelineTarget("DeregisterWebhookWithThirdParty"),
             "DeregisterWebhookWithThirdParty",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_RETURN_IF_ERROR(eng.RegisterWebhook(in.value("webhookName", ""), false));
               return json::object();
             });
  // Pipewright's own: the last deliveries of a webhook (newest first).
  d.Register(std::string(kPipewrightPrefix) + "ListWebhookDeliveries", "",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               if (!in.contains("name") || !in["name"].is_string()) {
                 return InvalidArgument("name (the webhook's name) is required.");
               }
               PW_ASSIGN_OR_RETURN(json list, eng.WebhookDeliveries(in["name"]));
               return json{{"deliveries", list}};
             });

  // --- PutActionRevision.
  d.Register(
      CodePipelineTarget("PutActionRevision"), "PutActionRevision",
      [&eng](const json& in, const RequestContext& ctx) -> Result<json> {
        PW_ASSIGN_OR_RETURN(
            engine::PutActionRevisionResult r,
            eng.PutActionRevision(in["pipelineName"], in["stageName"], in["actionName"],
                                  in["actionRevision"].value("revisionId", ""), ctx.caller));
        return json{{"newRevision", r.new_revision}, {"pipelineExecutionId", r.execution_id}};
      });

  // --- ListDeployActionExecutionTargets.
  d.Register(
      CodePipelineTarget("ListDeployActionExecutionTargets"), "ListDeployActionExecutionTargets",
      [&eng](const json& in, const RequestContext&) -> Result<json> {
        if (in.contains("nextToken")) {
          // Every answer fits one page: no token was ever handed out.
          return InvalidArgument("The nextToken is not valid; this action's targets fit one page.",
                                 "InvalidNextTokenException");
        }
        PW_ASSIGN_OR_RETURN(
            auto targets, eng.DeployTargets(in.value("pipelineName", ""), in["actionExecutionId"]));
        std::vector<std::string> statuses;
        for (const auto& f : in.value("filters", json::array())) {
          if (f.value("name", "") != "TARGET_STATUS") continue;
          for (const auto& v : f.value("values", json::array())) statuses.push_back(v);
        }
        json list = json::array();
        const size_t max = static_cast<size_t>(in.value("maxResults", 100));
        for (const auto& t : targets) {
          if (!statuses.empty() && std::find(statuses.begin(), statuses.end(),
                                             t.value("status", "")) == statuses.end()) {
            continue;
          }
          if (list.size() < max) list.push_back(t);
        }
        return json{{"targets", list}};
      });

  // --- UpdateActionType (GetActionType: execution_ops.cc).
  d.Register(CodePipelineTarget("UpdateActionType"), "UpdateActionType",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_RETURN_IF_ERROR(eng.UpdateActionType(in["actionType"]));
               return json::object();
             });

  // --- The ThirdParty job API.
  d.Register(CodePipelineTarget("PollForThirdPartyJobs"), "PollForThirdPartyJobs",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_ASSIGN_OR_RETURN(
                   auto jobs, eng.PollForThirdPartyJobs(ActionTypeFromRequest(in["actionTypeId"]),
                                                        in.value("maxBatchSize", 1)));
               json list = json::array();
               for (const auto& j : jobs)
                 list.push_back({{"clientId", j.client_id}, {"jobId", j.id}});
               return json{{"jobs", list}};
             });
  d.Register(CodePipelineTarget("AcknowledgeThirdPartyJob"), "AcknowledgeThirdPartyJob",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_RETURN_IF_ERROR(eng.ThirdPartyJob(in["jobId"], in["clientToken"]).status());
               PW_ASSIGN_OR_RETURN(std::string status,
                                   eng.AcknowledgeJob(in["jobId"], in["nonce"]));
               return json{{"status", status}};
             });
  d.Register(CodePipelineTarget("GetThirdPartyJobDetails"), "GetThirdPartyJobDetails",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_ASSIGN_OR_RETURN(engine::Job job,
                                   eng.ThirdPartyJob(in["jobId"], in["clientToken"]));
               json data = eng.JobDataJson(job);
               // As AWS: no pipeline ARN or execution id for ThirdParty jobs.
               if (data.contains("pipelineContext")) {
                 data["pipelineContext"].erase("pipelineArn");
                 data["pipelineContext"].erase("pipelineExecutionId");
               }
               return json{{"jobDetails", {{"id", job.id}, {"data", data}, {"nonce", job.nonce}}}};
             });
  d.Register(CodePipelineTarget("PutThirdPartyJobSuccessResult"), "PutThirdPartyJobSuccessResult",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_RETURN_IF_ERROR(eng.ThirdPartyJob(in["jobId"], in["clientToken"]).status());
               PW_RETURN_IF_ERROR(eng.PutJobSuccess(in["jobId"], JobSuccessFromRequest(in)));
               return json::object();
             });
  d.Register(CodePipelineTarget("PutThirdPartyJobFailureResult"), "PutThirdPartyJobFailureResult",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_RETURN_IF_ERROR(eng.ThirdPartyJob(in["jobId"], in["clientToken"]).status());
               const json& f = in["failureDetails"];
               PW_RETURN_IF_ERROR(eng.PutJobFailure(in["jobId"], f.value("type", "JobFailed"),
                                                    f.value("message", ""),
                                                    f.value("externalExecutionId", "")));
               return json::object();
             });
}

void RegisterWebhookRoute(http::Server& server, engine::Engine& eng, const std::string& temp_dir) {
  http::RouteOptions o;
  o.auth = http::AuthMode::kPublic;  // The webhook's own authentication applies.
  // Bodies stream to disk: 25 MiB bodies held in memory by connections that
  // stall would let anyone who can reach the server take its memory.
  o.body = http::BodyMode::kStream;
  o.temp_dir = temp_dir;
  o.hash_body = false;  // The webhook's HMAC is over the body it reads.
  o.max_body_bytes = 25 << 20;
  // A url no webhook has is answered from its headers, before its body.
  o.authenticator = [&eng](http::AuthPhase phase, http::Request& req, http::Response& res) {
    if (phase != http::AuthPhase::kHeaders || eng.WebhookUrlKnown(req.params[0])) {
      return Status::Ok();
    }
    res.status = 404;
    res.SetHeader("Content-Type", "application/json");
    res.body =
        json{{"__type", "WebhookNotFoundException"}, {"message", engine::kNoSuchWebhookUrl}}.dump();
    return NotFound(std::string(engine::kNoSuchWebhookUrl));
  };
  server.Route("POST", std::string(kWebhookPathPrefix) + "([0-9a-f]{32})", o,
               [&eng](const http::Request& req, http::Response& res) {
                 engine::WebhookRequest w;
                 w.token = req.params[0];
                 if (!req.body_file.empty()) {
                   std::ifstream in(req.body_file, std::ios::binary);
                   w.body.assign(std::istreambuf_iterator<char>(in), {});
                 }
                 w.peer = req.peer;
                 w.signature_256 = req.Header("X-Hub-Signature-256");
                 w.gitlab_token = req.Header("X-Gitlab-Token");
                 w.event = req.Header("X-GitHub-Event");
                 if (w.event.empty()) w.event = req.Header("X-Gitlab-Event");
                 engine::WebhookReply r = eng.DeliverWebhook(w);
                 json body = {{"message", r.message}};
                 if (!r.error_type.empty()) body["__type"] = r.error_type;
                 if (!r.execution_id.empty()) body["pipelineExecutionId"] = r.execution_id;
                 res.status = r.status;
                 res.SetHeader("Content-Type", "application/json");
                 res.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
               });
}

}  // namespace pw::api
