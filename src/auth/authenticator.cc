#include "auth/authenticator.h"

#include <cmath>
#include <cstdint>

#include "auth/operation_access.h"
#include "sigv4/crypto.h"
#include "sigv4/sigv4.h"

namespace pw::auth {
namespace {

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The access key id in "AWS4-HMAC-SHA256 Credential=AKID/date/…"; "" if none.
std::string CredentialKeyId(std::string_view authorization) {
  auto pos = authorization.find("Credential=");
  if (pos == std::string_view::npos) return "";
  std::string_view rest = authorization.substr(pos + 11);
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return "";
  return std::string(rest.substr(0, slash));
}

bool IsSafeMethod(std::string_view method) { return method == "GET" || method == "HEAD"; }

Status Refuse(http::Response& res, int status, std::string type, const std::string& message) {
  res.JsonError(status, type, message);
  return Status(StatusCode::kFailedPrecondition, message, std::move(type));
}

std::string SessionCookie(std::string_view value, bool secure, bool clear) {
  std::string c = std::string(kSessionCookie) + "=" + std::string(value) +
                  "; Path=/; HttpOnly; SameSite=Strict";
  if (clear) c += "; Max-Age=0";
  if (secure) c += "; Secure";
  return c;
}

void JsonReply(http::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.SetHeader("Content-Type", "application/json");
  res.SetHeader("Cache-Control", "no-store");
  res.body = body.dump();
}

// A secret that no key has, compared against when the key id is unknown, so
// a wrong key id costs the same as a wrong secret.
const std::string& DummySecret() {
  static const std::string secret = RandomHex(20);
  return secret;
}

}  // namespace

std::string CookieValue(const http::Request& req, std::string_view name) {
  for (const auto& [k, v] : req.headers) {
    if (k.size() != 6 || (k[0] != 'C' && k[0] != 'c') ||
        !std::equal(k.begin() + 1, k.end(), "ookie", [](char a, char b) {
          return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
        })) {
      continue;
    }
    std::string_view rest = v;
    while (!rest.empty()) {
      auto semi = rest.find(';');
      std::string_view pair = TrimSpaces(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      auto eq = pair.find('=');
      if (eq != std::string_view::npos && TrimSpaces(pair.substr(0, eq)) == name) {
        return std::string(TrimSpaces(pair.substr(eq + 1)));
      }
    }
  }
  return "";
}

Authenticator::Authenticator(KeyStore keys, const Clock& clock, AuthenticatorOptions options)
    : keys_(std::move(keys)),
      clock_(clock),
      options_(std::move(options)),
      sessions_(clock, options_.sessions),
      sign_in_limiter_(clock, options_.sign_ins_per_minute, 60) {}

std::string Authenticator::CallerArn(std::string_view access_key_id) const {
  return "arn:aws:iam::" + options_.account_id + ":user/" + std::string(access_key_id);
}

Status Authenticator::Authenticate(http::AuthPhase phase, http::Request& req, http::Response& res) {
  req.caller.clear();
  req.access_key_id.clear();
  if (req.HasHeader("Authorization")) return AuthenticateSignature(phase, req, res);
  if (!CookieValue(req, kSessionCookie).empty()) {
    PW_ASSIGN_OR_RETURN(Session s, SessionOf(req, res, !IsSafeMethod(req.method)));
    req.access_key_id = s.access_key_id;
    req.caller = CallerArn(s.access_key_id);
    return Status::Ok();
  }
  return Refuse(res, 403, "MissingAuthenticationToken",
                "Missing Authentication Token: sign the request with AWS Signature Version 4 "
                "(e.g. aws --endpoint-url) or sign in to the console.");
}

Status Authenticator::AuthenticateSignature(http::AuthPhase phase, http::Request& req,
                                            http::Response& res) {
  std::string authorization = req.Header("Authorization");
  if (phase == http::AuthPhase::kHeaders) {
    // Refuse unknown keys before reading a body; the signature needs the body.
    std::string akid = CredentialKeyId(authorization);
    if (akid.empty()) {
      return Refuse(res, 400, "IncompleteSignature",
                    "Authorization header requires 'Credential' parameter (AWS4-HMAC-SHA256 "
                    "Credential=AKID/date/region/codepipeline/aws4_request, ...).");
    }
    if (keys_.Find(akid) == nullptr) {
      return Refuse(res, 403, "InvalidClientTokenId",
                    "The security token included in the request is invalid.");
    }
    return Status::Ok();
  }
  sigv4::HttpRequestView view;
  view.method = req.method;
  view.path = req.path;
  view.query = req.query;
  for (const auto& [k, v] : req.headers) view.headers.emplace_back(k, v);
  view.body = req.body;
  auto akid = sigv4::Verify(view, "codepipeline", static_cast<int64_t>(std::floor(clock_.Now())),
                            [this](std::string_view id) -> std::optional<sigv4::SecretInfo> {
                              const KeyEntry* k = keys_.Find(id);
                              if (k == nullptr) return std::nullopt;
                              return sigv4::SecretInfo{k->secret_access_key, "", 0};
                            });
  if (!akid.ok()) {
    // sigv4's wire names as they are (clients and tests match on them); a
    // malformed header is the client's bug (400), everything else 403.
    std::string type = akid.status().wire_name();
    int status = type == "IncompleteSignature" ? 400 : 403;
    if (type.empty()) type = "InvalidSignatureException";
    return Refuse(res, status, type, akid.status().message());
  }
  req.access_key_id = *akid;
  req.caller = CallerArn(*akid);
  return Status::Ok();
}

Result<Session> Authenticator::SessionOf(const http::Request& req, http::Response& res,
                                         bool need_csrf) {
  std::optional<Session> s = sessions_.Lookup(CookieValue(req, kSessionCookie));
  if (!s) {
    return Refuse(res, 403, "AccessDeniedException",
                  "The console session has expired or was signed out; sign in again.");
  }
  if (need_csrf && !sigv4::ConstantTimeEquals(req.Header(kCsrfHeader), s->csrf_token)) {
    return Refuse(res, 403, "AccessDeniedException",
                  "Missing or wrong " + std::string(kCsrfHeader) +
                      " header: requests other than GET with a console session cookie must "
                      "carry the session's CSRF token.");
  }
  return *s;
}

Status Authenticator::Authorize(std::string_view access_key_id, std::string_view operation,
                                const nlohmann::json& input) const {
  OperationAccess access = AccessFor(operation, input, options_.region, options_.account_id);
  const KeyEntry* key = access_key_id.empty() ? nullptr : keys_.Find(access_key_id);
  Decision d = Decision::kImplicitDeny;
  if (key != nullptr) {
    d = key->policy ? key->policy->Evaluate(access.action, access.resource) : Decision::kAllow;
  }
  if (d == Decision::kAllow) return Status::Ok();
  std::string caller = access_key_id.empty() ? "anonymous" : CallerArn(access_key_id);
  std::string message = "User: " + caller + " is not authorized to perform: " + access.action +
                        " on resource: " + access.resource;
  if (d == Decision::kExplicitDeny) message += " with an explicit deny in an identity-based policy";
  return FailedPrecondition(std::move(message), "AccessDeniedException");
}

void Authenticator::SignIn(const http::Request& req, http::Response& res) {
  if (!sign_in_limiter_.Allow(req.peer)) {
    double wait = std::ceil(sign_in_limiter_.RetryAfter(req.peer));
    res.JsonError(429, "ThrottlingException",
                  "Too many sign-in attempts from this address; try again in a minute.");
    res.SetHeader("Retry-After", std::to_string(static_cast<int>(wait < 1 ? 1 : wait)));
    return;
  }
  nlohmann::json in = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (in.is_discarded() || !in.is_object() || !in.contains("accessKeyId") ||
      !in["accessKeyId"].is_string() || !in.contains("secretAccessKey") ||
      !in["secretAccessKey"].is_string()) {
    res.JsonError(400, "ValidationException",
                  "Send a JSON object {\"accessKeyId\": \"...\", \"secretAccessKey\": \"...\"}.");
    return;
  }
  std::string akid = in["accessKeyId"].get<std::string>();
  std::string secret = in["secretAccessKey"].get<std::string>();
  const KeyEntry* key = keys_.Find(akid);
  // Always one constant-time compare, so an unknown key id is not faster.
  bool match =
      sigv4::ConstantTimeEquals(secret, key != nullptr ? key->secret_access_key : DummySecret()) &&
      key != nullptr;
  if (!match) {
    res.JsonError(401, "NotAuthorizedException",
                  "The access key id or the secret access key is wrong.");
    return;
  }
  Session s = sessions_.Create(akid);
  res.SetHeader("Set-Cookie", SessionCookie(s.token, req.tls, /*clear=*/false));
  JsonReply(res, 200,
            {{"identity", CallerArn(akid)},
             {"accessKeyId", akid},
             {"csrfToken", s.csrf_token},
             {"authRequired", true}});
}

void Authenticator::GetSession(const http::Request& req, http::Response& res) {
  std::optional<Session> s = sessions_.Lookup(CookieValue(req, kSessionCookie));
  if (!s) {
    res.JsonError(401, "NotAuthorizedException", "Not signed in.");
    res.body = nlohmann::json{
        {"__type", "NotAuthorizedException"},
        {"message", "Not signed in."},
        {"authRequired",
         true}}.dump();
    return;
  }
  JsonReply(res, 200,
            {{"identity", CallerArn(s->access_key_id)},
             {"accessKeyId", s->access_key_id},
             {"csrfToken", s->csrf_token},
             {"authRequired", true}});
}

void Authenticator::SignOut(const http::Request& req, http::Response& res) {
  auto s = SessionOf(req, res, /*need_csrf=*/true);
  if (!s.ok()) return;
  (void)sessions_.Remove(s->token);
  res.SetHeader("Set-Cookie", SessionCookie("", req.tls, /*clear=*/true));
  JsonReply(res, 200, {{"signedOut", true}});
}

void Authenticator::SessionWithoutAuth(const http::Request&, http::Response& res) {
  JsonReply(res, 200, {{"authRequired", false}});
}

}  // namespace pw::auth
