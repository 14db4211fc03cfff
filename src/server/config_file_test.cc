#include "server/config_file.h"

#include <gtest/gtest.h>

namespace pw::server::config_file_test {
namespace {

// A small `serve`-like app: the file must reach every kind of option.
struct App {
  CLI::App app{"test"};
  std::string listen = "127.0.0.1:8480";
  std::string config;
  bool check = false;
  bool no_start = false;
  double timeout = 60;
  std::vector<std::string> roots;
  App() {
    app.add_option("--config", config);
    app.add_flag("--check-config", check);
    app.add_option("--listen", listen);
    app.add_flag("--no-start-on-create", no_start);
    app.add_option("--job-timeout", timeout)->check(CLI::PositiveNumber);
    app.add_option("--deploy-root", roots)
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  }
  void Parse(std::vector<std::string> args) {
    std::vector<std::string> rev(args.rbegin(), args.rend());
    app.parse(rev);
  }
};

TEST(ConfigFile, SetsEveryKindOfOption) {
  App a;
  a.Parse({});
  Status s = ApplyConfigText(
      "listen: 0.0.0.0:9000\nno-start-on-create: true\njob-timeout: 30\n"
      "deploy-root: [/srv/a, /srv/b]\n",
      "pw.yaml", a.app, {});
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(a.listen, "0.0.0.0:9000");
  EXPECT_TRUE(a.no_start);
  EXPECT_EQ(a.timeout, 30);
  EXPECT_EQ(a.roots, (std::vector<std::string>{"/srv/a", "/srv/b"}));
}

TEST(ConfigFile, CommandLineWinsOverTheFile) {
  App a;
  a.Parse({"--listen", "127.0.0.1:1", "--deploy-root", "/x"});
  Status s = ApplyConfigText("listen: 0.0.0.0:9000\ndeploy-root: [/srv/a]\njob-timeout: 5\n",
                             "pw.yaml", a.app, {});
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(a.listen, "127.0.0.1:1");
  EXPECT_EQ(a.roots, (std::vector<std::string>{"/x"}));
  EXPECT_EQ(a.timeout, 5);
}

TEST(ConfigFile, UnknownKeyNamesTheKeyAndItsLine) {
  App a;
  a.Parse({});
  Status s = ApplyConfigText("listen: 0.0.0.0:9000\n\nlisten-adress: x\n", "pw.yaml", a.app, {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("pw.yaml:3: unknown key 'listen-adress'"), std::string::npos)
      << s.message();
}

TEST(ConfigFile, UnderscoreKeySuggestsTheFlagName) {
  App a;
  a.Parse({});
  Status s = ApplyConfigText("job_timeout: 3\n", "pw.yaml", a.app, {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("did you mean 'job-timeout'?"), std::string::npos) << s.message();
}

TEST(ConfigFile, CommandLineOnlyKeysAreUnknown) {
  for (const char* key : {"config", "check-config", "help"}) {
    App a;
    a.Parse({});
    Status s = ApplyConfigText(std::string(key) + ": x\n", "pw.yaml", a.app, {});
    ASSERT_FALSE(s.ok()) << key;
    EXPECT_NE(s.message().find("unknown key"), std::string::npos) << s.message();
  }
}

TEST(ConfigFile, ValueRefusedByTheFlagCheckNamesLineAndKey) {
  App a;
  a.Parse({});
  Status s = ApplyConfigText("listen: x\njob-timeout: -4\n", "pw.yaml", a.app, {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("pw.yaml:2: job-timeout:"), std::string::npos) << s.message();
}

TEST(ConfigFile, ListForASingleValuedFlagIsRefused) {
  App a;
  a.Parse({});
  Status s = ApplyConfigText("listen: [a, b]\n", "pw.yaml", a.app, {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("takes one value"), std::string::npos) << s.message();
}

TEST(ConfigFile, RepeatedAndEmptyKeysAndBadYamlAreRefused) {
  auto apply = [](const std::string& text) {
    App a;
    a.Parse({});
    return ApplyConfigText(text, "f", a.app, {});
  };
  EXPECT_NE(apply("listen: a\nlisten: b\n").message().find("f:2: listen: repeated key"),
            std::string::npos);
  EXPECT_NE(apply("listen:\n").message().find("f:1: listen: needs a value"), std::string::npos);
  EXPECT_NE(apply("listen: [\n").message().find("not valid YAML"), std::string::npos);
  EXPECT_NE(apply("- a\n").message().find("must be a map"), std::string::npos);
  EXPECT_TRUE(apply("").ok());
}

TEST(ConfigFile, SectionsGetTheirNodeAndShareANameWithAFlag) {
  App a;
  std::string file;
  a.app.add_option("--git-connections", file);
  a.Parse({});
  std::string seen;
  std::vector<ConfigSection> sections = {{"git-connections",
                                          [&seen](const YAML::Node& n) {
                                            seen = YamlToJsonText(n);
                                            return Status::Ok();
                                          }},
                                         {"build-projects", [](const YAML::Node&) {
                                            return InvalidArgument("project 'x': no image", "");
                                          }}};
  Status s = ApplyConfigText("git-connections:\n  connections:\n    - {arn: a, url: u}\n", "f",
                             a.app, sections);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(seen, R"({"connections":[{"arn":"a","url":"u"}]})");
  EXPECT_TRUE(file.empty());
  // A scalar goes to the flag of the same name.
  App b;
  b.app.add_option("--git-connections", file);
  b.Parse({});
  ASSERT_TRUE(ApplyConfigText("git-connections: /etc/git.json\n", "f", b.app, sections).ok());
  EXPECT_EQ(file, "/etc/git.json");
  // A section's own error is placed at its key.
  App c;
  c.Parse({});
  s = ApplyConfigText("listen: a\nbuild-projects:\n  x: {}\n", "f", c.app, sections);
  EXPECT_EQ(s.message(), "f:2: build-projects: project 'x': no image");
}

}  // namespace
}  // namespace pw::server::config_file_test

namespace pw::server::config_file_test {
namespace {

TEST(ParseRetentionTest, DefaultAndPerPipelinePolicies) {
  RetentionSettings r;
  ASSERT_TRUE(ParseRetention(YAML::Load("{default: {executions: 500, days: 90}, "
                                        "pipelines: {nightly: {executions: 50}, "
                                        "audit: {executions: 0, days: 0}}}"),
                             &r)
                  .ok());
  ASSERT_TRUE(r.default_policy.has_value());
  EXPECT_EQ(r.default_policy->max_executions, 500);
  EXPECT_EQ(r.default_policy->max_age_days, 90);
  EXPECT_EQ(r.pipelines.at("nightly").max_executions, 50);
  EXPECT_EQ(r.pipelines.at("nightly").max_age_days, 0);
  EXPECT_FALSE(r.pipelines.at("audit").enabled());
}

TEST(ParseRetentionTest, MistakesNameTheKeyToFix) {
  RetentionSettings r;
  for (const auto& [yaml, says] : std::vector<std::pair<std::string, std::string>>{
           {"{default: {executions: -1}}", "retention.default.executions"},
           {"{default: {executions: 1.5}}", "retention.default.executions"},
           {"{default: {days: soon}}", "retention.default.days"},
           {"{default: {count: 3}}", "unknown key 'count'"},
           {"{pipelines: {p: 3}}", "retention.pipelines.p"},
           {"{defaults: {}}", "unknown key 'defaults'"},
           {"[1]", "retention must be a map"}}) {
    Status s = ParseRetention(YAML::Load(yaml), &r);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << yaml;
    EXPECT_NE(s.message().find(says), std::string::npos) << yaml << ": " << s.message();
  }
}

}  // namespace
}  // namespace pw::server::config_file_test
