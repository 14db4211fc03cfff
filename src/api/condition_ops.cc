#include "api/condition_ops.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/pipeline_ops.h"
#include "engine/rule_types.h"

namespace pw::api {
namespace {

using nlohmann::json;

const core::RuleDecl* FindRule(const core::PipelineDecl& d, const core::RuleRun& r) {
  const core::StageDecl* s = d.FindStage(r.stage);
  if (s == nullptr) return nullptr;
  for (const auto& c : s->Conditions(r.kind)) {
    for (const auto& rule : c.rules) {
      if (rule.name == r.rule) return &rule;
    }
  }
  return nullptr;
}

json RuleLatest(const core::RuleRun& r) {
  json j = {
      {"ruleExecutionId", r.id}, {"status", core::Name(r.status)}, {"lastStatusChange", r.updated}};
  if (!r.summary.empty()) j["summary"] = r.summary.substr(0, 2048);
  if (!r.updated_by.empty()) j["lastUpdatedBy"] = r.updated_by;
  if (!r.external_id.empty()) j["externalExecutionId"] = r.external_id;
  if (!r.external_url.empty()) j["externalExecutionUrl"] = r.external_url;
  if (r.status == core::ActionStatus::kFailed) {
    j["errorDetails"] = {{"code", r.error_code.empty() ? "RuleFailed" : r.error_code},
                         {"message", r.error_message.empty() ? "The rule failed."
                                                             : r.error_message.substr(0, 5000)}};
  }
  return j;
}

json TypeIdJson(const core::ActionTypeId& id) {
  return {{"category", id.category},
          {"owner", id.owner},
          {"provider", id.provider},
          {"version", id.version}};
}

json RuleTypeJson(const engine::BuiltinActionType& t) {
  json props = json::array();
  for (const auto& p : t.properties) {
    json q = {{"name", p.name},     {"required", p.required},   {"key", p.key},
              {"secret", p.secret}, {"queryable", p.queryable}, {"type", p.type}};
    if (!p.description.empty()) q["description"] = p.description.substr(0, 160);
    props.push_back(q);
  }
  return {
      {"id", TypeIdJson(t.id)},
      {"settings", json::object()},
      {"ruleConfigurationProperties", props},
      {"inputArtifactDetails", {{"minimumCount", t.min_inputs}, {"maximumCount", t.max_inputs}}}};
}

std::string BucketOf(const json& declaration) {
  if (declaration.contains("artifactStore") && declaration["artifactStore"].is_object()) {
    return declaration["artifactStore"].value("location", "");
  }
  const json stores = declaration.value("artifactStores", json::object());
  if (stores.is_object() && !stores.empty() && stores.begin()->is_object()) {
    return stores.begin()->value("location", "");
  }
  return "";
}

// The rule runs ListRuleExecutions lists for `filter`, newest first.
Result<std::vector<std::pair<const core::Execution*, const core::RuleRun*>>> FilterRuleRuns(
    const engine::Snapshot& snap, const json& filter) {
  std::string only;
  bool latest_only = false;
  if (filter.is_object()) {
    if (filter.contains("pipelineExecutionId") && filter.contains("latestInPipelineExecution")) {
      return InvalidArgument(
          "Give either filter.pipelineExecutionId or filter.latestInPipelineExecution, not both.",
          "ValidationException");
    }
    if (filter.contains("pipelineExecutionId")) only = filter["pipelineExecutionId"];
    if (filter.contains("latestInPipelineExecution")) {
      const json& l = filter["latestInPipelineExecution"];
      only = l.value("pipelineExecutionId", "");
      latest_only = l.value("startTimeRange", "Latest") == "Latest";
    }
  }
  if (!only.empty() && snap.state.FindExecution(only) == nullptr) {
    return NotFound("Pipeline execution " + only + " was not found in pipeline " +
                        snap.record.name + "; list them with list-pipeline-executions.",
                    "PipelineExecutionNotFoundException");
  }
  std::vector<std::pair<const core::Execution*, const core::RuleRun*>> out;
  for (const auto& e : snap.state.executions) {
    if (!only.empty() && e.id != only) continue;
    std::map<std::pair<std::string, std::string>, const core::RuleRun*> latest;
    for (const auto& r : e.rule_runs) latest[{r.stage, r.rule}] = &r;
    for (const auto& r : e.rule_runs) {
      if (latest_only && latest[{r.stage, r.rule}] != &r) continue;
      out.emplace_back(&e, &r);
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return engine::RuleRunBefore({a.second->started, a.second->id},
                                 {b.second->started, b.second->id});
  });
  return out;
}

// A ListRuleExecutions nextToken names the position of the page's last rule
// run (engine::RuleRunPosition): its start time, exactly, and its id.
std::string RuleToken(const core::RuleRun& r) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, r.started);  // Shortest exact form.
  return EncodeToken(std::string(buf, end) + "|" + r.id);
}

