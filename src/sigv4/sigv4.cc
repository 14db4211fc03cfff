#include "sigv4/sigv4.h"

#include <cstdlib>

#include "sigv4/crypto.h"

namespace pw::sigv4 {
namespace {

std::string BodyHash(const HttpRequestView& req) {
  return req.body_sha256 ? *req.body_sha256 : Sha256Hex(req.body);
}

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kTerminator = "aws4_request";
constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
constexpr int64_t kMaxSkewSeconds = int64_t{15} * 60;

// The wire names a service reports for each failure: S3 has its own set.
struct WireNames {
  const char* missing;
  const char* malformed;
  const char* wrong_service;
  const char* unknown_key;
  const char* expired_token;
  const char* bad_token;
  const char* skewed;
  const char* content_mismatch;
  const char* mismatch;
};

constexpr WireNames kDefaultNames = {"MissingAuthenticationToken",
                                     "IncompleteSignature",
                                     "InvalidSignatureException",
                                     "InvalidClientTokenId",
                                     "ExpiredTokenException",
                                     "InvalidClientTokenId",
                                     "RequestExpired",
                                     "InvalidSignatureException",
                                     "InvalidSignatureException"};
constexpr WireNames kS3Names = {"AccessDenied",
                                "AuthorizationHeaderMalformed",
                                "AuthorizationHeaderMalformed",
                                "InvalidAccessKeyId",
                                "ExpiredToken",
                                "InvalidToken",
                                "RequestTimeTooSkewed",
                                "XAmzContentSHA256Mismatch",
                                "SignatureDoesNotMatch"};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// All values of header `name` (lowercase), in order received.
std::vector<std::string_view> HeaderValues(const HeaderList& headers, std::string_view name) {
  std::vector<std::string_view> out;
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) out.emplace_back(v);
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

bool IsHex(std::string_view s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The parsed Authorization header.
struct Authorization {
  std::string_view access_key_id;
  std::string_view date;  // yyyymmdd
  std::string_view region;
  std::string_view service;
  std::vector<std::string_view> signed_headers;
  std::string_view signature;
};

// Parses "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...";
// on failure returns a message saying what is wrong.
std::optional<Authorization> ParseAuthorization(std::string_view header, std::string* error) {
  header = Trim(header);
  if (header.substr(0, kAlgorithm.size()) != kAlgorithm || header.size() == kAlgorithm.size() ||
      (header[kAlgorithm.size()] != ' ' && header[kAlgorithm.size()] != '\t')) {
    *error =
        "Authorization header must start with 'AWS4-HMAC-SHA256 ' (only Signature Version 4 "
        "in the Authorization header is supported)";
    return std::nullopt;
  }
  std::optional<std::string_view> credential, signed_headers, signature;
  for (std::string_view part : Split(header.substr(kAlgorithm.size()), ',')) {
    part = Trim(part);
    size_t eq = part.find('=');
    std::string_view key = part.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "" : part.substr(eq + 1);
    std::optional<std::string_view>* slot = key == "Credential"      ? &credential
                                            : key == "SignedHeaders" ? &signed_headers
                                            : key == "Signature"     ? &signature
                                                                     : nullptr;
    if (slot == nullptr || eq == std::string_view::npos || slot->has_value()) {
      *error = "Authorization header has an unexpected or repeated component '" +
               std::string(part.substr(0, 64)) +
               "'; expected exactly Credential=, SignedHeaders= and Signature=";
      return std::nullopt;
    }
    *slot = value;
  }
  if (!credential || !signed_headers || !signature) {
    *error = "Authorization header must contain Credential=, SignedHeaders= and Signature=";
    return std::nullopt;
  }
  Authorization auth;
  std::vector<std::string_view> scope = Split(*credential, '/');
  if (scope.size() != 5 || scope[0].empty() || scope[2].empty() || scope[3].empty() ||
      scope[4] != kTerminator) {
    *error = "Credential must be 'ACCESS_KEY_ID/yyyymmdd/region/service/aws4_request'";
    return std::nullopt;
  }
  if (scope[1].size() != 8 || !ParseAmzDate(std::string(scope[1]) + "T000000Z")) {
    *error = "Credential scope date must be yyyymmdd";
    return std::nullopt;
  }
  auth.access_key_id = scope[0];
  auth.date = scope[1];
  auth.region = scope[2];
  auth.service = scope[3];
  auth.signed_headers = Split(*signed_headers, ';');
  for (std::string_view name : auth.signed_headers) {
    if (name.empty() || ToLower(name) != name) {
      *error = "SignedHeaders must be a ';'-separated list of lowercase header names";
      return std::nullopt;
    }
  }
  if (!IsHex(*signature, 64)) {
    *error = "Signature must be 64 hex digits";
    return std::nullopt;
  }
  auth.signature = *signature;
  return auth;
}

std::string Scope(std::string_view date, std::string_view region, std::string_view service) {
  std::string out(date);
  out.append("/").append(region).append("/").append(service).append("/").append(kTerminator);
  return out;
}

// The canonical request with the session token's value hidden, for error messages.
std::string RedactedCanonicalRequest(std::string canonical_request) {
  constexpr std::string_view kToken = "\nx-amz-security-token:";
  size_t pos = canonical_request.find(kToken);
  if (pos != std::string::npos) {
    size_t start = pos + kToken.size();
    size_t end = canonical_request.find('\n', start);
    canonical_request.replace(start, end - start, "<redacted>");
  }
  return canonical_request;
}

}  // namespace

HeaderList Sign(const HttpRequestView& req, const Credentials& creds, std::string_view region,
                std::string_view service, int64_t epoch_seconds) {
  const bool s3 = service == "s3";
  const std::string amz_date = FormatAmzDate(epoch_seconds);
  std::vector<std::string_view> own_hash = HeaderValues(req.headers, "x-amz-content-sha256");
  const std::string payload_hash = own_hash.empty() ? BodyHash(req) : TrimAll(own_hash.front());

  HeaderList added = {{"X-Amz-Date", amz_date}};
  if (!creds.session_token.empty()) added.emplace_back("X-Amz-Security-Token", creds.session_token);
  if (s3) added.emplace_back("X-Amz-Content-Sha256", payload_hash);

  HeaderList to_sign;
  for (const auto& header : req.headers) {
    std::string name = ToLower(header.first);
    if (name == "authorization" || name == "user-agent" || name == "expect" ||
        name == "x-amzn-trace-id") {
      continue;
    }
    bool replaced = false;
    for (const auto& a : added) replaced = replaced || EqualsIgnoreCase(a.first, name);
    if (!replaced) to_sign.push_back(header);
  }
  to_sign.insert(to_sign.end(), added.begin(), added.end());
  const CanonicalHeaders headers = CanonicalHeaderMap(to_sign);

  const std::string canonical = CanonicalRequest(req.method, CanonicalUri(req.path, service),
                                                 CanonicalQuery(req.query), headers, payload_hash);
  const std::string date = amz_date.substr(0, 8);
  const std::string scope = Scope(date, region, service);
  const std::string signature =
      HexEncode(HmacSha256(SigningKeyFor(creds.secret_access_key, date, region, service),
                           StringToSign(amz_date, scope, Sha256Hex(canonical))));
  added.emplace_back("Authorization", std::string(kAlgorithm) +
                                          " Credential=" + creds.access_key_id + "/" + scope +
                                          ", SignedHeaders=" + SignedHeaderNames(headers) +
                                          ", Signature=" + signature);
  return added;
}

Result<std::string> Verify(const HttpRequestView& req, std::string_view expected_service,
                           int64_t now_epoch_seconds, const SecretLookup& lookup) {
  const WireNames& wire = expected_service == "s3" ? kS3Names : kDefaultNames;
  auto malformed = [&](std::string message) {
    return Status(StatusCode::kInvalidArgument, std::move(message), wire.malformed);
  };

  std::vector<std::string_view> authorization = HeaderValues(req.headers, "authorization");
  if (authorization.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "Request is missing Authentication Token: sign it with AWS Signature "
                  "Version 4 (Authorization: AWS4-HMAC-SHA256 ...)",
                  wire.missing);
  }
  if (authorization.size() > 1) return malformed("Request has more than one Authorization header");
  std::string error;
  std::optional<Authorization> auth = ParseAuthorization(authorization.front(), &error);
  if (!auth) return malformed(std::move(error));

