#include "runner/sandbox.h"

#include <fcntl.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "common/log.h"

namespace pw::runner {
namespace {

// Runs `argv` with stdin from /dev/null and stdout+stderr captured, and waits
// for it. Returns the exit status (as waitpid) and fills `output`.
Result<int> RunAndCapture(const std::vector<std::string>& argv, std::string& output) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Internal(std::string("pipe2: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  char* no_env[] = {nullptr};
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), no_env);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return FailedPrecondition("cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  char buf[4096];
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (output.size() < 4096) output.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r != pid) return Internal(std::string("waitpid: ") + std::strerror(errno));
  return status;
}

}  // namespace

Result<ActionUser> LookUpActionUser(const std::string& name) {
  if (name.empty()) return InvalidArgument("--action-user needs a user name", "");
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  int rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
  if (found == nullptr && rc == 0 && name.find_first_not_of("0123456789") == std::string::npos) {
    rc = getpwuid_r(static_cast<uid_t>(std::strtoul(name.c_str(), nullptr, 10)), &pw, buf.data(),
                    buf.size(), &found);
  }
  if (found == nullptr) {
    return InvalidArgument("--action-user " + name + ": no such user" +
                               (rc != 0 ? std::string(" (") + std::strerror(rc) + ")" : ""),
                           "");
  }
  return ActionUser{found->pw_name, found->pw_uid, found->pw_gid};
}

Sandbox::Sandbox(SandboxOptions options) : options_(std::move(options)) {
  std::sort(options_.hide_dirs.begin(), options_.hide_dirs.end());  // Parents first.
}

std::vector<std::string> Sandbox::Wrap(const std::vector<std::string>& argv,
                                       const SandboxPaths& paths) const {
  if (!active()) return argv;
  std::vector<std::string> out;
  if (options_.user.has_value()) {
    // setpriv (util-linux) drops to the user before exec, so bwrap itself
    // runs unprivileged (posix_spawn has no setuid step of its own).
    out = {options_.setpriv_path, "--reuid=" + std::to_string(options_.user->uid),
           "--regid=" + std::to_string(options_.user->gid), "--init-groups", "--"};
  }
  if (options_.mode == SandboxMode::kBwrap) {
    // No --die-with-parent: its PR_SET_PDEATHSIG fires when the *thread* that
    // spawned bwrap exits, and Start() runs on any caller's thread. The pid
    // namespace gives the same guarantee: bwrap's init is in the launcher's
    // process group, and when the group is killed the kernel kills every
    // process of the namespace, even those that left the group.
    // No --new-session: it would move the action out of that group, so the
    // group's SIGTERM would no longer reach it; the launcher starts every
    // child in a session of its own instead, which has the same effect (no
    // controlling terminal to inject input into).
    std::vector<std::string> bwrap = {
        options_.bwrap_path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs",
        "/tmp", "--unshare-pid",
        // A server running as root keeps its capabilities in bwrap otherwise,
        // and CAP_SYS_ADMIN could unmount what hides the data directory.
        "--cap-drop", "ALL"};
    out.insert(out.end(), bwrap.begin(), bwrap.end());
    for (const std::string& dir : options_.hide_dirs) {
      if (dir.empty() || dir == "/") continue;
      out.insert(out.end(), {"--tmpfs", dir});
    }
    for (const std::string& file : options_.hide_files) {
      out.insert(out.end(), {"--ro-bind", "/dev/null", file});
    }
    for (const std::string& path : paths.writable) out.insert(out.end(), {"--bind", path, path});
    for (const std::string& path : paths.read_only) {
      out.insert(out.end(), {"--ro-bind", path, path});
    }
    if (!paths.cwd.empty()) out.insert(out.end(), {"--chdir", paths.cwd});
    out.emplace_back("--");
  }
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

Result<SandboxMode> ProbeSandbox(std::string_view flag, const SandboxOptions& options) {
  if (flag == "none") return SandboxMode::kNone;
  if (flag != "auto" && flag != "bwrap") {
    return InvalidArgument("--sandbox must be auto, bwrap or none, not '" + std::string(flag) + "'",
                           "");
  }
  SandboxOptions probe = options;
  probe.mode = SandboxMode::kBwrap;
  probe.hide_dirs.clear();  // Hiding cannot fail where the bare sandbox works.
  probe.hide_files.clear();
  std::string output;
  SandboxPaths paths;
  paths.cwd = "/";
  Result<int> status = RunAndCapture(Sandbox(probe).Wrap({"/bin/true"}, paths), output);
  std::string why;
  if (!status.ok()) {
    why = status.status().message();
  } else if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
    why = options.bwrap_path + " exited with status " +
          std::to_string(WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status)) +
          (output.empty() ? "" : ": " + output);
  } else {
    return SandboxMode::kBwrap;
  }
  if (flag == "auto") {
    PW_LOG(Warning) << "actions run without a sandbox: " << why;
    return SandboxMode::kNone;
  }
  return FailedPrecondition("--sandbox bwrap: bubblewrap cannot run here (" + why +
                            "); install the Debian package bubblewrap, allow unprivileged user "
                            "namespaces, or use --sandbox none");
}

Result<SandboxOptions> ConfigureSandbox(std::string_view flag, const std::string& action_user,
                                        std::vector<std::string> hide_dirs,
                                        std::vector<std::string> hide_files,
                                        const std::string& work_root) {
  SandboxOptions options;
  if (!action_user.empty()) {
    PW_ASSIGN_OR_RETURN(ActionUser user, LookUpActionUser(action_user));
    options.user = std::move(user);
  }
  PW_ASSIGN_OR_RETURN(options.mode, ProbeSandbox(flag, options));
  if (options.mode == SandboxMode::kBwrap && options.user && !work_root.empty()) {
    // The bare sandbox runs as that user: now one with its cwd in work_root,
    // which bwrap resolves as that user, as it will for every action.
    std::string output;
    SandboxPaths paths;
    paths.cwd = work_root;
    paths.read_only = {work_root};
    Result<int> status = RunAndCapture(Sandbox(options).Wrap({"/bin/true"}, paths), output);
    if (!status.ok() || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
      return FailedPrecondition(
          "--action-user " + options.user->name + " cannot reach " + work_root +
          ", where the actions' directories are made (" +
          (status.ok() ? output : status.status().message()) +
          "): the user needs search (x) permission on every directory above it. Move it (serve's "
          "--data-dir, worker's --work-dir; e.g. under /var/lib) or grant it (chmod o+x on the "
          "directory that refuses).");
    }
  }
  if (options.mode == SandboxMode::kBwrap) {
    options.hide_dirs = std::move(hide_dirs);
    options.hide_files = std::move(hide_files);
  }
  std::string as = options.user ? " as user " + options.user->name : "";
  if (options.mode == SandboxMode::kBwrap) {
    PW_LOG(Info) << "actions run in a bubblewrap sandbox" << as << " (" << options.bwrap_path
                 << ")";
  } else {
    PW_LOG(Info) << "actions run without a sandbox" << as;
  }
  return options;
}

}  // namespace pw::runner
