#include "core/triggers.h"

#include <gtest/gtest.h>

namespace pw::core::triggers_test {
namespace {

struct GlobCase {
  const char* pattern;
  const char* text;
  bool match;
};

TEST(GlobMatch, FollowsTheDocumentedSyntax) {
  const GlobCase cases[] = {
      {"src/**", "src/a.c", true},
      {"src/**", "src/a/b/c.c", true},
      {"src/**", "src", false},
      {"src/**", "docs/a.md", false},
      {"src/*", "src/a.c", true},
      {"src/*", "src/a/b.c", false},
      {"*.java", "Main.java", true},
      {"*.java", "src/Main.java", false},
      {"**.java", "src/Main.java", true},
      {"**/*.java", "src/Main.java", true},
      {"**/*.java", "Main.java", false},  // As Java's glob: "**/" needs a slash.
      {"*.*", "a.b", true},
      {"*.*", "ab", false},
      {"*.{java,class}", "A.class", true},
      {"*.{java,class}", "A.java", true},
      {"*.{java,class}", "A.jar", false},
      {"foo.?", "foo.c", true},
      {"foo.?", "foo.cc", false},
      {"foo?bar", "foo/bar", false},
      {"[abc].txt", "b.txt", true},
      {"[abc].txt", "d.txt", false},
      {"[a-c].txt", "c.txt", true},
      {"[!a-c].txt", "d.txt", true},
      {"[!a-c].txt", "a.txt", false},
      {"a[/]b", "a/b", false},
      {"\\*.txt", "*.txt", true},
      {"\\*.txt", "a.txt", false},
      {"my-file.jar", "my-file.jar", true},
      {"my-file.jar", "sub/my-file.jar", false},
      {"feature/**", "feature/x/y", true},
      {"feature/*", "feature/x", true},
      {"main", "main", true},
      {"main", "mainline", false},
      {"release-v*", "release-v1", true},
      {"", "", true},
      {"", "a", false},
      {"[unclosed", "[unclosed", true},
      {"{unclosed", "{unclosed", true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(GlobMatch(c.pattern, c.text), c.match) << c.pattern << " vs " << c.text;
  }
}

TEST(GlobMatch, PathologicalPatternEndsQuickly) {
  std::string pattern;
  for (int i = 0; i < 30; ++i) pattern += "**a";
  pattern += "b";
  EXPECT_FALSE(GlobMatch(pattern, std::string(200, 'a')));
}

TEST(GlobFilter, ExcludesWinAndEmptyIncludesMeanAll) {
  GlobFilter f{{"src/**"}, {"src/gen/**"}};
  EXPECT_TRUE(f.Matches("src/a.c"));
  EXPECT_FALSE(f.Matches("src/gen/a.c"));
  EXPECT_FALSE(f.Matches("docs/a.md"));
  GlobFilter only_excludes{{}, {"**.md"}};
  EXPECT_TRUE(only_excludes.Matches("a.c"));
  EXPECT_FALSE(only_excludes.Matches("docs/a.md"));
}

GitChange Push(std::string ref, std::vector<std::string> files) {
  GitChange c;
  c.ref = std::move(ref);
  c.commit = std::string(40, 'a');
  c.files = std::move(files);
  return c;
}

TEST(MatchTrigger, FilePathsOnTheDefaultBranch) {
  TriggerDecl t;
  t.source_action = "Src";
  t.push.push_back({std::nullopt, std::nullopt, GlobFilter{{"src/**"}, {}}});
  EXPECT_FALSE(MatchTrigger(t, Push("refs/heads/main", {"docs/a.md"}), "main"));
  auto m = MatchTrigger(t, Push("refs/heads/main", {"docs/a.md", "src/x.c"}), "main");
  ASSERT_TRUE(m);
  EXPECT_NE(m->detail.find("push filter 1: branch main"), std::string::npos) << m->detail;
  EXPECT_NE(m->detail.find("filePaths +src/**"), std::string::npos) << m->detail;
  // Absent branches: only the action's branch.
  EXPECT_FALSE(MatchTrigger(t, Push("refs/heads/dev", {"src/x.c"}), "main"));
  // A tag push never matches a filter without tags.
  EXPECT_FALSE(MatchTrigger(t, Push("refs/tags/v1", {"src/x.c"}), "main"));
  // Files unknown (history rewritten): not held back.
  GitChange unknown = Push("refs/heads/main", {});
  unknown.files_known = false;
  EXPECT_TRUE(MatchTrigger(t, unknown, "main"));
}

TEST(MatchTrigger, Branches) {
  TriggerDecl t;
  t.push.push_back(
      {std::nullopt, GlobFilter{{"release/**", "main"}, {"release/old/**"}}, std::nullopt});
  EXPECT_TRUE(MatchTrigger(t, Push("refs/heads/main", {}), "main"));
  EXPECT_TRUE(MatchTrigger(t, Push("refs/heads/release/1.0", {}), "main"));
  EXPECT_FALSE(MatchTrigger(t, Push("refs/heads/release/old/1", {}), "main"));
  EXPECT_FALSE(MatchTrigger(t, Push("refs/heads/feature", {}), "main"));
  EXPECT_FALSE(MatchTrigger(t, Push("refs/tags/main", {}), "main"));
}

TEST(MatchTrigger, Tags) {
  TriggerDecl t;
  t.push.push_back({GlobFilter{{"v*"}, {"v0*"}}, std::nullopt, std::nullopt});
  EXPECT_TRUE(MatchTrigger(t, Push("refs/tags/v1.2", {}), "main"));
  EXPECT_FALSE(MatchTrigger(t, Push("refs/tags/v0.9", {}), "main"));
  EXPECT_FALSE(MatchTrigger(t, Push("refs/tags/release", {}), "main"));
  // A filter with tags does not match branch pushes.
  EXPECT_FALSE(MatchTrigger(t, Push("refs/heads/main", {"a"}), "main"));
}

TEST(MatchTrigger, AnyFilterIsEnough) {
  TriggerDecl t;
  t.push.push_back({GlobFilter{{"v*"}, {}}, std::nullopt, std::nullopt});
  t.push.push_back({std::nullopt, GlobFilter{{"dev"}, {}}, GlobFilter{{"src/**"}, {}}});
  EXPECT_TRUE(MatchTrigger(t, Push("refs/tags/v1", {}), "main"));
  auto m = MatchTrigger(t, Push("refs/heads/dev", {"src/a"}), "main");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->detail.rfind("push filter 2", 0), 0u) << m->detail;
  EXPECT_FALSE(MatchTrigger(t, Push("refs/heads/dev", {"doc/a"}), "main"));
}

TEST(MatchTrigger, PullRequests) {
  TriggerDecl t;
  t.pull_request.push_back({{"OPEN", "UPDATED"}, GlobFilter{{"main"}, {}}, std::nullopt});
  GitChange c = Push("refs/heads/main", {"a"});
  c.kind = GitEventKind::kPullRequest;
  c.pull_request_event = "OPEN";
  EXPECT_TRUE(MatchTrigger(t, c, "main"));
  c.pull_request_event = "CLOSED";
  EXPECT_FALSE(MatchTrigger(t, c, "main"));
  c.pull_request_event = "UPDATED";
  c.ref = "refs/heads/other";
  EXPECT_FALSE(MatchTrigger(t, c, "main"));
  // Pushes do not match pull request filters.
  EXPECT_FALSE(MatchTrigger(t, Push("refs/heads/main", {"a"}), "main"));
  TriggerDecl all_events;
  all_events.pull_request.push_back({{}, std::nullopt, GlobFilter{{"src/**"}, {}}});
  c.ref = "refs/heads/main";
  c.pull_request_event = "CLOSED";
  c.files = {"src/a"};
  EXPECT_TRUE(MatchTrigger(all_events, c, "main"));
  c.files = {"doc/a"};
  EXPECT_FALSE(MatchTrigger(all_events, c, "main"));
}

TEST(DefaultTriggerMatches, PushToTheActionsBranchOnly) {
  EXPECT_TRUE(DefaultTriggerMatches(Push("refs/heads/main", {}), "main"));
  EXPECT_FALSE(DefaultTriggerMatches(Push("refs/heads/dev", {}), "main"));
  EXPECT_FALSE(DefaultTriggerMatches(Push("refs/tags/main", {}), "main"));
}

}  // namespace
}  // namespace pw::core::triggers_test
