#include "auth/authenticator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "sigv4/sigv4.h"

namespace pw::auth::authenticator_test {
namespace {

using http::AuthPhase;
using nlohmann::json;

class FakeClock final : public Clock {
 public:
  EpochSeconds Now() const override { return now; }
  EpochSeconds now = 1'700'000'000;
};

constexpr const char* kKeys =
    "ADMIN:admin-secret\n"
    "READER:reader-secret:ro.json\n";

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pw-auth-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ + "/ro.json") << R"({"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Action":["codepipeline:Get*","codepipeline:List*"],"Resource":"*"},
      {"Effect":"Deny","Action":"*","Resource":"arn:aws:codepipeline:*:*:Secret*"}]})";
    auto keys = KeyStore::Parse(kKeys, "keys", dir_);
    ASSERT_TRUE(keys.ok()) << keys.status().message();
    auth_ = std::make_unique<Authenticator>(std::move(*keys), clock_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A POST / signed by `akid`/`secret` at the fake clock's time.
  http::Request Signed(const std::string& akid, const std::string& secret,
                       const std::string& body = "{}") {
    sigv4::HttpRequestView view{"POST",
                                "/",
                                "",
                                {{"Host", "localhost:8480"},
                                 {"X-Amz-Target", "CodePipeline_20150709.ListPipelines"},
                                 {"Content-Type", "application/x-amz-json-1.1"}},
                                body};
    http::Request req;
    req.method = "POST";
    req.target = req.path = "/";
    req.body = body;
    req.headers = {view.headers.begin(), view.headers.end()};
    for (auto& h : sigv4::Sign(view, {akid, secret, ""}, "us-east-1", "codepipeline",
                               static_cast<int64_t>(clock_.Now()))) {
      req.headers.emplace_back(h.first, h.second);
    }
    return req;
  }

  // Signs in through the handler; returns the session (token from the cookie).
  Session SignIn(const std::string& akid, const std::string& secret) {
    http::Request req;
    req.method = "POST";
    req.path = "/console/api/session";
    req.peer = "127.0.0.1";
    req.body = json{{"accessKeyId", akid}, {"secretAccessKey", secret}}.dump();
    http::Response res;
    auth_->SignIn(req, res);
    EXPECT_EQ(res.status, 200) << res.body;
    Session s;
    for (auto& [k, v] : res.headers) {
      if (k == "Set-Cookie") s.token = v.substr(11, 64);
    }
    json out = json::parse(res.body);
    s.csrf_token = out.value("csrfToken", "");
    s.access_key_id = out.value("accessKeyId", "");
    return s;
  }

  http::Request WithCookie(const std::string& method, const std::string& token) {
    http::Request req;
    req.method = method;
    req.path = "/";
    req.headers = {{"Cookie", "theme=dark; pw_session=" + token}};
    return req;
  }

  FakeClock clock_;
  std::string dir_;
  std::unique_ptr<Authenticator> auth_;
};

TEST_F(AuthenticatorTest, NoCredentialsRefusedAtHeaders) {
  http::Request req;
  req.method = "POST";
  req.path = "/";
  http::Response res;
  Status s = auth_->Authenticate(AuthPhase::kHeaders, req, res);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(res.status, 403);
  EXPECT_EQ(json::parse(res.body)["__type"], "MissingAuthenticationToken");
}

TEST_F(AuthenticatorTest, SignatureAcceptedAndCallerSet) {
  http::Request req = Signed("ADMIN", "admin-secret");
  http::Response res;
  ASSERT_TRUE(auth_->Authenticate(AuthPhase::kHeaders, req, res).ok()) << res.body;
  ASSERT_TRUE(auth_->Authenticate(AuthPhase::kBody, req, res).ok()) << res.body;
  EXPECT_EQ(req.caller, "arn:aws:iam::123456789012:user/ADMIN");
  EXPECT_EQ(req.access_key_id, "ADMIN");
}

TEST_F(AuthenticatorTest, UnknownKeyRefusedAtHeaders) {
  http::Request req = Signed("NOBODY", "whatever");
  http::Response res;
  EXPECT_FALSE(auth_->Authenticate(AuthPhase::kHeaders, req, res).ok());
  EXPECT_EQ(res.status, 403);
  EXPECT_EQ(json::parse(res.body)["__type"], "InvalidClientTokenId");
}

TEST_F(AuthenticatorTest, WrongSecretOrTamperedBodyRefusedAtBody) {
  http::Request wrong = Signed("ADMIN", "not-the-secret");
  http::Response res;
  EXPECT_TRUE(auth_->Authenticate(AuthPhase::kHeaders, wrong, res).ok());
  EXPECT_FALSE(auth_->Authenticate(AuthPhase::kBody, wrong, res).ok());
  EXPECT_EQ(res.status, 403);
  EXPECT_EQ(json::parse(res.body)["__type"], "InvalidSignatureException");
  EXPECT_EQ(wrong.caller, "");

  http::Request tampered = Signed("ADMIN", "admin-secret", R"({"a":1})");
  tampered.body = R"({"a":2})";
  http::Response res2;
  EXPECT_FALSE(auth_->Authenticate(AuthPhase::kBody, tampered, res2).ok());
  EXPECT_EQ(res2.status, 403);
}

