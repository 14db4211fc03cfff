#pragma once

// RemoteObjectStore: the ObjectStore of `serve --s3-endpoint URL`, the S3
// REST API of any S3-compatible store (MinIO, Ceph, s3rver, AWS itself),
// path-style (`<endpoint>/<bucket>/<key>`), signed with SigV4 for service
// "s3" with the server's own credentials. Bodies stream between the file and
// the connection; neither GET nor PUT holds an object in memory.
//
//   auto s3 = RemoteObjectStore::Create({.endpoint_url = "http://127.0.0.1:9000",
//                                        .credentials = {"AKID", "SECRET", ""}});
//   if (!s3.ok()) return s3.status();  // A malformed endpoint URL.
//   Result<ObjectInfo> got = (*s3)->Get("my-source", "app.zip", "", "/tmp/app.zip");
//
// Thread-safe: every call opens its own connection and the object is
// immutable after construction.

#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"
#include "runner/object_store.h"
#include "runner/s3_http.h"
#include "sigv4/sigv4.h"

namespace pw::runner {

struct RemoteObjectStoreOptions {
  std::string endpoint_url;  // "http[s]://host[:port][/base]".
  std::string region = "us-east-1";
  sigv4::Credentials credentials;
  int max_attempts = 3;  // Connection failures and 5xx answers are retried.
  std::chrono::milliseconds backoff_base{200};
  std::chrono::seconds timeout{120};  // Connect, read and write timeout per attempt.
};

class RemoteObjectStore final : public ObjectStore {
 public:
  // Errors: kInvalidArgument when the endpoint URL is not http(s)://host[:port][/base].
  static Result<std::unique_ptr<RemoteObjectStore>> Create(RemoteObjectStoreOptions options);

  // ObjectStore. Errors: those of S3ErrorFrom (runner/s3_http.h) for an S3
  // error answer: kNotFound (NoSuchBucket, NoSuchKey, NoSuchVersion; a HEAD
  // 404 has no body and is named NoSuchKey), kFailedPrecondition for 403;
  // kUnavailable when the store cannot be reached or keeps answering 5xx;
  // kInternal when the local file cannot be read or written. A failed Get
  // leaves `dest_path` empty or partial.
  Result<ObjectInfo> Head(const std::string& bucket, const std::string& key,
                          const std::string& version_id = "") override;
  Result<ObjectInfo> Get(const std::string& bucket, const std::string& key,
                         const std::string& version_id, const std::string& dest_path) override;
  Result<ObjectInfo> Put(const std::string& bucket, const std::string& key,
                         const std::string& src_path, const PutOptions& options) override;
  // DELETE; a 404 (NoSuchKey) is OK, NoSuchBucket is not.
  Status Delete(const std::string& bucket, const std::string& key) override;
  // The object's URL on the store: endpoint/bucket/key[?versionId=…].
  std::string UrlOf(const std::string& bucket, const std::string& key,
                    const std::string& version_id) const override;

 private:
  RemoteObjectStore(RemoteObjectStoreOptions options, S3Endpoint endpoint);
  // base path + "/" + bucket + "/" + key, percent-encoded as SigV4 signs it.
  std::string PathOf(const std::string& bucket, const std::string& key) const;

  const RemoteObjectStoreOptions options_;
  const S3Endpoint endpoint_;
};

}  // namespace pw::runner
