#include "engine/git_connections.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "runner/temp_dir.h"

namespace pw::engine::git_connections_test {
namespace {

constexpr const char* kArn = "arn:aws:codeconnections:us-east-1:123456789012:connection/abc-1";
constexpr const char* kOldArn =
    "arn:aws:codestar-connections:us-east-1:123456789012:connection/abc-1";

core::ActionDecl Connection(const std::string& arn, const std::string& repo,
                            const std::string& branch = "main") {
  core::ActionDecl a;
  a.name = "Src";
  a.type = {"Source", "AWS", "CodeStarSourceConnection", "1"};
  a.configuration = {{"ConnectionArn", arn}, {"FullRepositoryId", repo}, {"BranchName", branch}};
  return a;
}

core::ActionDecl CodeCommit(const std::string& name) {
  core::ActionDecl a;
  a.name = "Src";
  a.type = {"Source", "AWS", "CodeCommit", "1"};
  a.configuration = {{"RepositoryName", name}, {"BranchName", "main"}};
  return a;
}

std::string Error(std::string_view text) {
  auto c = ParseGitConnections(text);
  EXPECT_FALSE(c.ok()) << text;
  return c.ok() ? "" : c.status().message();
}

TEST(GitConnections, ParsesConnectionsAndCodeCommit) {
  auto c = ParseGitConnections(R"({
    "connections": [{"arn": "arn:aws:codeconnections:us-east-1:123456789012:connection/abc-1",
                     "url": "https://github.com/{FullRepositoryId}.git",
                     "webUrl": "https://github.com/{FullRepositoryId}",
                     "tokenFile": "/etc/pw/token"},
                    {"arn": "arn:aws:codestar-connections:eu-west-1:123456789012:connection/x",
                     "url": "/srv/gitlab/{FullRepositoryId}.git", "providerType": "GitLab",
                     "username": "oauth2", "tokenFile": "/etc/pw/gl"}],
    "codecommit": {"url": "/srv/git/{RepositoryName}.git",
                   "webUrl": "https://git.example/{RepositoryName}/c/{CommitId}"}})");
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->connections.size(), 2u);
  EXPECT_EQ(c->connections[0].provider_type, "GitHub");
  EXPECT_EQ(c->connections[0].username, "x-access-token") << "the default with a tokenFile";
  EXPECT_EQ(c->connections[1].provider_type, "GitLab");
  EXPECT_EQ(c->connections[1].username, "oauth2");
  ASSERT_TRUE(c->codecommit.has_value());
  EXPECT_EQ(c->codecommit->url, "/srv/git/{RepositoryName}.git");
  EXPECT_TRUE(ParseGitConnections("{}").ok());
}

TEST(GitConnections, ErrorsNameTheKeyAndPlace) {
  EXPECT_EQ(Error(R"({"connection": []})"),
            "unknown key 'connection' (known: connections, codecommit)");
  EXPECT_EQ(Error(R"({"connections": [{"arn": "arn:aws:codeconnections:us-east-1:123456789012:)"
                  R"(connection/a", "url": "u", "tokenfile": "/t"}]})"),
            "connections[0]: unknown key 'tokenfile' (known: arn, url, webUrl, providerType, "
            "username, tokenFile)");
  EXPECT_EQ(Error(R"({"codecommit": {"url": "/srv/{RepositoryName}", "web": "x"}})"),
            "codecommit: unknown key 'web' (known: url, webUrl, username, tokenFile)");
  EXPECT_EQ(Error(R"({"connections": [{"url": "u"}]})"), "connections[0]: arn is required");
  EXPECT_NE(Error(R"({"connections": [{"arn": "arn:aws:s3:::bucket", "url": "u"}]})")
                .find("is not a connection ARN"),
            std::string::npos);
  EXPECT_EQ(Error(R"({"connections": [{"arn": "arn:aws:codeconnections:us-east-1:123456789012:)"
                  R"(connection/a"}]})"),
            "connections[0].url: is required");
  EXPECT_EQ(Error(R"({"codecommit": {"url": "/srv/{FullRepositoryId}"}})"),
            "codecommit.url: unknown placeholder {FullRepositoryId} (allowed: {RepositoryName})");
  EXPECT_EQ(Error(R"({"codecommit": {"url": 3}})"), "codecommit.url: must be a string");
  EXPECT_EQ(Error("[1]"), "must be a JSON object");
  EXPECT_EQ(Error("{"), "not valid JSON");
  EXPECT_NE(Error(std::string(R"({"connections": [{"arn": ")") + kArn +
                  R"(", "url": "a"}, {"arn": ")" + kOldArn + R"(", "url": "b"}]})")
                .find("declared twice"),
            std::string::npos)
      << "both ARN forms name one connection";
  EXPECT_EQ(Error(std::string(R"({"connections": [{"arn": ")") + kArn +
                  R"(", "url": "a", "username": "u"}]})"),
            "connections[0]: username needs tokenFile (the file holding the token)");
}

