#include "console/assets.h"

#include <cstdint>
#include <cstdio>

namespace pw::console {
namespace {

// FNV-1a, 64 bits: enough to tell two builds' copies of a file apart.
std::string Etag(std::string_view body) {
  uint64_t h = 14695981039346656037ULL;
  for (char c : body) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  char buf[24];
  std::snprintf(buf, sizeof(buf), "\"%016llx\"", static_cast<unsigned long long>(h));
  return buf;
}

const std::vector<Asset>& Assets() {
  static const std::vector<Asset> kAssets = [] {
    std::vector<Asset> out;
    for (const RawAsset& r : EmbeddedAssetsData()) {
      out.push_back({r.name, r.body, ContentTypeFor(r.name), Etag(r.body)});
    }
    return out;
  }();
  return kAssets;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

const Asset* FindAsset(std::string_view name) {
  for (const Asset& a : Assets()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string_view ContentTypeFor(std::string_view name) {
  if (EndsWith(name, ".html")) return "text/html; charset=utf-8";
  if (EndsWith(name, ".css")) return "text/css; charset=utf-8";
  if (EndsWith(name, ".js")) return "text/javascript; charset=utf-8";
  if (EndsWith(name, ".svg")) return "image/svg+xml";
  if (EndsWith(name, ".png")) return "image/png";
  if (EndsWith(name, ".json")) return "application/json";
  return "application/octet-stream";
}

}  // namespace pw::console
