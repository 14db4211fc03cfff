#include "common/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace pw {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};
std::mutex g_sink_mu;
std::vector<std::string>* g_sink = nullptr;  // Guarded by g_sink_mu.

constexpr const char* kUpperNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
constexpr const char* kLowerNames[] = {"debug", "info", "warning", "error"};

// A JSON string literal. Control characters and invalid UTF-8 bytes are
// escaped (\u00XX) so every line parses, whatever a message holds.
// Length of the valid UTF-8 sequence at s[i] (lead byte >= 0x80), 0 if invalid.
size_t Utf8Length(std::string_view s, size_t i) {
  const auto b = [&s](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
  }
  if (n == 3 && ((c == 0xe0 && b(i + 1) < 0xa0) || (c == 0xed && b(i + 1) >= 0xa0))) return 0;
  if (n == 4 && ((c == 0xf0 && b(i + 1) < 0x90) || (c == 0xf4 && b(i + 1) >= 0x90))) return 0;
  return n;
}

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8Length(s, i);
      if (n == 0) {
        out += "\\ufffd";  // An invalid byte: the replacement character.
      } else {
        out += s.substr(i, n);
        i += n - 1;
      }
      continue;
    }
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

// A logfmt value: bare when it has no space, '=', '"' or control character.
void AppendLogfmtValue(std::string& out, std::string_view s) {
  bool bare = !s.empty();
  for (unsigned char c : s) {
    if (c <= ' ' || c == '=' || c == '"' || c == 0x7f) bare = false;
  }
  if (bare) {
    out += s;
    return;
  }
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

std::string Timestamp() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[40];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", ts, static_cast<int>(ms));
  return out;
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }
bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }
void SetLogFormat(LogFormat format) { g_format = static_cast<int>(format); }

bool ParseLogFormat(std::string_view name, LogFormat* out) {
  if (name == "text") {
    *out = LogFormat::kText;
  } else if (name == "json") {
    *out = LogFormat::kJson;
  } else if (name == "logfmt") {
    *out = LogFormat::kLogfmt;
  } else {
    return false;
  }
  return true;
}

bool ParseLogLevel(std::string_view name, LogLevel* out) {
  for (int i = 0; i < 4; ++i) {
    if (name == kLowerNames[i]) {
      *out = static_cast<LogLevel>(i);
      return true;
    }
  }
  return false;
}

void SetLogSinkForTest(std::vector<std::string>* sink) {
  std::lock_guard<std::mutex> lock(g_sink_mu);
  g_sink = sink;
}

LogLine& LogLine::Field(std::string_view key, std::string_view value) {
  if (!value.empty()) fields_.push_back({std::string(key), std::string(value), false});
  return *this;
}

LogLine& LogLine::Field(std::string_view key, int64_t value) {
  fields_.push_back({std::string(key), std::to_string(value), true});
  return *this;
}

LogLine::~LogLine() {
  const int level = static_cast<int>(level_);
  const std::string msg = out_.str();
  std::string line;
  switch (static_cast<LogFormat>(g_format.load())) {
    case LogFormat::kJson:
      line = "{\"time\":\"" + Timestamp() + "\",\"level\":\"" + kLowerNames[level] + "\",\"msg\":";
      AppendJsonString(line, msg);
      for (const auto& f : fields_) {
        line += ',';
        AppendJsonString(line, f.key);
        line += ':';
        if (f.number) {
          line += f.value;
        } else {
          AppendJsonString(line, f.value);
        }
      }
      line += '}';
      break;
    case LogFormat::kLogfmt:
      line = "time=" + Timestamp() + " level=" + kLowerNames[level] + " msg=";
      AppendLogfmtValue(line, msg);
      for (const auto& f : fields_) {
        line += ' ' + f.key + '=';
        AppendLogfmtValue(line, f.value);
      }
      break;
    case LogFormat::kText:
      line = Timestamp() + " " + kUpperNames[level] + " " + msg;
      for (const auto& f : fields_) {
        line += ' ' + f.key + '=';
        AppendLogfmtValue(line, f.value);
      }
      break;
  }
  line += '\n';
  {
    std::lock_guard<std::mutex> lock(g_sink_mu);
    if (g_sink != nullptr) {
      line.pop_back();
      g_sink->push_back(std::move(line));
      return;
    }
  }
  std::fputs(line.c_str(), stderr);  // One call per line: lines never interleave.
}

}  // namespace pw
