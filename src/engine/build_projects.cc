#include "engine/build_projects.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/helpers.h"

namespace pw::engine {

namespace {

Status Bad(const std::string& message) { return InvalidArgument("build projects: " + message); }

Status CheckKeys(const YAML::Node& node, const std::string& where,
                 const std::vector<std::string>& known) {
  if (!node.IsMap()) return Bad(where + " must be a mapping");
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return Bad(where + ": unknown key '" + key + "' (known: " + Join(known) + ")");
    }
  }
  return Status::Ok();
}

Result<std::string> Scalar(const YAML::Node& node, const std::string& where) {
  if (!node.IsScalar()) return Bad(where + " must be a single value");
  return node.Scalar();
}

Result<BuildProject> ProjectOf(const std::string& name, const YAML::Node& node) {
  const std::string where = "projects." + name;
  BuildProject out;
  out.name = name;
  out.declared = true;
  if (node.IsNull()) return out;
  PW_RETURN_IF_ERROR(CheckKeys(
      node, where, {"buildspec", "environment-variables", "image", "timeout", "privileged"}));
  if (const YAML::Node b = node["buildspec"]; b) {
    if (b.IsMap()) {
      auto spec = runner::ParseBuildspec(b);
      if (!spec.ok()) return Bad(where + ".buildspec: " + spec.status().message());
      out.inline_buildspec = *std::move(spec);
    } else {
      PW_ASSIGN_OR_RETURN(std::string text, Scalar(b, where + ".buildspec"));
      if (text.find('\n') != std::string::npos) {
        auto spec = runner::ParseBuildspecText(text);
        if (!spec.ok()) return Bad(where + ".buildspec: " + spec.status().message());
        out.inline_buildspec = *std::move(spec);
      } else {
        if (text.empty() || text[0] == '/' || text == ".." || text.rfind("../", 0) == 0 ||
            text.find("/../") != std::string::npos) {
          return Bad(where + ".buildspec must be a path inside the primary source, not '" + text +
                     "'");
        }
        out.buildspec_path = text;
      }
    }
  }
  if (const YAML::Node env = node["environment-variables"]; env && !env.IsNull()) {
    if (!env.IsMap()) return Bad(where + ".environment-variables must map NAME: value");
    for (auto it = env.begin(); it != env.end(); ++it) {
      const std::string var = it->first.IsScalar() ? it->first.Scalar() : "";
      if (!runner::IsEnvName(var)) {
        return Bad(where + ".environment-variables: '" + var +
                   "' is not an environment variable name");
      }
      std::string value;
      if (!it->second.IsNull()) {
        PW_ASSIGN_OR_RETURN(value, Scalar(it->second, where + ".environment-variables." + var));
      }
      out.environment.emplace_back(var, std::move(value));
    }
  }
  if (node["image"]) {
    PW_ASSIGN_OR_RETURN(out.image, Scalar(node["image"], where + ".image"));
    if (out.image.empty() || out.image[0] == '-' ||
        out.image.find_first_of(" \t\n") != std::string::npos) {
      return Bad(where + ".image must be an image reference, e.g. localhost/builder:latest");
    }
  }
  if (node["timeout"]) {
    PW_ASSIGN_OR_RETURN(std::string t, Scalar(node["timeout"], where + ".timeout"));
    bool digits =
        !t.empty() && t.size() <= 4 && t.find_first_not_of("0123456789") == std::string::npos;
    int n = digits ? std::stoi(t) : 0;
    if (n < 1 || n > 2160) {
      return Bad(where + ".timeout must be a whole number of minutes from 1 to 2160, not '" + t +
                 "'");
    }
    out.timeout_minutes = n;
  }
  if (node["privileged"]) {
    PW_ASSIGN_OR_RETURN(std::string v, Scalar(node["privileged"], where + ".privileged"));
    if (v == "true" || v == "yes") {
      out.privileged = true;
    } else if (v != "false" && v != "no") {
      return Bad(where + ".privileged must be true or false");
    }
  }
  return out;
}

Result<std::map<std::string, SecretValue>> SecretsOf(const YAML::Node& node,
                                                     const std::string& where) {
  std::map<std::string, SecretValue> out;
  if (node.IsNull()) return out;
  if (!node.IsMap()) return Bad(where + " must map names to {file: …} or {value: …}");
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
    const std::string at = where + "." + name;
    if (name.empty()) return Bad(where + " has an empty name");
    const YAML::Node entry = it->second;
    PW_RETURN_IF_ERROR(CheckKeys(entry, at, {"file", "value"}));
    const YAML::Node file = entry["file"];
    const YAML::Node value = entry["value"];
    if (file.IsDefined() == value.IsDefined()) {
      return Bad(at + " needs exactly one of file (read when a build needs it) and value");
    }
    SecretValue v;
    if (file) {
      PW_ASSIGN_OR_RETURN(v.file, Scalar(file, at + ".file"));
    }
    if (value) {
      PW_ASSIGN_OR_RETURN(v.value, Scalar(value, at + ".value"));
    }
    if (file && (v.file.empty() || v.file[0] != '/')) {
      return Bad(at + ".file must be an absolute path");
    }
    out[name] = std::move(v);
  }
  return out;
}

