#include "engine/engine.h"

#include <unistd.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/ids.h"
#include "common/log.h"
#include "core/shell_quote.h"
#include "engine/action_types.h"
#include "engine/decl_json.h"
#include "engine/state_json.h"
#include "runner/artifact_store.h"
#include "runner/deploy_dir.h"
#include "runner/git_source.h"
#include "runner/orphans.h"
#include "runner/process_launcher.h"
#include "runner/s3_client.h"
#include "sigv4/crypto.h"

namespace pw::engine {

namespace fs = std::filesystem;
using nlohmann::json;

class Engine::Ids final : public core::IdSource {
 public:
  std::string NewId() override { return NewUuid(); }
};

namespace {

constexpr const char* kRestartMessage =
    "The Pipewright server stopped while this action was running; retry the stage to run it "
    "again.";

bool IsCommands(const core::ActionDecl& a) {
  return a.type.owner == "AWS" && a.type.provider == "Commands";
}

const core::ActionDecl* FindActionDecl(const core::PipelineDecl& d, const std::string& stage,
                                       const std::string& action) {
  const core::StageDecl* s = d.FindStage(stage);
  if (s == nullptr) return nullptr;
  for (const auto& a : s->actions) {
    if (a.name == action) return &a;
  }
  return nullptr;
}

// `a` with the run's resolved configuration and environment (variables
// substituted when the run started). Runs recorded before resolution existed
// keep the declared values.
core::ActionDecl WithResolvedConfiguration(const core::ActionDecl& a, const core::ActionRun& r) {
  core::ActionDecl out = a;
  if (!r.resolved_configuration.empty() || a.configuration.empty()) {
    out.configuration = r.resolved_configuration;
  }
  for (auto& var : out.environment) {
    auto it = r.resolved_environment.find(var.name);
    if (it != r.resolved_environment.end()) var.value = it->second;
  }
  return out;
}

// The first line of `s`, at most 200 characters.
std::string FirstLine(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  return line.size() > 200 ? line.substr(0, 200) : line;
}

core::ActionResult Failure(std::string message, std::string summary = {},
                           std::string code = "JobFailed") {
  core::ActionResult r;
  r.status = core::ActionStatus::kFailed;
  r.error_code = std::move(code);
  r.error_message = std::move(message);
  r.summary = summary.empty() ? r.error_message : std::move(summary);
  return r;
}

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

// The Commands configuration values the runner parses: EnvironmentVariables
// a JSON list of {"name": string, "value": string}; TimeoutInMinutes a whole
// number of minutes, 1 to 480. Values with variables are checked at run time.
// kInvalidArgument naming the field.
Status CheckCommandsConfiguration(const std::map<std::string, std::string>& config) {
  if (auto it = config.find("EnvironmentVariables");
      it != config.end() && it->second.find("#{") == std::string::npos) {
    json list = json::parse(it->second, nullptr, false);
    if (!list.is_array()) {
      return InvalidArgument(
          "configuration EnvironmentVariables must be a JSON list of {\"name\": \"…\", "
          "\"value\": \"…\"} objects.");
    }
    for (size_t i = 0; i < list.size(); ++i) {
      const json& v = list[i];
      if (!v.is_object() || !v.contains("name") || !v["name"].is_string() ||
          (v.contains("value") && !v["value"].is_string())) {
        return InvalidArgument("configuration EnvironmentVariables[" + std::to_string(i) +
                               "] must be {\"name\": string, \"value\": string}; write numbers "
                               "as strings, e.g. \"value\": \"1\".");
      }
    }
  }
  if (auto it = config.find("TimeoutInMinutes");
      it != config.end() && it->second.find("#{") == std::string::npos) {
    const std::string& t = it->second;
    bool digits =
        !t.empty() && t.size() <= 4 && t.find_first_not_of("0123456789") == std::string::npos;
    int n = digits ? std::stoi(t) : 0;
    if (!digits || n < 1 || n > 480) {
      return InvalidArgument(
          "configuration TimeoutInMinutes must be a whole number of minutes "
          "from 1 to 480, not '" +
          t.substr(0, 32) + "'.");
    }
  }
  return Status::Ok();
}

bool IsBuiltin(const core::ActionDecl& a, const char* category, const char* provider) {
  return a.type.owner == "AWS" && a.type.category == category && a.type.provider == provider;
}

// A Git RepositoryPath that names a local path (not a URL); file:// URLs
// count as their path.
std::optional<std::string> LocalRepositoryPath(const std::string& repository) {
  if (repository.rfind("file://", 0) == 0) return repository.substr(7);
  if (repository.find("://") != std::string::npos) return std::nullopt;
  size_t colon = repository.find(':');
  if (colon != std::string::npos && repository.find('/') > colon) return std::nullopt;  // scp-like
  return repository;
}

// The local path rules (runner/deploy_dir.h) for one action whose
// configuration `config` is resolved (or has no variables). OK for other types.
Status CheckActionPaths(const core::ActionDecl& a, const std::map<std::string, std::string>& config,
                        const runner::PathPolicy& policy, bool skip_unresolved) {
  auto check = [&](const char* key, auto&& rule) -> Status {
    auto it = config.find(key);
    if (it == config.end()) return Status::Ok();
    if (skip_unresolved && it->second.find("#{") != std::string::npos) return Status::Ok();
    return rule(it->second);
  };
  if (IsBuiltin(a, "Source", "Directory")) {
    return check("Path",
                 [&](const std::string& v) { return runner::CheckReadablePath(v, policy); });
  }
  if (IsBuiltin(a, "Source", "Git")) {
    return check("RepositoryPath", [&](const std::string& v) {
      auto local = LocalRepositoryPath(v);
      return local ? runner::CheckReadablePath(*local, policy) : Status::Ok();
    });
  }
  if (IsBuiltin(a, "Deploy", "Directory")) {
    if (policy.deploy_roots.empty()) return runner::CheckDeployTarget("", policy);
    return check("Path",
                 [&](const std::string& v) { return runner::CheckDeployTarget(v, policy); });
  }
  return Status::Ok();
}

// The commands a Commands action runs (variables reach commands as data):
// the declared commands with each #{…} turned into a quoted expansion of a
// PW_VAR_n environment variable holding the value (core/shell_quote.h).
// `declared` is the action as declared, before variables were resolved.
// kInvalidArgument (a ConfigurationError of the run) for an unresolvable
// reference or a NUL byte.
Result<core::ShellCommands> ShellCommandsOf(const core::ActionDecl& declared,
                                            const core::Variables& scope) {
  auto it = declared.configuration.find("Commands");
  return core::RewriteForShell(
      core::CommandLines(declared.commands, it == declared.configuration.end() ? "" : it->second),
      scope);
}

Status NotFoundPipeline(const std::string& name) {
  return NotFound("The pipeline '" + name + "' was not found; check its name with list-pipelines.",
                  "PipelineNotFoundException");
}

}  // namespace

Engine::Engine(store::Store& store, const Clock& clock, EngineOptions options)
    : store_(store), clock_(clock), options_(std::move(options)), ids_(std::make_unique<Ids>()) {
  if (options_.data_dir.empty()) options_.data_dir = fs::temp_directory_path() / "pipewright";
  std::error_code ec;
  fs::create_directories(options_.data_dir + "/logs", ec);
  fs::create_directories(options_.data_dir + "/work", ec);
  launcher_ = runner::NewPosixProcessLauncher();
  if (options_.sandbox.mode == runner::SandboxMode::kBwrap) {
    options_.sandbox.hide_dirs.push_back(fs::weakly_canonical(options_.data_dir, ec).string());
  }
  sandbox_ = std::make_unique<runner::Sandbox>(options_.sandbox);
  runner::ArtifactLimits limits;
  if (options_.max_artifact_bytes > 0) limits.max_artifact_bytes = options_.max_artifact_bytes;
  if (options_.max_unpacked_bytes > 0) limits.max_unpacked_bytes = options_.max_unpacked_bytes;
  if (options_.max_artifact_entries > 0) limits.max_entries = options_.max_artifact_entries;
  artifacts_ = std::make_unique<runner::ArtifactStore>(options_.data_dir + "/artifacts", limits);
  path_policy_.deploy_roots = options_.deploy_roots;
  path_policy_.data_dir = options_.data_dir;
  git_ = std::make_unique<runner::GitSource>(options_.data_dir + "/git-cache");
  if (!options_.artifact_s3_endpoint.empty()) {
    runner::S3ClientOptions s3;
    s3.endpoint_url = options_.artifact_s3_endpoint;
    s3.region = options_.artifact_s3_region;
    external_s3_ = std::make_unique<runner::S3Client>(s3);
  }
  for (int i = 0; i < 2; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  if (auto types = store_.ListKv("actiontype/"); types.ok()) {
    for (const auto& [key, value] : *types) {
      json doc = json::parse(value, nullptr, false);
      if (!doc.is_discarded()) custom_types_[key.substr(std::string("actiontype/").size())] = doc;
    }
  }
}

Engine::~Engine() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  stop_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  // Workers drain the queue first: a queued completion may still use the
  // launcher, artifacts or store. Only then the launcher goes, killing running
  // children; their exits enqueue nothing after stop, so their runs stay
  // InProgress for Recover, exactly as after kill -9.
  for (auto& w : workers_) w.join();
  launcher_.reset();
}

void Engine::SetPublicUrl(const std::string& url) {
  std::lock_guard lock(mu_);
  options_.public_url = url;
}

std::string Engine::PipelineArn(const std::string& name) const {
  return "arn:aws:codepipeline:" + options_.region + ":" + options_.account_id + ":" + name;
}

std::string Engine::LogPath(const std::string& run_id) const {
  return options_.data_dir + "/logs/" + run_id + ".log";
}

bool Engine::ActionTypeKnown(const core::ActionTypeId& id) const {
  if (id.owner == "Custom") return FindCustomActionType(id).has_value();
  return FindBuiltin(id) != nullptr;
}

bool Engine::IsJobAction(const core::ActionDecl& a) const {
  return a.type.owner == "Custom" || (IsCommands(a) && !options_.local_runners);
}

// ---------------------------------------------------------------------------
// Loading, committing, effects.

Result<core::PipelineState*> Engine::LoadLocked(const std::string& name) {
  auto it = pipelines_.find(name);
  if (it != pipelines_.end()) return &it->second;
  PW_ASSIGN_OR_RETURN(store::PipelineRecord rec, store_.GetPipeline(name, std::nullopt));
  core::PipelineState p;
  p.decl = DeclFromJson(rec.declaration);
  p.decl.version = rec.version;
  PW_ASSIGN_OR_RETURN(auto rows, store_.ListExecutions(name));
  std::map<std::string, size_t> index;
  for (auto r = rows.rbegin(); r != rows.rend(); ++r) {  // Oldest first.
    index[r->id] = p.executions.size();
    p.executions.push_back(ExecutionFromDoc(r->doc));
  }
  // Action runs live in their own rows (one per attempt), not in the
  // execution document, so a commit writes only what changed.
  PW_ASSIGN_OR_RETURN(auto runs, store_.ListActionExecutions(name, ""));
  for (auto r = runs.rbegin(); r != runs.rend(); ++r) {
    auto at = index.find(r->execution_id);
    if (at == index.end()) continue;
    core::Execution& e = p.executions[at->second];
    if (e.FindRun(r->id) == nullptr) e.runs.push_back(RunFromDoc(r->doc));
  }
  PW_ASSIGN_OR_RETURN(auto runtime, store_.GetKv("pstate/" + name));
  if (runtime.has_value()) {
    json doc = json::parse(*runtime, nullptr, false);
    if (!doc.is_discarded()) RuntimeFromDoc(doc, &p);
  }
  auto [ins, ok] = pipelines_.emplace(name, std::move(p));
  (void)ok;
  return &ins->second;
}

Status Engine::CommitLocked(core::PipelineState& p, core::Outcome& out,
                            std::vector<std::pair<std::string, std::string>> extra_kv) {
  std::vector<store::ExecutionRow> execs;
  std::vector<store::ActionExecutionRow> runs;
  for (const auto& id : out.changed_executions) {
    const core::Execution* e = p.FindExecution(id);
    if (e == nullptr) continue;
    execs.push_back({e->id, e->pipeline, std::string(core::Name(e->status)), e->started, e->updated,
                     ExecutionToDoc(*e)});
    for (const auto& r : e->runs) {
      if (!out.changed_runs.count(r.id)) continue;
      runs.push_back({r.id, e->id, e->pipeline, r.stage, r.action,
                      std::string(core::Name(r.status)), r.started, r.updated, RunToDoc(r)});
    }
  }
  extra_kv.emplace_back("pstate/" + p.decl.name, RuntimeToDoc(p).dump());
  Status s = store_.SaveBatch(execs, runs, extra_kv);
  if (!s.ok()) {
    // Memory is ahead of disk: forget it, so the next call reloads what is durable.
    PW_LOG(Error) << "could not persist pipeline " << p.decl.name << ": " << s.ToString();
    pipelines_.erase(p.decl.name);
    return s;
  }
  // Effects only after the decision is durable.
  for (const auto& fx : out.effects) PerformLocked(p, fx);
  return Status::Ok();
}

void Engine::PerformLocked(core::PipelineState& p, const core::Effect& fx) {
  core::Execution* e = p.FindExecution(fx.execution_id);
  const core::ActionRun* r = e ? e->FindRun(fx.run_id) : nullptr;
  if (r == nullptr) return;
  if (fx.kind == core::Effect::Kind::kAbandonAction) {
    auto it = processes_.find(fx.run_id);
    if (it != processes_.end()) launcher_->Cancel(it->second);
    for (auto& [id, job] : jobs_) {
      if (job.run_id == fx.run_id && job.Open()) {
        job.status = "Failed";  // Abandoned: results for it are refused.
        SaveJobLocked(job);
      }
    }
    return;
  }
  if (r->status != core::ActionStatus::kInProgress) return;
  const core::ActionDecl* declared = FindActionDecl(p.decl, r->stage, r->action);
  if (declared == nullptr) return;
  // The work uses the configuration as resolved when the run started.
  core::ActionDecl resolved = WithResolvedConfiguration(*declared, *r);
  const core::ActionDecl* a = &resolved;
  const std::string pipeline = p.decl.name;
  const std::string run_id = r->id;
  if (IsJobAction(*a)) {
    if (Status s = CreateJobLocked(p, *e, *r, *a, ""); !s.ok()) {
      Enqueue([this, pipeline, run_id, s] {
        FinishRun(pipeline, run_id, Failure(s.message(), "", "ConfigurationError"));
      });
    }
    return;
  }
  PW_LOG(Debug) << "start " << r->stage << "/" << r->action << " " << fx.run_id;
  if (a->type.category == "Approval") return;  // Waits for PutApprovalResult or the timeout.
  if (IsCommands(*a)) {
    StartCommands(p, *e, *r, *a);
    return;
  }
  // Source and deploy work runs on a worker thread: it may take a while.
  core::ActionDecl decl = *a;
  std::map<std::string, std::string> inputs = r->inputs;
  std::string work = options_.data_dir + "/work/" + run_id;
  Enqueue([this, pipeline, run_id, decl, inputs, work] {
    core::ActionResult result;
    auto cfg = [&](const char* k, const std::string& def = "") {
      auto it = decl.configuration.find(k);
      return it == decl.configuration.end() ? def : it->second;
    };
    if (Status paths = CheckActionPaths(decl, decl.configuration, path_policy_, false);
        !paths.ok()) {
      result = Failure(paths.message(), "", "ConfigurationError");
    } else if (decl.type.category == "Source" && decl.type.provider == "Directory") {
      auto rev = artifacts_->PutDirectory(cfg("Path"));
      if (!rev.ok()) {
        result =
            Failure("Cannot snapshot directory '" + cfg("Path") + "': " + rev.status().message());
      } else {
        for (const auto& o : decl.output_artifacts) result.outputs[o.name] = *rev;
        result.revision_id = *rev;
        result.revision_summary = "Snapshot of " + cfg("Path");
        result.revision_created = clock_.Now();
        result.summary = "Snapshot of " + cfg("Path") + " (" + rev->substr(0, 12) + ")";
      }
    } else if (decl.type.category == "Source" && decl.type.provider == "Git") {
      const std::string repo = cfg("RepositoryPath");
      const std::string branch = cfg("BranchName", "main");
      auto head = git_->ResolveHead(repo, branch);
      if (!head.ok()) {
        result = Failure("Cannot read branch '" + branch + "' of " + repo + ": " +
                         head.status().message());
      } else {
        std::string dir = work + "/src";
        Status st = git_->ExportCommit(repo, head->commit_id, dir);
        auto rev = st.ok() ? artifacts_->PutDirectory(dir) : Result<std::string>(st);
        std::error_code ec;
        fs::remove_all(work, ec);
        if (!rev.ok()) {
          result =
              Failure("Cannot export commit " + head->commit_id + ": " + rev.status().message());
        } else {
          for (const auto& o : decl.output_artifacts) result.outputs[o.name] = *rev;
          result.revision_id = head->commit_id;
          result.revision_summary = FirstLine(head->message);
          result.revision_created = head->commit_time;
          result.summary = FirstLine(head->message);
        }
      }
    } else if (decl.type.category == "Deploy" && decl.type.provider == "Directory") {
      std::string rev = inputs.empty() ? "" : inputs.begin()->second;
      Status st = runner::ReplaceDirectoryContents(cfg("Path"), *artifacts_, rev);
      if (!st.ok()) {
        result = Failure("Cannot deploy to '" + cfg("Path") + "': " + st.message());
      } else {
        result.summary = "Deployed " + rev.substr(0, 12) + " to " + cfg("Path");
      }
    } else {
      result = Failure("Pipewright has no runner for action type " + decl.type.ToString());
    }
    FinishRun(pipeline, run_id, result);
  });
}

void Engine::StartCommands(core::PipelineState& p, const core::Execution& e,
                           const core::ActionRun& r, const core::ActionDecl& a) {
  // The working directory is the action's fresh directory itself; the status
  // file (written only when a command fails) lives beside the log.
  const std::string work = options_.data_dir + "/work/" + r.id;
  const std::string src = work;
  const std::string status_file = LogPath(r.id) + ".status";
  const std::string variables_file = LogPath(r.id) + ".vars";
  const std::string pipeline = p.decl.name;
  const std::string run_id = r.id;
  auto fail_now = [&](const std::string& msg, const std::string& code = "JobFailed") {
    Enqueue([this, pipeline, run_id, msg, code] {
      FinishRun(pipeline, run_id, Failure(msg, "", code));
    });
  };
  const core::ActionDecl* declared = FindActionDecl(p.decl, r.stage, r.action);
  auto shell = ShellCommandsOf(declared != nullptr ? *declared : a, core::VariableScope(p, e));
  if (!shell.ok()) return fail_now(shell.status().message(), "ConfigurationError");
  std::error_code ec;
  fs::create_directory(src, ec);
  if (ec) return fail_now("Cannot create the working directory " + src + ": " + ec.message());

  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "HOME=" + work,
      "LANG=C.UTF-8",
      "PIPEWRIGHT_PIPELINE=" + pipeline,
      "PIPEWRIGHT_EXECUTION_ID=" + e.id,
      "PIPEWRIGHT_STAGE=" + r.stage,
      "PIPEWRIGHT_ACTION=" + r.action,
      "PIPEWRIGHT_ACTION_EXECUTION_ID=" + r.id,
      "CODEBUILD_SRC_DIR=" + src,
      "PIPEWRIGHT_STATUS_FILE=" + status_file,
      "PIPEWRIGHT_VARIABLES_FILE=" + variables_file,
  };
  // Inputs: the first in the working directory, the others beside it.
  bool first = true;
  for (const auto& in : a.input_artifacts) {
    auto it = r.inputs.find(in);
    if (it == r.inputs.end() || it->second.empty()) continue;
    std::string dest = first ? src : work + ".in/" + in;
    Status st = artifacts_->Extract(it->second, dest);
    if (!st.ok()) return fail_now("Cannot unpack input artifact " + in + ": " + st.message());
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
      return fail_now(
          "Configuration EnvironmentVariables must be a JSON list of "
          "{\"name\", \"value\"} objects.");
    }
    for (const auto& v : list) {
      if (!v.is_object() || !v.contains("name") || !v["name"].is_string() ||
          (v.contains("value") && !v["value"].is_string())) {
        return fail_now(
            "Configuration EnvironmentVariables entries must be {\"name\": string, \"value\": "
            "string}.");
      }
      env.push_back(v["name"].get<std::string>() + "=" +
                    (v.contains("value") ? v["value"].get<std::string>() : std::string()));
    }
  }
  // Reference values last, replacing any same-named variable set above.
  for (const auto& [name, value] : shell->environment) {
    // clang 14 cannot capture a structured binding: capture a prefix string.
    const std::string prefix = name + "=";
    std::erase_if(env, [&prefix](const std::string& kv) { return kv.rfind(prefix, 0) == 0; });
    env.push_back(prefix + value);
  }
  for (const auto& kv : env) {
    if (kv.find('\0') != std::string::npos) {
      return fail_now("Environment variable " + kv.substr(0, kv.find('=')) +
                          " holds a NUL byte, which a process environment cannot carry.",
                      "ConfigurationError");
    }
  }
  const std::vector<std::string> commands = shell->commands;
  if (commands.empty()) {
    return fail_now("Action " + r.action +
                    " has no commands: set `commands` or configuration "
                    "Commands.");
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
    if (Status c = CheckCommandsConfiguration({{"TimeoutInMinutes", t}}); !c.ok()) {
      return fail_now("C" + c.message().substr(1));
    }
    timeout_minutes = std::stoi(t);
  }
  runner::ProcessSpec spec;
  spec.argv = {"/bin/sh", "-e", "-c", script, "pipewright-action"};
  spec.env = std::move(env);
  spec.cwd = src;
  spec.log_path = LogPath(r.id);
  spec.timeout_seconds = timeout_minutes * 60.0;
  spec.kill_grace_seconds = options_.kill_grace_seconds;
  if (sandbox_->active()) {
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
    if (const auto& user = options_.sandbox.user) {
      for (const std::string& path : paths.writable) ChownTree(path, *user);
    }
    spec.argv = sandbox_->Wrap(spec.argv, paths);
  }

  core::ActionDecl decl = a;
  {
    std::lock_guard lock(queue_mu_);
    ++busy_;
  }
  auto started = launcher_->Start(spec, [this, pipeline, run_id, decl, commands, work, src,
                                         status_file, variables_file, timeout_minutes](
                                            runner::ProcessId, const runner::ProcessExit& x) {
    Enqueue([=, this] {
      core::ActionResult result;
      if (x.exit_code == 0 && x.signal == 0) {
        for (const auto& o : decl.output_artifacts) {
          auto rev = artifacts_->PutDirectory(src, o.files);
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
      FinishRun(pipeline, run_id, result);
      // Clean up after the result is durable: off the critical path.
      std::error_code rm;
      fs::remove_all(work, rm);
      fs::remove_all(work + ".in", rm);
      fs::remove(status_file, rm);
      fs::remove(variables_file, rm);
      std::lock_guard lock(queue_mu_);
      --busy_;
      queue_cv_.notify_all();
    });
  });
  if (!started.ok()) {
    {
      std::lock_guard lock(queue_mu_);
      --busy_;
    }
    return fail_now("Cannot start /bin/sh: " + started.status().message());
  }
  processes_[run_id] = *started;
  core::ActionRun* live = p.FindExecution(e.id)->FindRun(run_id);
  if (live != nullptr && !options_.public_url.empty()) {
    live->external_url = options_.public_url + "/logs/" + run_id;
    live->external_id = run_id;
  }
}

void Engine::FinishRun(const std::string& pipeline, const std::string& run_id,
                       const core::ActionResult& result) {
  std::lock_guard lock(mu_);
  processes_.erase(run_id);
  auto p = LoadLocked(pipeline);
  if (!p.ok()) return;  // Deleted meanwhile.
  core::Outcome out;
  const EpochSeconds now = clock_.Now();
  if (Status cs = core::CompleteAction(**p, run_id, result, now, &out); !cs.ok()) {
    PW_LOG(Debug) << "result for " << run_id << " ignored: " << cs.message();
    return;  // Abandoned, or already finished.
  }
  core::Advance(**p, now, *ids_, &out);
  (void)CommitLocked(**p, out);
}

// ---------------------------------------------------------------------------
// Work queue and ticker.

void Engine::Enqueue(std::function<void()> fn) {
  {
    std::lock_guard lock(queue_mu_);
    if (stopping_) return;
    queue_.push_back(std::move(fn));
    ++busy_;
  }
  // notify_all: idle-waiters (WaitIdleForTest) share the variable, and a
  // notify_one could wake one of them instead of a worker.
  queue_cv_.notify_all();
}

void Engine::WorkerLoop() {
  for (;;) {
    std::function<void()> fn;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // Stopping and drained.
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      fn();
    } catch (const std::exception& ex) {
      PW_LOG(Error) << "engine task failed: " << ex.what();
    }
    std::lock_guard lock(queue_mu_);
    --busy_;
    queue_cv_.notify_all();
  }
}

