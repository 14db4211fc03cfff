#include "runner/sandbox.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

namespace pw::runner::sandbox_test {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

using Argv = std::vector<std::string>;

SandboxPaths Paths(std::string cwd, Argv writable = {}, Argv read_only = {}) {
  SandboxPaths paths;
  paths.cwd = std::move(cwd);
  paths.writable = std::move(writable);
  paths.read_only = std::move(read_only);
  return paths;
}

// Index of the first occurrence of `what` at or after `from`, or -1.
long Find(const Argv& argv, const Argv& what, size_t from = 0) {
  for (size_t i = from; i + what.size() <= argv.size(); ++i) {
    if (std::equal(what.begin(), what.end(), argv.begin() + static_cast<long>(i))) {
      return static_cast<long>(i);
    }
  }
  return -1;
}

TEST(SandboxWrap, NoneWithoutUserIsTheArgvItself) {
  Sandbox sandbox(SandboxOptions{});
  EXPECT_FALSE(sandbox.active());
  EXPECT_THAT(sandbox.Wrap({"/bin/sh", "-c", "x"}, Paths("/w", {"/w"})),
              ElementsAre("/bin/sh", "-c", "x"));
}

TEST(SandboxWrap, BwrapSeesSystemReadOnlyWithPrivateTmpDevProcAndNoCapabilities) {
  SandboxOptions options;
  options.mode = SandboxMode::kBwrap;
  Argv argv = Sandbox(options).Wrap({"/bin/sh", "-e", "-c", "make"}, Paths("/d/work/1"));
  ASSERT_FALSE(argv.empty());
  EXPECT_EQ(argv[0], "/usr/bin/bwrap");
  EXPECT_EQ(Find(argv, {"--ro-bind", "/", "/"}), 1);  // First: later mounts go on top.
  EXPECT_GE(Find(argv, {"--dev", "/dev"}), 0);
  EXPECT_GE(Find(argv, {"--proc", "/proc"}), 0);
  EXPECT_GE(Find(argv, {"--tmpfs", "/tmp"}), 0);
  EXPECT_GE(Find(argv, {"--unshare-pid"}), 0);
  EXPECT_GE(Find(argv, {"--cap-drop", "ALL"}), 0);
  EXPECT_GE(Find(argv, {"--chdir", "/d/work/1"}), 0);
  // Network stays (no --unshare-net/--unshare-all); no flag that would take
  // the action out of the launcher's process group or tie it to a thread.
  EXPECT_LT(Find(argv, {"--unshare-net"}), 0);
  EXPECT_LT(Find(argv, {"--unshare-all"}), 0);
  EXPECT_LT(Find(argv, {"--new-session"}), 0);
  EXPECT_LT(Find(argv, {"--die-with-parent"}), 0);
  // The command follows "--" untouched, so an argument starting with "--" is never an option.
  long dashes = Find(argv, {"--", "/bin/sh", "-e", "-c", "make"});
  EXPECT_EQ(dashes, static_cast<long>(argv.size()) - 5);
}

TEST(SandboxWrap, HiddenPathsComeParentsFirstAndOwnPathsAreBoundBackAfterThem) {
  SandboxOptions options;
  options.mode = SandboxMode::kBwrap;
  options.hide_dirs = {"/srv/pw/data", "/srv/pw"};
  options.hide_files = {"/etc/pw/keys"};
  Argv argv = Sandbox(options).Wrap(
      {"/bin/true"}, Paths("/srv/pw/data/work/7", {"/srv/pw/data/work/7", "/srv/pw/data/work/7.in"},
                           {"/opt/tools"}));
  long tmp = Find(argv, {"--tmpfs", "/tmp"});
  long parent = Find(argv, {"--tmpfs", "/srv/pw"});
  long data = Find(argv, {"--tmpfs", "/srv/pw/data"});
  long keys = Find(argv, {"--ro-bind", "/dev/null", "/etc/pw/keys"});
  long work = Find(argv, {"--bind", "/srv/pw/data/work/7", "/srv/pw/data/work/7"});
  long inputs = Find(argv, {"--bind", "/srv/pw/data/work/7.in", "/srv/pw/data/work/7.in"});
  long tools = Find(argv, {"--ro-bind", "/opt/tools", "/opt/tools"});
  long root = Find(argv, {"--ro-bind", "/", "/"});
  ASSERT_GE(tmp, 0);
  EXPECT_LT(root, tmp);
  EXPECT_LT(tmp, parent);
  EXPECT_LT(parent, data);
  EXPECT_LT(data, keys);
  EXPECT_LT(keys, work);
  EXPECT_LT(work, inputs);
  EXPECT_LT(inputs, tools);
  EXPECT_LT(tools, Find(argv, {"--", "/bin/true"}));
}

TEST(SandboxWrap, RootIsNeverHiddenAsADirectory) {
  SandboxOptions options;
  options.mode = SandboxMode::kBwrap;
  options.hide_dirs = {"/"};
  Argv argv = Sandbox(options).Wrap({"/bin/true"}, Paths(""));
  long tmpfs_root = -1;
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == "--tmpfs" && argv[i + 1] == "/") tmpfs_root = static_cast<long>(i);
  }
  EXPECT_EQ(tmpfs_root, -1);
}

