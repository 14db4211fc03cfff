#include "auth/keys.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace pw::auth {
namespace {

std::string Trim(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return std::string(s.substr(b, e - b));
}

bool ValidKeyId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Result<KeyStore> KeyStore::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("cannot read the keys file " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string dir = std::filesystem::path(path).parent_path().string();
  return Parse(text, path, dir.empty() ? "." : dir);
}

Result<KeyStore> KeyStore::Parse(std::string_view text, std::string_view source,
                                 const std::string& base_dir) {
  KeyStore store;
  std::istringstream in{std::string(text)};
  std::string raw;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    std::string where = std::string(source) + ":" + std::to_string(line_no) + ": ";
    std::string line = Trim(raw);
    if (line.empty() || line[0] == '#') continue;
    size_t c1 = line.find(':');
    if (c1 == std::string::npos) {
      return InvalidArgument(where +
                             "expected ACCESS_KEY_ID:SECRET or ACCESS_KEY_ID:SECRET:policy.json");
    }
    KeyEntry e;
    e.access_key_id = line.substr(0, c1);
    size_t c2 = line.find(':', c1 + 1);
    e.secret_access_key = line.substr(c1 + 1, c2 == std::string::npos ? c2 : c2 - c1 - 1);
    if (!ValidKeyId(e.access_key_id)) {
      return InvalidArgument(where +
                             "the access key id must be 1-128 letters, digits, '_', '-' "
                             "or '.'");
    }
    if (e.secret_access_key.empty()) return InvalidArgument(where + "the secret is empty");
    if (c2 != std::string::npos) {
      std::string policy_file = line.substr(c2 + 1);
      if (policy_file.empty()) return InvalidArgument(where + "the policy path is empty");
      std::filesystem::path p(policy_file);
      if (p.is_relative()) p = std::filesystem::path(base_dir) / p;
      e.policy_path = p.string();
      std::ifstream pin(p, std::ios::binary);
      if (!pin) return InvalidArgument(where + "cannot read the policy file " + e.policy_path);
      std::string doc((std::istreambuf_iterator<char>(pin)), std::istreambuf_iterator<char>());
      auto policy = Policy::Parse(doc);
      if (!policy.ok()) {
        return InvalidArgument(where + "policy " + e.policy_path + ": " +
                               policy.status().message());
      }
      e.policy = std::move(*policy);
    }
    if (store.keys_.count(e.access_key_id) != 0) {
      return InvalidArgument(where + "the access key id " + e.access_key_id +
                             " appears more than once");
    }
    std::string id = e.access_key_id;
    store.keys_.emplace(std::move(id), std::move(e));
  }
  return store;
}

const KeyEntry* KeyStore::Find(std::string_view access_key_id) const {
  auto it = keys_.find(access_key_id);
  return it == keys_.end() ? nullptr : &it->second;
}

}  // namespace pw::auth