bool Engine::WaitIdleForTest(double timeout_seconds) {
  std::unique_lock lock(queue_mu_);
  return queue_cv_.wait_for(lock, std::chrono::duration<double>(timeout_seconds),
                            [this] { return busy_ == 0; });
}

void Engine::TickerLoop() {
  double since_poll = 0;
  for (;;) {
    {
      std::unique_lock lock(queue_mu_);
      if (stop_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) return;
    }
    Tick();
    since_poll += 1;
    if (options_.source_poll_seconds > 0 && since_poll >= options_.source_poll_seconds) {
      since_poll = 0;
      // Git polling: start an execution when a followed branch moves.
      std::vector<std::string> names;
      {
        auto all = store_.ListPipelines();
        if (all.ok()) {
          for (const auto& rec : *all) names.push_back(rec.name);
        }
      }
      for (const auto& name : names) {
        std::vector<std::pair<std::string, core::ActionDecl>> sources;
        {
          std::lock_guard lock(mu_);
          auto p = LoadLocked(name);
          if (!p.ok() || (*p)->decl.stages.empty()) continue;
          for (const auto& a : (*p)->decl.stages[0].actions) {
            auto poll = a.configuration.find("PollForSourceChanges");
            if (a.type.provider == "Git" &&
                (poll == a.configuration.end() || poll->second != "false")) {
              sources.emplace_back(name, a);
            }
          }
        }
        for (const auto& [pipeline, a] : sources) {
          auto repo = a.configuration.find("RepositoryPath");
          auto branch = a.configuration.find("BranchName");
          if (repo == a.configuration.end()) continue;
          auto head = git_->ResolveHead(repo->second,
                                        branch == a.configuration.end() ? "main" : branch->second);
          if (!head.ok()) continue;
          const std::string key = "poll/" + pipeline + "/" + a.name;
          auto seen = store_.GetKv(key);
          if (!seen.ok()) continue;
          // Baseline: the last revision seen by the poller, else the last one
          // the pipeline ran; with neither, remember the head and wait.
          std::string baseline = seen->value_or("");
          if (baseline.empty()) {
            std::lock_guard lock(mu_);
            auto p = LoadLocked(pipeline);
            if (p.ok()) {
              for (const auto& e : (*p)->executions) {
                for (const auto& r : e.runs) {
                  if (r.action == a.name && !r.revision_id.empty()) baseline = r.revision_id;
                }
              }
            }
          }
          if (baseline == head->commit_id) {
            if (!seen->has_value()) (void)store_.PutKv(key, head->commit_id);
            continue;
          }
          (void)store_.PutKv(key, head->commit_id);
          if (baseline.empty()) continue;  // Never ran and never seen: just remember.
          PW_LOG(Info) << "branch moved for " << pipeline << "/" << a.name << ": starting";
          (void)StartExecution(pipeline, "", "Pipewright source poller", "PollForSourceChanges");
        }
      }
    }
  }
}

