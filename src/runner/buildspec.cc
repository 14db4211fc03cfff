#include "runner/buildspec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace pw::runner {

namespace {

Status Bad(const std::string& message) {
  return InvalidArgument("buildspec: " + message, "ConfigurationError");
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string Shown(const std::string& s) { return "'" + s.substr(0, 64) + "'"; }

// "line N": where `node` starts in the file, for messages.
std::string At(const YAML::Node& node) {
  YAML::Mark m = node.Mark();
  if (m.line < 0) return "";
  return " (line " + std::to_string(m.line + 1) + ")";
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// The keys of map `node`, each checked against `known`.
Status CheckKeys(const YAML::Node& node, const std::string& where,
                 const std::vector<std::string>& known) {
  if (!node.IsMap()) return Bad(where + " must be a mapping" + At(node));
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) return Bad(where + " has a key that is not a string" + At(node));
    const std::string key = it->first.Scalar();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return Bad("unknown key " + (where.empty() ? key : where + "." + key) + At(it->first) +
                 " (known: " + Join(known) + ")");
    }
  }
  return Status::Ok();
}

Result<std::string> ScalarOf(const YAML::Node& node, const std::string& where) {
  if (node.IsNull()) return std::string();
  if (!node.IsScalar()) return Bad(where + " must be a single value" + At(node));
  return node.Scalar();
}

Result<bool> BoolOf(const YAML::Node& node, const std::string& where) {
  PW_ASSIGN_OR_RETURN(std::string s, ScalarOf(node, where));
  s = Lower(s);
  if (s == "yes" || s == "true" || s == "on") return true;
  if (s == "no" || s == "false" || s == "off" || s.empty()) return false;
  return Bad(where + " must be yes or no, not " + Shown(s) + At(node));
}

// A list of strings; a single value is a one-element list, null an empty one.
Result<std::vector<std::string>> ListOf(const YAML::Node& node, const std::string& where) {
  std::vector<std::string> out;
  if (node.IsNull()) return out;
  if (node.IsScalar()) return std::vector<std::string>{node.Scalar()};
  if (!node.IsSequence()) return Bad(where + " must be a list" + At(node));
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node item = node[i];
    if (!item.IsScalar()) {
      return Bad(where + "[" + std::to_string(i) + "] must be a string" + At(item) +
                 "; quote a command holding ': ' or starting with a special character");
    }
    out.push_back(item.Scalar());
  }
  return out;
}

// A mapping of variable names to scalar values, in file order.
Result<std::vector<std::pair<std::string, std::string>>> VariablesOf(const YAML::Node& node,
                                                                     const std::string& where) {
  std::vector<std::pair<std::string, std::string>> out;
  if (node.IsNull()) return out;
  if (!node.IsMap()) return Bad(where + " must be a mapping of NAME: value" + At(node));
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
    if (!IsEnvName(name)) {
      return Bad(where + ": " + Shown(name) + At(it->first) +
                 " is not an environment variable name (letters, digits, _)");
    }
    PW_ASSIGN_OR_RETURN(std::string value, ScalarOf(it->second, where + "." + name));
    if (value.find('\0') != std::string::npos) {
      return Bad(where + "." + name + " holds a NUL byte");
    }
    out.emplace_back(name, std::move(value));
  }
  return out;
}

Result<BuildspecArtifacts> ArtifactsOf(const YAML::Node& node, const std::string& where,
                                       bool primary, std::vector<std::string>& notes) {
  std::vector<std::string> known = {"files",          "name",          "discard-paths",
                                    "base-directory", "exclude-paths", "enable-symlinks",
                                    "s3-prefix"};
  if (primary) known.push_back("secondary-artifacts");
  PW_RETURN_IF_ERROR(CheckKeys(node, where, known));
  BuildspecArtifacts out;
  if (node["files"]) {
    PW_ASSIGN_OR_RETURN(out.files, ListOf(node["files"], where + ".files"));
  }
  if (node["base-directory"]) {
    PW_ASSIGN_OR_RETURN(out.base_directory,
                        ScalarOf(node["base-directory"], where + ".base-directory"));
    std::string b = out.base_directory;
    if (!b.empty() && (b[0] == '/' || b == ".." || b.rfind("../", 0) == 0 ||
                       b.find("/../") != std::string::npos ||
                       (b.size() >= 3 && b.compare(b.size() - 3, 3, "/..") == 0))) {
      return Bad(where + ".base-directory must be a path inside the source, not " + Shown(b));
    }
  }
  if (node["discard-paths"]) {
    PW_ASSIGN_OR_RETURN(out.discard_paths, BoolOf(node["discard-paths"], where + ".discard-paths"));
  }
  if (node["exclude-paths"]) {
    PW_ASSIGN_OR_RETURN(out.exclude_paths, ListOf(node["exclude-paths"], where + ".exclude-paths"));
  }
  if (node["name"]) {
    PW_ASSIGN_OR_RETURN(out.name, ScalarOf(node["name"], where + ".name"));
    notes.push_back(where + ".name is ignored: the pipeline's outputArtifacts name the artifact");
  }
  for (const char* key : {"enable-symlinks", "s3-prefix"}) {
    if (node[key]) {
      notes.push_back(where + "." + key +
                      " is ignored: artifacts are zip files in the server's artifact store"
                      " (symbolic links are kept as links)");
    }
  }
  if (out.files.empty()) return Bad(where + ".files is required: list the files to keep");
  return out;
}

