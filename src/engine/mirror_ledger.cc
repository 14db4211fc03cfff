#include "engine/mirror_ledger.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <utility>

#include "common/ids.h"

namespace pw::engine {
namespace {

using Json = nlohmann::json;

// The row as read: when it was claimed, or when (and by whom) a removal began.
struct Row {
  std::optional<double> claimed;
  std::optional<double> removing;
  std::string by;
};

Row Parse(const std::optional<std::string>& value) {
  Row row;
  if (!value) return row;
  Json doc = Json::parse(*value, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return row;  // Unreadable: as absent (it is overwritten by a CAS).
  if (auto it = doc.find("claimed"); it != doc.end() && it->is_number()) {
    row.claimed = it->get<double>();
  }
  if (auto it = doc.find("removing"); it != doc.end() && it->is_number()) {
    row.removing = it->get<double>();
    if (auto by = doc.find("by"); by != doc.end() && by->is_string()) {
      row.by = by->get<std::string>();
    }
  }
  return row;
}

}  // namespace

StoreMirrorLedger::StoreMirrorLedger(store::Store& store, const Clock& clock, std::string server_id,
                                     double grace_seconds, double claim_wait_seconds)
    : store_(store),
      clock_(clock),
      server_id_(std::move(server_id)),
      grace_seconds_(grace_seconds),
      claim_wait_seconds_(claim_wait_seconds) {}

std::string StoreMirrorLedger::Key(const std::string& revision) { return "mirror/" + revision; }

Status StoreMirrorLedger::Claim(const std::string& revision) {
  const std::string key = Key(revision);
  const double deadline = MonotonicSeconds() + claim_wait_seconds_;
  for (;;) {
    PW_ASSIGN_OR_RETURN(std::optional<std::string> current, store_.GetKv(key));
    const Row row = Parse(current);
    const EpochSeconds now = clock_.Now();
    if (row.removing && now - *row.removing < kStaleRemovalSeconds) {
      if (MonotonicSeconds() > deadline) {
        return Unavailable("artifact " + revision +
                           " is being removed from the shared artifact bucket by server " + row.by +
                           "; try again in a moment");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      continue;
    }
    store::Batch batch;
    batch.kv_expect.emplace_back(key, current);
    batch.kv.emplace_back(key, Json{{"claimed", now}}.dump());
    Status st = store_.Commit(batch);
    if (st.code() != StatusCode::kAborted) return st;
    // Another claim or a removal changed the row since it was read: again.
  }
}

Result<std::string> StoreMirrorLedger::BeginRemoval(const std::string& revision,
                                                    double min_age_seconds) {
  const std::string key = Key(revision);
  PW_ASSIGN_OR_RETURN(std::optional<std::string> current, store_.GetKv(key));
  const Row row = Parse(current);
  const EpochSeconds now = clock_.Now();
  if (row.claimed && now - *row.claimed < min_age_seconds) return std::string();
  if (row.removing && now - *row.removing < kStaleRemovalSeconds) return std::string();
  std::string token = Json{{"removing", now}, {"by", server_id_}, {"nonce", RandomHex(8)}}.dump();
  store::Batch batch;
  batch.kv_expect.emplace_back(key, current);
  batch.kv.emplace_back(key, token);
  Status st = store_.Commit(batch);
  if (st.code() == StatusCode::kAborted) return std::string();  // Claimed meanwhile.
  if (!st.ok()) return st;
  return token;
}

void StoreMirrorLedger::EndRemoval(const std::string& revision, const std::string& token) {
  store::Batch batch;
  const std::string key = Key(revision);
  batch.kv_expect.emplace_back(key, token);
  batch.kv_deletes.push_back(key);
  (void)store_.Commit(batch);  // Lost: the mark goes stale and is then ignored.
}

}  // namespace pw::engine
