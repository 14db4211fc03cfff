#pragma once

// LocalBuckets: the server's own S3 buckets, kept in the data directory and
// served on the API address by api/s3_ops.h. It is the runner::ObjectStore of
// the S3 actions unless `serve --s3-endpoint` names another store.
//
// Every bucket is versioned (as S3 with versioning Enabled): each put makes
// a new version with a random id, a delete without a version id adds a
// delete marker, and a delete with one removes that version for good.
//
// Layout (docs/s3-buckets.md):
//  - metadata in the Store's key/value table: `s3bucket/<name>` → {"created"};
//    a key `s3obj/<bucket>/<key>` → {"kid", "next", "latest": <version>};
//    each version a row, `s3ver/<bucket>/<kid>/<sequence, newest first>`,
//    found by id through `s3vid/<bucket>/<kid>/<version id>` → <sequence>;
//    multipart uploads `s3upload/<bucket>/<upload id>` → {"key", "created",
//    ...} and their parts `s3part/<upload id>/<00001>` → {"file", "etag", "size"};
//  - bodies as files: `<root>/<bucket>/<version id>`, parts in
//    `<root>/.uploads/<upload id>/`, temporary files in `<root>/.tmp/`.
// Crash safety: a body is written to a temporary file, fsynced and renamed
// into place before its metadata is committed, so a crash leaves either the
// old state or the new one (plus, at worst, a file nothing names, removed
// by the sweep at start-up).
//
//   buckets::LocalBuckets b(store, clock, {.root = data_dir + "/buckets"});
//   if (Status s = b.Open(); !s.ok()) return s;
//   PW_RETURN_IF_ERROR(b.CreateBucket("my-source"));
//   auto put = b.Put("my-source", "app.zip", "/tmp/app.zip", {});   // put->version_id
//
// Thread-safe. Metadata changes of one server are serialized by a mutex;
// several servers sharing a PostgreSQL database each keep their own bodies,
// so buckets are not shared between servers (point --s3-endpoint at a
// shared store for that).

#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"
#include "runner/object_store.h"
#include "store/store.h"

namespace pw::buckets {

struct LocalBucketsOptions {
  std::string root;                               // <data_dir>/buckets; created by Open().
  uint64_t max_object_bytes = uint64_t{5} << 30;  // Larger objects: EntityTooLarge.
  uint64_t min_part_bytes = uint64_t{5} << 20;    // Parts but the last (S3: 5 MiB).
  // Multipart uploads in progress per bucket; one more is refused
  // (InvalidRequest) until some complete or are aborted.
  size_t max_open_uploads = 1000;
};

struct BucketEntry {
  std::string name;
  EpochSeconds created = 0;
};

// Integrity values a client sent with a body; each is checked when non-empty.
struct Integrity {
  std::string content_md5;         // Content-MD5: base64 of the MD5.
  std::string checksum_algorithm;  // CRC32, CRC32C, CRC64NVME, SHA1 or SHA256.
  std::string checksum_value;      // x-amz-checksum-<algorithm>: base64.
};

// An object version with where its body is (empty for a delete marker).
struct Located {
  runner::ObjectInfo info;
  std::string body_path;
  std::string checksum_algorithm;  // As sent at upload ("" when none was).
  std::string checksum_value;
};

struct ListQuery {
  std::string prefix;
  std::string delimiter;  // Empty: no grouping.
  int max_keys = 1000;
  std::string after;  // Only keys (and common prefixes) after this one.
};

struct ListPage {
  std::vector<runner::ObjectInfo> objects;  // Latest versions that are not delete markers.
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_after;  // When truncated: the last key or common prefix returned.
};

struct ObjectVersion {
  runner::ObjectInfo info;  // For a delete marker: key, version_id, last_modified.
  bool is_latest = false;
  bool delete_marker = false;
};

struct VersionQuery {
  std::string prefix;
  std::string delimiter;
  int max_keys = 1000;
  std::string key_marker;         // Start after this key ...
  std::string version_id_marker;  // ... or after this version of key_marker.
};

struct VersionPage {
  std::vector<ObjectVersion> versions;  // By key, each key's newest first.
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_key_marker;
  std::string next_version_id_marker;
};

struct DeleteOutcome {
  std::string version_id;      // The marker made, or the version removed.
  bool delete_marker = false;  // A marker was made, or the version removed was one.
};

struct CompletedPart {
  int part_number = 0;
  std::string etag;  // Quotes allowed.
};

// Returns OK when `name` is a valid S3 bucket name, else kInvalidArgument
// with wire name InvalidBucketName and the rule broken.
Status ValidateBucketName(const std::string& name);

class LocalBuckets : public runner::ObjectStore {
 public:
  // `store` and `clock` must outlive this object.
  LocalBuckets(store::Store& store, const Clock& clock, LocalBucketsOptions options);
  LocalBuckets(const LocalBuckets&) = delete;
  LocalBuckets& operator=(const LocalBuckets&) = delete;

  // Creates the directories, moves an earlier server's key documents
  // ({"versions": [...]}) to a row per version, and sweeps what a crash left
  // behind (temporary files, bodies and parts no metadata names). Call once
  // before use, while nothing else uses the buckets. kUnavailable on I/O or
  // database errors (a crash or error part way: the next Open goes on).
  Status Open();

  // Where callers put bodies they hand over (PutUploaded, UploadPart): on the
  // same file system as the bodies, so they can be renamed into place.
  std::string temp_dir() const;
  const LocalBucketsOptions& options() const { return options_; }
  // The server's base URL for UrlOf ("http://127.0.0.1:8480"), known once it
  // listens; until then UrlOf returns "".
  void SetPublicUrl(const std::string& url) EXCLUDES(url_mu_);

