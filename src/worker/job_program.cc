#include "worker/job_program.h"

#include <algorithm>
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
std::string VariablesFile(const JobDirs& d) { return d.meta + "/variables"; }

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
  };
  if (!builtin) {
    env.push_back("PIPEWRIGHT_CONTINUATION_TOKEN_FILE=" + ContinuationTokenFile(dirs));
    env.push_back("PIPEWRIGHT_PERCENT_COMPLETE_FILE=" + PercentCompleteFile(dirs));
    env.push_back("PIPEWRIGHT_OUTPUT_VARIABLES_FILE=" + OutputVariablesFile(dirs));
  }
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

  // Built-in Commands: the program and its result are runner/commands.h's,
  // exactly as in the server. The server sends the commands already rewritten
  // so that variables reach them as data (core/shell_quote.h: #{…} became
  // "${PW_VAR_n}"), the values folded into EnvironmentVariables with the
  // declaration's environmentVariables, and the declared outputVariables as
  // PipewrightOutputVariables (comma-separated).
  auto cfg = [&](const char* key) {
    auto it = job.configuration.find(key);
    return it == job.configuration.end() ? std::string() : it->second;
  };
  runner::CommandsRequest req;
  // The server sends the command list as JSON too (a command may span
  // lines); configuration Commands, one per line, is the fallback.
  req.commands = SplitCommands(cfg("Commands"));
  if (std::string listed = cfg("PipewrightCommands"); !listed.empty()) {
    nlohmann::json list = nlohmann::json::parse(listed, nullptr, false);
    if (list.is_array() && std::all_of(list.begin(), list.end(),
                                       [](const nlohmann::json& c) { return c.is_string(); })) {
      req.commands = list.get<std::vector<std::string>>();
    }
  }
  req.base_env = std::move(env);
  req.base_env.push_back("LANG=C.UTF-8");
  req.base_env.push_back("CODEBUILD_SRC_DIR=" + dirs.src);
  for (const auto& [name, dir] : input_dirs) {
    req.base_env.push_back("CODEBUILD_SRC_DIR_" + name + "=" + dir);
  }
  req.configuration = job.configuration;
  if (std::string names = cfg("PipewrightOutputVariables"); !names.empty()) {
    size_t pos = 0;
    for (;;) {
      size_t comma = names.find(',', pos);
      req.output_variables.push_back(names.substr(pos, comma - pos));
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  req.cwd = dirs.src;
  req.log_path = p.spec.log_path;
  req.status_file = StatusFile(dirs);
  req.variables_file = VariablesFile(dirs);
  req.kill_grace_seconds = options.kill_grace_seconds;
  req.max_timeout_seconds = options.timeout_seconds;
  PW_ASSIGN_OR_RETURN(runner::CommandsProgram program, runner::PrepareCommands(req));
  p.spec = program.spec;
  p.timeout_seconds = program.timeout_seconds;
  p.builtin = std::move(program);
  return p;
}

ProgramResult ReadProgramResult(const PreparedProgram& program, const JobDirs& dirs,
                                const runner::ProcessExit& exit) {
  ProgramResult r;
  if (program.builtin) {
    runner::CommandsOutcome outcome = runner::ReadCommandsOutcome(*program.builtin, exit);
    r.succeeded = outcome.succeeded;
    r.summary = outcome.summary;
    if (!outcome.succeeded) r.failure_message = WithTail(outcome.failure_message, exit.output_tail);
    r.output_variables = std::move(outcome.output_variables);
    return r;
  }
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
    std::string how = exit.signal != 0 ? "was killed by signal " + std::to_string(exit.signal)
                                       : "exited with code " + std::to_string(exit.exit_code);
    r.failure_message = WithTail("The program " + how + ".", exit.output_tail);
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
  r.summary = "exit 0";
  return r;
}

}  // namespace pw::worker