TEST_F(AuthenticatorTest, StaleSignatureRefused) {
  http::Request req = Signed("ADMIN", "admin-secret");
  clock_.now += 16 * 60;
  http::Response res;
  EXPECT_FALSE(auth_->Authenticate(AuthPhase::kBody, req, res).ok());
  EXPECT_EQ(res.status, 403);
  EXPECT_EQ(json::parse(res.body)["__type"], "RequestExpired");
}

TEST_F(AuthenticatorTest, SessionCookieWithCsrfAccepted) {
  Session s = SignIn("READER", "reader-secret");
  http::Request get = WithCookie("GET", s.token);
  http::Response res;
  ASSERT_TRUE(auth_->Authenticate(AuthPhase::kHeaders, get, res).ok()) << res.body;
  EXPECT_EQ(get.caller, "arn:aws:iam::123456789012:user/READER");
  EXPECT_EQ(get.access_key_id, "READER");

  http::Request post = WithCookie("POST", s.token);
  post.headers.emplace_back("x-pw-csrf", s.csrf_token);
  ASSERT_TRUE(auth_->Authenticate(AuthPhase::kHeaders, post, res).ok()) << res.body;
  ASSERT_TRUE(auth_->Authenticate(AuthPhase::kBody, post, res).ok()) << res.body;
  EXPECT_EQ(post.access_key_id, "READER");
}

TEST_F(AuthenticatorTest, SessionCookieWithoutOrWithWrongCsrfRefused) {
  Session s = SignIn("ADMIN", "admin-secret");
  http::Request post = WithCookie("POST", s.token);
  http::Response res;
  EXPECT_FALSE(auth_->Authenticate(AuthPhase::kHeaders, post, res).ok());
  EXPECT_EQ(res.status, 403);
  EXPECT_NE(json::parse(res.body)["message"].get<std::string>().find("X-Pw-Csrf"),
            std::string::npos);

  post.headers.emplace_back("X-Pw-Csrf", std::string(64, '0'));
  http::Response res2;
  EXPECT_FALSE(auth_->Authenticate(AuthPhase::kHeaders, post, res2).ok());
  EXPECT_EQ(res2.status, 403);
  EXPECT_EQ(post.caller, "");
}

TEST_F(AuthenticatorTest, UnknownOrExpiredSessionRefused) {
  http::Request bogus = WithCookie("GET", std::string(64, 'a'));
  http::Response res;
  EXPECT_FALSE(auth_->Authenticate(AuthPhase::kHeaders, bogus, res).ok());
  EXPECT_EQ(res.status, 403);
  EXPECT_EQ(json::parse(res.body)["__type"], "AccessDeniedException");

  Session s = SignIn("ADMIN", "admin-secret");
  clock_.now += 3601;
  http::Request idle = WithCookie("GET", s.token);
  http::Response res2;
  EXPECT_FALSE(auth_->Authenticate(AuthPhase::kHeaders, idle, res2).ok());
  EXPECT_EQ(res2.status, 403);
}

TEST_F(AuthenticatorTest, SignInRefusesWrongCredentialsAlike) {
  const std::pair<const char*, const char*> bad[] = {{"ADMIN", "wrong"},
                                                     {"NOBODY", "admin-secret"}};
  std::string first_body;
  for (auto [akid, secret] : bad) {
    http::Request req;
    req.method = "POST";
    req.peer = "10.0.0.9";
    req.body = json{{"accessKeyId", akid}, {"secretAccessKey", secret}}.dump();
    http::Response res;
    auth_->SignIn(req, res);
    EXPECT_EQ(res.status, 401);
    EXPECT_FALSE(req.HasHeader("Set-Cookie"));
    for (auto& h : res.headers) EXPECT_NE(h.first, "Set-Cookie");
    if (first_body.empty()) first_body = res.body;
    EXPECT_EQ(res.body, first_body);  // Does not tell which part was wrong.
  }
  http::Request malformed;
  malformed.body = "{\"accessKeyId\": 3}";
  http::Response res;
  auth_->SignIn(malformed, res);
  EXPECT_EQ(res.status, 400);
}