void Engine::Tick() {
  std::lock_guard lock(mu_);
  const EpochSeconds now = clock_.Now();
  // Jobs: polled but never acknowledged go back to the queue with a new
  // nonce; acknowledged ones without a result before their timeout fail.
  for (auto& [id, job] : jobs_) {
    if (job.status == "Dispatched" &&
        now - job.dispatched > options_.job_dispatch_timeout_seconds) {
      job.status = "Queued";
      job.nonce = RandomHex(32);
      SaveJobLocked(job);
      jobs_cv_.notify_all();
      if (on_job_queued_) on_job_queued_();
    } else if (job.status == "InProgress" && now - job.acknowledged > job.timeout_seconds) {
      job.status = "TimedOut";
      SaveJobLocked(job);
      auto p = LoadLocked(job.pipeline);
      if (!p.ok()) continue;
      core::Outcome out;
      core::ActionResult res =
          Failure("The job worker sent no result within " +
                  std::to_string(static_cast<int>(job.timeout_seconds)) +
                  " seconds of acknowledging job " + job.id + "; retry the stage to run it again.");
      if (core::CompleteAction(**p, job.run_id, res, now, &out).ok()) {
        core::Advance(**p, now, *ids_, &out);
        (void)CommitLocked(**p, out);
      }
    }
  }
  // By name: a failed commit drops the pipeline from pipelines_.
  std::vector<std::string> names;
  for (const auto& [name, state] : pipelines_) names.push_back(name);
  for (const auto& name : names) {
    auto it = pipelines_.find(name);
    if (it == pipelines_.end()) continue;
    core::PipelineState& p = it->second;
    core::Outcome out;
    for (auto& e : p.executions) {
      if (!e.Active()) continue;
      for (auto& r : e.runs) {
        if (r.status != core::ActionStatus::kInProgress || r.token.empty()) continue;
        if (now - r.started < options_.approval_timeout_seconds) continue;
        core::ActionResult res = Failure("The approval timed out without a response.");
        (void)core::CompleteAction(p, r.id, res, now, &out);
      }
    }
    if (out.changed_executions.empty()) continue;
    core::Advance(p, now, *ids_, &out);
    (void)CommitLocked(p, out);
  }
}

