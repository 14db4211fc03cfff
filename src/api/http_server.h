#pragma once

// HttpServer: the network face. Serves the awsJson1_1 API at POST / through a
// Dispatcher, and extra routes (console, artifacts) registered by other
// faces. Built on cpp-httplib; an exception escaping a handler becomes a 500
// JSON error, never a crash or a leaked message.
//
//   HttpServer server(dispatcher, {.max_body_bytes = 1 << 20});
//   auto addr = server.Bind("127.0.0.1:0");   // "127.0.0.1:43121"
//   server.Serve();                            // blocks until Stop()
//
// Bind/Serve/Stop from any thread; Stop() may be called from a signal-handling thread.

#include <functional>
#include <memory>
#include <string>

#include "api/dispatcher.h"
#include "common/status.h"

namespace httplib {
class Server;
struct Request;
}  // namespace httplib

namespace pw::api {

struct HttpServerOptions {
  size_t max_body_bytes = 1 << 20;            // An API request (POST /).
  size_t max_upload_bytes = size_t{1} << 30;  // Any request, e.g. a worker's artifact PUT.
};

// Returns the caller identity for a request, or an error (e.g. a bad
// signature) that is sent as the reply. Unset = every request allowed.
using Authenticator = std::function<Result<std::string>(const httplib::Request&)>;

class HttpServer {
 public:
  // `dispatcher` must outlive the server.
  HttpServer(const Dispatcher& dispatcher, HttpServerOptions options);
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();

  void SetAuthenticator(Authenticator auth) { auth_ = std::move(auth); }
  // The underlying server, to register more routes before Serve().
  httplib::Server& raw() { return *server_; }

  // Binds "host:port" (port 0 picks a free one). Returns "host:port" bound.
  Result<std::string> Bind(const std::string& listen);
  // Serves until Stop(). Returns an error if the socket fails.
  Status Serve();
  void Stop();

 private:
  const Dispatcher& dispatcher_;
  HttpServerOptions options_;
  Authenticator auth_;
  std::unique_ptr<httplib::Server> server_;
};

}  // namespace pw::api
