#pragma once

// How a job worker runs one job's program and reads what it reported: the
// ProcessSpec (argv, environment, working directory, timeout) for either a
// custom program or the built-in Commands action, and the result files the
// program may write. No HTTP here; the only I/O is in the job's own
// directories. Thread-compatible; distinct jobs may be prepared concurrently.
//
//   JobDirs dirs = JobDirs::Under("/tmp/pw-job-abc123");
//   PW_ASSIGN_OR_RETURN(PreparedProgram p, PrepareProgram(job, dirs, input_dirs, options));
//   launcher.Start(p.spec, ...);
//   ...
//   ProgramResult r = ReadProgramResult(p, dirs, exit);
//
// Environment of a program (argv only: no job data is pasted into a shell line):
//   PATH, HOME            the worker's own (custom programs); a fixed PATH and
//                         HOME = the job directory (built-in Commands, as the server)
//   PIPEWRIGHT_JOB_ID, PIPEWRIGHT_PIPELINE, PIPEWRIGHT_STAGE, PIPEWRIGHT_ACTION,
//   PIPEWRIGHT_ACTION_EXECUTION_ID, PIPEWRIGHT_PIPELINE_EXECUTION_ID (and
//   PIPEWRIGHT_EXECUTION_ID, its name in the server's Commands runner)
//   PIPEWRIGHT_CONFIG_<Key>              each configuration property; bytes of
//                                        the key outside [A-Za-z0-9_] become '_'
//   PIPEWRIGHT_INPUT_<Name>              each input artifact's directory
//   PIPEWRIGHT_CONTINUATION_TOKEN        when the job continues an earlier one
// Custom programs only (their result files):
//   PIPEWRIGHT_CONTINUATION_TOKEN_FILE   written non-empty: report success with
//                                        that token (the action stays InProgress)
//   PIPEWRIGHT_PERCENT_COMPLETE_FILE     an integer 0..100 -> percentComplete
//   PIPEWRIGHT_OUTPUT_VARIABLES_FILE     KEY=VALUE lines -> outputVariables
// Built-in Commands run the program of runner/commands.h, as the server's own
// runner does (same configuration checks, script, messages and NUL-separated
// output variables, the declared ones named by the configuration property
// PipewrightOutputVariables); they also get LANG, CODEBUILD_SRC_DIR[_<Name>],
// PIPEWRIGHT_STATUS_FILE, PIPEWRIGHT_VARIABLES_FILE and the variables of the
// configuration property EnvironmentVariables. The worker's --timeout caps
// their TimeoutInMinutes.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "runner/commands.h"
#include "runner/process_launcher.h"
#include "worker/job.h"

namespace pw::worker {

// The directories of one job, all below `root`, which is private to the job.
struct JobDirs {
  std::string root;
  std::string src;     // root/src: the first input artifact; the program's cwd; zipped as output.
  std::string inputs;  // root/in: the other input artifacts, one directory per name.
  std::string meta;    // root/meta: result files and the output log.
  std::string zips;    // root/zips: downloaded and packed zip files.

  static JobDirs Under(const std::string& root);
  // The directory of input artifact `index` (0 = src) named `name`.
  std::string InputDir(size_t index, const std::string& name) const;
};

struct ProgramOptions {
  // argv of the custom program, argv[0] absolute; empty = the built-in
  // Commands runner (configuration property Commands, newline-separated).
  std::vector<std::string> program;
  // Custom: 0 = none. Built-in: TimeoutInMinutes (default 60) or, when
  // shorter and not 0, this.
  double timeout_seconds = 0;
  double kill_grace_seconds = 5;
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  std::string home;  // Empty: the job's root directory.
};

struct PreparedProgram {
  runner::ProcessSpec spec;  // What to start; the caller may wrap spec.argv (sandbox).
  // Built-in only: the Commands program (its spec is the one above, unwrapped).
  std::optional<runner::CommandsProgram> builtin;
  double timeout_seconds = 0;  // As put in spec, for messages.
};

// Builds the spec for `job`, whose inputs are already unpacked at
// `input_dirs` (artifact name -> directory, in `job.input_artifacts` order).
// Built-in: runner::PrepareCommands with the non-blank lines of the
// configuration property Commands. Errors (built-in only): those of
// runner::PrepareCommands, kInvalidArgument with wire name ConfigurationError
// (the job's failure type): no commands, a malformed TimeoutInMinutes (1..480)
// or EnvironmentVariables, a NUL byte, a bad output variable name. Touches no
// file.
Result<PreparedProgram> PrepareProgram(
    const Job& job, const JobDirs& dirs,
    const std::vector<std::pair<std::string, std::string>>& input_dirs,
    const ProgramOptions& options);

// What a finished program reported.
struct ProgramResult {
  bool succeeded = false;
  std::string failure_message;          // When !succeeded: how it ended and its last output lines.
  std::string summary;                  // When succeeded: "exit 0", or "N command(s) succeeded".
  std::string continuation_token;       // Non-empty: report success with it.
  std::optional<int> percent_complete;  // From the percent file, clamped to 0..100.
  std::map<std::string, std::string> output_variables;  // Only without a continuation token.
};

// Reads the exit and the result files of a finished program. Built-in: as
// runner::ReadCommandsOutcome, the last output lines appended to a failure
// message. A custom program that exited 0 but wrote a malformed result file
// (a variable line without '=' or with a key outside [A-Za-z0-9@_-], a token
// over 2048 bytes) fails, with a message saying which line.
ProgramResult ReadProgramResult(const PreparedProgram& program, const JobDirs& dirs,
                                const runner::ProcessExit& exit);

}  // namespace pw::worker