  if (auth->service != expected_service) {
    return Status(StatusCode::kInvalidArgument,
                  "Credential should be scoped to correct service: '" +
                      std::string(expected_service) + "', not '" + std::string(auth->service) + "'",
                  wire.wrong_service);
  }

  std::vector<std::string_view> amz_date = HeaderValues(req.headers, "x-amz-date");
  if (amz_date.size() != 1) {
    return malformed("Authorization header requires exactly one 'X-Amz-Date' header");
  }
  const std::string_view request_date = Trim(amz_date.front());
  std::optional<int64_t> request_time = ParseAmzDate(request_date);
  if (!request_time) {
    return malformed("X-Amz-Date must be an ISO 8601 basic UTC timestamp like 20150830T123600Z");
  }
  if (request_date.substr(0, 8) != auth->date) {
    return malformed("Date in Credential scope does not match YYYYMMDD from X-Amz-Date");
  }

  const CanonicalHeaders all_headers = CanonicalHeaderMap(req.headers);
  CanonicalHeaders signed_headers;
  for (std::string_view name : auth->signed_headers) {
    auto it = all_headers.find(std::string(name));
    if (it == all_headers.end()) {
      return malformed("Signed header '" + std::string(name) + "' is not in the request");
    }
    signed_headers.insert(*it);
  }
  if (!signed_headers.contains("host")) {
    return malformed("'Host' must be a signed header (SignedHeaders must include host)");
  }
  // The operation of a JSON-protocol call is its X-Amz-Target: unsigned, a
  // captured request could be replayed as another operation.
  if (expected_service != "s3" && all_headers.contains("x-amz-target") &&
      !signed_headers.contains("x-amz-target")) {
    return malformed(
        "'X-Amz-Target' must be a signed header (SignedHeaders must include x-amz-target)");
  }

