#pragma once

// Worker: a CodePipeline job worker. It polls for jobs of its action types,
// acknowledges each (skipping jobs another worker won: InvalidNonceException),
// downloads and unzips the input artifacts from their S3 locations with the
// job's artifactCredentials, runs the program (job_program.h) through a
// ProcessLauncher, zips the source directory to every output artifact's
// location, and reports success (optionally with a continuation token,
// percentComplete and output variables) or failure (exit status and the last
// lines of output). Up to max_jobs jobs run at once, each on its own thread.
//
//   auto launcher = runner::NewPosixProcessLauncher();
//   Worker worker(options, *launcher);
//   std::thread stopper([&] { WaitForSigterm(); worker.Stop(); });
//   int status = worker.Run();  // Returns once stopped and every running job is reported.
//
// Thread-safety: Run() is called once, from one thread; Stop(),
// CancelRunningJobs() and stats() may be called from any thread.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cli/client.h"
#include "runner/process_launcher.h"
#include "runner/s3_client.h"
#include "runner/sandbox.h"
#include "worker/job.h"
#include "worker/job_api.h"
#include "worker/job_program.h"

namespace pw::worker {

struct WorkerOptions {
  // Where the API (and the S3 endpoint, same base URL) is, and as whom to
  // sign API calls (unsigned without credentials).
  cli::ClientOptions api;
  // The S3 endpoint of the artifacts; empty = the API's base URL.
  std::string s3_endpoint_url;
  std::vector<ActionTypeId> action_types;          // Polled in turn; at least one.
  std::map<std::string, std::string> query_param;  // PollForJobs queryParam.
  ProgramOptions program;                          // program.program empty = built-in Commands.
  int max_jobs = 1;                                // Jobs run at once.
  // After a poll that found nothing, the next poll starts no earlier than
  // this long after the previous one started (a long poll that held the call
  // open that long is not followed by a sleep).
  double poll_interval_seconds = 1;
  std::string work_dir;  // Parent of the per-job directories; empty = $TMPDIR or /tmp.
  // How built-in Commands jobs are confined (worker --sandbox, --action-user);
  // with kBwrap the parent of the job directories is hidden too.
  runner::SandboxOptions sandbox;
  // How long a result report is retried while the server is unreachable.
  double report_retry_seconds = 120;
  // Receives one line per event; empty = stderr, prefixed "pipewright worker: ".
  std::function<void(const std::string&)> log;
};

// Counters, for tests and the exit summary.
struct WorkerStats {
  int acknowledged = 0;
  int succeeded = 0;  // Reported success without a continuation token.
  int continued = 0;  // Reported success with a continuation token.
  int failed = 0;     // Reported failure.
  int skipped = 0;    // Not acknowledged (another worker's) or not reportable.
};

// The parent of the per-job directories: `work_dir`, else $TMPDIR, else /tmp.
std::string JobDirParent(const std::string& work_dir);

class Worker {
 public:
  // `launcher` is borrowed and must outlive the worker.
  Worker(WorkerOptions options, runner::ProcessLauncher& launcher);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  // Stops and waits for running jobs, as Run does on Stop().
  ~Worker();

  // Polls and runs jobs until Stop(); then stops polling, waits for the
  // running jobs to finish (their own timeouts still apply), reports them and
  // returns 0. Jobs a poll returned after Stop() are still run: they were
  // handed to this worker. Returns 2 without polling if no action type is set.
  int Run();

  // Makes Run() return once the running jobs are reported. Idempotent.
  void Stop();

  // Kills every running program (SIGTERM, then SIGKILL after the grace);
  // their jobs are reported failed. Jobs still downloading fail before their
  // program starts.
  void CancelRunningJobs();

  WorkerStats stats() const;

 private:
  // Handles one acknowledged job start to end; runs on its own thread.
  void RunJob(const Job& job);
  // Everything of RunJob but the report. OK: the job succeeded and `success`
  // says how; else the failure to report (message; wire_name = FailureType).
  Status Work(const Job& job, JobSuccess* success);
  // Reports `outcome`, retrying while the server is unreachable.
  void Report(const Job& job, const Status& outcome, const JobSuccess& success);
  void StartJobThread(const Job& job);
  void ReapFinishedThreads();
  void Log(const std::string& line) const;
  // Sleeps up to `seconds`, waking early on Stop(). False once stopping.
  bool SleepUnlessStopped(double seconds);

  const WorkerOptions options_;
  runner::ProcessLauncher& launcher_;
  const JobApi api_;
  const S3Client s3_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                             // Guarded by mu_.
  bool cancelling_ = false;                           // Guarded by mu_.
  int active_ = 0;                                    // Jobs being handled. Guarded by mu_.
  uint64_t next_thread_ = 0;                          // Guarded by mu_.
  std::map<uint64_t, std::thread> threads_;           // Guarded by mu_.
  std::vector<uint64_t> finished_threads_;            // Guarded by mu_.
  std::map<std::string, runner::ProcessId> running_;  // Job id -> process. Guarded by mu_.
  WorkerStats stats_;                                 // Guarded by mu_.
};

}  // namespace pw::worker
