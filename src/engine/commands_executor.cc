// The Commands executor: runs an action's commands as the script of
// /bin/sh -e in a fresh working directory holding its inputs, optionally
// inside the sandbox, then stores its output artifacts and variables.
// Preparation (unpacking inputs) runs on the calling worker thread; the exit
// is handled on a worker thread again.

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/executor.h"
#include "engine/work_queue.h"
#include "runner/artifact_store.h"
#include "runner/process_launcher.h"

namespace pw::engine {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Gives `path` and everything below it to `user` (the action user runs
// in directories the server made). Symlinks are changed, not followed.
void ChownTree(const std::string& path, const runner::ActionUser& user) {
  std::error_code ec;
  if (lchown(path.c_str(), user.uid, user.gid) != 0) return;
  if (!fs::is_directory(fs::symlink_status(path, ec))) return;
  for (auto it = fs::recursive_directory_iterator(path, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    [[maybe_unused]] int rc = lchown(it->path().c_str(), user.uid, user.gid);
  }
}

class CommandsExecutor final : public ActionExecutor {
 public:
  explicit CommandsExecutor(const ExecutorEnv& env) : env_(env) {}

  void Run(const ActionWork& w, ActionDone done) override;

  void Cancel(const std::string& run_id) override {
    std::lock_guard lock(mu_);
    auto it = processes_.find(run_id);
    if (it != processes_.end()) {
      env_.launcher->Cancel(it->second);
    } else {
      cancelled_.insert(run_id);  // Not started yet: refuse to start it.
    }
  }

 private:
  ExecutorEnv env_;
  std::mutex mu_;                                       // Guards the two below.
  std::map<std::string, runner::ProcessId> processes_;  // Run id -> running process.
  std::set<std::string> cancelled_;                     // Cancelled before they started.
};

void CommandsExecutor::Run(const ActionWork& w, ActionDone done) {
  // The working directory is the action's fresh directory itself; the status
  // file (written only when a command fails) lives beside the log.
  const std::string work = env_.WorkDir(w.run_id);
  const std::string src = work;
  const std::string status_file = env_.LogPath(w.run_id) + ".status";
  const std::string variables_file = env_.LogPath(w.run_id) + ".vars";
  const core::ActionDecl& a = w.decl;
  auto fail = [&](const std::string& msg, const std::string& code = "JobFailed") {
    done(Failure(msg, "", code));
  };
  std::error_code ec;
  fs::create_directory(src, ec);
  if (ec) return fail("Cannot create the working directory " + src + ": " + ec.message());

  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "HOME=" + work,
      "LANG=C.UTF-8",
      "PIPEWRIGHT_PIPELINE=" + w.pipeline,
      "PIPEWRIGHT_EXECUTION_ID=" + w.execution_id,
      "PIPEWRIGHT_STAGE=" + w.stage,
      "PIPEWRIGHT_ACTION=" + w.action,
      "PIPEWRIGHT_ACTION_EXECUTION_ID=" + w.run_id,
      "CODEBUILD_SRC_DIR=" + src,
      "PIPEWRIGHT_STATUS_FILE=" + status_file,
      "PIPEWRIGHT_VARIABLES_FILE=" + variables_file,
  };
  // Inputs: the first in the working directory, the others beside it.
  bool first = true;
  for (const auto& in : a.input_artifacts) {
    auto it = w.inputs.find(in);
    if (it == w.inputs.end() || it->second.empty()) continue;
    std::string dest = first ? src : work + ".in/" + in;
    Status st = env_.artifacts->Extract(it->second, dest);
    if (!st.ok()) return fail("Cannot unpack input artifact " + in + ": " + st.message());
    env.push_back("CODEBUILD_SRC_DIR_" + in + "=" + dest);
    env.push_back("PIPEWRIGHT_INPUT_" + in + "=" + dest);
    first = false;
  }
  auto cfg = [&](const char* k) {
    auto it = a.configuration.find(k);
    return it == a.configuration.end() ? std::string() : it->second;
  };
  for (const auto& v : a.environment) env.push_back(v.name + "=" + v.value);
  if (std::string ev = cfg("EnvironmentVariables"); !ev.empty()) {
    json list = json::parse(ev, nullptr, false);
    if (!list.is_array()) {
      return fail(
          "Configuration EnvironmentVariables must be a JSON list of "
          "{\"name\", \"value\"} objects.",
          "ConfigurationError");
    }
    for (const auto& v : list) {
      if (!v.is_object() || !v.contains("name") || !v["name"].is_string() ||
          (v.contains("value") && !v["value"].is_string())) {
        return fail(
            "Configuration EnvironmentVariables entries must be {\"name\": string, \"value\": "
            "string}.",
            "ConfigurationError");
      }
      env.push_back(v["name"].get<std::string>() + "=" +
                    (v.contains("value") ? v["value"].get<std::string>() : std::string()));
    }
  }
  // Reference values last, replacing any same-named variable set above.
  for (const auto& [name, value] : w.reference_env) {
    // clang 14 cannot capture a structured binding: capture a prefix string.
    const std::string prefix = name + "=";
    std::erase_if(env, [&prefix](const std::string& kv) { return kv.rfind(prefix, 0) == 0; });
    env.push_back(prefix + value);
  }
  for (const auto& kv : env) {
    if (kv.find('\0') != std::string::npos) {
      return fail("Environment variable " + kv.substr(0, kv.find('=')) +
                      " holds a NUL byte, which a process environment cannot carry.",
                  "ConfigurationError");
    }
  }
  const std::vector<std::string> commands = w.commands;
  if (commands.empty()) {
    return fail(
        "Action " + w.action + " has no commands: set `commands` or configuration Commands.",
        "ConfigurationError");
  }
  // The commands are the script of sh, one per line; nothing else is pasted
  // into it. The EXIT trap records which command failed and its status.
  // On success it exports the declared outputVariables (names checked at
  // validation: letters, digits, _) as NAME=VALUE records separated by NULs.
  std::string exports;
  for (const auto& var : a.output_variables) {
    exports += "printf \"%s=%s\\0\" " + var + " \"${" + var + "-}\"; ";
  }
  std::string script =
      "trap 'rc=$?; if [ \"$rc\" -ne 0 ]; then echo \"$PW_CMD $rc\" > "
      "\"$PIPEWRIGHT_STATUS_FILE\"; " +
      (exports.empty() ? std::string()
                       : "else { " + exports + "} > \"$PIPEWRIGHT_VARIABLES_FILE\"; ") +
      "fi' EXIT\n";
  for (size_t i = 0; i < commands.size(); ++i) {
    script += "PW_CMD=" + std::to_string(i + 1) + "\n" + commands[i] + "\n";
  }
  int timeout_minutes = a.timeout_minutes.value_or(60);
  if (std::string t = cfg("TimeoutInMinutes"); !t.empty()) {
    bool digits = t.size() <= 4 && t.find_first_not_of("0123456789") == std::string::npos;
    int n = digits ? std::stoi(t) : 0;
    if (n < 1 || n > 480) {
      return fail(
          "Configuration TimeoutInMinutes must be a whole number of minutes from 1 to "
          "480, not '" +
              t.substr(0, 32) + "'.",
          "ConfigurationError");
    }
    timeout_minutes = n;
  }
  runner::ProcessSpec spec;
  spec.argv = {"/bin/sh", "-e", "-c", script, "pipewright-action"};
  spec.env = std::move(env);
  spec.cwd = src;
  spec.log_path = env_.LogPath(w.run_id);
  spec.timeout_seconds = timeout_minutes * 60.0;
  spec.kill_grace_seconds = env_.kill_grace_seconds;
  if (env_.sandbox->active()) {
    // The action reaches its own directories and result files, nothing else
    // of the data directory. The result files must exist to be bound.
    runner::SandboxPaths paths;
    paths.cwd = src;
    for (const std::string& path : {work, work + ".in"}) {
      if (fs::exists(path, ec)) paths.writable.push_back(path);
    }
    for (const std::string& path : {status_file, variables_file}) {
      std::ofstream touch(path, std::ios::app);
      paths.writable.push_back(path);
    }
    if (env_.action_user) {
      for (const std::string& path : paths.writable) ChownTree(path, *env_.action_user);
    }
    spec.argv = env_.sandbox->Wrap(spec.argv, paths);
  }

  const std::string run_id = w.run_id;
  auto on_exit = [this, run_id, outputs = a.output_artifacts, commands, work, src, status_file,
                  variables_file, timeout_minutes,
                  done](runner::ProcessId, const runner::ProcessExit& x) {
    {
      std::lock_guard lock(mu_);
      processes_.erase(run_id);
    }
    bool queued = env_.queue->Enqueue([=, this] {
      core::ActionResult result;
      if (x.exit_code == 0 && x.signal == 0) {
        for (const auto& o : outputs) {
          auto rev = env_.artifacts->PutDirectory(src, o.files);
          if (!rev.ok()) {
            result =
                Failure("Cannot store output artifact " + o.name + ": " + rev.status().message());
            break;
          }
          result.outputs[o.name] = *rev;
        }
        if (result.status != core::ActionStatus::kFailed) {
          result.summary = std::to_string(commands.size()) + " command(s) succeeded";
          std::ifstream vf(variables_file, std::ios::binary);
          std::string record;
          while (std::getline(vf, record, '\0')) {
            auto eq = record.find('=');
            if (eq != std::string::npos) {
              result.output_variables[record.substr(0, eq)] = record.substr(eq + 1);
            }
          }
        }
      } else if (x.timed_out) {
        result = Failure("Timed out after " + std::to_string(timeout_minutes) + " minute(s).",
                         x.output_tail);
      } else if (x.cancelled) {
        result = Failure("The action was cancelled.", x.output_tail);
      } else {
        std::string which = "The commands";
        int code = x.exit_code;
        std::ifstream sf(status_file);
        size_t index = 0;
        if (sf >> index >> code && index >= 1 && index <= commands.size()) {
          which = "Command " + std::to_string(index) + " (" + commands[index - 1] + ")";
        }
        std::string how = x.signal != 0 ? "was killed by signal " + std::to_string(x.signal)
                                        : "exited with code " + std::to_string(code);
        result = Failure(which + " " + how + ".",
                         x.output_tail.empty() ? which + " " + how + "." : x.output_tail);
      }
      done(result);
      // Clean up after the result is recorded: off the critical path.
      std::error_code rm;
      fs::remove_all(work, rm);
      fs::remove_all(work + ".in", rm);
      fs::remove(status_file, rm);
      fs::remove(variables_file, rm);
      env_.queue->Release();
    });
    if (!queued) env_.queue->Release();  // Stopping: the run stays InProgress for Recover.
  };
  // `done` is called without mu_: it takes the engine mutex, which is held
  // around Cancel (engine mutex, then mu_).
  bool cancelled = false;
  Result<runner::ProcessId> started = Internal("not started");
  {
    std::lock_guard lock(mu_);
    cancelled = cancelled_.erase(run_id) > 0;
    if (!cancelled) {
      env_.queue->Hold();
      // The exit callback takes mu_ too, so it sees the process recorded.
      started = env_.launcher->Start(spec, on_exit);
      if (started.ok()) {
        processes_[run_id] = *started;
      } else {
        env_.queue->Release();
      }
    }
  }
  if (cancelled) return fail("The action was cancelled.");
  if (!started.ok()) return fail("Cannot start /bin/sh: " + started.status().message());
}

}  // namespace

std::unique_ptr<ActionExecutor> NewCommandsExecutor(const ExecutorEnv& env) {
  return std::make_unique<CommandsExecutor>(env);
}

}  // namespace pw::engine
