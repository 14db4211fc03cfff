#include "cli/servers.h"

#include "cli/model.h"

namespace pw::cli {

int RunServers(const std::vector<std::string>& args, const CliContext& ctx) {
  if (!args.empty()) {
    ctx.err() << "usage: pipewright servers (no arguments; --output and --query apply)\n";
    return 252;
  }
  auto out = ctx.Call("Pipewright_20261125.ListServers", nlohmann::json::object());
  if (!out.ok()) return ctx.PrintError(out.status(), "ListServers");
  return ctx.PrintResult("ListServers", OJson::parse(out->dump()));
}

}  // namespace pw::cli
