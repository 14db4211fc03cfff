#include "worker/job.h"

#include <utility>

namespace pw::worker {

namespace {

using nlohmann::json;

// Reads string member `key` of object `o` into `out`; absent or null leaves it
// unchanged. False when present with another type.
bool ReadString(const json& o, const char* key, std::string& out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

// The object member `key` of `o`, or an empty object when absent or null;
// nullptr when present with another type.
const json* Object(const json& o, const char* key) {
  static const json kEmpty = json::object();
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return &kEmpty;
  return it->is_object() ? &*it : nullptr;
}

Status Malformed(const std::string& what) { return InvalidArgument("malformed job: " + what, ""); }

Result<std::vector<JobArtifact>> ParseArtifacts(const json& data, const char* key) {
  std::vector<JobArtifact> out;
  auto it = data.find(key);
  if (it == data.end() || it->is_null()) return out;
  if (!it->is_array()) return Malformed(std::string(key) + " is not a list");
  for (const json& a : *it) {
    if (!a.is_object()) return Malformed(std::string(key) + " holds a non-object");
    JobArtifact art;
    const json* location = Object(a, "location");
    const json* s3 = location != nullptr ? Object(*location, "s3Location") : nullptr;
    if (!ReadString(a, "name", art.name) || !ReadString(a, "revision", art.revision) ||
        s3 == nullptr || !ReadString(*s3, "bucketName", art.location.bucket) ||
        !ReadString(*s3, "objectKey", art.location.key)) {
      return Malformed(std::string(key) + " element has members of the wrong type");
    }
    out.push_back(std::move(art));
  }
  return out;
}

}  // namespace

std::string ActionTypeId::ToString() const {
  return category + "/" + owner + "/" + provider + "/" + version;
}

nlohmann::json ActionTypeId::ToJson() const {
  return {{"category", category}, {"owner", owner}, {"provider", provider}, {"version", version}};
}

Result<ActionTypeId> ParseActionTypeId(std::string_view text, std::string owner) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    size_t slash = text.find('/', pos);
    parts.emplace_back(text.substr(pos, slash == std::string_view::npos ? slash : slash - pos));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  bool empty_part = false;
  for (const auto& p : parts) empty_part = empty_part || p.empty();
  if ((parts.size() != 3 && parts.size() != 4) || empty_part) {
    return InvalidArgument(
        "--action-type must be Category/Owner/Provider/Version (e.g. Deploy/AWS/CloudFormation/1 "
        "or Build/Custom/MyWorker/1) or Category/Provider/Version with --owner, not '" +
            std::string(text) + "'",
        "");
  }
  if (parts.size() == 4) return ActionTypeId{parts[0], parts[1], parts[2], parts[3]};
  return ActionTypeId{parts[0], std::move(owner), parts[1], parts[2]};
}

Result<Job> ParseJob(const nlohmann::json& j) {
  if (!j.is_object()) return Malformed("not an object");
  Job job;
  if (!ReadString(j, "id", job.id) || job.id.empty()) return Malformed("no id");
  if (!ReadString(j, "nonce", job.nonce) || !ReadString(j, "accountId", job.account_id)) {
    return Malformed("nonce or accountId is not a string");
  }
  const json* data = Object(j, "data");
  if (data == nullptr) return Malformed("data is not an object");
  if (const json* type = Object(*data, "actionTypeId");
      type == nullptr || !ReadString(*type, "category", job.action_type.category) ||
      !ReadString(*type, "owner", job.action_type.owner) ||
      !ReadString(*type, "provider", job.action_type.provider) ||
      !ReadString(*type, "version", job.action_type.version)) {
    return Malformed("actionTypeId");
  }
  const json* action_config = Object(*data, "actionConfiguration");
  const json* config = action_config != nullptr ? Object(*action_config, "configuration") : nullptr;
  if (config == nullptr) return Malformed("actionConfiguration.configuration is not a map");
  for (const auto& [k, v] : config->items()) {
    if (v.is_string()) {
      job.configuration[k] = v.get<std::string>();
    } else if (!v.is_null()) {
      job.configuration[k] = v.dump();
    }
  }
  const json* ctx = Object(*data, "pipelineContext");
  const json* stage = ctx != nullptr ? Object(*ctx, "stage") : nullptr;
  const json* action = ctx != nullptr ? Object(*ctx, "action") : nullptr;
  if (ctx == nullptr || stage == nullptr || action == nullptr ||
      !ReadString(*ctx, "pipelineName", job.pipeline_name) ||
      !ReadString(*ctx, "pipelineArn", job.pipeline_arn) ||
      !ReadString(*ctx, "pipelineExecutionId", job.pipeline_execution_id) ||
      !ReadString(*stage, "name", job.stage_name) ||
      !ReadString(*action, "name", job.action_name) ||
      !ReadString(*action, "actionExecutionId", job.action_execution_id)) {
    return Malformed("pipelineContext");
  }
  PW_ASSIGN_OR_RETURN(job.input_artifacts, ParseArtifacts(*data, "inputArtifacts"));
  PW_ASSIGN_OR_RETURN(job.output_artifacts, ParseArtifacts(*data, "outputArtifacts"));
  const json* creds = Object(*data, "artifactCredentials");
  if (creds == nullptr ||
      !ReadString(*creds, "accessKeyId", job.artifact_credentials.access_key_id) ||
      !ReadString(*creds, "secretAccessKey", job.artifact_credentials.secret_access_key) ||
      !ReadString(*creds, "sessionToken", job.artifact_credentials.session_token)) {
    return Malformed("artifactCredentials");
  }
  if (!ReadString(*data, "continuationToken", job.continuation_token)) {
    return Malformed("continuationToken is not a string");
  }
  return job;
}

}  // namespace pw::worker
