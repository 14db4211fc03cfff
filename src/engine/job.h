#pragma once

// A job: one unit of work handed to a remote job worker through PollForJobs
// (custom action types, and built-in Commands actions when the server runs
// without local runners). Jobs are persisted as JSON under "job/<id>" so they
// survive a restart. Plain data, thread-compatible.

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "core/pipeline.h"
#include "core/timers.h"

namespace pw::engine {

struct Job {
  std::string id;
  std::string nonce;
  core::JobStatus status = core::JobStatus::kQueued;
  std::string run_id;  // The action execution this job works for.
  std::string execution_id;
  std::string pipeline;
  std::string stage;
  std::string action;
  core::ActionTypeId type;
  std::map<std::string, std::string> configuration;
  std::vector<std::pair<std::string, std::string>> inputs;  // Artifact name -> revision.
  std::vector<std::string> outputs;                         // Output artifact names.
  std::string bucket;
  std::string continuation_token;
  EpochSeconds created = 0;
  EpochSeconds dispatched = 0;
  EpochSeconds acknowledged = 0;
  EpochSeconds ended = 0;      // When it left the open states (removed a retention period later).
  double timeout_seconds = 0;  // Counted from acknowledgement.
  // Short-lived credentials for this job's artifacts only.
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  // ThirdParty jobs: the clientId handed out with the job (a UUID) and the
  // SHA-256 of the clientToken bound at first use ("" until then).
  std::string client_id;
  std::string client_token_sha256;

  // Created: an external job whose inputs are still being copied to the bucket.
  bool Open() const { return core::IsOpen(status); }
  bool external = false;   // Artifacts in the configured external bucket.
  std::string key_prefix;  // Object keys below this prefix ("" on the server's own endpoint).
  std::string InputKey(const std::string& revision) const {
    return key_prefix + "artifacts/" + revision + ".zip";
  }
  std::string OutputKey(const std::string& name) const {
    return key_prefix + "jobs/" + id + "/" + name + ".zip";
  }
};

// The artifact access key id the engine issues to a job on the server's own
// endpoint: "ASIA" + 16 upper-case hex digits from the CSPRNG; and whether a
// key has that shape (the S3 endpoint answers such a key that names no open
// job with InvalidAccessKeyId, even when it accepts any other key).
std::string NewJobAccessKeyId();
bool IsJobAccessKeyShaped(std::string_view access_key_id);

nlohmann::json JobToDoc(const Job& j);
Job JobFromDoc(const nlohmann::json& d);

}  // namespace pw::engine
