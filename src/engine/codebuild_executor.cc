// The CodeBuild executor: Build/AWS/CodeBuild/1 and Test/AWS/CodeBuild/1
// run the buildspec of the primary source (or of the project the server
// declares) with runner/codebuild.h's program, in a fresh working directory
// like Commands actions: on the host (inside the sandbox when it is on), or
// with a project image and `serve --container-runtime` inside a container.
// Preparation (unpacking inputs, resolving secrets) runs on the calling
// worker thread; the exit (artifacts, variables) on a worker thread again.

#include <unistd.h>

#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/mutex.h"
#include "engine/build_projects.h"
#include "engine/executor.h"
#include "engine/process_run.h"
#include "engine/work_queue.h"
#include "runner/artifact_store.h"
#include "runner/codebuild.h"
#include "runner/process_launcher.h"

namespace pw::engine {

namespace fs = std::filesystem;

namespace {

Status ConfigError(std::string message) {
  return InvalidArgument(std::move(message), "ConfigurationError");
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The action's output artifacts: the first from `artifacts` (or a
// secondary artifact of its name), the others from secondary-artifacts by
// artifactIdentifier; then the exported variables.
core::ActionResult CollectOutputs(const runner::Buildspec& spec, const std::string& work,
                                  const std::vector<core::OutputArtifactDecl>& outputs,
                                  const runner::CodeBuildOutcome& outcome,
                                  runner::ArtifactStore& artifacts) {
  core::ActionResult result;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const std::string& name = outputs[i].name;
    const runner::BuildspecArtifacts* selected = nullptr;
    if (auto it = spec.secondary_artifacts.find(name); it != spec.secondary_artifacts.end()) {
      selected = &it->second;
    } else if (i == 0 && spec.artifacts) {
      selected = &*spec.artifacts;
    }
    if (selected == nullptr) {
      return Failure("Output artifact " + name + ": the buildspec has no artifacts" +
                         (i == 0 ? " (artifacts.files) and no" : " and no") +
                         " secondary-artifacts entry with artifactIdentifier " + name + ".",
                     "", "ConfigurationError");
    }
    const std::string stage = work + ".cb/artifact-" + std::to_string(i);
    std::error_code ec;
    fs::create_directories(stage, ec);
    if (Status s = runner::CollectArtifactFiles(work, *selected, stage); !s.ok()) {
      return Failure("Output artifact " + name + ": " + s.message(), "",
                     s.wire_name().empty() ? "JobFailed" : s.wire_name());
    }
    auto rev = artifacts.PutDirectory(stage);
    if (!rev.ok()) {
      return Failure("Cannot store output artifact " + name + ": " + rev.status().message());
    }
    result.outputs[name] = *rev;
  }
  result.summary = outcome.summary;
  result.output_variables = outcome.exported_variables;
  return result;
}

// Everything one build needs besides its process, made before it starts.
struct Prepared {
  BuildProject project;
  runner::CodeBuildProgram program;
  std::string container_name;  // Empty: on the host.
};

class CodeBuildExecutor final : public ActionExecutor {
 public:
  explicit CodeBuildExecutor(const ExecutorEnv& env) : env_(env), runs_(env_) {}

  void Run(const ActionWork& w, ActionDone done) override;

  void Cancel(const std::string& run_id) override { runs_.Cancel(run_id); }

 private:
  // Builds the program: buildspec, environment, timeout, container. `log`
  // receives the lines shown before the build's own output.
  Result<Prepared> Prepare(const ActionWork& w, const std::string& work, const std::string& results,
                           std::vector<std::string> base_env, std::ostream& log);
  // The next CODEBUILD_BUILD_NUMBER of `project` (1, 2, …), kept in the data directory.
  int NextBuildNumber(const std::string& project);
  // Removes a container left behind by a killed runtime client.
  void RemoveContainer(const std::string& name);

