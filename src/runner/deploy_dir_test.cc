#include "runner/deploy_dir.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_files.h"
#include "runner/artifact_store.h"
#include "runner/temp_dir.h"

namespace pw::runner::deploy_dir_test {
namespace {

using test_files::ReadFile;
using test_files::WriteFile;

namespace fs = std::filesystem;

std::vector<std::string> ListDir(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class DeployDirTest : public ::testing::Test {
 protected:
  std::string Put(const std::vector<std::pair<std::string, std::string>>& files) {
    ScopedTempDir src = *ScopedTempDir::Create("deploy-src");
    for (const auto& [name, content] : files) WriteFile(fs::path(src.path()) / name, content);
    Result<std::string> revision = store_.PutDirectory(src.path());
    EXPECT_TRUE(revision.ok()) << revision.status().ToString();
    return revision.ok() ? *revision : "";
  }

  ScopedTempDir tmp_ = *ScopedTempDir::Create("deploy-test");
  ArtifactStore store_{tmp_.path() + "/store"};
  fs::path site_ = fs::path(tmp_.path()) / "www" / "site";
};

TEST_F(DeployDirTest, CreatesMissingTarget) {
  std::string revision = Put({{"index.html", "v1"}});
  Status status = ReplaceDirectoryContents(site_.string(), store_, revision);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(ReadFile(site_ / "index.html"), "v1");
  EXPECT_EQ(ListDir(site_.parent_path()), std::vector<std::string>{"site"});
}

TEST_F(DeployDirTest, ReplacesExistingContentsEntirely) {
  WriteFile(site_ / "stale.html", "old");
  WriteFile(site_ / "sub/old.css", "old");
  std::string revision = Put({{"index.html", "v2"}, {"css/site.css", "body{}"}});
  Status status = ReplaceDirectoryContents(site_.string() + "/", store_, revision);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(ListDir(site_), (std::vector<std::string>{"css", "index.html"}));
  EXPECT_EQ(ReadFile(site_ / "css/site.css"), "body{}");
  EXPECT_EQ(ListDir(site_.parent_path()), std::vector<std::string>{"site"});  // No leftovers.
}

TEST_F(DeployDirTest, FailureLeavesTargetUntouched) {
  WriteFile(site_ / "index.html", "current");
  Status status = ReplaceDirectoryContents(site_.string(), store_, std::string(64, 'f'));
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadFile(site_ / "index.html"), "current");
  EXPECT_EQ(ListDir(site_.parent_path()), std::vector<std::string>{"site"});
}

TEST_F(DeployDirTest, TargetThatIsAFileIsAPreconditionFailure) {
  WriteFile(site_, "a file");
  std::string revision = Put({{"index.html", "v1"}});
  EXPECT_EQ(ReplaceDirectoryContents(site_.string(), store_, revision).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadFile(site_), "a file");
}

class PathPolicyTest : public ::testing::Test {
 protected:
  PathPolicyTest() {
    fs::create_directories(root_ + "/apps");
    fs::create_directories(data_);
    fs::create_directories(tmp_.path() + "/elsewhere");
    fs::create_directory_symlink(data_, root_ + "/link-to-data");
    fs::create_directory_symlink(tmp_.path() + "/elsewhere", root_ + "/link-out");
    policy_.deploy_roots = {root_};
    policy_.data_dir = data_;
  }
  bool Deployable(const std::string& path) { return CheckDeployTarget(path, policy_).ok(); }

