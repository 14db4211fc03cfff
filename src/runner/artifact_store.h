#pragma once

// ArtifactStore: content-addressed artifacts kept as zip files under a root
// directory, the form in which CodePipeline hands artifacts to job workers.
// A revision is a 64-digit lower-case hex SHA-256 and names root/<revision>.zip.
//
//   ArtifactStore store("/var/lib/pipewright/artifacts");
//   PW_ASSIGN_OR_RETURN(std::string revision, store.PutDirectory(build_dir, {"dist/**"}));
//   PW_RETURN_IF_ERROR(store.Extract(revision, next_action_dir));
//
// Thread-safe: every write goes to a unique temporary file that is renamed into
// place, so concurrent Puts (even of the same content) and Extracts need no
// lock, also across processes sharing the root.
//
// Symbolic links are stored as links (never followed), and Extract recreates
// only links that resolve inside the destination.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "runner/artifact_mirror.h"

namespace pw::runner {

// True if `s` is well-formed as a revision (64 lower-case hex digits).
bool IsArtifactRevision(std::string_view s);

// Whether relative path `path` ("a/b/c.txt") matches `glob`: fnmatch(3)
// semantics per path segment ('*', '?', '[...]' never match '/'), a "**"
// segment matches zero or more whole segments, and a trailing '/' means
// everything below ("dist/" == "dist/**"). A leading "./" is ignored.
bool MatchesGlob(std::string_view glob, std::string_view path);

// Limits on one artifact, which may come from an untrusted job worker. The
// unpacked size counts bytes actually decompressed, never the sizes a zip
// declares. Messages for a breach name the limit and the serve flag.
struct ArtifactLimits {
  uint64_t max_artifact_bytes = uint64_t{1} << 30;  // The zip (serve --max-artifact-bytes).
  uint64_t max_unpacked_bytes = uint64_t{4} << 30;  // All entries (--max-unpacked-bytes).
  uint64_t max_entries = 100000;                    // Entries (--max-artifact-entries).
};

// Checks the zip file at `path` as an artifact from elsewhere: not empty
// (0 bytes), at most max_artifact_bytes, a consistent zip archive, at most
// max_entries entries with safe names (as Extract checks them), and entries
// that decompress (CRC-checked) to at most max_unpacked_bytes in total.
// Writes nothing. Errors: kInvalidArgument saying which rule failed;
// kNotFound if `path` does not exist.
Status ValidateZipFile(const std::string& path, const ArtifactLimits& limits);

class ArtifactStore {
 public:
  // Uses (and creates, if missing) `root_dir`. Creation errors surface on the
  // first Put.
  // With a `mirror` (several servers), every Put also uploads the zip to it
  // before returning (an upload failure fails the Put, naming the mirror, and
  // leaves nothing stored), and a revision missing locally is fetched from it
  // (see Fetch) by Extract. With a `ledger` too, retention's sweep may
  // remove mirror copies (RemoveMirrorCopyIfOlderThan): every Put that relies
  // on the mirror's copy claims the revision in the ledger first (at most once
  // per ledger->ClaimTtlSeconds() per revision in this process).
  explicit ArtifactStore(std::string root_dir, ArtifactLimits limits = {},
                         std::shared_ptr<ArtifactMirror> mirror = nullptr,
                         std::shared_ptr<MirrorLedger> ledger = nullptr);
  ArtifactStore(const ArtifactStore&) = delete;
  ArtifactStore& operator=(const ArtifactStore&) = delete;

  // Zips the regular files and symbolic links below `dir` (recursively;
  // directories themselves are not stored, so empty ones vanish; sockets and
  // fifos are skipped). If `globs` is non-empty only relative paths matching at
  // least one glob (see MatchesGlob) are included. The revision is the SHA-256
  // over the sorted (relative path, kind: file/executable/link, content or link
  // target), so it is deterministic and independent of mtimes and of the zip
  // encoding. A directory with nothing to store yields the empty zip.
  // `dir` must not change during the call.
  // Errors: kNotFound if `dir` is not a directory; kInvalidArgument if the
  // files (those the globs keep) exceed max_entries or max_unpacked_bytes
  // (found while listing, before any is read) or the zip max_artifact_bytes;
  // kInternal on I/O failure.
  // On error the store is unchanged.
  // With `cancel`, the call stops (kUnavailable) soon after `*cancel` turns
  // true: between files while listing and hashing, and inside the zip.
  Result<std::string> PutDirectory(const std::string& dir,
                                   const std::vector<std::string>& globs = {},
                                   const std::atomic<bool>* cancel = nullptr);

  // Stores the bytes of a zip file (e.g. uploaded by a job worker) and returns
  // its revision, the SHA-256 of `bytes`. Errors: kInvalidArgument if `bytes`
  // is empty, not a readable zip archive, or beyond the limits (see
  // ValidateZipFile); kInternal on I/O failure.
  Result<std::string> PutZipBytes(std::string_view bytes);

