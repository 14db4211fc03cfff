#pragma once

// Deploy to a directory: replaces a directory's contents with an artifact in
// one step, so readers see either the old tree or the new one, never a mix.
//
//   PW_RETURN_IF_ERROR(ReplaceDirectoryContents("/srv/www/app", store, revision));
//
// Thread-compatible: concurrent calls for the same target_dir must be
// serialised by the caller; different targets are independent.

#include <string>
#include <vector>

#include "common/status.h"
#include "runner/artifact_store.h"

namespace pw::runner {

// Extracts `revision` from `store` into a fresh sibling of `target_dir`
// (".<name>.pw-new-<random>" in the same parent, hence the same file system),
// then swaps it into place: an atomic exchange (renameat2 RENAME_EXCHANGE)
// when target_dir exists, falling back to rename-away-then-rename-in where the
// file system lacks it; then removes the old tree. If target_dir does not
// exist it is created by the rename (parents are created as needed).
// Errors: those of ArtifactStore::Extract (kNotFound, kInvalidArgument, ...);
// kFailedPrecondition if target_dir exists and is not a directory;
// kInternal on I/O failure. On error target_dir is left as it was and the
// temporary directory is removed.
Status ReplaceDirectoryContents(const std::string& target_dir, const ArtifactStore& store,
                                const std::string& revision);

// Which local paths actions may touch. Paths are compared after making them
// absolute, normalising "." and "..", and resolving the symbolic links of
// their longest existing prefix (std::filesystem::weakly_canonical).
struct PathPolicy {
  std::vector<std::string> deploy_roots;  // Absolute (serve --deploy-root); none: no deploys.
  std::string data_dir;                   // The server's data directory.
  // The server's other files and directories that actions are kept from (the
  // sandbox hides them): the keys file, the TLS key and certificate, the
  // --config file, the git connections and build projects files and the
  // secret files they name. Absolute; they need not exist.
  std::vector<std::string> protected_paths;
};

// A Deploy/Directory `Path`: absolute, strictly below one of the deploy
// roots, and neither the data directory nor a protected path, nor inside
// one, nor containing one.
// kInvalidArgument with a message naming the path and what to change (the
// --deploy-root flag when none is configured or the path is outside them).
Status CheckDeployTarget(const std::string& path, const PathPolicy& policy);

// A local path an action reads (Source/Directory `Path`, a Git
// `RepositoryPath` that is not a URL): absolute, not in a pseudo file system
// (/proc, /sys, /dev: the server's own /proc/self would be read), and neither
// the data directory nor a protected path, nor inside one, nor containing
// one (a snapshot would copy pipewright.db or the keys into an artifact that
// every reader of the pipeline can fetch). kInvalidArgument naming the path
// and the rule.
Status CheckReadablePath(const std::string& path, const PathPolicy& policy);

}  // namespace pw::runner
