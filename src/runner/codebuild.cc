#include "runner/codebuild.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "runner/artifact_store.h"
#include "runner/commands.h"

namespace pw::runner {

namespace {

// A command as messages show it: its first line, at most 200 characters.
std::string Brief(const std::string& command) {
  std::string s = command.substr(0, command.find('\n'));
  if (s.size() > 200) s = s.substr(0, 200) + "…";
  if (s.size() < command.size() && s.find("…") == std::string::npos) s += " …";
  return s;
}

// Appends the guarded run of one command to `script`. `kind` is "commands"
// or "finally", `index` 1-based.
void AppendCommand(std::string& script, const char* phase, const char* kind, size_t index,
                   const std::string& command) {
  const std::string shown = ShellSingleQuote(command);
  const std::string where = std::string(phase) + " " + kind + " " + std::to_string(index);
  script += "if [ \"$__pw_ok\" = 1 ]; then\n__pw_kind=" + std::string(kind) +
            "; __pw_cmd=" + std::to_string(index) +
            "\nprintf '[Container] Running command %s\\n' " + shown + "\n" + command +
            "\n__pw_rc=$?\nif [ \"$__pw_rc\" -ne 0 ]; then __pw_ok=0; __pw_fail " + where +
            " \"$__pw_rc\"; printf '[Container] Command did not exit successfully %s exit status "
            "%s\\n' " +
            shown + " \"$__pw_rc\"; fi\nfi\n";
}

CodeBuildOutcome Failed(std::string message, std::string phase, const ProcessExit& exit) {
  CodeBuildOutcome out;
  out.summary = exit.output_tail.empty() ? message : exit.output_tail;
  out.failure_message = std::move(message);
  out.phase = std::move(phase);
  return out;
}

// The command `kind` `index` of `phase` ("BUILD"), or "" if there is none.
std::string CommandText(const Buildspec& spec, const std::string& phase, const std::string& kind,
                        size_t index) {
  for (BuildPhase p : kBuildPhases) {
    if (phase != BuildPhaseName(p)) continue;
    auto it = spec.phases.find(p);
    if (it == spec.phases.end()) return "";
    const auto& list = kind == "finally" ? it->second.finally : it->second.commands;
    return index >= 1 && index <= list.size() ? list[index - 1] : "";
  }
  return "";
}

std::string Which(const Buildspec& spec, const std::string& phase, const std::string& kind,
                  size_t index) {
  std::string text = CommandText(spec, phase, kind, index);
  std::string which = (kind == "finally" ? "finally command " : "command ") + std::to_string(index);
  if (!text.empty()) which += " (" + Brief(text) + ")";
  return which;
}

}  // namespace

Status CollectArtifactFiles(const std::string& src_dir, const BuildspecArtifacts& artifacts,
                            const std::string& dest_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path src = fs::weakly_canonical(src_dir, ec);
  fs::path root = src;
  if (!artifacts.base_directory.empty())
    root = fs::weakly_canonical(src / artifacts.base_directory, ec);
  const std::string base = artifacts.base_directory.empty()
                               ? "the source directory"
                               : "base-directory '" + artifacts.base_directory + "'";
  const std::string rel_root = fs::relative(root, src, ec).string();
  if (ec || rel_root == ".." || rel_root.rfind("../", 0) == 0) {
    return InvalidArgument("Artifacts: " + base + " leaves the source directory.",
                           "ConfigurationError");
  }
  if (!fs::is_directory(root, ec)) {
    return InvalidArgument("Artifacts: " + base + " does not exist after the build.",
                           "ConfigurationError");
  }
  std::map<std::string, std::string> chosen;  // Destination -> relative source path.
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::file_status st = it->symlink_status(ec);
    if (fs::is_directory(st)) continue;
    const std::string rel = fs::relative(it->path(), root, ec).generic_string();
    bool match = false;
    for (const std::string& g : artifacts.files) match = match || MatchesGlob(g, rel);
    for (const std::string& g : artifacts.exclude_paths) match = match && !MatchesGlob(g, rel);
    if (!match) continue;
    const std::string dest = artifacts.discard_paths ? it->path().filename().string() : rel;
    auto [prev, inserted] = chosen.emplace(dest, rel);
    if (!inserted) {
      return InvalidArgument("Artifacts: discard-paths puts both " + prev->second + " and " + rel +
                                 " at " + dest + "; narrow files or keep the paths.",
                             "ConfigurationError");
    }
  }
  if (ec) return Internal("Artifacts: cannot list " + root.string() + ": " + ec.message());
  if (chosen.empty()) {
    std::string globs;
    for (const auto& g : artifacts.files) globs += (globs.empty() ? "" : ", ") + g;
    return InvalidArgument("Artifacts: no file in " + base + " matches files [" + globs + "].",
                           "ConfigurationError");
  }
  for (const auto& [dest, rel] : chosen) {
    const fs::path from = root / rel;
    const fs::path to = fs::path(dest_dir) / dest;
    fs::create_directories(to.parent_path(), ec);
    if (!ec) {
      if (fs::is_symlink(fs::symlink_status(from, ec))) {
        fs::copy_symlink(from, to, ec);
      } else {
        fs::copy_file(from, to, ec);
      }
    }
    if (ec) return Internal("Artifacts: cannot copy " + rel + ": " + ec.message());
  }
  return Status::Ok();
}