// ---------------------------------------------------------------------------
// Operations.

Status Engine::Recover() {
  std::lock_guard lock(mu_);
  PW_ASSIGN_OR_RETURN(auto all, store_.ListPipelines());
  const EpochSeconds now = clock_.Now();
  LoadJobsLocked();
  for (const auto& rec : all) {
    auto p = LoadLocked(rec.name);
    if (!p.ok()) return p.status();
    core::Outcome out;
    // Runs done by job workers survive a restart (their jobs are durable);
    // approvals keep waiting; everything that ran here was interrupted.
    core::PipelineState& ps = **p;
    auto is_job_run = [&](const core::ActionRun& r) {
      const core::ActionDecl* a = FindActionDecl(ps.decl, r.stage, r.action);
      return a != nullptr && IsJobAction(*a);
    };
    auto interrupted = [&](const core::ActionRun& r) { return r.token.empty() && !is_job_run(r); };
    // Their processes may have outlived the old server: end them, so a retry
    // never runs beside a leftover copy.
    std::set<std::string> orphans;
    for (const auto& e : ps.executions) {
      for (const auto& r : e.runs) {
        if (r.status == core::ActionStatus::kInProgress && interrupted(r)) orphans.insert(r.id);
      }
    }
    if (int n = runner::KillActionProcesses(orphans); n > 0) {
      PW_LOG(Info) << "killed " << n << " process group(s) left by interrupted actions";
    }
    core::FailInterruptedRuns(ps, interrupted, kRestartMessage, now, &out);
    for (const auto& e : ps.executions) {
      for (const auto& r : e.runs) {
        if (r.status != core::ActionStatus::kInProgress || !is_job_run(r)) continue;
        bool has_job = false;
        for (const auto& [id, job] : jobs_) has_job = has_job || (job.run_id == r.id && job.Open());
        // Committed but the job was never created (a crash in between): create it now.
        if (!has_job) {
          Status s = CreateJobLocked(
              ps, e, r, WithResolvedConfiguration(*FindActionDecl(ps.decl, r.stage, r.action), r),
              "");
          if (!s.ok()) {
            const std::string pipeline = ps.decl.name;
            const std::string run_id = r.id;
            Enqueue([this, pipeline, run_id, s] {
              FinishRun(pipeline, run_id, Failure(s.message(), "", "ConfigurationError"));
            });
          }
        }
      }
    }
    core::Advance(**p, now, *ids_, &out);
    PW_RETURN_IF_ERROR(CommitLocked(**p, out));
  }
  if (!ticker_.joinable()) ticker_ = std::thread([this] { TickerLoop(); });
  return Status::Ok();
}

