#pragma once

// Authenticator: who is calling, and may they. Plugs into the HTTP front
// (http::Server::SetAuthenticator) and the API dispatcher
// (api::Dispatcher::SetAuthorizer), and serves the console's session routes.
//
// A request is authenticated by either
//  (a) an AWS SigV4 signature (service "codepipeline") by a key of the keys
//      file: at AuthPhase::kHeaders the key id is checked, at kBody the
//      signature over the whole request, body included; or
//  (b) the console's `pw_session` cookie, plus, on every method other than
//      GET and HEAD, an X-Pw-Csrf header equal to the session's CSRF token
//      (the cookie is SameSite=Strict; the header is the second guard).
// A request with neither is refused at kHeaders, before its body is read.
// Refusals are 403 JSON {"__type", "message"}: MissingAuthenticationToken
// (the name the server has always sent), InvalidClientTokenId,
// InvalidSignatureException (and the other SigV4 errors sigv4::Verify names;
// IncompleteSignature is a 400), or AccessDeniedException for a bad session
// or CSRF token. On success req.caller is "arn:aws:iam::<account>:user/<akid>"
// and req.access_key_id the key id.
//
// Authorization: Authorize() evaluates the key's policy (keys.h) for one
// operation; a key without a policy may do everything.
//
// Thread-safe: the key store is immutable, sessions and the sign-in limiter
// lock internally.
//
//   auth::Authenticator auth(std::move(*keys), clock, {.region = "us-east-1"});
//   server.SetAuthenticator([&](auto phase, auto& req, auto& res) {
//     return auth.Authenticate(phase, req, res);
//   });
//   dispatcher.SetAuthorizer([&](auto op, const auto& input, const auto& ctx) {
//     return auth.Authorize(ctx.access_key_id, op, input);
//   });
//   server.Route("POST", "/console/api/session", {.body = kMemory, .auth = kPublic},
//                [&](const auto& req, auto& res) { auth.SignIn(req, res); });

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "auth/keys.h"
#include "auth/rate_limiter.h"
#include "auth/sessions.h"
#include "common/clock.h"
#include "common/status.h"
#include "http/http.h"
#include "http/server.h"

namespace pw::auth {

inline constexpr std::string_view kSessionCookie = "pw_session";
inline constexpr std::string_view kCsrfHeader = "X-Pw-Csrf";

struct AuthenticatorOptions {
  std::string region = "us-east-1";
  std::string account_id = "123456789012";
  SessionOptions sessions;
  int sign_ins_per_minute = 10;  // Per client address, failed or not.
};

class Authenticator {
 public:
  // `clock` must outlive the authenticator.
  Authenticator(KeyStore keys, const Clock& clock, AuthenticatorOptions options = {});
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // The http::Authenticator: OK and req.caller/access_key_id set, or a
  // refusal written to `res` and a non-OK Status (its wire name is the
  // __type sent).
  Status Authenticate(http::AuthPhase phase, http::Request& req, http::Response& res);

  // May `access_key_id` call `operation` (no X-Amz-Target prefix) with
  // `input`? OK, or kFailedPrecondition with wire name AccessDeniedException
  // and AWS's message: "User: <caller> is not authorized to perform:
  // <action> on resource: <resource>" (plus "with an explicit deny" when a
  // Deny statement matched). An unknown or empty key id is refused.
  Status Authorize(std::string_view access_key_id, std::string_view operation,
                   const nlohmann::json& input) const;

  // Console session routes (register them as AuthMode::kPublic):
  //  POST /console/api/session {"accessKeyId","secretAccessKey"} → 200
  //    {"identity","accessKeyId","csrfToken","authRequired":true} and the
  //    cookie; 401 for wrong credentials (never says which part); 429 after
  //    too many attempts from one address; 400 for a malformed body.
  void SignIn(const http::Request& req, http::Response& res);
  //  GET /console/api/session → 200 {"identity","accessKeyId","csrfToken",
  //    "authRequired":true} for a live session cookie, else 401.
  void GetSession(const http::Request& req, http::Response& res);
  //  DELETE /console/api/session (cookie + X-Pw-Csrf) → 200, session ended
  //    and the cookie cleared; 403 without a valid session and CSRF token.
  void SignOut(const http::Request& req, http::Response& res);
  //  GET /console/api/session when the server runs without keys → 200
  //    {"authRequired":false}.
  static void SessionWithoutAuth(const http::Request& req, http::Response& res);

  // "arn:aws:iam::<account>:user/<access_key_id>".
  std::string CallerArn(std::string_view access_key_id) const;

  SessionStore& sessions() { return sessions_; }

 private:
  Status AuthenticateSignature(http::AuthPhase phase, http::Request& req, http::Response& res);
  // The live session of the request's cookie, after checking X-Pw-Csrf when
  // `need_csrf`; on failure writes the 403 to `res`.
  Result<Session> SessionOf(const http::Request& req, http::Response& res, bool need_csrf);

  const KeyStore keys_;
  const Clock& clock_;
  const AuthenticatorOptions options_;
  SessionStore sessions_;
  RateLimiter sign_in_limiter_;
};

// The value of cookie `name` in the request's Cookie headers; "" when absent.
std::string CookieValue(const http::Request& req, std::string_view name);

}  // namespace pw::auth
