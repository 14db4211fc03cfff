#pragma once

// Trigger filters of V2 pipelines (the model's PipelineTriggerDeclaration,
// gitConfiguration push and pullRequest) and the one function that decides
// whether a Git change starts an execution. Pure: no I/O; polling and
// webhooks describe what changed as a GitChange and ask MatchTrigger.
// Thread-compatible.
//
//   core::GitChange c{core::GitEventKind::kPush, "refs/heads/main", sha, files};
//   if (auto m = core::MatchTrigger(trigger, c, "main")) start(m->detail);
//
// Glob patterns follow AWS's documented syntax (the "glob" syntax of Java's
// PathMatcher): `*` any characters of one path component (not `/`), `**` any
// characters across `/`, `?` one character (not `/`), `[abc]`, `[a-z]`,
// `[!a]` one character of a set (not `/`), `{a,b}` one of the alternatives,
// `\` escapes the next character. The whole text must match.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pw::core {

// includes/excludes of a filter (GitBranchFilterCriteria, GitFilePathFilterCriteria,
// GitTagFilterCriteria). Excludes win over includes; empty includes mean "everything".
struct GlobFilter {
  std::vector<std::string> includes;
  std::vector<std::string> excludes;
  // True when `text` matches no exclude and (no includes, or one include).
  bool Matches(std::string_view text) const;
};

struct PushFilter {
  std::optional<GlobFilter> tags;
  std::optional<GlobFilter> branches;
  std::optional<GlobFilter> file_paths;
};

// Pull request events as the model names them.
inline constexpr std::string_view kPullRequestEvents[] = {"OPEN", "UPDATED", "CLOSED"};

struct PullRequestFilter {
  std::vector<std::string> events;  // Empty: every event.
  std::optional<GlobFilter> branches;
  std::optional<GlobFilter> file_paths;
};

struct TriggerDecl {
  std::string provider_type;  // The model's GitConfiguration provider: CodeStarSourceConnection.
  std::string source_action;
  std::vector<PushFilter> push;
  std::vector<PullRequestFilter> pull_request;
};

enum class GitEventKind { kPush, kPullRequest };

// What happened in the repository.
struct GitChange {
  GitEventKind kind = GitEventKind::kPush;
  // Push: the full ref pushed ("refs/heads/main", "refs/tags/v1.0").
  // Pull request: the destination branch's full ref.
  std::string ref;
  std::string commit;              // The commit to run.
  std::vector<std::string> files;  // Paths changed (added, modified, deleted, renamed from/to).
  bool files_known = true;         // False: the changed files could not be determined.
  std::string pull_request_event;  // OPEN, UPDATED or CLOSED (pull requests only).
};

struct TriggerMatch {
  std::string detail;  // Which filter matched and what: recorded as the execution's triggerDetail.
};

// Whether `text` matches the glob `pattern` (whole text).
bool GlobMatch(std::string_view pattern, std::string_view text);

// Whether `change` starts an execution under `trigger`. Push filters: a tag
// push matches a filter with `tags` whose filter accepts the tag name; a
// branch push matches a filter without `tags` whose `branches` accept the
// branch (absent `branches`: only `default_branch`, the action's BranchName)
// and whose `filePaths`, if given, accept at least one changed file.
// Pull requests likewise with `events`. Any matching filter is enough;
// nothing matches when the trigger has no filter of the change's kind.
std::optional<TriggerMatch> MatchTrigger(const TriggerDecl& trigger, const GitChange& change,
                                         std::string_view default_branch);

// The change a source without trigger filters follows: a push to its branch.
bool DefaultTriggerMatches(const GitChange& change, std::string_view default_branch);

}  // namespace pw::core
