#include "runner/s3_client.h"

#include <httplib.h>

#include <cstdlib>
#include <ctime>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "runner/s3_http.h"
#include "sigv4/canonical_request.h"
#include "sigv4/crypto.h"

namespace pw::runner {

S3Client::S3Client(S3ClientOptions options) : options_(std::move(options)) {}

std::string S3Client::PathOf(const S3ObjectRef& object) const {
  std::optional<S3Endpoint> e = ParseS3Endpoint(options_.endpoint_url);
  std::string base = e ? e->base_path : "";
  return base + "/" + sigv4::UriEncode(object.bucket, false) + "/" +
         sigv4::UriEncode(object.key, true);
}

Result<S3Client::Response> S3Client::Send(std::string_view method, const S3ObjectRef& object,
                                          std::string_view body,
                                          const sigv4::Credentials& creds) const {
  std::optional<S3Endpoint> e = ParseS3Endpoint(options_.endpoint_url);
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
    last = S3ErrorFrom(res->status, res->body, what);
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
