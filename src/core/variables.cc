#include "core/variables.h"

namespace pw::core {

Variables VariableScope(const PipelineState& p, const Execution& e) {
  Variables scope;
  for (const auto& [name, value] : e.variables) scope["variables." + name] = value;
  scope["codepipeline.PipelineExecutionId"] = e.id;
  for (const auto& s : p.decl.stages) {
    for (const auto& a : s.actions) {
      // Reserved namespaces are refused when a pipeline is declared; a pipeline
      // stored before that rule still cannot pass an action's outputs off as
      // CodePipeline's or the pipeline's own variables.
      if (a.namespace_name.empty() || a.namespace_name == "codepipeline" ||
          a.namespace_name == "variables") {
        continue;
      }
      const StageRun* sr = e.FindStageRun(s.name);
      if (sr == nullptr) continue;
      auto it = sr->latest.find(a.name);
      const ActionRun* r = it == sr->latest.end() ? nullptr : e.FindRun(it->second);
      if (r == nullptr || r->status != ActionStatus::kSucceeded) continue;
      for (const auto& [name, value] : r->output_variables) {
        scope[a.namespace_name + "." + name] = value;
      }
    }
  }
  return scope;
}

Result<std::string> ResolveVariables(std::string_view text, const Variables& scope) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = text.find("#{", pos);
    if (start == std::string_view::npos) {
      out.append(text.substr(pos));
      break;
    }
    out.append(text.substr(pos, start - pos));
    size_t end = text.find('}', start + 2);
    if (end == std::string_view::npos) {
      return InvalidArgument("Unterminated variable reference '" + std::string(text.substr(start)) +
                             "': close it with '}'.");
    }
    std::string ref(text.substr(start + 2, end - start - 2));
    auto it = scope.find(ref);
    if (it == scope.end()) {
      return InvalidArgument("Variable #{" + ref +
                             "} cannot be resolved: no earlier action in this execution produced "
                             "it (check the namespace and that the action succeeded) and no "
                             "pipeline variable has that name.");
    }
    if (it->second.find('\0') != std::string::npos) {
      return InvalidArgument("The value of variable #{" + ref +
                             "} holds a NUL byte; configuration values cannot carry one.");
    }
    out.append(it->second);
    pos = end + 1;
  }
  return out;
}

Result<Variables> ExecutionVariables(const PipelineDecl& decl, const Variables& given) {
  Variables out;
  for (const auto& [name, value] : given) {
    if (!decl.variables.count(name)) {
      return InvalidArgument("Pipeline " + decl.name + " declares no variable named '" + name +
                             "'; declare it in the pipeline's `variables` first.");
    }
    out[name] = value;
  }
  for (const auto& [name, def] : decl.variables) {
    if (out.count(name)) continue;
    if (!def.has_value()) {
      return InvalidArgument("Pipeline variable '" + name +
                             "' has no default value; pass it with --variables name=" + name +
                             ",value=….");
    }
    out[name] = *def;
  }
  return out;
}

}  // namespace pw::core