Result<BuildProjects> Parse(const YAML::Node& root) {
  BuildProjects out;
  if (!root || root.IsNull()) return out;
  PW_RETURN_IF_ERROR(CheckKeys(root, "the document", {"projects", "secrets"}));
  if (const YAML::Node projects = root["projects"]; projects && !projects.IsNull()) {
    if (!projects.IsMap()) return Bad("projects must map project names to settings");
    for (auto it = projects.begin(); it != projects.end(); ++it) {
      const std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
      if (!IsProjectName(name)) {
        return Bad("project name '" + name.substr(0, 64) +
                   "' must be 2 to 255 letters, digits, - or _, starting with a letter or digit");
      }
      PW_ASSIGN_OR_RETURN(out.projects[name], ProjectOf(name, it->second));
    }
  }
  if (const YAML::Node secrets = root["secrets"]; secrets && !secrets.IsNull()) {
    PW_RETURN_IF_ERROR(CheckKeys(secrets, "secrets", {"parameter-store", "secrets-manager"}));
    if (secrets["parameter-store"]) {
      PW_ASSIGN_OR_RETURN(out.parameters,
                          SecretsOf(secrets["parameter-store"], "secrets.parameter-store"));
    }
    if (secrets["secrets-manager"]) {
      PW_ASSIGN_OR_RETURN(out.secrets,
                          SecretsOf(secrets["secrets-manager"], "secrets.secrets-manager"));
    }
  }
  return out;
}

Result<std::string> ReadValue(const SecretValue& v, const std::string& what) {
  if (v.file.empty()) return v.value;
  std::ifstream in(v.file, std::ios::binary);
  if (!in) {
    return NotFound("Cannot read the file of " + what + " (" + v.file + ").", "ConfigurationError");
  }
  std::ostringstream s;
  s << in.rdbuf();
  std::string value = s.str();
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  return value;
}

const char kWhereToDeclare[] =
    " Declare it in the server's build projects file (serve --build-projects FILE) under ";

}  // namespace

bool IsProjectName(const std::string& name) {
  if (name.size() < 2 || name.size() > 255) return false;
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

Result<BuildProjects> ParseBuildProjects(const YAML::Node& root) {
  try {
    return Parse(root);
  } catch (const YAML::Exception& ex) {
    return Bad(ex.what());
  }
}

Result<BuildProjects> LoadBuildProjects(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  YAML::Node root;
  try {
    root = YAML::Load(s.str());
  } catch (const YAML::Exception& ex) {
    return Bad(std::string("not valid YAML: ") + ex.what());
  }
  return ParseBuildProjects(root);
}

BuildProject ProjectFor(const BuildProjects& p, const std::string& name) {
  auto it = p.projects.find(name);
  if (it != p.projects.end()) return it->second;
  BuildProject out;
  out.name = name;
  return out;
}

Result<std::string> ResolveParameter(const BuildProjects& p, const std::string& name) {
  auto it = p.parameters.find(name);
  if (it == p.parameters.end()) {
    return NotFound("Parameter Store parameter '" + name + "' is not declared." + kWhereToDeclare +
                        "secrets: parameter-store: '" + name + "': {file: /path/to/value}.",
                    "ConfigurationError");
  }
  return ReadValue(it->second, "parameter '" + name + "'");
}

Result<std::string> ResolveSecret(const BuildProjects& p, const runner::SecretReference& ref) {
  auto it = p.secrets.find(ref.secret_id);
  if (it == p.secrets.end()) {
    return NotFound("Secrets Manager secret '" + ref.secret_id + "' is not declared." +
                        kWhereToDeclare + "secrets: secrets-manager: '" + ref.secret_id +
                        "': {file: /path/to/secret}.",
                    "ConfigurationError");
  }
  PW_ASSIGN_OR_RETURN(std::string value, ReadValue(it->second, "secret '" + ref.secret_id + "'"));
  if (ref.json_key.empty()) return value;
  nlohmann::json doc = nlohmann::json::parse(value, nullptr, false);
  if (!doc.is_object()) {
    return InvalidArgument("Secret '" + ref.secret_id +
                               "' is not a JSON object, so it has no key '" + ref.json_key + "'.",
                           "ConfigurationError");
  }
  auto key = doc.find(ref.json_key);
  if (key == doc.end()) {
    return InvalidArgument("Secret '" + ref.secret_id + "' has no key '" + ref.json_key + "'.",
                           "ConfigurationError");
  }
  return key->is_string() ? key->get<std::string>() : key->dump();
}

Result<ContainerRuntime> FindContainerRuntime(const std::string& flag) {
  ContainerRuntime out;
  if (flag.find('/') != std::string::npos) {
    out.path = flag;
  } else {
    const char* path = std::getenv("PATH");
    const std::string dirs = path ? path : "/usr/bin:/bin";
    for (size_t start = 0; start <= dirs.size();) {
      size_t end = dirs.find(':', start);
      if (end == std::string::npos) end = dirs.size();
      const std::string candidate = dirs.substr(start, end - start) + "/" + flag;
      if (candidate[0] == '/' && access(candidate.c_str(), X_OK) == 0) {
        out.path = candidate;
        break;
      }
      start = end + 1;
    }
  }
  if (out.path.empty() || out.path[0] != '/' || access(out.path.c_str(), X_OK) != 0) {
    return NotFound(
        "no such executable: install podman (or docker), or give the absolute path of a "
        "podman- or docker-compatible CLI");
  }
  for (const char* name :
       {"PATH", "HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "CONTAINERS_CONF",
        "CONTAINERS_STORAGE_CONF", "DOCKER_HOST", "DOCKER_CONFIG", "TMPDIR"}) {
    if (const char* v = std::getenv(name)) out.env.push_back(std::string(name) + "=" + v);
  }
  return out;
}

}  // namespace pw::engine