Result<engine::RuleRunPosition> RulePosition(const json& token) {
  PW_ASSIGN_OR_RETURN(std::string key, DecodeToken(token));
  const size_t bar = key.find('|');
  engine::RuleRunPosition at;
  const char* end = key.data() + (bar == std::string::npos ? 0 : bar);
  auto [ptr, ec] = std::from_chars(key.data(), end, at.started);
  if (bar == std::string::npos || bar == 0 || ec != std::errc() || ptr != end ||
      !std::isfinite(at.started) || bar + 1 == key.size()) {
    return InvalidArgument(
        "The nextToken is not one ListRuleExecutions returned; start the "
        "listing again without it.",
        "InvalidNextTokenException");
  }
  at.id = key.substr(bar + 1);
  return at;
}

}  // namespace

void AddConditionStates(const core::StageDecl& s, const core::Execution* e,
                        const core::StageRun* sr, json& st) {
  for (core::ConditionKind kind :
       {core::ConditionKind::kBeforeEntry, core::ConditionKind::kOnSuccess,
        core::ConditionKind::kOnFailure}) {
    const auto& decls = s.Conditions(kind);
    if (decls.empty()) continue;
    const core::ConditionRun* cr = sr != nullptr ? sr->FindCondition(kind) : nullptr;
    json states = json::array();
    for (const auto& c : decls) {
      json rules = json::array();
      for (const auto& rule : c.rules) {
        json rs = {{"ruleName", rule.name}};
        if (cr != nullptr && e != nullptr) {
          auto it = cr->latest.find(rule.name);
          const core::RuleRun* r = it == cr->latest.end() ? nullptr : e->FindRuleRun(it->second);
          if (r != nullptr) rs["latestExecution"] = RuleLatest(*r);
        }
        rules.push_back(rs);
      }
      json cs = {{"ruleStates", rules}};
      if (cr != nullptr) {
        cs["latestExecution"] = {{"status", core::Name(cr->status)},
                                 {"lastStatusChange", cr->updated}};
        if (!cr->summary.empty()) cs["latestExecution"]["summary"] = cr->summary.substr(0, 2048);
      }
      states.push_back(cs);
    }
    json state = {{"conditionStates", states}};
    if (cr != nullptr) {
      state["latestExecution"] = {{"status", core::Name(cr->status)}};
      if (!cr->summary.empty()) state["latestExecution"]["summary"] = cr->summary.substr(0, 2048);
    }
    const char* field = kind == core::ConditionKind::kBeforeEntry ? "beforeEntryConditionState"
                        : kind == core::ConditionKind::kOnSuccess ? "onSuccessConditionState"
                                                                  : "onFailureConditionState";
    st[field] = state;
  }
}

json RuleExecutionDetail(const core::PipelineState& p, const core::Execution& e,
                         const core::RuleRun& r, const std::string& bucket,
                         const std::string& region) {
  const core::RuleDecl* rule = FindRule(p.decl, r);
  json input = {{"resolvedConfiguration", r.resolved_configuration}};
  json artifacts = json::array();
  for (const auto& [name, rev] : r.inputs) {
    json a = {{"name", name}};
    if (!rev.empty() && !bucket.empty()) {
      a["s3location"] = {{"bucket", bucket}, {"key", "artifacts/" + rev + ".zip"}};
    }
    artifacts.push_back(a);
  }
  input["inputArtifacts"] = artifacts;
  input["region"] = region;
  if (rule != nullptr) {
    input["ruleTypeId"] = TypeIdJson(rule->type);
    input["configuration"] = rule->configuration;
    if (!rule->role_arn.empty()) input["roleArn"] = rule->role_arn;
    if (!rule->region.empty()) input["region"] = rule->region;
  }
  json result = json::object();
  if (!r.external_id.empty()) result["externalExecutionId"] = r.external_id;
  if (!r.summary.empty()) result["externalExecutionSummary"] = r.summary;
  if (!r.external_url.empty()) result["externalExecutionUrl"] = r.external_url;
  if (r.status == core::ActionStatus::kFailed) {
    result["errorDetails"] = {
        {"code", r.error_code.empty() ? "RuleFailed" : r.error_code},
        {"message", r.error_message.empty() ? "The rule failed." : r.error_message}};
  }
  json d = {{"pipelineExecutionId", e.id},
            {"ruleExecutionId", r.id},
            {"pipelineVersion", e.pipeline_version},
            {"stageName", r.stage},
            {"ruleName", r.rule},
            {"startTime", r.started},
            {"lastUpdateTime", r.updated},
            {"status", core::Name(r.status)},
            {"input", input},
            {"output", {{"executionResult", result}}}};
  if (!r.updated_by.empty()) d["updatedBy"] = r.updated_by;
  return d;
}

