#include "engine/job.h"

#include <cctype>

#include "common/ids.h"

namespace pw::engine {

nlohmann::json JobToDoc(const Job& j) {
  nlohmann::json inputs = nlohmann::json::array();
  for (const auto& [name, rev] : j.inputs) inputs.push_back({{"name", name}, {"revision", rev}});
  return {
      {"id", j.id},
      {"nonce", j.nonce},
      {"status", std::string(core::Name(j.status))},
      {"run_id", j.run_id},
      {"execution_id", j.execution_id},
      {"pipeline", j.pipeline},
      {"stage", j.stage},
      {"action", j.action},
      {"type",
       {{"category", j.type.category},
        {"owner", j.type.owner},
        {"provider", j.type.provider},
        {"version", j.type.version}}},
      {"configuration", j.configuration},
      {"inputs", inputs},
      {"outputs", j.outputs},
      {"bucket", j.bucket},
      {"external", j.external},
      {"key_prefix", j.key_prefix},
      {"continuation_token", j.continuation_token},
      {"created", j.created},
      {"dispatched", j.dispatched},
      {"acknowledged", j.acknowledged},
      {"ended", j.ended},
      {"timeout_seconds", j.timeout_seconds},
      {"access_key_id", j.access_key_id},
      {"client_id", j.client_id},
      {"client_token_sha256", j.client_token_sha256},
      // No secret: FillJobSecretsLocked derives them again on load.
  };
}

std::string NewJobAccessKeyId() {
  std::string id = "ASIA" + RandomHex(16);
  for (char& ch : id) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return id;
}

bool IsJobAccessKeyShaped(std::string_view id) {
  return id.size() == 20 && id.substr(0, 4) == "ASIA" &&
         id.substr(4).find_first_not_of("0123456789ABCDEF") == std::string_view::npos;
}

Job JobFromDoc(const nlohmann::json& d) {
  Job j;
  j.id = d.value("id", "");
  j.nonce = d.value("nonce", "");
  j.client_id = d.value("client_id", "");
  j.client_token_sha256 = d.value("client_token_sha256", "");
  j.status = core::ParseJobStatus(d.value("status", "Failed")).value_or(core::JobStatus::kFailed);
  j.run_id = d.value("run_id", "");
  j.execution_id = d.value("execution_id", "");
  j.pipeline = d.value("pipeline", "");
  j.stage = d.value("stage", "");
  j.action = d.value("action", "");
  const auto t = d.value("type", nlohmann::json::object());
  j.type = {t.value("category", ""), t.value("owner", ""), t.value("provider", ""),
            t.value("version", "")};
  j.configuration = d.value("configuration", std::map<std::string, std::string>{});
  for (const auto& in : d.value("inputs", nlohmann::json::array())) {
    j.inputs.emplace_back(in.value("name", ""), in.value("revision", ""));
  }
  j.outputs = d.value("outputs", std::vector<std::string>{});
  j.bucket = d.value("bucket", "");
  j.external = d.value("external", false);
  j.key_prefix = d.value("key_prefix", "");
  j.continuation_token = d.value("continuation_token", "");
  j.created = d.value("created", 0.0);
  j.dispatched = d.value("dispatched", 0.0);
  j.acknowledged = d.value("acknowledged", 0.0);
  j.ended = d.value("ended", 0.0);
  j.timeout_seconds = d.value("timeout_seconds", 0.0);
  j.access_key_id = d.value("access_key_id", "");
  j.secret_access_key = d.value("secret_access_key", "");
  j.session_token = d.value("session_token", "");
  return j;
}

}  // namespace pw::engine
