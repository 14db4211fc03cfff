#include "runner/deploy_dir.h"

#include <fcntl.h>
#include <stdio.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "common/ids.h"
#include "common/status.h"

namespace pw::runner {
namespace {

namespace fs = std::filesystem;

// Swaps `from` into `to`'s place when `to` exists; `from` then names the old tree.
Status Exchange(const fs::path& from, const fs::path& to, const fs::path& old_path) {
  if (renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_EXCHANGE) == 0) {
    return Status::Ok();
  }
  if (errno != EINVAL && errno != ENOSYS) {
    return Internal("exchange " + to.string() + ": " + std::strerror(errno));
  }
  // No atomic exchange here (e.g. some network or overlay file systems): a
  // brief window in which `to` is missing.
  if (rename(to.c_str(), old_path.c_str()) != 0) {
    return Internal("rename " + to.string() + ": " + std::strerror(errno));
  }
  if (rename(from.c_str(), to.c_str()) != 0) {
    Status status = Internal("rename into " + to.string() + ": " + std::strerror(errno));
    rename(old_path.c_str(), to.c_str());  // Best effort: put the old tree back.
    return status;
  }
  return Status::Ok();
}

}  // namespace

Status ReplaceDirectoryContents(const std::string& target_dir, const ArtifactStore& store,
                                const std::string& revision) {
  fs::path target = fs::path(target_dir).lexically_normal();
  if (!target.has_filename()) target = target.parent_path();  // "dir/" -> "dir".
  if (target.empty() || !target.has_filename() || target.filename() == "..") {
    return InvalidArgument("bad deploy target '" + target_dir + "'", "");
  }
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(target, ec);
  const bool exists = fs::exists(status);
  if (exists && !fs::is_directory(status)) {
    return FailedPrecondition("deploy target is not a directory: " + target.string());
  }
  fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  if (ec) return Internal("mkdir " + parent.string() + ": " + ec.message());

  const std::string base = "." + target.filename().string() + ".pw-";
  const fs::path fresh = parent / (base + "new-" + RandomHex(12));
  const fs::path old_path = parent / (base + "old-" + RandomHex(12));
  Status result = store.Extract(revision, fresh.string());
  if (result.ok()) {
    if (exists) {
      result = Exchange(fresh, target, old_path);
    } else if (rename(fresh.c_str(), target.c_str()) != 0) {
      result = Internal("rename into " + target.string() + ": " + std::strerror(errno));
    }
  }
  // After an exchange `fresh` holds the old tree; otherwise leftovers of a failure.
  fs::remove_all(fresh, ec);
  fs::remove_all(old_path, ec);
  return result;
}

}  // namespace pw::runner
