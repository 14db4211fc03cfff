#include "common/clock.h"

#include <chrono>

namespace pw {

EpochSeconds SystemClock::Now() const {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  // Millisecond precision, as AWS reports.
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
  return static_cast<double>(ms) / 1000.0;
}

}  // namespace pw
