#pragma once

// LogShipper: copies the logs of running actions from this server's data
// directory into the shared database (Store::AppendActionLog), so that with
// several servers on one PostgreSQL any of them can serve the log of an
// action another one runs (GET /logs/<id> falls back to the database when the
// file is not local). Single-server mode has no shipper: logs stay files.
//
// Each followed log is shipped from where the last chunk ended: every
// `interval_seconds` by a background thread (what was appended since), and
// in full by Finish when the action ends, before its result is committed,
// so a finished action's log is complete in the database. A chunk that
// cannot be stored (database down) is tried again on the next round; a log
// whose Finish failed stays followed until its rest is stored.
//
//   LogShipper shipper(store, [&](const std::string& id) { return data_dir + "/logs/" + id +
//   ".log"; }); shipper.Start(); shipper.Follow(run_id, pipeline, execution_id);   // when the
//   action starts
//   ...                                               // its process appends to the file
//   (void)shipper.Finish(run_id);                     // when it ends, before the commit
//
// Thread-safe. The store must outlive the shipper.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "store/store.h"

namespace pw::engine {

struct LogShipperOptions {
  double interval_seconds = 1;               // Between two rounds of the background thread.
  size_t max_chunk_bytes = size_t{1} << 20;  // Bytes per stored chunk (one row).
};

class LogShipper {
 public:
  // `log_path` maps an action execution id to its log file.
  LogShipper(store::Store& store, std::function<std::string(const std::string&)> log_path,
             LogShipperOptions options = {});
  LogShipper(const LogShipper&) = delete;
  LogShipper& operator=(const LogShipper&) = delete;
  // Stops the background thread (logs still followed are not shipped further).
  ~LogShipper();

  // Starts the background thread (once; without it only Finish and
  // ShipRound ship).
  void Start() EXCLUDES(mu_);

  // Follows the log of `run_id` (an action execution id) from byte 0. Again
  // for a followed log: no change.
  void Follow(const std::string& run_id, const std::string& pipeline,
              const std::string& execution_id) EXCLUDES(mu_);

  // Ships the rest of the log of `run_id` now and stops following it. OK when
  // everything is stored (also for a log never followed, or with no file: an
  // action that wrote nothing). On a store error the log stays followed and
  // the background thread keeps trying; the error is returned.
  Status Finish(const std::string& run_id) EXCLUDES(mu_, ship_mu_);

  // One round over every followed log (what the background thread does each
  // interval). Returns the first error, if any.
  Status ShipRound() EXCLUDES(mu_, ship_mu_);

  // Logs followed now (running actions, and finished ones not fully stored).
  size_t FollowedForTest() const EXCLUDES(mu_);

 private:
  struct Followed {
    std::string pipeline;
    std::string execution_id;
    uint64_t shipped = 0;   // Bytes of the file stored so far.
    bool finished = false;  // Finish was called: drop once all is stored.
  };
  // Stores what has not been shipped yet of the file of `run_id` (if
  // followed). Only holders of ship_mu_ advance `shipped`; mu_ is never held
  // during I/O.
  Status ShipLocked(const std::string& run_id) REQUIRES(ship_mu_) EXCLUDES(mu_);
  void Loop() EXCLUDES(mu_);

  store::Store& store_;
  const std::function<std::string(const std::string&)> log_path_;
  const LogShipperOptions options_;

  // Taken around every shipping (rounds and Finish), before mu_: the
  // `shipped` offsets are read and advanced under it.
  Mutex ship_mu_ ACQUIRED_BEFORE(mu_);
  mutable Mutex mu_;
  std::map<std::string, Followed> followed_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  CondVar wake_;  // stop_ changed.
  std::thread thread_;
};

}  // namespace pw::engine
