#include "runner/git_source.h"

#include <fcntl.h>
#include <git2.h>
#include <openssl/evp.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "common/status.h"

namespace pw::runner {
namespace {

namespace fs = std::filesystem;

// Owning handles for libgit2 objects.
template <typename T, void (*Free)(T*)>
struct GitDeleter {
  void operator()(T* p) const { Free(p); }
};
template <typename T, void (*Free)(T*)>
using GitPtr = std::unique_ptr<T, GitDeleter<T, Free>>;
using RepoPtr = GitPtr<git_repository, git_repository_free>;
using RefPtr = GitPtr<git_reference, git_reference_free>;
using ObjectPtr = GitPtr<git_object, git_object_free>;
using CommitPtr = GitPtr<git_commit, git_commit_free>;
using TreePtr = GitPtr<git_tree, git_tree_free>;
using BlobPtr = GitPtr<git_blob, git_blob_free>;
using RemotePtr = GitPtr<git_remote, git_remote_free>;
using DiffPtr = GitPtr<git_diff, git_diff_free>;
using RefIterPtr = GitPtr<git_reference_iterator, git_reference_iterator_free>;

void InitLibgit2Once() {
  static std::once_flag once;
  // Never shut down: other GitSource objects may appear at any time.
  std::call_once(once, [] { git_libgit2_init(); });
}

std::string LastGitError() {
  const git_error* error = git_error_last();
  return error != nullptr && error->message != nullptr ? error->message : "unknown libgit2 error";
}

// URLs and scp-like "user@host:path" are remote; anything else is a path.
bool IsRemote(const std::string& repository) {
  if (repository.find("://") != std::string::npos) return true;
  size_t colon = repository.find(':');
  return colon != std::string::npos && repository.find('/') > colon;
}

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex += kHex[md[i] >> 4];
    hex += kHex[md[i] & 0xf];
  }
  return hex;
}

std::string OidHex(const git_oid* oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, oid);
  return buf;
}

// libgit2 asks for credentials when the server wants them; it asks again
// when they are refused, so the second request ends the attempt.
struct CredentialRequest {
  const GitAuth* auth = nullptr;
  int calls = 0;
};

int ProvideCredentials(git_credential** out, const char* /*url*/, const char* /*user_from_url*/,
                       unsigned int allowed_types, void* payload) {
  auto* request = static_cast<CredentialRequest*>(payload);
  if (request == nullptr || request->auth == nullptr || request->auth->password.empty() ||
      (allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT) == 0) {
    return GIT_PASSTHROUGH;
  }
  if (++request->calls > 1) {
    git_error_set_str(GIT_ERROR_NET, "the server refused the configured credentials");
    return GIT_EAUTH;
  }
  return git_credential_userpass_plaintext_new(out, request->auth->username.c_str(),
                                               request->auth->password.c_str());
}

// Fetches every branch of `url` into `repo`, pruning deleted ones.
Status Fetch(git_repository* repo, const std::string& url, const GitAuth& auth) {
  git_remote* raw_remote = nullptr;
  git_remote_create_options create = GIT_REMOTE_CREATE_OPTIONS_INIT;
  create.repository = repo;
  // Skipping url.<base>.insteadOf also avoids a libgit2 1.5 leak: every config
  // entry its regex does not match leaks a pcre2 match block (~20 KiB), fixed
  // upstream in libgit2#6382 but not in Debian bookworm's 1.5.1.
  create.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
  if (git_remote_create_with_opts(&raw_remote, url.c_str(), &create) != 0) {
    return Unavailable("repository " + url + ": " + LastGitError());
  }
  RemotePtr remote(raw_remote);
  // Branches and tags (trigger filters follow both).
  char heads[] = "+refs/heads/*:refs/heads/*";
  char tags[] = "+refs/tags/*:refs/tags/*";
  char* refspecs[] = {heads, tags};
  git_strarray specs = {refspecs, 2};
  git_fetch_options options = GIT_FETCH_OPTIONS_INIT;
  options.prune = GIT_FETCH_PRUNE;
  options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  CredentialRequest request{&auth};
  options.callbacks.credentials = ProvideCredentials;
  options.callbacks.payload = &request;
  if (git_remote_fetch(remote.get(), &specs, &options, nullptr) != 0) {
    return Unavailable("fetching " + url + ": " + LastGitError());
  }
  return Status::Ok();
}

