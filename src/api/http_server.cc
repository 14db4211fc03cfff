#include "api/http_server.h"

#include <chrono>
#include <string>
#include <unordered_map>

#include "common/ids.h"
#include "common/log.h"
#include "common/metrics.h"
#include "engine/server_metrics.h"

namespace pw::api {

void SendReply(http::Response& res, const HttpReply& r, const std::string& request_id) {
  res.status = r.status;
  res.SetHeader("x-amzn-RequestId", request_id);
  res.SetHeader("Content-Type", "application/x-amz-json-1.1");
  if (!r.error_type.empty()) res.SetHeader("X-Amzn-ErrorType", r.error_type);
  res.body = r.body;
}

void SendReply(http::Response& res, HttpReply&& r, const std::string& request_id) {
  res.status = r.status;
  res.SetHeader("x-amzn-RequestId", request_id);
  res.SetHeader("Content-Type", "application/x-amz-json-1.1");
  if (!r.error_type.empty()) res.SetHeader("X-Amzn-ErrorType", r.error_type);
  res.body = std::move(r.body);  // The API's replies: moved, not copied.
}

void RegisterApiRoute(http::Server& server, const Dispatcher& dispatcher) {
  RegisterApiRoute(server, dispatcher, nullptr);
}

void RegisterApiRoute(
    http::Server& server, const Dispatcher& dispatcher,
    std::function<std::optional<HttpReply>(const http::Request&, std::string_view)> forward) {
  http::RouteOptions opts;
  opts.body = http::BodyMode::kMemory;
  opts.max_body_bytes = kMaxApiBodyBytes;
  // Cached reads answered on the I/O thread (Dispatcher::HandleFast). Not
  // with several servers (forward): their reads are never cached.
  if (!forward) {
    opts.fast = [&dispatcher](const http::Request& req, http::Response& res) {
      RequestContext ctx;
      ctx.caller = req.caller.empty() ? "anonymous" : req.caller;
      ctx.access_key_id = req.access_key_id;
      const std::string target = req.Header("X-Amz-Target");
      std::optional<HttpReply> reply = dispatcher.HandleFast(target, req.body, ctx);
      if (!reply) return false;
      ctx.request_id = NewUuid();
      RecordRequest(target, *reply, req.received, ctx);
      SendReply(res, std::move(*reply), ctx.request_id);
      return true;
    };
  }
  server.Route(
      "POST", "/", opts,
      [&dispatcher, forward = std::move(forward)](const http::Request& req, http::Response& res) {
        if (forward) {
          if (auto reply = forward(req, req.Header("X-Amz-Target"))) {
            const std::string request_id = NewUuid();
            SendReply(res, *reply, request_id);
            return;
          }
        }
        RequestContext ctx;
        ctx.request_id = NewUuid();
        ctx.caller = req.caller.empty() ? "anonymous" : req.caller;
        ctx.access_key_id = req.access_key_id;
        ctx.waited_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - req.received).count();
        const std::string target = req.Header("X-Amz-Target");
        HttpReply reply = dispatcher.Handle(target, req.body, ctx);
        if (ctx.park) {
          res.park = true;
          return;
        }
        RecordRequest(target, reply, req.received, ctx);
        SendReply(res, std::move(reply), ctx.request_id);
      });
}

void RecordRequest(std::string_view target, const HttpReply& reply,
                   std::chrono::steady_clock::time_point received, const RequestContext& ctx) {
  // Labels come from registered targets and modeled error codes only: an
  // unknown X-Amz-Target (any client string) is counted as "unknown".
  std::string operation = "unknown";
  if (reply.error_type != "UnknownOperationException") {
    const size_t dot = target.find('.');
    operation = std::string(dot == std::string_view::npos ? target : target.substr(dot + 1));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - received).count();
  engine::ServerMetrics& m = engine::Metrics();
  // The series of each (operation, error) pair, looked up once per thread:
  // series live as long as the process (metrics::Family never drops one).
  struct Series {
    metrics::Counter* requests;
    metrics::Histogram* seconds;
  };
  thread_local std::unordered_map<std::string, Series> series;
  const std::string key = operation + '\n' + reply.error_type;
  auto found = series.find(key);
  if (found == series.end()) {
    found = series
                .emplace(key, Series{&m.api_requests.With({operation, reply.error_type}),
                                     &m.api_request_seconds.With({operation, reply.error_type})})
                .first;
  }
  found->second.requests->Inc();
  found->second.seconds->Observe(seconds);
  if (operation == "RetryStageExecution" && !reply.error_type.empty()) {
    m.retry_refusals.With({reply.error_type}).Inc();
  }
  PW_LOG(Info)
          .Field("request_id", ctx.request_id)
          .Field("operation", operation)
          .Field("pipeline", ctx.log_pipeline)
          .Field("execution_id", ctx.log_execution_id)
          .Field("caller", ctx.caller)
          .Field("status", reply.status)
          .Field("error", reply.error_type)
          .Field("duration_ms", static_cast<int64_t>(seconds * 1000))
      << "request";
}

void RegisterMetricsRoute(http::Server& server, std::function<std::string()> render,
                          std::function<Status(const http::Request&)> authorize) {
  // Authenticated like the API (when auth is on). Register before the S3
  // endpoint, whose routes match any /<bucket>: a bucket named "metrics" is
  // refused at creation (LocalBuckets::CreateBucket).
  server.Route("GET", "/metrics", {},
               [render = std::move(render), authorize = std::move(authorize)](
                   const http::Request& req, http::Response& res) {
                 if (authorize) {
                   Status s = authorize(req);
                   if (!s.ok()) return res.JsonError(403, "AccessDeniedException", s.message());
                 }
                 res.SetHeader("Content-Type", std::string(metrics::kContentType));
                 res.body = render();
               });
}

}  // namespace pw::api