void RegisterConditionOps(Dispatcher& d, engine::Engine& eng) {
  d.Register(CodePipelineTarget("OverrideStageCondition"), "OverrideStageCondition",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               const std::string type = in["conditionType"];
               const core::ConditionKind kind = type == "ON_SUCCESS"
                                                    ? core::ConditionKind::kOnSuccess
                                                    : core::ConditionKind::kBeforeEntry;
               PW_RETURN_IF_ERROR(eng.OverrideStageCondition(in["pipelineName"], in["stageName"],
                                                             in["pipelineExecutionId"], kind));
               return json::object();
             });

  d.Register(
      CodePipelineTarget("ListRuleExecutions"), "ListRuleExecutions",
      [&eng](const json& in, const RequestContext&) -> Result<json> {
        const std::string pipeline = in["pipelineName"].get<std::string>();
        const json filter = in.value("filter", json());
        std::string only;
        if (filter.is_object()) {
          if (filter.contains("pipelineExecutionId") && filter["pipelineExecutionId"].is_string())
            only = filter["pipelineExecutionId"].get<std::string>();
          if (filter.contains("latestInPipelineExecution") &&
              filter["latestInPipelineExecution"].is_object()) {
            only = filter["latestInPipelineExecution"].value("pipelineExecutionId", "");
          }
        }
        std::optional<engine::RuleRunPosition> after;
        if (in.contains("nextToken")) {
          PW_ASSIGN_OR_RETURN(after, RulePosition(in["nextToken"]));
        }
        const size_t max = in.contains("maxResults") ? in["maxResults"].get<size_t>() : 100;
        // The page: (execution, rule run) in order, and whether more follow.
        engine::Snapshot snap;
        std::vector<std::pair<const core::Execution*, const core::RuleRun*>> runs;
        bool more = false;
        if (!only.empty()) {
          // The one execution the filter names (issue 15: read by id).
          PW_ASSIGN_OR_RETURN(snap, eng.ExecutionSnapshot(pipeline, only));
          PW_ASSIGN_OR_RETURN(auto all, FilterRuleRuns(snap, filter));
          for (const auto& item : all) {
            if (after && !engine::RuleRunBefore(*after, {item.second->started, item.second->id}))
              continue;
            if (runs.size() == max) {
              more = true;
              break;
            }
            runs.push_back(item);
          }
        } else {
          // Every execution's, read most recently updated first and only as
          // far as the page needs (engine::Engine::RuleRunsPage).
          PW_ASSIGN_OR_RETURN(auto page, eng.RuleRunsPage(pipeline, max, after));
          snap = std::move(page.snap);
          more = page.more;
          for (const auto& [execution, run] : page.runs) {
            const core::Execution* e = snap.state.FindExecution(execution);
            const core::RuleRun* r = e != nullptr ? e->FindRuleRun(run) : nullptr;
            if (r != nullptr) runs.emplace_back(e, r);
          }
        }
        const std::string bucket = BucketOf(snap.record.declaration);
        json list = json::array();
        for (const auto& [e, r] : runs) {
          list.push_back(RuleExecutionDetail(snap.state, *e, *r, bucket, eng.options().region));
        }
        json out = {{"ruleExecutionDetails", list}};
        if (more && !runs.empty()) out["nextToken"] = RuleToken(*runs.back().second);
        return out;
      });

  d.Register(CodePipelineTarget("ListRuleTypes"), "ListRuleTypes",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               const std::string owner = in.value("ruleOwnerFilter", "");
               const std::string region = in.value("regionFilter", "");
               json list = json::array();
               // One server serves one region: another region has no rule types here.
               if (region.empty() || region == eng.options().region) {
                 for (const auto& t : engine::BuiltinRuleTypes()) {
                   if (!owner.empty() && owner != t.id.owner) continue;
                   list.push_back(RuleTypeJson(t));
                 }
               }
               return json{{"ruleTypes", list}};
             });
}

}  // namespace pw::api
