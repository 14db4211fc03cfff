#include "server/config_file.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

namespace pw::server {
namespace {

std::string Where(const std::string& file, const YAML::Node& node) {
  return file + ":" + std::to_string(node.Mark().line + 1);
}

const ConfigSection* FindSection(const std::vector<ConfigSection>& sections,
                                 const std::string& key) {
  for (const auto& s : sections) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

CLI::Option* FindOption(CLI::App& app, const std::string& key) {
  if (key.empty() || key[0] == '-') return nullptr;
  CLI::Option* opt = app.get_option_no_throw("--" + key);
  if (opt == nullptr || IsCommandLineOnly(*opt)) return nullptr;
  return opt;
}

std::string UnknownKey(CLI::App& app, const std::string& key,
                       const std::vector<ConfigSection>& sections) {
  std::string msg = "unknown key '" + key + "'";
  std::string dashed = key;
  for (char& c : dashed) {
    if (c == '_') c = '-';
  }
  while (!dashed.empty() && dashed[0] == '-') dashed.erase(0, 1);
  if (dashed != key && (FindOption(app, dashed) || FindSection(sections, dashed))) {
    return msg + ": did you mean '" + dashed + "'?";
  }
  msg += " (the keys are the flags of `pipewright serve --help` without their '--'";
  if (!sections.empty()) {
    msg += ", and the sections";
    for (const auto& s : sections) msg += " " + s.key;
  }
  return msg + ")";
}

bool TakesSeveral(const CLI::Option& opt) {
  return opt.get_expected_max() > 1 ||
         opt.get_multi_option_policy() == CLI::MultiOptionPolicy::TakeAll;
}

nlohmann::json ToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (auto it = node.begin(); it != node.end(); ++it) {
        out[it->first.Scalar()] = ToJson(it->second);
      }
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(ToJson(item));
      return out;
    }
    case YAML::NodeType::Scalar:
      return node.Scalar();
    default:
      return nullptr;
  }
}

}  // namespace

bool IsCommandLineOnly(const CLI::Option& option) {
  for (const auto& name : option.get_lnames()) {
    if (name == "config" || name == "check-config" || name == "help" || name == "version") {
      return true;
    }
  }
  return option.get_lnames().empty();
}

namespace {

Status ParsePolicy(const YAML::Node& node, const std::string& where, core::RetentionPolicy* out) {
  if (!node.IsMap()) {
    return InvalidArgument(where + " must be a map like {executions: 100, days: 30}");
  }
  core::RetentionPolicy p;
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node value = kv.second;
    if (!value.IsScalar()) return InvalidArgument(where + "." + key + " must be a number");
    const std::string text = value.as<std::string>();
    try {
      size_t used = 0;
      if (key == "executions") {
        const long long n = std::stoll(text, &used);
        if (used != text.size() || n < 0) throw std::invalid_argument(text);
        p.max_executions = n;
      } else if (key == "days") {
        const double d = std::stod(text, &used);
        if (used != text.size() || !(d >= 0)) throw std::invalid_argument(text);
        p.max_age_days = d;
      } else {
        return InvalidArgument(where + ": unknown key '" + key + "' (use executions and/or days)");
      }
    } catch (const std::exception&) {
      return InvalidArgument(where + "." + key + ": '" + text + "' is not " +
                             (key == "executions" ? "an integer >= 0" : "a number >= 0"));
    }
  }
  *out = p;
  return Status::Ok();
}

}  // namespace

Status ParseRetention(const YAML::Node& node, RetentionSettings* out) {
  if (!node.IsMap()) {
    return InvalidArgument("retention must be a map with 'default' and/or 'pipelines'");
  }
  RetentionSettings parsed;
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    if (key == "default") {
      core::RetentionPolicy p;
      PW_RETURN_IF_ERROR(ParsePolicy(kv.second, "retention.default", &p));
      parsed.default_policy = p;
    } else if (key == "pipelines") {
      if (!kv.second.IsMap()) {
        return InvalidArgument("retention.pipelines must map pipeline names to policies");
      }
      for (const auto& pk : kv.second) {
        const std::string name = pk.first.as<std::string>();
        core::RetentionPolicy p;
        PW_RETURN_IF_ERROR(ParsePolicy(pk.second, "retention.pipelines." + name, &p));
        parsed.pipelines[name] = p;
      }
    } else {
      return InvalidArgument("retention: unknown key '" + key + "' (use default and pipelines)");
    }
  }
  *out = std::move(parsed);
  return Status::Ok();
}

std::string YamlToJsonText(const YAML::Node& node) {
  return ToJson(node).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Status ApplyConfigText(std::string_view text, const std::string& file_name, CLI::App& app,
                       const std::vector<ConfigSection>& sections) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(
        file_name + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg, "");
  }
  if (root.IsNull()) return Status::Ok();  // An empty file sets nothing.
  if (!root.IsMap()) {
    return InvalidArgument(Where(file_name, root) +
                               ": the configuration must be a map of keys (the `serve` flags "
                               "without '--') to values",
                           "");
  }
  std::set<std::string> seen;
  for (auto it = root.begin(); it != root.end(); ++it) {
    // Copies (Node is a handle): `it->` returns a temporary proxy, so a
    // reference to its members dangles after this statement (ASan:
    // stack-use-after-scope).
    const YAML::Node key_node = it->first;
    const YAML::Node value = it->second;
    const std::string at = Where(file_name, key_node);
    if (!key_node.IsScalar()) return InvalidArgument(at + ": a key must be a plain name", "");
    const std::string key = key_node.Scalar();
    if (!seen.insert(key).second) {
      return InvalidArgument(at + ": " + key + ": repeated key (write it once)", "");
    }
    const ConfigSection* section = FindSection(sections, key);
    CLI::Option* opt = FindOption(app, key);
    if (section == nullptr && opt == nullptr) {
      return InvalidArgument(at + ": " + UnknownKey(app, key, sections), "");
    }
    if (opt != nullptr && opt->count() > 0) continue;  // The command line wins.
    if (section != nullptr && (value.IsMap() || value.IsSequence() || opt == nullptr)) {
      Status s = section->parse(value);
      if (!s.ok()) return InvalidArgument(at + ": " + key + ": " + s.message(), "");
      continue;
    }
    std::vector<std::string> values;
    if (value.IsScalar()) {
      values.push_back(value.Scalar());
    } else if (value.IsSequence()) {
      for (const auto& item : value) {
        if (!item.IsScalar()) {
          return InvalidArgument(
              Where(file_name, item) + ": " + key + ": each item of the list must be a plain value",
              "");
        }
        values.push_back(item.Scalar());
      }
      if (values.size() > 1 && !TakesSeveral(*opt)) {
        return InvalidArgument(at + ": " + key + ": takes one value, not a list", "");
      }
    } else if (value.IsNull()) {
      return InvalidArgument(at + ": " + key + ": needs a value", "");
    } else {
      return InvalidArgument(
          at + ": " + key + ": must be a value (or a list for a repeatable flag)", "");
    }
    try {
      for (auto& v : values) opt->add_result(std::move(v));
      opt->run_callback();
    } catch (const CLI::Error& e) {
      opt->clear();
      return InvalidArgument(at + ": " + key + ": " + e.what(), "");
    }
  }
  return Status::Ok();
}

Status ApplyConfigFile(const std::string& path, CLI::App& app,
                       const std::vector<ConfigSection>& sections) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read the configuration file " + path, "");
  std::stringstream text;
  text << in.rdbuf();
  return ApplyConfigText(text.str(), path, app, sections);
}

}  // namespace pw::server