// Rejects tree entry names that could leave the export directory or plant a
// repository in it.
bool SafeName(const char* name) {
  std::string_view n(name);
  if (n.empty() || n == "." || n == ".." || n.find('/') != std::string_view::npos) return false;
  return strcasecmp(name, ".git") != 0;
}

Status WriteBlob(git_repository* repo, const git_tree_entry* entry, const fs::path& path) {
  git_blob* raw_blob = nullptr;
  if (git_blob_lookup(&raw_blob, repo, git_tree_entry_id(entry)) != 0) {
    return Internal("blob " + path.string() + ": " + LastGitError());
  }
  BlobPtr blob(raw_blob);
  const char* data = static_cast<const char*>(git_blob_rawcontent(blob.get()));
  const size_t size = static_cast<size_t>(git_blob_rawsize(blob.get()));
  const git_filemode_t mode = git_tree_entry_filemode(entry);
  if (mode == GIT_FILEMODE_LINK) {
    if (symlink(std::string(data, size).c_str(), path.c_str()) != 0) {
      return Internal("symlink " + path.string() + ": " + std::strerror(errno));
    }
    return Status::Ok();
  }
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Internal("create " + path.string() + ": " + std::strerror(errno));
  Status status;
  for (size_t off = 0; off < size;) {
    ssize_t n = write(fd, data + off, size - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = Internal("write " + path.string() + ": " + std::strerror(errno));
      break;
    }
    off += static_cast<size_t>(n);
  }
  // fchmod rather than open's mode, so the umask cannot drop the bits.
  if (status.ok() && fchmod(fd, mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644) != 0) {
    status = Internal("chmod " + path.string() + ": " + std::strerror(errno));
  }
  close(fd);
  return status;
}

Status WriteTree(git_repository* repo, const git_tree* tree, const fs::path& dir) {
  const size_t count = git_tree_entrycount(tree);
  for (size_t i = 0; i < count; ++i) {
    const git_tree_entry* entry = git_tree_entry_byindex(tree, i);
    const char* name = git_tree_entry_name(entry);
    if (!SafeName(name)) {
      return InvalidArgument("unsafe path in commit tree: '" + std::string(name) + "'", "");
    }
    const fs::path path = dir / name;
    switch (git_tree_entry_filemode(entry)) {
      case GIT_FILEMODE_TREE: {
        std::error_code ec;
        fs::create_directory(path, ec);
        if (ec) return Internal("mkdir " + path.string() + ": " + ec.message());
        git_tree* raw_subtree = nullptr;
        if (git_tree_lookup(&raw_subtree, repo, git_tree_entry_id(entry)) != 0) {
          return Internal("tree " + path.string() + ": " + LastGitError());
        }
        TreePtr subtree(raw_subtree);
        PW_RETURN_IF_ERROR(WriteTree(repo, subtree.get(), path));
        break;
      }
      case GIT_FILEMODE_BLOB:
      case GIT_FILEMODE_BLOB_EXECUTABLE:
      case GIT_FILEMODE_LINK:
        PW_RETURN_IF_ERROR(WriteBlob(repo, entry, path));
        break;
      case GIT_FILEMODE_COMMIT: {  // A submodule: git leaves an empty directory too.
        std::error_code ec;
        fs::create_directory(path, ec);
        if (ec) return Internal("mkdir " + path.string() + ": " + ec.message());
        break;
      }
      default:
        return InvalidArgument("unknown file mode in commit tree at " + path.string(), "");
    }
  }
  return Status::Ok();
}

// Opens a local repository in place, or the mirror of a remote one (created
// and, if `fetch`, refreshed first).
Result<RepoPtr> OpenRepository(const std::string& cache_dir, const std::string& repository,
                               bool fetch, const GitAuth& auth) {
  if (repository.empty()) return InvalidArgument("empty repository", "");
  git_repository* raw = nullptr;
  if (!IsRemote(repository)) {
    if (git_repository_open_ext(&raw, repository.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) !=
        0) {
      return Unavailable("repository " + repository + ": " + LastGitError());
    }
    return RepoPtr(raw);
  }
  const std::string mirror = cache_dir + "/" + Sha256Hex(repository).substr(0, 32) + ".git";
  std::error_code ec;
  if (fs::exists(mirror + "/HEAD", ec)) {
    if (git_repository_open_bare(&raw, mirror.c_str()) != 0) {
      return Internal("git mirror " + mirror + ": " + LastGitError());
    }
  } else {
    fs::create_directories(cache_dir, ec);
    if (git_repository_init(&raw, mirror.c_str(), /*is_bare=*/1) != 0) {
      return Internal("creating git mirror " + mirror + ": " + LastGitError());
    }
    fetch = true;
  }
  RepoPtr repo(raw);
  if (fetch) PW_RETURN_IF_ERROR(Fetch(repo.get(), repository, auth));
  return repo;
}

