#include "engine/decl_json.h"

namespace pw::engine {
namespace {

std::string Str(const nlohmann::json& j, const char* key, std::string def = {}) {
  auto it = j.find(key);
  return (it != j.end() && it->is_string()) ? it->get<std::string>() : def;
}

core::FailureResult ResultOf(const std::string& r) {
  return r == "RETRY"      ? core::FailureResult::kRetry
         : r == "ROLLBACK" ? core::FailureResult::kRollback
         : r == "SKIP"     ? core::FailureResult::kSkip
         : r == "FAIL"     ? core::FailureResult::kFail
                           : core::FailureResult::kNone;
}

// The `conditions` list of beforeEntry/onSuccess/onFailure. A condition
// without its own result takes `default_result` (onFailure's result).
std::vector<core::ConditionDecl> ConditionsFromJson(const nlohmann::json& holder,
                                                    core::FailureResult default_result) {
  std::vector<core::ConditionDecl> out;
  if (!holder.is_object()) return out;
  for (const auto& cj : holder.value("conditions", nlohmann::json::array())) {
    if (!cj.is_object()) continue;
    core::ConditionDecl c;
    c.result = cj.contains("result") ? ResultOf(Str(cj, "result")) : default_result;
    for (const auto& rj : cj.value("rules", nlohmann::json::array())) {
      if (!rj.is_object()) continue;
      core::RuleDecl r;
      r.name = Str(rj, "name");
      const auto& t = rj.value("ruleTypeId", nlohmann::json::object());
      r.type = {Str(t, "category"), Str(t, "owner", "AWS"), Str(t, "provider"),
                Str(t, "version", "1")};
      const nlohmann::json config = rj.value("configuration", nlohmann::json::object());
      for (const auto& [k, v] : config.items()) {
        if (v.is_string()) r.configuration[k] = v.get<std::string>();
      }
      for (const auto& cmd : rj.value("commands", nlohmann::json::array())) {
        if (cmd.is_string()) r.commands.push_back(cmd.get<std::string>());
      }
      for (const auto& in : rj.value("inputArtifacts", nlohmann::json::array())) {
        r.input_artifacts.push_back(Str(in, "name"));
      }
      r.region = Str(rj, "region");
      r.role_arn = Str(rj, "roleArn");
      if (rj.contains("timeoutInMinutes") && rj["timeoutInMinutes"].is_number_integer()) {
        r.timeout_minutes = rj["timeoutInMinutes"].get<int>();
      }
      c.rules.push_back(std::move(r));
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

core::PipelineDecl DeclFromJson(const nlohmann::json& p) {
  core::PipelineDecl d;
  d.name = Str(p, "name");
  d.version = p.value("version", 1);
  d.has_artifact_store = p.contains("artifactStore") && !p["artifactStore"].is_null();
  d.has_artifact_stores = p.contains("artifactStores") && !p["artifactStores"].is_null();
  d.pipeline_type = Str(p, "pipelineType", "V1");
  if (d.has_artifact_store) {
    d.artifact_bucket = Str(p["artifactStore"], "location");
  } else if (d.has_artifact_stores && p["artifactStores"].is_object() &&
             !p["artifactStores"].empty()) {
    d.artifact_bucket = Str(p["artifactStores"].begin().value(), "location");
  }
  std::string mode = Str(p, "executionMode", "SUPERSEDED");
  d.execution_mode = mode == "QUEUED"     ? core::ExecutionMode::kQueued
                     : mode == "PARALLEL" ? core::ExecutionMode::kParallel
                                          : core::ExecutionMode::kSuperseded;
  for (const auto& v : p.value("variables", nlohmann::json::array())) {
    if (!v.is_object()) continue;
    std::optional<std::string> def;
    if (v.contains("defaultValue") && v["defaultValue"].is_string()) def = Str(v, "defaultValue");
    d.variables[Str(v, "name")] = def;
  }
  for (const auto& sj : p.value("stages", nlohmann::json::array())) {
    core::StageDecl s;
    s.name = Str(sj, "name");
    if (sj.contains("onFailure") && sj["onFailure"].is_object()) {
      const auto& f = sj["onFailure"];
      s.on_failure = ResultOf(Str(f, "result"));
      s.on_failure_has_retry_configuration = f.contains("retryConfiguration");
      s.on_failure_retry_mode = f.contains("retryConfiguration")
                                    ? Str(f["retryConfiguration"], "retryMode", "FAILED_ACTIONS")
                                    : "FAILED_ACTIONS";
      s.on_failure_has_conditions = f.contains("conditions") && !f["conditions"].empty();
      s.on_failure_conditions = ConditionsFromJson(f, s.on_failure);
    }
    if (sj.contains("beforeEntry")) {
      s.before_entry = ConditionsFromJson(sj["beforeEntry"], core::FailureResult::kNone);
    }
    if (sj.contains("onSuccess")) {
      s.on_success = ConditionsFromJson(sj["onSuccess"], core::FailureResult::kNone);
    }
    for (const auto& aj : sj.value("actions", nlohmann::json::array())) {
      core::ActionDecl a;
      a.name = Str(aj, "name");
      const auto& t = aj.value("actionTypeId", nlohmann::json::object());
      a.type = {Str(t, "category"), Str(t, "owner"), Str(t, "provider"), Str(t, "version")};
      a.run_order = aj.value("runOrder", 1);
      const nlohmann::json config = aj.value("configuration", nlohmann::json::object());
      for (const auto& [k, v] : config.items()) {
        if (v.is_string()) a.configuration[k] = v.get<std::string>();
      }
      for (const auto& c : aj.value("commands", nlohmann::json::array())) {
        if (c.is_string()) a.commands.push_back(c.get<std::string>());
      }
      for (const auto& in : aj.value("inputArtifacts", nlohmann::json::array())) {
        a.input_artifacts.push_back(Str(in, "name"));
      }
      for (const auto& out : aj.value("outputArtifacts", nlohmann::json::array())) {
        core::OutputArtifactDecl o{Str(out, "name"), {}};
        for (const auto& f : out.value("files", nlohmann::json::array())) {
          if (f.is_string()) o.files.push_back(f.get<std::string>());
        }
        a.output_artifacts.push_back(std::move(o));
      }
      for (const auto& e : aj.value("environmentVariables", nlohmann::json::array())) {
        a.environment.push_back({Str(e, "name"), Str(e, "value")});
      }
      if (aj.contains("timeoutInMinutes") && aj["timeoutInMinutes"].is_number_integer()) {
        a.timeout_minutes = aj["timeoutInMinutes"].get<int>();
      }
      a.namespace_name = Str(aj, "namespace");
      for (const auto& v : aj.value("outputVariables", nlohmann::json::array())) {
        if (v.is_string()) a.output_variables.push_back(v.get<std::string>());
      }
      s.actions.push_back(std::move(a));
    }
    d.stages.push_back(std::move(s));
  }
  return d;
}

nlohmann::json NormalizeDeclaration(nlohmann::json p) {
  p.erase("version");
  if (!p.contains("pipelineType")) p["pipelineType"] = "V1";
  if (!p.contains("executionMode")) p["executionMode"] = "SUPERSEDED";
  for (auto& s : p["stages"]) {
    for (auto& a : s["actions"]) {
      if (!a.contains("runOrder")) a["runOrder"] = 1;
      if (!a.contains("inputArtifacts")) a["inputArtifacts"] = nlohmann::json::array();
      if (!a.contains("outputArtifacts")) a["outputArtifacts"] = nlohmann::json::array();
      if (!a.contains("configuration")) a["configuration"] = nlohmann::json::object();
    }
  }
  return p;
}

}  // namespace pw::engine
