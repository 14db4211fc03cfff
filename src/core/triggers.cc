#include "core/triggers.h"

#include <algorithm>

namespace pw::core {
namespace {

// Backtracking matcher. `budget` bounds the work a pathological pattern
// ("*a*a*a…" against a long path) can cost: exhausted, the text does not match.
bool Match(std::string_view p, std::string_view t, long& budget) {
  while (!p.empty()) {
    if (--budget < 0) return false;
    const char c = p.front();
    if (c == '\\' && p.size() > 1) {
      if (t.empty() || t.front() != p[1]) return false;
      p.remove_prefix(2);
      t.remove_prefix(1);
      continue;
    }
    if (c == '*') {
      const bool cross = p.size() > 1 && p[1] == '*';
      std::string_view rest = p.substr(cross ? 2 : 1);
      for (size_t i = 0; i <= t.size(); ++i) {
        if (Match(rest, t.substr(i), budget)) return true;
        if (i < t.size() && !cross && t[i] == '/') return false;
        if (budget < 0) return false;
      }
      return false;
    }
    if (c == '?') {
      if (t.empty() || t.front() == '/') return false;
      p.remove_prefix(1);
      t.remove_prefix(1);
      continue;
    }
    if (c == '[') {
      size_t close = p.find(']', 2);
      if (close != std::string_view::npos) {
        if (t.empty() || t.front() == '/') return false;
        std::string_view set = p.substr(1, close - 1);
        bool negate = !set.empty() && (set.front() == '!' || set.front() == '^');
        if (negate) set.remove_prefix(1);
        bool in = false;
        const char ch = t.front();
        for (size_t i = 0; i < set.size(); ++i) {
          if (i + 2 < set.size() && set[i + 1] == '-') {
            in = in || (set[i] <= ch && ch <= set[i + 2]);
            i += 2;
          } else {
            in = in || set[i] == ch;
          }
        }
        if (in == negate) return false;
        p.remove_prefix(close + 1);
        t.remove_prefix(1);
        continue;
      }
    }
    if (c == '{') {
      size_t close = p.find('}');
      if (close != std::string_view::npos) {
        std::string_view alts = p.substr(1, close - 1);
        std::string_view rest = p.substr(close + 1);
        size_t start = 0;
        for (;;) {
          size_t comma = alts.find(',', start);
          std::string candidate(alts.substr(
              start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
          candidate += rest;
          if (Match(candidate, t, budget)) return true;
          if (comma == std::string_view::npos || budget < 0) return false;
          start = comma + 1;
        }
      }
    }
    if (t.empty() || t.front() != c) return false;
    p.remove_prefix(1);
    t.remove_prefix(1);
  }
  return t.empty();
}

bool AnyMatch(const std::vector<std::string>& patterns, std::string_view text) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return GlobMatch(p, text); });
}

bool FilesMatch(const std::optional<GlobFilter>& f, const GitChange& change) {
  if (!f) return true;
  if (!change.files_known) return true;  // Cannot tell: do not hold a change back.
  return std::any_of(change.files.begin(), change.files.end(),
                     [&](const std::string& file) { return f->Matches(file); });
}

std::string Describe(const char* what, const std::optional<GlobFilter>& f) {
  if (!f) return "";
  std::string s = std::string(", ") + what;
  for (const auto& p : f->includes) s += " +" + p;
  for (const auto& p : f->excludes) s += " -" + p;
  return s;
}

constexpr std::string_view kHeads = "refs/heads/";
constexpr std::string_view kTags = "refs/tags/";

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  long budget = 200000;
  return Match(pattern, text, budget);
}

bool GlobFilter::Matches(std::string_view text) const {
  if (AnyMatch(excludes, text)) return false;
  return includes.empty() || AnyMatch(includes, text);
}

std::optional<TriggerMatch> MatchTrigger(const TriggerDecl& trigger, const GitChange& change,
                                         std::string_view default_branch) {
  const std::string_view ref = change.ref;
  const bool is_tag = ref.substr(0, kTags.size()) == kTags;
  const bool is_branch = ref.substr(0, kHeads.size()) == kHeads;
  const std::string_view name = ref.substr(is_tag ? kTags.size() : is_branch ? kHeads.size() : 0);
  if (change.kind == GitEventKind::kPush) {
    for (size_t i = 0; i < trigger.push.size(); ++i) {
      const PushFilter& f = trigger.push[i];
      const std::string which = "push filter " + std::to_string(i + 1);
      if (is_tag) {
        if (f.tags && f.tags->Matches(name)) {
          return TriggerMatch{which + ": tag " + std::string(name) + Describe("tags", f.tags)};
        }
        continue;
      }
      if (!is_branch || f.tags) continue;
      const bool branch_ok = f.branches ? f.branches->Matches(name) : name == default_branch;
      if (!branch_ok || !FilesMatch(f.file_paths, change)) continue;
      return TriggerMatch{which + ": branch " + std::string(name) +
                          Describe("branches", f.branches) + Describe("filePaths", f.file_paths)};
    }
    return std::nullopt;
  }
  if (!is_branch) return std::nullopt;
  for (size_t i = 0; i < trigger.pull_request.size(); ++i) {
    const PullRequestFilter& f = trigger.pull_request[i];
    if (!f.events.empty() &&
        std::find(f.events.begin(), f.events.end(), change.pull_request_event) == f.events.end()) {
      continue;
    }
    const bool branch_ok = f.branches ? f.branches->Matches(name) : name == default_branch;
    if (!branch_ok || !FilesMatch(f.file_paths, change)) continue;
    return TriggerMatch{"pull request filter " + std::to_string(i + 1) + ": " +
                        change.pull_request_event + " into " + std::string(name) +
                        Describe("branches", f.branches) + Describe("filePaths", f.file_paths)};
  }
  return std::nullopt;
}

bool DefaultTriggerMatches(const GitChange& change, std::string_view default_branch) {
  return change.kind == GitEventKind::kPush &&
         change.ref == std::string(kHeads) + std::string(default_branch);
}

}  // namespace pw::core