Result<CommitPtr> LookupCommit(git_repository* repo, const git_oid& oid) {
  git_commit* raw = nullptr;
  int rc = git_commit_lookup(&raw, repo, &oid);
  if (rc == GIT_ENOTFOUND) return NotFound("commit " + OidHex(&oid) + " not found");
  if (rc != 0) return Internal("commit " + OidHex(&oid) + ": " + LastGitError());
  return CommitPtr(raw);
}

GitRevision RevisionOf(const git_commit* commit) {
  GitRevision revision;
  revision.commit_id = OidHex(git_commit_id(commit));
  const char* message = git_commit_message(commit);
  revision.message = message != nullptr ? message : "";
  revision.commit_time = static_cast<double>(git_commit_time(commit));
  const git_signature* author = git_commit_author(commit);
  revision.author_time = author != nullptr ? static_cast<double>(author->when.time) : 0;
  return revision;
}

Result<git_oid> ParseCommitId(const std::string& commit_id) {
  git_oid oid;
  if (commit_id.size() != GIT_OID_HEXSZ || git_oid_fromstr(&oid, commit_id.c_str()) != 0) {
    return InvalidArgument("malformed commit id '" + commit_id + "'", "");
  }
  return oid;
}

// The commit in `repo`; a remote repository's mirror that lacks it is
// fetched once first.
Result<CommitPtr> FindCommit(git_repository* repo, const std::string& repository,
                             const git_oid& oid, const GitAuth& auth) {
  Result<CommitPtr> commit = LookupCommit(repo, oid);
  if (commit.status().code() == StatusCode::kNotFound && IsRemote(repository)) {
    PW_RETURN_IF_ERROR(Fetch(repo, repository, auth));  // The mirror may be behind.
    commit = LookupCommit(repo, oid);
  }
  return commit;
}

}  // namespace

GitSource::GitSource(std::string cache_dir) : cache_dir_(std::move(cache_dir)) {
  InitLibgit2Once();
}

Result<GitRevision> GitSource::ResolveHead(const std::string& repository, const std::string& branch,
                                           const GitAuth& auth) {
  const std::string ref_name = "refs/heads/" + branch;
  if (branch.empty() || !git_reference_is_valid_name(ref_name.c_str())) {
    return InvalidArgument("invalid branch name '" + branch + "'", "");
  }
  std::lock_guard<std::mutex> lock(mu_);
  PW_ASSIGN_OR_RETURN(RepoPtr repo, OpenRepository(cache_dir_, repository, /*fetch=*/true, auth));
  git_reference* raw_ref = nullptr;
  int rc = git_reference_lookup(&raw_ref, repo.get(), ref_name.c_str());
  if (rc == GIT_ENOTFOUND) {
    return NotFound("branch '" + branch + "' not found in " + repository);
  }
  if (rc != 0) return Internal("branch " + branch + ": " + LastGitError());
  RefPtr ref(raw_ref);
  git_object* raw_object = nullptr;
  if (git_reference_peel(&raw_object, ref.get(), GIT_OBJECT_COMMIT) != 0) {
    return Internal("branch " + branch + " does not name a commit: " + LastGitError());
  }
  ObjectPtr object(raw_object);
  PW_ASSIGN_OR_RETURN(CommitPtr commit, LookupCommit(repo.get(), *git_object_id(object.get())));
  return RevisionOf(commit.get());
}

Result<GitRevision> GitSource::ResolveCommit(const std::string& repository,
                                             const std::string& commit_id, const GitAuth& auth) {
  PW_ASSIGN_OR_RETURN(git_oid oid, ParseCommitId(commit_id));
  std::lock_guard<std::mutex> lock(mu_);
  PW_ASSIGN_OR_RETURN(RepoPtr repo, OpenRepository(cache_dir_, repository, /*fetch=*/false, auth));
  PW_ASSIGN_OR_RETURN(CommitPtr commit, FindCommit(repo.get(), repository, oid, auth));
  return RevisionOf(commit.get());
}