namespace {

// Required configuration properties of built-in and custom action types.
Status CheckRequiredConfiguration(
    const core::PipelineDecl& d,
    const std::function<std::optional<json>(const core::ActionTypeId&)>& custom) {
  for (const auto& s : d.stages) {
    for (const auto& a : s.actions) {
      std::vector<std::string> required;
      if (const BuiltinActionType* b = FindBuiltin(a.type)) {
        for (const auto& p : b->properties) {
          if (p.required) required.push_back(p.name);
        }
      } else if (auto t = custom(a.type)) {
        for (const auto& p : t->value("actionConfigurationProperties", json::array())) {
          if (p.value("required", false)) required.push_back(p.value("name", ""));
        }
      }
      for (const auto& name : required) {
        if (!a.configuration.count(name)) {
          return InvalidArgument("Action '" + a.name + "' in stage '" + s.name +
                                     "' is missing the required configuration property '" + name +
                                     "' of action type " + a.type.ToString() + ".",
                                 "InvalidActionDeclarationException");
        }
      }
    }
  }
  return Status::Ok();
}

// Data rules of a declaration (README "Variables reach commands as data"): no
// NUL byte where it could reach a process (it would silently cut a command
// list or value short), and local paths that keep away from the data
// directory (paths with variables are checked when the action starts).
Status CheckActionData(const core::PipelineDecl& d, const runner::PathPolicy& policy) {
  for (const auto& s : d.stages) {
    for (const auto& a : s.actions) {
      const std::string where = "Action '" + a.name + "' in stage '" + s.name + "': ";
      auto refuse = [&](const std::string& field) {
        return InvalidArgument(where + field + " holds a NUL byte; remove it.",
                               "InvalidActionDeclarationException");
      };
      auto has_nul = [](const std::string& v) { return v.find('\0') != std::string::npos; };
      for (const auto& [key, value] : a.configuration) {
        if (has_nul(key) || has_nul(value)) return refuse("configuration property " + key);
      }
      for (size_t i = 0; i < a.commands.size(); ++i) {
        if (has_nul(a.commands[i])) return refuse("commands[" + std::to_string(i) + "]");
      }
      for (const auto& v : a.environment) {
        if (has_nul(v.name) || has_nul(v.value)) return refuse("environment variable " + v.name);
      }
      if (IsBuiltin(a, "Build", "Commands") || IsBuiltin(a, "Test", "Commands") ||
          IsBuiltin(a, "Compute", "Commands")) {
        if (Status c = CheckCommandsConfiguration(a.configuration); !c.ok()) {
          return InvalidArgument(where + c.message(), "InvalidActionDeclarationException");
        }
      }
      Status paths = CheckActionPaths(a, a.configuration, policy, /*skip_unresolved=*/true);
      if (!paths.ok()) {
        return InvalidArgument(where + paths.message(), "InvalidActionDeclarationException");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Result<store::PipelineRecord> Engine::CreatePipeline(const json& pipeline,
                                                     const std::vector<store::Tag>& tags,
                                                     const std::string& caller) {
  json decl = NormalizeDeclaration(pipeline);
  core::PipelineDecl d = DeclFromJson(decl);
  PW_RETURN_IF_ERROR(core::ValidateStructure(
      d, [this](const core::ActionTypeId& id) { return ActionTypeKnown(id); }));
  PW_RETURN_IF_ERROR(CheckRequiredConfiguration(
      d, [this](const core::ActionTypeId& id) { return FindCustomActionType(id); }));
  PW_RETURN_IF_ERROR(CheckActionData(d, path_policy_));
  PW_ASSIGN_OR_RETURN(auto rec, [&] {
    std::lock_guard lock(mu_);
    pipelines_.erase(d.name);
    return store_.CreatePipeline(d.name, PipelineArn(d.name), decl, tags, clock_.Now(),
                                 options_.max_pipelines);
  }());
  if (options_.start_on_create) {
    auto id = StartExecution(d.name, "", caller, "CreatePipeline");
    if (!id.ok())
      PW_LOG(Warning) << "first execution of " << d.name << ": " << id.status().ToString();
  }
  return rec;
}

namespace {

constexpr const char* kMasked = "****";

// Secret property names of the action type `t` (a PipelineDeclaration action's actionTypeId).
std::vector<std::string> SecretProperties(const std::optional<json>& custom) {
  std::vector<std::string> out;
  if (!custom) return out;
  for (const auto& p : custom->value("actionConfigurationProperties", json::array())) {
    if (p.value("secret", false)) out.push_back(p.value("name", ""));
  }
  return out;
}

core::ActionTypeId TypeOf(const json& action) {
  const json t = action.value("actionTypeId", json::object());
  return {t.value("category", ""), t.value("owner", ""), t.value("provider", ""),
          t.value("version", "")};
}

}  // namespace

json Engine::MaskSecrets(json decl) const {
  if (!decl.contains("stages") || !decl["stages"].is_array()) return decl;
  for (auto& s : decl["stages"]) {
    if (!s.contains("actions") || !s["actions"].is_array()) continue;
    for (auto& a : s["actions"]) {
      for (const auto& name : SecretProperties(FindCustomActionType(TypeOf(a)))) {
        if (a.contains("configuration") && a["configuration"].contains(name)) {
          a["configuration"][name] = kMasked;
        }
      }
    }
  }
  return decl;
}

Result<store::PipelineRecord> Engine::UpdatePipeline(const json& incoming) {
  // Rule 9: a secret sent back as "****" keeps the stored value (same stage
  // and action names; a renamed stage loses it).
  json pipeline = incoming;
  if (auto cur = store_.GetPipeline(incoming.value("name", ""), std::nullopt); cur.ok()) {
    for (auto& s : pipeline["stages"]) {
      for (auto& a : s["actions"]) {
        if (!a.contains("configuration")) continue;
        for (auto& [key, value] : a["configuration"].items()) {
          if (value != kMasked) continue;
          for (const auto& os : cur->declaration.value("stages", json::array())) {
            if (os.value("name", "") != s.value("name", "")) continue;
            for (const auto& oa : os.value("actions", json::array())) {
              if (oa.value("name", "") == a.value("name", "") && oa.contains("configuration") &&
                  oa["configuration"].contains(key)) {
                value = oa["configuration"][key];
              }
            }
          }
        }
      }
    }
  }
  json decl = NormalizeDeclaration(pipeline);
  core::PipelineDecl d = DeclFromJson(decl);
  PW_RETURN_IF_ERROR(core::ValidateStructure(
      d, [this](const core::ActionTypeId& id) { return ActionTypeKnown(id); }));
  PW_RETURN_IF_ERROR(CheckRequiredConfiguration(
      d, [this](const core::ActionTypeId& id) { return FindCustomActionType(id); }));
  PW_RETURN_IF_ERROR(CheckActionData(d, path_policy_));
  std::lock_guard lock(mu_);
  auto p = LoadLocked(d.name);
  if (!p.ok()) return p.status();
  PW_ASSIGN_OR_RETURN(auto rec, store_.UpdatePipeline(d.name, decl, clock_.Now()));
  d.version = rec.version;
  core::Outcome out;
  const EpochSeconds now = clock_.Now();
  core::ApplyNewVersion(**p, d, now, &out);
  core::Advance(**p, now, *ids_, &out);
  (void)CommitLocked(**p, out);
  return rec;
}

Status Engine::DeletePipeline(const std::string& name) {
  std::lock_guard lock(mu_);
  auto p = LoadLocked(name);
  if (!p.ok()) return p.status();
  PW_RETURN_IF_ERROR(store_.DeletePipeline(name));
  // Abandon running work: processes, open jobs; forget tokens and poll state.
  for (const auto& e : (*p)->executions) {
    for (const auto& r : e.runs) {
      auto it = processes_.find(r.id);
      if (it != processes_.end()) launcher_->Cancel(it->second);
    }
  }
  LoadJobsLocked();
  for (auto& [id, job] : jobs_) {
    if (job.pipeline == name && job.Open()) {
      job.status = "Failed";
      SaveJobLocked(job);
    }
  }
  pipelines_.erase(name);
  (void)store_.DeleteKvPrefix("token/" + name + "/");
  (void)store_.DeleteKvPrefix("poll/" + name + "/");
  return Status::Ok();
}

Result<std::string> Engine::StartExecution(const std::string& pipeline,
                                           const std::string& client_token,
                                           const std::string& caller,
                                           const std::string& trigger_type,
                                           const core::Variables& variables) {
  std::lock_guard lock(mu_);
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(pipeline));
  const std::string token_key = "token/" + pipeline + "/" + client_token;
  if (!client_token.empty()) {
    PW_ASSIGN_OR_RETURN(auto seen, store_.GetKv(token_key));
    if (seen.has_value()) return *seen;  // Rule 14: idempotent.
  }
  PW_ASSIGN_OR_RETURN(core::Variables resolved, core::ExecutionVariables(p->decl, variables));
  core::Outcome out;
  const EpochSeconds now = clock_.Now();
  core::Execution& e = core::StartExecution(*p, trigger_type, caller, now, *ids_, &out);
  e.variables = std::move(resolved);
  const std::string id = e.id;
  core::Advance(*p, now, *ids_, &out);
  std::vector<std::pair<std::string, std::string>> token;
  if (!client_token.empty()) token.emplace_back(token_key, id);
  PW_RETURN_IF_ERROR(CommitLocked(*p, out, std::move(token)));  // Token and start together.
  return id;
}

Status Engine::StopExecution(const std::string& pipeline, const std::string& execution_id,
                             bool abandon, const std::string& reason) {
  std::lock_guard lock(mu_);
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(pipeline));
  core::Outcome out;
  const EpochSeconds now = clock_.Now();
  PW_RETURN_IF_ERROR(core::StopExecution(*p, execution_id, abandon, reason, now, &out));
  core::Advance(*p, now, *ids_, &out);
  return CommitLocked(*p, out);
}

Result<core::RetryPlan> Engine::PlanRetry(const std::string& pipeline, const std::string& stage,
                                          const std::string& execution_id, core::RetryMode mode) {
  std::lock_guard lock(mu_);
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(pipeline));
  return core::PlanRetry(*p, execution_id, stage, mode);
}

Result<core::RetryPlan> Engine::RetryStage(const std::string& pipeline, const std::string& stage,
                                           const std::string& execution_id, core::RetryMode mode) {
  std::lock_guard lock(mu_);
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(pipeline));
  core::Outcome out;
  const EpochSeconds now = clock_.Now();
  PW_ASSIGN_OR_RETURN(core::RetryPlan plan,
                      core::RetryStage(*p, execution_id, stage, mode, core::RetryTrigger::kManual,
                                       now, *ids_, &out));
  core::Advance(*p, now, *ids_, &out);
  PW_RETURN_IF_ERROR(CommitLocked(*p, out));
  return plan;
}

Result<std::string> Engine::RollbackStage(const std::string& pipeline, const std::string& stage,
                                          const std::string& target_execution_id) {
  std::lock_guard lock(mu_);
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(pipeline));
  core::Outcome out;
  const EpochSeconds now = clock_.Now();
  PW_ASSIGN_OR_RETURN(std::string id, core::StartRollback(*p, stage, target_execution_id,
                                                          "ManualRollback", now, *ids_, &out));
  core::Advance(*p, now, *ids_, &out);
  PW_RETURN_IF_ERROR(CommitLocked(*p, out));
  return id;
}