TEST(SandboxWrap, ActionUserDropsPrivilegesBeforeBwrap) {
  SandboxOptions options;
  options.mode = SandboxMode::kBwrap;
  options.user = ActionUser{"builder", 1234, 5678};
  Argv argv = Sandbox(options).Wrap({"/bin/true"}, Paths(""));
  EXPECT_THAT(Argv(argv.begin(), argv.begin() + 6),
              ElementsAre("/usr/bin/setpriv", "--reuid=1234", "--regid=5678", "--init-groups", "--",
                          "/usr/bin/bwrap"));
}

TEST(SandboxWrap, ActionUserWithoutSandboxIsSetprivAlone) {
  SandboxOptions options;
  options.user = ActionUser{"builder", 1234, 5678};
  Sandbox sandbox(options);
  EXPECT_TRUE(sandbox.active());
  EXPECT_THAT(sandbox.Wrap({"/bin/sh", "-c", "x"}, Paths("/w")),
              ElementsAreArray(Argv{"/usr/bin/setpriv", "--reuid=1234", "--regid=5678",
                                    "--init-groups", "--", "/bin/sh", "-c", "x"}));
}

TEST(LookUpActionUser, FindsUsersByNameAndNumberAndRejectsUnknownOnes) {
  Result<ActionUser> nobody = LookUpActionUser("nobody");
  ASSERT_TRUE(nobody.ok()) << nobody.status().ToString();
  EXPECT_EQ(nobody->name, "nobody");
  EXPECT_NE(nobody->uid, 0u);
  Result<ActionUser> root = LookUpActionUser("0");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->name, "root");
  Result<ActionUser> missing = LookUpActionUser("no-such-user-pw");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("no-such-user-pw"), std::string::npos);
}

TEST(ProbeSandbox, NoneStartsNothingAndUnknownValuesAreRejected) {
  SandboxOptions options;
  options.bwrap_path = "/nonexistent/bwrap";
  EXPECT_EQ(*ProbeSandbox("none", options), SandboxMode::kNone);
  Result<SandboxMode> bad = ProbeSandbox("yes", options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST(ProbeSandbox, MissingBwrapMeansNoneForAutoAndAnErrorForBwrap) {
  SandboxOptions options;
  options.bwrap_path = "/nonexistent/bwrap";
  Result<SandboxMode> automatic = ProbeSandbox("auto", options);
  ASSERT_TRUE(automatic.ok());
  EXPECT_EQ(*automatic, SandboxMode::kNone);
  Result<SandboxMode> required = ProbeSandbox("bwrap", options);
  ASSERT_FALSE(required.ok());
  EXPECT_EQ(required.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(required.status().message().find("/nonexistent/bwrap"), std::string::npos)
      << required.status().message();
}

TEST(ProbeSandbox, InstalledBwrapIsUsedByAuto) {
  SandboxOptions options;
  if (access(options.bwrap_path.c_str(), X_OK) != 0) GTEST_SKIP() << "no " << options.bwrap_path;
  Result<SandboxMode> automatic = ProbeSandbox("auto", options);
  ASSERT_TRUE(automatic.ok());
  Result<SandboxMode> required = ProbeSandbox("bwrap", options);
  if (!required.ok()) GTEST_SKIP() << "bwrap cannot run here: " << required.status().message();
  EXPECT_EQ(*automatic, SandboxMode::kBwrap);
  EXPECT_EQ(*required, SandboxMode::kBwrap);
}

}  // namespace
}  // namespace pw::runner::sandbox_test
