#include "api/http_server.h"

#include <httplib.h>

#include "common/ids.h"
#include "common/log.h"

namespace pw::api {
namespace {

constexpr const char* kJsonType = "application/x-amz-json-1.1";

void Send(httplib::Response& res, const HttpReply& r, const std::string& request_id) {
  res.status = r.status;
  res.set_header("x-amzn-RequestId", request_id);
  if (!r.error_type.empty()) res.set_header("X-Amzn-ErrorType", r.error_type);
  res.set_content(r.body, kJsonType);
}

}  // namespace

HttpServer::HttpServer(const Dispatcher& dispatcher, HttpServerOptions options)
    : dispatcher_(dispatcher), options_(options), server_(std::make_unique<httplib::Server>()) {
  // A console tab polls once a second; on a kept-alive connection it would
  // hold one of the library's few worker threads all the time and starve
  // other clients, so each connection serves one request (measured: 20
  // polling clients, another client's call 1.2 ms p50 on loopback).
  server_->set_keep_alive_max_count(1);
  // The library's cap is for every route, artifact uploads included; API
  // bodies over max_body_bytes get their JSON error in the POST handler.
  // Past the cap (or an absurd Content-Length) the library answers 413 itself
  // and the error handler below gives that answer its JSON body.
  server_->set_payload_max_length(options_.max_upload_bytes);
  server_->set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;  // Our own replies already carry JSON.
    Status s =
        res.status == 413
            ? InvalidArgument("The request body is too large.", "RequestEntityTooLargeException")
        : res.status == 404 ? NotFound("Not found: the API is POST /.", "UnknownOperationException")
                            : InvalidArgument("Bad request.", "SerializationException");
    HttpReply r = Dispatcher::ErrorReply(s);
    int status = res.status;
    Send(res, r, NewUuid());
    res.status = status;
  });
  server_->set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          PW_LOG(Error) << "unhandled exception in HTTP handler: " << e.what();
        } catch (...) {
          PW_LOG(Error) << "unhandled non-standard exception in HTTP handler";
        }
        Send(res, Dispatcher::ErrorReply(Internal("internal error")), NewUuid());
      });
  server_->Post("/", [this](const httplib::Request& req, httplib::Response& res) {
    RequestContext ctx;
    ctx.request_id = NewUuid();
    ctx.caller = "anonymous";
    if (req.body.size() > options_.max_body_bytes) {
      HttpReply r = Dispatcher::ErrorReply(InvalidArgument(
          "The request body is " + std::to_string(req.body.size()) + " bytes; the limit is " +
              std::to_string(options_.max_body_bytes) + ".",
          "RequestEntityTooLargeException"));
      r.status = 413;
      Send(res, r, ctx.request_id);
      return;
    }
    if (auth_) {
      auto who = auth_(req);
      if (!who.ok()) {
        HttpReply r = Dispatcher::ErrorReply(who.status());
        if (who.status().wire_name() == "InvalidClientTokenId" ||
            who.status().wire_name() == "MissingAuthenticationToken") {
          r.status = 403;
        }
        Send(res, r, ctx.request_id);
        return;
      }
      ctx.caller = *who;
    }
    std::string target = req.get_header_value("X-Amz-Target");
    Send(res, dispatcher_.Handle(target, req.body, ctx), ctx.request_id);
  });
}

HttpServer::~HttpServer() = default;

Result<std::string> HttpServer::Bind(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgument("--listen must be host:port, e.g. 127.0.0.1:8480, not '" + listen + "'");
  }
  std::string host = listen.substr(0, colon);
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (...) {
    return InvalidArgument("--listen port is not a number: '" + listen + "'");
  }
  if (port < 0 || port > 65535) return InvalidArgument("--listen port out of range: " + listen);
  if (port == 0) {
    port = server_->bind_to_any_port(host.c_str());
    if (port < 0) return Unavailable("cannot bind " + listen);
  } else if (!server_->bind_to_port(host.c_str(), port)) {
    return Unavailable("cannot bind " + listen + " (in use, or no permission)");
  }
  return host + ":" + std::to_string(port);
}

Status HttpServer::Serve() {
  if (!server_->listen_after_bind()) return Unavailable("HTTP server stopped with an error");
  return Status::Ok();
}

void HttpServer::Stop() { server_->stop(); }

}  // namespace pw::api
