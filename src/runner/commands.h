#pragma once

// The built-in Commands action's program, one definition for both places that
// run it: the server's local runner (engine) and `pipewright worker --builtin`.
// Both build the process with PrepareCommands and read how it ended with
// ReadCommandsOutcome, so they accept the same configuration, give the same
// environment and report the same messages and output variables.
//
//   CommandsRequest req;
//   req.commands = shell.commands;  // core::RewriteForShell's output
//   req.base_env = {"PATH=/usr/bin:/bin", "HOME=" + work};
//   req.configuration = action.configuration;  // EnvironmentVariables, TimeoutInMinutes
//   req.extra_env = shell.environment;          // PW_VAR_n values
//   req.output_variables = {"VERSION"};
//   req.cwd = work;
//   req.log_path = work + ".log";
//   req.status_file = work + ".status";
//   req.variables_file = work + ".vars";
//   PW_ASSIGN_OR_RETURN(CommandsProgram program, PrepareCommands(req));
//   launcher.Start(program.spec, [program](ProcessId, const ProcessExit& exit) {
//     CommandsOutcome outcome = ReadCommandsOutcome(program, exit);
//     ...
//   });
//
// The program: the commands are the script of `/bin/sh -e -c`, one per line,
// each preceded by `PW_CMD=<1-based index>`; nothing else from the request is
// pasted into the script (values travel in the environment). Its EXIT trap
// writes "<index> <status>" to $PIPEWRIGHT_STATUS_FILE when the script fails,
// and when it succeeds writes each declared output variable as a
// NAME=VALUE record followed by a NUL byte to $PIPEWRIGHT_VARIABLES_FILE (so
// values may hold newlines; unset variables are exported empty).
//
// Environment, in this order; an entry replaces any earlier entry of the same
// name (where /bin/sh would let the later one win anyway):
//   1. base_env                                     the caller's (PATH, HOME, ids, ...)
//   2. configuration EnvironmentVariables           in list order
//   3. extra_env                                    in order
//   4. PIPEWRIGHT_STATUS_FILE, PIPEWRIGHT_VARIABLES_FILE   always the request's files
//
// Pure functions but for ReadCommandsOutcome, which reads the two result
// files. Thread-safe.

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "runner/process_launcher.h"

