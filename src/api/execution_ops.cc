#include "api/execution_ops.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <set>
#include <vector>

#include "api/condition_ops.h"
#include "api/pipeline_ops.h"
#include "core/variables.h"
#include "engine/action_types.h"
#include "spec/service_model.h"

namespace pw::api {
namespace {

using core::ActionRun;
using core::Execution;
using core::PipelineState;
using nlohmann::json;

json Trigger(const Execution& e) {
  json t = {{"triggerType", e.trigger_type}};
  if (!e.trigger_detail.empty()) t["triggerDetail"] = e.trigger_detail;
  return t;
}

}  // namespace

// Source revisions of an execution: the latest successful run of each source
// action. A rollback execution runs no source action: it reports the
// revisions of the execution it rolls back to.
std::vector<const ActionRun*> SourceRuns(const PipelineState& p, const Execution& e) {
  std::vector<const ActionRun*> out;
  if (p.decl.stages.empty()) return out;
  const Execution* from = &e;
  // A rollback's target is never itself a rollback (core::StartRollback);
  // the bound only guards against a corrupt document.
  for (int hops = 0; hops < 8 && from->execution_type == core::ExecutionType::kRollback; ++hops) {
    const Execution* target = p.FindExecution(from->rollback_target);
    if (target == nullptr) return out;
    from = target;
  }
  const std::string& first = p.decl.stages[0].name;
  for (const auto& r : from->runs) {
    if (r.stage != first || r.revision_id.empty()) continue;
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const ActionRun* o) { return o->action == r.action; });
    if (it != out.end())
      *it = &r;
    else
      out.push_back(&r);
  }
  return out;
}

namespace {

json ErrorDetails(const ActionRun& r) {
  return {{"code", r.error_code.empty() ? "JobFailed" : r.error_code},
          {"message", r.error_message}};
}

json ActionLatest(const ActionRun& r) {
  json j = {{"actionExecutionId", r.id},
            {"status", core::Name(r.status)},
            {"lastStatusChange", r.updated}};
  if (!r.summary.empty()) j["summary"] = r.summary.substr(0, 2048);
  if (!r.token.empty() && r.status == core::ActionStatus::kInProgress) j["token"] = r.token;
  if (!r.updated_by.empty()) j["lastUpdatedBy"] = r.updated_by;
  if (!r.external_id.empty()) j["externalExecutionId"] = r.external_id;
  if (!r.external_url.empty()) j["externalExecutionUrl"] = r.external_url;
  if (r.percent_complete >= 0) j["percentComplete"] = r.percent_complete;
  if (r.status == core::ActionStatus::kFailed) j["errorDetails"] = ErrorDetails(r);
  return j;
}

json ExecutionSummary(const PipelineState& p, const Execution& e) {
  json s = {{"pipelineExecutionId", e.id},
            {"status", core::Name(e.status)},
            {"startTime", e.started},
            {"lastUpdateTime", e.updated},
            {"trigger", Trigger(e)},
            {"executionMode", core::ExecutionModeName(p.decl.execution_mode)},
            {"executionType", core::Name(e.execution_type)}};
  if (!e.status_summary.empty()) s["statusSummary"] = e.status_summary;
  json revs = json::array();
  for (const ActionRun* r : SourceRuns(p, e)) {
    json rv = {{"actionName", r->action}, {"revisionId", r->revision_id}};
    if (!r->revision_summary.empty()) rv["revisionSummary"] = r->revision_summary;
    if (!r->revision_url.empty()) rv["revisionUrl"] = r->revision_url;
    revs.push_back(rv);
  }
  s["sourceRevisions"] = revs;
  if (e.stop_requested && !e.stop_reason.empty()) s["stopTrigger"] = {{"reason", e.stop_reason}};
  if (!e.rollback_target.empty()) {
    s["rollbackMetadata"] = {{"rollbackTargetPipelineExecutionId", e.rollback_target}};
  }
  return s;
}

Result<const Execution*> FindExec(const engine::Snapshot& s, const std::string& id) {
  const Execution* e = s.state.FindExecution(id);
  if (e == nullptr) {
    return NotFound("Pipeline execution " + id + " was not found in pipeline " + s.record.name +
                        "; list them with list-pipeline-executions.",
                    "PipelineExecutionNotFoundException");
  }
  return e;
}

// The newest execution stopped or failed while waiting in front of stage
// `index`, if no execution started after it has reached that stage since.
const Execution* EndedInbound(const PipelineState& p, const std::string& stage, int index) {
  const Execution* ended = nullptr;
  for (const auto& e : p.executions) {
    if (!e.in_stage && e.stage_index == index &&
        (e.status == core::ExecutionStatus::kStopped ||
         e.status == core::ExecutionStatus::kFailed)) {
      ended = &e;
    }
  }
  if (ended == nullptr) return nullptr;
  auto latest = p.stage_latest.find(stage);
  if (latest != p.stage_latest.end()) {
    const Execution* entered = p.FindExecution(latest->second);
    if (entered != nullptr && entered->started > ended->started) return nullptr;
  }
  return ended;
}

}  // namespace

