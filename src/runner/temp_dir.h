#pragma once

// ScopedTempDir: a fresh private directory that is removed, recursively, when
// the object is destroyed (ninja's ScopedTempDir). For tests and for the
// engine's scratch space.
//
//   PW_ASSIGN_OR_RETURN(ScopedTempDir tmp, ScopedTempDir::Create("export"));
//   Use(tmp.path() + "/file");
//
// Thread-compatible: one owner; distinct objects may be used from any threads.

#include <string>
#include <string_view>

#include "common/status.h"

namespace pw::runner {

class ScopedTempDir {
 public:
  // Creates "<$TMPDIR or /tmp>/<prefix>-XXXXXX" with mode 0700 (mkdtemp).
  // Fails with kInternal if the directory cannot be created; `prefix` must not
  // contain '/' (kInvalidArgument otherwise).
  static Result<ScopedTempDir> Create(std::string_view prefix = "pw");

  ScopedTempDir(ScopedTempDir&& other) noexcept;
  ScopedTempDir& operator=(ScopedTempDir&& other) noexcept;
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  // Removes the directory and everything below it; errors are ignored.
  ~ScopedTempDir();

  // Absolute path without a trailing slash; empty after being moved from.
  const std::string& path() const { return path_; }

 private:
  explicit ScopedTempDir(std::string path) : path_(std::move(path)) {}
  void Remove();

  std::string path_;
};

}  // namespace pw::runner
