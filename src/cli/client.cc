#include "cli/client.h"

#include <httplib.h>

#include <array>
#include <ctime>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#ifdef PW_HAVE_SIGV4
#include "sigv4/sigv4.h"
#endif

namespace pw::cli {

namespace {

constexpr std::string_view kContentType = "application/x-amz-json-1.1";

struct ParsedUrl {
  std::string scheme;  // "http" or "https".
  std::string host;
  int port = 0;
  bool explicit_port = false;
  std::string path;  // Base path without trailing '/'.
};

std::optional<ParsedUrl> ParseUrl(const std::string& url) {
  ParsedUrl u;
  auto sep = url.find("://");
  if (sep == std::string::npos) return std::nullopt;
  u.scheme = url.substr(0, sep);
  if (u.scheme != "http" && u.scheme != "https") return std::nullopt;
  std::string rest = url.substr(sep + 3);
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!u.path.empty() && u.path.back() == '/') u.path.pop_back();
  u.port = u.scheme == "https" ? 443 : 80;
  auto colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
    std::string port = authority.substr(colon + 1);
    if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos ||
        port.size() > 5) {
      return std::nullopt;
    }
    u.port = std::stoi(port);
    u.explicit_port = true;
    authority = authority.substr(0, colon);
  }
  u.host = authority;
  if (u.host.empty()) return std::nullopt;
  return u;
}

std::string ReasonPhrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 413:
      return "Request Entity Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

Status ErrorFromResponse(int http_status, const std::string& body) {
  std::string code = std::to_string(http_status);
  std::string message = ReasonPhrase(http_status);
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!body.empty() && !j.is_discarded() && j.is_object()) {
    message = "";
    if (j.contains("__type") && j["__type"].is_string()) code = j["__type"].get<std::string>();
    if (j.contains("message") && j["message"].is_string()) {
      message = j["message"].get<std::string>();
    } else if (j.contains("Message") && j["Message"].is_string()) {
      message = j["Message"].get<std::string>();
    }
  }
  if (auto colon = code.find(':'); colon != std::string::npos) code = code.substr(0, colon);
  if (auto hash = code.rfind('#'); hash != std::string::npos) code = code.substr(hash + 1);
  StatusCode sc = StatusCode::kInvalidArgument;
  if (http_status >= 500) {
    sc = StatusCode::kUnavailable;
  } else if (IsRetryableErrorCode(code)) {
    sc = StatusCode::kResourceExhausted;
  }
  return Status(sc, message, code);
}

}  // namespace

bool IsRetryableErrorCode(std::string_view code) {
  static constexpr std::array<std::string_view, 16> kCodes = {
      // Throttling (botocore retries/standard.py).
      "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
      "TooManyRequestsException", "ProvisionedThroughputExceededException",
      "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
      "LimitExceededException", "RequestThrottled", "SlowDown", "EC2ThrottledException",
      // Transient.
      "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"};
  for (auto c : kCodes) {
    if (c == code) return true;
  }
  return false;
}

bool IsConnectionFailure(const Status& status) {
  return status.code() == StatusCode::kUnavailable && status.wire_name().empty();
}

Client::Client(ClientOptions options) : options_(std::move(options)) {}

std::string Client::RequestUrl() const {
  std::string url = options_.endpoint_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url + "/";
}

