#include "worker/job_program.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

namespace pw::worker {

namespace {

constexpr size_t kMaxContinuationToken = 2048;

std::string ContinuationTokenFile(const JobDirs& d) { return d.meta + "/continuation-token"; }
std::string PercentCompleteFile(const JobDirs& d) { return d.meta + "/percent-complete"; }
std::string OutputVariablesFile(const JobDirs& d) { return d.meta + "/output-variables"; }
std::string StatusFile(const JobDirs& d) { return d.meta + "/status"; }

std::string EnvName(const std::string& key) {
  std::string out = key;
  for (char& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  }
  return out;
}

// Empty when the file is missing.
std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> SplitCommands(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) out.push_back(line);
  }
  return out;
}

bool IsVariableKey(const std::string& key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '@' && c != '-' && c != '_') {
      return false;
    }
  }
  return true;
}

std::string WithTail(std::string message, const std::string& tail) {
  if (!tail.empty()) message += "\n" + tail;
  return message;
}

}  // namespace

JobDirs JobDirs::Under(const std::string& root) {
  return JobDirs{root, root + "/src", root + "/in", root + "/meta", root + "/zips"};
}

std::string JobDirs::InputDir(size_t index, const std::string& name) const {
  return index == 0 ? src : inputs + "/" + name;
}

Result<PreparedProgram> PrepareProgram(
    const Job& job, const JobDirs& dirs,
    const std::vector<std::pair<std::string, std::string>>& input_dirs,
    const ProgramOptions& options) {
  const bool builtin = options.program.empty();
  PreparedProgram p;
  std::vector<std::string>& env = p.spec.env;
  env = {
      "PATH=" + options.path,
      "HOME=" + (options.home.empty() ? dirs.root : options.home),
      "PIPEWRIGHT_JOB_ID=" + job.id,
      "PIPEWRIGHT_PIPELINE=" + job.pipeline_name,
      "PIPEWRIGHT_STAGE=" + job.stage_name,
      "PIPEWRIGHT_ACTION=" + job.action_name,
      "PIPEWRIGHT_ACTION_EXECUTION_ID=" + job.action_execution_id,
      "PIPEWRIGHT_PIPELINE_EXECUTION_ID=" + job.pipeline_execution_id,
      "PIPEWRIGHT_EXECUTION_ID=" + job.pipeline_execution_id,
      "PIPEWRIGHT_CONTINUATION_TOKEN_FILE=" + ContinuationTokenFile(dirs),
      "PIPEWRIGHT_PERCENT_COMPLETE_FILE=" + PercentCompleteFile(dirs),
      "PIPEWRIGHT_OUTPUT_VARIABLES_FILE=" + OutputVariablesFile(dirs),
  };
  if (!job.continuation_token.empty()) {
    env.push_back("PIPEWRIGHT_CONTINUATION_TOKEN=" + job.continuation_token);
  }
  for (const auto& [k, v] : job.configuration)
    env.push_back("PIPEWRIGHT_CONFIG_" + EnvName(k) + "=" + v);
  for (const auto& [name, dir] : input_dirs) env.push_back("PIPEWRIGHT_INPUT_" + name + "=" + dir);
  p.spec.cwd = dirs.src;
  p.spec.log_path = dirs.meta + "/output.log";
  p.spec.kill_grace_seconds = options.kill_grace_seconds;
  p.timeout_seconds = options.timeout_seconds;

  if (!builtin) {
    p.spec.argv = options.program;
    p.spec.timeout_seconds = p.timeout_seconds;
    return p;
  }

  // Built-in Commands, as the server's own runner runs them.
  auto cfg = [&](const char* key) {
    auto it = job.configuration.find(key);
    return it == job.configuration.end() ? std::string() : it->second;
  };
  env.push_back("LANG=C.UTF-8");
  env.push_back("CODEBUILD_SRC_DIR=" + dirs.src);
  env.push_back("PIPEWRIGHT_STATUS_FILE=" + StatusFile(dirs));
  for (const auto& [name, dir] : input_dirs) env.push_back("CODEBUILD_SRC_DIR_" + name + "=" + dir);
  if (std::string ev = cfg("EnvironmentVariables"); !ev.empty()) {
    nlohmann::json list = nlohmann::json::parse(ev, nullptr, false);
    if (!list.is_array()) {
      return InvalidArgument(
          "Configuration EnvironmentVariables must be a JSON list of "
          "{\"name\", \"value\"} objects.",
          "ConfigurationError");
    }
    for (const auto& v : list) {
      if (v.is_object() && v.contains("name") && v["name"].is_string()) {
        std::string value = v.contains("value") && v["value"].is_string()
                                ? v["value"].get<std::string>()
                                : std::string();
        env.push_back(v["name"].get<std::string>() + "=" + value);
      }
    }
  }
  // The server sends the commands already rewritten so that variables reach
  // them as data (core/shell_quote.h: #{…} became "${PW_VAR_n}", the values
  // are in EnvironmentVariables). A NUL byte would silently cut the script or
  // a value short: refuse it.
  for (const auto& kv : env) {
    if (kv.find('\0') != std::string::npos) {
      return InvalidArgument("Environment variable " + kv.substr(0, kv.find('=')) +
                                 " holds a NUL byte, which a process environment cannot carry.",
                             "ConfigurationError");
    }
  }
  if (cfg("Commands").find('\0') != std::string::npos) {
    return InvalidArgument("Configuration Commands holds a NUL byte; remove it.",
                           "ConfigurationError");
  }
  p.commands = SplitCommands(cfg("Commands"));
  if (p.commands.empty()) {
    return InvalidArgument("Action " + job.action_name +
                               " has no commands: set `commands` or "
                               "configuration Commands.",
                           "ConfigurationError");
  }
  double timeout = 60 * 60.0;
  if (std::string t = cfg("TimeoutInMinutes"); !t.empty()) {
    char* end = nullptr;
    long minutes = std::strtol(t.c_str(), &end, 10);
    if (end == t.c_str() || *end != '\0' || minutes <= 0) {
      return InvalidArgument(
          "Configuration TimeoutInMinutes must be a whole number, not '" + t + "'.",
          "ConfigurationError");
    }
    timeout = static_cast<double>(minutes) * 60.0;
  }
  if (options.timeout_seconds > 0 && options.timeout_seconds < timeout) {
    timeout = options.timeout_seconds;
  }
  p.timeout_seconds = timeout;
  p.spec.timeout_seconds = timeout;
  // Declared outputVariables (the server passes them as
  // PipewrightOutputVariables, comma-separated): exported on success. Only
  // plain identifiers are accepted, since they become part of the script.
  std::string exports;
  {
    std::string names = cfg("PipewrightOutputVariables");
    size_t pos = 0;
    while (pos < names.size()) {
      size_t comma = names.find(',', pos);
      std::string name =
          names.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      pos = comma == std::string::npos ? names.size() : comma + 1;
      bool ok = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]));
      for (char ch : name) ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
      if (!ok) {
        return InvalidArgument(
            "Output variable '" + name + "' is not an environment variable name.",
            "ConfigurationError");
      }
      exports += "printf \"%s=%s\\n\" " + name + " \"${" + name + "-}\"; ";
    }
  }
  // The commands are the script of sh, one per line; nothing else is pasted
  // into it. The EXIT trap records which command failed and its status.
  std::string script =
      "trap 'rc=$?; if [ \"$rc\" -ne 0 ]; then echo \"$PW_CMD $rc\" > "
      "\"$PIPEWRIGHT_STATUS_FILE\"; " +
      (exports.empty() ? std::string()
                       : "else { " + exports + "} > \"$PIPEWRIGHT_OUTPUT_VARIABLES_FILE\"; ") +
      "fi' EXIT\n";
  for (size_t i = 0; i < p.commands.size(); ++i) {
    script += "PW_CMD=" + std::to_string(i + 1) + "\n" + p.commands[i] + "\n";
  }
  p.spec.argv = {"/bin/sh", "-e", "-c", script, "pipewright-action"};
  return p;
}