Result<std::vector<CodeBuildEnvVar>> ParseCodeBuildEnvironmentVariables(std::string_view text) {
  using nlohmann::json;
  json list = json::parse(text, nullptr, false);
  if (!list.is_array()) {
    return InvalidArgument(
        "configuration EnvironmentVariables must be a JSON list of {\"name\": \"…\", "
        "\"value\": \"…\", \"type\": \"PLAINTEXT\"} objects.");
  }
  std::vector<CodeBuildEnvVar> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& v = list[i];
    const std::string at = "configuration EnvironmentVariables[" + std::to_string(i) + "]";
    if (!v.is_object() || !v.contains("name") || !v["name"].is_string() ||
        (v.contains("value") && !v["value"].is_string()) ||
        (v.contains("type") && !v["type"].is_string())) {
      return InvalidArgument(at +
                             " must be {\"name\": string, \"value\": string, \"type\": "
                             "string}; write numbers as strings.");
    }
    CodeBuildEnvVar e;
    e.name = v["name"].get<std::string>();
    if (v.contains("value")) e.value = v["value"].get<std::string>();
    if (v.contains("type")) e.type = v["type"].get<std::string>();
    if (!IsEnvName(e.name)) {
      return InvalidArgument(at + ": '" + e.name.substr(0, 64) +
                             "' is not an environment variable name (letters, digits, _).");
    }
    if (e.type != "PLAINTEXT" && e.type != "PARAMETER_STORE" && e.type != "SECRETS_MANAGER") {
      return InvalidArgument(at +
                             ".type must be PLAINTEXT, PARAMETER_STORE or SECRETS_MANAGER, "
                             "not '" +
                             e.type.substr(0, 32) + "'.");
    }
    out.push_back(std::move(e));
  }
  return out;
}

Status CheckCodeBuildConfiguration(const std::map<std::string, std::string>& config,
                                   const std::vector<std::string>& inputs) {
  auto value_of = [&](const char* key) -> const std::string* {
    auto it = config.find(key);
    if (it == config.end() || it->second.find("#{") != std::string::npos) return nullptr;
    return &it->second;
  };
  if (const std::string* name = value_of("ProjectName")) {
    bool ok = name->size() >= 2 && name->size() <= 255 &&
              std::isalnum(static_cast<unsigned char>((*name)[0]));
    for (char c : *name)
      ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
    if (!ok) {
      return InvalidArgument("configuration ProjectName '" + name->substr(0, 64) +
                             "' must be 2 to 255 letters, digits, - or _, starting with a letter "
                             "or digit.");
    }
  }
  auto primary = config.find("PrimarySource");
  if (primary != config.end()) {
    if (primary->second.find("#{") == std::string::npos &&
        std::find(inputs.begin(), inputs.end(), primary->second) == inputs.end()) {
      return InvalidArgument("configuration PrimarySource '" + primary->second.substr(0, 100) +
                             "' must name one of the action's input artifacts.");
    }
  } else if (inputs.size() > 1) {
    return InvalidArgument(
        "configuration PrimarySource is required with more than one input artifact: name the "
        "one that holds the buildspec.");
  }
  if (const std::string* ev = value_of("EnvironmentVariables")) {
    PW_RETURN_IF_ERROR(ParseCodeBuildEnvironmentVariables(*ev).status());
  }
  for (const char* key : {"BatchEnabled", "CombineArtifacts"}) {
    const std::string* v = value_of(key);
    if (v != nullptr && (*v == "true" || *v == "True" || *v == "TRUE")) {
      return InvalidArgument(std::string("configuration ") + key +
                             " true is not supported: Pipewright runs single builds, not batch "
                             "builds; remove it or set it to false.");
    }
  }
  return Status::Ok();
}

