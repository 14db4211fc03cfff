#pragma once

// Deploy to a directory: replaces a directory's contents with an artifact in
// one step, so readers see either the old tree or the new one, never a mix.
//
//   PW_RETURN_IF_ERROR(ReplaceDirectoryContents("/srv/www/app", store, revision));
//
// Thread-compatible: concurrent calls for the same target_dir must be
// serialised by the caller; different targets are independent.

#include <string>

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

}  // namespace pw::runner
