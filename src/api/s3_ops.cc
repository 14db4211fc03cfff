#include "api/s3_ops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <vector>

#include "buckets/digests.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/utf8.h"
#include "sigv4/canonical_request.h"
#include "sigv4/sigv4.h"

namespace pw::api {
namespace {

constexpr size_t kMaxXmlBody = 4 << 20;  // DeleteObjects (1000 keys), CompleteMultipartUpload.
constexpr const char* kXmlNs = "http://s3.amazonaws.com/doc/2006-03-01/";
constexpr const char* kJobCaller = "job:";

// --- XML ---------------------------------------------------------------------

// Appends `raw` with markup escaped; bytes that are not UTF-8 (a
// percent-decoded path, a key stored before keys had to be UTF-8) become
// U+FFFD, as XML holds only UTF-8.
void AppendXmlEscaped(std::string& out, std::string_view raw) {
  std::string valid;
  if (!IsUtf8(raw)) {
    valid = ValidUtf8(raw);
    raw = valid;
  }
  for (char c : raw) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
}

std::string XmlEscape(std::string_view raw) {
  std::string out;
  AppendXmlEscaped(out, raw);
  return out;
}

std::string XmlUnescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    auto semi = s.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      out.push_back('&');
      continue;
    }
    std::string_view ent = s.substr(i + 1, semi - i - 1);
    if (ent == "lt") {
      out.push_back('<');
    } else if (ent == "gt") {
      out.push_back('>');
    } else if (ent == "amp") {
      out.push_back('&');
    } else if (ent == "quot") {
      out.push_back('"');
    } else if (ent == "apos") {
      out.push_back('\'');
    } else if (!ent.empty() && ent[0] == '#') {
      unsigned long cp = 0;
      bool hex = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X');
      std::string digits(ent.substr(hex ? 2 : 1));
      char* end = nullptr;
      cp = std::strtoul(digits.c_str(), &end, hex ? 16 : 10);
      if (digits.empty() || *end != '\0' || cp > 0x10FFFF) {
        out.push_back('&');
        continue;
      }
      if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
      } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    } else {
      out.push_back('&');
      continue;
    }
    i = semi;
  }
  return out;
}

// The contents of each <tag>...</tag> (or <tag attr="...">) in `xml`, in order.
// Enough for the flat request documents S3 takes; no nesting of `tag` itself.
std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view tag) {
  std::vector<std::string_view> out;
  const std::string open = "<" + std::string(tag);
  const std::string close = "</" + std::string(tag) + ">";
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string_view::npos) {
    size_t after = pos + open.size();
    if (after >= xml.size() || (xml[after] != '>' && xml[after] != ' ' && xml[after] != '/')) {
      pos = after;
      continue;
    }
    size_t gt = xml.find('>', after);
    if (gt == std::string_view::npos) break;
    if (xml[gt - 1] == '/') {  // <Tag/>
      out.push_back(std::string_view());
      pos = gt + 1;
      continue;
    }
    size_t end = xml.find(close, gt + 1);
    if (end == std::string_view::npos) break;
    out.push_back(xml.substr(gt + 1, end - gt - 1));
    pos = end + close.size();
  }
  return out;
}

std::optional<std::string> XmlChild(std::string_view xml, std::string_view tag) {
  auto all = XmlElements(xml, tag);
  if (all.empty()) return std::nullopt;
  return XmlUnescape(all.front());
}

// Appends <tag>value</tag>, value escaped: a listing's thousand entries are
// written into one string, not built from temporaries.
void AppendElem(std::string& out, std::string_view tag, std::string_view value) {
  out += '<';
  out += tag;
  out += '>';
  AppendXmlEscaped(out, value);
  out += "</";
  out += tag;
  out += '>';
}

std::string Elem(std::string_view tag, std::string_view value) {
  std::string out;
  AppendElem(out, tag, value);
  return out;
}

// --- Formats -----------------------------------------------------------------

