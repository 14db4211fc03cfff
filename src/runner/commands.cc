#include "runner/commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include "runner/fd.h"

namespace pw::runner {

Status ConfigurationError(std::string message) {
  return InvalidArgument(std::move(message), "ConfigurationError");
}

namespace {

using nlohmann::json;

constexpr int kMaxTimeoutMinutes = 480;
constexpr int kDefaultTimeoutMinutes = 60;
bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

// The words of `command` when it is plain (see PrepareCommands), else nullopt.
std::optional<std::vector<std::string>> PlainWords(const std::string& command) {
  static constexpr std::string_view kPlainPunctuation = "_./,:+@%=-";
  std::vector<std::string> words;
  std::string word;
  for (char c : command) {
    if (c == ' ' || c == '\t') {
      if (!word.empty()) words.push_back(std::exchange(word, {}));
    } else if (std::isalnum(static_cast<unsigned char>(c)) ||
               kPlainPunctuation.find(c) != std::string_view::npos) {
      word += c;
    } else {
      return std::nullopt;
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  if (words.empty() || words[0].find_first_of("=/") != std::string::npos) return std::nullopt;
  // Reserved words, and builtins that differ from (or have no) program of that name; true and
  // false do not (GNU make's list, plus dash's and bash's).
  static const std::set<std::string_view> kShellWords = {
      ".",       ":",        "[",       "[[",       "alias",   "bg",      "break",  "case",
      "cd",      "chdir",    "command", "continue", "declare", "do",      "done",   "echo",
      "elif",    "else",     "esac",    "eval",     "exec",    "exit",    "export", "fc",
      "fg",      "fi",       "for",     "function", "getopts", "hash",    "if",     "in",
      "jobs",    "kill",     "let",     "local",    "login",   "logout",  "printf", "pwd",
      "read",    "readonly", "return",  "select",   "set",     "shift",   "source", "test",
      "then",    "time",     "times",   "trap",     "type",    "typeset", "ulimit", "umask",
      "unalias", "unset",    "until",   "wait",     "while"};
  if (kShellWords.count(words[0]) != 0) return std::nullopt;
  return words;
}

// Where the shell would find `name` on `path` (a PATH value), when every directory it searches
// up to there is a system directory, which the sandbox shows as it is, and the file is a
// regular ELF or #! file every user may read and execute; else nullopt (the shell resolves it).
std::optional<std::string> SystemProgram(const std::string& name, std::string_view path) {
  static constexpr std::string_view kSystemDirs[] = {
      "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"};
  for (size_t start = 0;;) {
    size_t end = path.find(':', start);
    std::string_view dir = path.substr(start, end == std::string_view::npos ? end : end - start);
    if (std::find(std::begin(kSystemDirs), std::end(kSystemDirs), dir) == std::end(kSystemDirs)) {
      return std::nullopt;
    }
    std::string candidate = std::string(dir) + "/" + name;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0) {
      if (!S_ISREG(st.st_mode) || (st.st_mode & 0555) != 0555) return std::nullopt;
      char magic[4] = {};
      Fd fd(open(candidate.c_str(), O_RDONLY | O_CLOEXEC));
      if (fd.get() < 0 || read(fd.get(), magic, sizeof magic) < 2) return std::nullopt;
      if (std::memcmp(magic, "\177ELF", 4) != 0 && std::memcmp(magic, "#!", 2) != 0) {
        return std::nullopt;  // The shell would run it as a script; execve would refuse.
      }
      return candidate;
    }
    if (end == std::string_view::npos) return std::nullopt;
    start = end + 1;
  }
}

// The value of `name` in `env` ("K=V" entries), if set.
std::optional<std::string_view> EnvLookup(const std::vector<std::string>& env,
                                          std::string_view name) {
  for (const std::string& entry : env) {
    if (entry.size() > name.size() && entry[name.size()] == '=' && entry.starts_with(name)) {
      return std::string_view(entry).substr(name.size() + 1);
    }
  }
  return std::nullopt;
}

// One plain command and nothing to export: the argv of its program, without the shell (one
// exec fewer: 0.3-1.8 ms an action here, `make bench`'s two floors); else nullopt.
std::optional<std::vector<std::string>> DirectArgv(const CommandsRequest& request,
                                                   const std::vector<std::string>& env) {
  if (request.commands.size() != 1 || !request.output_variables.empty()) return std::nullopt;
  std::optional<std::vector<std::string>> words = PlainWords(request.commands[0]);
  std::optional<std::string_view> path = EnvLookup(env, "PATH");
  if (!words || !path) return std::nullopt;
  std::optional<std::string> program = SystemProgram(words->front(), *path);
  if (!program) return std::nullopt;
  words->front() = std::move(*program);
  return words;
}

// The /bin/sh -e script of `request`'s commands (output variable names already checked). Its
// EXIT trap records which command failed and its status; on success it exports the declared
// output variables as NAME=VALUE records each ending in a NUL byte.
std::string ShellScript(const CommandsRequest& request) {
  std::string exports;
  for (const std::string& name : request.output_variables) {
    exports += "printf \"%s=%s\\0\" " + name + " \"${" + name + "-}\"; ";
  }
  std::string script =
      "trap 'rc=$?; if [ \"$rc\" -ne 0 ]; then echo \"$PW_CMD $rc\" > "
      "\"$PIPEWRIGHT_STATUS_FILE\"; " +
      (exports.empty() ? std::string()
                       : "else { " + exports + "} > \"$PIPEWRIGHT_VARIABLES_FILE\"; ") +
      "fi' EXIT\n";
  for (size_t i = 0; i < request.commands.size(); ++i) {
    script += "PW_CMD=" + std::to_string(i + 1) + "\n" + request.commands[i] + "\n";
  }
  return script;
}

// Letters, digits and _, not starting with a digit: safe to paste into the
// script as a variable name.
bool IsShellName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

// The checks of CheckCommandsConfiguration; with `skip_unresolved`, values
// holding "#{" are not checked. The parsed values go to *env and *minutes
// when given.
Status CheckConfiguration(const std::map<std::string, std::string>& config, bool skip_unresolved,
                          std::vector<std::pair<std::string, std::string>>* env,
                          std::optional<int>* minutes) {
  auto value_of = [&](const char* key) -> const std::string* {
    auto it = config.find(key);
    if (it == config.end()) return nullptr;
    if (skip_unresolved && it->second.find("#{") != std::string::npos) return nullptr;
    return &it->second;
  };
  if (const std::string* ev = value_of("EnvironmentVariables")) {
    json list = json::parse(*ev, nullptr, false);
    if (!list.is_array()) {
      return InvalidArgument(
          "configuration EnvironmentVariables must be a JSON list of {\"name\": \"…\", "
          "\"value\": \"…\"} objects.");
    }
    for (size_t i = 0; i < list.size(); ++i) {
      const json& v = list[i];
      if (!v.is_object() || !v.contains("name") || !v["name"].is_string() ||
          (v.contains("value") && !v["value"].is_string())) {
        return InvalidArgument("configuration EnvironmentVariables[" + std::to_string(i) +
                               "] must be {\"name\": string, \"value\": string}; write numbers "
                               "as strings, e.g. \"value\": \"1\".");
      }
      if (env != nullptr) {
        env->emplace_back(v["name"].get<std::string>(),
                          v.contains("value") ? v["value"].get<std::string>() : std::string());
      }
    }
  }
  if (const std::string* t = value_of("TimeoutInMinutes")) {
    // At most 4 digits before converting: no overflow, and "0480" stays 480.
    bool digits =
        !t->empty() && t->size() <= 4 && t->find_first_not_of("0123456789") == std::string::npos;
    int n = digits ? std::stoi(*t) : 0;
    if (!digits || n < 1 || n > kMaxTimeoutMinutes) {
      return InvalidArgument(
          "configuration TimeoutInMinutes must be a whole number of minutes "
          "from 1 to 480, not '" +
          t->substr(0, 32) + "'.");
    }
    if (minutes != nullptr) *minutes = n;
  }
  return Status::Ok();
}

CommandsOutcome Failed(std::string message, const ProcessExit& exit) {
  CommandsOutcome out;
  out.summary = exit.output_tail.empty() ? message : exit.output_tail;
  out.failure_message = std::move(message);
  return out;
}

}  // namespace

std::string EnvName(const std::string& entry) { return entry.substr(0, entry.find('=')); }

void SetEnv(std::vector<std::string>& env, std::string entry) {
  const std::string name = EnvName(entry);
  for (std::string& e : env) {
    if (EnvName(e) == name) {
      e = std::move(entry);
      return;
    }
  }
  env.push_back(std::move(entry));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Status CheckCommandsConfiguration(const std::map<std::string, std::string>& config) {
  return CheckConfiguration(config, /*skip_unresolved=*/true, nullptr, nullptr);
}

Result<CommandsProgram> PrepareCommands(const CommandsRequest& request) {
  if (request.commands.empty()) {
    return ConfigurationError(
        "The action has no commands: set `commands` or configuration Commands.");
  }
  for (size_t i = 0; i < request.commands.size(); ++i) {
    if (HasNul(request.commands[i])) {
      return ConfigurationError("Command " + std::to_string(i + 1) +
                                " holds a NUL byte; remove it.");
    }
  }
  std::vector<std::pair<std::string, std::string>> configured_env;
  std::optional<int> minutes;
  if (Status c = CheckConfiguration(request.configuration, /*skip_unresolved=*/false,
                                    &configured_env, &minutes);
      !c.ok()) {
    return ConfigurationError("C" + c.message().substr(1));
  }
  if (!minutes && request.default_timeout_minutes) {
    if (*request.default_timeout_minutes < 1) {
      return ConfigurationError("The action's timeout must be at least 1 minute, not " +
                                std::to_string(*request.default_timeout_minutes) + ".");
    }
    minutes = request.default_timeout_minutes;
  }
  for (const std::string& name : request.output_variables) {
    if (!IsShellName(name)) {
      return ConfigurationError("Output variable '" + name +
                                "' is not an environment variable name (letters, digits, _).");
    }
  }

  CommandsProgram p;
  std::vector<std::string>& env = p.spec.env;
  for (const std::string& entry : request.base_env) SetEnv(env, entry);
  for (const auto& [name, value] : configured_env) SetEnv(env, name + "=" + value);
  for (const auto& [name, value] : request.extra_env) SetEnv(env, name + "=" + value);
  SetEnv(env, std::string(kStatusFileVar) + "=" + request.status_file);
  SetEnv(env, std::string(kVariablesFileVar) + "=" + request.variables_file);
  for (const std::string& entry : env) {
    if (HasNul(entry)) {
      return ConfigurationError("Environment variable " + EnvName(entry).substr(0, 64) +
                                " holds a NUL byte, which a process environment cannot carry.");
    }
  }

  p.commands = request.commands;
  p.output_variables = request.output_variables;
  p.timeout_minutes = minutes.value_or(kDefaultTimeoutMinutes);
  p.timeout_seconds = p.timeout_minutes * 60.0;
  if (request.max_timeout_seconds > 0 && request.max_timeout_seconds < p.timeout_seconds) {
    p.timeout_seconds = request.max_timeout_seconds;
  }
  p.status_file = request.status_file;
  p.variables_file = request.variables_file;
  if (std::optional<std::vector<std::string>> argv = DirectArgv(request, env)) {
    p.spec.argv = std::move(*argv);
    p.direct = true;
  } else {
    p.spec.argv = {"/bin/sh", "-e", "-c", ShellScript(request), "pipewright-action"};
  }
  p.spec.cwd = request.cwd;
  p.spec.log_path = request.log_path;
  p.spec.timeout_seconds = p.timeout_seconds;
  p.spec.kill_grace_seconds = request.kill_grace_seconds;
  return p;
}

CommandsOutcome ReadCommandsOutcome(const CommandsProgram& program, const ProcessExit& exit) {
  if (exit.timed_out) {
    if (program.timeout_seconds < program.timeout_minutes * 60.0) {
      std::ostringstream m;
      m << "Timed out after " << program.timeout_seconds << " second(s) (the runner's limit).";
      return Failed(m.str(), exit);
    }
    return Failed("Timed out after " + std::to_string(program.timeout_minutes) + " minute(s).",
                  exit);
  }
  if (exit.cancelled) return Failed("The action was cancelled.", exit);
  if (exit.signal != 0 || exit.exit_code != 0) {
    std::string which = "The commands";
    std::string verb = "were";
    int code = exit.exit_code;
    size_t index = 0;
    int recorded = 0;
    if (program.direct) {  // No shell, no status file: its one command ended so.
      which = "Command 1 (" + program.commands[0] + ")";
      verb = "was";
    } else if (std::istringstream status(ReadFile(program.status_file));
               status >> index >> recorded && index >= 1 && index <= program.commands.size()) {
      which = "Command " + std::to_string(index) + " (" + program.commands[index - 1] + ")";
      verb = "was";
      code = recorded;
    }
    std::string how = exit.signal != 0 ? verb + " killed by signal " + std::to_string(exit.signal)
                                       : "exited with code " + std::to_string(code);
    return Failed(which + " " + how + ".", exit);
  }

  CommandsOutcome out;
  out.succeeded = true;
  out.summary = std::to_string(program.commands.size()) + " command(s) succeeded";
  if (program.output_variables.empty()) return out;
  std::istringstream records(ReadFile(program.variables_file));
  std::string record;
  while (std::getline(records, record, '\0')) {
    size_t eq = record.find('=');
    if (eq == std::string::npos) continue;
    std::string name = record.substr(0, eq);
    for (const std::string& declared : program.output_variables) {
      if (declared == name) {
        out.output_variables[name] = record.substr(eq + 1);
        break;
      }
    }
  }
  return out;
}

}  // namespace pw::runner
