#pragma once

// S3Client: the three S3 object calls a job worker needs (GetObject,
// PutObject, HeadObject), path-style (`<endpoint>/<bucket>/<key>`), signed
// with SigV4 for service "s3" using a job's artifactCredentials (session token
// included). Pipewright's server answers them on its API address; any
// S3-compatible store that accepts path-style requests works too.
//
//   S3Client s3({.endpoint_url = "http://127.0.0.1:8480", .region = "us-east-1"});
//   Result<std::string> zip = s3.GetObject({"pipewright-artifacts", "p/SourceArti/abc.zip"},
//   creds); Status put = s3.PutObject({"pipewright-artifacts", "p/BuildArtif/def.zip"}, bytes,
//   creds);
//
// Thread-safe: every call opens its own connection and the object is
// immutable after construction.

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"
#include "sigv4/sigv4.h"

namespace pw::runner {

struct S3ObjectRef {
  std::string bucket;
  std::string key;  // Not URL-encoded; '/' separates "directories".
};

struct S3ClientOptions {
  std::string endpoint_url;  // "http://host:port[/base]"; objects live below the base path.
  std::string region = "us-east-1";
  int max_attempts = 3;  // Connection failures and 5xx answers are retried.
  std::chrono::milliseconds backoff_base{200};
  std::chrono::seconds timeout{120};  // Connect and read timeout per attempt.
};

class S3Client {
 public:
  explicit S3Client(S3ClientOptions options);

  // Returns the object's bytes. Errors: kNotFound (wire name "NoSuchKey" or
  // the S3 error code) for 404; kFailedPrecondition with the S3 error code
  // (e.g. "AccessDenied", "InvalidAccessKeyId") for 403; kUnavailable after
  // the retries for connection failures (empty wire name) and 5xx;
  // kInvalidArgument for other answers and a malformed endpoint URL.
  Result<std::string> GetObject(const S3ObjectRef& object, const sigv4::Credentials& creds) const;

  // Stores `body` as the object, sending its SHA-256 as x-amz-content-sha256.
  // Errors as GetObject.
  Status PutObject(const S3ObjectRef& object, std::string_view body,
                   const sigv4::Credentials& creds) const;

  // Returns the object's size (Content-Length). Errors as GetObject.
  Result<uint64_t> HeadObject(const S3ObjectRef& object, const sigv4::Credentials& creds) const;

  // The request path of `object`: base path + "/" + bucket + "/" + key, each
  // byte outside A-Za-z0-9-_.~/ percent-encoded.
  std::string PathOf(const S3ObjectRef& object) const;

 private:
  struct Response {
    int status = 0;
    std::string body;
    uint64_t content_length = 0;
  };
  Result<Response> Send(std::string_view method, const S3ObjectRef& object, std::string_view body,
                        const sigv4::Credentials& creds) const;

  S3ClientOptions options_;
};

}  // namespace pw::runner
