// The built-in executors that need no process: Directory source (snapshot a
// local directory), Git source (export a branch head), Directory deploy
// (replace a directory's contents atomically). Each runs to completion on
// the calling worker thread and reports at once.

#include <filesystem>
#include <optional>

#include "engine/executor.h"
#include "runner/artifact_store.h"
#include "runner/deploy_dir.h"
#include "runner/git_source.h"

namespace pw::engine {

namespace fs = std::filesystem;

namespace {

// The first line of `s`, at most 200 characters.
std::string FirstLine(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  return line.size() > 200 ? line.substr(0, 200) : line;
}

std::string Config(const core::ActionDecl& a, const char* key, const std::string& def = "") {
  auto it = a.configuration.find(key);
  return it == a.configuration.end() ? def : it->second;
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

class DirectorySourceExecutor final : public ActionExecutor {
 public:
  explicit DirectorySourceExecutor(const ExecutorEnv& env) : env_(env) {}
  void Run(const ActionWork& w, ActionDone done) override {
    const std::string path = Config(w.decl, "Path");
    auto rev = env_.artifacts->PutDirectory(path);
    if (!rev.ok()) {
      return done(Failure("Cannot snapshot directory '" + path + "': " + rev.status().message()));
    }
    core::ActionResult result;
    for (const auto& o : w.decl.output_artifacts) result.outputs[o.name] = *rev;
    result.revision_id = *rev;
    result.revision_summary = "Snapshot of " + path;
    result.revision_created = env_.clock->Now();
    result.summary = "Snapshot of " + path + " (" + rev->substr(0, 12) + ")";
    done(result);
  }

 private:
  ExecutorEnv env_;
};

class GitSourceExecutor final : public ActionExecutor {
 public:
  explicit GitSourceExecutor(const ExecutorEnv& env) : env_(env) {}
  void Run(const ActionWork& w, ActionDone done) override {
    const std::string repo = Config(w.decl, "RepositoryPath");
    const std::string branch = Config(w.decl, "BranchName", "main");
    auto head = env_.git->ResolveHead(repo, branch);
    if (!head.ok()) {
      return done(Failure("Cannot read branch '" + branch + "' of " + repo + ": " +
                          head.status().message()));
    }
    const std::string work = env_.WorkDir(w.run_id);
    const std::string dir = work + "/src";
    Status st = env_.git->ExportCommit(repo, head->commit_id, dir);
    auto rev = st.ok() ? env_.artifacts->PutDirectory(dir) : Result<std::string>(st);
    std::error_code ec;
    fs::remove_all(work, ec);
    if (!rev.ok()) {
      return done(
          Failure("Cannot export commit " + head->commit_id + ": " + rev.status().message()));
    }
    core::ActionResult result;
    for (const auto& o : w.decl.output_artifacts) result.outputs[o.name] = *rev;
    result.revision_id = head->commit_id;
    result.revision_summary = FirstLine(head->message);
    result.revision_created = head->commit_time;
    result.summary = FirstLine(head->message);
    done(result);
  }

 private:
  ExecutorEnv env_;
};

class DirectoryDeployExecutor final : public ActionExecutor {
 public:
  explicit DirectoryDeployExecutor(const ExecutorEnv& env) : env_(env) {}
  void Run(const ActionWork& w, ActionDone done) override {
    const std::string path = Config(w.decl, "Path");
    const std::string rev = w.inputs.empty() ? "" : w.inputs.begin()->second;
    Status st = runner::ReplaceDirectoryContents(path, *env_.artifacts, rev);
    if (!st.ok()) return done(Failure("Cannot deploy to '" + path + "': " + st.message()));
    core::ActionResult result;
    result.summary = "Deployed " + rev.substr(0, 12) + " to " + path;
    done(result);
  }

 private:
  ExecutorEnv env_;
};

}  // namespace

core::ActionResult Failure(std::string message, std::string summary, std::string code) {
  core::ActionResult r;
  r.status = core::ActionStatus::kFailed;
  r.error_code = std::move(code);
  r.error_message = std::move(message);
  r.summary = summary.empty() ? r.error_message : std::move(summary);
  return r;
}

bool IsBuiltin(const core::ActionDecl& a, const char* category, const char* provider) {
  return a.type.owner == "AWS" && a.type.category == category && a.type.provider == provider;
}

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

std::unique_ptr<ActionExecutor> NewDirectorySourceExecutor(const ExecutorEnv& env) {
  return std::make_unique<DirectorySourceExecutor>(env);
}
std::unique_ptr<ActionExecutor> NewDirectoryDeployExecutor(const ExecutorEnv& env) {
  return std::make_unique<DirectoryDeployExecutor>(env);
}
std::unique_ptr<ActionExecutor> NewGitSourceExecutor(const ExecutorEnv& env) {
  return std::make_unique<GitSourceExecutor>(env);
}

}  // namespace pw::engine