Result<std::string> Client::Send(std::string_view target, const std::string& body,
                                 SendInfo* info) const {
  std::optional<ParsedUrl> url = ParseUrl(options_.endpoint_url);
  if (!url) {
    return InvalidArgument("Invalid endpoint: " + options_.endpoint_url, "");
  }
  const std::string host_header =
      url->explicit_port ? url->host + ":" + std::to_string(url->port) : url->host;
  const std::string path = url->path + "/";

  httplib::Client http(url->scheme + "://" + url->host + ":" + std::to_string(url->port));
  http.set_connection_timeout(options_.connect_timeout);
  http.set_read_timeout(options_.read_timeout);
  http.enable_server_certificate_verification(options_.verify_ssl);
  if (!options_.ca_bundle.empty()) http.set_ca_cert_path(options_.ca_bundle.c_str());

  std::mt19937_64 rng(std::random_device{}());
  SendInfo local_info;
  SendInfo& out_info = info != nullptr ? *info : local_info;
  out_info = SendInfo{};
  Status last;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    if (attempt > 1) {
      ++out_info.retries;
      auto cap = options_.backoff_base.count() * (int64_t{1} << (attempt - 2));
      std::uniform_int_distribution<int64_t> dist(0, cap);
      std::this_thread::sleep_for(std::chrono::milliseconds(dist(rng)));
    }
    // Signed per attempt: each attempt carries a fresh X-Amz-Date.
    httplib::Headers headers = {
        {"Host", host_header},
        {"X-Amz-Target", std::string(target)},
        {"User-Agent", "pipewright-cli/0.1.0"},
    };
#ifdef PW_HAVE_SIGV4
    if (options_.credentials) {
      sigv4::HttpRequestView view;
      view.method = "POST";
      view.path = path;
      view.headers = {{"Content-Type", std::string(kContentType)},
                      {"Host", host_header},
                      {"X-Amz-Target", std::string(target)}};
      view.body = body;
      sigv4::Credentials creds{options_.credentials->access_key_id,
                               options_.credentials->secret_access_key,
                               options_.credentials->session_token};
      for (auto& [k, v] : sigv4::Sign(view, creds, options_.region, "codepipeline",
                                      static_cast<int64_t>(std::time(nullptr)))) {
        headers.emplace(k, v);
      }
    }
#endif
    if (options_.debug_log) {
      options_.debug_log("Sending POST " + RequestUrl() + " X-Amz-Target: " + std::string(target) +
                         " body: " + body);
    }
    httplib::Result res = http.Post(path, headers, body, std::string(kContentType));
    bool retryable = false;
    if (!res) {
      if (options_.debug_log) {
        options_.debug_log("Connection error: " + httplib::to_string(res.error()));
      }
      last = Unavailable("Could not connect to the endpoint URL: \"" + RequestUrl() + "\"");
      retryable = true;
    } else {
      if (options_.debug_log) {
        options_.debug_log("Response " + std::to_string(res->status) + ": " + res->body);
      }
      if (res->status >= 200 && res->status < 300) return res->body;
      last = ErrorFromResponse(res->status, res->body);
      retryable = res->status >= 500 || IsRetryableErrorCode(last.wire_name());
    }
    if (!retryable) return last;
  }
  out_info.max_attempts_reached = !IsConnectionFailure(last);
  return last;
}

Result<std::string> Client::Get(std::string_view path_and_query) const {
  std::optional<ParsedUrl> url = ParseUrl(options_.endpoint_url);
  if (!url) {
    return InvalidArgument("Invalid endpoint: " + options_.endpoint_url, "");
  }
  httplib::Client http(url->scheme + "://" + url->host + ":" + std::to_string(url->port));
  http.set_connection_timeout(options_.connect_timeout);
  http.set_read_timeout(options_.read_timeout);
  http.enable_server_certificate_verification(options_.verify_ssl);
  if (!options_.ca_bundle.empty()) http.set_ca_cert_path(options_.ca_bundle.c_str());
  const std::string path = url->path + std::string(path_and_query);
  std::mt19937_64 rng(std::random_device{}());
  Status last;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    if (attempt > 1) {
      auto cap = options_.backoff_base.count() * (int64_t{1} << (attempt - 2));
      std::uniform_int_distribution<int64_t> dist(0, cap);
      std::this_thread::sleep_for(std::chrono::milliseconds(dist(rng)));
    }
    if (options_.debug_log) options_.debug_log("Sending GET " + path);
    httplib::Headers headers = {{"User-Agent", "pipewright-cli/0.1.0"}};
#ifdef PW_HAVE_SIGV4
    // Logs are behind the same authentication as the API: signed per attempt.
    if (options_.credentials) {
      const std::string host_header =
          url->explicit_port ? url->host + ":" + std::to_string(url->port) : url->host;
      sigv4::HttpRequestView view;
      view.method = "GET";
      auto q = path.find('?');
      view.path = path.substr(0, q);
      view.query = q == std::string::npos ? "" : path.substr(q + 1);
      view.headers = {{"Host", host_header}};
      sigv4::Credentials creds{options_.credentials->access_key_id,
                               options_.credentials->secret_access_key,
                               options_.credentials->session_token};
      headers.emplace("Host", host_header);
      for (auto& [k, v] : sigv4::Sign(view, creds, options_.region, "codepipeline",
                                      static_cast<int64_t>(std::time(nullptr)))) {
        headers.emplace(k, v);
      }
    }
#endif
    httplib::Result res = http.Get(path, headers);
    if (!res) {
      last = Unavailable("Could not connect to the endpoint URL: \"" + RequestUrl() + "\"");
      continue;
    }
    if (options_.debug_log) {
      options_.debug_log("Response " + std::to_string(res->status) + " (" +
                         std::to_string(res->body.size()) + " bytes)");
    }
    if (res->status >= 200 && res->status < 300) return res->body;
    const std::string code = std::to_string(res->status);
    std::string message = res->body.substr(0, res->body.find('\n'));
    if (message.empty()) message = ReasonPhrase(res->status);
    if (res->status == 404) return NotFound(message, code);
    if (res->status < 500) return InvalidArgument(message, code);
    last = Unavailable(message, code);
  }
  return last;
}

}  // namespace pw::cli
