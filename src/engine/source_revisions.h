#pragma once

// StartPipelineExecution.sourceRevisions: which source actions may be given a
// revision, and of which type. Pure. Thread-safe.
//
//   PW_RETURN_IF_ERROR(CheckSourceRevisions(pipeline.decl, overrides));
//   e.source_revisions = NormalizeSourceRevisions(overrides);

#include <vector>

#include "common/status.h"
#include "core/execution.h"
#include "core/pipeline.h"

namespace pw::engine {

// Each entry must name a Source action of `d`, once, with a type its
// provider takes: COMMIT_ID for Git, CodeCommit and CodeStarSourceConnection
// (a full 40-digit commit id); S3_OBJECT_VERSION_ID or S3_OBJECT_KEY for S3.
// Other sources (ECR, Directory, custom and third-party) are refused: not
// supported yet. Errors: kInvalidArgument (ValidationException) naming the
// action and what to change.
Status CheckSourceRevisions(const core::PipelineDecl& d,
                            const std::vector<core::SourceRevisionOverride>& revisions);

// Commit ids in lower case (a checked list).
std::vector<core::SourceRevisionOverride> NormalizeSourceRevisions(
    std::vector<core::SourceRevisionOverride> revisions);

}  // namespace pw::engine
