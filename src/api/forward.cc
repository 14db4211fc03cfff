#include "api/forward.h"

#include <httplib.h>

#include <cctype>
#include <map>

#include "common/log.h"
#include "engine/engine.h"
#include "engine/leases.h"
#include "runner/s3_http.h"

namespace pw::api {

using nlohmann::json;

const std::set<std::string, std::less<>>& DrivenOperations() {
  static const std::set<std::string, std::less<>> ops = {
      "StartPipelineExecution",
      "StopPipelineExecution",
      "RetryStageExecution",
      "RollbackStage",
      "EnableStageTransition",
      "DisableStageTransition",
      "PutApprovalResult",
      "OverrideStageCondition",
      "UpdatePipeline",
      "DeletePipeline",
      "PutActionRevision",
      "PutJobSuccessResult",
      "PutJobFailureResult",
      "PutThirdPartyJobSuccessResult",
      "PutThirdPartyJobFailureResult",
  };
  return ops;
}

std::string PipelineOfRequest(std::string_view operation, const json& in,
                              const std::function<std::string(const std::string&)>& job_pipeline) {
  if (!in.is_object()) return "";
  auto text = [](const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (operation == "UpdatePipeline") {
    auto p = in.find("pipeline");
    return p != in.end() && p->is_object() ? text(*p, "name") : "";
  }
  if (operation == "DeletePipeline" || operation == "StartPipelineExecution") {
    return text(in, "name");
  }
  if (operation.find("Job") != std::string_view::npos) {
    const std::string id = text(in, "jobId");
    return id.empty() ? "" : job_pipeline(id);
  }
  return text(in, "pipelineName");
}

Forwarder MakeForwarder(engine::Engine& engine, engine::LeaseManager& leases) {
  return [&engine, &leases](const http::Request& req,
                            std::string_view target) -> std::optional<HttpReply> {
    if (req.HasHeader(kForwardedHeader)) return std::nullopt;  // Sent on once, never twice.
    const size_t dot = target.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    const std::string_view operation = target.substr(dot + 1);
    if (!DrivenOperations().count(operation)) return std::nullopt;
    json in = json::parse(req.body, nullptr, false);
    const std::string pipeline = PipelineOfRequest(operation, in, [&engine](const std::string& id) {
      auto doc = engine.store().GetKv("job/" + id);
      if (!doc.ok() || !doc->has_value()) return std::string();
      json j = json::parse(**doc, nullptr, false);
      return j.is_object() ? j.value("pipeline", "") : std::string();
    });
    if (pipeline.empty()) return std::nullopt;  // The handler says what is wrong.
    // Nobody live drives it (new, or its server died and the lease expired):
    // this server takes it and answers; a lease taken since the last round
    // is found in the store.
    auto [owner, url] = leases.OwnerOrTake(pipeline);
    if (owner.empty() || owner == leases.options().server_id) return std::nullopt;
    auto endpoint = runner::ParseS3Endpoint(url);
    HttpReply reply;
    if (!endpoint) {
      reply.status = 503;
      reply.error_type = "ServiceUnavailableException";
      reply.body = json{{"__type", reply.error_type},
                        {"message", "Pipeline '" + pipeline + "' is driven by server " + owner +
                                        ", whose advertised URL '" + url + "' is not usable."}}
                       .dump();
      return reply;
    }
    httplib::Client client(endpoint->origin);
    client.set_connection_timeout(2, 0);
    client.set_read_timeout(60, 0);
    client.set_write_timeout(10, 0);
    httplib::Headers headers;
    for (const auto& [name, value] : req.headers) {
      std::string lower = name;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower == "content-length" || lower == "connection" || lower == "transfer-encoding" ||
          lower == "content-type") {
        continue;
      }
      headers.emplace(name, value);
    }
    headers.emplace(std::string(kForwardedHeader), engine.ServerId());
    const std::string content_type = req.Header("Content-Type").empty()
                                         ? "application/x-amz-json-1.1"
                                         : req.Header("Content-Type");
    auto res = client.Post(req.target.empty() ? "/" : req.target, headers, req.body, content_type);
    if (!res) {
      reply.status = 503;
      reply.error_type = "ServiceUnavailableException";
      reply.body = json{{"__type", reply.error_type},
                        {"message", "Pipeline '" + pipeline + "' is driven by server " + owner +
                                        ", which did not answer; retry the call (another server "
                                        "takes the pipeline over when its lease expires)."}}
                       .dump();
      return reply;
    }
    reply.status = res->status;
    reply.body = res->body;
    reply.error_type = res->get_header_value("X-Amzn-ErrorType");
    PW_LOG(Debug) << "forwarded " << operation << " of " << pipeline << " to " << owner;
    return reply;
  };
}

void RegisterServerOps(Dispatcher& d, engine::Engine& engine, double lease_seconds) {
  d.Register(std::string(kPipewrightPrefix) + "ListServers", "",
             [&engine, lease_seconds](const json& in, const RequestContext&) -> Result<json> {
               if (!in.is_object() || !in.empty()) {
                 return InvalidArgument("ListServers takes no parameters.", "ValidationException");
               }
               PW_ASSIGN_OR_RETURN(auto servers, engine.store().ListServers());
               PW_ASSIGN_OR_RETURN(auto leases, engine.store().ListLeases());
               PW_ASSIGN_OR_RETURN(auto pipelines, engine.store().ListPipelines());
               std::map<std::string, json> owned;
               std::set<std::string> driven;
               for (const auto& l : leases) {
                 if (l.owner.empty() || l.expired) continue;
                 owned[l.owner].push_back(l.pipeline);
                 driven.insert(l.pipeline);
               }
               json list = json::array();
               for (const auto& s : servers) {
                 list.push_back({{"serverId", s.id},
                                 {"url", s.url},
                                 {"lastHeartbeat", s.heartbeat},
                                 {"live", s.age_seconds < lease_seconds},
                                 {"pipelines", owned.count(s.id) ? owned[s.id] : json::array()}});
               }
               json unowned = json::array();
               if (!servers.empty()) {
                 for (const auto& p : pipelines) {
                   if (!driven.count(p.name)) unowned.push_back(p.name);
                 }
               }
               return json{{"servers", list}, {"unowned", unowned}};
             });
}

}  // namespace pw::api
