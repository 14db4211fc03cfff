#include "engine/webhook_rules.h"

#include <gtest/gtest.h>

namespace pw::engine::webhook_rules_test {
namespace {

using nlohmann::json;

TEST(JsonPath, DefinitePathsSelectValues) {
  const json doc = {{"ref", "refs/heads/main"},
                    {"repository", {{"full_name", "o/r"}, {"private", true}}},
                    {"commits", json::array({{{"id", "c1"}}, {{"id", "c2"}}})}};
  struct Case {
    const char* path;
    json want;
  };
  const Case cases[] = {
      {"$.ref", "refs/heads/main"},
      {"$.repository.full_name", "o/r"},
      {"$['repository']['full_name']", "o/r"},
      {"$[\"repository\"].private", true},
      {"$.commits[1].id", "c2"},
      {"$", doc},
  };
  for (const auto& c : cases) {
    auto path = ParseJsonPath(c.path);
    ASSERT_TRUE(path.ok()) << c.path << ": " << path.status().ToString();
    auto v = EvalJsonPath(*path, doc);
    ASSERT_TRUE(v.has_value()) << c.path;
    EXPECT_EQ(*v, c.want) << c.path;
  }
  for (const char* missing : {"$.nope", "$.commits[5].id", "$.ref.x", "$.repository[0]"}) {
    auto path = ParseJsonPath(missing);
    ASSERT_TRUE(path.ok()) << missing;
    EXPECT_FALSE(EvalJsonPath(*path, doc).has_value()) << missing;
  }
}

TEST(JsonPath, UnsupportedSyntaxIsRefusedNamingThePath) {
  for (const char* bad : {"ref", "$..ref", "$.commits[*].id", "$.a[?(@.x)]", "$.", "$[-1]",
                          "$.a[0:2]", "$.*", "$.a b", "$[unclosed"}) {
    auto path = ParseJsonPath(bad);
    ASSERT_FALSE(path.ok()) << bad;
    EXPECT_EQ(path.status().wire_name(), "InvalidWebhookFilterPatternException") << bad;
    EXPECT_NE(path.status().message().find(bad), std::string::npos) << path.status().message();
  }
}

TEST(MatchEquals, ExpandsConfigurationReferences) {
  const std::map<std::string, std::string> config = {{"BranchName", "main"}, {"Repo", "r"}};
  EXPECT_EQ(*ExpandMatchEquals("refs/heads/{BranchName}", config), "refs/heads/main");
  EXPECT_EQ(*ExpandMatchEquals("{Repo}/{BranchName}", config), "r/main");
  EXPECT_EQ(*ExpandMatchEquals("plain", config), "plain");
  auto unknown = ExpandMatchEquals("refs/heads/{Branch}", config);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().wire_name(), "InvalidWebhookFilterPatternException");
  EXPECT_NE(unknown.status().message().find("BranchName, Repo"), std::string::npos);
  EXPECT_FALSE(ExpandMatchEquals("refs/{Branch", config).ok());
}

TEST(FilterValueMatches, ComparesStringsAndJsonText) {
  EXPECT_TRUE(FilterValueMatches(json("refs/heads/main"), std::string("refs/heads/main")));
  EXPECT_FALSE(FilterValueMatches(json("refs/heads/dev"), std::string("refs/heads/main")));
  EXPECT_TRUE(FilterValueMatches(json(true), std::string("true")));
  EXPECT_TRUE(FilterValueMatches(json(42), std::string("42")));
  EXPECT_FALSE(FilterValueMatches(std::nullopt, std::string("x")));
  EXPECT_FALSE(FilterValueMatches(json(nullptr), std::nullopt));
  EXPECT_TRUE(FilterValueMatches(json("anything"), std::nullopt));
}

TEST(GithubSignature, MatchesGithubsDocumentedExample) {
  // GitHub's documentation: secret "It's a Secret to Everybody", payload
  // "Hello, World!".
  const std::string sig = GithubSignature("It's a Secret to Everybody", "Hello, World!");
  EXPECT_EQ(sig, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
  EXPECT_TRUE(GithubSignatureValid("It's a Secret to Everybody", "Hello, World!", sig));
  std::string upper = sig;
  for (size_t i = 7; i < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(upper[i]));
  EXPECT_TRUE(GithubSignatureValid("It's a Secret to Everybody", "Hello, World!", upper));
  EXPECT_FALSE(GithubSignatureValid("other secret", "Hello, World!", sig));
  EXPECT_FALSE(GithubSignatureValid("It's a Secret to Everybody", "Hello, World?", sig));
  EXPECT_FALSE(GithubSignatureValid("It's a Secret to Everybody", "Hello, World!", ""));
  EXPECT_FALSE(GithubSignatureValid("It's a Secret to Everybody", "Hello, World!",
                                    "sha1=757107ea0eb2509fc211221cce984b8a37570b6d"));
  EXPECT_FALSE(
      GithubSignatureValid("It's a Secret to Everybody", "Hello, World!", sig.substr(0, 70)));
}

TEST(IpRange, ContainsAddressesOfItsPrefix) {
  auto r = ParseIpRange("192.0.2.0/24");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(IpInRange(*r, "192.0.2.17"));
  EXPECT_FALSE(IpInRange(*r, "192.0.3.1"));
  EXPECT_TRUE(IpInRange(*r, "::ffff:192.0.2.5"));  // IPv4-mapped.
  EXPECT_FALSE(IpInRange(*r, "2001:db8::1"));
  EXPECT_FALSE(IpInRange(*r, "not an address"));
  auto odd = ParseIpRange("10.0.0.0/9");
  ASSERT_TRUE(odd.ok());
  EXPECT_TRUE(IpInRange(*odd, "10.127.255.255"));
  EXPECT_FALSE(IpInRange(*odd, "10.128.0.0"));
  auto one = ParseIpRange("127.0.0.1");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->prefix, 32);
  EXPECT_TRUE(IpInRange(*one, "127.0.0.1"));
  EXPECT_FALSE(IpInRange(*one, "127.0.0.2"));
  auto v6 = ParseIpRange("2001:db8::/32");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(IpInRange(*v6, "2001:db8:1::1"));
  EXPECT_FALSE(IpInRange(*v6, "2001:db9::1"));
  auto all = ParseIpRange("0.0.0.0/0");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(IpInRange(*all, "8.8.8.8"));
  for (const char* bad : {"", "10.0.0.0/33", "10.0.0/8", "10.0.0.0/", "10.0.0.0/x", "::/129"}) {
    auto b = ParseIpRange(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.status().wire_name(), "InvalidWebhookAuthenticationParametersException");
  }
}

TEST(PushPayload, ReadsGithubAndGitlabPushes) {
  const std::string a(40, 'a'), b(40, 'B'), zeros(40, '0');
  json github = {{"ref", "refs/heads/main"},
                 {"before", a},
                 {"after", b},
                 {"commits", json::array({{{"added", {"src/x.c"}}, {"modified", {"README"}}},
                                          {{"removed", {"src/x.c", "old"}}}})}};
  PushPayload p = ReadPushPayload(github);
  EXPECT_EQ(p.ref, "refs/heads/main");
  EXPECT_EQ(p.before, a);
  EXPECT_EQ(p.after, std::string(40, 'b'));  // Lower case.
  EXPECT_FALSE(p.deleted);
  EXPECT_TRUE(p.files_listed);
  EXPECT_EQ(p.files, (std::vector<std::string>{"README", "old", "src/x.c"}));

  json gitlab = {{"ref", "refs/tags/v1"}, {"before", zeros}, {"after", a}, {"checkout_sha", b}};
  p = ReadPushPayload(gitlab);
  EXPECT_EQ(p.before, "");
  EXPECT_EQ(p.after, std::string(40, 'b'));
  EXPECT_FALSE(p.files_listed);

  p = ReadPushPayload({{"ref", "refs/heads/gone"}, {"before", a}, {"after", zeros}});
  EXPECT_TRUE(p.deleted);
  EXPECT_EQ(p.after, "");
  p = ReadPushPayload({{"ref", "refs/heads/x"}, {"head_commit", {{"id", a}}}});
  EXPECT_EQ(p.after, a);
  p = ReadPushPayload({{"ref", "refs/heads/x"}, {"after", "not-a-commit"}});
  EXPECT_EQ(p.after, "");
  EXPECT_FALSE(p.deleted);
}

}  // namespace
}  // namespace pw::engine::webhook_rules_test
