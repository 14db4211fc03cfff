#include "runner/orphans.h"

#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace pw::runner {

int KillActionProcesses(const std::set<std::string>& action_execution_ids) {
  if (action_execution_ids.empty()) return 0;
  static constexpr std::string_view kVar = "PIPEWRIGHT_ACTION_EXECUTION_ID=";
  std::set<pid_t> groups;
  const pid_t own_group = getpgrp();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream f(entry.path() / "environ", std::ios::binary);
    if (!f) continue;  // Gone, or not ours.
    std::string env((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    size_t pos = 0;
    while (pos < env.size()) {
      size_t end = env.find('\0', pos);
      if (end == std::string::npos) end = env.size();
      std::string_view var(env.data() + pos, end - pos);
      if (var.substr(0, kVar.size()) == kVar &&
          action_execution_ids.count(std::string(var.substr(kVar.size())))) {
        const pid_t pid = static_cast<pid_t>(std::stol(name));
        const pid_t group = getpgid(pid);
        if (group > 0 && group != own_group) groups.insert(group);
        break;
      }
      pos = end + 1;
    }
  }
  int killed = 0;
  for (pid_t g : groups) killed += kill(-g, SIGKILL) == 0 ? 1 : 0;
  return killed;
}

}  // namespace pw::runner
