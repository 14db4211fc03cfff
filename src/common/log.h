#pragma once

// Minimal leveled logging to stderr, one line per call. Thread-safe.
//   PW_LOG(Info) << "listening on " << addr;

#include <sstream>
#include <string_view>

namespace pw {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

class LogLine {
 public:
  explicit LogLine(LogLevel level) : level_(level) {}
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  ~LogLine();
  template <typename T>
  LogLine& operator<<(const T& v) {
    out_ << v;
    return *this;
  }

 private:
  LogLevel level_;
  std::ostringstream out_;
};

}  // namespace pw

#define PW_LOG(level) \
  if (::pw::LogEnabled(::pw::LogLevel::k##level)) ::pw::LogLine(::pw::LogLevel::k##level)