Result<BuildspecPhase> PhaseOf(const YAML::Node& node, const std::string& where,
                               std::vector<std::string>& notes) {
  BuildspecPhase out;
  if (node.IsNull()) return out;
  PW_RETURN_IF_ERROR(
      CheckKeys(node, where, {"commands", "finally", "on-failure", "runtime-versions", "run-as"}));
  if (node["run-as"]) {
    return Bad(where +
               ".run-as is not supported: builds run as the server's action user "
               "(serve --action-user)");
  }
  if (node["runtime-versions"]) {
    if (where != "phases.install") {
      return Bad(where + ".runtime-versions is only allowed in phases.install");
    }
    notes.push_back(where +
                    ".runtime-versions is ignored: the build uses the tools installed on the "
                    "host or in the project's image");
  }
  if (node["commands"]) {
    PW_ASSIGN_OR_RETURN(out.commands, ListOf(node["commands"], where + ".commands"));
  }
  if (node["finally"]) {
    PW_ASSIGN_OR_RETURN(out.finally, ListOf(node["finally"], where + ".finally"));
  }
  if (node["on-failure"]) {
    PW_ASSIGN_OR_RETURN(std::string v, ScalarOf(node["on-failure"], where + ".on-failure"));
    if (Upper(v) == "CONTINUE") {
      out.continue_on_failure = true;
    } else if (Upper(v) != "ABORT") {
      return Bad(where + ".on-failure must be ABORT or CONTINUE, not " + Shown(v) +
                 (Upper(v).rfind("RETRY", 0) == 0 ? " (phase retries are not supported)" : ""));
    }
  }
  for (const auto* list : {&out.commands, &out.finally}) {
    for (const std::string& c : *list) {
      if (c.find('\0') != std::string::npos) return Bad(where + " holds a NUL byte");
    }
  }
  return out;
}

