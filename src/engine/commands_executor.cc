// The Commands executor: runs an action's commands as the script of
// /bin/sh -e in a fresh working directory holding its inputs, optionally
// inside the sandbox, then stores its output artifacts and variables.
// Preparation (the working directory, unpacking inputs) runs on another
// worker thread while the run's start is committed (PrepareRun), or on the
// calling worker thread when it was not prepared; the exit is handled on a
// worker thread again.

#include <unistd.h>

#include <exception>
#include <filesystem>
#include <fstream>

#include "common/mutex.h"
#include "engine/executor.h"
#include "engine/process_run.h"
#include "engine/work_queue.h"
#include "runner/artifact_store.h"
#include "runner/commands.h"
#include "runner/process_launcher.h"

namespace pw::engine {

namespace fs = std::filesystem;

namespace {

// Input artifact name -> revision, in the order the action declares them
// (the first is unpacked into the working directory itself).
using Inputs = std::vector<std::pair<std::string, std::string>>;

Inputs InputsOf(const core::ActionDecl& a, const std::map<std::string, std::string>& revisions) {
  Inputs inputs;
  for (const auto& name : a.input_artifacts) {
    auto it = revisions.find(name);
    if (it != revisions.end() && !it->second.empty()) inputs.emplace_back(name, it->second);
  }
  return inputs;
}

// A run's working directory with its inputs in place, or why not.
struct Unpacked {
  std::string error;             // Empty: done. Else the run fails with it.
  std::vector<std::string> env;  // NAME=VALUE entries naming the inputs' directories.
};

Unpacked Unpack(const ExecutorEnv& env, const std::string& work, const Inputs& inputs) {
  Unpacked u;
  std::error_code ec;
  fs::create_directory(work, ec);
  if (ec) {
    u.error = "Cannot create the working directory " + work + ": " + ec.message();
    return u;
  }
  // Inputs: the first in the working directory, the others beside it.
  bool first = true;
  for (const auto& [name, revision] : inputs) {
    std::string dest = first ? work : work + ".in/" + name;
    Status st = env.UnpackInput(revision, dest);
    if (!st.ok()) {
      u.error = "Cannot unpack input artifact " + name + ": " + st.message();
      return u;
    }
    u.env.push_back("CODEBUILD_SRC_DIR_" + name + "=" + dest);
    u.env.push_back("PIPEWRIGHT_INPUT_" + name + "=" + dest);
    first = false;
  }
  return u;
}

// One run's preparation, from PrepareRun until Run takes it or DiscardPrepared drops it.
struct Preparation {
  enum class State { kQueued, kRunning, kDone };
  Inputs inputs;
  State state = State::kQueued;
  bool dropped = false;  // Taken over or discarded before it ended.
  Unpacked result;
};

class CommandsExecutor final : public ActionExecutor {
 public:
  explicit CommandsExecutor(const ExecutorEnv& env) : env_(env), runs_(env_) {}

  void Run(const ActionWork& w, ActionDone done) override;

  void Cancel(const std::string& run_id) override { runs_.Cancel(run_id); }

  void PrepareRun(const std::string& run_id, const core::ActionDecl& decl,
                  const std::map<std::string, std::string>& inputs) override EXCLUDES(mu_);
  void DiscardPrepared(const std::string& run_id) override EXCLUDES(mu_);

 private:
  // The queued task of PrepareRun: unpacks unless Run took the work over first.
  void RunPreparation(const std::string& run_id, const std::shared_ptr<Preparation>& p)
      EXCLUDES(mu_);
  // Run's side: the prepared result (waiting while it is being made), or
  // nothing when the run was not prepared or its task had not begun (then
  // Run unpacks itself and the task does nothing).
  std::optional<Unpacked> TakePrepared(const std::string& run_id) EXCLUDES(mu_);
  // Removes what a run left in the data directory.
  void Cleanup(const std::string& run_id) const;

