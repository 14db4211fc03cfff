// The Commands executor: runs an action's commands as the script of
// /bin/sh -e in a fresh working directory holding its inputs, optionally
// inside the sandbox, then stores its output artifacts and variables.
// Preparation (unpacking inputs) runs on the calling worker thread; the exit
// is handled on a worker thread again.

#include <unistd.h>

#include <exception>
#include <filesystem>
#include <fstream>

#include "common/log.h"
#include "engine/executor.h"
#include "engine/process_run.h"
#include "engine/work_queue.h"
#include "runner/artifact_store.h"
#include "runner/commands.h"
#include "runner/mount_namespace.h"
#include "runner/process_launcher.h"

namespace pw::engine {

namespace fs = std::filesystem;

namespace {

class CommandsExecutor final : public ActionExecutor {
 public:
  explicit CommandsExecutor(const ExecutorEnv& env) : env_(env), runs_(env_) {}

  void Run(const ActionWork& w, ActionDone done) override;

  void Cancel(const std::string& run_id) override { runs_.Cancel(run_id); }

 private:
  ExecutorEnv env_;
  ProcessRuns runs_;
};

void CommandsExecutor::Run(const ActionWork& w, ActionDone done) {
  // The working directory is the action's fresh directory itself; the status
  // file (written only when a command fails) lives beside the log.
  const std::string work = env_.WorkDir(w.run_id);
  const std::string src = work;
  const std::string status_file = env_.LogPath(w.run_id) + ".status";
  const std::string variables_file = env_.LogPath(w.run_id) + ".vars";
  const core::ActionDecl& a = w.decl;
  runs_.BeginPreparing(w.run_id);
  auto cleanup = [this, work, status_file, variables_file] {
    env_.RemoveRunDirs(work);
    std::error_code rm;
    fs::remove(status_file, rm);
    fs::remove(variables_file, rm);
    // The next actions' logs, made while this one's successor runs (two: a
    // parallel group's clean-ups catch up with its starts).
    if (env_.log_spares) env_.log_spares->Replenish(2);
  };
  auto fail = [&](const std::string& msg, const std::string& code = "JobFailed") {
    runs_.EndPreparing(w.run_id);
    done(Failure(msg, "", code));
    cleanup();
  };
  if (Status made = env_.MakeRunDir(src); !made.ok()) {
    return fail("Cannot create the working directory: " + made.message());
  }

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
  };
  // Sandboxed: from before its namespace is copied (below, or by bwrap)
  // until its process has exited, no released mount point moves.
  std::shared_ptr<ExecutorEnv::SandboxHolder> hold;
  if (env_.sandbox->active()) hold = env_.HoldForSandbox();
  // Sandboxed, the inputs are mounted in a namespace of the action's own,
  // which this thread leaves right after the spawn (or a failure): see
  // runner/mount_namespace.h. Outputs are then read through a pinned path.
  std::shared_ptr<runner::ActionMountNamespace> ns;
  if (env_.action_namespaces && env_.sandbox->active() && !a.input_artifacts.empty()) {
    auto entered = runner::ActionMountNamespace::Enter();
    if (entered.ok()) {
      ns = *std::move(entered);
    } else {
      PW_LOG(Warning) << "inputs mounted in the server's namespace: " << entered.status().message();
    }
  }
  auto leave = [&ns] {
    if (ns) ns->Leave();
  };
  // Inputs: the first in the working directory, the others beside it.
  bool first = true;
  std::vector<std::string> mounted;  // Their revisions.
  for (const auto& in : a.input_artifacts) {
    auto it = w.inputs.find(in);
    if (it == w.inputs.end() || it->second.empty()) continue;
    std::string dest = first ? src : work + ".in/" + in;
    Status st = env_.UnpackInput(it->second, dest, /*server_namespace=*/ns == nullptr);
    if (!st.ok()) {
      leave();
      return fail("Cannot unpack input artifact " + in + ": " + st.message());
    }
    mounted.push_back(it->second);
    env.push_back("CODEBUILD_SRC_DIR_" + in + "=" + dest);
    env.push_back("PIPEWRIGHT_INPUT_" + in + "=" + dest);
    first = false;
  }
  // The program is the one `pipewright worker --builtin` runs too
  // (runner/commands.h): same checks, environment, script and messages.
  runner::CommandsRequest req;
  req.commands = w.commands;
  req.base_env = std::move(env);
  req.configuration = a.configuration;
  for (const auto& v : a.environment) req.extra_env.emplace_back(v.name, v.value);
  for (const auto& kv : w.reference_env) req.extra_env.push_back(kv);
  req.output_variables = a.output_variables;
  req.default_timeout_minutes = a.timeout_minutes;
  req.cwd = src;
  req.log_path = env_.LogPath(w.run_id);
  req.status_file = status_file;
  req.variables_file = variables_file;
  req.kill_grace_seconds = env_.kill_grace_seconds;
  auto program = runner::PrepareCommands(req);
  if (!program.ok()) {
    leave();
    return fail(program.status().message(), "ConfigurationError");
  }
  runner::ProcessSpec spec = program->spec;
  spec.log_spares = env_.log_spares.get();
  // This thread has work to do right after the spawn (the next action's
  // inputs, the last one's clean-up) unless more starts wait in the queue.
  spec.off_spawner_cpu = env_.queue->Depth() == 0;
  if (env_.sandbox->active()) {
    // The action reaches its own directories and result files, nothing else
    // of the data directory. The result files must exist to be bound.
    runner::SandboxPaths paths;
    paths.cwd = src;
    std::error_code ec;
    for (const std::string& path : {work, work + ".in"}) {
      if (fs::exists(path, ec)) paths.writable.push_back(path);
    }
    // (The status file only when a shell runs the commands, the variables
    // file only when output variables are declared: nothing else writes or
    // reads them, and each bound file is one more mount and one more inode
    // made and removed.)
    std::vector<std::string> result_files;
    if (!program->direct) result_files.push_back(status_file);
    if (!a.output_variables.empty()) result_files.push_back(variables_file);
    for (const std::string& path : result_files) {
      std::ofstream touch(path, std::ios::app);
      paths.writable.push_back(path);
    }
    if (env_.action_user) {
      for (const std::string& path : paths.writable) ChownTree(path, *env_.action_user);
    }
    spec.argv = env_.sandbox->Wrap(spec.argv, paths);
  }