  ExecutorEnv env_;
  ProcessRuns runs_;
  Mutex numbers_mu_;  // Serializes the build number files.
};

int CodeBuildExecutor::NextBuildNumber(const std::string& project) {
  MutexLock lock(numbers_mu_);
  std::error_code ec;
  const std::string dir = env_.data_dir + "/codebuild";
  fs::create_directories(dir, ec);
  const std::string path = dir + "/" + project + ".build-number";  // Name checked: a file name.
  int n = 0;
  std::istringstream(ReadText(path)) >> n;
  ++n;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << n << "\n";
  }
  fs::rename(tmp, path, ec);
  return n;
}

void CodeBuildExecutor::RemoveContainer(const std::string& name) {
  runner::ProcessSpec spec;
  spec.argv = {env_.container_runtime, "rm", "-f", "--ignore", name};
  if (env_.container_runtime.find("docker") != std::string::npos) {
    spec.argv = {env_.container_runtime, "rm", "-f", name};
  }
  spec.env = env_.container_env;
  spec.timeout_seconds = 60;
  [[maybe_unused]] auto started =
      env_.launcher->Start(spec, [](runner::ProcessId, const runner::ProcessExit&) {});
}

Result<Prepared> CodeBuildExecutor::Prepare(const ActionWork& w, const std::string& work,
                                            const std::string& results,
                                            std::vector<std::string> base_env, std::ostream& log) {
  const core::ActionDecl& a = w.decl;
  PW_RETURN_IF_ERROR([&]() -> Status {
    Status s = runner::CheckCodeBuildConfiguration(a.configuration, a.input_artifacts);
    return s.ok() ? s : ConfigError("C" + s.message().substr(1));
  }());
  const std::string project_name =
      a.configuration.count("ProjectName") ? a.configuration.at("ProjectName") : std::string();
  static const BuildProjects kNone;
  const BuildProjects& projects = env_.build_projects ? *env_.build_projects : kNone;
  Prepared p;
  p.project = ProjectFor(projects, project_name);
  const BuildProject& project = p.project;

  // The buildspec: the project's own, or a file of the primary source.
  runner::Buildspec spec;
  if (project.inline_buildspec) {
    spec = *project.inline_buildspec;
    log << "[Container] Pipewright: project " << project_name
        << ": the buildspec declared in the server's build projects\n";
  } else {
    const fs::path src = fs::weakly_canonical(work);
    std::error_code ec;
    const fs::path file = fs::weakly_canonical(src / project.buildspec_path, ec);
    const std::string rel = fs::relative(file, src, ec).string();
    if (ec || rel == ".." || rel.rfind("../", 0) == 0) {
      return ConfigError("The buildspec " + project.buildspec_path +
                         " lies outside the primary source.");
    }
    if (!fs::is_regular_file(file, ec)) {
      return ConfigError("The primary source has no " + project.buildspec_path +
                         (project.declared
                              ? std::string(" (the buildspec of project ") + project_name + ")"
                              : std::string(": add one, or declare project ") + project_name +
                                    " with its buildspec in serve --build-projects") +
                         ".");
    }
    auto parsed = runner::ParseBuildspecText(ReadText(file.string()));
    if (!parsed.ok()) return ConfigError(project.buildspec_path + ": " + parsed.status().message());
    spec = *std::move(parsed);
    log << "[Container] Pipewright: project " << project_name
        << (project.declared ? "" : " (not declared: defaults)") << ", buildspec "
        << project.buildspec_path << " of the primary source\n";
  }

  // Variables, lowest precedence first: the buildspec's, its parameters and
  // secrets, the project's, then the action's EnvironmentVariables.
  runner::CodeBuildRequest req;
  req.env = spec.variables;
  for (const auto& [name, parameter] : spec.parameter_store) {
    PW_ASSIGN_OR_RETURN(std::string value, ResolveParameter(projects, parameter));
    req.env.emplace_back(name, std::move(value));
  }
  for (const auto& [name, ref] : spec.secrets_manager) {
    PW_ASSIGN_OR_RETURN(std::string value, ResolveSecret(projects, ref));
    req.env.emplace_back(name, std::move(value));
  }
  for (const auto& kv : project.environment) req.env.push_back(kv);
  if (auto ev = a.configuration.find("EnvironmentVariables"); ev != a.configuration.end()) {
    PW_ASSIGN_OR_RETURN(auto vars, runner::ParseCodeBuildEnvironmentVariables(ev->second));
    for (const runner::CodeBuildEnvVar& v : vars) {
      if (v.type == "PARAMETER_STORE") {
        PW_ASSIGN_OR_RETURN(std::string value, ResolveParameter(projects, v.value));
        req.env.emplace_back(v.name, std::move(value));
      } else if (v.type == "SECRETS_MANAGER") {
        runner::SecretReference ref;
        size_t colon = v.value.rfind("arn:", 0) == 0 ? std::string::npos : v.value.find(':');
        ref.secret_id = v.value.substr(0, colon);
        if (colon != std::string::npos) ref.json_key = v.value.substr(colon + 1);
        PW_ASSIGN_OR_RETURN(std::string value, ResolveSecret(projects, ref));
        req.env.emplace_back(v.name, std::move(value));
      } else {
        req.env.emplace_back(v.name, v.value);
      }
    }
  }
  for (const auto& v : a.environment) req.env.emplace_back(v.name, v.value);

  const int number = NextBuildNumber(project_name);
  const std::string build_id = project_name + ":" + w.run_id;
  const std::time_t now = std::time(nullptr);
  base_env.push_back("CODEBUILD_BUILD_ID=" + build_id);
  base_env.push_back("CODEBUILD_BUILD_NUMBER=" + std::to_string(number));
  base_env.push_back("CODEBUILD_BUILD_ARN=arn:aws:codebuild:" + env_.region + ":" +
                     env_.account_id + ":build/" + build_id);
  base_env.push_back("CODEBUILD_INITIATOR=codepipeline/" + w.pipeline);
  base_env.push_back("CODEBUILD_START_TIME=" + std::to_string(static_cast<long long>(now) * 1000));
  base_env.push_back("CODEBUILD_BUILD_IMAGE=" + (project.image.empty() ? "host" : project.image));
  base_env.push_back("AWS_REGION=" + env_.region);
  base_env.push_back("AWS_DEFAULT_REGION=" + env_.region);

  req.buildspec = std::move(spec);
  req.base_env = std::move(base_env);
  req.timeout_minutes = a.timeout_minutes.value_or(project.timeout_minutes);
  req.cwd = work;
  req.log_path = env_.LogPath(w.run_id);
  req.status_file = results + "/status";
  req.variables_file = results + "/vars";
  req.kill_grace_seconds = env_.kill_grace_seconds;
  PW_ASSIGN_OR_RETURN(p.program, runner::PrepareCodeBuild(req));

  if (!project.image.empty()) {
    if (env_.container_runtime.empty()) {
      return ConfigError("Project " + project_name + " runs in image " + project.image +
                         ": start the server with --container-runtime podman (or docker), or "
                         "remove the project's image to build on the host.");
    }
    // `<runtime> run` with the build's directories mounted at the same
    // paths; every variable is passed by name (-e NAME: the value comes
    // from the runtime's own environment, never from its command line).
    p.container_name = "pipewright-" + w.run_id;
    std::vector<std::string> argv = {env_.container_runtime, "run",       "--rm", "--name",
                                     p.container_name,       "--network", "host"};
    for (const std::string& dir : {work, work + ".in", results}) {
      std::error_code ec;
      if (fs::exists(dir, ec)) argv.insert(argv.end(), {"-v", dir + ":" + dir});
    }
    argv.insert(argv.end(), {"-w", work});
    if (project.privileged) argv.push_back("--privileged");
    if (env_.action_user) {
      argv.insert(argv.end(), {"--user", std::to_string(env_.action_user->uid) + ":" +
                                             std::to_string(env_.action_user->gid)});
    }
    std::vector<std::string> env = env_.container_env;
    for (const std::string& entry : p.program.spec.env) {
      const std::string name = entry.substr(0, entry.find('='));
      if (name == "PATH") continue;  // The image's own.
      argv.insert(argv.end(), {"-e", name});
      bool replaced = false;
      for (std::string& e : env) {
        if (e.substr(0, e.find('=')) == name) {
          e = entry;
          replaced = true;
        }
      }
      if (!replaced) env.push_back(entry);
    }
    argv.push_back(project.image);
    for (const std::string& arg : p.program.spec.argv) argv.push_back(arg);
    p.program.spec.argv = std::move(argv);
    p.program.spec.env = std::move(env);
    log << "[Container] Pipewright: running in image " << project.image << " ("
        << env_.container_runtime << ")\n";
  } else {
    if (project.privileged) {
      log << "[Container] Pipewright: Note: privileged has no effect on the host (only with "
             "an image)\n";
    }
    log << "[Container] Pipewright: running on the host\n";
  }
  return p;
}

void CodeBuildExecutor::Run(const ActionWork& w, ActionDone done) {
  const std::string work = env_.WorkDir(w.run_id);
  const std::string results = work + ".cb";
  const core::ActionDecl& a = w.decl;
  runs_.BeginPreparing(w.run_id);
  auto cleanup = [this, work, results] {
    env_.RemoveRunDirs(work);
    std::error_code rm;
    fs::remove_all(results, rm);
  };
  auto fail = [&](const std::string& msg, const std::string& code = "JobFailed") {
    runs_.EndPreparing(w.run_id);
    std::ofstream(env_.LogPath(w.run_id), std::ios::app) << "[Container] " << msg << "\n";
    done(Failure(msg, "", code));
    cleanup();
  };
  std::error_code ec;
  fs::create_directory(work, ec);
  if (!ec) fs::create_directory(results, ec);
  if (ec) return fail("Cannot create the working directory " + work + ": " + ec.message());

  // Inputs: the primary source in the working directory (CODEBUILD_SRC_DIR),
  // the others beside it (CODEBUILD_SRC_DIR_<name>).
  std::string primary;
  if (auto it = a.configuration.find("PrimarySource"); it != a.configuration.end()) {
    primary = it->second;
  } else if (!a.input_artifacts.empty()) {
    primary = a.input_artifacts.front();
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
      "CODEBUILD_SRC_DIR=" + work,
  };
  // Sandboxed: from before bwrap copies the mounts until its process has
  // exited, no released mount point moves (UnpackCache::HoldForSandbox).
  std::shared_ptr<ExecutorEnv::SandboxHolder> hold;
  if (env_.sandbox->active()) hold = env_.HoldForSandbox();
  for (const auto& in : a.input_artifacts) {
    auto it = w.inputs.find(in);
    if (it == w.inputs.end() || it->second.empty()) continue;
    const std::string dest = in == primary ? work : work + ".in/" + in;
    Status st = env_.UnpackInput(it->second, dest);
    if (!st.ok()) return fail("Cannot unpack input artifact " + in + ": " + st.message());
    if (in != primary) env.push_back("CODEBUILD_SRC_DIR_" + in + "=" + dest);
    env.push_back("PIPEWRIGHT_INPUT_" + in + "=" + dest);
  }
  if (auto rev = w.input_source_revisions.find(primary); rev != w.input_source_revisions.end()) {
    env.push_back("CODEBUILD_RESOLVED_SOURCE_VERSION=" + rev->second);
    env.push_back("CODEBUILD_SOURCE_VERSION=" + rev->second);
  }

  std::ostringstream header;
  Result<Prepared> prepared = Prepare(w, work, results, std::move(env), header);
  {
    std::ofstream log(env_.LogPath(w.run_id), std::ios::app);
    log << header.str();
  }
  if (!prepared.ok()) return fail(prepared.status().message(), "ConfigurationError");
  runner::ProcessSpec spec = prepared->program.spec;
  if (prepared->container_name.empty() && env_.sandbox->active()) {
    runner::SandboxPaths paths;
    paths.cwd = work;
    for (const std::string& path : {work, work + ".in", results}) {
      if (fs::exists(path, ec)) paths.writable.push_back(path);
    }
    if (env_.action_user) {
      for (const std::string& path : paths.writable) ChownTree(path, *env_.action_user);
    }
    spec.argv = env_.sandbox->Wrap(spec.argv, paths);
  }

  const std::string run_id = w.run_id;
  auto on_exit = [this, run_id, outputs = a.output_artifacts, prep = *prepared, work, cleanup, done,
                  hold](const runner::ProcessExit& x) mutable {
    hold.reset();  // Its sandbox is gone, set up or not.
    if (!prep.container_name.empty() && (x.cancelled || x.timed_out)) {
      RemoveContainer(prep.container_name);
    }
    runner::CodeBuildOutcome outcome = runner::ReadCodeBuildOutcome(prep.program, x);
    core::ActionResult result;
    if (outcome.succeeded) {
      result = CollectOutputs(prep.program.buildspec, work, outputs, outcome, *env_.artifacts);
    } else {
      result = Failure(outcome.failure_message, outcome.summary);
    }
    if (result.status == core::ActionStatus::kFailed && outcome.succeeded) {
      std::ofstream(env_.LogPath(run_id), std::ios::app)
          << "[Container] " << result.error_message << "\n";
    }
    done(result);
    cleanup();
  };
  if (hold) hold->Spawning();  // Its set-up starts now.
  Status started = runs_.Start(run_id, spec, std::move(on_exit));
  if (started.code() == StatusCode::kAborted) return fail(started.message());
  if (!started.ok()) return fail("Cannot start " + spec.argv[0] + ": " + started.message());
}

}  // namespace

std::unique_ptr<ActionExecutor> NewCodeBuildExecutor(const ExecutorEnv& env) {
  return std::make_unique<CodeBuildExecutor>(env);
}

}  // namespace pw::engine