Result<Buildspec> Parse(const YAML::Node& root) {
  if (!root.IsMap()) return Bad("the file must be a YAML mapping starting with version: 0.2");
  PW_RETURN_IF_ERROR(CheckKeys(
      root, "",
      {"version", "run-as", "env", "proxy", "batch", "phases", "reports", "artifacts", "cache"}));
  Buildspec out;
  if (!root["version"]) return Bad("version is required (version: 0.2)");
  PW_ASSIGN_OR_RETURN(std::string version, ScalarOf(root["version"], "version"));
  if (version != "0.2") {
    return Bad("version must be 0.2, not " + Shown(version) +
               (version == "0.1" ? " (0.1 runs each command in its own shell; write 0.2)" : ""));
  }
  if (root["run-as"]) {
    return Bad(
        "run-as is not supported: builds run as the server's action user "
        "(serve --action-user)");
  }
  if (root["batch"]) return Bad("batch is not supported: Pipewright runs single builds");
  for (const char* key : {"proxy", "cache", "reports"}) {
    if (root[key]) {
      out.notes.push_back(std::string(key) + " is ignored: " +
                          (std::string(key) == "reports" ? "test reports are not collected"
                           : std::string(key) == "cache" ? "builds start from a fresh directory"
                                                         : "builds use the host's network"));
    }
  }
  if (const YAML::Node env = root["env"]; env && !env.IsNull()) {
    PW_RETURN_IF_ERROR(CheckKeys(env, "env",
                                 {"shell", "variables", "parameter-store", "exported-variables",
                                  "secrets-manager", "git-credential-helper"}));
    if (env["shell"]) {
      PW_ASSIGN_OR_RETURN(std::string shell, ScalarOf(env["shell"], "env.shell"));
      if (shell == "bash" || shell == "/bin/bash") {
        out.shell = "/bin/bash";
      } else if (shell != "/bin/sh" && shell != "sh") {
        return Bad("env.shell must be bash or /bin/sh, not " + Shown(shell));
      }
    }
    if (env["variables"]) {
      PW_ASSIGN_OR_RETURN(out.variables, VariablesOf(env["variables"], "env.variables"));
    }
    if (env["parameter-store"]) {
      PW_ASSIGN_OR_RETURN(out.parameter_store,
                          VariablesOf(env["parameter-store"], "env.parameter-store"));
    }
    if (env["secrets-manager"]) {
      PW_ASSIGN_OR_RETURN(auto refs, VariablesOf(env["secrets-manager"], "env.secrets-manager"));
      for (const auto& [name, ref] : refs) {
        // secret-id:json-key:version-stage:version-id; a secret id may be an
        // ARN, which holds colons itself (arn:aws:secretsmanager:r:a:secret:id).
        std::vector<std::string> parts;
        size_t start = 0;
        for (size_t i = 0; i <= ref.size(); ++i) {
          if (i == ref.size() || ref[i] == ':') {
            parts.push_back(ref.substr(start, i - start));
            start = i + 1;
          }
        }
        size_t id_parts = ref.rfind("arn:", 0) == 0 ? std::min<size_t>(7, parts.size()) : 1;
        SecretReference s;
        for (size_t i = 0; i < id_parts; ++i) s.secret_id += (i ? ":" : "") + parts[i];
        if (parts.size() > id_parts) s.json_key = parts[id_parts];
        for (size_t i = id_parts + 1; i < parts.size(); ++i) {
          if (!parts[i].empty()) {
            return Bad("env.secrets-manager." + name +
                       ": version stages and version ids are not supported; name the secret "
                       "and, if needed, its JSON key");
          }
        }
        if (s.secret_id.empty()) return Bad("env.secrets-manager." + name + " names no secret");
        out.secrets_manager.emplace_back(name, std::move(s));
      }
    }
    if (env["exported-variables"]) {
      PW_ASSIGN_OR_RETURN(out.exported_variables,
                          ListOf(env["exported-variables"], "env.exported-variables"));
      for (const std::string& name : out.exported_variables) {
        if (!IsEnvName(name)) {
          return Bad("env.exported-variables: " + Shown(name) +
                     " is not an environment variable name (letters, digits, _)");
        }
      }
    }
    if (env["git-credential-helper"]) {
      out.notes.push_back(
          "env.git-credential-helper is ignored: no Git credentials are handed to builds");
    }
  }
  if (const YAML::Node phases = root["phases"]; phases && !phases.IsNull()) {
    PW_RETURN_IF_ERROR(
        CheckKeys(phases, "phases", {"install", "pre_build", "build", "post_build"}));
    const std::pair<const char*, BuildPhase> names[] = {{"install", BuildPhase::kInstall},
                                                        {"pre_build", BuildPhase::kPreBuild},
                                                        {"build", BuildPhase::kBuild},
                                                        {"post_build", BuildPhase::kPostBuild}};
    for (const auto& [name, phase] : names) {
      if (!phases[name]) continue;
      PW_ASSIGN_OR_RETURN(out.phases[phase],
                          PhaseOf(phases[name], std::string("phases.") + name, out.notes));
    }
  }
  if (const YAML::Node artifacts = root["artifacts"]; artifacts && !artifacts.IsNull()) {
    PW_RETURN_IF_ERROR(
        CheckKeys(artifacts, "artifacts",
                  {"files", "name", "discard-paths", "base-directory", "exclude-paths",
                   "enable-symlinks", "s3-prefix", "secondary-artifacts"}));
    if (artifacts["files"]) {
      PW_ASSIGN_OR_RETURN(out.artifacts, ArtifactsOf(artifacts, "artifacts", true, out.notes));
    }
    if (const YAML::Node secondary = artifacts["secondary-artifacts"]; secondary) {
      if (!secondary.IsMap()) {
        return Bad("artifacts.secondary-artifacts must map artifactIdentifier to artifacts" +
                   At(secondary));
      }
      for (auto it = secondary.begin(); it != secondary.end(); ++it) {
        const std::string id = it->first.IsScalar() ? it->first.Scalar() : "";
        if (id.empty()) return Bad("artifacts.secondary-artifacts has an empty identifier");
        PW_ASSIGN_OR_RETURN(
            out.secondary_artifacts[id],
            ArtifactsOf(it->second, "artifacts.secondary-artifacts." + id, false, out.notes));
      }
    }
    if (!out.artifacts && out.secondary_artifacts.empty()) {
      return Bad("artifacts.files is required: list the files to keep");
    }
  }
  return out;
}

}  // namespace

const char* BuildPhaseName(BuildPhase phase) {
  switch (phase) {
    case BuildPhase::kInstall:
      return "INSTALL";
    case BuildPhase::kPreBuild:
      return "PRE_BUILD";
    case BuildPhase::kBuild:
      return "BUILD";
    case BuildPhase::kPostBuild:
      return "POST_BUILD";
  }
  return "?";
}

bool IsEnvName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

Result<Buildspec> ParseBuildspec(const YAML::Node& root) {
  // yaml-cpp throws on conversions; nothing escapes this function.
  try {
    return Parse(root);
  } catch (const YAML::Exception& ex) {
    return Bad(ex.what());
  }
}

Result<Buildspec> ParseBuildspecText(std::string_view text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& ex) {
    return Bad(std::string("not valid YAML: ") + ex.what());
  }
  return ParseBuildspec(root);
}

}  // namespace pw::runner
