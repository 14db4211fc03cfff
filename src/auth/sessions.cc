#include "auth/sessions.h"

#include <openssl/rand.h>

#include <algorithm>
#include <map>
#include <vector>

#include "common/check.h"
#include "sigv4/crypto.h"

namespace pw::auth {

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  // RAND_bytes draws from the OS CSPRNG; it fails only if that is broken.
  PW_CHECK(RAND_bytes(buf.data(), static_cast<int>(buf.size())) == 1);
  return sigv4::HexEncode(std::string_view(reinterpret_cast<const char*>(buf.data()), buf.size()));
}

SessionStore::SessionStore(const Clock& clock, SessionOptions options)
    : clock_(clock), options_(options) {}

bool SessionStore::ExpiredLocked(const Session& s, EpochSeconds now) const {
  return now - s.last_used >= options_.idle_seconds || now - s.created >= options_.absolute_seconds;
}

void SessionStore::EvictOldestOfLocked(const std::string& access_key_id) {
  auto oldest = sessions_.end();
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    if (it->second.access_key_id == access_key_id &&
        (oldest == sessions_.end() || it->second.created < oldest->second.created)) {
      oldest = it;
    }
  }
  if (oldest != sessions_.end()) sessions_.erase(oldest);
}

Session SessionStore::Create(std::string_view access_key_id) {
  Session s;
  s.token = RandomHex(32);
  s.csrf_token = RandomHex(32);
  s.access_key_id = std::string(access_key_id);
  s.created = s.last_used = clock_.Now();
  MutexLock lock(mu_);
  // Drop expired sessions first, then the oldest while still full.
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    it = ExpiredLocked(it->second, s.created) ? sessions_.erase(it) : std::next(it);
  }
  std::map<std::string, size_t> per_key;
  for (const auto& [hash, session] : sessions_) ++per_key[session.access_key_id];
  while (per_key[s.access_key_id] >= std::max<size_t>(1, options_.max_sessions_per_key)) {
    EvictOldestOfLocked(s.access_key_id);
    --per_key[s.access_key_id];
  }
  while (!sessions_.empty() && sessions_.size() >= options_.max_sessions) {
    auto biggest =
        std::max_element(per_key.begin(), per_key.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; });
    EvictOldestOfLocked(biggest->first);
    --biggest->second;
  }
  sessions_.emplace(sigv4::Sha256Hex(s.token), s);
  return s;
}

std::optional<Session> SessionStore::Lookup(std::string_view token) {
  if (token.empty()) return std::nullopt;
  std::string key = sigv4::Sha256Hex(token);
  EpochSeconds now = clock_.Now();
  MutexLock lock(mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return std::nullopt;
  if (ExpiredLocked(it->second, now)) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.last_used = now;
  return it->second;
}

bool SessionStore::Remove(std::string_view token) {
  std::string key = sigv4::Sha256Hex(token);
  MutexLock lock(mu_);
  return sessions_.erase(key) > 0;
}

size_t SessionStore::size() const {
  MutexLock lock(mu_);
  return sessions_.size();
}

}  // namespace pw::auth
