#include "auth/keys.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace pw::auth::keys_test {
namespace {

class KeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pw-keys-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(KeysTest, ReadsKeysWithAndWithoutPolicies) {
  Write("ro.json",
        R"({"Statement":{"Effect":"Allow","Action":"codepipeline:Get*","Resource":"*"}})");
  std::string path = Write("keys", "# admins\n\nADMIN:s3cret/+x\n  READER:r3ad:ro.json  \n");
  auto keys = KeyStore::Load(path);
  ASSERT_TRUE(keys.ok()) << keys.status().message();
  EXPECT_EQ(keys->size(), 2u);
  const KeyEntry* admin = keys->Find("ADMIN");
  ASSERT_NE(admin, nullptr);
  EXPECT_EQ(admin->secret_access_key, "s3cret/+x");
  EXPECT_FALSE(admin->policy.has_value());
  const KeyEntry* reader = keys->Find("READER");
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->secret_access_key, "r3ad");
  ASSERT_TRUE(reader->policy.has_value());
  EXPECT_EQ(reader->policy_path, dir_ + "/ro.json");
  EXPECT_EQ(reader->policy->Evaluate("codepipeline:GetPipeline", "*"), Decision::kAllow);
  EXPECT_EQ(reader->policy->Evaluate("codepipeline:DeletePipeline", "*"), Decision::kImplicitDeny);
  EXPECT_EQ(keys->Find("NOBODY"), nullptr);
}

TEST_F(KeysTest, AbsolutePolicyPath) {
  std::string policy =
      Write("p.json", R"({"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}})");
  auto keys = KeyStore::Parse("K:S:" + policy + "\n", "inline", "/nonexistent");
  ASSERT_TRUE(keys.ok()) << keys.status().message();
  EXPECT_TRUE(keys->Find("K")->policy.has_value());
}

TEST_F(KeysTest, ErrorsNameTheLineAndTheProblem) {
  Write("bad.json",
        R"({"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}})");
  struct Bad {
    std::string text;
    std::string says;
  };
  const Bad bads[] = {
      {"# c\nNOCOLON\n", "keys:2: expected ACCESS_KEY_ID:SECRET"},
      {"K:\n", "keys:1: the secret is empty"},
      {":S\n", "keys:1: the access key id"},
      {"K S:x\n", "keys:1: the access key id"},
      {"K:S:\n", "keys:1: the policy path is empty"},
      {"\nK:S:missing.json\n", "keys:2: cannot read the policy file"},
      {"K:S:bad.json\n", "Condition is not supported"},
      {"K:S\nL:T\nK:U\n", "keys:3: the access key id K appears more than once"},
  };
  for (const Bad& b : bads) {
    auto keys = KeyStore::Parse(b.text, "keys", dir_);
    ASSERT_FALSE(keys.ok()) << b.text;
    EXPECT_NE(keys.status().message().find(b.says), std::string::npos)
        << keys.status().message() << " should say " << b.says;
  }
  auto missing = KeyStore::Load(dir_ + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot read"), std::string::npos);
}

}  // namespace
}  // namespace pw::auth::keys_test
