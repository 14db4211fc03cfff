// The rest of the model on the engine's existing machinery: the ThirdParty
// job API (the same jobs as PollForJobs, with a clientId per job and its
// clientToken bound at first use), UpdateActionType (refused with the reason), and
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
  // The model names owners AWS and ThirdParty only (custom types are changed
  // by deleting and creating a new version). Pipewright registers no types of
  // those owners: every one it knows is in its built-in table.
  const json id_json = decl.value("id", json::object());
  core::ActionTypeId id{id_json.value("category", ""), id_json.value("owner", ""),
                        id_json.value("provider", ""), id_json.value("version", "")};
  if (FindBuiltin(id) != nullptr) {
    return InvalidArgument("Action type " + id.ToString() +
                           " is one of the server's built-in types (engine/action_types.json); "
                           "its definition is fixed. For a type of your own, create a custom "
                           "action type (owner Custom) with CreateCustomActionType.");
  }
  return NotFound("Action type " + id.ToString() + " does not exist; see list-action-types.",
                  "ActionTypeNotFoundException");
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
  for (const auto& name : names) {
    // One pipeline at a time under the lock; one driven elsewhere is read
    // from the store before it is taken.
    auto read = ReadIfDrivenElsewhere(name);
    if (!read.ok()) {
      if (!pipeline.empty()) return read.status();
      continue;
    }
    MutexLock lock(mu_);
    core::PipelineState scratch;
    auto p = ViewLocked(name, &scratch, "", &*read);
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
