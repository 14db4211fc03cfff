#pragma once

// pw::Mutex, pw::MutexLock and pw::CondVar: std::mutex and std::condition_variable with clang
// thread-safety annotations (common/thread_annotations.h), so `make thread-safety` proves that
// every GUARDED_BY member is touched only under its mutex. Same cost as the std types.
//
//   class Inbox {
//    public:
//     void Put(std::string m) EXCLUDES(mu_) {
//       {
//         MutexLock lock(mu_);
//         messages_.push_back(std::move(m));
//       }
//       changed_.NotifyAll();
//     }
//     // Waits until a message is there; false if none came by `deadline`.
//     bool Take(std::string& out, std::chrono::steady_clock::time_point deadline) EXCLUDES(mu_) {
//       MutexLock lock(mu_);
//       while (messages_.empty()) {  // Wait in a loop: wake-ups may be spurious.
//         if (changed_.WaitUntil(mu_, deadline) == std::cv_status::timeout) break;
//       }
//       if (messages_.empty()) return false;
//       out = PopLocked();
//       return true;
//     }
//
//    private:
//     std::string PopLocked() REQUIRES(mu_);
//
//     Mutex mu_;
//     std::deque<std::string> messages_ GUARDED_BY(mu_);
//     CondVar changed_;  // messages_ changed.
//   };
//
// Waiting on a condition: prefer the explicit loop above, which the analysis checks. A predicate
// (CondVar::Wait(mu, pred), as std::condition_variable::wait) runs in a lambda, which the
// analysis sees as a separate function: start its body with `mu_.AssertHeld();`. Mutex is also
// Lockable (lock/unlock/try_lock), so std::unique_lock<pw::Mutex>, std::scoped_lock and
// std::condition_variable_any work with it, but the analysis cannot see them hold it: guarded
// members touched under them are reported. Use MutexLock and CondVar.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>

#include "common/thread_annotations.h"

namespace pw {

// A non-recursive exclusive lock. Thread-safe; not copyable or movable.
class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  // True if the lock was free and is now held by the caller.
  [[nodiscard]] bool TryLock() TRY_ACQUIRE(true) { return mu_.try_lock(); }

  // For the analysis only (no run-time check): the caller holds this mutex, e.g. in a lambda or
  // callback that runs under it.
  void AssertHeld() const ASSERT_CAPABILITY(this) {}

  // The std Lockable names, for std::unique_lock, std::scoped_lock, std::condition_variable_any.
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  [[nodiscard]] bool try_lock() TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds `mu` from construction to destruction (std::lock_guard). Unlock() and Lock() release and
// retake it inside the scope, e.g. around I/O; the destructor releases it only if held.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mu_.Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() RELEASE() {
    mu_.Unlock();
    held_ = false;
  }
  void Lock() ACQUIRE() {
    mu_.Lock();
    held_ = true;
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

// std::condition_variable for pw::Mutex. Every wait releases `mu` while blocked and holds it
// again on return; wake-ups may be spurious, so wait in a loop that re-checks the condition.
// Thread-safe.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void Wait(Mutex& mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // Still held: the caller's MutexLock releases it.
  }

  // std::cv_status::timeout once `deadline` has passed, else no_timeout (notified or spurious).
  template <class Clock, class Duration>
  std::cv_status WaitUntil(Mutex& mu, const std::chrono::time_point<Clock, Duration>& deadline)
      REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    std::cv_status status = cv_.wait_until(lock, deadline);
    lock.release();
    return status;
  }

  template <class Rep, class Period>
  std::cv_status WaitFor(Mutex& mu, const std::chrono::duration<Rep, Period>& timeout)
      REQUIRES(mu) {
    return WaitUntil(mu, std::chrono::steady_clock::now() + timeout);
  }

  // Waits until `pred()` is true (std::condition_variable::wait). `pred` runs with `mu` held but
  // is analysed on its own: begin it with `mu_.AssertHeld();`.
  template <class Predicate>
  void Wait(Mutex& mu, Predicate pred) REQUIRES(mu) {
    while (!pred()) Wait(mu);
  }

  // As Wait(mu, pred) with a deadline; returns pred() (false: timed out with pred still false).
  template <class Clock, class Duration, class Predicate>
  bool WaitUntil(Mutex& mu, const std::chrono::time_point<Clock, Duration>& deadline,
                 Predicate pred) REQUIRES(mu) {
    while (!pred()) {
      if (WaitUntil(mu, deadline) == std::cv_status::timeout) return pred();
    }
    return true;
  }

  template <class Rep, class Period, class Predicate>
  bool WaitFor(Mutex& mu, const std::chrono::duration<Rep, Period>& timeout, Predicate pred)
      REQUIRES(mu) {
    return WaitUntil(mu, std::chrono::steady_clock::now() + timeout, std::move(pred));
  }

  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace pw
