#pragma once

// The program of a CodeBuild action: one shell session that runs a parsed
// buildspec's phases with CodeBuild's semantics, and how to read its end.
// Shaped like runner/commands.h (PrepareCommands / ReadCommandsOutcome), and
// run the same way by the engine's CodeBuild executor.
//
//   CodeBuildRequest req;
//   req.buildspec = *ParseBuildspecText(text);
//   req.base_env = {"PATH=…", "CODEBUILD_SRC_DIR=" + src, …};
//   req.env = resolved;  // buildspec env.variables, then project, then action overrides
//   req.cwd = src; req.log_path = …; req.status_file = …; req.variables_file = …;
//   PW_ASSIGN_OR_RETURN(CodeBuildProgram program, PrepareCodeBuild(req));
//   launcher.Start(program.spec, [program](ProcessId, const ProcessExit& x) {
//     CodeBuildOutcome outcome = ReadCodeBuildOutcome(program, x);
//   });
//
// Semantics (CodeBuild's "build phase transitions"):
//   - phases run in order install, pre_build, build, post_build; all commands
//     of the build run in the one shell (a `cd` or an `export` carries over);
//   - within a phase the first failing command ends its `commands`; its
//     `finally` commands run anyway (the first failing one ends them) and a
//     failure there fails the phase;
//   - a failed install or pre_build ends the build (later phases do not run);
//     a failed build still runs post_build; with `on-failure: CONTINUE` the
//     next phases run as if nothing failed; either way the build has failed;
//   - CODEBUILD_BUILD_SUCCEEDING is exported 1 and becomes 0 at the first
//     failure;
//   - the log shows "[Container] Entering phase X", "[Container] Running
//     command C", "[Container] Command did not exit successfully C exit status
//     N" and "[Container] Phase complete: X State: SUCCEEDED|FAILED", and the
//     buildspec's notes first;
//   - on success the exported variables are written as NUL-terminated
//     NAME=VALUE records (unset ones exported empty).
// The buildspec's commands are the script's code (as a Commands action's
// are); every other value travels in the environment. Pure but for
// ReadCodeBuildOutcome, which reads the result files. Thread-safe.

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "runner/buildspec.h"
#include "runner/process_launcher.h"

namespace pw::runner {

struct CodeBuildRequest {
  Buildspec buildspec;
  // "NAME=VALUE" entries: PATH, HOME, CODEBUILD_*, … Nothing else is inherited.
  std::vector<std::string> base_env;
  // Variables after base_env, a later one replacing an earlier one of the
  // same name (buildspec, then project, then the action's overrides).
  std::vector<std::pair<std::string, std::string>> env;
  int timeout_minutes = 60;
  std::string cwd;       // Working directory (the primary source); must exist.
  std::string log_path;  // As ProcessSpec::log_path.
  // Result files the program writes; fresh paths per run.
  std::string status_file;
  std::string variables_file;
  double kill_grace_seconds = 5;
};

struct CodeBuildProgram {
  ProcessSpec spec;  // argv {shell, -c, script, …}; the caller may wrap argv.
  Buildspec buildspec;
  int timeout_minutes = 60;
  std::string status_file;
  std::string variables_file;
};

// Builds the program. kInvalidArgument, wire name ConfigurationError, when no
// phase has a command, the timeout is below 1 minute, or an environment entry
// holds a NUL byte.
Result<CodeBuildProgram> PrepareCodeBuild(const CodeBuildRequest& request);

struct CodeBuildOutcome {
  bool succeeded = false;
  // When !succeeded, e.g. "Phase BUILD: command 2 (npm test) exited with code 1.",
  // "Phase POST_BUILD: finally command 1 (./cleanup) exited with code 3.",
  // "Timed out after 60 minute(s) in phase BUILD.", "The action was cancelled.",
  // "The build shell exited with code N in phase X." (a command called exit).
  std::string failure_message;
  std::string phase;  // The failing phase, or "".
  // Succeeded: "Build succeeded: N command(s) in M phase(s)". Failed: the
  // last lines of output, or failure_message.
  std::string summary;
  std::map<std::string, std::string> exported_variables;  // Succeeded only.
};

// Never fails; missing result files read as empty.
CodeBuildOutcome ReadCodeBuildOutcome(const CodeBuildProgram& program, const ProcessExit& exit);

// Copies the files `artifacts` selects from `src_dir` (the primary source
// after the build) into the empty directory `dest_dir`: every file or
// symbolic link below base_directory whose path relative to it matches one of
// `files` and none of `exclude_paths` (runner::MatchesGlob: "**" spans
// directories), at that relative path, or at its bare name with
// discard_paths. Links are copied as links; directories are not followed.
// kInvalidArgument (wire ConfigurationError) when base_directory does not
// exist or leaves `src_dir` through a link, no file matches, or discard_paths
// would put two files at one name; kInternal when a copy fails.
Status CollectArtifactFiles(const std::string& src_dir, const BuildspecArtifacts& artifacts,
                            const std::string& dest_dir);

// One entry of the action's EnvironmentVariables configuration.
struct CodeBuildEnvVar {
  std::string name;
  std::string value;
  std::string type = "PLAINTEXT";  // PLAINTEXT, PARAMETER_STORE or SECRETS_MANAGER.
};

// Parses configuration EnvironmentVariables: a JSON list of {"name", "value",
// "type"} (type optional, default PLAINTEXT). kInvalidArgument whose message
// starts "configuration EnvironmentVariables".
Result<std::vector<CodeBuildEnvVar>> ParseCodeBuildEnvironmentVariables(std::string_view json);

// The checks CreatePipeline makes of a CodeBuild action's configuration
// (values holding "#{" are skipped; they are checked when the action runs):
// ProjectName a CodeBuild project name; PrimarySource one of `inputs`, and
// required with more than one input; EnvironmentVariables as above;
// BatchEnabled and CombineArtifacts not true (batch builds are not run here).
// kInvalidArgument whose message starts "configuration <field>".
Status CheckCodeBuildConfiguration(const std::map<std::string, std::string>& config,
                                   const std::vector<std::string>& inputs);

// `s` in single quotes for sh ('\'' for each quote): the shell reads it back
// as exactly `s`.
std::string ShellSingleQuote(const std::string& s);

}  // namespace pw::runner
