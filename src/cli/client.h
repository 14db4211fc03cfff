#pragma once

// The CLI's HTTP client for the awsJson1_1 wire protocol: POST / with
// X-Amz-Target, SigV4-signed when credentials are known, retried like
// botocore's standard mode (3 attempts on connection errors, HTTP 5xx and
// throttling/transient error codes, jittered exponential backoff).
//
//   Client client({.endpoint_url = "http://127.0.0.1:8480", .region = "us-east-1"});
//   auto body = client.Send("CodePipeline_20150709.ListPipelines", "{}");
//
// Thread-compatible: one Client per thread (each Send opens its own connection).

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace pw::cli {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // Empty when not using temporary credentials.
};

struct ClientOptions {
  std::string endpoint_url;  // "http://host:port", no trailing path needed.
  std::string region = "us-east-1";
  std::optional<Credentials> credentials;  // Unsigned requests when absent.
  int max_attempts = 3;
  std::chrono::milliseconds backoff_base{100};  // Sleep is random in [0, base * 2^retry].
  std::chrono::seconds connect_timeout{60};
  std::chrono::seconds read_timeout{60};
  bool verify_ssl = true;
  std::string ca_bundle;  // PEM file of CAs to trust for https:// (--ca-bundle, AWS_CA_BUNDLE).
  // Receives --debug lines; may be empty.
  std::function<void(const std::string&)> debug_log;
};

// How a Send went, for aws's "(reached max retries: N)" suffix.
struct SendInfo {
  int retries = 0;                    // Attempts after the first.
  bool max_attempts_reached = false;  // Gave up on a retryable error.
};

class Client {
 public:
  explicit Client(ClientOptions options);

  // Sends `body` as operation `target` (full X-Amz-Target value). Returns the
  // response body of a 2xx answer (possibly empty). Failures:
  //  * could not connect (after retries): kUnavailable, empty wire_name, message
  //    `Could not connect to the endpoint URL: "<url>/"`;
  //  * an error response: wire_name = its `__type` (sanitized as botocore does:
  //    "ns#Name:extra" -> "Name"; the HTTP status code when absent), message =
  //    its `message`/`Message` (the HTTP reason phrase for an empty body);
  //    code kUnavailable for 5xx, kResourceExhausted for throttling, else
  //    kInvalidArgument;
  //  * unsupported endpoint URL: kInvalidArgument, empty wire_name.
  // `info`, if not null, receives the retry count.
  Result<std::string> Send(std::string_view target, const std::string& body,
                           SendInfo* info = nullptr) const;

  // GETs `path_and_query` ("/logs/<id>?offset=10") below the endpoint's base
  // path, unsigned, and returns the body of a 2xx answer. Connection failures
  // and 5xx answers are retried as Send retries them. Failures: kNotFound
  // (wire_name "404") for a 404; could not connect: as Send; any other
  // answer: kUnavailable for 5xx, else kInvalidArgument, wire_name the HTTP
  // status and message the body's first line.
  Result<std::string> Get(std::string_view path_and_query) const;

  const ClientOptions& options() const { return options_; }

  // The URL aws names in its connection error: the endpoint plus "/".
  std::string RequestUrl() const;

 private:
  ClientOptions options_;
};

// True for the Status Send returns when no connection could be made.
bool IsConnectionFailure(const Status& status);

// True for error codes botocore's standard retry mode retries (throttling and
// transient codes, including CodePipeline's LimitExceededException).
bool IsRetryableErrorCode(std::string_view code);

}  // namespace pw::cli
