#pragma once

// Build projects: what a CodeBuild action's ProjectName means here. The
// server's configuration (`serve --build-projects FILE`, YAML) declares
// projects and the secrets source their buildspecs may name; a project that
// is not declared runs buildspec.yml from the primary source with the
// defaults, so the common case needs no configuration at all.
//
//   projects:
//     my-app:
//       buildspec: ci/buildspec.yml      # a path in the primary source, or the
//                                        # buildspec itself (a mapping, or text)
//       environment-variables:           # plain values, below the action's
//         STAGE: prod
//       image: localhost/builder:latest  # run in this image (serve --container-runtime)
//       timeout: 30                      # minutes, 1..2160; default 60
//       privileged: false                # the container runs --privileged
//   secrets:                             # for env.parameter-store / secrets-manager
//     parameter-store:                   # and EnvironmentVariables of those types
//       /my-app/db-password: {file: /etc/pipewright/secrets/db-password}
//       /my-app/stage: {value: prod}
//     secrets-manager:
//       prod/api: {file: /etc/pipewright/secrets/api.json}   # JSON keys: secret-id:key
//
//   PW_ASSIGN_OR_RETURN(BuildProjects p, LoadBuildProjects("/etc/pipewright/build-projects.yml"));
//   const BuildProject project = ProjectFor(p, "my-app");
//
// ParseBuildProjects takes a YAML::Node so a larger configuration file can
// embed the same document as a section. Parsing is pure; LoadBuildProjects
// and the Resolve functions read files (a secret's file is read when a
// build needs it, never kept here). Thread-compatible values.

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "runner/buildspec.h"

namespace YAML {
class Node;
}

namespace pw::engine {

struct BuildProject {
  std::string name;
  // Exactly one of these is used: an inline buildspec, else the path (relative
  // to the primary source; default buildspec.yml).
  std::optional<runner::Buildspec> inline_buildspec;
  std::string buildspec_path = "buildspec.yml";
  std::vector<std::pair<std::string, std::string>> environment;  // In file order.
  std::string image;                                             // Empty: on the host.
  int timeout_minutes = 60;
  bool privileged = false;
  bool declared = false;  // False: the defaults of an undeclared project.
};

// Where one parameter or secret's value comes from.
struct SecretValue {
  std::string file;   // Read when a build needs it (trailing newline removed).
  std::string value;  // When file is empty.
};

struct BuildProjects {
  std::map<std::string, BuildProject> projects;
  std::map<std::string, SecretValue> parameters;  // Parameter Store names.
  std::map<std::string, SecretValue> secrets;     // Secrets Manager ids.
};

// Parses the document above. kInvalidArgument naming the key and what to fix
// (unknown keys, a project name CodeBuild would refuse, a bad timeout, a
// buildspec that does not parse, a secret with both or neither of file and
// value). An empty document is no projects. Never throws.
Result<BuildProjects> ParseBuildProjects(const YAML::Node& root);
// Reads and parses `path`: kNotFound if it cannot be read, else as above
// (YAML syntax errors name the line).
Result<BuildProjects> LoadBuildProjects(const std::string& path);

// The project `name` as declared, or the defaults for it.
BuildProject ProjectFor(const BuildProjects& p, const std::string& name);

// True for names CodeBuild accepts: [A-Za-z0-9][A-Za-z0-9_-]{1,254}.
bool IsProjectName(const std::string& name);

// The value of Parameter Store parameter `name`. kNotFound (wire
// ConfigurationError) saying where to declare it when it is not declared or
// its file cannot be read. Errors never hold a value.
Result<std::string> ResolveParameter(const BuildProjects& p, const std::string& name);
// The value of a Secrets Manager reference: the secret string, or with a JSON
// key that key's value in the secret's JSON object (strings as they are,
// other values as JSON). kNotFound as above; kInvalidArgument when the secret
// is not a JSON object or lacks the key.
Result<std::string> ResolveSecret(const BuildProjects& p, const runner::SecretReference& ref);

// The CLI that runs containers (serve --container-runtime).
struct ContainerRuntime {
  std::string path;              // Absolute.
  std::vector<std::string> env;  // What it runs with: the server's PATH, HOME, XDG_*, …
};

// `flag` is a name looked up in PATH ("podman", "docker") or an absolute path
// of a podman- or docker-compatible CLI. kNotFound saying what to install
// when there is no such executable. Reads the process environment.
Result<ContainerRuntime> FindContainerRuntime(const std::string& flag);

}  // namespace pw::engine
