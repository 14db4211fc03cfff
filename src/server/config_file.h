#pragma once

// The server's configuration file (`pipewright serve --config FILE`): YAML
// whose top-level keys are the flags of `pipewright serve` without their
// leading "--", plus sections other parts of the server parse themselves.
//
//   listen: 0.0.0.0:8480
//   data-dir: /var/lib/pipewright
//   deploy-root: [/srv/www, /srv/static]   # a repeatable flag takes a list
//   no-start-on-create: true               # a flag takes true/false
//   git-connections:                       # a section (or a file path, as the flag)
//     connections:
//       - {arn: "arn:aws:codeconnections:…", url: "https://github.com/{FullRepositoryId}.git"}
//
// The mapping is driven by the CLI11 options of the app, so a flag added to
// `serve` is settable in the file with no change here. A flag given on the
// command line wins over the file. Unknown keys, repeated keys, a list for a
// single-valued flag and values the flag refuses are errors naming the file,
// the line and the key.
//
//   std::vector<ConfigSection> sections = {{"git-connections", parse_git}};
//   app.parse(args);                                  // the command line first
//   Status s = ApplyConfigFile(path, app, sections);  // then what it left unset
//
// Not thread-safe (called once at start-up).

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "core/retention.h"

namespace pw::server {

// A top-level key whose value (a YAML map or list) is parsed by `parse`
// rather than by a flag. When a flag has the same name, a scalar value goes
// to the flag and a map or list to the section; a section whose flag was
// given on the command line is skipped. `parse` returns kInvalidArgument with
// a message (the caller's file and line are added in front).
struct ConfigSection {
  std::string key;
  std::function<Status(const YAML::Node& node)> parse;
};

// Keys never taken from the file: --config, --check-config, --help, --version.
bool IsCommandLineOnly(const CLI::Option& option);

// Applies the YAML document `text` (named `file_name` in messages) to the
// options of `app` that the command line did not set, running each option's
// callback (its checks and its variable). kInvalidArgument with
// "<file>:<line>: <key>: <what to fix>" on the first error; options applied
// before the error keep their values.
Status ApplyConfigText(std::string_view text, const std::string& file_name, CLI::App& app,
                       const std::vector<ConfigSection>& sections);
// Reads `path` and applies it as ApplyConfigText. kNotFound when unreadable.
Status ApplyConfigFile(const std::string& path, CLI::App& app,
                       const std::vector<ConfigSection>& sections);

// The configuration file's `retention` section (issue 15):
//
//   retention:
//     default: {executions: 500, days: 90}   # every pipeline (flags: --retain-*)
//     pipelines:
//       nightly: {executions: 50}            # replaces the default for this one
//       audit: {executions: 0, days: 0}      # keeps everything
//
// `executions` (an integer >= 0) and `days` (a number >= 0); 0 or absent: no
// limit of that kind. kInvalidArgument naming the key to fix.
struct RetentionSettings {
  std::optional<core::RetentionPolicy> default_policy;
  std::map<std::string, core::RetentionPolicy> pipelines;
};
Status ParseRetention(const YAML::Node& node, RetentionSettings* out);

// A YAML node as JSON text (scalars become strings, maps objects, lists
// arrays), for sections whose parser takes JSON (Git connections).
std::string YamlToJsonText(const YAML::Node& node);

}  // namespace pw::server
