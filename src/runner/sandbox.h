#pragma once

// Sandbox: what confines a Commands action. It turns the argv of an action
// into the argv that runs it inside a Linux sandbox made with bubblewrap
// (`bwrap`) and, optionally, as another user (`setpriv`). Wrap() is pure: it
// builds strings and touches nothing, so the policy is unit-tested as argv.
// ProbeSandbox() is the one function here that starts a process.
//
// The sandbox (SandboxMode::kBwrap) sees the whole system read-only, a fresh
// /dev, /proc (its own pid namespace) and /tmp, no capabilities; every
// directory in SandboxOptions::hide_dirs is an empty tmpfs and every file in
// hide_files reads as /dev/null; only the action's own paths are bound back
// (SandboxPaths). The network is shared. The environment is the launcher's.
//
//   SandboxOptions options;
//   options.mode = SandboxMode::kBwrap;
//   options.hide_dirs = {"/srv/pipewright"};          // The data directory.
//   options.hide_files = {"/etc/pipewright/keys"};    // --auth-keys-file.
//   Sandbox sandbox(options);
//   SandboxPaths paths;
//   paths.cwd = work;
//   paths.writable = {work};
//   spec.argv = sandbox.Wrap(spec.argv, paths);
//
// Thread-safe: Wrap() is const and keeps no state.

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace pw::runner {

enum class SandboxMode {
  kNone,   // Actions run unconfined, with the server's view of the file system.
  kBwrap,  // Actions run inside bubblewrap.
};

// The user actions run as, resolved once at start-up.
struct ActionUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Resolves a user name (or a numeric uid) with getpwnam/getpwuid. Errors:
// kInvalidArgument naming the user when there is no such user.
Result<ActionUser> LookUpActionUser(const std::string& name);

// Fixed for a server or a worker.
struct SandboxOptions {
  SandboxMode mode = SandboxMode::kNone;
  std::string bwrap_path = "/usr/bin/bwrap";
  std::string setpriv_path = "/usr/bin/setpriv";
  // Absolute paths. Directories become empty tmpfs, files read as /dev/null.
  // Directories are applied parents first, so a hidden directory may lie
  // inside another. Files must exist (bwrap cannot create a mount point in
  // the read-only root).
  std::vector<std::string> hide_dirs;
  std::vector<std::string> hide_files;
  // Run the action as this user (setpriv before bwrap, so bwrap itself runs
  // unprivileged). Unset: as the caller.
  std::optional<ActionUser> user;
};

// The paths of one action; absolute, existing.
struct SandboxPaths {
  std::string cwd;                     // The action's working directory (--chdir).
  std::vector<std::string> writable;   // Bound read-write, after everything is hidden.
  std::vector<std::string> read_only;  // Bound read-only, after the writable ones.
};

class Sandbox {
 public:
  explicit Sandbox(SandboxOptions options);

  const SandboxOptions& options() const { return options_; }
  // True when Wrap() changes anything (a sandbox or another user).
  bool active() const { return options_.mode != SandboxMode::kNone || options_.user.has_value(); }

  // The argv that runs `argv` confined as configured. With kNone and no user,
  // `argv` itself. argv[0] of the result is absolute when argv[0] is.
  std::vector<std::string> Wrap(const std::vector<std::string>& argv,
                                const SandboxPaths& paths) const;

 private:
  SandboxOptions options_;
};

// Decides the mode for a --sandbox value ("auto", "bwrap", "none"): runs
// `options` (as kBwrap, as options.user if set) around /bin/true once and
// returns kBwrap if that exits 0. "auto" falls back to kNone when it does
// not; "bwrap" then fails with kFailedPrecondition carrying bwrap's own
// message; "none" starts nothing. Any other value: kInvalidArgument. Blocks
// until the probe exits (milliseconds). `options.mode` is ignored. Must not
// run while something else reaps children with waitpid(-1).
Result<SandboxMode> ProbeSandbox(std::string_view flag, const SandboxOptions& options);

// What serve and worker do with their --sandbox and --action-user flags:
// looks up `action_user` (empty: none), probes the mode, and logs which one
// is used. With an action user and bubblewrap, also checks that the user
// reaches `work_root` (an existing directory, where the actions' directories
// are made; empty: not checked): bubblewrap runs as that user, so a parent
// it may not search (/root is 0700) would fail every action with bwrap's
// "Can't find source path". Errors: those of LookUpActionUser and
// ProbeSandbox; kFailedPrecondition naming the directory and the fix.
Result<SandboxOptions> ConfigureSandbox(std::string_view flag, const std::string& action_user,
                                        std::vector<std::string> hide_dirs,
                                        std::vector<std::string> hide_files,
                                        const std::string& work_root = "");

}  // namespace pw::runner