TEST(GitConnections, MapsConnectionInEitherArnForm) {
  auto c = ParseGitConnections(std::string(R"({"connections": [{"arn": ")") + kArn +
                               R"(", "url": "https://github.com/{FullRepositoryId}.git",
                               "webUrl": "https://github.com/{FullRepositoryId}"}]})");
  ASSERT_TRUE(c.ok());
  for (const char* arn : {kArn, kOldArn}) {
    auto r = ResolveGitRemote(*c, Connection(arn, "octo/app", "dev"));
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->url, "https://github.com/octo/app.git");
    EXPECT_EQ(r->branch, "dev");
    EXPECT_EQ(r->provider_type, "GitHub");
    EXPECT_EQ(CommitWebUrl(*r, "abc"), "https://github.com/octo/app/commit/abc");
  }
}

TEST(GitConnections, UnknownConnectionSaysWhereToDeclareIt) {
  GitConnections none;
  auto r = ResolveGitRemote(none, Connection(kArn, "octo/app"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().wire_name(), "ConfigurationError");
  EXPECT_NE(r.status().message().find(std::string("The connection ") + kArn +
                                      " is not declared on this server"),
            std::string::npos);
  EXPECT_NE(r.status().message().find("serve --git-connections FILE"), std::string::npos);
  EXPECT_NE(r.status().message().find("{\"connections\": [{\"arn\""), std::string::npos);

  auto cc = ResolveGitRemote(none, CodeCommit("app"));
  ASSERT_FALSE(cc.ok());
  EXPECT_NE(cc.status().message().find("{\"codecommit\": {\"url\""), std::string::npos);
}

TEST(GitConnections, MapsCodeCommitWithCommitPlaceholder) {
  auto c = ParseGitConnections(R"({"codecommit": {"url": "/srv/git/{RepositoryName}.git",
                                  "webUrl": "https://git.example/{RepositoryName}/c/{CommitId}"}})");
  ASSERT_TRUE(c.ok());
  auto r = ResolveGitRemote(*c, CodeCommit("my-app.v2"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->url, "/srv/git/my-app.v2.git");
  EXPECT_EQ(CommitWebUrl(*r, "f00"), "https://git.example/my-app.v2/c/f00");
}

TEST(GitConnections, RefusesRepositoryNamesThatLeaveTheTemplate) {
  auto c = ParseGitConnections(std::string(R"({"codecommit": {"url": "/srv/git/{RepositoryName}"},
      "connections": [{"arn": ")") +
                               kArn + R"(", "url": "/srv/{FullRepositoryId}"}]})");
  ASSERT_TRUE(c.ok());
  for (const char* name : {"..", "a/b", "", "a b", "."}) {
    auto r = ResolveGitRemote(*c, CodeCommit(name));
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().wire_name(), "ConfigurationError");
  }
  for (const char* repo : {"../x", "owner", "owner/..", "/owner/x", "o/r/", "o//r"}) {
    EXPECT_FALSE(ResolveGitRemote(*c, Connection(kArn, repo)).ok()) << repo;
  }
  EXPECT_TRUE(ResolveGitRemote(*c, Connection(kArn, "group/sub/repo")).ok());
}

TEST(GitConnections, FollowsBranchByProvider) {
  core::ActionDecl a = Connection(kArn, "o/r");
  EXPECT_TRUE(FollowsBranch(a));
  a.configuration["DetectChanges"] = "false";
  EXPECT_FALSE(FollowsBranch(a));
  a.configuration["PollForSourceChanges"] = "true";
  EXPECT_FALSE(FollowsBranch(a)) << "connections use DetectChanges";
  core::ActionDecl cc = CodeCommit("app");
  EXPECT_TRUE(FollowsBranch(cc));
  cc.configuration["PollForSourceChanges"] = "false";
  EXPECT_FALSE(FollowsBranch(cc));
  core::ActionDecl s3;
  s3.type = {"Source", "AWS", "S3", "1"};
  EXPECT_FALSE(FollowsBranch(s3));
}

TEST(GitConnections, RedactsCredentialsInUrls) {
  EXPECT_EQ(RedactUrl("https://user:secret@github.com/o/r.git"), "https://github.com/o/r.git");
  EXPECT_EQ(RedactUrl("https://github.com/o/r@x"), "https://github.com/o/r@x");
  EXPECT_EQ(RedactUrl("/srv/git/a.git"), "/srv/git/a.git");
}

TEST(GitConnections, TokenFilesAreCheckedAndReadWithoutTheirContentInErrors) {
  auto tmp = *runner::ScopedTempDir::Create("gitconn");
  const std::string token = tmp.path() + "/token";
  std::ofstream(token) << "s3cr3t-token\n";
  EXPECT_EQ(*ReadGitToken(token), "s3cr3t-token");
  std::ofstream(tmp.path() + "/empty").close();
  auto empty = ReadGitToken(tmp.path() + "/empty");
  ASSERT_FALSE(empty.ok());
  auto c = ParseGitConnections(std::string(R"({"connections": [{"arn": ")") + kArn +
                               R"(", "url": "u", "tokenFile": ")" + tmp.path() + R"(/missing"}]})");
  ASSERT_TRUE(c.ok());
  Status s = CheckGitConnectionFiles(*c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("connections[0].tokenFile"), std::string::npos);
  EXPECT_NE(s.message().find("/missing"), std::string::npos);
  c->connections[0].token_file = token;
  EXPECT_TRUE(CheckGitConnectionFiles(*c).ok());
}

}  // namespace
}  // namespace pw::engine::git_connections_test