  // Buckets. Errors: InvalidBucketName (kInvalidArgument);
  // BucketAlreadyOwnedByYou (kAlreadyExists); NoSuchBucket (kNotFound);
  // BucketNotEmpty (kFailedPrecondition) when objects that are not delete
  // markers remain (noncurrent versions and markers are removed with the
  // bucket: every bucket here is versioned, unlike a new S3 bucket, so
  // `aws s3 rm --recursive` then `aws s3 rb` works as users expect).
  Status CreateBucket(const std::string& name);
  Status DeleteBucket(const std::string& name);
  Status HeadBucket(const std::string& name);
  Result<std::vector<BucketEntry>> ListBuckets();

  // runner::ObjectStore. Put copies `src_path`; the others as documented there.
  Result<runner::ObjectInfo> Head(const std::string& bucket, const std::string& key,
                                  const std::string& version_id = "") override;
  Result<runner::ObjectInfo> Get(const std::string& bucket, const std::string& key,
                                 const std::string& version_id,
                                 const std::string& dest_path) override;
  Result<runner::ObjectInfo> Put(const std::string& bucket, const std::string& key,
                                 const std::string& src_path,
                                 const runner::PutOptions& options) override;
  // A delete marker over the latest version (DeleteObject without a version).
  Status Delete(const std::string& bucket, const std::string& key) override;
  // "<public_url>/<bucket>/<key>?versionId=<id>", key percent-encoded.
  std::string UrlOf(const std::string& bucket, const std::string& key,
                    const std::string& version_id) const override;

  // The version (latest when `version_id` is empty) and its body file.
  // Errors: NoSuchBucket, NoSuchKey (also when the latest is a delete
  // marker; `info.version_id` of the error's object is not reported),
  // NoSuchVersion (kNotFound); MethodNotAllowed (kFailedPrecondition) for
  // a version id that names a delete marker; InvalidArgument for a
  // malformed version id.
  Result<Located> Locate(const std::string& bucket, const std::string& key,
                         const std::string& version_id);

  // Stores the file `temp_file` (in temp_dir(); renamed away on success,
  // left for the caller to remove on error) as a new version. Errors: as
  // Put, and BadDigest / InvalidDigest (kInvalidArgument) when `integrity`
  // does not match; EntityTooLarge (kInvalidArgument) past max_object_bytes.
  Result<runner::ObjectInfo> PutUploaded(const std::string& bucket, const std::string& key,
                                         const std::string& temp_file,
                                         const runner::PutOptions& options,
                                         const Integrity& integrity = {});

  // Adds a delete marker (empty `version_id`), or removes that version
  // (its body too). Errors: NoSuchBucket; NoSuchVersion is not an error
  // (S3 answers 204): the outcome names the version asked for.
  Result<DeleteOutcome> DeleteObject(const std::string& bucket, const std::string& key,
                                     const std::string& version_id = "");

  // Listings (ListObjects V1/V2 and ListObjectVersions). Errors: NoSuchBucket.
  Result<ListPage> List(const std::string& bucket, const ListQuery& query);
  Result<VersionPage> ListVersions(const std::string& bucket, const VersionQuery& query);

  // Multipart uploads. Errors: NoSuchBucket; NoSuchUpload (kNotFound) for an
  // unknown upload id or one of another key; InvalidArgument for a part
  // number outside 1..10000; InvalidPart / InvalidPartOrder / EntityTooSmall
  // (kInvalidArgument) at completion; EntityTooLarge past max_object_bytes.
  Result<std::string> CreateMultipartUpload(const std::string& bucket, const std::string& key,
                                            const runner::PutOptions& options);
  // Keeps `temp_file` (renamed away on success) as part `part_number`;
  // returns its ETag (hex MD5, no quotes).
  Result<std::string> UploadPart(const std::string& bucket, const std::string& key,
                                 const std::string& upload_id, int part_number,
                                 const std::string& temp_file, const Integrity& integrity = {});
  Result<runner::ObjectInfo> CompleteMultipartUpload(const std::string& bucket,
                                                     const std::string& key,
                                                     const std::string& upload_id,
                                                     const std::vector<CompletedPart>& parts);
  Status AbortMultipartUpload(const std::string& bucket, const std::string& key,
                              const std::string& upload_id);

  // Test hook: the next puts stop after the body is in place and before the
  // metadata commit, as a crash there would (returning kUnavailable).
  void FailBeforeCommitForTest(bool fail) { fail_before_commit_ = fail; }

 private:
  struct Version;
  Status RequireBucket(const std::string& bucket);
  // Renames `temp_file` to the body of a new version and commits `v` as the
  // latest version of `key` (plus `extra` in the same batch).
  Result<runner::ObjectInfo> CommitVersion(const std::string& bucket, const std::string& key,
                                           const std::string& temp_file, Version v,
                                           store::Batch extra) EXCLUDES(mu_);
  std::string BodyPath(const std::string& bucket, const std::string& version_id) const;

  store::Store& store_;
  const Clock& clock_;
  const LocalBucketsOptions options_;
  // Serializes read-modify-write of object and part metadata.
  Mutex mu_;
  bool fail_before_commit_ = false;
  mutable Mutex url_mu_;
  std::string public_url_ GUARDED_BY(url_mu_);
};

}  // namespace pw::buckets
