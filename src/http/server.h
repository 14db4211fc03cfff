#pragma once

// Server: the hardened HTTP/1.1 front, event-driven on Boost.Asio/Beast.
//
// One I/O thread reads and writes every connection; handlers run on a
// bounded pool, so a slow or idle client costs a socket and a few KiB, never
// a thread, and clients (by address) take turns for its threads
// (http/fair_scheduler.h), so one client's backlog does not queue another's. Every connection has
// deadlines (headers, body, idle keep-alive), header and body size limits, and there are caps on
// connections in total and per client address (the oldest idle connection of a client is closed
// first). Requests are authenticated from their headers before a body is read. Errors the front
// itself answers are JSON {"__type", "message"}.
//
//   http::Server server(options);
//   server.Route("POST", "/", {.body = BodyMode::kMemory}, handler);
//   auto addr = server.Bind("127.0.0.1:0");   // "127.0.0.1:43121"; fails if in use
//   server.Serve();                            // blocks until Stop()
//
// Route/SetAuthenticator before Serve(); Stop() and WakeParked() from any thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "http/http.h"

namespace pw::http {

struct ServerOptions {
  int handler_threads = 8;                  // Bounded pool for handlers.
  size_t max_header_bytes = 16 * 1024;      // Request line + headers.
  size_t max_connections = 4096;            // In total.
  size_t max_connections_per_client = 256;  // Per remote address.
  double header_timeout_seconds = 10;       // From the first byte to the end of headers.
  // Deadline of a request body, and of an answer = 30 s + size / this rate.
  double body_min_bytes_per_second = 64 * 1024;
  // A body or an answer that stops (no byte moves for this long) ends its
  // connection; one that moves no byte for a second, or slower than
  // body_min_bytes_per_second after a second, makes its connection evictable
  // when a cap is reached, as an idle one is.
  double body_stall_seconds = 20;
  double idle_timeout_seconds = 30;    // Kept-alive connection with no request.
  double park_recheck_seconds = 0.25;  // How often parked handlers are re-run.
  std::string tls_cert_file;           // PEM; TLS when both are set.
  std::string tls_key_file;
};

enum class BodyMode {
  kNone,    // A body is refused (413) unless empty.
  kMemory,  // Read into Request::body, up to RouteOptions::max_body_bytes.
  kStream,  // Streamed to a temporary file in RouteOptions::temp_dir, hashed unless hash_body is
            // off.
};

enum class AuthMode {
  kRequired,  // The authenticator (when set) must accept the request.
  kPublic,    // Served without authentication (console assets, sign-in).
};

// Decides whether a request may proceed. Called with the request's headers
// (body not yet read; Request::body empty). Returns OK and may set
// req.caller/access_key_id, or fills `res` with the refusal (401/403 JSON) and
// returns an error. `phase` is kHeaders before the body, kBody after it
// (the API verifies its SigV4 body hash then).
enum class AuthPhase { kHeaders, kBody };
using Authenticator = std::function<Status(AuthPhase phase, Request& req, Response& res)>;

struct RouteOptions {
  BodyMode body = BodyMode::kNone;
  size_t max_body_bytes = 1 << 20;
  AuthMode auth = AuthMode::kRequired;
  // For kStream: where temporary body files go (must exist).
  std::string temp_dir = "/tmp";
  // For kStream: set Request::body_sha256 (a second pass over the file; only
  // routes that check the hash need it).
  bool hash_body = true;
  // When set, authenticates this route instead of the server's authenticator
  // (e.g. the S3 endpoint's job credentials), even when auth is off.
  Authenticator authenticator;
  // When set, tried on the I/O thread before `handler` (which runs on the
  // handler pool): answers and returns true when it can without blocking
  // (e.g. from a cache), else returns false and `handler` runs as usual.
  // Only for requests that need no authentication, with a memory body of at
  // most kMaxFastBodyBytes. It saves two thread hand-offs per request.
  std::function<bool(const Request&, Response&)> fast;
};

// The largest request body a RouteOptions::fast handler is given (parsing
// more on the I/O thread would delay every other connection).
inline constexpr size_t kMaxFastBodyBytes = 4096;

class Server {
 public:
  explicit Server(ServerOptions options);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // `pattern` is an RE2 pattern matched against the whole percent-encoded
  // path; its capture groups become Request::params. Routes are tried in
  // registration order; a path that matches a route for another method gets
  // 405. `method` "GET" also serves HEAD (body omitted).
  void Route(std::string method, std::string pattern, RouteOptions options, Handler handler);
  void SetAuthenticator(Authenticator auth);

  // Binds "host:port" (port 0 picks a free one). Fails with kUnavailable and
  // a message when the port is in use (no SO_REUSEPORT), or the TLS
  // certificate cannot be loaded. Returns "host:port" bound.
  Result<std::string> Bind(const std::string& listen);
  // Serves until Stop(); returns after in-flight handlers finished.
  Status Serve();
  void Stop();
  // Re-runs parked handlers soon (e.g. a job was queued).
  void WakeParked();

  // Test hooks: counts of open connections and parked requests.
  size_t OpenConnectionsForTest() const;
  // Requests read and waiting for a handler thread (FairScheduler::Waiting).
  size_t WaitingHandlersForTest() const;
  // Connections reading a request body now.
  size_t ReceivingBodiesForTest() const;
  // Test and fuzzing hook: routes `req` as a connection does once it has read
  // it (route, authentication of both phases, handler), on the calling thread
  // and without a socket. `req.body` is the body: a kStream route gets it as
  // a temporary file, removed afterwards; a kNone route with a body gets 413.
  // A handler's exception propagates (a connection would answer 500).
  Response HandleForTest(Request req);

  class Impl;  // Implementation detail (server.cc), public only for its connections.

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pw::http
