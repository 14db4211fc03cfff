#include "engine/time_zone.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>

namespace pw::engine {
namespace {

int64_t BigEndian(const std::string& d, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = v << 8 | static_cast<unsigned char>(d[at + static_cast<size_t>(i)]);
  if (bytes == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
  return static_cast<int64_t>(v);
}

// "UTC+02:00", "+0530", "GMT-3", "UTC": the offset, or -1 when not this form.
std::optional<int> FixedOffset(std::string s) {
  if (s.rfind("UTC", 0) == 0 || s.rfind("GMT", 0) == 0) s = s.substr(3);
  if (s.empty()) return 0;
  if (s[0] != '+' && s[0] != '-') return std::nullopt;
  const int sign = s[0] == '-' ? -1 : 1;
  std::string digits;
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i] == ':') continue;
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    digits += s[i];
  }
  int h = 0, m = 0;
  if (digits.size() == 1 || digits.size() == 2) {
    h = std::stoi(digits);
  } else if (digits.size() == 4) {
    h = std::stoi(digits.substr(0, 2));
    m = std::stoi(digits.substr(2));
  } else {
    return std::nullopt;
  }
  if (h > 14 || m > 59) return std::nullopt;
  return sign * (h * 3600 + m * 60);
}

}  // namespace

Result<int> TzifOffset(const std::string& d, int64_t utc) {
  auto bad = [] { return InvalidArgument("not a TZif time zone file"); };
  if (d.size() < 44 || d.compare(0, 4, "TZif") != 0) return bad();
  size_t at = 0;
  int time_size = 4;
  // Version 2+: skip the 32-bit block and read the 64-bit one.
  for (int pass = 0; pass < 2; ++pass) {
    if (d.size() < at + 44 || d.compare(at, 4, "TZif") != 0) return bad();
    const char version = d[at + 4];
    const int64_t isutcnt = BigEndian(d, at + 20, 4), isstdcnt = BigEndian(d, at + 24, 4),
                  leapcnt = BigEndian(d, at + 28, 4), timecnt = BigEndian(d, at + 32, 4),
                  typecnt = BigEndian(d, at + 36, 4), charcnt = BigEndian(d, at + 40, 4);
    if (isutcnt < 0 || isstdcnt < 0 || leapcnt < 0 || timecnt < 0 || typecnt <= 0 || charcnt < 0 ||
        timecnt > 100000 || typecnt > 256) {
      return bad();
    }
    const size_t body = static_cast<size_t>(timecnt * time_size + timecnt + typecnt * 6 + charcnt +
                                            leapcnt * (time_size + 4) + isstdcnt + isutcnt);
    const size_t data = at + 44;
    if (d.size() < data + body) return bad();
    if (pass == 0 && version >= '2') {
      at = data + body;
      time_size = 8;
      continue;
    }
    size_t type = 0;
    for (int64_t i = 0; i < timecnt; ++i) {
      const int64_t t = BigEndian(d, data + static_cast<size_t>(i * time_size), time_size);
      if (t > utc) break;
      type = static_cast<unsigned char>(d[data + static_cast<size_t>(timecnt * time_size + i)]);
    }
    if (static_cast<int64_t>(type) >= typecnt) return bad();
    const size_t info = data + static_cast<size_t>(timecnt * time_size + timecnt) + type * 6;
    return static_cast<int>(BigEndian(d, info, 4));
  }
  return bad();
}

Result<int> UtcOffsetSeconds(const std::string& name, int64_t utc) {
  if (auto fixed = FixedOffset(name)) return *fixed;
  bool ok =
      !name.empty() && name.size() < 64 && name[0] != '/' && name.find("..") == std::string::npos;
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '+' || c == '-' ||
                c == '/');
  }
  if (!ok) {
    return InvalidArgument("TimeZone '" + name +
                           "' is not a time zone name; use an IANA name such as Europe/Berlin, "
                           "UTC, or an offset such as UTC+02:00.");
  }
  static std::mutex mu;
  static std::map<std::string, std::string> cache;  // Guarded by mu: name -> file contents.
  std::string data;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(name);
    if (it != cache.end()) {
      data = it->second;
    } else {
      const std::string path = "/usr/share/zoneinfo/" + name;
      std::error_code ec;
      if (std::filesystem::is_regular_file(path, ec) &&
          std::filesystem::file_size(path, ec) < (1 << 20) && !ec) {
        std::ifstream f(path, std::ios::binary);
        data.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
        if (f.bad()) data.clear();
      }
      if (cache.size() < 512) cache[name] = data;
    }
  }
  auto off = TzifOffset(data, utc);
  if (!off.ok()) {
    return InvalidArgument("TimeZone '" + name +
                           "' is not in the time zone database (/usr/share/zoneinfo); use an "
                           "IANA name such as Europe/Berlin, UTC, or an offset such as "
                           "UTC+02:00.");
  }
  return off;
}

}  // namespace pw::engine
