#include "engine/state_json.h"

namespace pw::engine {

using nlohmann::json;

json RunToDoc(const core::ActionRun& r) {
  json j = {{"id", r.id},
            {"execution_id", r.execution_id},
            {"stage", r.stage},
            {"action", r.action},
            {"stage_attempt", r.stage_attempt},
            {"status", core::Name(r.status)},
            {"started", r.started},
            {"updated", r.updated},
            {"summary", r.summary},
            {"error_code", r.error_code},
            {"error_message", r.error_message},
            {"token", r.token},
            {"external_id", r.external_id},
            {"external_url", r.external_url},
            {"updated_by", r.updated_by},
            {"percent_complete", r.percent_complete},
            {"inputs", r.inputs},
            {"outputs", r.outputs},
            {"output_variables", r.output_variables},
            {"resolved_configuration", r.resolved_configuration},
            {"resolved_environment", r.resolved_environment},
            {"revision_id", r.revision_id},
            {"revision_summary", r.revision_summary},
            {"revision_created", r.revision_created}};
  if (!r.revision_url.empty()) j["revision_url"] = r.revision_url;
  if (!r.entity_url.empty()) j["entity_url"] = r.entity_url;
  return j;
}

core::ActionRun RunFromDoc(const json& j) {
  core::ActionRun r;
  r.id = j.value("id", "");
  r.execution_id = j.value("execution_id", "");
  r.stage = j.value("stage", "");
  r.action = j.value("action", "");
  r.stage_attempt = j.value("stage_attempt", 0);
  r.status =
      core::ParseActionStatus(j.value("status", "Failed")).value_or(core::ActionStatus::kFailed);
  r.started = j.value("started", 0.0);
  r.updated = j.value("updated", 0.0);
  r.summary = j.value("summary", "");
  r.error_code = j.value("error_code", "");
  r.error_message = j.value("error_message", "");
  r.token = j.value("token", "");
  r.external_id = j.value("external_id", "");
  r.external_url = j.value("external_url", "");
  r.updated_by = j.value("updated_by", "");
  r.percent_complete = j.value("percent_complete", -1);
  r.inputs = j.value("inputs", std::map<std::string, std::string>{});
  r.outputs = j.value("outputs", std::map<std::string, std::string>{});
  r.output_variables = j.value("output_variables", std::map<std::string, std::string>{});
  r.resolved_configuration =
      j.value("resolved_configuration", std::map<std::string, std::string>{});
  r.resolved_environment = j.value("resolved_environment", std::map<std::string, std::string>{});
  r.revision_id = j.value("revision_id", "");
  r.revision_summary = j.value("revision_summary", "");
  r.revision_created = j.value("revision_created", 0.0);
  r.revision_url = j.value("revision_url", "");
  r.entity_url = j.value("entity_url", "");
  return r;
}

namespace {

json RuleRunToDoc(const core::RuleRun& r) {
  return {{"id", r.id},
          {"stage", r.stage},
          {"rule", r.rule},
          {"kind", core::Name(r.kind)},
          {"stage_attempt", r.stage_attempt},
          {"status", core::Name(r.status)},
          {"started", r.started},
          {"updated", r.updated},
          {"summary", r.summary},
          {"error_code", r.error_code},
          {"error_message", r.error_message},
          {"external_id", r.external_id},
          {"external_url", r.external_url},
          {"updated_by", r.updated_by},
          {"resolved_configuration", r.resolved_configuration},
          {"inputs", r.inputs}};
}

core::RuleRun RuleRunFromDoc(const json& j, const std::string& execution_id) {
  core::RuleRun r;
  r.id = j.value("id", "");
  r.execution_id = execution_id;
  r.stage = j.value("stage", "");
  r.rule = j.value("rule", "");
  r.kind = core::ParseConditionKind(j.value("kind", "BEFORE_ENTRY"))
               .value_or(core::ConditionKind::kBeforeEntry);
  r.stage_attempt = j.value("stage_attempt", 0);
  r.status =
      core::ParseActionStatus(j.value("status", "Failed")).value_or(core::ActionStatus::kFailed);
  r.started = j.value("started", 0.0);
  r.updated = j.value("updated", 0.0);
  r.summary = j.value("summary", "");
  r.error_code = j.value("error_code", "");
  r.error_message = j.value("error_message", "");
  r.external_id = j.value("external_id", "");
  r.external_url = j.value("external_url", "");
  r.updated_by = j.value("updated_by", "");
  r.resolved_configuration =
      j.value("resolved_configuration", std::map<std::string, std::string>{});
  r.inputs = j.value("inputs", std::map<std::string, std::string>{});
  return r;
}

json ConditionsToDoc(const core::StageRun& s) {
  json out = json::array();
  for (const auto& c : s.conditions) {
    out.push_back({{"kind", core::Name(c.kind)},
                   {"status", core::Name(c.status)},
                   {"summary", c.summary},
                   {"started", c.started},
                   {"updated", c.updated},
                   {"latest", c.latest}});
  }
  return out;
}

void ConditionsFromDoc(const json& s, core::StageRun* sr) {
  sr->phase =
      core::ParseStagePhase(s.value("phase", "actions")).value_or(core::StagePhase::kActions);
  for (const auto& c : s.value("conditions", json::array())) {
    core::ConditionRun cr;
    cr.kind = core::ParseConditionKind(c.value("kind", "BEFORE_ENTRY"))
                  .value_or(core::ConditionKind::kBeforeEntry);
    cr.status = core::ParseConditionStatus(c.value("status", "Failed"))
                    .value_or(core::ConditionStatus::kFailed);
    cr.summary = c.value("summary", "");
    cr.started = c.value("started", 0.0);
    cr.updated = c.value("updated", 0.0);
    cr.latest = c.value("latest", std::map<std::string, std::string>{});
    sr->conditions.push_back(std::move(cr));
  }
}

}  // namespace

json ExecutionToDoc(const core::Execution& e) {
  json stages = json::array();
  for (const auto& s : e.stages) {
    stages.push_back({{"stage", s.stage},
                      {"status", core::Name(s.status)},
                      {"group", s.group},
                      {"attempt", s.attempt},
                      {"manual_retries", s.manual_retries},
                      {"auto_retries", s.auto_retries},
                      {"latest_retry_trigger",
                       s.latest_retry_trigger ? std::string(core::Name(*s.latest_retry_trigger))
                                              : std::string()},
                      {"latest", s.latest}});
    if (s.phase != core::StagePhase::kActions) stages.back()["phase"] = core::Name(s.phase);
    if (!s.conditions.empty()) stages.back()["conditions"] = ConditionsToDoc(s);
  }
  json doc = {{"v", 2},
              {"id", e.id},
              {"pipeline", e.pipeline},
              {"pipeline_version", e.pipeline_version},
              {"status", core::Name(e.status)},
              {"status_summary", e.status_summary},
              {"started", e.started},
              {"updated", e.updated},
              {"trigger_type", e.trigger_type},
              {"trigger_detail", e.trigger_detail},
              {"execution_type", std::string(core::Name(e.execution_type))},
              {"rollback_target", e.rollback_target},
              {"stop_reason", e.stop_reason},
              {"stop_requested", e.stop_requested},
              {"abandon_requested", e.abandon_requested},
              {"cancel_requested", e.cancel_requested},
              {"stage_index", e.stage_index},
              {"in_stage", e.in_stage},
              {"stages", stages},
              {"artifacts", e.artifacts},
              {"variables", e.variables}};
  if (!e.source_revisions.empty()) {
    json revs = json::array();
    for (const auto& sr : e.source_revisions) {
      revs.push_back({{"action", sr.action}, {"type", sr.type}, {"value", sr.value}});
    }
    doc["source_revisions"] = revs;
  }
  if (!e.rule_runs.empty()) {
    // Rule evaluations live in the execution document (a few per stage).
    json rules = json::array();
    for (const auto& r : e.rule_runs) rules.push_back(RuleRunToDoc(r));
    doc["rule_runs"] = rules;
  }
  return doc;
}

core::Execution ExecutionFromDoc(const json& j) {
  core::Execution e;
  e.id = j.value("id", "");
  e.pipeline = j.value("pipeline", "");
  e.pipeline_version = j.value("pipeline_version", 1);
  e.status = core::ParseExecutionStatus(j.value("status", "Failed"))
                 .value_or(core::ExecutionStatus::kFailed);
  e.status_summary = j.value("status_summary", "");
  e.started = j.value("started", 0.0);
  e.updated = j.value("updated", 0.0);
  e.trigger_type = j.value("trigger_type", "");
  e.trigger_detail = j.value("trigger_detail", "");
  e.execution_type = core::ParseExecutionType(j.value("execution_type", "STANDARD"))
                         .value_or(core::ExecutionType::kStandard);
  e.rollback_target = j.value("rollback_target", "");
  e.stop_reason = j.value("stop_reason", "");
  e.stop_requested = j.value("stop_requested", false);
  e.abandon_requested = j.value("abandon_requested", false);
  e.cancel_requested = j.value("cancel_requested", false);
  e.stage_index = j.value("stage_index", 0);
  e.in_stage = j.value("in_stage", false);
  for (const auto& s : j.value("stages", json::array())) {
    core::StageRun sr;
    sr.stage = s.value("stage", "");
    sr.status =
        core::ParseStageStatus(s.value("status", "Failed")).value_or(core::StageStatus::kFailed);
    sr.group = s.value("group", 0);
    sr.attempt = s.value("attempt", 0);
    sr.manual_retries = s.value("manual_retries", 0);
    sr.auto_retries = s.value("auto_retries", 0);
    sr.latest_retry_trigger = core::ParseRetryTrigger(s.value("latest_retry_trigger", ""));
    sr.latest = s.value("latest", std::map<std::string, std::string>{});
    ConditionsFromDoc(s, &sr);
    e.stages.push_back(std::move(sr));
  }
  e.artifacts = j.value("artifacts", std::map<std::string, std::string>{});
  e.variables = j.value("variables", std::map<std::string, std::string>{});
  for (const auto& sr : j.value("source_revisions", json::array())) {
    e.source_revisions.push_back(
        {sr.value("action", ""), sr.value("type", ""), sr.value("value", "")});
  }
  for (const auto& r : j.value("runs", json::array())) e.runs.push_back(RunFromDoc(r));
  for (const auto& r : j.value("rule_runs", json::array())) {
    e.rule_runs.push_back(RuleRunFromDoc(r, e.id));
  }
  return e;
}

json RuntimeToDoc(const core::PipelineState& p) {
  json t = json::object();
  for (const auto& [stage, ts] : p.transitions) {
    t[stage] = {{"enabled", ts.enabled},
                {"disabled_reason", ts.disabled_reason},
                {"last_changed_by", ts.last_changed_by},
                {"last_changed_at", ts.last_changed_at}};
  }
  return {{"v", 1}, {"transitions", t}, {"stage_latest", p.stage_latest}};
}

void RuntimeFromDoc(const json& j, core::PipelineState* p) {
  const json transitions = j.value("transitions", json::object());
  for (const auto& [stage, ts] : transitions.items()) {
    core::TransitionState t;
    t.enabled = ts.value("enabled", true);
    t.disabled_reason = ts.value("disabled_reason", "");
    t.last_changed_by = ts.value("last_changed_by", "");
    t.last_changed_at = ts.value("last_changed_at", 0.0);
    p->transitions[stage] = t;
  }
  p->stage_latest = j.value("stage_latest", std::map<std::string, std::string>{});
}

}  // namespace pw::engine