std::string Iso8601(EpochSeconds t) {
  auto secs = static_cast<time_t>(t);
  int ms = std::clamp(static_cast<int>((t - static_cast<double>(secs)) * 1000), 0, 999);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

std::string HttpDate(EpochSeconds t) {
  auto secs = static_cast<time_t>(t);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string LowerAscii(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// --- Errors ------------------------------------------------------------------

int HttpStatusFor(const Status& s) {
  const std::string& w = s.wire_name();
  if (w == "NoSuchBucket" || w == "NoSuchKey" || w == "NoSuchVersion" || w == "NoSuchUpload") {
    return 404;
  }
  if (w == "BucketAlreadyOwnedByYou" || w == "BucketAlreadyExists" || w == "BucketNotEmpty") {
    return 409;
  }
  if (w == "MethodNotAllowed") return 405;
  if (w == "AccessDenied" || w == "SignatureDoesNotMatch" || w == "InvalidAccessKeyId" ||
      w == "RequestTimeTooSkewed" || w == "ExpiredToken" || w == "InvalidToken") {
    return 403;
  }
  if (w == "NotImplemented") return 501;
  if (w == "InvalidRange") return 416;
  switch (s.code()) {
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kAlreadyExists:
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kFailedPrecondition:
      return 403;
    case StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

std::string CodeFor(const Status& s, int http_status) {
  if (!s.wire_name().empty() && s.wire_name() != "ValidationException") return s.wire_name();
  switch (http_status) {
    case 400:
      return "InvalidArgument";
    case 403:
      return "AccessDenied";
    case 404:
      return "NoSuchKey";
    case 503:
      return "ServiceUnavailable";
    default:
      return "InternalError";
  }
}

void S3Error(http::Response& res, int status, const std::string& code, const std::string& msg,
             const std::string& resource = "") {
  res = http::Response{};
  res.status = status;
  std::string id = NewUuid();
  res.SetHeader("x-amz-request-id", id);
  res.SetHeader("x-amzn-RequestId", id);  // On every response of the server (api.md §1).
  res.SetHeader("Content-Type", "application/xml");
  res.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>" + Elem("Code", code) +
             Elem("Message", msg) + (resource.empty() ? "" : Elem("Resource", resource)) +
             Elem("RequestId", id) + "</Error>";
}

void S3Error(http::Response& res, const Status& s, const std::string& resource = "") {
  int status = HttpStatusFor(s);
  if (status >= 500 && status != 501) {
    PW_LOG(Error) << "S3 endpoint: " << resource << ": " << s.ToString();
  }
  S3Error(res, status, CodeFor(s, status), s.message(), resource);
}

Status NotImplementedError(const std::string& what) {
  return Status(StatusCode::kInvalidArgument,
                what + " is not implemented by Pipewright's S3 endpoint.", "NotImplemented");
}

void XmlReply(http::Response& res, std::string_view body) {
  static constexpr std::string_view kDecl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  res.status = 200;
  res.SetHeader("x-amz-request-id", NewUuid());
  res.SetHeader("Content-Type", "application/xml");
  res.body.clear();
  res.body.reserve(kDecl.size() + body.size());
  res.body += kDecl;
  res.body += body;
}

// --- Requests ----------------------------------------------------------------

// The access key id in "AWS4-HMAC-SHA256 Credential=AKID/date/…"; "" if none.
std::string CredentialKeyId(std::string_view authorization) {
  auto pos = authorization.find("Credential=");
  if (pos == std::string_view::npos) return "";
  std::string_view rest = authorization.substr(pos + 11);
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return "";
  return std::string(rest.substr(0, slash));
}

bool HasS3Header(const http::Request& req) {
  if (req.HasHeader("Authorization")) return true;
  for (const auto& [k, v] : req.headers) {
    if (LowerAscii(k).rfind("x-amz-", 0) == 0) return true;
  }
  return false;
}

std::optional<int> IntQuery(const http::Request& req, std::string_view name) {
  std::string v = req.Query(name);
  if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stoi(v);
}

// The object's stored headers from the request's. A header that is not UTF-8
// is refused: it could not be stored or sent back as it came (it once failed
// the whole PutObject with a 500). S3 itself wants US-ASCII there, other text
// RFC 2047-encoded; UTF-8 is kept as it came.
Result<runner::PutOptions> PutOptionsFrom(const http::Request& req) {
  runner::PutOptions o;
  for (const auto& [k, v] : req.headers) {
    std::string lk = LowerAscii(k);
    const bool meta = lk.rfind("x-amz-meta-", 0) == 0 && lk.size() > 11;
    if (!meta && lk != "content-type" && lk != "cache-control" && lk != "x-amz-acl") continue;
    // Names are tokens (the HTTP parser refuses others); values may hold any byte but CTLs.
    if (!IsUtf8(v)) {
      return InvalidArgument("Header " + k.substr(0, 128) +
                                 " holds bytes that are not UTF-8; send US-ASCII (S3 metadata "
                                 "is US-ASCII: encode other text per RFC 2047).",
                             "InvalidArgument");
    }
    if (meta) o.metadata[lk.substr(11)] = v;
  }
  o.content_type = req.Header("Content-Type");
  o.cache_control = req.Header("Cache-Control");
  o.canned_acl = req.Header("x-amz-acl");
  return o;
}

void DescribeObject(http::Response& res, const runner::ObjectInfo& info) {
  res.SetHeader("ETag", "\"" + info.etag + "\"");
  res.SetHeader("Last-Modified", HttpDate(info.last_modified));
  res.SetHeader("x-amz-version-id", info.version_id);
  res.SetHeader("Content-Type", info.content_type);
  if (!info.cache_control.empty()) res.SetHeader("Cache-Control", info.cache_control);
  for (const auto& [k, v] : info.metadata) res.SetHeader("x-amz-meta-" + k, v);
}

// Decodes an aws-chunked body (`in`) into `out`: "<hex size>[;chunk-signature=…]\r\n
// <bytes>\r\n" … "0[;…]\r\n" then trailer lines "name:value\r\n" and "\r\n".
// Trailers are returned lower-cased. Chunk signatures are not verified (the
// headers' signature and a trailing checksum cover the request; see
// docs/s3-buckets.md).
Status DecodeAwsChunked(const std::string& in, const std::string& out,
                        std::vector<std::pair<std::string, std::string>>& trailers,
                        uint64_t& decoded) {
  auto bad = [](const std::string& why) {
    return InvalidArgument("The aws-chunked request body is malformed: " + why + ".",
                           "IncompleteBody");
  };
  int ifd = ::open(in.c_str(), O_RDONLY | O_CLOEXEC);
  if (ifd < 0) return Unavailable("cannot read the request body");
  int ofd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (ofd < 0) {
    ::close(ifd);
    return Unavailable("cannot write the decoded body");
  }
  std::vector<char> buf(1 << 20);
  size_t have = 0;
  size_t pos = 0;
  bool eof = false;
  // Ensures at least `n` unread bytes are buffered (fewer only at EOF).
  auto fill = [&](size_t n) {
    if (have - pos >= n || eof) return;
    std::memmove(buf.data(), buf.data() + pos, have - pos);
    have -= pos;
    pos = 0;
    if (buf.size() < n) buf.resize(n);
    while (have < n && !eof) {
      ssize_t r = ::read(ifd, buf.data() + have, buf.size() - have);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        eof = true;
        break;
      }
      have += static_cast<size_t>(r);
    }
  };
  // One CRLF-terminated line (at most 4 KiB).
  auto line = [&](std::string& l) -> bool {
    fill(4096);
    std::string_view v(buf.data() + pos, have - pos);
    auto crlf = v.find("\r\n");
    if (crlf == std::string_view::npos) return false;
    l.assign(v.substr(0, crlf));
    pos += crlf + 2;
    return true;
  };
  Status result;
  decoded = 0;
  std::string l;
  for (;;) {
    if (!line(l)) {
      result = bad("a chunk size line is missing");
      break;
    }
    std::string size_text = l.substr(0, l.find(';'));
    if (size_text.empty() || size_text.size() > 15 ||
        size_text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      result = bad("a chunk size is not hexadecimal");
      break;
    }
    uint64_t size = std::stoull(size_text, nullptr, 16);
    if (size == 0) {
      while (line(l) && !l.empty()) {
        auto colon = l.find(':');
        if (colon == std::string::npos) continue;
        std::string value = l.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        trailers.emplace_back(LowerAscii(l.substr(0, colon)), value);
      }
      break;
    }
    uint64_t left = size;
    while (left > 0 && result.ok()) {
      fill(1);
      if (have == pos) {
        result = bad("the body ends inside a chunk");
        break;
      }
      size_t n = static_cast<size_t>(std::min<uint64_t>(left, have - pos));
      size_t off = 0;
      while (off < n) {
        ssize_t w = ::write(ofd, buf.data() + pos + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
          result = Unavailable("cannot write the decoded body");
          break;
        }
        off += static_cast<size_t>(w);
      }
      pos += n;
      left -= n;
      decoded += n;
    }
    if (!result.ok()) break;
    fill(2);
    if (have - pos < 2 || buf[pos] != '\r' || buf[pos + 1] != '\n') {
      result = bad("a chunk is not followed by CRLF");
      break;
    }
    pos += 2;
  }
  ::close(ifd);
  ::close(ofd);
  return result;
}

// --- The endpoint ------------------------------------------------------------

class S3Handler {
 public:
  explicit S3Handler(S3Endpoint ep) : ep_(std::move(ep)) {}

  Status Authenticate(http::AuthPhase phase, http::Request& req, http::Response& res) const;
  void Root(const http::Request& req, http::Response& res);
  void Bucket(const http::Request& req, http::Response& res);
  void Object(const http::Request& req, http::Response& res);

 private:
  bool IsJob(const http::Request& req) const { return req.caller.rfind(kJobCaller, 0) == 0; }
  // Evaluates the caller's policy for `action` on `resource`; on refusal writes 403.
  bool Allowed(const http::Request& req, http::Response& res, const std::string& action,
               const std::string& resource) const;
  // The request body as a plain file (aws-chunked decoded, empty body as an
  // empty file) in the buckets' temp dir, with the client's integrity values.
  Result<std::string> BodyFile(const http::Request& req, buckets::Integrity& integrity) const;

  void ListBuckets(const http::Request& req, http::Response& res);
  void ListObjects(const http::Request& req, http::Response& res, const std::string& bucket);
  void ListVersions(const http::Request& req, http::Response& res, const std::string& bucket);
  void DeleteObjects(const http::Request& req, http::Response& res, const std::string& bucket);
  void GetObject(const http::Request& req, http::Response& res, const std::string& bucket,
                 const std::string& key);
  void PutObject(const http::Request& req, http::Response& res, const std::string& bucket,
                 const std::string& key);
  void CopyObject(const http::Request& req, http::Response& res, const std::string& bucket,
                  const std::string& key);
  void Multipart(const http::Request& req, http::Response& res, const std::string& bucket,
                 const std::string& key);
  void JobObject(const http::Request& req, http::Response& res, const std::string& key);

  S3Endpoint ep_;
};

Status S3Handler::Authenticate(http::AuthPhase phase, http::Request& req,
                               http::Response& res) const {
  req.caller.clear();
  req.access_key_id.clear();
  auto refuse = [&](const Status& s) {
    S3Error(res, s);
    return s;
  };
  std::string authorization = req.Header("Authorization");
  if (authorization.empty()) {
    if (req.path == "/" && !HasS3Header(req)) return Status::Ok();  // A browser: the console.
    if (ep_.keys != nullptr) {
      return refuse(FailedPrecondition(
          req.HasQuery("X-Amz-Signature")
              ? "Presigned URLs are not supported by this server: sign the request's headers."
              : "Anonymous requests are refused: sign the request with AWS Signature Version 4 "
                "(the AWS CLI or an SDK with --endpoint-url and a key of the server).",
          "AccessDenied"));
    }
    req.caller = "anonymous";
    return Status::Ok();
  }
  std::string akid = CredentialKeyId(authorization);
  std::optional<engine::Job> job = ep_.engine->JobForAccessKey(akid);
  if (!job && engine::IsJobAccessKeyShaped(akid) &&
      (ep_.keys == nullptr || ep_.keys->Find(akid) == nullptr)) {
    // The credentials of a job that has ended: refused as before, even when
    // signatures are not verified (they never open the ordinary buckets).
    return refuse(FailedPrecondition(
        "The AWS Access Key Id you provided does not exist in our records (the job these "
        "credentials were issued for has ended).",
        "InvalidAccessKeyId"));
  }
  if (!job && ep_.keys == nullptr) {
    // Verification off: any key opens the ordinary buckets.
    req.access_key_id = akid;
    req.caller = "anonymous";
    return Status::Ok();
  }
  sigv4::HttpRequestView view;
  view.method = req.method;
  view.path = req.path;
  view.query = req.query;
  for (const auto& [k, v] : req.headers) view.headers.emplace_back(k, v);
  std::string declared = req.Header("x-amz-content-sha256");
  if (declared.empty()) {
    return refuse(InvalidArgument(
        "Missing required header for this request: x-amz-content-sha256 (SigV4, service s3).",
        "InvalidRequest"));
  }
  // Before the body: the client's declared hash (the headers' signature);
  // after it: the hash of what was received.
  if (phase == http::AuthPhase::kHeaders) {
    view.body_sha256 = declared;
  } else if (!req.body_file.empty()) {
    view.body_sha256 = req.body_sha256;
  } else {
    view.body = req.body;
  }
  auto who =
      sigv4::Verify(view, "s3", static_cast<int64_t>(std::time(nullptr)),
                    [&](std::string_view id) -> std::optional<sigv4::SecretInfo> {
                      if (job)
                        return sigv4::SecretInfo{job->secret_access_key, job->session_token, 0};
                      const auth::KeyEntry* k = ep_.keys->Find(id);
                      if (k == nullptr) return std::nullopt;
                      return sigv4::SecretInfo{k->secret_access_key, "", 0};
                    });
  if (!who.ok()) {
    Status s = who.status();
    return refuse(s.wire_name().empty() ? s.WithWireName("AccessDenied") : s);
  }
  req.access_key_id = *who;
  if (job) {
    // Job credentials open that job's objects in its bucket, nothing else.
    std::string bucket = req.params.empty() ? "" : req.params[0];
    if (bucket != job->bucket || req.params.size() < 2) {
      return refuse(FailedPrecondition(
          "These credentials are for the job's objects in bucket " + job->bucket + ".",
          "AccessDenied"));
    }
    if (phase == http::AuthPhase::kHeaders && req.method == "PUT") {
      uint64_t cap = ep_.engine->options().max_artifact_bytes;
      std::string len = req.Header("x-amz-decoded-content-length");
      if (len.empty()) len = req.Header("Content-Length");
      if (cap > 0 && !len.empty() && len.size() < 20 &&
          len.find_first_not_of("0123456789") == std::string::npos && std::stoull(len) > cap) {
        return refuse(InvalidArgument(
            "The artifact is larger than the server's limit of " + std::to_string(cap) + " bytes.",
            "EntityTooLarge"));
      }
    }
    req.caller = kJobCaller + job->id;
    return Status::Ok();
  }
  req.caller = "arn:aws:iam::" + ep_.account_id + ":user/" + *who;
  if (phase == http::AuthPhase::kHeaders && req.method == "PUT") {
    std::string len = req.Header("x-amz-decoded-content-length");
    if (len.empty()) len = req.Header("Content-Length");
    if (!len.empty() && len.size() < 20 &&
        len.find_first_not_of("0123456789") == std::string::npos &&
        std::stoull(len) > ep_.max_object_bytes) {
      return refuse(InvalidArgument("Your proposed upload exceeds the maximum allowed size of " +
                                        std::to_string(ep_.max_object_bytes) + " bytes.",
                                    "EntityTooLarge"));
    }
  }
  return Status::Ok();
}

bool S3Handler::Allowed(const http::Request& req, http::Response& res, const std::string& action,
                        const std::string& resource) const {
  if (IsJob(req)) {
    S3Error(res, 403, "AccessDenied",
            "Job credentials open only the job's own objects, not " + action + ".", resource);
    return false;
  }
  if (ep_.keys == nullptr) return true;
  const auth::KeyEntry* key = ep_.keys->Find(req.access_key_id);
  auth::Decision d = auth::Decision::kImplicitDeny;
  if (key != nullptr)
    d = key->policy ? key->policy->Evaluate(action, resource) : auth::Decision::kAllow;
  if (d == auth::Decision::kAllow) return true;
  std::string msg = "User: " + req.caller + " is not authorized to perform: " + action +
                    " on resource: \"" + resource + "\"";
  if (d == auth::Decision::kExplicitDeny)
    msg += " with an explicit deny in an identity-based policy";
  S3Error(res, 403, "AccessDenied", msg, resource);
  return false;
}

Result<std::string> S3Handler::BodyFile(const http::Request& req,
                                        buckets::Integrity& integrity) const {
  integrity.content_md5 = req.Header("Content-MD5");
  std::string algo = req.Header("x-amz-sdk-checksum-algorithm");
  for (const char* a : {"CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"}) {
    std::string v = req.Header("x-amz-checksum-" + LowerAscii(a));
    if (!v.empty()) {
      integrity.checksum_algorithm = a;
      integrity.checksum_value = v;
    }
  }
  std::string tmpl = ep_.buckets->temp_dir() + "/body-XXXXXX";
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return Unavailable("cannot create a temporary file: " + std::string(strerror(errno)));
  ::close(fd);
  bool chunked = false;
  std::string encoding = LowerAscii(req.Header("Content-Encoding"));
  std::string declared = req.Header("x-amz-content-sha256");
  if (encoding.find("aws-chunked") != std::string::npos || declared.rfind("STREAMING-", 0) == 0) {
    chunked = true;
  }
  if (req.body_file.empty()) return tmpl;  // An empty body.
  if (!chunked) {
    if (::rename(req.body_file.c_str(), tmpl.c_str()) != 0) {
      ::unlink(tmpl.c_str());
      return Unavailable("cannot keep the request body: " + std::string(strerror(errno)));
    }
    return tmpl;
  }
  std::vector<std::pair<std::string, std::string>> trailers;
  uint64_t decoded = 0;
  Status s = DecodeAwsChunked(req.body_file, tmpl, trailers, decoded);
  if (s.ok()) {
    std::string want = req.Header("x-amz-decoded-content-length");
    if (!want.empty() && want != std::to_string(decoded)) {
      s = InvalidArgument("The decoded body is " + std::to_string(decoded) +
                              " bytes, not the x-amz-decoded-content-length " + want + ".",
                          "IncompleteBody");
    }
  }
  if (!s.ok()) {
    ::unlink(tmpl.c_str());
    return s;
  }
  for (const auto& [name, value] : trailers) {
    if (name.rfind("x-amz-checksum-", 0) != 0) continue;
    std::string a = name.substr(15);
    for (char& c : a) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    integrity.checksum_algorithm = a;
    integrity.checksum_value = value;
  }
  if (integrity.checksum_algorithm.empty() && !algo.empty() &&
      !req.Header("x-amz-trailer").empty()) {
    ::unlink(tmpl.c_str());
    return InvalidArgument("The request names a trailing checksum (x-amz-trailer) but sent none.",
                           "InvalidRequest");
  }
  return tmpl;
}

void S3Handler::Root(const http::Request& req, http::Response& res) {
  if (req.caller.empty() && !HasS3Header(req)) {  // A browser.
    res.status = 302;
    res.SetHeader("Location", "/console/");
    return;
  }
  ListBuckets(req, res);
}

void S3Handler::ListBuckets(const http::Request& req, http::Response& res) {
  if (!ep_.buckets_off.empty()) return S3Error(res, 501, "NotImplemented", ep_.buckets_off);
  if (!Allowed(req, res, "s3:ListAllMyBuckets", "arn:aws:s3:::*")) return;
  auto list = ep_.buckets->ListBuckets();
  if (!list.ok()) return S3Error(res, list.status());
  std::string body = std::string("<ListAllMyBucketsResult xmlns=\"") + kXmlNs + "\"><Owner>" +
                     Elem("ID", ep_.account_id) + Elem("DisplayName", "pipewright") +
                     "</Owner><Buckets>";
  for (const auto& b : *list) {
    body +=
        "<Bucket>" + Elem("Name", b.name) + Elem("CreationDate", Iso8601(b.created)) + "</Bucket>";
  }
  XmlReply(res, body + "</Buckets></ListAllMyBucketsResult>");
}

void S3Handler::Bucket(const http::Request& req, http::Response& res) {
  if (IsJob(req)) {
    return S3Error(res, 403, "AccessDenied", "Job credentials cannot list or change buckets.");
  }
  if (!ep_.buckets_off.empty()) return S3Error(res, 501, "NotImplemented", ep_.buckets_off);
  const std::string bucket = req.params[0];
  const std::string arn = "arn:aws:s3:::" + bucket;
  auto fail = [&](const Status& s) { S3Error(res, s, "/" + bucket); };
  static const char* const kUnsupported[] = {"acl",
                                             "policy",
                                             "cors",
                                             "lifecycle",
                                             "tagging",
                                             "website",
                                             "encryption",
                                             "logging",
                                             "notification",
                                             "replication",
                                             "accelerate",
                                             "requestPayment",
                                             "object-lock",
                                             "ownershipControls",
                                             "publicAccessBlock",
                                             "intelligent-tiering",
                                             "analytics",
                                             "metrics",
                                             "inventory",
                                             "policyStatus"};
  for (const char* q : kUnsupported) {
    if (req.HasQuery(q)) return fail(NotImplementedError("The bucket's ?" + std::string(q)));
  }
  if (req.method == "GET" || req.method == "HEAD") {
    if (req.method == "HEAD") {
      if (!Allowed(req, res, "s3:ListBucket", arn)) return;
      if (Status s = ep_.buckets->HeadBucket(bucket); !s.ok()) return fail(s);
      res.SetHeader("x-amz-bucket-region", ep_.region);
      return;
    }
    if (req.HasQuery("location")) {
      if (!Allowed(req, res, "s3:GetBucketLocation", arn)) return;
      if (Status s = ep_.buckets->HeadBucket(bucket); !s.ok()) return fail(s);
      return XmlReply(res, std::string("<LocationConstraint xmlns=\"") + kXmlNs + "\">" +
                               (ep_.region == "us-east-1" ? "" : XmlEscape(ep_.region)) +
                               "</LocationConstraint>");
    }
    if (req.HasQuery("versioning")) {
      if (!Allowed(req, res, "s3:GetBucketVersioning", arn)) return;
      if (Status s = ep_.buckets->HeadBucket(bucket); !s.ok()) return fail(s);
      return XmlReply(res, std::string("<VersioningConfiguration xmlns=\"") + kXmlNs +
                               "\"><Status>Enabled</Status></VersioningConfiguration>");
    }
    if (req.HasQuery("versions")) return ListVersions(req, res, bucket);
    if (req.HasQuery("uploads")) return fail(NotImplementedError("ListMultipartUploads"));
    return ListObjects(req, res, bucket);
  }
  if (req.method == "PUT") {
    if (req.HasQuery("versioning")) {
      if (!Allowed(req, res, "s3:PutBucketVersioning", arn)) return;
      if (Status s = ep_.buckets->HeadBucket(bucket); !s.ok()) return fail(s);
      auto status = XmlChild(req.body, "Status");
      if (status && *status == "Enabled") return;
      return fail(InvalidArgument(
          "Buckets of this server are always versioned: only Status Enabled is accepted.",
          "IllegalVersioningConfigurationException"));
    }
    if (!Allowed(req, res, "s3:CreateBucket", arn)) return;
    if (Status s = ep_.buckets->CreateBucket(bucket); !s.ok()) return fail(s);
    res.SetHeader("Location", "/" + bucket);
    res.SetHeader("x-amz-request-id", NewUuid());
    return;
  }
  if (req.method == "DELETE") {
    if (!Allowed(req, res, "s3:DeleteBucket", arn)) return;
    if (Status s = ep_.buckets->DeleteBucket(bucket); !s.ok()) return fail(s);
    res.status = 204;
    return;
  }
  if (req.method == "POST" && req.HasQuery("delete")) return DeleteObjects(req, res, bucket);
  fail(NotImplementedError(req.method + " on a bucket with this query"));
}

void S3Handler::ListObjects(const http::Request& req, http::Response& res,
                            const std::string& bucket) {
  if (!Allowed(req, res, "s3:ListBucket", "arn:aws:s3:::" + bucket)) return;
  const bool v2 = req.Query("list-type") == "2";
  const bool url = req.Query("encoding-type") == "url";
  auto enc = [url](const std::string& s) {
    return url ? sigv4::UriEncode(s, /*keep_slash=*/true) : s;
  };
  buckets::ListQuery q;
  q.prefix = req.Query("prefix");
  q.delimiter = req.Query("delimiter");
  if (req.HasQuery("max-keys")) {
    auto m = IntQuery(req, "max-keys");
    if (!m) {
      return S3Error(
          res, InvalidArgument("max-keys must be a non-negative integer.", "InvalidArgument"));
    }
    q.max_keys = std::min(*m, 1000);
  }
  std::string token = req.Query("continuation-token");
  if (v2) {
    q.after = req.Query("start-after");
    if (!token.empty()) {
      std::string decoded;
      if (!buckets::Base64Decode(token, decoded)) {
        return S3Error(res, InvalidArgument("The continuation token provided is incorrect.",
                                            "InvalidArgument"));
      }
      q.after = std::max(q.after, decoded);
    }
  } else {
    q.after = req.Query("marker");
  }
  auto page = ep_.buckets->List(bucket, q);
  if (!page.ok()) return S3Error(res, page.status(), "/" + bucket);
  std::string body = std::string("<ListBucketResult xmlns=\"") + kXmlNs + "\">" +
                     Elem("Name", bucket) + Elem("Prefix", enc(q.prefix));
  if (v2) {
    body += Elem("KeyCount", std::to_string(page->objects.size() + page->common_prefixes.size()));
    if (!token.empty()) body += Elem("ContinuationToken", token);
    if (page->truncated) {
      body += Elem("NextContinuationToken", buckets::Base64Encode(page->next_after));
    }
    if (req.HasQuery("start-after")) body += Elem("StartAfter", enc(req.Query("start-after")));
  } else {
    body += Elem("Marker", enc(q.after));
    if (page->truncated && !q.delimiter.empty()) body += Elem("NextMarker", enc(page->next_after));
  }
  body += Elem("MaxKeys", std::to_string(q.max_keys));
  if (!q.delimiter.empty()) body += Elem("Delimiter", enc(q.delimiter));
  if (url) body += Elem("EncodingType", "url");
  body += Elem("IsTruncated", page->truncated ? "true" : "false");
  body.reserve(body.size() + 256 * page->objects.size() + 64 * page->common_prefixes.size());
  for (const auto& o : page->objects) {
    body += "<Contents>";
    AppendElem(body, "Key", enc(o.key));
    AppendElem(body, "LastModified", Iso8601(o.last_modified));
    AppendElem(body, "ETag", "\"" + o.etag + "\"");
    AppendElem(body, "Size", std::to_string(o.size));
    body += "<StorageClass>STANDARD</StorageClass></Contents>";
  }
  for (const auto& p : page->common_prefixes) {
    body += "<CommonPrefixes>";
    AppendElem(body, "Prefix", enc(p));
    body += "</CommonPrefixes>";
  }
  body += "</ListBucketResult>";
  XmlReply(res, body);
}

void S3Handler::ListVersions(const http::Request& req, http::Response& res,
                             const std::string& bucket) {
  if (!Allowed(req, res, "s3:ListBucketVersions", "arn:aws:s3:::" + bucket)) return;
  const bool url = req.Query("encoding-type") == "url";
  auto enc = [url](const std::string& s) {
    return url ? sigv4::UriEncode(s, /*keep_slash=*/true) : s;
  };
  buckets::VersionQuery q;
  q.prefix = req.Query("prefix");
  q.delimiter = req.Query("delimiter");
  q.key_marker = req.Query("key-marker");
  q.version_id_marker = req.Query("version-id-marker");
  if (req.HasQuery("max-keys")) {
    auto m = IntQuery(req, "max-keys");
    if (!m) {
      return S3Error(
          res, InvalidArgument("max-keys must be a non-negative integer.", "InvalidArgument"));
    }
    q.max_keys = std::min(*m, 1000);
  }
  auto page = ep_.buckets->ListVersions(bucket, q);
  if (!page.ok()) return S3Error(res, page.status(), "/" + bucket);
  std::string body =
      std::string("<ListVersionsResult xmlns=\"") + kXmlNs + "\">" + Elem("Name", bucket) +
      Elem("Prefix", enc(q.prefix)) + Elem("KeyMarker", enc(q.key_marker)) +
      Elem("VersionIdMarker", q.version_id_marker) + Elem("MaxKeys", std::to_string(q.max_keys));
  if (!q.delimiter.empty()) body += Elem("Delimiter", enc(q.delimiter));
  if (url) body += Elem("EncodingType", "url");
  body += Elem("IsTruncated", page->truncated ? "true" : "false");
  if (page->truncated) {
    body += Elem("NextKeyMarker", enc(page->next_key_marker)) +
            Elem("NextVersionIdMarker", page->next_version_id_marker);
  }
  const std::string owner =
      "<Owner>" + Elem("ID", ep_.account_id) + Elem("DisplayName", "pipewright") + "</Owner>";
  body.reserve(body.size() + (320 + owner.size()) * page->versions.size() +
               64 * page->common_prefixes.size());
  for (const auto& v : page->versions) {
    body += v.delete_marker ? "<DeleteMarker>" : "<Version>";
    AppendElem(body, "Key", enc(v.info.key));
    AppendElem(body, "VersionId", v.info.version_id);
    AppendElem(body, "IsLatest", v.is_latest ? "true" : "false");
    AppendElem(body, "LastModified", Iso8601(v.info.last_modified));
    if (v.delete_marker) {
      body += owner;
      body += "</DeleteMarker>";
    } else {
      AppendElem(body, "ETag", "\"" + v.info.etag + "\"");
      AppendElem(body, "Size", std::to_string(v.info.size));
      body += "<StorageClass>STANDARD</StorageClass>";
      body += owner;
      body += "</Version>";
    }
  }
  for (const auto& p : page->common_prefixes) {
    body += "<CommonPrefixes>";
    AppendElem(body, "Prefix", enc(p));
    body += "</CommonPrefixes>";
  }
  body += "</ListVersionsResult>";
  XmlReply(res, body);
}

void S3Handler::DeleteObjects(const http::Request& req, http::Response& res,
                              const std::string& bucket) {
  if (Status s = ep_.buckets->HeadBucket(bucket); !s.ok()) return S3Error(res, s, "/" + bucket);
  auto objects = XmlElements(req.body, "Object");
  if (XmlElements(req.body, "Delete").empty() || objects.size() > 1000) {
    return S3Error(res, InvalidArgument("The XML you provided was not well-formed or did not "
                                        "validate against our published schema (a <Delete> of "
                                        "at most 1000 <Object>s).",
                                        "MalformedXML"));
  }
  const bool quiet = XmlChild(req.body, "Quiet").value_or("") == "true";
  std::string body = std::string("<DeleteResult xmlns=\"") + kXmlNs + "\">";
  for (std::string_view o : objects) {
    std::string key = XmlChild(o, "Key").value_or("");
    std::string version = XmlChild(o, "VersionId").value_or("");
    std::string action = version.empty() ? "s3:DeleteObject" : "s3:DeleteObjectVersion";
    http::Response denied;
    Status s;
    if (!Allowed(req, denied, action, "arn:aws:s3:::" + bucket + "/" + key)) {
      s = FailedPrecondition("Access Denied", "AccessDenied");
    }
    Result<buckets::DeleteOutcome> out = s.ok() ? ep_.buckets->DeleteObject(bucket, key, version)
                                                : Result<buckets::DeleteOutcome>(s);
    if (!out.ok()) {
      body += "<Error>" + Elem("Key", key) + (version.empty() ? "" : Elem("VersionId", version)) +
              Elem("Code", CodeFor(out.status(), HttpStatusFor(out.status()))) +
              Elem("Message", out.status().message()) + "</Error>";
      continue;
    }
    if (quiet) continue;
    body += "<Deleted>" + Elem("Key", key);
    if (!version.empty()) body += Elem("VersionId", version);
    if (out->delete_marker) {
      body += Elem("DeleteMarker", "true");
      if (version.empty()) body += Elem("DeleteMarkerVersionId", out->version_id);
    }
    body += "</Deleted>";
  }
  XmlReply(res, body + "</DeleteResult>");
}

void S3Handler::Object(const http::Request& req, http::Response& res) {
  const std::string bucket = req.params[0];
  const std::string key = http::PercentDecode(req.params[1]);
  if (IsJob(req)) return JobObject(req, res, key);
  if (!ep_.buckets_off.empty()) return S3Error(res, 501, "NotImplemented", ep_.buckets_off);
  for (const char* q : {"acl", "tagging", "retention", "legal-hold", "torrent", "restore",
                        "attributes", "select"}) {
    if (req.HasQuery(q)) {
      return S3Error(res, NotImplementedError("The object's ?" + std::string(q)));
    }
  }
  const std::string arn = "arn:aws:s3:::" + bucket + "/" + key;
  if (req.method == "GET" || req.method == "HEAD") {
    if (req.HasQuery("uploadId")) return S3Error(res, NotImplementedError("ListParts"));
    std::string action = req.HasQuery("versionId") ? "s3:GetObjectVersion" : "s3:GetObject";
    if (!Allowed(req, res, action, arn)) return;
    return GetObject(req, res, bucket, key);
  }
  if (req.method == "PUT") {
    if (!Allowed(req, res, "s3:PutObject", arn)) return;
    if (req.HasQuery("uploadId")) return Multipart(req, res, bucket, key);
    if (req.HasHeader("x-amz-copy-source")) return CopyObject(req, res, bucket, key);
    return PutObject(req, res, bucket, key);
  }
  if (req.method == "POST") {
    if (!Allowed(req, res, "s3:PutObject", arn)) return;
    return Multipart(req, res, bucket, key);
  }
  if (req.method == "DELETE") {
    if (req.HasQuery("uploadId")) {
      if (!Allowed(req, res, "s3:AbortMultipartUpload", arn)) return;
      return Multipart(req, res, bucket, key);
    }
    std::string version = req.Query("versionId");
    if (!Allowed(req, res, version.empty() ? "s3:DeleteObject" : "s3:DeleteObjectVersion", arn)) {
      return;
    }
    auto out = ep_.buckets->DeleteObject(bucket, key, version);
    if (!out.ok()) return S3Error(res, out.status(), "/" + bucket + "/" + key);
    res.status = 204;
    if (!out->version_id.empty()) res.SetHeader("x-amz-version-id", out->version_id);
    if (out->delete_marker) res.SetHeader("x-amz-delete-marker", "true");
    return;
  }
  S3Error(res, NotImplementedError(req.method + " on an object"));
}

void S3Handler::GetObject(const http::Request& req, http::Response& res, const std::string& bucket,
                          const std::string& key) {
  auto l = ep_.buckets->Locate(bucket, key, req.Query("versionId"));
  if (!l.ok()) return S3Error(res, l.status(), "/" + bucket + "/" + key);
  DescribeObject(res, l->info);
  if (LowerAscii(req.Header("x-amz-checksum-mode")) == "enabled" &&
      !l->checksum_algorithm.empty() && req.Header("Range").empty()) {
    res.SetHeader("x-amz-checksum-" + LowerAscii(l->checksum_algorithm), l->checksum_value);
  }
  // The HTTP front serves the file, a single Range as 206 with Content-Range.
  res.file = l->body_path;
}

void S3Handler::PutObject(const http::Request& req, http::Response& res, const std::string& bucket,
                          const std::string& key) {
  auto options = PutOptionsFrom(req);
  if (!options.ok()) return S3Error(res, options.status(), "/" + bucket + "/" + key);
  buckets::Integrity integrity;
  auto body = BodyFile(req, integrity);
  if (!body.ok()) return S3Error(res, body.status(), "/" + bucket + "/" + key);
  auto info = ep_.buckets->PutUploaded(bucket, key, *body, *options, integrity);
  ::unlink(body->c_str());  // Renamed away on success.
  if (!info.ok()) return S3Error(res, info.status(), "/" + bucket + "/" + key);
  res.SetHeader("ETag", "\"" + info->etag + "\"");
  res.SetHeader("x-amz-version-id", info->version_id);
  if (!integrity.checksum_algorithm.empty()) {
    res.SetHeader("x-amz-checksum-" + LowerAscii(integrity.checksum_algorithm),
                  integrity.checksum_value);
  }
}

void S3Handler::CopyObject(const http::Request& req, http::Response& res, const std::string& bucket,
                           const std::string& key) {
  // x-amz-copy-source: [/]bucket/key[?versionId=id], percent-encoded.
  std::string src = req.Header("x-amz-copy-source");
  std::string version;
  if (auto q = src.find("?versionId="); q != std::string::npos) {
    version = src.substr(q + 11);
    src = src.substr(0, q);
  }
  src = http::PercentDecode(src);
  if (!src.empty() && src[0] == '/') src.erase(0, 1);
  auto slash = src.find('/');
  if (slash == std::string::npos || slash + 1 >= src.size()) {
    return S3Error(res, InvalidArgument("Copy Source must mention the source bucket and key: "
                                        "sourcebucket/sourcekey.",
                                        "InvalidArgument"));
  }
  std::string src_bucket = src.substr(0, slash);
  std::string src_key = src.substr(slash + 1);
  if (!Allowed(req, res, version.empty() ? "s3:GetObject" : "s3:GetObjectVersion",
               "arn:aws:s3:::" + src_bucket + "/" + src_key)) {
    return;
  }
  auto from = ep_.buckets->Locate(src_bucket, src_key, version);
  if (!from.ok()) return S3Error(res, from.status(), "/" + src_bucket + "/" + src_key);
  auto given = PutOptionsFrom(req);
  if (!given.ok()) return S3Error(res, given.status(), "/" + bucket + "/" + key);
  runner::PutOptions o;
  if (LowerAscii(req.Header("x-amz-metadata-directive")) == "replace") {
    o = *std::move(given);
  } else {
    o.content_type = from->info.content_type;
    o.cache_control = from->info.cache_control;
    o.metadata = from->info.metadata;
    o.canned_acl = given->canned_acl;
  }
  auto info = ep_.buckets->Put(bucket, key, from->body_path, o);
  if (!info.ok()) return S3Error(res, info.status(), "/" + bucket + "/" + key);
  res.SetHeader("x-amz-version-id", info->version_id);
  if (!version.empty()) res.SetHeader("x-amz-copy-source-version-id", version);
  XmlReply(res, std::string("<CopyObjectResult xmlns=\"") + kXmlNs + "\">" +
                    Elem("LastModified", Iso8601(info->last_modified)) +
                    Elem("ETag", "\"" + info->etag + "\"") + "</CopyObjectResult>");
}

void S3Handler::Multipart(const http::Request& req, http::Response& res, const std::string& bucket,
                          const std::string& key) {
  const std::string where = "/" + bucket + "/" + key;
  const std::string upload = req.Query("uploadId");
  if (req.method == "POST" && req.HasQuery("uploads")) {
    auto options = PutOptionsFrom(req);
    if (!options.ok()) return S3Error(res, options.status(), where);
    auto id = ep_.buckets->CreateMultipartUpload(bucket, key, *options);
    if (!id.ok()) return S3Error(res, id.status(), where);
    return XmlReply(res, std::string("<InitiateMultipartUploadResult xmlns=\"") + kXmlNs + "\">" +
                             Elem("Bucket", bucket) + Elem("Key", key) + Elem("UploadId", *id) +
                             "</InitiateMultipartUploadResult>");
  }
  if (req.method == "PUT" && !upload.empty()) {
    auto part = IntQuery(req, "partNumber");
    if (!part) {
      return S3Error(res, InvalidArgument("Part number must be an integer between 1 and 10000, "
                                          "inclusive",
                                          "InvalidArgument"));
    }
    buckets::Integrity integrity;
    auto body = BodyFile(req, integrity);
    if (!body.ok()) return S3Error(res, body.status(), where);
    auto etag = ep_.buckets->UploadPart(bucket, key, upload, *part, *body, integrity);
    ::unlink(body->c_str());
    if (!etag.ok()) return S3Error(res, etag.status(), where);
    res.SetHeader("ETag", "\"" + *etag + "\"");
    return;
  }
  if (req.method == "POST" && !upload.empty()) {
    if (XmlElements(req.body, "CompleteMultipartUpload").empty()) {
      return S3Error(res, InvalidArgument("The XML you provided was not well-formed or did not "
                                          "validate against our published schema.",
                                          "MalformedXML"));
    }
    std::vector<buckets::CompletedPart> parts;
    for (std::string_view p : XmlElements(req.body, "Part")) {
      std::string n = XmlChild(p, "PartNumber").value_or("");
      if (n.empty() || n.size() > 5 || n.find_first_not_of("0123456789") != std::string::npos) {
        return S3Error(
            res, InvalidArgument("Each Part needs a PartNumber from 1 to 10000.", "MalformedXML"));
      }
      parts.push_back({std::stoi(n), XmlChild(p, "ETag").value_or("")});
    }
    auto info = ep_.buckets->CompleteMultipartUpload(bucket, key, upload, parts);
    if (!info.ok()) return S3Error(res, info.status(), where);
    res.SetHeader("x-amz-version-id", info->version_id);
    return XmlReply(res, std::string("<CompleteMultipartUploadResult xmlns=\"") + kXmlNs + "\">" +
                             Elem("Location", ep_.buckets->UrlOf(bucket, key, "")) +
                             Elem("Bucket", bucket) + Elem("Key", key) +
                             Elem("ETag", "\"" + info->etag + "\"") +
                             "</CompleteMultipartUploadResult>");
  }
  if (req.method == "DELETE" && !upload.empty()) {
    if (Status s = ep_.buckets->AbortMultipartUpload(bucket, key, upload); !s.ok()) {
      return S3Error(res, s, where);
    }
    res.status = 204;
    return;
  }
  S3Error(res, NotImplementedError(req.method + " with this query"));
}

// A job worker's GET or PUT of one of its job's objects (the artifact store).
void S3Handler::JobObject(const http::Request& req, http::Response& res, const std::string& key) {
  engine::Engine& eng = *ep_.engine;
  auto job = eng.JobForAccessKey(req.access_key_id);
  if (!job) return S3Error(res, 403, "AccessDenied", "The job of these credentials has ended.");
  if (req.method == "GET" || req.method == "HEAD") {
    auto path = eng.JobObjectPath(*job, key, /*for_write=*/false);
    if (!path.ok()) return S3Error(res, 403, "AccessDenied", path.status().message());
    struct stat st {};
    if (::stat(path->c_str(), &st) != 0) {
      return S3Error(res, 404, "NoSuchKey", "The specified key does not exist.");
    }
    res.SetHeader("ETag", "\"" + std::to_string(st.st_size) + "\"");
    res.SetHeader("Content-Type", "application/zip");
    res.SetHeader("Last-Modified", HttpDate(static_cast<EpochSeconds>(st.st_mtime)));
    res.file = *path;
    return;
  }
  if (req.method != "PUT" || req.HasQuery("uploads") || req.HasQuery("uploadId")) {
    return S3Error(res, 403, "AccessDenied",
                   "Job credentials may only GET and PUT the job's own objects.");
  }
  if (req.body_file.empty()) {
    return S3Error(res, 400, "InvalidRequest", "An artifact upload must not be empty.");
  }
  buckets::Integrity integrity;
  auto body = BodyFile(req, integrity);
  if (!body.ok()) return S3Error(res, body.status());
  struct stat st {};
  ::stat(body->c_str(), &st);
  // The engine checks the upload (a zip within the artifact limits) and
  // renames it into place (the buckets' temp dir is in the data directory,
  // as the artifacts are).
  Status stored = eng.PutJobObjectFile(*job, key, *body);
  ::unlink(body->c_str());
  if (stored.code() == StatusCode::kFailedPrecondition) {
    return S3Error(res, 403, "AccessDenied", stored.message());
  }
  if (stored.code() == StatusCode::kInvalidArgument) {
    return S3Error(res, 400, "InvalidRequest", stored.message());
  }
  if (!stored.ok()) return S3Error(res, 500, "InternalError", stored.message());
  res.SetHeader("ETag", "\"" + std::to_string(st.st_size) + "\"");
}

}  // namespace

void RegisterS3RootRoute(http::Server& server, const S3Endpoint& endpoint) {
  auto h = std::make_shared<S3Handler>(endpoint);
  http::RouteOptions o;
  o.authenticator = [h](http::AuthPhase p, http::Request& req, http::Response& res) {
    return h->Authenticate(p, req, res);
  };
  server.Route("GET", "/", o,
               [h](const http::Request& req, http::Response& res) { h->Root(req, res); });
}

void RegisterS3Endpoint(http::Server& server, const S3Endpoint& endpoint) {
  auto h = std::make_shared<S3Handler>(endpoint);
  http::Authenticator auth = [h](http::AuthPhase p, http::Request& req, http::Response& res) {
    return h->Authenticate(p, req, res);
  };
  // Bucket names are checked by the handlers (InvalidBucketName), so the
  // patterns take any segment; earlier routes (/console, /logs) win.
  const char* kBucket = R"(/([^/]+)/?)";
  const char* kObject = R"(/([^/]+)/(.+))";
  auto bucket = [h](const http::Request& req, http::Response& res) { h->Bucket(req, res); };
  auto object = [h](const http::Request& req, http::Response& res) { h->Object(req, res); };

  http::RouteOptions plain;
  plain.authenticator = auth;
  http::RouteOptions xml = plain;
  xml.body = http::BodyMode::kMemory;
  xml.max_body_bytes = kMaxXmlBody;
  http::RouteOptions stream = plain;
  stream.body = http::BodyMode::kStream;
  // Room for aws-chunked framing (~90 bytes per 64 KiB chunk) above the
  // object limit; the authenticator answers EntityTooLarge from the declared
  // length first, this is the backstop while streaming.
  uint64_t artifact_cap = endpoint.engine->options().max_artifact_bytes;
  uint64_t cap = std::max(endpoint.max_object_bytes, artifact_cap);
  stream.max_body_bytes = static_cast<size_t>(cap + cap / 256 + (1 << 20));
  stream.temp_dir = endpoint.buckets->temp_dir();

  server.Route("GET", kBucket, plain, bucket);
  server.Route("PUT", kBucket, xml, bucket);
  server.Route("DELETE", kBucket, plain, bucket);
  server.Route("POST", kBucket, xml, bucket);
  server.Route("GET", kObject, plain, object);
  server.Route("PUT", kObject, stream, object);
  server.Route("DELETE", kObject, plain, object);
  server.Route("POST", kObject, xml, object);
}

}  // namespace pw::api
