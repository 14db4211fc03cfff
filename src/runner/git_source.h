#pragma once

// GitSource: the source action's view of Git, through libgit2 (never by
// shelling out to git). Resolves a branch head and exports a commit's files.
//
//   GitSource git("/var/lib/pipewright/git-cache");
//   PW_ASSIGN_OR_RETURN(GitRevision head, git.ResolveHead("file:///srv/git/app.git", "main"));
//   PW_RETURN_IF_ERROR(git.ExportCommit("file:///srv/git/app.git", head.commit_id, work_dir));
//
// A `repository` is either a local path (a working tree or a bare repository,
// used in place) or a URL libgit2 can fetch from (file://, https://, ssh://,
// git@host:path). Remote repositories are fetched into a bare mirror under
// cache_dir, one per URL, refreshed by every ResolveHead.
//
// Thread-safe: calls are serialised by an internal mutex (a fetch holds it).
// Two GitSource objects must not share a cache_dir.

#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

namespace pw::runner {

struct GitRevision {
  std::string commit_id;   // 40 lower-case hex digits.
  std::string message;     // Full commit message.
  double commit_time = 0;  // Committer time, epoch seconds.
  double author_time = 0;  // Author time, epoch seconds.
};

// HTTP(S) credentials for a remote repository, handed to libgit2's
// credential callback (user name and password/token). Empty password: none.
// Never logged and never part of an error message.
struct GitAuth {
  std::string username;
  std::string password;
};

// One branch or tag of a repository.
struct GitRef {
  std::string name;       // Full name: "refs/heads/main", "refs/tags/v1.0".
  std::string commit_id;  // The commit it names (annotated tags peeled).
};

class GitSource {
 public:
  // `cache_dir` holds the mirrors of remote repositories; created when first
  // needed.
  explicit GitSource(std::string cache_dir);
  GitSource(const GitSource&) = delete;
  GitSource& operator=(const GitSource&) = delete;

  // Returns the commit at the head of `branch` (a short name: "main").
  // Errors: kNotFound (no wire name) if the branch does not exist;
  // kUnavailable if the repository cannot be opened or fetched (missing path,
  // network, authentication); kInvalidArgument for an empty repository or an
  // invalid branch name; kInternal for other libgit2 failures.
  Result<GitRevision> ResolveHead(const std::string& repository, const std::string& branch,
                                  const GitAuth& auth = {});

  // Returns commit `commit_id` (40 hex digits, any case). For a remote
  // repository whose mirror lacks it, fetches once first. Errors: as
  // ExportCommit.
  Result<GitRevision> ResolveCommit(const std::string& repository, const std::string& commit_id,
                                    const GitAuth& auth = {});

  // Writes the files of commit `commit_id` (40 hex digits) into `dest_dir`
  // (created with parents; it should be empty): the tree only, no .git, raw
  // blob content (no attribute filters), executable bits as recorded,
  // symbolic links as links, submodules as empty directories. For a remote
  // repository whose mirror lacks the commit, fetches once first.
  // Errors: kInvalidArgument for a malformed id or a tree with unsafe names;
  // kNotFound if the commit does not exist; kUnavailable as for ResolveHead;
  // kInternal on I/O failure. On error `dest_dir` may hold a partial tree.
  Status ExportCommit(const std::string& repository, const std::string& commit_id,
                      const std::string& dest_dir, const GitAuth& auth = {});

  // Writes a clone at commit `commit_id` into `dest_dir` (created; should be
  // empty): the working tree checked out plus its `.git` directory, every
  // branch of the repository as a remote branch of "origin", `branch` (a
  // short name) created at the commit and checked out, and "origin" set to
  // `origin_url` (give one without credentials). So `git rev-parse HEAD` in
  // it prints `commit_id`. Errors: as ExportCommit.
  // Every branch and tag of `repository` (a remote one's mirror refreshed
  // first), sorted by name. Errors: as ResolveHead.
  Result<std::vector<GitRef>> ListRefs(const std::string& repository, const GitAuth& auth = {});

  // The paths that differ between the trees of commits `from_commit` and
  // `to_commit` (added, modified, deleted; both names of a rename), sorted,
  // without duplicates. An empty `from_commit` compares with an empty tree
  // (every file of `to_commit`). Errors: as ResolveCommit (kNotFound when a
  // commit is missing, e.g. after a force-push pruned it).
  Result<std::vector<std::string>> ChangedFiles(const std::string& repository,
                                                const std::string& from_commit,
                                                const std::string& to_commit,
                                                const GitAuth& auth = {});

  Status CloneCommit(const std::string& repository, const std::string& commit_id,
                     const std::string& branch, const std::string& dest_dir,
                     const std::string& origin_url, const GitAuth& auth = {});

 private:
  const std::string cache_dir_;
  std::mutex mu_;  // Serialises all libgit2 use and mirror updates.
};

}  // namespace pw::runner
