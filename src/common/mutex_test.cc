#include "common/mutex.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "common/thread_annotations.h"

namespace pw::mutex_test {
namespace {

using std::chrono::steady_clock;

// The pattern of the header comment: guarded state, a private REQUIRES helper, a CondVar.
class Counter {
 public:
  void Add() EXCLUDES(mu_) {
    {
      MutexLock lock(mu_);
      IncrementLocked();
    }
    changed_.NotifyAll();
  }
  // Waits until the count reaches `n`; false if it had not by `deadline`.
  bool AwaitAtLeast(int n, steady_clock::time_point deadline) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    while (count_ < n) {
      if (changed_.WaitUntil(mu_, deadline) == std::cv_status::timeout) break;
    }
    return count_ >= n;
  }
  bool AwaitWithPredicate(int n, std::chrono::milliseconds timeout) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return changed_.WaitFor(mu_, timeout, [&] {
      mu_.AssertHeld();
      return count_ >= n;
    });
  }
  // Drops the lock around a slow step and takes it again, in one MutexLock scope.
  int AddAroundUnlocked() EXCLUDES(mu_) {
    MutexLock lock(mu_);
    IncrementLocked();
    lock.Unlock();
    std::this_thread::yield();
    lock.Lock();
    return count_;
  }
  int count() EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return count_;
  }

 private:
  void IncrementLocked() REQUIRES(mu_) { ++count_; }

  Mutex mu_;
  int count_ GUARDED_BY(mu_) = 0;
  CondVar changed_;  // count_ grew.
};

TEST(Mutex, SerialisesWriters) {
  Counter c;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c] {
      for (int i = 0; i < 1000; ++i) c.Add();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.count(), 4000);
}

TEST(Mutex, CondVarWakesWaiterAndTimesOut) {
  Counter c;
  std::thread adder([&c] {
    for (int i = 0; i < 3; ++i) c.Add();
  });
  EXPECT_TRUE(c.AwaitAtLeast(3, steady_clock::now() + std::chrono::seconds(30)));
  EXPECT_TRUE(c.AwaitWithPredicate(3, std::chrono::seconds(30)));
  adder.join();
  EXPECT_FALSE(c.AwaitAtLeast(4, steady_clock::now() + std::chrono::milliseconds(10)));
  EXPECT_FALSE(c.AwaitWithPredicate(4, std::chrono::milliseconds(10)));
}

TEST(Mutex, MutexLockRelocks) {
  Counter c;
  EXPECT_EQ(c.AddAroundUnlocked(), 1);
  EXPECT_EQ(c.count(), 1);  // Not left locked: this would deadlock.
}

TEST(Mutex, IsStdLockable) {
  Mutex mu;
  {
    std::unique_lock<Mutex> lock(mu);
    EXPECT_TRUE(lock.owns_lock());
  }
  if (mu.TryLock()) {
    mu.Unlock();
  } else {
    ADD_FAILURE() << "TryLock failed on a free mutex";
  }
}

}  // namespace
}  // namespace pw::mutex_test
