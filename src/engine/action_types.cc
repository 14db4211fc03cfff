#include "engine/action_types.h"

namespace pw::engine {

const std::vector<BuiltinActionType>& BuiltinActionTypes() {
  static const std::vector<BuiltinActionType> kTypes = {
      {{"Source", "AWS", "Git", "1"},
       "A commit of a Git repository (a local path or any URL git can clone).",
       {{"RepositoryPath", true, true, false, false, "Local path or URL of the repository."},
        {"BranchName", false, false, false, false, "Branch to follow; default main."},
        {"PollForSourceChanges", false, false, false, false,
         "true (default): start an execution when the branch moves."}},
       0,
       0,
       1,
       1},
      // Run built in: the Git source executor, with the repositories mapped
      // by `serve --git-connections`.
      {{"Source", "AWS", "CodeStarSourceConnection", "1"},
       "A commit of a GitHub, GitLab or Bitbucket repository through a connection; the "
       "connection ARN maps to a Git URL in the server's --git-connections file.",
       {{"ConnectionArn", true, false, false, false, "ARN of the connection."},
        {"FullRepositoryId", true, false, false, false, "owner/repository."},
        {"BranchName", true, false, false, false, "Branch to follow."},
        {"OutputArtifactFormat", false, false, false, false,
         "CODE_ZIP (default): the files; CODEBUILD_CLONE_REF: the files with a .git clone."},
        {"DetectChanges", false, false, false, false,
         "true (default): start an execution when the branch moves."}},
       0,
       0,
       1,
       1},
      {{"Source", "AWS", "CodeCommit", "1"},
       "A commit of a CodeCommit repository; the name maps to a Git URL in the server's "
       "--git-connections file.",
       {{"RepositoryName", true, true, false, false, "Name of the repository."},
        {"BranchName", true, true, false, false, "Branch to follow."},
        {"PollForSourceChanges", false, false, false, false,
         "true (default): start an execution when the branch moves."},
        {"OutputArtifactFormat", false, false, false, false,
         "CODE_ZIP (default): the files; CODEBUILD_CLONE_REF: the files with a .git clone."}},
       0,
       0,
       1,
       1},
      {{"Source", "AWS", "Directory", "1"},
       "A snapshot of a directory on the server; the revision is its content hash.",
       {{"Path", true, true, false, false, "Directory to snapshot."}},
       0,
       0,
       1,
       1},
      {{"Build", "AWS", "Commands", "1"},
       "Runs shell commands (`commands`, or configuration Commands) in a fresh directory.",
       {{"Commands", false, false, false, false, "Newline-separated commands, for old clients."},
        {"EnvironmentVariables", false, false, false, false, "JSON list of {name, value}."},
        {"TimeoutInMinutes", false, false, false, false, "Default 60."}},
       0,
       5,
       0,
       5},
      {{"Test", "AWS", "Commands", "1"},
       "Runs shell commands, like Build.",
       {{"Commands", false, false, false, false, "Newline-separated commands, for old clients."},
        {"EnvironmentVariables", false, false, false, false, "JSON list of {name, value}."},
        {"TimeoutInMinutes", false, false, false, false, "Default 60."}},
       0,
       5,
       0,
       5},
      {{"Compute", "AWS", "Commands", "1"},
       "Runs shell commands, like Build.",
       {{"Commands", false, false, false, false, "Newline-separated commands, for old clients."},
        {"EnvironmentVariables", false, false, false, false, "JSON list of {name, value}."},
        {"TimeoutInMinutes", false, false, false, false, "Default 60."}},
       0,
       5,
       0,
       5},
      {{"Approval", "AWS", "Manual", "1"},
       "Waits for PutApprovalResult (Approved or Rejected); times out after 7 days.",
       {{"CustomData", false, false, false, false, "Text shown to the reviewer."},
        {"ExternalEntityLink", false, false, false, false, "A link for the reviewer."}},
       0,
       0,
       0,
       0},
      {{"Deploy", "AWS", "Directory", "1"},
       "Replaces a directory's contents with the input artifact, atomically.",
       {{"Path", true, true, false, false, "Target directory."}},
       1,
       1,
       0,
       0},
  };
  return kTypes;
}

const BuiltinActionType* FindBuiltin(const core::ActionTypeId& id) {
  for (const auto& t : BuiltinActionTypes()) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

}  // namespace pw::engine