TEST_F(AuthenticatorTest, SignInSetsAStrictHttpOnlyCookieSecureOverTls) {
  for (bool tls : {false, true}) {
    http::Request req;
    req.method = "POST";
    req.peer = "127.0.0.1";
    req.tls = tls;
    req.body = R"({"accessKeyId":"ADMIN","secretAccessKey":"admin-secret"})";
    http::Response res;
    auth_->SignIn(req, res);
    ASSERT_EQ(res.status, 200);
    std::string cookie;
    for (auto& [k, v] : res.headers) {
      if (k == "Set-Cookie") cookie = v;
    }
    EXPECT_EQ(cookie.rfind("pw_session=", 0), 0u) << cookie;
    EXPECT_NE(cookie.find("; Path=/; HttpOnly; SameSite=Strict"), std::string::npos);
    EXPECT_EQ(cookie.find("; Secure") != std::string::npos, tls) << cookie;
    json out = json::parse(res.body);
    EXPECT_EQ(out["identity"], "arn:aws:iam::123456789012:user/ADMIN");
    EXPECT_EQ(out["csrfToken"].get<std::string>().size(), 64u);
  }
}

TEST_F(AuthenticatorTest, SignInIsRateLimitedPerAddress) {
  for (int i = 0; i < 10; ++i) {
    http::Request req;
    req.peer = "10.1.1.1";
    req.body = R"({"accessKeyId":"ADMIN","secretAccessKey":"guess"})";
    http::Response res;
    auth_->SignIn(req, res);
    ASSERT_EQ(res.status, 401);
  }
  http::Request req;
  req.peer = "10.1.1.1";
  req.body = R"({"accessKeyId":"ADMIN","secretAccessKey":"admin-secret"})";
  http::Response res;
  auth_->SignIn(req, res);
  EXPECT_EQ(res.status, 429);
  bool retry_after = false;
  for (auto& h : res.headers) retry_after |= h.first == "Retry-After";
  EXPECT_TRUE(retry_after);
  clock_.now += 60;
  http::Response later;
  auth_->SignIn(req, later);
  EXPECT_EQ(later.status, 200);
}

TEST_F(AuthenticatorTest, GetSessionAndSignOut) {
  Session s = SignIn("ADMIN", "admin-secret");
  http::Request get = WithCookie("GET", s.token);
  http::Response res;
  auth_->GetSession(get, res);
  ASSERT_EQ(res.status, 200);
  EXPECT_EQ(json::parse(res.body)["csrfToken"], s.csrf_token);
  EXPECT_EQ(json::parse(res.body)["authRequired"], true);

  http::Request del = WithCookie("DELETE", s.token);
  http::Response no_csrf;
  auth_->SignOut(del, no_csrf);
  EXPECT_EQ(no_csrf.status, 403);
  EXPECT_TRUE(auth_->sessions().Lookup(s.token).has_value());  // Still signed in.

  del.headers.emplace_back("X-Pw-Csrf", s.csrf_token);
  http::Response out;
  auth_->SignOut(del, out);
  EXPECT_EQ(out.status, 200);
  std::string cookie;
  for (auto& [k, v] : out.headers) {
    if (k == "Set-Cookie") cookie = v;
  }
  EXPECT_NE(cookie.find("Max-Age=0"), std::string::npos);

  http::Response after;
  auth_->GetSession(get, after);
  EXPECT_EQ(after.status, 401);
  http::Response api;
  EXPECT_FALSE(auth_->Authenticate(AuthPhase::kHeaders, get, api).ok());
  EXPECT_EQ(api.status, 403);

  http::Response no_auth;
  Authenticator::SessionWithoutAuth(get, no_auth);
  EXPECT_EQ(json::parse(no_auth.body)["authRequired"], false);
}

TEST_F(AuthenticatorTest, AuthorizeFollowsTheKeysPolicy) {
  json input = {{"pipelineName", "MyPipeline"}, {"stageName", "Build"}};
  EXPECT_TRUE(auth_->Authorize("ADMIN", "RetryStageExecution", input).ok());
  EXPECT_TRUE(auth_->Authorize("READER", "GetPipelineState", {{"name", "MyPipeline"}}).ok());
  EXPECT_TRUE(auth_->Authorize("READER", "GetStageRetryPlan", input).ok());
  EXPECT_TRUE(auth_->Authorize("READER", "ListPipelines", json::object()).ok());

  Status denied = auth_->Authorize("READER", "RetryStageExecution", input);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.wire_name(), "AccessDeniedException");
  EXPECT_EQ(denied.message(),
            "User: arn:aws:iam::123456789012:user/READER is not authorized to perform: "
            "codepipeline:RetryStageExecution on resource: "
            "arn:aws:codepipeline:us-east-1:123456789012:MyPipeline");

  Status explicit_deny = auth_->Authorize("READER", "GetPipeline", {{"name", "SecretStuff"}});
  ASSERT_FALSE(explicit_deny.ok());
  EXPECT_NE(explicit_deny.message().find("explicit deny"), std::string::npos);

  EXPECT_FALSE(auth_->Authorize("", "ListPipelines", json::object()).ok());
  EXPECT_FALSE(auth_->Authorize("NOBODY", "ListPipelines", json::object()).ok());
}

}  // namespace
}  // namespace pw::auth::authenticator_test
