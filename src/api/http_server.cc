#include "api/http_server.h"

#include <chrono>

#include "common/ids.h"

namespace pw::api {

void SendReply(http::Response& res, const HttpReply& r, const std::string& request_id) {
  res.status = r.status;
  res.SetHeader("x-amzn-RequestId", request_id);
  res.SetHeader("Content-Type", "application/x-amz-json-1.1");
  if (!r.error_type.empty()) res.SetHeader("X-Amzn-ErrorType", r.error_type);
  res.body = r.body;
}

void RegisterApiRoute(http::Server& server, const Dispatcher& dispatcher) {
  http::RouteOptions opts;
  opts.body = http::BodyMode::kMemory;
  opts.max_body_bytes = kMaxApiBodyBytes;
  server.Route("POST", "/", opts, [&dispatcher](const http::Request& req, http::Response& res) {
    RequestContext ctx;
    ctx.request_id = NewUuid();
    ctx.caller = req.caller.empty() ? "anonymous" : req.caller;
    ctx.access_key_id = req.access_key_id;
    ctx.waited_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - req.received).count();
    HttpReply reply = dispatcher.Handle(req.Header("X-Amz-Target"), req.body, ctx);
    if (ctx.park) {
      res.park = true;
      return;
    }
    SendReply(res, reply, ctx.request_id);
  });
}

}  // namespace pw::api