Status GitSource::ExportCommit(const std::string& repository, const std::string& commit_id,
                               const std::string& dest_dir, const GitAuth& auth) {
  PW_ASSIGN_OR_RETURN(git_oid oid, ParseCommitId(commit_id));
  std::lock_guard<std::mutex> lock(mu_);
  PW_ASSIGN_OR_RETURN(RepoPtr repo, OpenRepository(cache_dir_, repository, /*fetch=*/false, auth));
  Result<CommitPtr> commit = FindCommit(repo.get(), repository, oid, auth);
  if (!commit.ok()) return commit.status();
  git_tree* raw_tree = nullptr;
  if (git_commit_tree(&raw_tree, commit->get()) != 0) {
    return Internal("tree of " + commit_id + ": " + LastGitError());
  }
  TreePtr tree(raw_tree);
  std::error_code ec;
  fs::create_directories(dest_dir, ec);
  if (ec) return Internal("mkdir " + dest_dir + ": " + ec.message());
  return WriteTree(repo.get(), tree.get(), dest_dir);
}

Status GitSource::CloneCommit(const std::string& repository, const std::string& commit_id,
                              const std::string& branch, const std::string& dest_dir,
                              const std::string& origin_url, const GitAuth& auth) {
  PW_ASSIGN_OR_RETURN(git_oid oid, ParseCommitId(commit_id));
  const std::string ref_name = "refs/heads/" + branch;
  if (branch.empty() || !git_reference_is_valid_name(ref_name.c_str())) {
    return InvalidArgument("invalid branch name '" + branch + "'", "");
  }
  std::lock_guard<std::mutex> lock(mu_);
  // The source of the clone: the repository itself, or its mirror, made to
  // hold the commit first.
  std::string source;
  {
    PW_ASSIGN_OR_RETURN(RepoPtr repo,
                        OpenRepository(cache_dir_, repository, /*fetch=*/false, auth));
    PW_ASSIGN_OR_RETURN(CommitPtr commit, FindCommit(repo.get(), repository, oid, auth));
    source = git_repository_path(repo.get());
  }
  std::error_code ec;
  fs::create_directories(dest_dir, ec);
  if (ec) return Internal("mkdir " + dest_dir + ": " + ec.message());
  git_repository* raw = nullptr;
  if (git_repository_init(&raw, dest_dir.c_str(), /*is_bare=*/0) != 0) {
    return Internal("creating a repository in " + dest_dir + ": " + LastGitError());
  }
  RepoPtr clone(raw);
  git_remote* raw_remote = nullptr;
  git_remote_create_options create = GIT_REMOTE_CREATE_OPTIONS_INIT;
  create.repository = clone.get();
  create.name = "origin";
  // No default fetch refspec: libgit2 1.5 adds it with a regex-matched config
  // write that leaks a pcre2 match block per entry (see Fetch). The refspec
  // is written as a plain value and passed to the fetch instead.
  create.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
  if (git_remote_create_with_opts(&raw_remote, source.c_str(), &create) != 0) {
    return Internal("clone remote: " + LastGitError());
  }
  RemotePtr remote(raw_remote);
  char refspec[] = "+refs/heads/*:refs/remotes/origin/*";
  {
    git_config* raw_config = nullptr;
    if (git_repository_config(&raw_config, clone.get()) != 0) {
      return Internal("clone config: " + LastGitError());
    }
    int rc = git_config_set_string(raw_config, "remote.origin.fetch", refspec);
    git_config_free(raw_config);
    if (rc != 0) return Internal("clone fetch refspec: " + LastGitError());
  }
  char* refspecs[] = {refspec};
  git_strarray specs = {refspecs, 1};
  git_fetch_options options = GIT_FETCH_OPTIONS_INIT;
  options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  if (git_remote_fetch(remote.get(), &specs, &options, nullptr) != 0) {
    return Internal("cloning into " + dest_dir + ": " + LastGitError());
  }
  PW_ASSIGN_OR_RETURN(CommitPtr commit, LookupCommit(clone.get(), oid));
  git_reference* raw_ref = nullptr;
  if (git_branch_create(&raw_ref, clone.get(), branch.c_str(), commit.get(), /*force=*/1) != 0) {
    return Internal("branch " + branch + ": " + LastGitError());
  }
  RefPtr ref(raw_ref);
  git_checkout_options checkout = GIT_CHECKOUT_OPTIONS_INIT;
  checkout.checkout_strategy = GIT_CHECKOUT_FORCE;
  if (git_repository_set_head(clone.get(), ref_name.c_str()) != 0 ||
      git_checkout_head(clone.get(), &checkout) != 0) {
    return Internal("checking out " + commit_id + ": " + LastGitError());
  }
  if (git_remote_set_url(clone.get(), "origin", origin_url.c_str()) != 0) {
    return Internal("origin URL: " + LastGitError());
  }
  return Status::Ok();
}

