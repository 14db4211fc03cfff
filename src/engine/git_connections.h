#pragma once

// Git connections: where the commits of the AWS Git-backed source actions come
// from. A `Source/AWS/CodeStarSourceConnection` action names a connection ARN
// and a repository ("owner/repo"); a `Source/AWS/CodeCommit` action names a
// repository. The server's configuration (`serve --git-connections FILE`)
// maps both to Git URLs (or local paths) that libgit2 can read, with
// optional credentials:
//
//   {"connections": [{"arn": "arn:aws:codeconnections:us-east-1:123456789012:connection/abc",
//                     "url": "https://github.com/{FullRepositoryId}.git",
//                     "webUrl": "https://github.com/{FullRepositoryId}",
//                     "providerType": "GitHub",
//                     "username": "x-access-token",
//                     "tokenFile": "/etc/pipewright/github-token"}],
//    "codecommit": {"url": "/srv/git/{RepositoryName}.git", "webUrl":
//    "https://git.example/{RepositoryName}"}}
//
//   PW_ASSIGN_OR_RETURN(GitConnections c, LoadGitConnections("/etc/pipewright/git.json"));
//   PW_ASSIGN_OR_RETURN(GitRemote remote, ResolveGitRemote(c, action));
//   // remote.url, remote.branch; CommitWebUrl(remote, sha) for revisionUrl.
//
// Parsing and mapping are pure; LoadGitConnections and CheckGitConnectionFiles
// read the disk. A token is never kept here: only the path of its file,
// read when it is used (ReadGitToken). Thread-compatible values.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "core/pipeline.h"

namespace pw::engine {

// Where one connection's repositories live. `url` and `web_url` may hold
// {FullRepositoryId}; `web_url` may also hold {CommitId} (else a commit's
// page is web_url + "/commit/" + id).
struct GitConnection {
  std::string arn;  // As written: codestar-connections or codeconnections.
  std::string url;
  std::string web_url;
  std::string provider_type = "GitHub";  // In revision summaries: {"ProviderType":…}.
  std::string username;                  // With token_file; default "x-access-token".
  std::string token_file;                // Empty: no credentials.
};

// Where CodeCommit repositories live: `url` and `web_url` may hold
// {RepositoryName} (and web_url {CommitId}).
struct CodeCommitMapping {
  std::string url;
  std::string web_url;
  std::string username;
  std::string token_file;
};

struct GitConnections {
  std::vector<GitConnection> connections;
  std::optional<CodeCommitMapping> codecommit;
};

// Parses the JSON document. Errors (kInvalidArgument) name the problem and
// where it is, e.g. "connections[0]: unknown key 'tokenfile' (known: arn,
// url, webUrl, providerType, username, tokenFile)": not JSON, unknown keys,
// missing or empty arn/url, a malformed or repeated ARN (the two ARN forms of
// one connection count as the same), a placeholder the field cannot hold,
// non-string values.
Result<GitConnections> ParseGitConnections(std::string_view json_text);
// Reads and parses `path`; kInvalidArgument as above, kNotFound if the file
// cannot be read.
Result<GitConnections> LoadGitConnections(const std::string& path);
// Every tokenFile exists and is readable (kFailedPrecondition naming the file).
Status CheckGitConnectionFiles(const GitConnections& c);

// True for owner-AWS Source actions of provider Git, CodeCommit or
// CodeStarSourceConnection.
bool IsGitSource(const core::ActionDecl& a);
// A Git source whose branch the poller follows: PollForSourceChanges (Git,
// CodeCommit) or DetectChanges (connections) is not "false".
bool FollowsBranch(const core::ActionDecl& a);

// The repository, branch and credentials of one Git source action (its
// configuration resolved).
struct GitRemote {
  std::string url;      // For runner::GitSource: a path or URL.
  std::string branch;   // BranchName (Source/Git: default "main").
  std::string web_url;  // With {CommitId} or to append "/commit/<id>"; may be empty.
  std::string provider_type;
  std::string username;
  std::string token_file;   // Empty: no credentials.
  std::string description;  // For messages, e.g. "repository o/r of connection arn:…".
};

// Errors: kInvalidArgument (wire ConfigurationError) for a malformed
// FullRepositoryId or RepositoryName; kNotFound (wire ConfigurationError) for
// an undeclared connection ARN or no CodeCommit mapping, saying where to
// declare it (`serve --git-connections FILE` and the JSON shape).
Result<GitRemote> ResolveGitRemote(const GitConnections& c, const core::ActionDecl& a);

// The web page of `commit_id`, or "" without a web URL.
std::string CommitWebUrl(const GitRemote& remote, const std::string& commit_id);

// "arn:aws:codestar-connections:…" and "arn:aws:codeconnections:…" of one
// connection compare equal.
bool SameConnectionArn(std::string_view a, std::string_view b);

// `url` with any "user:password@" removed, for messages.
std::string RedactUrl(const std::string& url);

// The token in `path` (trailing whitespace removed). Errors name the file,
// never its content.
Result<std::string> ReadGitToken(const std::string& path);

}  // namespace pw::engine
