#pragma once

// Leveled logging to stderr, one line per call. Thread-safe.
//   PW_LOG(Info) << "listening on " << addr;
//   PW_LOG(Info).Field("operation", "GetPipeline").Field("duration_ms", 3) << "request";
//
// Three line formats (SetLogFormat; `serve --log-format`):
//   text    2026-11-29T19:28:00.123Z INFO request operation=GetPipeline duration_ms=3
//   json    {"time":"2026-11-29T19:28:00.123Z","level":"info","msg":"request",
//            "operation":"GetPipeline","duration_ms":3}
//   logfmt  time=2026-11-29T19:28:00.123Z level=info msg=request operation=GetPipeline ...
// Fields are for values meant to be searched (request id, operation,
// pipeline, execution id, duration); never pass a secret, in a field or the
// message.

#include <chrono>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pw {

enum class LogLevel { kDebug, kInfo, kWarning, kError };
enum class LogFormat { kText, kJson, kLogfmt };

void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
void SetLogFormat(LogFormat format);
// "text", "json", "logfmt"; false (and `*out` untouched) for anything else.
bool ParseLogFormat(std::string_view name, LogFormat* out);
// "debug", "info", "warning", "error"; false for anything else.
bool ParseLogLevel(std::string_view name, LogLevel* out);

// Test hook: lines go to `sink` instead of stderr while it is set (nullptr: stderr).
void SetLogSinkForTest(std::vector<std::string>* sink);

// Buffers debug and info lines (`serve`: one line per request): written in
// batches every `interval`, when 64 KiB are waiting, before any warning or
// error line (which is written at once, in order), by FlushLog and at exit.
// One write per batch instead of one per line; a crash loses at most
// `interval` of info lines. Off by default (the CLI, tests).
void SetLogBuffering(std::chrono::milliseconds interval);
// Writes what is buffered.
void FlushLog();

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
  // A named value; empty strings are left out. Keys are fixed identifiers
  // (letters, digits, '_').
  LogLine& Field(std::string_view key, std::string_view value);
  LogLine& Field(std::string_view key, const std::string& value) {
    return Field(key, std::string_view(value));
  }
  LogLine& Field(std::string_view key, const char* value) {
    return Field(key, std::string_view(value));
  }
  LogLine& Field(std::string_view key, int64_t value);
  LogLine& Field(std::string_view key, int value) { return Field(key, int64_t{value}); }

 private:
  struct FieldValue {
    std::string key;
    std::string value;
    bool number = false;
  };
  LogLevel level_;
  std::ostringstream out_;
  std::vector<FieldValue> fields_;
};

}  // namespace pw

#define PW_LOG(level) \
  if (::pw::LogEnabled(::pw::LogLevel::k##level)) ::pw::LogLine(::pw::LogLevel::k##level)