Status Engine::SetTransition(const std::string& pipeline, const std::string& stage, bool enabled,
                             const std::string& reason, const std::string& caller) {
  std::lock_guard lock(mu_);
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(pipeline));
  const EpochSeconds now = clock_.Now();
  PW_RETURN_IF_ERROR(core::SetTransition(*p, stage, enabled, reason, caller, now));
  core::Outcome out;
  core::Advance(*p, now, *ids_, &out);
  return CommitLocked(*p, out);
}

Result<EpochSeconds> Engine::PutApproval(const std::string& pipeline, const std::string& stage,
                                         const std::string& action, const std::string& token,
                                         bool approved, const std::string& summary,
                                         const std::string& caller) {
  std::lock_guard lock(mu_);
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(pipeline));
  PW_ASSIGN_OR_RETURN(std::string run_id, core::FindApprovalRun(*p, stage, action, token));
  core::ActionResult r;
  r.status = approved ? core::ActionStatus::kSucceeded : core::ActionStatus::kFailed;
  r.summary = summary;
  r.updated_by = caller;
  if (!approved) {
    r.error_code = "JobFailed";
    r.error_message = "Rejected by " + caller + (summary.empty() ? "" : ": " + summary);
  }
  core::Outcome out;
  const EpochSeconds now = clock_.Now();
  PW_RETURN_IF_ERROR(core::CompleteAction(*p, run_id, r, now, &out));
  core::Advance(*p, now, *ids_, &out);
  PW_RETURN_IF_ERROR(CommitLocked(*p, out));
  return now;
}

Result<Snapshot> Engine::GetSnapshot(const std::string& pipeline, bool current_only) {
  std::lock_guard lock(mu_);
  auto p = LoadLocked(pipeline);
  if (!p.ok()) {
    if (p.status().code() == StatusCode::kNotFound) return NotFoundPipeline(pipeline);
    return p.status();
  }
  PW_ASSIGN_OR_RETURN(auto rec, store_.GetPipeline(pipeline, std::nullopt));
  if (!current_only) return Snapshot{std::move(rec), **p};
  const core::PipelineState& full = **p;
  Snapshot snap{std::move(rec), {}};
  snap.state.decl = full.decl;
  snap.state.transitions = full.transitions;
  snap.state.stage_latest = full.stage_latest;
  std::set<std::string> latest;
  for (const auto& [stage, id] : full.stage_latest) latest.insert(id);
  for (const auto& e : full.executions) {
    if (e.Active() || latest.count(e.id)) snap.state.executions.push_back(e);
  }
  return snap;
}

// ---------------------------------------------------------------------------
// Custom action types.

namespace {

std::string TypeKey(const core::ActionTypeId& id) {
  return id.category + "/" + id.provider + "/" + id.version;
}

}  // namespace

Result<json> Engine::CreateCustomActionType(const json& in) {
  core::ActionTypeId id{in["category"], "Custom", in["provider"], in["version"]};
  json props = in.value("configurationProperties", json::array());
  int queryable = 0;
  for (const auto& p : props) {
    if (!p.value("queryable", false)) continue;
    ++queryable;
    if (!p.value("required", false) || p.value("secret", false)) {
      return InvalidArgument("Configuration property '" + p.value("name", "") +
                             "' is queryable, so it must be required and not secret.");
    }
  }
  if (queryable > 1) {
    return InvalidArgument("A custom action type can have at most one queryable property.");
  }
  json type = {{"id",
                {{"category", id.category},
                 {"owner", "Custom"},
                 {"provider", id.provider},
                 {"version", id.version}}},
               {"settings", in.value("settings", json::object())},
               {"actionConfigurationProperties", props},
               {"inputArtifactDetails", in["inputArtifactDetails"]},
               {"outputArtifactDetails", in["outputArtifactDetails"]}};
  std::lock_guard lock(types_mu_);
  const std::string key = TypeKey(id);
  auto it = custom_types_.find(key);
  if (it != custom_types_.end()) {
    return InvalidArgument(it->second.value("deleted", false)
                               ? "Custom action type " + id.ToString() +
                                     " was deleted and cannot be created again; use a new version."
                               : "Custom action type " + id.ToString() + " already exists.");
  }
  int live = 0;
  for (const auto& [k, doc] : custom_types_) live += doc.value("deleted", false) ? 0 : 1;
  if (live >= options_.max_custom_action_types) {
    return ResourceExhausted("The limit of " + std::to_string(options_.max_custom_action_types) +
                                 " custom action types has been reached.",
                             "LimitExceededException");
  }
  PW_RETURN_IF_ERROR(store_.PutKv("actiontype/" + key, type.dump()));
  custom_types_[key] = type;
  return type;
}

Status Engine::DeleteCustomActionType(const core::ActionTypeId& id) {
  std::lock_guard lock(types_mu_);
  auto it = custom_types_.find(TypeKey(id));
  if (it == custom_types_.end() || it->second.value("deleted", false)) {
    return NotFound("Custom action type " + id.ToString() + " does not exist.",
                    "ActionTypeNotFoundException");
  }
  json doc = it->second;
  doc["deleted"] = true;
  PW_RETURN_IF_ERROR(store_.PutKv("actiontype/" + TypeKey(id), doc.dump()));
  it->second = doc;
  return Status::Ok();
}

std::vector<json> Engine::CustomActionTypes() const {
  std::lock_guard lock(types_mu_);
  std::vector<json> out;
  for (const auto& [k, doc] : custom_types_) {
    if (doc.value("deleted", false)) continue;
    json t = doc;
    t.erase("deleted");
    out.push_back(t);
  }
  return out;
}

std::optional<json> Engine::FindCustomActionType(const core::ActionTypeId& id) const {
  if (id.owner != "Custom") return std::nullopt;
  std::lock_guard lock(types_mu_);
  auto it = custom_types_.find(TypeKey(id));
  if (it == custom_types_.end() || it->second.value("deleted", false)) return std::nullopt;
  return it->second;
}

// ---------------------------------------------------------------------------
// Jobs.

void Engine::SaveJobLocked(const Job& job) {
  Status s = store_.PutKv("job/" + job.id, JobToDoc(job).dump());
  if (!s.ok()) PW_LOG(Error) << "could not persist job " << job.id << ": " << s.ToString();
}

void Engine::LoadJobsLocked() {
  if (jobs_loaded_) return;
  auto rows = store_.ListKv("job/");
  if (!rows.ok()) return;
  for (const auto& [key, value] : *rows) {
    json doc = json::parse(value, nullptr, false);
    if (doc.is_discarded()) continue;
    Job j = JobFromDoc(doc);
    FillJobSecretsLocked(j);
    jobs_[j.id] = j;
  }
  jobs_loaded_ = true;
}

void Engine::FillJobSecretsLocked(Job& j) {
  if (j.external) {
    j.secret_access_key = options_.artifact_s3_secret_access_key;
    j.session_token = options_.artifact_s3_session_token;
    return;
  }
  if (job_key_.empty()) {
    // One random key per database, made once: every job's secret is an HMAC
    // of it, so no job secret is ever written down.
    auto stored = store_.GetKv("server/job-credential-key");
    if (stored.ok() && stored->has_value() && (*stored)->size() == 64) {
      job_key_ = **stored;
    } else {
      job_key_ = RandomHex(64);
      if (Status s = store_.PutKv("server/job-credential-key", job_key_); !s.ok()) {
        PW_LOG(Error) << "could not persist the job credential key: " << s.ToString();
      }
    }
  }
  j.secret_access_key =
      sigv4::HexEncode(sigv4::HmacSha256(job_key_, "secret/" + j.id + "/" + j.access_key_id))
          .substr(0, 40);
  j.session_token = sigv4::HexEncode(sigv4::HmacSha256(job_key_, "token/" + j.id));
}