  ExecutorEnv env_;
  ProcessRuns runs_;
  Mutex mu_;
  CondVar prepared_cv_;  // A preparation reached kDone.
  std::map<std::string, std::shared_ptr<Preparation>> prepared_ GUARDED_BY(mu_);
};

void CommandsExecutor::PrepareRun(const std::string& run_id, const core::ActionDecl& decl,
                                  const std::map<std::string, std::string>& inputs) {
  auto p = std::make_shared<Preparation>();
  p->inputs = InputsOf(decl, inputs);
  {
    MutexLock lock(mu_);
    prepared_[run_id] = p;
  }
  env_.queue->Enqueue([this, run_id, p] { RunPreparation(run_id, p); });
}

void CommandsExecutor::RunPreparation(const std::string& run_id,
                                      const std::shared_ptr<Preparation>& p) {
  {
    MutexLock lock(mu_);
    if (p->state != Preparation::State::kQueued || p->dropped) return;
    p->state = Preparation::State::kRunning;
  }
  Unpacked u = Unpack(env_, env_.WorkDir(run_id), p->inputs);
  bool dropped = false;
  {
    MutexLock lock(mu_);
    p->result = std::move(u);
    p->state = Preparation::State::kDone;
    dropped = p->dropped;
    prepared_cv_.NotifyAll();
  }
  if (dropped) Cleanup(run_id);  // Discarded while it ran.
}

std::optional<Unpacked> CommandsExecutor::TakePrepared(const std::string& run_id) {
  MutexLock lock(mu_);
  auto it = prepared_.find(run_id);
  if (it == prepared_.end()) return std::nullopt;
  std::shared_ptr<Preparation> p = it->second;
  prepared_.erase(it);
  if (p->state == Preparation::State::kQueued) {
    p->dropped = true;  // Not begun (the other worker is busy): done here instead.
    return std::nullopt;
  }
  while (p->state != Preparation::State::kDone) prepared_cv_.Wait(mu_);
  return std::move(p->result);
}

void CommandsExecutor::DiscardPrepared(const std::string& run_id) {
  std::shared_ptr<Preparation> p;
  {
    MutexLock lock(mu_);
    auto it = prepared_.find(run_id);
    if (it == prepared_.end()) return;
    p = it->second;
    prepared_.erase(it);
    p->dropped = true;
    // Queued: its task will do nothing. Running: its task cleans up.
    if (p->state != Preparation::State::kDone) return;
  }
  env_.queue->Enqueue([this, run_id] { Cleanup(run_id); });
}

void CommandsExecutor::Cleanup(const std::string& run_id) const {
  env_.RemoveRunDirs(env_.WorkDir(run_id));
  std::error_code rm;
  fs::remove(env_.LogPath(run_id) + ".status", rm);
  fs::remove(env_.LogPath(run_id) + ".vars", rm);
}

void CommandsExecutor::Run(const ActionWork& w, ActionDone done) {
  // The working directory is the action's fresh directory itself; the status
  // file (written only when a command fails) lives beside the log.
  const std::string work = env_.WorkDir(w.run_id);
  const std::string src = work;
  const std::string status_file = env_.LogPath(w.run_id) + ".status";
  const std::string variables_file = env_.LogPath(w.run_id) + ".vars";
  const core::ActionDecl& a = w.decl;
  runs_.BeginPreparing(w.run_id);
  auto cleanup = [this, run_id = w.run_id] { Cleanup(run_id); };
  auto fail = [&](const std::string& msg, const std::string& code = "JobFailed") {
    runs_.EndPreparing(w.run_id);
    done(Failure(msg, "", code));
    cleanup();
  };
  std::optional<Unpacked> unpacked = TakePrepared(w.run_id);
  if (!unpacked) unpacked = Unpack(env_, work, InputsOf(a, w.inputs));
  if (!unpacked->error.empty()) return fail(unpacked->error);

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
  env.insert(env.end(), unpacked->env.begin(), unpacked->env.end());
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
  if (!program.ok()) return fail(program.status().message(), "ConfigurationError");
  runner::ProcessSpec spec = program->spec;
  if (env_.sandbox->active()) {
    // The action reaches its own directories and result files, nothing else
    // of the data directory. The result files must exist to be bound.
    runner::SandboxPaths paths;
    paths.cwd = src;
    std::error_code ec;
    for (const std::string& path : {work, work + ".in"}) {
      if (fs::exists(path, ec)) paths.writable.push_back(path);
    }
    // (The variables file only when output variables are declared: nothing
    // else writes or reads it, and each bound file is one more mount.)
    std::vector<std::string> result_files = {status_file};
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

  auto on_exit = [this, outputs = a.output_artifacts, prog = *program, src, cleanup,
                  done](const runner::ProcessExit& x) {
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
    cleanup();  // After the result is recorded: off the critical path.
  };
  // `done` is called without the runs' lock: it takes the engine mutex, which
  // is held around Cancel.
  Status started = runs_.Start(w.run_id, spec, std::move(on_exit));
  if (started.code() == StatusCode::kAborted) return fail(started.message());
  if (!started.ok()) return fail("Cannot start /bin/sh: " + started.message());
}

}  // namespace

std::unique_ptr<ActionExecutor> NewCommandsExecutor(const ExecutorEnv& env) {
  return std::make_unique<CommandsExecutor>(env);
}

}  // namespace pw::engine
