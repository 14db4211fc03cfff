#pragma once

// ObjectStore: the S3 object calls the S3 actions need (Source/S3 reads and
// polls an object, Deploy/S3 writes objects), over either the server's own
// buckets (buckets/local_buckets.h, kept in the data directory and served on
// the API address) or any S3-compatible store (`serve --s3-endpoint`).
// Bodies travel as files, never whole in memory.
//
//   std::shared_ptr<ObjectStore> s3 = ...;
//   Result<ObjectInfo> head = s3->Head("my-source", "app.zip");
//   Result<ObjectInfo> got = s3->Get("my-source", "app.zip", head->version_id, "/tmp/x.zip");
//
// Implementations are thread-safe.

#include <cstdint>
#include <map>
#include <string>

#include "common/clock.h"
#include "common/status.h"

namespace pw::runner {

struct ObjectInfo {
  std::string bucket;
  std::string key;
  // The version id; "null" for an object of an unversioned bucket (as S3
  // names it), empty when the store did not say.
  std::string version_id;
  std::string etag;  // Without quotes.
  uint64_t size = 0;
  EpochSeconds last_modified = 0;
  std::string content_type;
  std::string cache_control;
  std::map<std::string, std::string> metadata;  // x-amz-meta-<name> (name lower-case) -> value.
};

struct PutOptions {
  std::string content_type;  // Empty: binary/octet-stream.
  std::string cache_control;
  std::string canned_acl;  // x-amz-acl (private, public-read, ...); empty: none sent.
  std::map<std::string, std::string> metadata;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  // The object's description. Errors: kNotFound with wire name NoSuchBucket,
  // NoSuchKey or NoSuchVersion; kFailedPrecondition (AccessDenied ...);
  // kUnavailable when the store cannot be reached.
  virtual Result<ObjectInfo> Head(const std::string& bucket, const std::string& key,
                                  const std::string& version_id = "") = 0;
  // Writes the object's body to `dest_path` (created or truncated) and
  // describes it. Empty `version_id`: the latest version. Errors as Head.
  virtual Result<ObjectInfo> Get(const std::string& bucket, const std::string& key,
                                 const std::string& version_id, const std::string& dest_path) = 0;
  // Stores the file `src_path` as the object (a new version in a versioned
  // bucket) and describes what was stored. Errors as Head.
  virtual Result<ObjectInfo> Put(const std::string& bucket, const std::string& key,
                                 const std::string& src_path, const PutOptions& options) = 0;
  // Removes the object (its latest version: in a versioned bucket a delete
  // marker hides it and the bucket's lifecycle rules remove the noncurrent
  // versions). OK if it is already absent. Errors as Head; the default
  // answers kFailedPrecondition (the store cannot delete).
  virtual Status Delete(const std::string& bucket, const std::string& key) {
    (void)key;
    return FailedPrecondition("objects of bucket " + bucket + " cannot be deleted here");
  }
  // A human-facing URL of the object (revisionUrl, entityUrl), or empty.
  virtual std::string UrlOf(const std::string& bucket, const std::string& key,
                            const std::string& version_id) const {
    (void)bucket;
    (void)key;
    (void)version_id;
    return {};
  }
};

}  // namespace pw::runner
