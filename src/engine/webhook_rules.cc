#include "engine/webhook_rules.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "sigv4/crypto.h"

namespace pw::engine {

using nlohmann::json;

namespace {

Status BadPath(std::string_view path, const std::string& why) {
  return InvalidArgument("jsonPath '" + std::string(path) + "' " + why +
                             "; use a definite path such as $.ref, $.repository.name or "
                             "$.commits[0].id (member names and array indexes only).",
                         "InvalidWebhookFilterPatternException");
}

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '$';
}

}  // namespace

Result<std::vector<JsonPathStep>> ParseJsonPath(std::string_view path) {
  if (path.empty() || path.front() != '$') return BadPath(path, "does not start with $");
  std::vector<JsonPathStep> steps;
  size_t i = 1;
  while (i < path.size()) {
    if (path[i] == '.') {
      if (i + 1 < path.size() && path[i + 1] == '.') return BadPath(path, "uses a deep scan (..)");
      size_t j = i + 1;
      while (j < path.size() && IsNameChar(path[j])) ++j;
      if (j == i + 1) {
        return BadPath(path, j < path.size() && path[j] == '*' ? "uses a wildcard"
                                                               : "has an empty member name");
      }
      steps.emplace_back(std::string(path.substr(i + 1, j - i - 1)));
      i = j;
      continue;
    }
    if (path[i] == '[') {
      size_t close = path.find(']', i);
      if (close == std::string_view::npos) return BadPath(path, "has an unclosed [");
      std::string_view inner = path.substr(i + 1, close - i - 1);
      if (inner.size() >= 2 && (inner.front() == '\'' || inner.front() == '"') &&
          inner.back() == inner.front()) {
        steps.emplace_back(std::string(inner.substr(1, inner.size() - 2)));
      } else if (!inner.empty() && inner.size() <= 9 &&
                 std::all_of(inner.begin(), inner.end(),
                             [](char c) { return c >= '0' && c <= '9'; })) {
        steps.emplace_back(static_cast<size_t>(std::stoul(std::string(inner))));
      } else {
        return BadPath(path, "has [" + std::string(inner) +
                                 "] (wildcards, filters, slices and negative indexes are not "
                                 "supported)");
      }
      i = close + 1;
      continue;
    }
    return BadPath(path, "has an unexpected '" + std::string(1, path[i]) + "'");
  }
  return steps;
}

std::optional<json> EvalJsonPath(const std::vector<JsonPathStep>& path, const json& doc) {
  const json* cur = &doc;
  for (const auto& step : path) {
    if (const std::string* name = std::get_if<std::string>(&step)) {
      if (!cur->is_object()) return std::nullopt;
      auto it = cur->find(*name);
      if (it == cur->end()) return std::nullopt;
      cur = &*it;
    } else {
      const size_t index = std::get<size_t>(step);
      if (!cur->is_array() || index >= cur->size()) return std::nullopt;
      cur = &(*cur)[index];
    }
  }
  return *cur;
}

Result<std::string> ExpandMatchEquals(std::string_view match,
                                      const std::map<std::string, std::string>& configuration) {
  std::string out;
  size_t i = 0;
  while (i < match.size()) {
    if (match[i] != '{') {
      out += match[i++];
      continue;
    }
    size_t close = match.find('}', i);
    if (close == std::string_view::npos) {
      return InvalidArgument("matchEquals '" + std::string(match) +
                                 "' has an unclosed '{'; write {Key} to use configuration "
                                 "value Key of the target action.",
                             "InvalidWebhookFilterPatternException");
    }
    const std::string key(match.substr(i + 1, close - i - 1));
    auto it = configuration.find(key);
    if (it == configuration.end()) {
      std::string keys;
      for (const auto& [k, v] : configuration) keys += (keys.empty() ? "" : ", ") + k;
      return InvalidArgument("matchEquals '" + std::string(match) + "' refers to {" + key +
                                 "}, which is not in the target action's configuration (" +
                                 (keys.empty() ? std::string("none") : keys) + ").",
                             "InvalidWebhookFilterPatternException");
    }
    out += it->second;
    i = close + 1;
  }
  return out;
}