std::string ShellSingleQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

Result<CodeBuildProgram> PrepareCodeBuild(const CodeBuildRequest& request) {
  const Buildspec& spec = request.buildspec;
  size_t count = 0;
  for (const auto& [phase, p] : spec.phases) count += p.commands.size() + p.finally.size();
  if (count == 0) {
    return ConfigurationError(
        "The buildspec has no commands: add phases.build.commands (or another phase's).");
  }
  if (request.timeout_minutes < 1) {
    return ConfigurationError("The build's timeout must be at least 1 minute, not " +
                              std::to_string(request.timeout_minutes) + ".");
  }
  CodeBuildProgram p;
  std::vector<std::string>& env = p.spec.env;
  for (const std::string& entry : request.base_env) SetEnv(env, entry);
  for (const auto& [name, value] : request.env) SetEnv(env, name + "=" + value);
  SetEnv(env, std::string(kStatusFileVar) + "=" + request.status_file);
  SetEnv(env, std::string(kVariablesFileVar) + "=" + request.variables_file);
  for (const std::string& entry : env) {
    if (entry.find('\0') != std::string::npos) {
      return ConfigurationError("Environment variable " + EnvName(entry).substr(0, 64) +
                                " holds a NUL byte, which a process environment cannot carry.");
    }
  }

  // The script's own state lives in __pw_* variables; a failure is recorded
  // as "fail PHASE KIND INDEX CODE", each phase entered as "phase PHASE", and
  // an exit before the end (a command called exit, a syntax error) by the
  // EXIT trap as "exit PHASE KIND INDEX CODE".
  std::string script =
      "__pw_run=1; __pw_failed=0; __pw_done=0; __pw_phase=; __pw_kind=; __pw_cmd=0\n"
      "CODEBUILD_BUILD_SUCCEEDING=1; export CODEBUILD_BUILD_SUCCEEDING\n"
      "__pw_fail() { printf 'fail %s %s %s %s\\n' \"$1\" \"$2\" \"$3\" \"$4\" >> "
      "\"$PIPEWRIGHT_STATUS_FILE\"; __pw_failed=1; CODEBUILD_BUILD_SUCCEEDING=0; "
      "export CODEBUILD_BUILD_SUCCEEDING; }\n"
      "trap '__pw_rc=$?; if [ \"$__pw_done\" != 1 ]; then printf \"exit %s %s %s %s\\n\" "
      "\"$__pw_phase\" \"$__pw_kind\" \"$__pw_cmd\" \"$__pw_rc\" >> \"$PIPEWRIGHT_STATUS_FILE\"; "
      "fi' EXIT\n";
  for (const std::string& note : spec.notes) {
    script += "printf '%s\\n' " + ShellSingleQuote("[Container] Note: " + note) + "\n";
  }
  for (BuildPhase phase : kBuildPhases) {
    auto it = spec.phases.find(phase);
    if (it == spec.phases.end()) continue;
    const BuildspecPhase& ph = it->second;
    const char* name = BuildPhaseName(phase);
    script += std::string("if [ \"$__pw_run\" = 1 ]; then\n__pw_phase=") + name +
              "\nprintf 'phase " + name + "\\n' >> \"$PIPEWRIGHT_STATUS_FILE\"\n" +
              "printf '[Container] Entering phase " + name + "\\n'\n__pw_ok=1\n";
    for (size_t i = 0; i < ph.commands.size(); ++i) {
      AppendCommand(script, name, "commands", i + 1, ph.commands[i]);
    }
    script += "__pw_cmds_ok=$__pw_ok; __pw_ok=1\n";
    for (size_t i = 0; i < ph.finally.size(); ++i) {
      AppendCommand(script, name, "finally", i + 1, ph.finally[i]);
    }
    // ABORT after install or pre_build ends the build; after build,
    // post_build runs anyway (CodeBuild's transitions).
    const bool aborts = !ph.continue_on_failure &&
                        (phase == BuildPhase::kInstall || phase == BuildPhase::kPreBuild);
    script += std::string("if [ \"$__pw_cmds_ok\" = 1 ] && [ \"$__pw_ok\" = 1 ]; then\n") +
              "printf '[Container] Phase complete: " + name + " State: SUCCEEDED\\n'\nelse\n" +
              "printf '[Container] Phase complete: " + name + " State: FAILED\\n'\n" +
              (aborts ? "__pw_run=0\n" : "") + "fi\nfi\n";
  }
  std::string exports;
  for (const std::string& name : spec.exported_variables) {
    // Names are checked by the parser (IsEnvName): safe to paste.
    exports += "printf '%s=%s\\0' " + name + " \"${" + name + "-}\"; ";
  }
  script += "__pw_done=1\nif [ \"$__pw_failed\" = 1 ]; then exit 1; fi\n";
  if (!exports.empty()) script += "{ " + exports + "} > \"$PIPEWRIGHT_VARIABLES_FILE\"\n";
  script += "exit 0\n";

  p.buildspec = spec;
  p.timeout_minutes = request.timeout_minutes;
  p.status_file = request.status_file;
  p.variables_file = request.variables_file;
  p.spec.argv = {spec.shell, "-c", std::move(script), "codebuild"};
  p.spec.cwd = request.cwd;
  p.spec.log_path = request.log_path;
  p.spec.timeout_seconds = request.timeout_minutes * 60.0;
  p.spec.kill_grace_seconds = request.kill_grace_seconds;
  return p;
}

