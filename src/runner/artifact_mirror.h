#pragma once

// ArtifactMirror: a shared copy of an ArtifactStore's zips, so that several
// servers see each other's artifacts (issue 14). With a mirror, ArtifactStore
// uploads every zip it commits before the Put returns (so a recorded revision
// always exists in the mirror), and fetches a revision missing on local disk
// from the mirror, verifying it against the revision before committing it.
// Without one (a single server) nothing changes.
//
//   auto mirror = NewObjectStoreArtifactMirror(s3, "team-artifacts", "http://minio:9000");
//   ArtifactStore store(data_dir + "/artifacts", limits, mirror);
//
// Implementations are thread-safe.

#include <memory>
#include <string>

#include "common/status.h"
#include "runner/object_store.h"

namespace pw::runner {

class ArtifactMirror {
 public:
  virtual ~ArtifactMirror() = default;
  // Where the zips live, for messages ("s3://bucket/artifacts/ at http://host:9000").
  virtual std::string Where() const = 0;
  // Whether the revision's zip is in the mirror. Errors: kUnavailable etc.
  virtual Result<bool> Contains(const std::string& revision) = 0;
  // Stores the zip file `zip_path` as `revision`.
  virtual Status Upload(const std::string& revision, const std::string& zip_path) = 0;
  // Writes the revision's zip to `dest_path`. Errors: kNotFound if absent.
  virtual Status Download(const std::string& revision, const std::string& dest_path) = 0;
};

// The mirror in `bucket` of an S3-compatible store, one object per revision
// under the fixed key "artifacts/<revision>.zip". `endpoint` only names the
// store in messages.
std::shared_ptr<ArtifactMirror> NewObjectStoreArtifactMirror(std::shared_ptr<ObjectStore> store,
                                                             std::string bucket,
                                                             std::string endpoint);

// "artifacts/<revision>.zip".
std::string ArtifactMirrorKey(const std::string& revision);

}  // namespace pw::runner