  std::optional<SecretInfo> secret = lookup(auth->access_key_id);
  if (!secret) {
    return Status(StatusCode::kFailedPrecondition,
                  "The security token included in the request is invalid: access key id '" +
                      std::string(auth->access_key_id) + "' is unknown; check your credentials",
                  wire.unknown_key);
  }
  if (secret->expires_at != 0 && static_cast<double>(now_epoch_seconds) >= secret->expires_at) {
    return Status(StatusCode::kFailedPrecondition,
                  "The security token included in the request is expired; obtain new "
                  "temporary credentials",
                  wire.expired_token);
  }
  std::vector<std::string_view> token = HeaderValues(req.headers, "x-amz-security-token");
  const bool token_ok =
      secret->session_token.empty()
          ? token.empty()
          : token.size() == 1 && ConstantTimeEquals(Trim(token.front()), secret->session_token);
  if (!token_ok) {
    return Status(StatusCode::kFailedPrecondition,
                  secret->session_token.empty()
                      ? "The security token included in the request is invalid: this access key "
                        "takes no X-Amz-Security-Token"
                      : "The security token included in the request is invalid: send the "
                        "session token that came with this access key as X-Amz-Security-Token",
                  wire.bad_token);
  }

  if (std::llabs(now_epoch_seconds - *request_time) > kMaxSkewSeconds) {
    return Status(StatusCode::kFailedPrecondition,
                  "Signature expired: X-Amz-Date " + std::string(request_date) +
                      " is more than 15 minutes from the server time " +
                      FormatAmzDate(now_epoch_seconds) + "; check the client clock",
                  wire.skewed);
  }

  std::string payload_hash;
  std::vector<std::string_view> content_sha = HeaderValues(req.headers, "x-amz-content-sha256");
  if (content_sha.size() > 1) return malformed("More than one X-Amz-Content-Sha256 header");
  if (content_sha.empty()) {
    payload_hash = BodyHash(req);
  } else {
    payload_hash = TrimAll(content_sha.front());
    if (IsHex(payload_hash, 64)) {
      if (ToLower(payload_hash) != BodyHash(req)) {
        return Status(StatusCode::kInvalidArgument,
                      "The provided 'x-amz-content-sha256' header does not match what was "
                      "computed from the body",
                      wire.content_mismatch);
      }
    } else if (payload_hash != kUnsignedPayload && !payload_hash.starts_with("STREAMING-")) {
      return malformed(
          "X-Amz-Content-Sha256 must be the hex SHA-256 of the body, UNSIGNED-PAYLOAD or "
          "STREAMING-*");
    } else if (expected_service != "s3") {
      // Only S3 lets a client leave its body out of the signature: for the
      // API an unsigned body could be swapped by anyone on the path.
      return malformed("X-Amz-Content-Sha256 " + payload_hash.substr(0, 64) +
                       " is for S3 only: sign the body (send its hex SHA-256, or no "
                       "X-Amz-Content-Sha256 header)");
    }
  }

  const std::string canonical =
      CanonicalRequest(req.method, CanonicalUri(req.path, expected_service),
                       CanonicalQuery(req.query), signed_headers, payload_hash);
  const std::string scope = Scope(auth->date, auth->region, auth->service);
  const std::string string_to_sign = StringToSign(request_date, scope, Sha256Hex(canonical));
  const std::string expected = HexEncode(
      HmacSha256(SigningKeyFor(secret->secret_access_key, auth->date, auth->region, auth->service),
                 string_to_sign));
  if (!ConstantTimeEquals(expected, ToLower(auth->signature))) {
    return Status(StatusCode::kInvalidArgument,
                  "The request signature we calculated does not match the signature you "
                  "provided. Check your AWS Secret Access Key and signing method. The canonical "
                  "request was\n" +
                      RedactedCanonicalRequest(canonical) + "\nand the string to sign was\n" +
                      string_to_sign,
                  wire.mismatch);
  }
  return std::string(auth->access_key_id);
}

}  // namespace pw::sigv4