ProgramResult ReadProgramResult(const PreparedProgram& program, const JobDirs& dirs,
                                const runner::ProcessExit& exit) {
  ProgramResult r;
  const bool builtin = !program.commands.empty();
  if (exit.timed_out) {
    std::ostringstream m;
    m << "Timed out after " << program.timeout_seconds << " second(s).";
    r.failure_message = WithTail(m.str(), exit.output_tail);
    return r;
  }
  if (exit.cancelled) {
    r.failure_message =
        WithTail("The job was cancelled (the worker is shutting down).", exit.output_tail);
    return r;
  }
  if (exit.signal != 0 || exit.exit_code != 0) {
    std::string which = builtin ? "The commands" : "The program";
    int code = exit.exit_code;
    if (builtin) {
      std::istringstream sf(ReadFile(StatusFile(dirs)));
      size_t index = 0;
      int status = 0;
      if (sf >> index >> status && index >= 1 && index <= program.commands.size()) {
        which = "Command " + std::to_string(index) + " (" + program.commands[index - 1] + ")";
        code = status;
      }
    }
    std::string how = exit.signal != 0 ? "was killed by signal " + std::to_string(exit.signal)
                                       : "exited with code " + std::to_string(code);
    r.failure_message = WithTail(which + " " + how + ".", exit.output_tail);
    return r;
  }

  r.continuation_token = Trim(ReadFile(ContinuationTokenFile(dirs)));
  if (r.continuation_token.size() > kMaxContinuationToken) {
    r.continuation_token.clear();
    r.failure_message = "PIPEWRIGHT_CONTINUATION_TOKEN_FILE holds more than 2048 bytes.";
    return r;
  }
  if (std::string pct = Trim(ReadFile(PercentCompleteFile(dirs))); !pct.empty()) {
    char* end = nullptr;
    long v = std::strtol(pct.c_str(), &end, 10);
    if (end != pct.c_str() && *end == '\0') {
      r.percent_complete = static_cast<int>(v < 0 ? 0 : v > 100 ? 100 : v);
    }
  }
  if (r.continuation_token.empty()) {
    std::istringstream in(ReadFile(OutputVariablesFile(dirs)));
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (Trim(line).empty()) continue;
      auto eq = line.find('=');
      std::string key = eq == std::string::npos ? "" : line.substr(0, eq);
      if (!IsVariableKey(key)) {
        r.failure_message = "PIPEWRIGHT_OUTPUT_VARIABLES_FILE line " + std::to_string(n) +
                            " is not KEY=VALUE with KEY of [A-Za-z0-9@_-]: " + line.substr(0, 100);
        r.output_variables.clear();
        return r;
      }
      r.output_variables[key] = line.substr(eq + 1);
    }
  }
  r.succeeded = true;
  return r;
}

}  // namespace pw::worker
