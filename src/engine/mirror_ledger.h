#pragma once

// StoreMirrorLedger: runner::MirrorLedger over the servers' shared database,
// one key/value row per revision ("mirror/<revision>"): {"claimed": t} after
// a Put relied on the mirror's copy at time t, {"removing": t, "by": server,
// "nonce": …} while a sweep removes the copy. Every change is a
// compare-and-set on the row as read (Batch::kv_expect), so a claim and a
// removal never both win: a sweep marks only a row it read as old enough, and
// a claim overwrites only a row it read as not being removed (it waits for
// the removal to end, or for its mark to go stale after
// MirrorLedger::kStaleRemovalSeconds). Times are the servers' clocks: their
// skew must stay well below half the grace period.
//
//   auto ledger = std::make_shared<StoreMirrorLedger>(store, clock, "a", 3600);
//   ArtifactStore artifacts(dir, limits, mirror, ledger);

#include <string>

#include "common/clock.h"
#include "runner/artifact_mirror.h"
#include "store/store.h"

namespace pw::engine {

class StoreMirrorLedger final : public runner::MirrorLedger {
 public:
  // `store` and `clock` must outlive the ledger. `grace_seconds` is
  // retention's artifact grace period (serve --retain-artifact-grace).
  // `claim_wait_seconds`: how long a claim waits for a removal to end.
  StoreMirrorLedger(store::Store& store, const Clock& clock, std::string server_id,
                    double grace_seconds, double claim_wait_seconds = 30);

  Status Claim(const std::string& revision) override;
  double ClaimTtlSeconds() const override { return grace_seconds_ / 2; }
  EpochSeconds Now() const override { return clock_.Now(); }
  Result<std::string> BeginRemoval(const std::string& revision, double min_age_seconds) override;
  void EndRemoval(const std::string& revision, const std::string& token) override;

  // "mirror/<revision>".
  static std::string Key(const std::string& revision);

 private:
  store::Store& store_;
  const Clock& clock_;
  const std::string server_id_;
  const double grace_seconds_;
  const double claim_wait_seconds_;
};

}  // namespace pw::engine
