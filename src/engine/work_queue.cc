#include "engine/work_queue.h"

#include <chrono>
#include <exception>

#include "common/log.h"

namespace pw::engine {

WorkQueue::WorkQueue(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

WorkQueue::~WorkQueue() { Stop(); }

bool WorkQueue::Enqueue(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(fn));
    ++busy_;
  }
  // notify_all: idle-waiters share the variable, and a notify_one could wake
  // one of them instead of a worker.
  cv_.notify_all();
  return true;
}

void WorkQueue::Hold() {
  std::lock_guard lock(mu_);
  ++busy_;
}

void WorkQueue::Release() {
  {
    std::lock_guard lock(mu_);
    --busy_;
  }
  cv_.notify_all();
}

bool WorkQueue::WaitIdle(double timeout_seconds) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::duration<double>(timeout_seconds),
                      [this] { return busy_ == 0; });
}

bool WorkQueue::WaitStopped(double seconds) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return stopping_; });
}

void WorkQueue::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void WorkQueue::Loop() {
  for (;;) {
    std::function<void()> fn;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
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