json StageStateJson(const PipelineState& p, const core::StageDecl& s) {
  json st = {{"stageName", s.name}};
  auto t = p.transitions.find(s.name);
  json ts = {{"enabled", t == p.transitions.end() || t->second.enabled}};
  if (t != p.transitions.end() && t->second.last_changed_at > 0) {
    ts["lastChangedBy"] = t->second.last_changed_by;
    ts["lastChangedAt"] = t->second.last_changed_at;
    if (!t->second.enabled) ts["disabledReason"] = t->second.disabled_reason;
  }
  st["inboundTransitionState"] = ts;
  const bool parallel = p.decl.execution_mode == core::ExecutionMode::kParallel;
  if (!parallel) {
    json inbound = json::array();
    const int index = p.decl.StageIndex(s.name);
    for (const auto& e : p.executions) {
      if (e.status == core::ExecutionStatus::kInProgress && !e.in_stage && e.stage_index == index) {
        inbound.push_back({{"pipelineExecutionId", e.id},
                           {"status", core::Name(e.status)},
                           {"type", core::Name(e.execution_type)}});
      }
    }
    if (inbound.empty()) {
      // Rules 28-29: an execution stopped, or failed by an edit, while it
      // waited stays the stage's inbound execution, with its status, until a
      // newer execution reaches the stage.
      if (const Execution* ended = EndedInbound(p, s.name, index)) {
        inbound.push_back({{"pipelineExecutionId", ended->id},
                           {"status", core::Name(ended->status)},
                           {"type", core::Name(ended->execution_type)}});
      }
    }
    if (!inbound.empty()) {
      // The one that enters next: the oldest in QUEUED mode, the newest otherwise.
      st["inboundExecution"] =
          p.decl.execution_mode == core::ExecutionMode::kQueued ? inbound.front() : inbound.back();
      st["inboundExecutions"] = inbound;
    }
  }
  const Execution* latest = nullptr;
  const core::StageRun* sr = nullptr;
  auto it = p.stage_latest.find(s.name);
  if (!parallel && it != p.stage_latest.end()) {
    latest = p.FindExecution(it->second);
    sr = latest ? latest->FindStageRun(s.name) : nullptr;
  }
  json actions = json::array();
  for (const auto& a : s.actions) {
    json as = {{"actionName", a.name}};
    if (sr != nullptr) {
      auto run = sr->latest.find(a.name);
      const ActionRun* r = run == sr->latest.end() ? nullptr : latest->FindRun(run->second);
      if (r != nullptr) {
        as["latestExecution"] = ActionLatest(*r);
        if (!r->revision_id.empty()) {
          as["currentRevision"] = {{"revisionId", r->revision_id},
                                   {"revisionChangeId", r->revision_id},
                                   {"created", r->revision_created}};
          if (!r->revision_url.empty()) as["revisionUrl"] = r->revision_url;
        }
        if (!r->entity_url.empty()) as["entityUrl"] = r->entity_url;
      }
    }
    actions.push_back(as);
  }
  st["actionStates"] = actions;
  if (sr != nullptr) {
    st["latestExecution"] = {{"pipelineExecutionId", latest->id},
                             {"status", core::Name(sr->status)},
                             {"type", core::Name(latest->execution_type)}};
    if (sr->manual_retries > 0 || sr->auto_retries > 0) {
      json m = json::object();
      if (sr->latest_retry_trigger) m["latestRetryTrigger"] = core::Name(*sr->latest_retry_trigger);
      if (sr->manual_retries > 0) m["manualStageRetryAttempt"] = sr->manual_retries;
      if (sr->auto_retries > 0) m["autoStageRetryAttempt"] = sr->auto_retries;
      st["retryStageMetadata"] = m;
    }
  }
  AddConditionStates(s, latest, sr, st);  // Stage conditions (api/condition_ops.h).
  return st;
}

namespace {

// The artifact store location of an action: artifactStore, or the
// artifactStores entry of its region.
std::string ArtifactBucket(const json& declaration, const std::string& stage,
                           const std::string& action) {
  auto location = [](const json& store) {
    return store.is_object() ? store.value("location", "") : std::string();
  };
  if (declaration.contains("artifactStore")) return location(declaration["artifactStore"]);
  const json stores = declaration.value("artifactStores", json::object());
  if (!stores.is_object() || stores.empty()) return "";
  // artifactStores is keyed by region: the action's own, else the first.
  for (const auto& st : declaration.value("stages", json::array())) {
    if (!st.is_object() || st.value("name", "") != stage) continue;
    for (const auto& a : st.value("actions", json::array())) {
      if (!a.is_object() || a.value("name", "") != action) continue;
      const json region = a.value("region", json());
      if (region.is_string() && stores.contains(region.get<std::string>())) {
        return location(stores[region.get<std::string>()]);
      }
    }
  }
  return location(stores.begin().value());
}

}  // namespace