namespace pw::runner {

// The environment variables that name an action's status file and its output variables file
// (Commands and CodeBuild actions).
inline constexpr char kStatusFileVar[] = "PIPEWRIGHT_STATUS_FILE";
inline constexpr char kVariablesFileVar[] = "PIPEWRIGHT_VARIABLES_FILE";

// kInvalidArgument whose wire name is ConfigurationError: an action's configuration is wrong.
Status ConfigurationError(std::string message);

// The Commands configuration values the runner parses: EnvironmentVariables a
// JSON list of {"name": string, "value": string} ("value" may be left out:
// empty); TimeoutInMinutes a whole number of minutes, 1 to 480 (digits only).
// Values containing "#{" are skipped: their variables are resolved when the
// action runs, and PrepareCommands checks them then. Other keys are ignored.
// kInvalidArgument (wire name ValidationException) whose message starts
// "configuration <field>", e.g. "configuration EnvironmentVariables[2] must be
// {...}", for the caller to prefix with where the action is.
Status CheckCommandsConfiguration(const std::map<std::string, std::string>& config);

// What to run. Plain value.
struct CommandsRequest {
  // The commands, already rewritten for the shell (core::RewriteForShell),
  // one per element; run in order, the first failure ends the script.
  std::vector<std::string> commands;
  // "NAME=VALUE" entries set by the caller: PATH, HOME, LANG, ids, input
  // directories, ... Nothing else is inherited.
  std::vector<std::string> base_env;
  // The action's configuration, variables resolved; EnvironmentVariables and
  // TimeoutInMinutes are read from it, other keys ignored.
  std::map<std::string, std::string> configuration;
  // More variables after EnvironmentVariables (the declaration's
  // environmentVariables, then the PW_VAR_n reference values).
  std::vector<std::pair<std::string, std::string>> extra_env;
  // Names exported on success: letters, digits and _, not starting with a digit.
  std::vector<std::string> output_variables;
  // The action's timeout, used when TimeoutInMinutes is not set; none: 60.
  std::optional<int> default_timeout_minutes;
  std::string cwd;       // Working directory; must exist when the program starts.
  std::string log_path;  // As ProcessSpec::log_path.
  // Result files the program writes; the caller makes sure they hold nothing
  // from an earlier run (fresh paths per run, or removed).
  std::string status_file;
  std::string variables_file;
  double kill_grace_seconds = 5;
  // A cap on the timeout below TimeoutInMinutes (the worker's --timeout); 0 = none.
  double max_timeout_seconds = 0;
};

// A prepared program. Plain value; the caller may change spec (e.g. wrap
// spec.argv in a sandbox) before starting it.
struct CommandsProgram {
  ProcessSpec spec;                           // argv, environment, cwd, log, timeout.
  std::vector<std::string> commands;          // As in the script, for failure messages.
  std::vector<std::string> output_variables;  // The only names read back.
  int timeout_minutes = 60;                   // TimeoutInMinutes, else the default.
  double timeout_seconds = 0;                 // spec.timeout_seconds: minutes, or the cap.
  std::string status_file;
  std::string variables_file;
  // spec.argv is the one command's own program and words, without a shell (see
  // PrepareCommands); there is then no status file to read.
  bool direct = false;
};

// Builds the program for `request`. Writes no file (it may read the first bytes of a program
// in a system directory, below). Fails with
// kInvalidArgument, wire name ConfigurationError (the action's failure type),
// when there are no commands; when the configuration fails the checks of
// CheckCommandsConfiguration (here "#{" is no excuse: values are resolved;
// the message then starts "Configuration <field>"); when a default timeout is
// below 1 minute; when an environment entry or a command holds a NUL byte (a
// C string would be cut short there); when an output variable is not a
// name as above.
// One command of plain words (letters, digits and _./,:+@%=- separated by blanks: nothing
// a shell would quote, expand, redirect, glob or chain), whose first word is neither an
// assignment nor a shell reserved word or builtin other than true/false, and no output
// variables: the program runs without a shell in between (GNU make's fast path; one exec
// fewer), when PATH finds it in a system directory (/usr/local/sbin … /bin, with no other
// directory searched before) as a regular ELF or #! file every user may read and execute.
// Anything else runs under /bin/sh -e, which then reports what it cannot run.
Result<CommandsProgram> PrepareCommands(const CommandsRequest& request);

// How a finished program ended.
struct CommandsOutcome {
  bool succeeded = false;
  // When !succeeded, one of:
  //   "Command N (<command>) exited with code C."   (or "was killed by signal S.")
  //   "The commands exited with code C."           (no status recorded, e.g. the trap never ran;
  //                                                  "were killed by signal S.")
  //   "Timed out after N minute(s)."   ("after S second(s) (the runner's limit)." when
  //                                      max_timeout_seconds cut the timeout short)
  //   "The action was cancelled."
  std::string failure_message;
  // Succeeded: "N command(s) succeeded". Failed: the last lines of output, or
  // failure_message when there were none.
  std::string summary;
  // Succeeded: the declared output variables (NUL-separated NAME=VALUE
  // records; records of other names or without '=' are ignored). Else empty.
  std::map<std::string, std::string> output_variables;
};

// Reads `exit` and the program's result files (a missing file reads as
// empty). A run that timed out or was cancelled has failed even if its exit
// status is 0. Never fails.
CommandsOutcome ReadCommandsOutcome(const CommandsProgram& program, const ProcessExit& exit);

// Helpers shared by the Commands and CodeBuild programs (runner/codebuild.h).
// The NAME of a NAME=VALUE environment entry.
std::string EnvName(const std::string& entry);
// Sets `entry` (NAME=VALUE) in `env`, replacing an entry of the same name.
void SetEnv(std::vector<std::string>& env, std::string entry);
// A whole file; empty when it is missing or unreadable.
std::string ReadFile(const std::string& path);

}  // namespace pw::runner
