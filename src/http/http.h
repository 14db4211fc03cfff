#pragma once

// The HTTP front's request and response, independent of the library that
// parses the wire (Boost.Beast, see server.h). Handlers see only these.
//
//   server.Route("GET", R"(/logs/([0-9a-f-]{36}))", {}, [](const Request& req, Response& res) {
//     res.body = ReadLog(req.params[0]);
//   });
//
// Thread-compatible: one Request/Response pair belongs to one handler call.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pw::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;  // "GET", "POST", …
  std::string target;  // As sent: "/a/b%20c?x=1".
  std::string path;    // Target before '?', still percent-encoded.
  std::string query;   // Target after '?', still percent-encoded ("" when none).
  Headers headers;     // As received, names as sent.
  // The body of a kMemory route. Empty for kStream routes.
  std::string body;
  // The body of a kStream route: a temporary file holding it (deleted after
  // the handler returns; a handler may rename it away to keep it), its size
  // and its hex SHA-256. Empty for kMemory routes.
  std::string body_file;
  uint64_t body_size = 0;
  std::string body_sha256;
  std::string peer;  // Remote address, e.g. "127.0.0.1".
  bool tls = false;
  std::vector<std::string> params;  // Capture groups of the route's pattern.
  // Identity set by the server's authenticator ("" when auth is off or the
  // route is public).
  std::string caller;
  std::string access_key_id;
  // When the request arrived; parked requests (Response::park) keep it.
  std::chrono::steady_clock::time_point received;

  // Header value by case-insensitive name; "" when absent.
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
  // Query parameter, percent-decoded; "" when absent.
  std::string Query(std::string_view name) const;
  bool HasQuery(std::string_view name) const;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  // When non-empty, the body is this file's bytes [file_offset, file_offset +
  // file_length), streamed from disk (file_length = -1: to the end).
  std::string file;
  uint64_t file_offset = 0;
  int64_t file_length = -1;
  // Set by a handler that has nothing to say yet (a long poll): the server
  // calls the handler again when WakeParked() is called or after a short
  // while, without holding a thread meanwhile. The handler decides when to
  // stop (e.g. from Request::received).
  bool park = false;

  void SetHeader(std::string name, std::string value);
  // A JSON error body {"__type": type, "message": message} with that status.
  void JsonError(int http_status, std::string_view type, std::string_view message);
};

using Handler = std::function<void(const Request&, Response&)>;

// Percent-decodes `s` ('+' stays '+'). Invalid escapes are kept as they are.
std::string PercentDecode(std::string_view s);

}  // namespace pw::http