json ActionExecutionDetail(const PipelineState& p, const json& declaration, const Execution& e,
                           const ActionRun& r) {
  json input = json::object();
  json output = json::object();
  if (const core::StageDecl* s = p.decl.FindStage(r.stage)) {
    for (const auto& a : s->actions) {
      if (a.name != r.action) continue;
      input["actionTypeId"] = {{"category", a.type.category},
                               {"owner", a.type.owner},
                               {"provider", a.type.provider},
                               {"version", a.type.version}};
      input["configuration"] = a.configuration;
      input["resolvedConfiguration"] =
          r.resolved_configuration.empty() ? a.configuration : r.resolved_configuration;
      if (!a.namespace_name.empty()) input["namespace"] = a.namespace_name;
    }
  }
  // Where the artifact store holds each artifact: the pipeline's artifact
  // store location and the key a job worker reads it from (content-addressed
  // by revision, as engine::Job::InputKey names it).
  const std::string bucket = ArtifactBucket(declaration, r.stage, r.action);
  auto artifact = [&](const std::string& name, const std::string& rev) {
    return json{{"name", name},
                {"s3location", {{"bucket", bucket}, {"key", "artifacts/" + rev + ".zip"}}}};
  };
  json ins = json::array();
  for (const auto& [name, rev] : r.inputs) ins.push_back(artifact(name, rev));
  input["inputArtifacts"] = ins;
  json outs = json::array();
  for (const auto& [name, rev] : r.outputs) outs.push_back(artifact(name, rev));
  output["outputArtifacts"] = outs;
  json result = json::object();
  if (!r.external_id.empty()) result["externalExecutionId"] = r.external_id;
  if (!r.summary.empty()) result["externalExecutionSummary"] = r.summary.substr(0, 2048);
  // A source action's execution links to the revision it produced, as AWS
  // links a commit, unless the action has its own page.
  const std::string& url = r.external_url.empty() ? r.revision_url : r.external_url;
  if (!url.empty()) result["externalExecutionUrl"] = url;
  if (r.status == core::ActionStatus::kFailed) result["errorDetails"] = ErrorDetails(r);
  output["executionResult"] = result;
  if (!r.output_variables.empty()) output["outputVariables"] = r.output_variables;
  json d = {{"pipelineExecutionId", e.id},
            {"actionExecutionId", r.id},
            {"pipelineVersion", e.pipeline_version},
            {"stageName", r.stage},
            {"actionName", r.action},
            {"startTime", r.started},
            {"lastUpdateTime", r.updated},
            {"status", core::Name(r.status)},
            {"input", input},
            {"output", output}};
  if (!r.updated_by.empty()) d["updatedBy"] = r.updated_by;
  return d;
}

Result<std::vector<std::pair<const Execution*, const ActionRun*>>> FilterActionRuns(
    const PipelineState& p, const json& filter) {
  std::string only;
  bool latest_only = false;
  if (filter.is_object()) {
    const json by_id = filter.value("pipelineExecutionId", json());
    const json latest = filter.value("latestInPipelineExecution", json());
    if (by_id.is_string() && latest.is_object()) {
      return InvalidArgument(
          "Use either filter.pipelineExecutionId or filter.latestInPipelineExecution, not both: "
          "latestInPipelineExecution already names the pipeline execution.",
          "ValidationException");
    }
    if (by_id.is_string()) only = by_id.get<std::string>();
    if (latest.is_object()) {
      only = latest.value("pipelineExecutionId", "");
      latest_only = latest.value("startTimeRange", "") == "Latest";
    }
  }
  if (!only.empty() && p.FindExecution(only) == nullptr) {
    return NotFound("Pipeline execution " + only + " was not found in pipeline " + p.decl.name +
                        "; list them with list-pipeline-executions.",
                    "PipelineExecutionNotFoundException");
  }
  std::vector<std::pair<const Execution*, const ActionRun*>> runs;  // Newest first.
  for (auto e = p.executions.rbegin(); e != p.executions.rend(); ++e) {
    if (!only.empty() && e->id != only) continue;
    std::set<std::pair<std::string, std::string>> seen;  // (stage, action) already listed.
    for (auto r = e->runs.rbegin(); r != e->runs.rend(); ++r) {
      // Latest: only the latest attempt of each action (runs are in start order).
      if (latest_only && !seen.insert({r->stage, r->action}).second) continue;
      runs.emplace_back(&*e, &*r);
    }
  }
  return runs;
}