bool FilterValueMatches(const std::optional<json>& value,
                        const std::optional<std::string>& expected) {
  if (!value || value->is_null()) return false;
  if (!expected) return true;
  const std::string text = value->is_string() ? value->get<std::string>() : value->dump();
  return text == *expected;
}

std::string GithubSignature(std::string_view secret, std::string_view body) {
  return "sha256=" + sigv4::HexEncode(sigv4::HmacSha256(secret, body));
}

bool GithubSignatureValid(std::string_view secret, std::string_view body, std::string_view header) {
  if (header.size() != 7 + 64 || header.substr(0, 7) != "sha256=") return false;
  std::string given(header);
  std::transform(given.begin(), given.end(), given.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return sigv4::ConstantTimeEquals(given, GithubSignature(secret, body));
}

namespace {

// The bytes of a textual address (IPv4-mapped IPv6 reduced to IPv4), or empty.
std::vector<unsigned char> AddressBytes(std::string_view text) {
  std::string s(text);
  if (s.size() > 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  unsigned char buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) return {buf, buf + 4};
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) {
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(buf, kMapped, 12) == 0) return {buf + 12, buf + 16};
    return {buf, buf + 16};
  }
  return {};
}

}  // namespace

Result<IpRange> ParseIpRange(std::string_view cidr) {
  auto bad = [&] {
    return InvalidArgument("AllowedIPRange '" + std::string(cidr) +
                               "' is not an IP range in CIDR notation (e.g. 192.0.2.0/24 or "
                               "2001:db8::/32).",
                           "InvalidWebhookAuthenticationParametersException");
  };
  const size_t slash = cidr.find('/');
  IpRange r;
  r.address = AddressBytes(cidr.substr(0, slash));
  if (r.address.empty()) return bad();
  const int max = static_cast<int>(r.address.size()) * 8;
  r.prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view p = cidr.substr(slash + 1);
    if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), ::isdigit)) return bad();
    r.prefix = std::stoi(std::string(p));
    if (r.prefix > max) return bad();
  }
  return r;
}

bool IpInRange(const IpRange& range, std::string_view address) {
  std::vector<unsigned char> a = AddressBytes(address);
  if (a.size() != range.address.size()) return false;
  int bits = range.prefix;
  for (size_t i = 0; i < a.size() && bits > 0; ++i, bits -= 8) {
    const unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
    if ((a[i] & mask) != (range.address[i] & mask)) return false;
  }
  return true;
}

bool IsCommitId(std::string_view s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}

PushPayload ReadPushPayload(const json& payload) {
  PushPayload p;
  if (!payload.is_object()) return p;
  auto text = [&](const char* key) {
    auto it = payload.find(key);
    return it != payload.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  p.ref = text("ref");
  const std::string zeros(40, '0');
  p.before = text("before");
  if (p.before == zeros || !IsCommitId(p.before)) p.before.clear();
  std::string after = text("checkout_sha");  // GitLab: the commit to check out.
  if (after.empty()) after = text("after");
  if (after.empty() && payload.contains("head_commit") && payload["head_commit"].is_object()) {
    after = payload["head_commit"].value("id", "");
  }
  if (after == zeros || (payload.contains("deleted") && payload["deleted"] == true)) {
    p.deleted = true;
  } else if (IsCommitId(after)) {
    p.after = after;
    std::transform(p.after.begin(), p.after.end(), p.after.begin(), ::tolower);
  }
  std::transform(p.before.begin(), p.before.end(), p.before.begin(), ::tolower);
  if (payload.contains("commits") && payload["commits"].is_array()) {
    p.files_listed = true;
    for (const auto& c : payload["commits"]) {
      if (!c.is_object()) continue;
      for (const char* kind : {"added", "modified", "removed"}) {
        if (!c.contains(kind) || !c[kind].is_array()) continue;
        for (const auto& f : c[kind]) {
          if (f.is_string()) p.files.push_back(f.get<std::string>());
        }
      }
    }
    std::sort(p.files.begin(), p.files.end());
    p.files.erase(std::unique(p.files.begin(), p.files.end()), p.files.end());
  }
  return p;
}

}  // namespace pw::engine
