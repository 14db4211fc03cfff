#pragma once

// Finding the processes of actions that outlived a crashed server. Every
// built-in Commands action runs with PIPEWRIGHT_ACTION_EXECUTION_ID=<id> in
// its environment and in its own process group; after `kill -9` of the
// server those groups keep running. On restart the engine fails their runs
// and calls KillActionProcesses so a retry never runs beside a leftover copy.
// Thread-safe (reads /proc only).

#include <set>
#include <string>

namespace pw::runner {

// Sends SIGKILL to the process group of every process (of this user) whose
// environment names one of `action_execution_ids`. Never signals the
// caller's own process group. Returns how many process groups were killed.
int KillActionProcesses(const std::set<std::string>& action_execution_ids);

}  // namespace pw::runner