namespace {

Result<core::RetryMode> Mode(const std::string& s) {
  if (s == "FAILED_ACTIONS") return core::RetryMode::kFailedActions;
  if (s == "ALL_ACTIONS") return core::RetryMode::kAllActions;
  return InvalidArgument("retryMode must be FAILED_ACTIONS or ALL_ACTIONS, not '" + s + "'.");
}

json ActionTypeJson(const engine::BuiltinActionType& t) {
  json props = json::array();
  for (const auto& p : t.properties) {
    props.push_back({{"name", p.name},
                     {"required", p.required},
                     {"key", p.key},
                     {"secret", p.secret},
                     {"queryable", p.queryable},
                     {"description", p.description},
                     {"type", p.type}});
  }
  return {
      {"id",
       {{"category", t.id.category},
        {"owner", t.id.owner},
        {"provider", t.id.provider},
        {"version", t.id.version}}},
      {"settings", json::object()},
      {"actionConfigurationProperties", props},
      {"inputArtifactDetails", {{"minimumCount", t.min_inputs}, {"maximumCount", t.max_inputs}}},
      {"outputArtifactDetails",
       {{"minimumCount", t.min_outputs}, {"maximumCount", t.max_outputs}}}};
}

template <typename T, typename KeyFn>
Result<json> Page(const std::vector<T>& items, const json& in, size_t default_max, KeyFn key,
                  const char* list_name, std::function<json(const T&)> render) {
  size_t start = 0;
  if (in.contains("nextToken")) {
    PW_ASSIGN_OR_RETURN(std::string after, DecodeToken(in["nextToken"]));
    auto it = std::find_if(items.begin(), items.end(), [&](const T& t) { return key(t) == after; });
    if (it == items.end()) {
      return InvalidArgument("The nextToken is no longer valid; start the listing again.",
                             "InvalidNextTokenException");
    }
    start = static_cast<size_t>(it - items.begin()) + 1;
  }
  size_t max = in.contains("maxResults") ? in["maxResults"].get<size_t>() : default_max;
  json list = json::array();
  size_t i = start;
  for (; i < items.size() && list.size() < max; ++i) list.push_back(render(items[i]));
  json out = {{list_name, list}};
  if (i < items.size() && i > start) out["nextToken"] = EncodeToken(key(items[i - 1]));
  return out;
}

}  // namespace

