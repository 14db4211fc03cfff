// V2 trigger filters (core/triggers.h) in the engine: parsing and checking
// the declaration's `triggers`, the poller's view of a Git source with a
// trigger (every branch and tag, the changed files from libgit2's diff),
// starting an execution at a commit, PutActionRevision, and rule 15's limit
// on concurrent executions.

#include "engine/triggers.h"

#include <algorithm>

#include "common/log.h"
#include "core/timers.h"
#include "engine/engine.h"
#include "engine/git_connections.h"
#include "engine/internal.h"
#include "runner/git_source.h"

namespace pw::engine {

using nlohmann::json;

namespace {

std::optional<core::GlobFilter> FilterOf(const json& f, const char* key) {
  auto it = f.find(key);
  if (it == f.end() || !it->is_object()) return std::nullopt;
  core::GlobFilter out;
  for (const char* side : {"includes", "excludes"}) {
    if (!it->contains(side) || !(*it)[side].is_array()) continue;
    for (const auto& p : (*it)[side]) {
      if (p.is_string()) (side[0] == 'i' ? out.includes : out.excludes).push_back(p);
    }
  }
  return out;
}

// The action `name` of the first stage, or nullopt.
std::optional<json> SourceActionJson(const json& decl, std::string_view name) {
  auto stages = decl.find("stages");
  if (stages == decl.end() || !stages->is_array() || stages->empty()) return std::nullopt;
  const json& first = stages->front();
  auto actions = first.is_object() ? first.find("actions") : first.end();
  if (actions == first.end() || !actions->is_array()) return std::nullopt;
  for (const auto& a : *actions) {
    if (a.is_object() && a.contains("name") && a["name"] == name) return a;
  }
  return std::nullopt;
}

}  // namespace

std::vector<core::TriggerDecl> TriggersOf(const json& decl) {
  std::vector<core::TriggerDecl> out;
  if (!decl.is_object() || !decl.contains("triggers") || !decl["triggers"].is_array()) return out;
  for (const auto& t : decl["triggers"]) {
    if (!t.is_object() || !t.contains("gitConfiguration") || !t["gitConfiguration"].is_object()) {
      continue;
    }
    const json& g = t["gitConfiguration"];
    core::TriggerDecl d;
    d.provider_type = t.value("providerType", "");
    d.source_action = g.value("sourceActionName", "");
    for (const auto& f : g.value("push", json::array())) {
      if (!f.is_object()) continue;
      d.push.push_back({FilterOf(f, "tags"), FilterOf(f, "branches"), FilterOf(f, "filePaths")});
    }
    for (const auto& f : g.value("pullRequest", json::array())) {
      if (!f.is_object()) continue;
      core::PullRequestFilter pr;
      for (const auto& e : f.value("events", json::array())) {
        if (e.is_string()) pr.events.push_back(e);
      }
      pr.branches = FilterOf(f, "branches");
      pr.file_paths = FilterOf(f, "filePaths");
      d.pull_request.push_back(std::move(pr));
    }
    out.push_back(std::move(d));
  }
  return out;
}

const core::TriggerDecl* TriggerFor(const std::vector<core::TriggerDecl>& triggers,
                                    std::string_view action) {
  for (const auto& t : triggers) {
    if (t.source_action == action) return &t;
  }
  return nullptr;
}

Status CheckTriggers(const json& decl) {
  for (const auto& t : TriggersOf(decl)) {
    const std::string which = "Trigger for source action '" + t.source_action + "'";
    const std::optional<json> a = SourceActionJson(decl, t.source_action);
    if (!a) continue;  // CheckPipelineType names the missing action.
    const json type = a->value("actionTypeId", json::object());
    const std::string owner = type.value("owner", ""), category = type.value("category", "");
    const std::string provider = type.value("provider", "");
    if (!(owner == "AWS" && category == "Source" &&
          (provider == "Git" || provider == "CodeCommit" ||
           provider == "CodeStarSourceConnection"))) {
      return InvalidArgument(which + ": triggers apply to Git-based sources (Source/AWS/Git, " +
                                 "CodeCommit, CodeStarSourceConnection); this action is " +
                                 category + "/" + owner + "/" + provider +
                                 ". Remove the trigger or change the source.",
                             "InvalidStructureException");
    }
    if (!t.pull_request.empty()) {
      return InvalidArgument(
          which +
              ": pullRequest filters cannot be evaluated by Pipewright: its Git sources see "
              "branches and tags (polling and push webhooks), not pull request events. Remove "
              "pullRequest, or use push filters on the branches pull requests merge into.",
          "InvalidStructureException");
    }
    for (size_t i = 0; i < t.push.size(); ++i) {
      if (t.push[i].tags && (t.push[i].branches || t.push[i].file_paths)) {
        return InvalidArgument(which + ": push filter " + std::to_string(i + 1) +
                                   " has tags together with branches or filePaths; a tag push "
                                   "has no branch and its files are not compared. Put tags "
                                   "and branches in separate push filters.",
                               "InvalidStructureException");
      }
    }
  }
  return Status::Ok();
}

std::string TriggerDetail(std::string_view text) {
  if (text.size() <= 1024) return std::string(text);
  size_t n = 1024;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return std::string(text.substr(0, n));
}

Status Engine::CheckConcurrencyLimitLocked(const core::PipelineState& p, int adding) const {
  if (p.decl.execution_mode == core::ExecutionMode::kSuperseded) return Status::Ok();
  const int limit = options_.max_concurrent_executions;
  if (limit <= 0) return Status::Ok();
  int active = 0;
  for (const auto& e : p.executions) active += e.Active() ? 1 : 0;
  if (active + adding <= limit) return Status::Ok();
  return FailedPrecondition(
      "The pipeline has reached the limit for concurrent pipeline executions: pipeline '" +
          p.decl.name + "' (" + std::string(core::ExecutionModeName(p.decl.execution_mode)) +
          ") has " + std::to_string(active) + " active executions and the limit is " +
          std::to_string(limit) + ". Wait for some to finish or stop them.",
      "ConcurrentPipelineExecutionsLimitExceededException");
}

Result<std::string> Engine::StartAtCommit(const std::string& pipeline, const std::string& action,
                                          const std::string& commit,
                                          const std::string& trigger_type,
                                          const std::string& detail) {
  return StartExecution(pipeline, "", TriggerDetail(detail), trigger_type, {},
                        {core::SourceRevisionOverride{action, "COMMIT_ID", commit}});
}

namespace {

Result<runner::GitAuth> GitAuthOf(const GitRemote& remote) {
  runner::GitAuth auth;
  if (!remote.token_file.empty()) {
    PW_ASSIGN_OR_RETURN(std::string token, ReadGitToken(remote.token_file));
    auth = {remote.username, token};
  }
  return auth;
}

}  // namespace

void Engine::RememberTriggerRefs(const core::PipelineDecl& d, const json& decl) {
  const std::vector<core::TriggerDecl> triggers = TriggersOf(decl);
  if (triggers.empty() || d.stages.empty() || !runners_.git) return;
  for (const auto& a : d.stages[0].actions) {
    if (TriggerFor(triggers, a.name) == nullptr || !IsGitSource(a)) continue;
    auto remote = ResolveGitRemote(options_.git_connections, a);
    if (!remote.ok() || remote->url.empty()) continue;
    auto auth = GitAuthOf(*remote);
    if (!auth.ok()) continue;
    auto refs = runners_.git->ListRefs(remote->url, *auth);
    if (!refs.ok()) continue;  // The poller's first look takes the baseline then.
    json seen = json::object();
    for (const auto& r : *refs) seen[r.name] = r.commit_id;
    (void)store_.PutKv("poll/" + d.name + "/" + a.name + "/refs", seen.dump());
  }
}

void Engine::PollTriggeredSource(const std::string& pipeline, const core::ActionDecl& a,
                                 const core::TriggerDecl& trigger,
                                 const std::function<void()>& after_listing) {
  auto remote = ResolveGitRemote(options_.git_connections, a);
  if (!remote.ok() || remote->url.empty()) return;  // Fails when it runs.
  runner::GitAuth auth;
  if (!remote->token_file.empty()) {
    auto token = ReadGitToken(remote->token_file);
    if (!token.ok()) return;
    auth = {remote->username, *token};
  }
  auto refs = runners_.git->ListRefs(remote->url, auth);
  if (!refs.ok()) {
    PW_LOG(Debug) << "trigger poller cannot list " << RedactUrl(remote->url) << ": "
                  << refs.status().ToString();
    return;
  }
  if (after_listing) after_listing();
  const std::string key = "poll/" + pipeline + "/" + a.name + "/refs";
  auto stored = store_.GetKv(key);
  if (!stored.ok()) return;
  json seen = json::object();
  if (stored->has_value()) {
    seen = json::parse(**stored, nullptr, false);
    if (!seen.is_object()) seen = json::object();
  } else {
    // First look: every ref as it is now, but the action's branch compared
    // with what the pipeline last ran (as core::DecidePoll does), so a
    // commit made before this poll is not lost.
    for (const auto& r : *refs) seen[r.name] = r.commit_id;
    MutexLock lock(mu_);
    auto p = LoadLocked(pipeline);
    // Not driven here any more (a lease lost while the refs were listed):
    // the branch's new head would become the baseline and its change would
    // never start. The owner's poll decides (as PollSources).
    if (!p.ok()) return;
    const std::string last = core::LastRanRevision(**p, a.name);
    if (!last.empty()) seen["refs/heads/" + remote->branch] = last;
  }
  const std::string default_ref = "refs/heads/" + remote->branch;
  json next = json::object();
  std::vector<std::pair<core::GitChange, core::TriggerMatch>> starts;
  for (const auto& r : *refs) {
    next[r.name] = r.commit_id;
    const std::string old = seen.value(r.name, "");
    if (old == r.commit_id) continue;
    core::GitChange c;
    c.ref = r.name;
    c.commit = r.commit_id;
    if (r.name.rfind("refs/heads/", 0) == 0) {
      // A new branch is compared with the action's branch as last seen.
      const std::string base = !old.empty() ? old : seen.value(default_ref, "");
      auto files = base.empty() ? Result<std::vector<std::string>>(NotFound("no base"))
                                : runners_.git->ChangedFiles(remote->url, base, r.commit_id, auth);
      c.files_known = files.ok();
      if (files.ok()) c.files = std::move(*files);
    }
    if (auto m = core::MatchTrigger(trigger, c, remote->branch)) {
      starts.emplace_back(std::move(c), std::move(*m));
    } else {
      PW_LOG(Debug) << pipeline << "/" << a.name << ": " << r.name << " moved to " << r.commit_id
                    << "; no trigger filter matches";
    }
  }
  if (!store_.PutKv(key, next.dump()).ok()) return;  // The next poll decides again.
  bool forget = false;
  for (const auto& [change, match] : starts) {
    PW_LOG(Info) << "trigger of " << pipeline << "/" << a.name << " matches " << change.ref
                 << " at " << change.commit << ": starting";
    auto id = StartAtCommit(pipeline, a.name, change.commit, "WebhookV2",
                            "Pipewright source poller: " + match.detail + " at " + change.commit);
    if (!id.ok()) {
      PW_LOG(Warning) << "trigger poller could not start " << pipeline << ": "
                      << id.status().ToString();
      // Forget this ref again, so the next poll tries the start again.
      if (seen.contains(change.ref)) {
        next[change.ref] = seen[change.ref];
      } else {
        next.erase(change.ref);
      }
      forget = true;
    }
  }
  if (forget) (void)store_.PutKv(key, next.dump());
}

Result<PutActionRevisionResult> Engine::PutActionRevision(const std::string& pipeline,
                                                          const std::string& stage,
                                                          const std::string& action,
                                                          const std::string& revision_id,
                                                          const std::string& caller) {
  core::SourceRevisionOverride o;
  {
    MutexLock lock(mu_);
    PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(pipeline));
    const core::StageDecl* s = p->decl.FindStage(stage);
    if (s == nullptr) {
      return NotFound("Stage '" + stage + "' does not exist in pipeline '" + pipeline + "'.",
                      "StageNotFoundException");
    }
    const core::ActionDecl* a = FindActionDecl(p->decl, stage, action);
    if (a == nullptr) {
      return NotFound("Action '" + action + "' does not exist in stage '" + stage +
                          "' of pipeline '" + pipeline + "'.",
                      "ActionNotFoundException");
    }
    if (a->type.category != "Source" || p->decl.StageIndex(stage) != 0) {
      return InvalidArgument("PutActionRevision gives a revision to a source action; '" + action +
                             "' is a " + a->type.category + " action in stage '" + stage + "'.");
    }
    if (IsGitSource(*a)) {
      o = {action, "COMMIT_ID", revision_id};
    } else if (a->type.owner == "AWS" && a->type.provider == "S3") {
      o = {action, "S3_OBJECT_VERSION_ID", revision_id};
    } else {
      return InvalidArgument(
          "PutActionRevision takes revisions for Git (a commit id) and S3 (an "
          "object version id) sources; '" +
          action + "' is " + a->type.ToString() + ".");
    }
    // The revision was run before: nothing new to start (newRevision false).
    std::string lower = revision_id;
    if (o.type == "COMMIT_ID") std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    for (auto e = p->executions.rbegin(); e != p->executions.rend(); ++e) {
      for (const auto& r : e->runs) {
        if (r.action == action && r.stage == stage && r.revision_id == lower) {
          return PutActionRevisionResult{false, e->id};
        }
      }
    }
  }
  PW_ASSIGN_OR_RETURN(std::string id,
                      StartExecution(pipeline, "", caller, "PutActionRevision", {}, {o}));
  return PutActionRevisionResult{true, id};
}

}  // namespace pw::engine
