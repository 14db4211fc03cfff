#include "runner/s3_client.h"

#include <httplib.h>

#include <cstdlib>
#include <ctime>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "sigv4/canonical_request.h"
#include "sigv4/crypto.h"

namespace pw::runner {

namespace {

struct Endpoint {
  std::string origin;       // "http://host:port" for httplib.
  std::string host_header;  // "host[:port]" as it will be signed.
  std::string base_path;    // "" or "/base", without a trailing '/'.
};

std::optional<Endpoint> ParseEndpoint(const std::string& url) {
  auto sep = url.find("://");
  if (sep == std::string::npos) return std::nullopt;
  std::string scheme = url.substr(0, sep);
  if (scheme != "http" && scheme != "https") return std::nullopt;
  std::string rest = url.substr(sep + 3);
  auto slash = rest.find('/');
  Endpoint e;
  std::string authority = rest.substr(0, slash);
  e.base_path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!e.base_path.empty() && e.base_path.back() == '/') e.base_path.pop_back();
  if (authority.empty()) return std::nullopt;
  e.host_header = authority;
  std::string host = authority;
  int port = scheme == "https" ? 443 : 80;
  auto colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
    std::string digits = authority.substr(colon + 1);
    if (digits.empty() || digits.size() > 5 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
    port = std::stoi(digits);
    host = authority.substr(0, colon);
  }
  e.origin = scheme + "://" + host + ":" + std::to_string(port);
  return e;
}

// The text of <tag>…</tag> in an S3 error document, or "".
std::string XmlField(const std::string& xml, const std::string& tag) {
  auto open = xml.find("<" + tag + ">");
  if (open == std::string::npos) return "";
  open += tag.size() + 2;
  auto close = xml.find("</" + tag + ">", open);
  if (close == std::string::npos) return "";
  return xml.substr(open, close - open);
}

Status ErrorFrom(int status, const std::string& body, const std::string& what) {
  std::string code = XmlField(body, "Code");
  std::string message = XmlField(body, "Message");
  if (code.empty()) code = std::to_string(status);
  if (message.empty()) message = "HTTP " + std::to_string(status);
  message = what + ": " + code + ": " + message;
  if (status == 404) return NotFound(message, code);
  if (status == 403) return FailedPrecondition(message, code);
  if (status >= 500) return Unavailable(message, code);
  return InvalidArgument(message, code);
}

}  // namespace

S3Client::S3Client(S3ClientOptions options) : options_(std::move(options)) {}

std::string S3Client::PathOf(const S3ObjectRef& object) const {
  std::optional<Endpoint> e = ParseEndpoint(options_.endpoint_url);
  std::string base = e ? e->base_path : "";
  return base + "/" + sigv4::UriEncode(object.bucket, false) + "/" +
         sigv4::UriEncode(object.key, true);
}

Result<S3Client::Response> S3Client::Send(std::string_view method, const S3ObjectRef& object,
                                          std::string_view body,
                                          const sigv4::Credentials& creds) const {
  std::optional<Endpoint> e = ParseEndpoint(options_.endpoint_url);
  if (!e) return InvalidArgument("Invalid endpoint: " + options_.endpoint_url, "");
  const std::string path = PathOf(object);
  const std::string what = std::string(method) + " s3://" + object.bucket + "/" + object.key;
  const std::string payload_hash = sigv4::Sha256Hex(body);

  httplib::Client http(e->origin);
  http.set_connection_timeout(options_.timeout);
  http.set_read_timeout(options_.timeout);
  http.set_write_timeout(options_.timeout);
  std::mt19937_64 rng(std::random_device{}());
  Status last;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    if (attempt > 1) {
      auto cap = options_.backoff_base.count() * (int64_t{1} << (attempt - 2));
      std::uniform_int_distribution<int64_t> dist(cap / 2, cap);
      std::this_thread::sleep_for(std::chrono::milliseconds(dist(rng)));
    }
    sigv4::HttpRequestView view;
    view.method = std::string(method);
    view.path = path;
    view.headers = {{"Host", e->host_header}, {"x-amz-content-sha256", payload_hash}};
    view.body = body;
    httplib::Headers headers = {{"Host", e->host_header},
                                {"User-Agent", "pipewright-worker/0.1.0"}};
    for (auto& [k, v] : sigv4::Sign(view, creds, options_.region, "s3",
                                    static_cast<int64_t>(std::time(nullptr)))) {
      headers.emplace(k, v);
    }
    httplib::Result res = method == "GET"    ? http.Get(path.c_str(), headers)
                          : method == "HEAD" ? http.Head(path.c_str(), headers)
                                             : http.Put(path.c_str(), headers, body.data(),
                                                        body.size(), "application/zip");
    if (!res) {
      last = Unavailable(what + ": could not connect to " + options_.endpoint_url + " (" +
                         httplib::to_string(res.error()) + ")");
      continue;
    }
    if (res->status >= 200 && res->status < 300) {
      Response out;
      out.status = res->status;
      out.body = std::move(res->body);
      std::string length = res->get_header_value("Content-Length");
      out.content_length =
          length.empty() ? out.body.size() : std::strtoull(length.c_str(), nullptr, 10);
      return out;
    }
    last = ErrorFrom(res->status, res->body, what);
    if (res->status < 500) return last;
  }
  return last;
}

Result<std::string> S3Client::GetObject(const S3ObjectRef& object,
                                        const sigv4::Credentials& creds) const {
  PW_ASSIGN_OR_RETURN(Response r, Send("GET", object, "", creds));
  return std::move(r.body);
}

Status S3Client::PutObject(const S3ObjectRef& object, std::string_view body,
                           const sigv4::Credentials& creds) const {
  return Send("PUT", object, body, creds).status();
}

Result<uint64_t> S3Client::HeadObject(const S3ObjectRef& object,
                                      const sigv4::Credentials& creds) const {
  PW_ASSIGN_OR_RETURN(Response r, Send("HEAD", object, "", creds));
  return r.content_length;
}

}  // namespace pw::runner
