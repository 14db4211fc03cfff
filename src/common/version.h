#pragma once

// Build information: the version of the CMake project() and the Git commit
// the binary was built from (short hash, "-dirty" with uncommitted changes,
// "unknown" outside a Git checkout). Written at build time by
// src/common/version.cmake, so a rebuild after a commit picks up the new hash.
//
//   std::printf("pipewright %s (%s)\n", pw::Version(), pw::GitCommit());

namespace pw {

const char* Version();    // e.g. "0.1.0".
const char* GitCommit();  // e.g. "38a0d17c1f2e" or "38a0d17c1f2e-dirty".

}  // namespace pw