Status Engine::CreateJobLocked(const core::PipelineState& p, const core::Execution& e,
                               const core::ActionRun& r, const core::ActionDecl& a,
                               const std::string& continuation_token) {
  std::optional<core::ShellCommands> shell;
  if (IsCommands(a)) {
    const core::ActionDecl* declared = FindActionDecl(p.decl, r.stage, r.action);
    PW_ASSIGN_OR_RETURN(
        shell, ShellCommandsOf(declared != nullptr ? *declared : a, core::VariableScope(p, e)));
  }
  LoadJobsLocked();
  Job j;
  j.id = NewUuid();
  j.nonce = RandomHex(32);
  j.status = "Queued";
  j.run_id = r.id;
  j.execution_id = e.id;
  j.pipeline = p.decl.name;
  j.stage = r.stage;
  j.action = r.action;
  j.type = a.type;
  j.configuration = a.configuration;
  if (IsCommands(a)) {
    // Fold what only the declaration holds into the configuration a worker
    // sees. The worker runs the same rewritten commands as the local runner,
    // the values of their references in PW_VAR_n environment variables.
    std::string joined;
    for (const auto& cmd : shell->commands) joined += (joined.empty() ? "" : "\n") + cmd;
    j.configuration["Commands"] = joined;
    if (!a.environment.empty() || !shell->environment.empty()) {
      json vars = json::array();
      if (auto ev = j.configuration.find("EnvironmentVariables"); ev != j.configuration.end()) {
        vars = json::parse(ev->second, nullptr, false);
        if (!vars.is_array()) vars = json::array();
      }
      for (const auto& v : a.environment) vars.push_back({{"name", v.name}, {"value", v.value}});
      for (const auto& [name, value] : shell->environment) {
        vars.push_back({{"name", name}, {"value", value}});
      }
      j.configuration["EnvironmentVariables"] = vars.dump();
    }
    if (a.timeout_minutes && !j.configuration.count("TimeoutInMinutes")) {
      j.configuration["TimeoutInMinutes"] = std::to_string(*a.timeout_minutes);
    }
    json files = json::object();
    for (const auto& out : a.output_artifacts) {
      if (!out.files.empty()) files[out.name] = out.files;
    }
    if (!files.empty()) j.configuration["PipewrightOutputFiles"] = files.dump();
    std::string names;
    for (const auto& var : a.output_variables) names += (names.empty() ? "" : ",") + var;
    if (!names.empty()) j.configuration["PipewrightOutputVariables"] = names;
  }
  for (const auto& in : a.input_artifacts) {
    auto it = r.inputs.find(in);
    if (it == r.inputs.end() || it->second.empty()) continue;  // Nothing was produced.
    j.inputs.emplace_back(in, it->second);
  }
  for (const auto& out : a.output_artifacts) j.outputs.push_back(out.name);
  j.bucket = p.decl.artifact_bucket.empty() ? "pipewright-artifacts" : p.decl.artifact_bucket;
  if (external_s3_) {
    j.external = true;
    j.bucket = options_.artifact_s3_bucket;
    j.key_prefix = "pipewright/" + p.decl.name + "/";
  }
  j.continuation_token = continuation_token;
  j.created = clock_.Now();
  j.timeout_seconds = a.timeout_minutes ? *a.timeout_minutes * 60.0 : options_.job_timeout_seconds;
  if (j.external) {
    // The bucket's own credentials; inputs are copied there first (content-
    // addressed keys: an object already there is not uploaded again).
    j.access_key_id = options_.artifact_s3_access_key_id;
    j.secret_access_key = options_.artifact_s3_secret_access_key;
    j.session_token = options_.artifact_s3_session_token;
    const sigv4::Credentials creds{j.access_key_id, j.secret_access_key, j.session_token};
    for (const auto& [name, rev] : j.inputs) {
      runner::S3ObjectRef ref{j.bucket, j.InputKey(rev)};
      if (external_s3_->HeadObject(ref, creds).ok()) continue;
      std::ifstream f(artifacts_->PathOf(rev), std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      if (Status s = external_s3_->PutObject(ref, bytes, creds); !s.ok()) {
        PW_LOG(Error) << "cannot copy input " << name << " of job " << j.id << " to s3://"
                      << j.bucket << "/" << ref.key << ": " << s.ToString();
      }
    }
  } else {
    j.access_key_id = "ASIA" + RandomHex(16);
    for (char& ch : j.access_key_id) {
      ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
  }
  FillJobSecretsLocked(j);
  SaveJobLocked(j);
  jobs_[j.id] = j;
  jobs_cv_.notify_all();
  if (on_job_queued_) on_job_queued_();
  return Status::Ok();
}

json Engine::JobDataJson(const Job& j) {
  auto location = [&](const std::string& key) {
    return json{{"type", "S3"}, {"s3Location", {{"bucketName", j.bucket}, {"objectKey", key}}}};
  };
  json inputs = json::array();
  for (const auto& [name, rev] : j.inputs) {
    inputs.push_back({{"name", name}, {"revision", rev}, {"location", location(j.InputKey(rev))}});
  }
  json outputs = json::array();
  for (const auto& name : j.outputs) {
    outputs.push_back({{"name", name}, {"location", location(j.OutputKey(name))}});
  }
  json data = {{"actionTypeId",
                {{"category", j.type.category},
                 {"owner", j.type.owner},
                 {"provider", j.type.provider},
                 {"version", j.type.version}}},
               {"actionConfiguration", {{"configuration", j.configuration}}},
               {"pipelineContext",
                {{"pipelineName", j.pipeline},
                 {"stage", {{"name", j.stage}}},
                 {"action", {{"name", j.action}, {"actionExecutionId", j.run_id}}},
                 {"pipelineArn", PipelineArn(j.pipeline)},
                 {"pipelineExecutionId", j.execution_id}}},
               {"inputArtifacts", inputs},
               {"outputArtifacts", outputs},
               {"artifactCredentials",
                {{"accessKeyId", j.access_key_id},
                 {"secretAccessKey", j.secret_access_key},
                 {"sessionToken", j.session_token}}}};
  if (!j.continuation_token.empty()) data["continuationToken"] = j.continuation_token;
  return data;
}

Result<std::vector<Job>> Engine::PollForJobs(const core::ActionTypeId& type, int max_jobs,
                                             const std::map<std::string, std::string>& query,
                                             double wait_seconds) {
  const bool builtin_job = type.owner == "AWS" && !options_.local_runners &&
                           type.provider == "Commands" && FindBuiltin(type) != nullptr;
  if (type.owner != "Custom" && !builtin_job) {
    return InvalidArgument("PollForJobs serves only action types with owner Custom" +
                           std::string(options_.local_runners
                                           ? ""
                                           : " (and AWS/Commands, as this server runs no local "
                                             "runners)") +
                           "; " + type.ToString() + " is run by the server itself.");
  }
  if (type.owner == "Custom" && !FindCustomActionType(type)) {
    return NotFound("Custom action type " + type.ToString() + " does not exist.",
                    "ActionTypeNotFoundException");
  }
  std::unique_lock lock(mu_);
  LoadJobsLocked();
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_seconds);
  for (;;) {
    std::vector<Job> out;
    for (auto& [id, job] : jobs_) {
      if (static_cast<int>(out.size()) >= max_jobs) break;
      if (job.status != "Queued" || !(job.type == type)) continue;
      bool match = true;
      for (const auto& [k, v] : query) {
        auto it = job.configuration.find(k);
        match = match && it != job.configuration.end() && it->second == v;
      }
      if (!match) continue;
      job.status = "Dispatched";
      job.dispatched = clock_.Now();
      job.nonce = RandomHex(32);
      SaveJobLocked(job);
      out.push_back(job);
    }
    if (!out.empty() || std::chrono::steady_clock::now() >= deadline) return out;
    jobs_cv_.wait_until(lock, deadline);
  }
}

Result<std::string> Engine::AcknowledgeJob(const std::string& job_id, const std::string& nonce) {
  std::lock_guard lock(mu_);
  PW_ASSIGN_OR_RETURN(Job * found, FindJobLocked(job_id));
  Job& job = *found;
  if (job.nonce != nonce) {
    return InvalidArgument("The nonce does not match job " + job_id +
                               ": another worker was handed this job, or it was handed out again.",
                           "InvalidNonceException");
  }
  if (job.status == "Dispatched") {
    job.status = "InProgress";
    job.acknowledged = clock_.Now();
    SaveJobLocked(job);
  }
  return job.status;
}

Result<Job*> Engine::FindJobLocked(const std::string& job_id) {
  LoadJobsLocked();
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    return NotFound("Job " + job_id + " does not exist.", "JobNotFoundException");
  }
  return &it->second;
}

