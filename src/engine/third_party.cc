// The rest of the model on the engine's existing machinery: the ThirdParty
// job API (the same jobs as PollForJobs, with a clientId per job and its
// clientToken bound at first use), UpdateActionType for custom types, and
// ListDeployActionExecutionTargets for the built-in deploy actions.

#include "common/ids.h"
#include "engine/action_types.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "sigv4/crypto.h"

namespace pw::engine {

using nlohmann::json;

Result<std::vector<Job>> Engine::PollForThirdPartyJobs(const core::ActionTypeId& type,
                                                       int max_jobs) {
  if (type.owner != "ThirdParty") {
    return InvalidArgument("PollForThirdPartyJobs serves action types with owner ThirdParty; " +
                           type.ToString() + " is " + type.owner +
                           (type.owner == "Custom" ? ": use PollForJobs." : "."));
  }
  PW_ASSIGN_OR_RETURN(std::vector<Job> jobs, PollForJobs(type, max_jobs, {}, 0));
  MutexLock lock(mu_);
  for (auto& j : jobs) {
    Job* found = nullptr;
    if (auto f = FindJobLocked(j.id); f.ok()) found = *f;
    if (found == nullptr) continue;
    if (found->client_id.empty()) {
      Job next = *found;
      next.client_id = NewUuid();
      // Not durable yet: the clientId is handed out again below either way.
      if (SaveJobLocked(next).ok()) *found = next;
    }
    j = *found;
  }
  return jobs;
}

Result<Job> Engine::ThirdPartyJob(const std::string& job_id, const std::string& client_token) {
  MutexLock lock(mu_);
  PW_ASSIGN_OR_RETURN(Job * found, FindJobLocked(job_id));
  if (found->type.owner != "ThirdParty") {
    return NotFound("Job " + job_id +
                        " is not a job of a ThirdParty action type; use the job "
                        "API (GetJobDetails, AcknowledgeJob, PutJob*Result) for it.",
                    "JobNotFoundException");
  }
  const std::string hash = sigv4::Sha256Hex(client_token);
  if (found->client_token_sha256.empty()) {
    Job next = *found;
    next.client_token_sha256 = hash;
    PW_RETURN_IF_ERROR(SaveJobLocked(next));
    *found = next;
  } else if (!sigv4::ConstantTimeEquals(found->client_token_sha256, hash)) {
    return InvalidArgument(
        "The clientToken does not match the one job " + job_id + " was first used with.",
        "InvalidClientTokenException");
  }
  return *found;
}

Status Engine::UpdateActionType(const json& decl) {
  const json id_json = decl.value("id", json::object());
  core::ActionTypeId id{id_json.value("category", ""), id_json.value("owner", ""),
                        id_json.value("provider", ""), id_json.value("version", "")};
  if (id.owner != "Custom") {
    if (FindBuiltin(id) != nullptr) {
      return InvalidArgument("Action type " + id.ToString() +
                             " is one of the server's built-in types (action_types.json); only "
                             "custom types (owner Custom) can be updated.");
    }
    return NotFound("Action type " + id.ToString() + " does not exist; see list-action-types.",
                    "ActionTypeNotFoundException");
  }
  const json executor = decl.value("executor", json::object());
  if (executor.value("type", "") != "JobWorker") {
    return InvalidArgument("executor.type " + executor.value("type", std::string("(none)")) +
                           " is not supported: custom action types run on job workers "
                           "(JobWorker); Pipewright does not invoke Lambda functions.");
  }
  json props = json::array();
  int queryable = 0;
  for (const auto& p : decl.value("properties", json::array())) {
    json q = {{"name", p.value("name", "")},
              {"required", !p.value("optional", true)},
              {"key", p.value("key", false)},
              {"secret", p.value("noEcho", false)},
              {"queryable", p.value("queryable", false)}};
    if (p.contains("description")) q["description"] = p["description"];
    if (q["queryable"].get<bool>()) {
      ++queryable;
      if (!q["required"].get<bool>() || q["secret"].get<bool>()) {
        return InvalidArgument("Property '" + q.value("name", "") +
                               "' is queryable, so it must not be optional or noEcho.");
      }
    }
    props.push_back(q);
  }
  if (queryable > 1) {
    return InvalidArgument("A custom action type can have at most one queryable property.");
  }
  const std::string key = "actiontype/" + id.category + "/" + id.provider + "/" + id.version;
  MutexLock lock(types_mu_);
  auto it = custom_types_.find(id.category + "/" + id.provider + "/" + id.version);
  if (it == custom_types_.end() || it->second.value("deleted", false)) {
    return NotFound("Custom action type " + id.ToString() + " does not exist.",
                    "ActionTypeNotFoundException");
  }
  json doc = it->second;
  doc["actionConfigurationProperties"] = props;
  doc["inputArtifactDetails"] = decl.value("inputArtifactDetails", json::object());
  doc["outputArtifactDetails"] = decl.value("outputArtifactDetails", json::object());
  if (decl.contains("description")) doc["description"] = decl["description"];
  const json urls = decl.value("urls", json::object());
  json settings = doc.value("settings", json::object());
  const std::pair<const char*, const char*> kUrls[] = {
      {"configurationUrl", "thirdPartyConfigurationUrl"},
      {"entityUrlTemplate", "entityUrlTemplate"},
      {"executionUrlTemplate", "executionUrlTemplate"},
      {"revisionUrlTemplate", "revisionUrlTemplate"}};
  for (const auto& [from, to] : kUrls) {
    if (urls.contains(from)) settings[to] = urls[from];
  }
  doc["settings"] = settings;
  PW_RETURN_IF_ERROR(store_.PutKv(key, doc.dump()));
  it->second = doc;
  return Status::Ok();
}

Result<std::vector<json>> Engine::DeployTargets(const std::string& pipeline,
                                                const std::string& action_execution_id) {
  std::vector<std::string> names;
  if (!pipeline.empty()) {
    names.push_back(pipeline);
  } else {
    PW_ASSIGN_OR_RETURN(auto all, store_.ListPipelines());
    for (const auto& r : all) names.push_back(r.name);
  }
  MutexLock lock(mu_);
  for (const auto& name : names) {
    auto p = LoadLocked(name);
    if (!p.ok()) {
      if (!pipeline.empty()) return p.status();
      continue;
    }
    for (const auto& e : (*p)->executions) {
      for (const auto& r : e.runs) {
        if (r.id != action_execution_id) continue;
        const core::ActionDecl* a = FindActionDecl((*p)->decl, r.stage, r.action);
        std::vector<json> out;
        if (a == nullptr || a->type.category != "Deploy" || a->type.owner != "AWS") return out;
        auto config = [&](const char* key) {
          auto it = r.resolved_configuration.find(key);
          if (it != r.resolved_configuration.end()) return it->second;
          auto d = a->configuration.find(key);
          return d == a->configuration.end() ? std::string() : d->second;
        };
        std::string id, type;
        if (a->type.provider == "Directory") {
          id = config("Path");
          type = "Directory";
        } else if (a->type.provider == "S3") {
          id = "s3://" + config("BucketName") + "/" + config("ObjectKey");
          type = "S3Bucket";
        } else {
          return out;  // Deploys run by workers report no targets here.
        }
        const std::string status(core::Name(r.status));
        json event = {{"name", "Deploy"}, {"status", status}, {"startTime", r.started}};
        json target = {
            {"targetId", id}, {"targetType", type}, {"status", status}, {"startTime", r.started}};
        if (r.status != core::ActionStatus::kInProgress) {
          target["endTime"] = r.updated;
          event["endTime"] = r.updated;
        }
        const std::string message = !r.error_message.empty() ? r.error_message : r.summary;
        if (!message.empty()) event["context"] = {{"message", message}};
        target["events"] = json::array({event});
        out.push_back(target);
        return out;
      }
    }
  }
  return NotFound("Action execution " + action_execution_id + " does not exist" +
                      (pipeline.empty() ? "" : " in pipeline '" + pipeline + "'") + ".",
                  "ActionExecutionNotFoundException");
}

}  // namespace pw::engine
