#pragma once

// Time as the engine sees it: epoch seconds with a fraction, as the wire API
// sends timestamps. The Clock interface is the seam that lets tests inject time.

namespace pw {

using EpochSeconds = double;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual EpochSeconds Now() const = 0;
};

// Seconds on the monotonic clock (CLOCK_MONOTONIC), for timeouts and
// durations: never steps with the wall clock.
double MonotonicSeconds();

// Reads the system's real-time clock. Thread-safe.
class SystemClock final : public Clock {
 public:
  EpochSeconds Now() const override;
};

}  // namespace pw
