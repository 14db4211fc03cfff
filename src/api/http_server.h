#pragma once

// The awsJson1_1 API on the HTTP front: POST / with X-Amz-Target, answered
// by a Dispatcher. A handler that sets RequestContext::park (a long poll with
// nothing to return yet) is parked by the front without holding a thread and
// called again until it answers.
//
//   http::Server server(options);
//   api::RegisterApiRoute(server, dispatcher);

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "api/dispatcher.h"
#include "http/server.h"

namespace pw::api {

inline constexpr size_t kMaxApiBodyBytes = 1 << 20;

// `dispatcher` must outlive the server.
void RegisterApiRoute(http::Server& server, const Dispatcher& dispatcher);
// The same, asking `forward` first (several servers, api/forward.h): when it
// returns a reply (another server answered), that reply is sent as it is.
void RegisterApiRoute(
    http::Server& server, const Dispatcher& dispatcher,
    std::function<std::optional<HttpReply>(const http::Request&, std::string_view)> forward);

// Counts an answered request in engine::Metrics() (operation, error code,
// latency) and logs it.
void RecordRequest(std::string_view target, const HttpReply& reply,
                   std::chrono::steady_clock::time_point received, const RequestContext& ctx);

// GET /metrics: `render()` in the Prometheus text format, authenticated like
// the API and, when `authorize` is given, only for requests it allows (a
// refusal is a 403 AccessDeniedException with its message). Register before
// api::RegisterS3Endpoint.
void RegisterMetricsRoute(http::Server& server, std::function<std::string()> render,
                          std::function<Status(const http::Request&)> authorize = nullptr);

// Sends a Dispatcher reply with the request id header.
void SendReply(http::Response& res, const HttpReply& reply, const std::string& request_id);
void SendReply(http::Response& res, HttpReply&& reply, const std::string& request_id);

}  // namespace pw::api