void RegisterExecutionOps(Dispatcher& d, engine::Engine& eng) {
  RegisterConditionOps(d, eng);  // OverrideStageCondition, ListRuleExecutions, ListRuleTypes.
  d.Register(CodePipelineTarget("StartPipelineExecution"), "StartPipelineExecution",
             [&eng](const json& in, const RequestContext& ctx) -> Result<json> {
               core::Variables variables;
               for (const auto& v : in.value("variables", json::array())) {
                 variables[v.value("name", "")] = v.value("value", "");
               }
               std::vector<core::SourceRevisionOverride> source_revisions;
               for (const auto& r : in.value("sourceRevisions", json::array())) {
                 source_revisions.push_back({r.value("actionName", ""), r.value("revisionType", ""),
                                             r.value("revisionValue", "")});
               }
               PW_ASSIGN_OR_RETURN(
                   std::string id,
                   eng.StartExecution(in["name"], in.value("clientRequestToken", ""), ctx.caller,
                                      "StartPipelineExecution", variables, source_revisions));
               return json{{"pipelineExecutionId", id}};
             });

  d.Register(
      CodePipelineTarget("StopPipelineExecution"), "StopPipelineExecution",
      [&eng](const json& in, const RequestContext&) -> Result<json> {
        PW_RETURN_IF_ERROR(eng.StopExecution(in["pipelineName"], in["pipelineExecutionId"],
                                             in.value("abandon", false), in.value("reason", "")));
        return json{{"pipelineExecutionId", in["pipelineExecutionId"]}};
      });

  // From the read cache too: the call SDKs and CI scripts poll while they
  // wait for an execution to end.
  RegisterCachedRead(
      d, eng, "GetPipelineExecution", "pipelineName",
      [&eng](const json& in, const RequestContext&) -> Result<json> {
        PW_ASSIGN_OR_RETURN(auto snap,
                            eng.ExecutionSnapshot(in["pipelineName"], in["pipelineExecutionId"]));
        PW_ASSIGN_OR_RETURN(const Execution* e, FindExec(snap, in["pipelineExecutionId"]));
        json revs = json::array();
        for (const ActionRun* r : SourceRuns(snap.state, *e)) {
          for (const auto& [name, rev] : r->outputs) {
            json rv = {{"name", name}, {"revisionId", r->revision_id}};
            if (!r->revision_summary.empty()) rv["revisionSummary"] = r->revision_summary;
            if (r->revision_created > 0) rv["created"] = r->revision_created;
            if (!r->revision_url.empty()) rv["revisionUrl"] = r->revision_url;
            revs.push_back(rv);
          }
        }
        json pe = {{"pipelineName", snap.record.name},
                   {"pipelineVersion", e->pipeline_version},
                   {"pipelineExecutionId", e->id},
                   {"status", core::Name(e->status)},
                   {"artifactRevisions", revs},
                   {"trigger", Trigger(*e)},
                   {"executionMode", core::ExecutionModeName(snap.state.decl.execution_mode)},
                   {"executionType", core::Name(e->execution_type)}};
        if (!e->status_summary.empty()) pe["statusSummary"] = e->status_summary;
        if (!e->rollback_target.empty()) {
          pe["rollbackMetadata"] = {{"rollbackTargetPipelineExecutionId", e->rollback_target}};
        }
        if (!e->variables.empty()) {
          json vars = json::array();
          for (const auto& [name, value] : e->variables) {
            vars.push_back({{"name", name}, {"resolvedValue", value}});
          }
          pe["variables"] = vars;
        }
        return json{{"pipelineExecution", pe}};
      },
      AcrossServers::kByChangeStamp);

  auto list_executions = [&eng](const json& in, const RequestContext&) -> Result<json> {
    // A page straight from the store by index (issue 15): the cost of
    // a page does not grow with the history.
    std::string succeeded_in;
    if (in.contains("filter") && in["filter"].contains("succeededInStage")) {
      succeeded_in = in["filter"]["succeededInStage"].value("stageName", "");
    }
    std::string after;
    if (in.contains("nextToken")) {
      PW_ASSIGN_OR_RETURN(after, DecodeToken(in["nextToken"]));
    }
    const size_t max = in.contains("maxResults") ? in["maxResults"].get<size_t>() : 100;
    std::function<bool(const Execution&)> keep;
    if (!succeeded_in.empty()) {
      keep = [&succeeded_in](const Execution& e) {
        const core::StageRun* sr = e.FindStageRun(succeeded_in);
        return sr != nullptr && sr->status == core::StageStatus::kSucceeded;
      };
    }
    PW_ASSIGN_OR_RETURN(auto page, eng.HistoryPage(in["pipelineName"], max, after, keep,
                                                   engine::PageRuns::kFirstStage));
    json list = json::array();
    for (const auto& id : page.ids) {
      if (const Execution* e = page.snap.state.FindExecution(id)) {
        list.push_back(ExecutionSummary(page.snap.state, *e));
      }
    }
    json out = {{"pipelineExecutionSummaries", list}};
    if (page.more && !page.ids.empty()) out["nextToken"] = EncodeToken(page.ids.back());
    return out;
  };
  // The first page (no nextToken) from the read cache; later pages from the store.
  RawHandler cached_list = CachedRead(eng, "ListPipelineExecutions", "pipelineName",
                                      list_executions, AcrossServers::kByChangeStamp);
  PeekHandler peek_list = [first = CachedPeek(eng, "ListPipelineExecutions", "pipelineName")](
                              const json& in) -> std::optional<std::string> {
    if (in.contains("nextToken")) return std::nullopt;
    return first(in);
  };
  d.RegisterRaw(
      CodePipelineTarget("ListPipelineExecutions"), "ListPipelineExecutions",
      [cached_list, list_executions](const json& in,
                                     const RequestContext& ctx) -> Result<std::string> {
        if (!in.contains("nextToken")) return cached_list(in, ctx);
        PW_ASSIGN_OR_RETURN(json out, list_executions(in, ctx));
        return out.dump(-1, ' ', false, json::error_handler_t::replace);
      },
      peek_list);

  RegisterCachedRead(
      d, eng, "GetPipelineState", "name",
      [&eng](const json& in, const RequestContext&) -> Result<json> {
        PW_ASSIGN_OR_RETURN(auto snap, eng.GetSnapshot(in["name"], /*current_only=*/true));
        json stages = json::array();
        for (const auto& s : snap.state.decl.stages) {
          stages.push_back(StageStateJson(snap.state, s));
        }
        return json{{"pipelineName", snap.record.name},
                    {"pipelineVersion", snap.record.version},
                    {"stageStates", stages},
                    {"created", snap.record.created},
                    {"updated", snap.record.updated}};
      },
      AcrossServers::kByChangeStamp);

  auto list_action_executions = [&eng](const json& in, const RequestContext&) -> Result<json> {
    using Item = std::pair<const Execution*, const ActionRun*>;
    const json filter = in.value("filter", json());
    std::string only;
    if (filter.is_object()) {
      const json latest = filter.value("latestInPipelineExecution", json());
      const json by_id = filter.value("pipelineExecutionId", json());
      if (by_id.is_string()) only = by_id.get<std::string>();
      if (latest.is_object()) only = latest.value("pipelineExecutionId", "");
    }
    // Straight from the store by index (issue 15): one execution, or
    // executions newest first until the page is full.
    std::deque<engine::ExecutionPage> pages;
    std::vector<Item> runs;
    if (!only.empty()) {
      auto snap = eng.ExecutionSnapshot(in["pipelineName"], only);
      if (!snap.ok()) {
        if (snap.status().wire_name() != "PipelineExecutionNotFoundException") return snap.status();
        PipelineState none;  // FilterActionRuns says which filter named what.
        none.decl.name = in["pipelineName"].get<std::string>();
        return FilterActionRuns(none, filter).status();
      } else {
        pages.push_back({std::move(*snap), {only}, false});
      }
      PW_ASSIGN_OR_RETURN(runs, FilterActionRuns(pages.back().snap.state, filter));
    } else {
      PW_RETURN_IF_ERROR(FilterActionRuns(PipelineState{}, filter).status());
      std::string after_run;
      if (in.contains("nextToken")) {
        PW_ASSIGN_OR_RETURN(after_run, DecodeToken(in["nextToken"]));
      }
      const size_t want = (in.contains("maxResults") ? in["maxResults"].get<size_t>() : 100) + 1;
      bool seen = after_run.empty();
      // Adds `e`'s runs, newest first, once past the token's run.
      auto take = [&](const Execution& e) {
        for (auto r = e.runs.rbegin(); r != e.runs.rend(); ++r) {
          if (!seen) {  // The token's run itself was on the previous page.
            seen = r->id == after_run;
            continue;
          }
          runs.emplace_back(&e, &*r);
        }
      };
      auto stale = [] {
        return InvalidArgument("The nextToken is no longer valid; start the listing again.",
                               "InvalidNextTokenException");
      };
      std::string cursor;
      // A token names its run's execution too ("execution/run"): the
      // listing goes on from that execution, read by id, not by a scan
      // from the newest (a token of the run alone, from an older
      // server, still scans).
      if (auto slash = after_run.find('/'); slash != std::string::npos) {
        cursor = after_run.substr(0, slash);
        after_run = after_run.substr(slash + 1);
        auto snap = eng.ExecutionSnapshot(in["pipelineName"], cursor);
        if (!snap.ok()) {  // Its execution gone: the token is stale.
          const bool gone = snap.status().wire_name() == "PipelineExecutionNotFoundException";
          return gone ? stale() : snap.status();
        }
        pages.push_back({std::move(*snap), {cursor}, true});
        if (const Execution* e = pages.back().snap.state.FindExecution(cursor)) take(*e);
        if (!seen) return stale();
      }
      bool more = true;
      while (more && !(seen && runs.size() >= want)) {
        PW_ASSIGN_OR_RETURN(
            auto page, eng.HistoryPage(in["pipelineName"], 20, cursor, {}, engine::PageRuns::kAll));
        pages.push_back(std::move(page));
        const engine::ExecutionPage& pg = pages.back();
        for (const auto& id : pg.ids) {
          if (const Execution* e = pg.snap.state.FindExecution(id)) take(*e);
        }
        more = pg.more && !pg.ids.empty();
        if (more) cursor = pg.ids.back();
      }
      if (!seen) return stale();
      // The runs after the token: Page below starts at the token's run.
    }
    const PipelineState& st = pages.front().snap.state;
    const json& declaration = pages.front().snap.record.declaration;
    json paging = in;
    if (only.empty()) paging.erase("nextToken");  // Already applied above.
    return Page<Item>(
        runs, paging, 100, [](const Item& i) { return i.first->id + "/" + i.second->id; },
        "actionExecutionDetails",
        [&st, &declaration, &eng](const Item& i) {
          json detail = ActionExecutionDetail(st, declaration, *i.first, *i.second);
          // Rule 9: secret configuration values are shown as "****".
          const json type_id = detail["input"].value("actionTypeId", json::object());
          auto type = eng.FindCustomActionType(
              core::ActionTypeId{type_id.value("category", ""), type_id.value("owner", ""),
                                 type_id.value("provider", ""), type_id.value("version", "")});
          if (type) {
            for (const auto& p : type->value("actionConfigurationProperties", json::array())) {
              const std::string name = p.value("name", "");
              if (!p.value("secret", false)) continue;
              for (const char* k : {"configuration", "resolvedConfiguration"}) {
                if (detail["input"][k].contains(name)) detail["input"][k][name] = "****";
              }
            }
          }
          return detail;
        });
  };
  // From the read cache too (every page: the input, token included, is the key).
  RegisterCachedRead(d, eng, "ListActionExecutions", "pipelineName", list_action_executions,
                     AcrossServers::kByChangeStamp);

  d.Register(CodePipelineTarget("RetryStageExecution"), "RetryStageExecution",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_ASSIGN_OR_RETURN(core::RetryMode mode, Mode(in["retryMode"]));
               PW_ASSIGN_OR_RETURN(auto plan, eng.RetryStage(in["pipelineName"], in["stageName"],
                                                             in["pipelineExecutionId"], mode));
               (void)plan;
               return json{{"pipelineExecutionId", in["pipelineExecutionId"]}};
             });

  d.Register(CodePipelineTarget("RollbackStage"), "RollbackStage",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               PW_ASSIGN_OR_RETURN(std::string id,
                                   eng.RollbackStage(in["pipelineName"], in["stageName"],
                                                     in["targetPipelineExecutionId"]));
               return json{{"pipelineExecutionId", id}};
             });

  // Extension: what a retry would do, per mode, and why it is refused.
  d.Register(std::string(kPipewrightPrefix) + "GetStageRetryPlan", "",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               json probe = in;
               if (!probe.contains("retryMode")) probe["retryMode"] = "FAILED_ACTIONS";
               PW_RETURN_IF_ERROR(
                   spec::ServiceModel::Get().ValidateShape("RetryStageExecutionInput", probe, ""));
               json plans = json::object();
               for (const char* m : {"FAILED_ACTIONS", "ALL_ACTIONS"}) {
                 auto plan = eng.PlanRetry(in["pipelineName"], in["stageName"],
                                           in["pipelineExecutionId"], *Mode(m));
                 json pj;
                 if (plan.ok()) {
                   pj = {{"retryable", true},
                         {"actionsToRerun", plan->actions_to_rerun},
                         {"actionsToRunAfter", plan->actions_after}};
                 } else {
                   if (plan.status().wire_name() == "PipelineNotFoundException")
                     return plan.status();
                   pj = {{"retryable", false},
                         {"reason", plan.status().message()},
                         {"errorCode", plan.status().wire_name()},
                         {"actionsToRerun", json::array()}};
                 }
                 plans[m] = pj;
               }
               json out = {{"pipelineName", in["pipelineName"]},
                           {"stageName", in["stageName"]},
                           {"pipelineExecutionId", in["pipelineExecutionId"]},
                           {"plans", plans}};
               if (in.contains("retryMode")) {
                 PW_ASSIGN_OR_RETURN(core::RetryMode mode, Mode(in["retryMode"]));
                 (void)mode;
                 for (const auto& [k, v] : plans[in["retryMode"].get<std::string>()].items())
                   out[k] = v;
               }
               return out;
             });

  // Extension (the console's list page): pipelines with their latest
  // execution in one request, instead of ListPipelines plus one
  // ListPipelineExecutions each. `pipelineNames` (1 to 100) picks some;
  // without it every pipeline, by name, `maxResults` (default and most 1000)
  // at a time, `nextToken` continuing. A pipeline deleted meanwhile is left
  // out. Authorized as codepipeline:ListPipelineSummaries on "*".
  d.Register(std::string(kPipewrightPrefix) + "ListPipelineSummaries", "",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               if (!in.is_object())
                 return InvalidArgument("Expected a JSON object.", "ValidationException");
               std::vector<std::string> names;
               std::string next;
               if (in.contains("pipelineNames")) {
                 const json& list = in["pipelineNames"];
                 if (!list.is_array() || list.empty() || list.size() > 100) {
                   return InvalidArgument(
                       "pipelineNames must be a list of 1 to 100 pipeline names.",
                       "ValidationException");
                 }
                 for (const json& name : list) {
                   PW_RETURN_IF_ERROR(spec::ServiceModel::Get().ValidateShape(
                       "ListPipelineExecutionsInput", json{{"pipelineName", name}}, ""));
                   names.push_back(name.get<std::string>());
                 }
               } else {
                 const json max_json = in.value("maxResults", json(1000));
                 if (!max_json.is_number_integer() || max_json.get<int64_t>() < 1 ||
                     max_json.get<int64_t>() > 1000) {
                   return InvalidArgument("maxResults must be an integer from 1 to 1000.",
                                          "ValidationException");
                 }
                 const size_t max = static_cast<size_t>(max_json.get<int64_t>());
                 const json token = in.value("nextToken", json(""));
                 if (!token.is_string()) {
                   return InvalidArgument("nextToken must be a string.", "ValidationException");
                 }
                 const std::string after = token.get<std::string>();
                 PW_ASSIGN_OR_RETURN(auto all, eng.store().ListPipelines());
                 for (const auto& p : all) {
                   if (!after.empty() && p.name <= after) continue;
                   if (names.size() == max) {
                     next = names.back();
                     break;
                   }
                   names.push_back(p.name);
                 }
               }
               json summaries = json::array();
               for (const std::string& name : names) {
                 // Issue 15: by index; the summary needs the first stage's runs only.
                 auto latest = eng.HistoryPage(name, 1, "", {}, engine::PageRuns::kFirstStage);
                 if (!latest.ok()) {
                   if (latest.status().wire_name() == "PipelineNotFoundException") continue;
                   return latest.status();
                 }
                 const engine::Snapshot* snap = &latest->snap;
                 const json& decl = snap->record.declaration;
                 json entry = {{"name", snap->record.name},
                               {"version", snap->record.version},
                               {"pipelineType", decl.value("pipelineType", "V1")},
                               {"executionMode", decl.value("executionMode", "SUPERSEDED")},
                               {"created", snap->record.created},
                               {"updated", snap->record.updated}};
                 const Execution* newest =
                     latest->ids.empty() ? nullptr : snap->state.FindExecution(latest->ids.front());
                 if (newest != nullptr)
                   entry["latestExecution"] = ExecutionSummary(snap->state, *newest);
                 summaries.push_back(std::move(entry));
               }
               json out = {{"pipelineSummaries", summaries}};
               if (!next.empty()) out["nextToken"] = next;
               return out;
             });

  auto transition = [&eng](bool enabled) {
    return [&eng, enabled](const json& in, const RequestContext& ctx) -> Result<json> {
      std::string stage = in["stageName"];
      if (in["transitionType"] == "Outbound") {
        // Rule 32: Outbound of stage N holds executions like Inbound of N+1.
        PW_ASSIGN_OR_RETURN(auto snap, eng.GetSnapshot(in["pipelineName"], true));
        int i = snap.state.decl.StageIndex(stage);
        if (i < 0) {
          return NotFound("Stage '" + stage + "' does not exist.", "StageNotFoundException");
        }
        if (i + 1 >= static_cast<int>(snap.state.decl.stages.size())) return json::object();
        stage = snap.state.decl.stages[static_cast<size_t>(i + 1)].name;
      }
      PW_RETURN_IF_ERROR(eng.SetTransition(in["pipelineName"], stage, enabled,
                                           in.value("reason", ""), ctx.caller));
      return json::object();
    };
  };
  d.Register(CodePipelineTarget("EnableStageTransition"), "EnableStageTransition",
             transition(true));
  d.Register(CodePipelineTarget("DisableStageTransition"), "DisableStageTransition",
             transition(false));

  d.Register(
      CodePipelineTarget("PutApprovalResult"), "PutApprovalResult",
      [&eng](const json& in, const RequestContext& ctx) -> Result<json> {
        const std::string status = in["result"]["status"];
        if (status != "Approved" && status != "Rejected") {
          return InvalidArgument("result.status must be Approved or Rejected.");
        }
        PW_ASSIGN_OR_RETURN(
            EpochSeconds at,
            eng.PutApproval(in["pipelineName"], in["stageName"], in["actionName"], in["token"],
                            status == "Approved", in["result"].value("summary", ""), ctx.caller));
        return json{{"approvedAt", at}};
      });

  d.Register(CodePipelineTarget("ListActionTypes"), "ListActionTypes",
             [&eng](const json& in, const RequestContext&) -> Result<json> {
               std::string owner = in.value("actionOwnerFilter", "");
               json list = json::array();
               for (const auto& t : engine::BuiltinActionTypes()) {
                 if (!owner.empty() && owner != t.id.owner) continue;
                 list.push_back(ActionTypeJson(t));
               }
               if (owner.empty() || owner == "Custom") {
                 for (const auto& t : eng.CustomActionTypes()) list.push_back(t);
               }
               return json{{"actionTypes", list}};
             });

  d.Register(
      CodePipelineTarget("GetActionType"), "GetActionType",
      [&eng](const json& in, const RequestContext&) -> Result<json> {
        core::ActionTypeId id{in["category"], in["owner"], in["provider"], in["version"]};
        const engine::BuiltinActionType* t = engine::FindBuiltin(id);
        if (auto custom = eng.FindCustomActionType(id)) {
          json props = json::array();
          for (const auto& p : custom->value("actionConfigurationProperties", json::array())) {
            json q = {{"name", p.value("name", "")},
                      {"optional", !p.value("required", false)},
                      {"key", p.value("key", false)},
                      {"noEcho", p.value("secret", false)},
                      {"queryable", p.value("queryable", false)}};
            if (p.contains("description")) q["description"] = p["description"];
            props.push_back(q);
          }
          const json& ia = (*custom)["inputArtifactDetails"];
          const json& oa = (*custom)["outputArtifactDetails"];
          return json{{"actionType",
                       {{"executor",
                         {{"configuration", {{"jobWorkerExecutorConfiguration", json::object()}}},
                          {"type", "JobWorker"}}},
                        {"id",
                         {{"category", id.category},
                          {"owner", id.owner},
                          {"provider", id.provider},
                          {"version", id.version}}},
                        {"inputArtifactDetails", ia},
                        {"outputArtifactDetails", oa},
                        {"properties", props}}}};
        }
        if (t == nullptr) {
          return NotFound("Action type " + id.ToString() +
                              " does not exist; see "
                              "list-action-types.",
                          "ActionTypeNotFoundException");
        }
        json props = json::array();
        for (const auto& p : t->properties) {
          props.push_back({{"name", p.name},
                           {"optional", !p.required},
                           {"key", p.key},
                           {"noEcho", p.secret},
                           {"queryable", p.queryable},
                           {"description", p.description}});
        }
        return json{{"actionType",
                     {{"description", t->description},
                      {"executor", {{"configuration", json::object()}, {"type", "JobWorker"}}},
                      {"id",
                       {{"category", id.category},
                        {"owner", id.owner},
                        {"provider", id.provider},
                        {"version", id.version}}},
                      {"inputArtifactDetails",
                       {{"minimumCount", t->min_inputs}, {"maximumCount", t->max_inputs}}},
                      {"outputArtifactDetails",
                       {{"minimumCount", t->min_outputs}, {"maximumCount", t->max_outputs}}},
                      {"properties", props}}}};
      });
}

}  // namespace pw::api
