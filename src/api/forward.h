#pragma once

// Several servers: a mutating call for a pipeline another live server drives
// is sent on to that server (the original headers and body, so the caller's
// SigV4 signature still holds: every server shares the keys file), marked
// with X-Pipewright-Forwarded so it is never sent on twice. Reads are not
// forwarded: they are answered from the database (Engine::ViewLocked).
// Thread-safe.
//
//   api::RegisterApiRoute(http, dispatcher, api::MakeForwarder(engine, leases));

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "api/dispatcher.h"
#include "http/http.h"

namespace pw::engine {
class Engine;
class LeaseManager;
}  // namespace pw::engine

namespace pw::api {

inline constexpr std::string_view kForwardedHeader = "X-Pipewright-Forwarded";

// The operations (without prefix) whose effect is an engine decision on one
// pipeline: these run on the pipeline's owner.
const std::set<std::string, std::less<>>& DrivenOperations();

// The pipeline a driven operation acts on ("" when the input names none):
// pipelineName, UpdatePipeline's pipeline.name, DeletePipeline's name; for
// job results the job's pipeline, read through `job_pipeline`.
std::string PipelineOfRequest(std::string_view operation, const nlohmann::json& input,
                              const std::function<std::string(const std::string&)>& job_pipeline);

// Returns the reply to send when another server must answer, nullopt to
// handle the request here. Both must outlive the route.
using Forwarder =
    std::function<std::optional<HttpReply>(const http::Request& req, std::string_view target)>;
Forwarder MakeForwarder(engine::Engine& engine, engine::LeaseManager& leases);

// Extension operation Pipewright_20261125.ListServers (authorized as
// codepipeline:ListServers on "*"): {"servers": [{"serverId", "url",
// "lastHeartbeat", "live", "pipelines": [...]}], "unowned": [...]}: every
// server that shares the database, whether its heartbeat is younger than a
// lease, and the pipelines whose unexpired lease it holds; pipelines nobody
// drives now. With one server (no --server-id) the list is empty.
void RegisterServerOps(Dispatcher& d, engine::Engine& engine, double lease_seconds);

}  // namespace pw::api
