#pragma once

// The buildspec of a CodeBuild action (version 0.2), parsed with yaml-cpp
// into a plain value the CodeBuild program (runner/codebuild.h) runs. Pure:
// no I/O; thread-safe.
//
//   PW_ASSIGN_OR_RETURN(Buildspec spec, ParseBuildspecText(text));
//   for (const std::string& note : spec.notes) log << note;  // keys ignored here
//
// What each key does (the README's "CodeBuild actions" section lists the same):
//   version                      must be 0.2 (0.1 runs every command in its own shell: refused)
//   env.shell                    bash or /bin/sh (the default); others refused
//   env.variables                plain values
//   env.parameter-store          ENV: parameter name, resolved by the server's secrets source
//   env.secrets-manager          ENV: secret-id[:json-key] (version stage/id refused)
//   env.exported-variables       the action's output variables
//   env.git-credential-helper    ignored with a note (no Git credentials are handed to builds)
//   phases.install|pre_build|build|post_build
//     commands, finally          run in one shell session, in order
//     on-failure                 ABORT (default) or CONTINUE; RETRY… refused
//     runtime-versions           ignored with a note (the host's or the image's tools are used)
//     run-as                     refused (serve --action-user sets the user)
//   artifacts                    files (globs, ** included), base-directory,
//                                discard-paths, exclude-paths, name (noted: the
//                                pipeline names the artifact), enable-symlinks
//                                and s3-prefix (ignored with a note),
//                                secondary-artifacts by artifactIdentifier
//   proxy, cache, reports        ignored with a note
//   run-as, batch                refused
// Any other key is refused, naming it and the keys allowed there.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace YAML {
class Node;
}

namespace pw::runner {

// The four phases, in the order they run.
enum class BuildPhase { kInstall, kPreBuild, kBuild, kPostBuild };
inline constexpr BuildPhase kBuildPhases[] = {BuildPhase::kInstall, BuildPhase::kPreBuild,
                                              BuildPhase::kBuild, BuildPhase::kPostBuild};
// "INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD": the names CodeBuild's logs use.
const char* BuildPhaseName(BuildPhase phase);

struct BuildspecPhase {
  std::vector<std::string> commands;
  std::vector<std::string> finally;
  bool continue_on_failure = false;  // on-failure: CONTINUE.
};

struct BuildspecArtifacts {
  std::vector<std::string> files;          // Globs relative to base_directory.
  std::string base_directory;              // Relative to the primary source; "" = it.
  bool discard_paths = false;              // Files go to the artifact's root.
  std::vector<std::string> exclude_paths;  // Globs relative to base_directory.
  std::string name;                        // Kept for messages only.
};

// A secrets-manager reference: secret-id, optionally a key of its JSON value.
struct SecretReference {
  std::string secret_id;
  std::string json_key;  // Empty: the whole secret string.
};

struct Buildspec {
  std::string shell = "/bin/sh";                               // Absolute path of the interpreter.
  std::vector<std::pair<std::string, std::string>> variables;  // In file order.
  std::vector<std::pair<std::string, std::string>> parameter_store;  // ENV -> parameter.
  std::vector<std::pair<std::string, SecretReference>> secrets_manager;
  std::vector<std::string> exported_variables;
  std::map<BuildPhase, BuildspecPhase> phases;  // Only the phases the file names.
  std::optional<BuildspecArtifacts> artifacts;
  std::map<std::string, BuildspecArtifacts> secondary_artifacts;  // By artifactIdentifier.
  // One line per key accepted but ignored here, e.g. "phases.install.runtime-versions is
  // ignored: …"; the runner writes them at the top of the build's log.
  std::vector<std::string> notes;
};

// Parses a buildspec document. kInvalidArgument, wire name ConfigurationError,
// whose message starts "buildspec: " and names the key, e.g. "buildspec:
// phases.build.on-failure must be ABORT or CONTINUE, not 'RETRY'". Never throws.
Result<Buildspec> ParseBuildspec(const YAML::Node& root);
// The same from YAML text (a YAML syntax error names its line and column).
Result<Buildspec> ParseBuildspecText(std::string_view text);

// True for names a shell accepts as a variable: letters, digits and _, not
// starting with a digit.
bool IsEnvName(std::string_view name);

}  // namespace pw::runner
