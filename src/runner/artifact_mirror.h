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
#include <optional>
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
  // When the revision's zip was last stored, by the mirror's clock; nullopt
  // if absent. Errors as Contains.
  virtual Result<std::optional<EpochSeconds>> Modified(const std::string& revision) = 0;
  // Removes the revision's zip; OK if absent.
  virtual Status Remove(const std::string& revision) = 0;
};

// MirrorLedger: how several servers agree on when a mirror copy may be
// removed (retention's sweep), kept in their shared database
// (engine/mirror_ledger.h). A Put that relies on the mirror's copy of a
// revision (uploading it, or finding it there) first claims the revision; a
// sweep removes a copy only after marking it as being removed, which it may
// do only when the last claim is older than the grace period; a claim waits
// while a removal is under way. So a copy a Put relied on is never removed
// before the Put's caller records the revision, unless that takes longer
// than the grace period. Implementations are thread-safe.
class MirrorLedger {
 public:
  virtual ~MirrorLedger() = default;
  // Records that a Put relies on the mirror's copy of `revision` now. Waits
  // (a bounded time) while another server removes it. Errors: kUnavailable
  // (the database, or a removal that does not end).
  virtual Status Claim(const std::string& revision) = 0;
  // How long after its own Claim a process may rely on the copy without
  // claiming again: half the grace period, the rest a margin for clocks.
  virtual double ClaimTtlSeconds() const = 0;
  // The clock claims are stamped with.
  virtual EpochSeconds Now() const = 0;
  // Marks `revision` as being removed if it was claimed at least
  // `min_age_seconds` ago (or never) and nobody else is removing it. Returns
  // a token for EndRemoval, or "" when it may not be removed now.
  virtual Result<std::string> BeginRemoval(const std::string& revision, double min_age_seconds) = 0;
  // Clears the mark BeginRemoval made (best effort: a mark left behind by a
  // crash goes stale and is then ignored).
  virtual void EndRemoval(const std::string& revision, const std::string& token) = 0;
  // The longest a removal may take after BeginRemoval: past it, the sweep
  // gives up instead of removing (claims stop waiting for a mark that old).
  static constexpr double kRemovalWindowSeconds = 60;
  static constexpr double kStaleRemovalSeconds = 900;
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