CodeBuildOutcome ReadCodeBuildOutcome(const CodeBuildProgram& program, const ProcessExit& exit) {
  std::istringstream lines(ReadFile(program.status_file));
  std::string line, current_phase, fail_phase, fail_kind, exit_phase, exit_kind;
  size_t fail_index = 0, exit_index = 0;
  int fail_code = 0, exit_code = 0;
  bool failed = false, exited = false;
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    std::string what;
    f >> what;
    if (what == "phase") {
      f >> current_phase;
    } else if (what == "fail" && !failed) {
      failed = static_cast<bool>(f >> fail_phase >> fail_kind >> fail_index >> fail_code);
    } else if (what == "exit") {
      exited = static_cast<bool>(f >> exit_phase >> exit_kind >> exit_index >> exit_code);
    }
  }
  const std::string in_phase = current_phase.empty() ? "" : " in phase " + current_phase;
  if (exit.timed_out) {
    return Failed("Timed out after " + std::to_string(program.timeout_minutes) + " minute(s)" +
                      in_phase + ".",
                  current_phase, exit);
  }
  if (exit.cancelled) return Failed("The action was cancelled.", current_phase, exit);
  if (failed) {
    return Failed("Phase " + fail_phase + ": " +
                      Which(program.buildspec, fail_phase, fail_kind, fail_index) +
                      " exited with code " + std::to_string(fail_code) + ".",
                  fail_phase, exit);
  }
  if (exit.signal != 0) {
    return Failed(
        "The build shell was killed by signal " + std::to_string(exit.signal) + in_phase + ".",
        current_phase, exit);
  }
  if (exited) {
    std::string which =
        exit_index > 0 ? ", " + Which(program.buildspec, exit_phase, exit_kind, exit_index) : "";
    return Failed("The build shell exited with code " + std::to_string(exit.exit_code) +
                      " in phase " + exit_phase + which +
                      " before the build ended (a command called exit, or the shell could not "
                      "read a command).",
                  exit_phase, exit);
  }
  if (exit.exit_code != 0) {
    return Failed(
        "The build shell exited with code " + std::to_string(exit.exit_code) + in_phase + ".",
        current_phase, exit);
  }
  CodeBuildOutcome out;
  out.succeeded = true;
  size_t commands = 0;
  for (const auto& [phase, p] : program.buildspec.phases) {
    commands += p.commands.size() + p.finally.size();
  }
  out.summary = "Build succeeded: " + std::to_string(commands) + " command(s) in " +
                std::to_string(program.buildspec.phases.size()) + " phase(s)";
  std::istringstream records(ReadFile(program.variables_file));
  std::string record;
  while (std::getline(records, record, '\0')) {
    size_t eq = record.find('=');
    if (eq == std::string::npos) continue;
    std::string name = record.substr(0, eq);
    for (const std::string& declared : program.buildspec.exported_variables) {
      if (declared == name) {
        out.exported_variables[name] = record.substr(eq + 1);
        break;
      }
    }
  }
  return out;
}

}  // namespace pw::runner
