#include "common/log.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <thread>

#include "common/thread_name.h"

namespace pw {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};
std::mutex g_sink_mu;
std::vector<std::string>* g_sink = nullptr;  // Guarded by g_sink_mu.
// SetLogBuffering's buffer of whole lines, written by FlushLocked.
constexpr size_t kMaxBuffered = 64 * 1024;
std::mutex g_buf_mu;
std::string g_buf;         // Guarded by g_buf_mu.
bool g_buffering = false;  // Guarded by g_buf_mu.

// One write call per batch of whole lines: lines never interleave.
void FlushLocked() {
  if (g_buf.empty()) return;
  std::fwrite(g_buf.data(), 1, g_buf.size(), stderr);
  std::fflush(stderr);
  g_buf.clear();
}

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
  // The seconds are formatted once per second per thread (a busy server logs
  // each request).
  thread_local std::time_t cached_second = -1;
  thread_local char ts[40];
  if (t != cached_second) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_second = t;
  }
  std::string out(ts);
  const char millis[] = {'.', static_cast<char>('0' + ms / 100),
                         static_cast<char>('0' + ms / 10 % 10), static_cast<char>('0' + ms % 10),
                         'Z'};
  out.append(millis, sizeof millis);
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
  if (level < static_cast<int>(LogLevel::kWarning)) {
    std::lock_guard<std::mutex> lock(g_buf_mu);
    if (g_buffering) {
      g_buf += line;
      if (g_buf.size() >= kMaxBuffered) FlushLocked();
      return;
    }
  }
  std::lock_guard<std::mutex> lock(g_buf_mu);
  g_buf += line;  // After what is buffered: lines keep their order.
  FlushLocked();
}

void FlushLog() {
  std::lock_guard<std::mutex> lock(g_buf_mu);
  FlushLocked();
}

namespace {

// Flushes the buffer every interval until destroyed (at exit, before the
// buffer it writes: a function-local static constructed after the globals).
class Flusher {
 public:
  explicit Flusher(std::chrono::milliseconds interval)
      : thread_([this, interval] {
          NameThisThread("pw-log");
          std::unique_lock<std::mutex> lock(mu_);
          while (!stop_) {
            cv_.wait_for(lock, interval);
            FlushLog();
          }
        }) {}
  ~Flusher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    FlushLog();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

void SetLogBuffering(std::chrono::milliseconds interval) {
  {
    std::lock_guard<std::mutex> lock(g_buf_mu);
    g_buffering = true;
  }
  static Flusher flusher(interval);  // The first interval given stays.
}

}  // namespace pw
