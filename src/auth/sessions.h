#pragma once

// SessionStore: the web console's signed-in sessions. A session is created
// when a user exchanges an access key for it (see authenticator.h) and is
// known by a random token sent as the `pw_session` cookie; each session also
// has a random CSRF token the console sends back in the X-Pw-Csrf header.
//
// Sessions live in memory only: restarting the server signs everyone out.
// A session ends after `idle_seconds` without use, `absolute_seconds` after
// sign-in, or at sign-out. A key holds at most `max_sessions_per_key`: one
// more evicts that key's oldest; when `max_sessions` are open, creating
// another evicts the oldest session of the key holding the most. So one
// key's sign-ins cannot sign another key's users out. Tokens are 32 bytes from the OS CSPRNG,
// hex-encoded; the store keys sessions by the SHA-256 of the token, so lookups take no time that
// depends on how much of a guessed token is right.
//
// Thread-safe (one mutex).
//
//   SessionStore sessions(clock);
//   Session s = sessions.Create("AKIDEXAMPLE");          // Set-Cookie: pw_session=s.token
//   std::optional<Session> found = sessions.Lookup(cookie_value);  // touches it

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"

namespace pw::auth {

struct SessionOptions {
  double idle_seconds = 3600;           // 1 h without a request.
  double absolute_seconds = 12 * 3600;  // 12 h after sign-in, however active.
  size_t max_sessions = 10000;
  size_t max_sessions_per_key = 100;
};

struct Session {
  std::string token;       // 64 hex characters; the cookie value.
  std::string csrf_token;  // 64 hex characters.
  std::string access_key_id;
  EpochSeconds created = 0;
  EpochSeconds last_used = 0;
};

class SessionStore {
 public:
  // `clock` must outlive the store.
  explicit SessionStore(const Clock& clock, SessionOptions options = {});
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;

  // Opens a session for `access_key_id`. Never fails (dies if the OS
  // CSPRNG fails, which it does not after start-up).
  Session Create(std::string_view access_key_id) EXCLUDES(mu_);

  // The live session whose token is `token`, after marking it used now;
  // nullopt when unknown, expired (then forgotten) or signed out.
  std::optional<Session> Lookup(std::string_view token) EXCLUDES(mu_);

  // Ends the session `token`; returns whether one was open.
  bool Remove(std::string_view token) EXCLUDES(mu_);

  size_t size() const EXCLUDES(mu_);

 private:
  bool ExpiredLocked(const Session& s, EpochSeconds now) const REQUIRES(mu_);
  // Removes the oldest session of `access_key_id` (if it has one).
  void EvictOldestOfLocked(const std::string& access_key_id) REQUIRES(mu_);

  const Clock& clock_;
  const SessionOptions options_;
  mutable Mutex mu_;
  // SHA-256 (hex) of the token → session.
  std::map<std::string, Session, std::less<>> sessions_ GUARDED_BY(mu_);
};

// Random bytes from the OS CSPRNG as lowercase hex (2 * `bytes` characters).
// Dies if the CSPRNG fails.
std::string RandomHex(size_t bytes);

}  // namespace pw::auth