  // Stores a copy of the zip file at `path` (e.g. an S3 source object), left
  // in place, and returns its revision, the SHA-256 of its bytes (as
  // PutZipBytes). Errors: kNotFound if `path` does not exist;
  // kInvalidArgument as ValidateZipFile; kInternal on I/O failure.
  Result<std::string> PutZipFile(const std::string& path);

  // True if the revision is well-formed and stored.
  bool Has(const std::string& revision) const;

  // Makes the revision present on local disk: OK if it is; otherwise, with a
  // mirror, downloads it, checks it (ValidateZipFile, and its content hash
  // against `revision`: the SHA-256 of the zip's bytes or of its entries, as
  // PutDirectory computes it) and commits it. Nothing is left behind on error.
  // Errors: kInvalidArgument if malformed; kNotFound if neither here nor in
  // the mirror; kDataLoss... kInternal if the download does not match
  // `revision`; the mirror's error (kUnavailable ...) naming it.
  Status Fetch(const std::string& revision) const;

  // root/<revision>.zip; no check that it is well-formed or exists (call
  // Fetch first where another server may have produced it).
  std::string PathOf(const std::string& revision) const;

  // Unzips `revision` into `dest_dir` (created with parents if missing; it
  // should be empty, since links already in it are not checked), restoring
  // executable bits (0755 vs 0644) and symbolic links.
  // Errors: kNotFound if the revision is not stored (nor in the mirror, which
  // Extract fetches from as Fetch does; kInvalidArgument if it is malformed); kInvalidArgument if
  // any entry has an absolute path or a ".." component (zip-slip), a link would resolve outside
  // `dest_dir`, or entries conflict — checked before anything is written for names and links;
  // kInvalidArgument if it has more than max_entries entries, or once the
  // bytes written exceed max_unpacked_bytes (counted while writing);
  // kInternal on I/O failure. On error `dest_dir` may hold a partial tree.
  Status Extract(const std::string& revision, const std::string& dest_dir) const;

  // Retention's sweep: removes the stored zip of `revision` unless it was
  // written, or put again (a Put of content already stored marks it new),
  // less than `min_age_seconds` ago. Atomic with respect to the Puts of this
  // store: a revision a Put returns stays stored, however the two interleave.
  // The mirror, if any, keeps its copy.
  enum class Removal { kRemoved, kYoung, kAbsent, kFailed };
  Removal RemoveIfOlderThan(const std::string& revision, double min_age_seconds);

  // The revisions stored here whose zip was written (or put again) at least
  // `min_age_seconds` ago: retention's periodic scan for artifacts nothing
  // refers to any more.
  std::vector<std::string> ListOlderThan(double min_age_seconds) const;

  // Retention's sweep, after RemoveIfOlderThan: removes the mirror's copy of
  // `revision` when both the ledger's last claim of it and the copy itself
  // (the mirror's modification time) are at least `min_age_seconds` old, and
  // no other server is removing it (MirrorLedger). kAbsent without a mirror
  // and a ledger (the copy is kept), or when the mirror has no copy; kYoung
  // when it must wait; kFailed on an error (the mirror or the database).
  Removal RemoveMirrorCopyIfOlderThan(const std::string& revision, double min_age_seconds);

  const std::string& root_dir() const { return root_dir_; }
  const ArtifactLimits& limits() const { return limits_; }

 private:
  // Makes `temp_path` durable and renames it to PathOf(revision); removes it if
  // that revision is already stored.
  // With a mirror, uploads `temp_path` first.
  Status Commit(const std::string& temp_path, const std::string& revision);
  // fsync and rename; removes `temp_path` on failure.
  Status Publish(const std::string& temp_path, const std::string& revision) const
      EXCLUDES(sweep_mu_);
  // Sets the stored zip's modification time to now; false if not stored.
  bool TouchIfStored(const std::string& revision) EXCLUDES(sweep_mu_);
  // With a mirror, makes sure a revision already stored here is in it too
  // (once per process and revision; with a ledger, claimed again once the
  // last claim is older than its ClaimTtlSeconds).
  Status EnsureMirrored(const std::string& revision);
  // Marks the revision as in the mirror and, with a ledger, claimed at
  // `claimed` (ledger_->Now() taken before the claim).
  void MarkMirrored(const std::string& revision, EpochSeconds claimed) const EXCLUDES(mu_);
  bool IsMarkedMirrored(const std::string& revision) const EXCLUDES(mu_);
  void ForgetMirrored(const std::string& revision) const EXCLUDES(mu_);
  std::string TempPath() const;

  const std::string root_dir_;
  const ArtifactLimits limits_;
  const std::shared_ptr<ArtifactMirror> mirror_;
  const std::shared_ptr<MirrorLedger> ledger_;
  // Orders RemoveIfOlderThan against TouchIfStored and Publish's rename.
  mutable Mutex sweep_mu_;
  mutable Mutex mu_;
  // Known to be in mirror_, with when (ledger_->Now(); 0 without a ledger)
  // this process last claimed it.
  mutable std::unordered_map<std::string, EpochSeconds> mirrored_ GUARDED_BY(mu_);
};

}  // namespace pw::runner
