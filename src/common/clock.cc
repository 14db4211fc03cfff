#include "common/clock.h"

#include <time.h>

#include <chrono>

namespace pw {

EpochSeconds SystemClock::Now() const {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  // Millisecond precision, as AWS reports.
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
  return static_cast<double>(ms) / 1000.0;
}

double MonotonicSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace pw
