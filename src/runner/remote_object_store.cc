#include "runner/remote_object_store.h"

#include <fcntl.h>
#include <httplib.h>
#include <openssl/evp.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>
#include <random>
#include <thread>
#include <utility>

#include "runner/fd.h"
#include "sigv4/canonical_request.h"
#include "sigv4/crypto.h"

namespace pw::runner {

namespace {

// SHA-256 of the empty body, as GET and HEAD sign it.
constexpr const char* kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr size_t kMaxErrorBody = 64 * 1024;

// The hex SHA-256 and size of the file at `path`.
Result<std::pair<std::string, uint64_t>> HashAndSizeOfFile(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Internal("open " + path + ": " + ErrnoText());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::array<char, 1 << 16> buf;
  uint64_t size = 0;
  for (;;) {
    ssize_t n = read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Internal("read " + path + ": " + ErrnoText());
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
    size += static_cast<uint64_t>(n);
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> md;
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md.data(), &len);
  return std::make_pair(
      sigv4::HexEncode(std::string_view(reinterpret_cast<const char*>(md.data()), len)), size);
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// "Wed, 21 Oct 2015 07:28:00 GMT" -> epoch seconds; 0 when unreadable.
EpochSeconds ParseHttpDate(const std::string& s) {
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (end == nullptr) return 0;
  return static_cast<EpochSeconds>(timegm(&tm));
}

std::string Unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

// What a GET, HEAD or PUT answer says about the object.
ObjectInfo InfoFrom(const httplib::Response& res, const std::string& bucket,
                    const std::string& key) {
  ObjectInfo info;
  info.bucket = bucket;
  info.key = key;
  info.version_id = res.get_header_value("x-amz-version-id");
  info.etag = Unquote(res.get_header_value("ETag"));
  const std::string length = res.get_header_value("Content-Length");
  info.size = length.empty() ? 0 : std::strtoull(length.c_str(), nullptr, 10);
  info.last_modified = ParseHttpDate(res.get_header_value("Last-Modified"));
  info.content_type = res.get_header_value("Content-Type");
  info.cache_control = res.get_header_value("Cache-Control");
  constexpr std::string_view kMeta = "x-amz-meta-";
  for (const auto& [name, value] : res.headers) {
    if (name.size() > kMeta.size() && strncasecmp(name.c_str(), kMeta.data(), kMeta.size()) == 0) {
      std::string lower = name.substr(kMeta.size());
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      info.metadata[lower] = value;
    }
  }
  return info;
}

}  // namespace

Result<std::unique_ptr<RemoteObjectStore>> RemoteObjectStore::Create(
    RemoteObjectStoreOptions options) {
  std::optional<S3Endpoint> e = ParseS3Endpoint(options.endpoint_url);
  if (!e) {
    return InvalidArgument("The S3 endpoint '" + options.endpoint_url +
                           "' is not an http:// or https:// URL of the form "
                           "http://host[:port][/base].");
  }
  return std::unique_ptr<RemoteObjectStore>(new RemoteObjectStore(std::move(options), *e));
}

RemoteObjectStore::RemoteObjectStore(RemoteObjectStoreOptions options, S3Endpoint endpoint)
    : options_(std::move(options)), endpoint_(std::move(endpoint)) {}

std::string RemoteObjectStore::PathOf(const std::string& bucket, const std::string& key) const {
  return endpoint_.base_path + "/" + sigv4::UriEncode(bucket, false) + "/" +
         sigv4::UriEncode(key, true);
}

std::string RemoteObjectStore::UrlOf(const std::string& bucket, const std::string& key,
                                     const std::string& version_id) const {
  std::string url = options_.endpoint_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  const std::string::size_type authority_end = url.find('/', url.find("://") + 3);
  url = url.substr(0, authority_end) + PathOf(bucket, key);
  if (!version_id.empty() && version_id != "null") {
    url += "?versionId=" + sigv4::UriEncode(version_id, false);
  }
  return url;
}

namespace {

// One signed request: what a call sends besides its body.
struct Signed {
  std::string path;  // With "?query" when there is one.
  httplib::Headers headers;
};

Signed SignRequest(const RemoteObjectStoreOptions& o, const S3Endpoint& e,
                   const std::string& method, const std::string& path, const std::string& query,
                   const std::string& payload_sha256, const sigv4::HeaderList& extra) {
  sigv4::HttpRequestView view;
  view.method = method;
  view.path = path;
  view.query = query;
  view.headers = {{"Host", e.host_header}, {"x-amz-content-sha256", payload_sha256}};
  for (const auto& h : extra) view.headers.push_back(h);
  Signed out;
  out.path = query.empty() ? path : path + "?" + query;
  out.headers = {{"Host", e.host_header}, {"User-Agent", "pipewright/0.1.0"}};
  for (const auto& [k, v] : view.headers) {
    // Content-Type travels as httplib's content type argument (never twice).
    if (strcasecmp(k.c_str(), "Host") != 0 && strcasecmp(k.c_str(), "Content-Type") != 0) {
      out.headers.emplace(k, v);
    }
  }
  for (auto& [k, v] :
       sigv4::Sign(view, o.credentials, o.region, "s3", static_cast<int64_t>(std::time(nullptr)))) {
    out.headers.erase(k);  // Each replaces a header of its name (case-insensitive map).
    out.headers.emplace(k, v);
  }
  return out;
}

std::unique_ptr<httplib::Client> NewClient(const RemoteObjectStoreOptions& o, const S3Endpoint& e) {
  auto http = std::make_unique<httplib::Client>(e.origin);
  http->set_connection_timeout(o.timeout);
  http->set_read_timeout(o.timeout);
  http->set_write_timeout(o.timeout);
  return http;
}

// Runs `attempt` until it returns anything but kUnavailable, at most
// max_attempts times, with jittered exponential backoff in between.
Result<ObjectInfo> WithRetries(const RemoteObjectStoreOptions& o,
                               const std::function<Result<ObjectInfo>()>& attempt) {
  std::mt19937_64 rng(std::random_device{}());
  Status last = Unavailable("no attempt made");
  for (int n = 1; n <= std::max(1, o.max_attempts); ++n) {
    if (n > 1) {
      auto cap = o.backoff_base.count() * (int64_t{1} << (n - 2));
      std::uniform_int_distribution<int64_t> dist(cap / 2, cap);
      std::this_thread::sleep_for(std::chrono::milliseconds(dist(rng)));
    }
    Result<ObjectInfo> r = attempt();
    if (r.ok() || r.status().code() != StatusCode::kUnavailable) return r;
    last = r.status();
  }
  return last;
}

Status Unreachable(const std::string& what, const RemoteObjectStoreOptions& o,
                   httplib::Error error) {
  return Unavailable(what + ": could not reach the S3 endpoint " + o.endpoint_url + " (" +
                     httplib::to_string(error) + ")");
}

std::string VersionQuery(const std::string& version_id) {
  return version_id.empty() ? "" : "versionId=" + sigv4::UriEncode(version_id, false);
}

std::string Describe(const std::string& method, const std::string& bucket, const std::string& key,
                     const std::string& version_id) {
  std::string what = method + " s3://" + bucket + "/" + key;
  if (!version_id.empty()) what += " (version " + version_id + ")";
  return what;
}

}  // namespace

Result<ObjectInfo> RemoteObjectStore::Head(const std::string& bucket, const std::string& key,
                                           const std::string& version_id) {
  const std::string what = Describe("HEAD", bucket, key, version_id);
  return WithRetries(options_, [&]() -> Result<ObjectInfo> {
    Signed req = SignRequest(options_, endpoint_, "HEAD", PathOf(bucket, key),
                             VersionQuery(version_id), kEmptySha256, {});
    auto http = NewClient(options_, endpoint_);
    httplib::Result res = http->Head(req.path.c_str(), req.headers);
    if (!res) return Unreachable(what, options_, res.error());
    if (res->status == 404) {
      // A HEAD answer has no body to name the error.
      return NotFound(what + ": the object does not exist",
                      version_id.empty() ? "NoSuchKey" : "NoSuchVersion");
    }
    if (res->status < 200 || res->status >= 300) return S3ErrorFrom(res->status, "", what);
    return InfoFrom(res.value(), bucket, key);
  });
}

Status RemoteObjectStore::Delete(const std::string& bucket, const std::string& key) {
  const std::string what = Describe("DELETE", bucket, key, "");
  Result<ObjectInfo> done = WithRetries(options_, [&]() -> Result<ObjectInfo> {
    Signed req =
        SignRequest(options_, endpoint_, "DELETE", PathOf(bucket, key), "", kEmptySha256, {});
    auto http = NewClient(options_, endpoint_);
    httplib::Result res = http->Delete(req.path.c_str(), req.headers);
    if (!res) return Unreachable(what, options_, res.error());
    if (res->status >= 200 && res->status < 300) return ObjectInfo{};
    Status st = S3ErrorFrom(res->status, res->body.substr(0, kMaxErrorBody), what);
    if (st.code() == StatusCode::kNotFound && st.wire_name() == "NoSuchKey") return ObjectInfo{};
    return st;
  });
  return done.ok() ? Status::Ok() : done.status();
}

Result<ObjectInfo> RemoteObjectStore::Get(const std::string& bucket, const std::string& key,
                                          const std::string& version_id,
                                          const std::string& dest_path) {
  const std::string what = Describe("GET", bucket, key, version_id);
  return WithRetries(options_, [&]() -> Result<ObjectInfo> {
    Fd fd(open(dest_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) return Internal("create " + dest_path + ": " + ErrnoText());
    Signed req = SignRequest(options_, endpoint_, "GET", PathOf(bucket, key),
                             VersionQuery(version_id), kEmptySha256, {});
    auto http = NewClient(options_, endpoint_);
    int status = 0;
    bool write_failed = false;
    std::string error_body;
    httplib::Result res = http->Get(
        req.path.c_str(), req.headers,
        [&](const httplib::Response& r) {
          status = r.status;
          return true;
        },
        [&](const char* data, size_t size) {
          if (status < 200 || status >= 300) {
            error_body.append(data, std::min(size, kMaxErrorBody - error_body.size()));
            return error_body.size() < kMaxErrorBody;
          }
          if (!WriteAll(fd.get(), data, size)) {
            write_failed = true;
            return false;
          }
          return true;
        });
    if (write_failed) return Internal("write " + dest_path + ": " + ErrnoText());
    if (!res) {
      if (status != 0 && (status < 200 || status >= 300)) {
        return S3ErrorFrom(status, error_body, what);
      }
      return Unreachable(what, options_, res.error());
    }
    if (res->status < 200 || res->status >= 300) {
      return S3ErrorFrom(res->status, error_body, what);
    }
    if (fsync(fd.get()) != 0) return Internal("fsync " + dest_path + ": " + ErrnoText());
    ObjectInfo info = InfoFrom(res.value(), bucket, key);
    struct stat st {};
    if (fstat(fd.get(), &st) == 0) info.size = static_cast<uint64_t>(st.st_size);
    return info;
  });
}

Result<ObjectInfo> RemoteObjectStore::Put(const std::string& bucket, const std::string& key,
                                          const std::string& src_path, const PutOptions& options) {
  const std::string what = Describe("PUT", bucket, key, "");
  PW_ASSIGN_OR_RETURN(auto hashed, HashAndSizeOfFile(src_path));
  // Plain names, not a structured binding: lambdas below capture them (C++20 allows that,
  // clang 14 does not).
  const std::string sha256 = hashed.first;
  const uint64_t size = hashed.second;
  const std::string content_type =
      options.content_type.empty() ? "binary/octet-stream" : options.content_type;
  sigv4::HeaderList extra = {{"Content-Type", content_type}};
  if (!options.cache_control.empty()) extra.emplace_back("Cache-Control", options.cache_control);
  if (!options.canned_acl.empty()) extra.emplace_back("x-amz-acl", options.canned_acl);
  for (const auto& [name, value] : options.metadata)
    extra.emplace_back("x-amz-meta-" + name, value);
  return WithRetries(options_, [&]() -> Result<ObjectInfo> {
    Fd fd(open(src_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return Internal("open " + src_path + ": " + ErrnoText());
    Signed req = SignRequest(options_, endpoint_, "PUT", PathOf(bucket, key), "", sha256, extra);
    auto http = NewClient(options_, endpoint_);
    bool read_failed = false;
    httplib::Result res = http->Put(
        req.path.c_str(), req.headers, static_cast<size_t>(size),
        [&](size_t offset, size_t length, httplib::DataSink& sink) {
          std::array<char, 1 << 16> buf;
          ssize_t n;
          do {
            n = pread(fd.get(), buf.data(), std::min(length, buf.size()),
                      static_cast<off_t>(offset));
          } while (n < 0 && errno == EINTR);
          if (n <= 0) {
            read_failed = true;
            return false;
          }
          return sink.write(buf.data(), static_cast<size_t>(n));
        },
        content_type);
    if (read_failed) return Internal("read " + src_path + " while uploading it: " + ErrnoText());
    if (!res) return Unreachable(what, options_, res.error());
    if (res->status < 200 || res->status >= 300) return S3ErrorFrom(res->status, res->body, what);
    ObjectInfo info;
    info.bucket = bucket;
    info.key = key;
    info.version_id = res->get_header_value("x-amz-version-id");
    info.etag = Unquote(res->get_header_value("ETag"));
    info.size = size;
    info.last_modified = static_cast<EpochSeconds>(std::time(nullptr));
    info.content_type = content_type;
    info.cache_control = options.cache_control;
    info.metadata = options.metadata;
    return info;
  });
}

}  // namespace pw::runner