  // Where the outputs are read from after the exit, on another thread.
  std::string view = src;
  if (ns && !a.output_artifacts.empty()) {
    auto pinned = ns->Pin(src);
    if (!pinned.ok()) {
      leave();
      return fail("Cannot keep the working directory for the outputs: " +
                  pinned.status().message());
    }
    view = *std::move(pinned);
  }
  auto on_exit = [this, outputs = a.output_artifacts, prog = *program, src = view, cleanup, done,
                  ns, hold](const runner::ProcessExit& x) mutable {
    hold.reset();  // Its sandbox is gone, set up or not.
    runner::CommandsOutcome outcome = runner::ReadCommandsOutcome(prog, x);
    core::ActionResult result;
    if (outcome.succeeded) {
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
        result.summary = outcome.summary;
        result.output_variables = outcome.output_variables;
      }
    } else {
      result = Failure(outcome.failure_message, outcome.summary);
    }
    done(result);
    ns.reset();  // The action's namespace, with its overlays, ends before the clean-up.
    cleanup();   // After the result is recorded: off the critical path.
  };
  // `done` is called without the runs' lock: it takes the engine mutex, which
  // is held around Cancel.
  if (hold) hold->Spawning();  // Its set-up starts now.
  Status started = runs_.Start(w.run_id, spec, std::move(on_exit));
  const bool own_namespace = ns != nullptr;
  leave();
  ns.reset();
  hold.reset();  // The exit's copy keeps it (or, not started, nothing does).
  if (started.code() == StatusCode::kAborted) return fail(started.message());
  if (!started.ok()) return fail("Cannot start /bin/sh: " + started.message());
  // While it runs (off this CPU: off_spawner_cpu), the next action's inputs:
  // the mounts leave its path (not for actions in namespaces of their own,
  // which mount there).
  if (!own_namespace) {
    for (const std::string& revision : mounted) env_.PremountInput(revision);
  }
}

}  // namespace

std::unique_ptr<ActionExecutor> NewCommandsExecutor(const ExecutorEnv& env) {
  return std::make_unique<CommandsExecutor>(env);
}

}  // namespace pw::engine
