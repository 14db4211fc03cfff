#pragma once

// AWS Signature Version 4 (header form, AWS4-HMAC-SHA256): Sign for clients,
// Verify for the server. Pure functions of their arguments (the clock and the
// key store come in as parameters); thread-safe as long as `lookup` is.
//
// Client:
//   HttpRequestView req{"POST", "/", "", {{"Host", "pw:8080"},
//                       {"X-Amz-Target", "CodePipeline_20150709.ListPipelines"}}, body};
//   for (auto& h : Sign(req, creds, "us-east-1", "codepipeline", now)) SetHeader(h);
// Server:
//   Result<std::string> akid = Verify(req, "codepipeline", now, [&](std::string_view id) {
//     return keys.Find(id);  // std::optional<SecretInfo>
//   });
//   if (!akid.ok()) return akid.status();  // Wire name set; api/ maps it to HTTP 4xx.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "sigv4/canonical_request.h"

namespace pw::sigv4 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // Empty for long-term keys.
};

// A request as the server saw it or as the client will send it. Borrows
// `body`, which must outlive the view.
struct HttpRequestView {
  std::string method;  // "POST"
  // Raw path as sent, e.g. "/" or "/my-bucket/some%20key" (percent-encoded, not decoded).
  std::string path;
  std::string query;   // Raw query string without '?', may be empty.
  HeaderList headers;  // Names in any case, as received.
  std::string_view body;
  // When set, the hex SHA-256 of the body, used instead of hashing `body`
  // (a body streamed to disk; or, before the body is read, the client's own
  // x-amz-content-sha256, so the headers' signature can be checked first).
  std::optional<std::string> body_sha256 = std::nullopt;
};

// What the key store knows about an access key id.
struct SecretInfo {
  std::string secret_access_key;
  std::string session_token;  // Empty = none required (and none accepted).
  double expires_at = 0;      // Seconds since the Unix epoch; 0 = never expires.
};

// Signs `req` for `service` ("codepipeline", "s3", ...) in `region` at time
// `epoch_seconds`. Returns the headers the caller must set on the request,
// each replacing any header of the same name already there:
//   X-Amz-Date; X-Amz-Security-Token when creds.session_token is set;
//   X-Amz-Content-Sha256 for service "s3"; and Authorization (last).
// Every header of `req` is signed (it must carry Host) except Authorization,
// User-Agent, Expect and X-Amzn-Trace-Id, which proxies may change, and those
// being replaced. The payload hash is the value of req's own
// x-amz-content-sha256 header when present (so a client may choose
// "UNSIGNED-PAYLOAD"), else the SHA-256 of req.body. Never fails.
HeaderList Sign(const HttpRequestView& req, const Credentials& creds, std::string_view region,
                std::string_view service, int64_t epoch_seconds);

// Looks up an access key id; nullopt when the key is unknown.
using SecretLookup = std::function<std::optional<SecretInfo>(std::string_view access_key_id)>;

// Verifies the AWS4-HMAC-SHA256 Authorization header of `req` for
// `expected_service` at time `now_epoch_seconds`; calls `lookup` at most once.
// Any region in the credential scope is accepted. Returns the access key id.
//
// Errors (wire names for other services / for "s3"), checked in this order:
//  - kInvalidArgument MissingAuthenticationToken / AccessDenied: no
//    Authorization header.
//  - kInvalidArgument IncompleteSignature / AuthorizationHeaderMalformed: the
//    header is not "AWS4-HMAC-SHA256 Credential=AKID/yyyymmdd/region/service/
//    aws4_request, SignedHeaders=a;b, Signature=<64 hex>", X-Amz-Date is
//    missing or not yyyymmddThhmmssZ or on another day than the scope, host is
//    not signed, a signed header is absent, or x-amz-content-sha256 is not a
//    hex SHA-256, UNSIGNED-PAYLOAD or STREAMING-*. For services other than
//    "s3" also: an X-Amz-Target header that is not signed, and (checked
//    after the time skew) UNSIGNED-PAYLOAD or STREAMING-*.
//  - kInvalidArgument InvalidSignatureException / AuthorizationHeaderMalformed:
//    the scope names a service other than `expected_service`.
//  - kFailedPrecondition InvalidClientTokenId / InvalidAccessKeyId: `lookup`
//    does not know the key.
//  - kFailedPrecondition ExpiredTokenException / ExpiredToken: the key's
//    expires_at has passed.
//  - kFailedPrecondition InvalidClientTokenId / InvalidToken: the session token
//    the key requires is missing or wrong, or one was sent for a key that has none.
//  - kFailedPrecondition RequestExpired / RequestTimeTooSkewed: X-Amz-Date is
//    more than 15 minutes from now.
//  - kInvalidArgument InvalidSignatureException / XAmzContentSHA256Mismatch:
//    x-amz-content-sha256 holds a hash that is not the SHA-256 of req.body.
//  - kInvalidArgument InvalidSignatureException / SignatureDoesNotMatch: the
//    signature is wrong (message carries the canonical request and string to
//    sign we computed, as AWS does, so a client author can diff them).
//
// Payload hash: the x-amz-content-sha256 header when present, else SHA-256 of
// req.body. With UNSIGNED-PAYLOAD or STREAMING-* the body is not covered by
// the signature, and aws-chunked chunk signatures are not checked here.
Result<std::string> Verify(const HttpRequestView& req, std::string_view expected_service,
                           int64_t now_epoch_seconds, const SecretLookup& lookup);

}  // namespace pw::sigv4
