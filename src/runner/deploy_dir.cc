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

fs::path Resolved(const std::string& path) {
  std::error_code ec;
  fs::path out = fs::weakly_canonical(fs::path(path), ec);
  if (ec) out = fs::path(path).lexically_normal();
  // "dir/" and "dir" are the same place.
  if (!out.has_filename() && out.has_parent_path() && out != out.root_path()) {
    out = out.parent_path();
  }
  return out;
}

// True if `inner` is `outer` or below it (both resolved).
bool Within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // A trailing separator.
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

// The data-directory rule shared by reads and deploys.
Status CheckDataDir(const std::string& what, const std::string& path, const fs::path& resolved,
                    const PathPolicy& policy) {
  if (policy.data_dir.empty()) return Status::Ok();
  const fs::path data = Resolved(policy.data_dir);
  if (Within(resolved, data)) {
    return InvalidArgument(what + " '" + path + "' is inside the server's data directory " +
                               data.string() + "; choose a path outside it.",
                           "");
  }
  if (Within(data, resolved)) {
    return InvalidArgument(what + " '" + path + "' contains the server's data directory " +
                               data.string() +
                               "; choose a path that does not, or move serve --data-dir "
                               "elsewhere.",
                           "");
  }
  return Status::Ok();
}

// The server's own secrets (PathPolicy::protected_paths), by the same rule.
Status CheckProtected(const std::string& what, const std::string& path, const fs::path& resolved,
                      const PathPolicy& policy) {
  for (const std::string& p : policy.protected_paths) {
    if (p.empty()) continue;
    const fs::path kept = Resolved(p);
    if (Within(resolved, kept)) {
      return InvalidArgument(what + " '" + path + "' is or lies inside " + kept.string() +
                                 ", which the server keeps from actions (its keys, TLS, "
                                 "config or secret files); choose a path outside it.",
                             "");
    }
    if (Within(kept, resolved)) {
      return InvalidArgument(what + " '" + path + "' contains " + kept.string() +
                                 ", which the server keeps from actions (its keys, TLS, "
                                 "config or secret files); choose a path that does not.",
                             "");
    }
  }
  return Status::Ok();
}

}  // namespace

Status CheckDeployTarget(const std::string& path, const PathPolicy& policy) {
  const std::string what = "Deploy/Directory Path";
  if (policy.deploy_roots.empty()) {
    return InvalidArgument(
        "Deploy/Directory is disabled on this server: start it with serve --deploy-root DIR to "
        "allow deploys below DIR.",
        "");
  }
  if (path.empty() || path[0] != '/') {
    return InvalidArgument(what + " '" + path + "' must be an absolute path.", "");
  }
  const fs::path target = Resolved(path);
  PW_RETURN_IF_ERROR(CheckDataDir(what, path, target, policy));
  PW_RETURN_IF_ERROR(CheckProtected(what, path, target, policy));
  std::string roots;
  for (const auto& root : policy.deploy_roots) {
    const fs::path r = Resolved(root);
    if (Within(target, r) && target != r) return Status::Ok();
    roots += (roots.empty() ? "" : ", ") + r.string();
  }
  return InvalidArgument(what + " '" + path + "' (" + target.string() +
                             ") is not below a deploy root (" + roots +
                             "); deploy below one or add serve --deploy-root.",
                         "");
}

Status CheckReadablePath(const std::string& path, const PathPolicy& policy) {
  if (path.empty() || path[0] != '/') {
    return InvalidArgument("Path '" + path + "' must be an absolute path.", "");
  }
  const fs::path resolved = Resolved(path);
  for (const char* pseudo : {"/proc", "/sys", "/dev"}) {
    if (Within(resolved, pseudo)) {
      return InvalidArgument("Path '" + path + "' (" + resolved.string() + ") is in " + pseudo +
                                 ", a pseudo file system, not a directory of files to read; "
                                 "choose another path.",
                             "");
    }
  }
  PW_RETURN_IF_ERROR(CheckDataDir("Path", path, resolved, policy));
  return CheckProtected("Path", path, resolved, policy);
}

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
