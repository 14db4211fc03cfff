#include "engine/work_queue.h"

#include <chrono>
#include <exception>

#include "common/log.h"
#include "common/thread_name.h"

namespace pw::engine {

namespace {
// The queue whose task this thread runs, if any.
thread_local const WorkQueue* tl_queue = nullptr;
}  // namespace

WorkQueue::WorkQueue(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

WorkQueue::~WorkQueue() { Stop(); }

bool WorkQueue::Enqueue(std::function<void()> fn) {
  {
    MutexLock lock(mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(fn));
    ++busy_;
  }
  work_cv_.NotifyOne();
  return true;
}

bool WorkQueue::OnWorkerThread() const { return tl_queue == this; }

bool WorkQueue::Stopping() const {
  MutexLock lock(mu_);
  return stopping_;
}

void WorkQueue::Hold() {
  MutexLock lock(mu_);
  ++busy_;
}

void WorkQueue::Release() {
  bool idle = false;
  {
    MutexLock lock(mu_);
    idle = --busy_ == 0;
  }
  if (idle) idle_cv_.NotifyAll();
}

size_t WorkQueue::Depth() const {
  MutexLock lock(mu_);
  return queue_.size();
}

bool WorkQueue::WaitIdle(double timeout_seconds) {
  MutexLock lock(mu_);
  return idle_cv_.WaitFor(mu_, std::chrono::duration<double>(timeout_seconds), [this] {
    mu_.AssertHeld();
    return busy_ == 0;
  });
}

bool WorkQueue::WaitStopped(double seconds) {
  MutexLock lock(mu_);
  return stop_cv_.WaitFor(mu_, std::chrono::duration<double>(seconds), [this] {
    mu_.AssertHeld();
    ++stop_checks_;
    return stopping_;
  });
}

void WorkQueue::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  work_cv_.NotifyAll();
  idle_cv_.NotifyAll();
  stop_cv_.NotifyAll();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void WorkQueue::Loop() {
  tl_queue = this;
  NameThisThread("pw-work");
  for (;;) {
    std::function<void()> fn;
    {
      MutexLock lock(mu_);
      while (!stopping_ && queue_.empty()) work_cv_.Wait(mu_);
      if (queue_.empty()) return;  // Stopping and drained.
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      fn();
    } catch (const std::exception& ex) {
      PW_LOG(Error) << "engine task failed: " << ex.what();
    } catch (...) {
      PW_LOG(Error) << "engine task failed with an unknown exception";
    }
    Release();
  }
}

}  // namespace pw::engine