Result<std::vector<GitRef>> GitSource::ListRefs(const std::string& repository,
                                                const GitAuth& auth) {
  std::lock_guard<std::mutex> lock(mu_);
  PW_ASSIGN_OR_RETURN(RepoPtr repo, OpenRepository(cache_dir_, repository, /*fetch=*/true, auth));
  std::vector<GitRef> out;
  for (const char* glob : {"refs/heads/*", "refs/tags/*"}) {
    git_reference_iterator* raw_iter = nullptr;
    if (git_reference_iterator_glob_new(&raw_iter, repo.get(), glob) != 0) {
      return Internal("listing " + std::string(glob) + ": " + LastGitError());
    }
    RefIterPtr iter(raw_iter);
    git_reference* raw_ref = nullptr;
    while (git_reference_next(&raw_ref, iter.get()) == 0) {
      RefPtr ref(raw_ref);
      git_object* raw_object = nullptr;
      if (git_reference_peel(&raw_object, ref.get(), GIT_OBJECT_COMMIT) != 0) {
        git_error_clear();
        continue;  // A tag of a tree or blob: nothing to run.
      }
      ObjectPtr object(raw_object);
      out.push_back({git_reference_name(ref.get()), OidHex(git_object_id(object.get()))});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const GitRef& a, const GitRef& b) { return a.name < b.name; });
  return out;
}

Result<std::vector<std::string>> GitSource::ChangedFiles(const std::string& repository,
                                                         const std::string& from_commit,
                                                         const std::string& to_commit,
                                                         const GitAuth& auth) {
  PW_ASSIGN_OR_RETURN(git_oid to_oid, ParseCommitId(to_commit));
  std::optional<git_oid> from_oid;
  if (!from_commit.empty()) {
    PW_ASSIGN_OR_RETURN(from_oid, ParseCommitId(from_commit));
  }
  std::lock_guard<std::mutex> lock(mu_);
  PW_ASSIGN_OR_RETURN(RepoPtr repo, OpenRepository(cache_dir_, repository, /*fetch=*/false, auth));
  PW_ASSIGN_OR_RETURN(CommitPtr to, FindCommit(repo.get(), repository, to_oid, auth));
  git_tree* raw_to_tree = nullptr;
  if (git_commit_tree(&raw_to_tree, to.get()) != 0) {
    return Internal("tree of " + to_commit + ": " + LastGitError());
  }
  TreePtr to_tree(raw_to_tree);
  TreePtr from_tree;
  if (from_oid) {
    PW_ASSIGN_OR_RETURN(CommitPtr from, FindCommit(repo.get(), repository, *from_oid, auth));
    git_tree* raw_from_tree = nullptr;
    if (git_commit_tree(&raw_from_tree, from.get()) != 0) {
      return Internal("tree of " + from_commit + ": " + LastGitError());
    }
    from_tree.reset(raw_from_tree);
  }
  git_diff* raw_diff = nullptr;
  git_diff_options options = GIT_DIFF_OPTIONS_INIT;
  if (git_diff_tree_to_tree(&raw_diff, repo.get(), from_tree.get(), to_tree.get(), &options) != 0) {
    return Internal("diff " + from_commit + ".." + to_commit + ": " + LastGitError());
  }
  DiffPtr diff(raw_diff);
  std::vector<std::string> files;
  const size_t n = git_diff_num_deltas(diff.get());
  for (size_t i = 0; i < n; ++i) {
    const git_diff_delta* d = git_diff_get_delta(diff.get(), i);
    if (d->old_file.path != nullptr) files.emplace_back(d->old_file.path);
    if (d->new_file.path != nullptr) files.emplace_back(d->new_file.path);
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

}  // namespace pw::runner