  ScopedTempDir tmp_ = *ScopedTempDir::Create("path-policy");
  std::string root_ = tmp_.path() + "/srv";
  std::string data_ = tmp_.path() + "/srv/apps/state";  // Inside the root, on purpose.
  PathPolicy policy_;
};

TEST_F(PathPolicyTest, DeployTargetMustLieStrictlyBelowARootAndAwayFromTheDataDir) {
  EXPECT_TRUE(Deployable(root_ + "/apps/site"));
  EXPECT_TRUE(Deployable(root_ + "/new/deeper/site"));  // Parents need not exist.
  EXPECT_FALSE(Deployable(root_));                      // The root itself.
  EXPECT_FALSE(Deployable("relative/site"));
  EXPECT_FALSE(Deployable(tmp_.path() + "/elsewhere/site"));
  EXPECT_FALSE(Deployable(root_ + "/apps/../../elsewhere"));  // ".." normalised.
  EXPECT_FALSE(Deployable(root_ + "/link-out/site"));         // Symlinked parent resolved.
  EXPECT_FALSE(Deployable(data_));
  EXPECT_FALSE(Deployable(data_ + "/"));
  EXPECT_FALSE(Deployable(data_ + "/artifacts"));
  EXPECT_FALSE(Deployable(root_ + "/link-to-data"));
  EXPECT_FALSE(Deployable(root_ + "/apps"));  // Contains the data directory.
  Status data = CheckDeployTarget(data_, policy_);
  EXPECT_NE(data.message().find("data directory"), std::string::npos) << data.message();
  Status outside = CheckDeployTarget(tmp_.path() + "/elsewhere/site", policy_);
  EXPECT_NE(outside.message().find("--deploy-root"), std::string::npos) << outside.message();
}

TEST_F(PathPolicyTest, WithoutRootsDeploysAreRefusedNamingTheFlag) {
  policy_.deploy_roots.clear();
  Status s = CheckDeployTarget(root_ + "/apps/site", policy_);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--deploy-root"), std::string::npos) << s.message();
}

TEST_F(PathPolicyTest, ReadablePathIsAbsoluteAndAwayFromTheDataDir) {
  EXPECT_TRUE(CheckReadablePath(tmp_.path() + "/elsewhere", policy_).ok());
  EXPECT_FALSE(CheckReadablePath("elsewhere", policy_).ok());
  EXPECT_FALSE(CheckReadablePath(data_, policy_).ok());
  EXPECT_FALSE(CheckReadablePath(data_ + "/../state/.", policy_).ok());
  EXPECT_FALSE(CheckReadablePath(root_ + "/link-to-data", policy_).ok());
  EXPECT_FALSE(CheckReadablePath(tmp_.path(), policy_).ok());  // Would copy pipewright.db.
}

// The attack this stops: a Source/Directory action snapshots the folder of
// serve --auth-keys-file and any reader of the pipeline fetches the secrets.
TEST_F(PathPolicyTest, ReadsAndDeploysKeepAwayFromTheServersSecretFiles) {
  const std::string etc = tmp_.path() + "/elsewhere/etc";
  fs::create_directories(etc + "/sub");
  std::ofstream(etc + "/keys") << "AKID:secret\n";
  fs::create_directory_symlink(etc, root_ + "/link-to-etc");
  policy_.protected_paths = {etc + "/keys", tmp_.path() + "/elsewhere/not-yet-made.pem"};
  EXPECT_TRUE(CheckReadablePath(etc + "/sub", policy_).ok());
  for (const std::string& p : {etc, etc + "/", etc + "/keys", etc + "/sub/..",
                               root_ + "/link-to-etc", tmp_.path() + "/elsewhere"}) {
    Status s = CheckReadablePath(p, policy_);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << p;
    EXPECT_NE(s.message().find(etc + "/keys"), std::string::npos) << s.message();
  }
  // A protected file that does not exist yet is kept all the same.
  EXPECT_FALSE(CheckReadablePath(tmp_.path() + "/elsewhere/not-yet-made.pem", policy_).ok());
  // Deploys may not replace them either.
  policy_.deploy_roots.push_back(tmp_.path() + "/elsewhere");
  EXPECT_TRUE(Deployable(etc + "/sub"));
  EXPECT_FALSE(Deployable(etc));
  EXPECT_FALSE(Deployable(etc + "/keys"));
  EXPECT_NE(CheckDeployTarget(etc, policy_).message().find("keeps from actions"),
            std::string::npos);
}

TEST_F(PathPolicyTest, PseudoFileSystemsAreNotRead) {
  for (const char* p :
       {"/proc", "/proc/self", "/proc/self/fd", "/sys/kernel", "/dev", "/dev/shm"}) {
    Status s = CheckReadablePath(p, policy_);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << p;
    EXPECT_NE(s.message().find("pseudo file system"), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace pw::runner::deploy_dir_test
