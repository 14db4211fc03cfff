#pragma once

// WorkQueue: the engine's worker threads. Tasks run in FIFO order on a fixed
// number of threads, outside the engine mutex: unpacking inputs, hashing
// outputs, network calls, then a short decide-and-commit under the mutex.
// A Hold counts outside work (a running process) as busy, so WaitIdle waits
// for it too. Stop() drains the queue (queued tasks still run), then joins;
// after Stop, Enqueue refuses tasks, so results of work that ends later are
// dropped and their runs stay InProgress for Recover, exactly as after kill -9.
// An exception escaping a task is logged, never ends the thread. Thread-safe.
//
//   WorkQueue q(2);
//   q.Enqueue([] { ... });
//   q.Stop();  // Drains and joins; also done by the destructor.

#include <atomic>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/thread_annotations.h"

namespace pw::engine {

class WorkQueue {
 public:
  explicit WorkQueue(int threads);
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;
  ~WorkQueue();

  // Queues `fn`; false (and `fn` dropped) once stopping.
  bool Enqueue(std::function<void()> fn) EXCLUDES(mu_);
  // True on one of this queue's threads (inside a task).
  bool OnWorkerThread() const;
  // True once Stop() began: Enqueue refuses tasks.
  bool Stopping() const EXCLUDES(mu_);
  // Outside work begins / ends (e.g. a process runs): busy for WaitIdle.
  void Hold() EXCLUDES(mu_);
  void Release() EXCLUDES(mu_);
  // Tasks queued and not yet started.
  size_t Depth() const EXCLUDES(mu_);
  // Waits until nothing is queued, running or held. False on timeout.
  bool WaitIdle(double timeout_seconds) EXCLUDES(mu_);
  // Waits up to `seconds` for Stop(); true once stopping (for periodic loops).
  bool WaitStopped(double seconds) EXCLUDES(mu_);
  // Refuses new tasks, runs what is queued, joins the threads. Idempotent.
  void Stop() EXCLUDES(mu_);
  // How many times WaitStopped callers woke up and looked (tests).
  int StopChecksForTest() const { return stop_checks_.load(); }

 private:
  void Loop() EXCLUDES(mu_);

  mutable Mutex mu_;
  // Separate variables, so that a task queued or ended wakes only who waits
  // for it: one idle worker, or WaitIdle once nothing is busy. Every wake-up
  // of a thread the work does not need costs a context switch on the CPUs
  // the actions' processes run on.
  CondVar work_cv_;  // A task queued, or stopping: the workers.
  CondVar idle_cv_;  // busy_ fell to 0, or stopping: WaitIdle.
  CondVar stop_cv_;  // Stopping: WaitStopped (the ticker).
  std::deque<std::function<void()>> queue_ GUARDED_BY(mu_);
  int busy_ GUARDED_BY(mu_) = 0;  // Queued and running tasks plus holds.
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
  std::atomic<int> stop_checks_{0};
};

}  // namespace pw::engine
