// The built-in executors that need no process: Directory source (snapshot a
// local directory), Git source (export a branch head), Directory deploy
// (replace a directory's contents atomically). Each runs to completion on
// the calling worker thread and reports at once.

#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "engine/executor.h"
#include "engine/git_connections.h"
#include "engine/helpers.h"
#include "runner/artifact_store.h"
#include "runner/deploy_dir.h"
#include "runner/git_source.h"

namespace pw::engine {

namespace fs = std::filesystem;

namespace {

// `t` (epoch seconds) in ISO-8601 UTC, e.g. "2019-10-29T03:32:21Z".
std::string IsoTime(double t) {
  const std::time_t secs = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The first line of `s`, at most 200 characters.
std::string FirstLine(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  return line.size() > 200 ? line.substr(0, 200) : line;
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
    const std::string path = ConfigValue(w.decl, "Path");
    auto rev = env_.artifacts->PutDirectory(path, {}, env_.stopping);
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

// Source/Git, Source/CodeCommit and Source/CodeStarSourceConnection: the
// branch head (or the commit StartPipelineExecution.sourceRevisions chose),
// exported as its tree (CODE_ZIP) or as a clone with .git
// (CODEBUILD_CLONE_REF).
class GitSourceExecutor final : public ActionExecutor {
 public:
  explicit GitSourceExecutor(const ExecutorEnv& env) : env_(env) {}
  void Run(const ActionWork& w, ActionDone done) override {
    static const GitConnections kNone;
    auto remote = ResolveGitRemote(env_.git_connections ? *env_.git_connections : kNone, w.decl);
    if (!remote.ok()) return done(Failure(remote.status().message(), "", "ConfigurationError"));
    runner::GitAuth auth;
    if (!remote->token_file.empty()) {
      auto token = ReadGitToken(remote->token_file);
      if (!token.ok()) {
        return done(Failure("Cannot read the credentials of " + remote->description + ": " +
                                token.status().message(),
                            "", "ConfigurationError"));
      }
      auth = {remote->username, *token};
    }
    // Whatever libgit2 says, the token never reaches a message.
    auto fail = [&](std::string message, const char* code = "JobFailed") {
      if (!auth.password.empty()) {
        for (size_t at = message.find(auth.password); at != std::string::npos;
             at = message.find(auth.password, at)) {
          message.replace(at, auth.password.size(), "****");
        }
      }
      done(Failure(std::move(message), "", code));
    };
    const std::string format = ConfigValue(w.decl, "OutputArtifactFormat", "CODE_ZIP");
    if (format != "CODE_ZIP" && format != "CODEBUILD_CLONE_REF") {
      return fail(
          "OutputArtifactFormat must be CODE_ZIP or CODEBUILD_CLONE_REF, not '" + format + "'.",
          "ConfigurationError");
    }
    Result<runner::GitRevision> rev = Unavailable("");
    if (w.source_revision_type == "COMMIT_ID") {
      rev = env_.git->ResolveCommit(remote->url, w.source_revision_value, auth);
      if (!rev.ok()) {
        return fail(rev.status().code() == StatusCode::kNotFound
                        ? "Commit " + w.source_revision_value +
                              " (sourceRevisions) does not exist in " + remote->description + "."
                        : "Cannot read commit " + w.source_revision_value + " of " +
                              remote->description + ": " + RedactUrl(rev.status().message()));
      }
    } else if (!w.source_revision_type.empty()) {
      return fail("sourceRevisions type " + w.source_revision_type + " does not fit a Git source.",
                  "ConfigurationError");
    } else {
      rev = env_.git->ResolveHead(remote->url, remote->branch, auth);
      if (!rev.ok()) {
        return fail("Cannot read branch '" + remote->branch + "' of " + remote->description + ": " +
                    RedactUrl(rev.status().message()));
      }
    }
    const std::string work = env_.WorkDir(w.run_id);
    const std::string dir = work + "/src";
    Status st = format == "CODEBUILD_CLONE_REF"
                    ? env_.git->CloneCommit(remote->url, rev->commit_id, remote->branch, dir,
                                            RedactUrl(remote->url), auth)
                    : env_.git->ExportCommit(remote->url, rev->commit_id, dir, auth);
    auto zip = st.ok() ? env_.artifacts->PutDirectory(dir) : Result<std::string>(st);
    std::error_code ec;
    fs::remove_all(work, ec);
    if (!zip.ok()) {
      return fail("Cannot export commit " + rev->commit_id + ": " +
                  RedactUrl(zip.status().message()));
    }
    done(Succeeded(w, *remote, *rev, *zip));
  }

 private:
  core::ActionResult Succeeded(const ActionWork& w, const GitRemote& remote,
                               const runner::GitRevision& rev, const std::string& zip) const {
    core::ActionResult result;
    for (const auto& o : w.decl.output_artifacts) result.outputs[o.name] = zip;
    result.revision_id = rev.commit_id;
    result.revision_created = rev.commit_time;
    result.revision_url = CommitWebUrl(remote, rev.commit_id);
    const std::string& provider = w.decl.type.provider;
    if (provider == "Git") {
      result.revision_summary = FirstLine(rev.message);
      result.summary = FirstLine(rev.message);
      return result;
    }
    // As AWS: the commit is the external execution; CodeCommit summarises
    // with the commit message, connections with a small JSON document.
    std::string message = rev.message;
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
      message.pop_back();
    }
    result.external_id = rev.commit_id;
    result.external_url = result.revision_url;
    result.output_variables = {{"AuthorDate", IsoTime(rev.author_time)},
                               {"BranchName", remote.branch},
                               {"CommitId", rev.commit_id},
                               {"CommitMessage", message}};
    if (provider == "CodeCommit") {
      result.output_variables["CommitterDate"] = IsoTime(rev.commit_time);
      result.output_variables["RepositoryName"] = ConfigValue(w.decl, "RepositoryName");
      result.revision_summary = message.substr(0, 2048);
    } else {
      result.output_variables["ConnectionArn"] = ConfigValue(w.decl, "ConnectionArn");
      result.output_variables["FullRepositoryName"] = ConfigValue(w.decl, "FullRepositoryId");
      result.revision_summary = nlohmann::ordered_json{
          {"ProviderType", remote.provider_type},
          {"CommitMessage",
           message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      if (result.revision_summary.size() > 2048) {
        // Shorten the message, not the document.
        message.resize(1900);
        result.revision_summary = nlohmann::ordered_json{
            {"ProviderType", remote.provider_type},
            {"CommitMessage",
             message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      }
    }
    result.summary = result.revision_summary;
    return result;
  }

  ExecutorEnv env_;
};

class DirectoryDeployExecutor final : public ActionExecutor {
 public:
  explicit DirectoryDeployExecutor(const ExecutorEnv& env) : env_(env) {}
  void Run(const ActionWork& w, ActionDone done) override {
    const std::string path = ConfigValue(w.decl, "Path");
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
  if (IsBuiltin(a, "Source", "Git")) {  // CodeCommit and connections: the server's own URLs.
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
