#pragma once

// Variables reach commands as data. A Commands action's commands are shell
// text written by the pipeline's author; the values of the #{…} references in
// them come from elsewhere (StartPipelineExecution, a job worker's output
// variables, an earlier action's environment) and must never be parsed by the
// shell. RewriteForShell replaces every reference with an expansion of an
// environment variable (PW_VAR_1, PW_VAR_2, … one per distinct reference)
// that holds the value, quoted for where it stands, so the shell expands the
// value without re-parsing it:
//   outside quotes          #{v.x}   ->  "${PW_VAR_1}"
//   inside "…"              #{v.x}   ->  ${PW_VAR_1}
//   inside '…'              #{v.x}   ->  '"${PW_VAR_1}"'   (close, expand, reopen)
// Quote tracking follows POSIX sh: a backslash outside quotes escapes the next
// character (a backslash right before a reference is dropped: it would have
// escaped the value's first character, which the quotes now keep literal);
// inside "…" a backslash before a reference stays a literal backslash; inside
// '…' nothing is special but the closing quote; $( … ) and `…` open a fresh
// quoting context; an unquoted # that starts a word begins a comment (a '#{'
// is always a reference).
// The values go into the process's explicit environment, never into the text.
// Pure functions. Thread-safe.
//
//   auto r = RewriteForShell({"echo #{variables.x}"}, scope);
//   // r->commands == {"echo \"${PW_VAR_1}\""}, r->environment == {{"PW_VAR_1", value}}

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "core/variables.h"

namespace pw::core {

struct ShellCommands {
  std::vector<std::string> commands;  // Each input command, its references rewritten.
  // NAME -> value for each distinct reference, in order of first use.
  std::vector<std::pair<std::string, std::string>> environment;
};

// The environment variable prefix used for reference values.
inline constexpr std::string_view kShellVariablePrefix = "PW_VAR_";

// Rewrites the #{…} references of `commands` as described above.
// kInvalidArgument naming the command (1-based) and reference when a
// reference is unterminated, not in `scope`, or its value holds a NUL byte
// (an environment cannot carry one), or when a command itself holds one. Commands without
// references are returned unchanged.
Result<ShellCommands> RewriteForShell(const std::vector<std::string>& commands,
                                      const Variables& scope);

// The commands of a Commands action: `listed` (the declaration's `commands`)
// when non-empty, else the non-blank lines of `configured` (configuration
// Commands).
std::vector<std::string> CommandLines(const std::vector<std::string>& listed,
                                      std::string_view configured);

}  // namespace pw::core