Result<Job> Engine::GetJob(const std::string& job_id) {
  std::lock_guard lock(mu_);
  PW_ASSIGN_OR_RETURN(Job * job, FindJobLocked(job_id));
  return *job;
}

namespace {

Status JobNotWorkable(const Job& job) {
  return FailedPrecondition(
      "Job " + job.id + " is " + job.status +
          (job.status == "Queued" || job.status == "Dispatched"
               ? "; acknowledge it (AcknowledgeJob) before reporting a result."
               : "; it no longer accepts results."),
      "InvalidJobStateException");
}

}  // namespace

Status Engine::PutJobSuccess(const std::string& job_id, const JobSuccess& result) {
  std::lock_guard lock(mu_);
  PW_ASSIGN_OR_RETURN(Job * found, FindJobLocked(job_id));
  Job& job = *found;
  if (job.status != "InProgress") return JobNotWorkable(job);
  if (!result.continuation_token.empty() && !result.output_variables.empty()) {
    return InvalidArgument("outputVariables can be sent only without a continuationToken.");
  }
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(job.pipeline));
  const EpochSeconds now = clock_.Now();
  core::Outcome out;
  core::Execution* e = p->FindExecution(job.execution_id);
  core::ActionRun* run = e ? e->FindRun(job.run_id) : nullptr;
  if (run == nullptr || run->status != core::ActionStatus::kInProgress) {
    job.status = "Failed";
    SaveJobLocked(job);
    return JobNotWorkable(job);
  }
  if (!result.continuation_token.empty()) {
    // Still in progress: record progress, issue the follow-up job.
    if (!result.summary.empty()) run->summary = result.summary;
    if (result.percent_complete >= 0) run->percent_complete = result.percent_complete;
    if (!result.external_id.empty()) run->external_id = result.external_id;
    run->updated = now;
    out.changed_runs.insert(run->id);
    out.changed_executions.insert(e->id);
    job.status = "Succeeded";
    if (Status s = CommitLocked(*p, out, {{"job/" + job.id, JobToDoc(job).dump()}}); !s.ok()) {
      job.status = "InProgress";  // Nothing was recorded: the worker may report again.
      return s;
    }
    const core::ActionDecl* a = FindActionDecl(p->decl, run->stage, run->action);
    if (a != nullptr) {
      Status created = CreateJobLocked(*p, *e, *run, WithResolvedConfiguration(*a, *run),
                                       result.continuation_token);
      if (!created.ok()) {
        const std::string pipeline = p->decl.name;
        const std::string run_id = run->id;
        Enqueue([this, pipeline, run_id, created] {
          FinishRun(pipeline, run_id, Failure(created.message(), "", "ConfigurationError"));
        });
      }
    }
    return Status::Ok();
  }
  core::ActionResult r;
  r.summary = result.summary;
  r.external_id = result.external_id;
  r.output_variables = result.output_variables;
  r.revision_id = result.revision;
  r.revision_summary = result.revision_summary;
  r.revision_created = result.revision_created;
  for (const auto& name : job.outputs) {
    Result<std::string> rev = NotFound("not uploaded");
    if (job.external && external_s3_) {
      auto bytes = external_s3_->GetObject(
          {job.bucket, job.OutputKey(name)},
          sigv4::Credentials{job.access_key_id, job.secret_access_key, job.session_token});
      rev = bytes.ok() ? artifacts_->PutZipBytes(*bytes) : Result<std::string>(bytes.status());
    } else {
      const std::string path = options_.data_dir + "/uploads/" + job.id + "/" + name + ".zip";
      std::ifstream f(path, std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      if (f) rev = artifacts_->PutZipBytes(bytes);
    }
    if (!rev.ok()) {
      r = Failure("Output artifact " + name + " was not uploaded as a zip to s3://" + job.bucket +
                  "/" + job.OutputKey(name) + " (" + rev.status().message() + ").");
      break;
    }
    r.outputs[name] = *rev;
  }
  PW_RETURN_IF_ERROR(core::CompleteAction(*p, job.run_id, r, now, &out));
  core::Advance(*p, now, *ids_, &out);
  job.status = r.status == core::ActionStatus::kSucceeded ? "Succeeded" : "Failed";
  if (Status s = CommitLocked(*p, out, {{"job/" + job.id, JobToDoc(job).dump()}}); !s.ok()) {
    job.status = "InProgress";  // Nothing was recorded: the worker may report again.
    return s;
  }
  std::error_code ec;
  fs::remove_all(options_.data_dir + "/uploads/" + job.id, ec);
  return Status::Ok();
}

Status Engine::PutJobFailure(const std::string& job_id, const std::string& type,
                             const std::string& message, const std::string& external_id) {
  std::lock_guard lock(mu_);
  PW_ASSIGN_OR_RETURN(Job * found, FindJobLocked(job_id));
  Job& job = *found;
  if (job.status != "InProgress") return JobNotWorkable(job);
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(job.pipeline));
  core::ActionResult r = Failure(message);
  r.error_code = type;
  r.external_id = external_id;
  core::Outcome out;
  const EpochSeconds now = clock_.Now();
  if (!core::CompleteAction(*p, job.run_id, r, now, &out).ok()) {
    job.status = "Failed";  // Its action is gone or finished (abandoned).
    SaveJobLocked(job);
    return JobNotWorkable(job);
  }
  core::Advance(*p, now, *ids_, &out);
  job.status = "Failed";
  if (Status s = CommitLocked(*p, out, {{"job/" + job.id, JobToDoc(job).dump()}}); !s.ok()) {
    job.status = "InProgress";
    return s;
  }
  return Status::Ok();
}

std::optional<Job> Engine::JobForAccessKey(const std::string& access_key_id) {
  std::lock_guard lock(mu_);
  LoadJobsLocked();
  for (const auto& [id, job] : jobs_) {
    if (job.access_key_id == access_key_id && job.Open() && !job.external) return job;
  }
  return std::nullopt;
}

Result<std::string> Engine::JobObjectPath(const Job& job, const std::string& key, bool for_write) {
  for (const auto& name : job.outputs) {
    if (key == job.OutputKey(name)) {
      std::string dir = options_.data_dir + "/uploads/" + job.id;
      std::error_code ec;
      if (for_write) fs::create_directories(dir, ec);
      return dir + "/" + name + ".zip";
    }
  }
  if (!for_write) {
    for (const auto& [name, rev] : job.inputs) {
      if (key == job.InputKey(rev) && runner::IsArtifactRevision(rev))
        return artifacts_->PathOf(rev);
    }
  }
  return FailedPrecondition("These credentials do not allow " +
                                std::string(for_write ? "writing " : "reading ") + key + ".",
                            "AccessDenied");
}

Status Engine::PutJobObjectFile(const Job& job, const std::string& key, const std::string& upload) {
  std::error_code ec;
  auto path = JobObjectPath(job, key, /*for_write=*/true);
  if (!path.ok()) {
    fs::remove(upload, ec);
    return path.status();
  }
  if (Status valid = runner::ValidateZipFile(upload, artifacts_->limits()); !valid.ok()) {
    fs::remove(upload, ec);
    return InvalidArgument("Output object " + key + " is refused: " + valid.message() + ".",
                           "InvalidRequest");
  }
  fs::rename(upload, *path, ec);
  if (ec) {
    fs::remove(upload, ec);
    return Internal("Cannot store the object " + key + ": " + ec.message());
  }
  return Status::Ok();
}

Status Engine::PutJobObject(const Job& job, const std::string& key, std::string_view bytes) {
  PW_ASSIGN_OR_RETURN(std::string path, JobObjectPath(job, key, /*for_write=*/true));
  const std::string tmp = path + ".tmp-" + RandomHex(8);
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      return Internal("Cannot store the object " + key + ".");
    }
  }
  if (Status valid = runner::ValidateZipFile(tmp, artifacts_->limits()); !valid.ok()) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return InvalidArgument("Output object " + key + " is refused: " + valid.message() + ".",
                           "InvalidRequest");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return Internal("Cannot store the object " + key + ": " + ec.message());
  }
  return Status::Ok();
}

}  // namespace pw::engine
