#include "engine/source_revisions.h"

#include <gtest/gtest.h>

namespace pw::engine::source_revisions_test {
namespace {

core::PipelineDecl Pipeline() {
  core::PipelineDecl d;
  d.name = "p";
  core::StageDecl src;
  src.name = "Source";
  auto add = [&](const char* name, const char* owner, const char* provider) {
    core::ActionDecl a;
    a.name = name;
    a.type = {"Source", owner, provider, "1"};
    src.actions.push_back(a);
  };
  add("Git", "AWS", "Git");
  add("Conn", "AWS", "CodeStarSourceConnection");
  add("CC", "AWS", "CodeCommit");
  add("Obj", "AWS", "S3");
  src.actions.back().configuration["AllowOverrideForS3ObjectKey"] = "true";
  add("Locked", "AWS", "S3");  // AllowOverrideForS3ObjectKey absent: false.
  add("Image", "AWS", "ECR");
  add("Mine", "Custom", "Thing");
  d.stages.push_back(src);
  core::StageDecl build;
  build.name = "Build";
  core::ActionDecl b;
  b.name = "Compile";
  b.type = {"Build", "AWS", "Commands", "1"};
  build.actions.push_back(b);
  d.stages.push_back(build);
  return d;
}

const std::string kCommit = "0123456789abcdef0123456789ABCDEF01234567";

std::string Refused(const std::vector<core::SourceRevisionOverride>& revs) {
  Status s = CheckSourceRevisions(Pipeline(), revs);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.wire_name(), "ValidationException");
  return s.message();
}

TEST(SourceRevisions, AcceptsTheTypeOfEachProvider) {
  EXPECT_TRUE(CheckSourceRevisions(Pipeline(), {}).ok());
  EXPECT_TRUE(CheckSourceRevisions(Pipeline(), {{"Git", "COMMIT_ID", kCommit},
                                                {"Conn", "COMMIT_ID", kCommit},
                                                {"CC", "COMMIT_ID", kCommit},
                                                {"Obj", "S3_OBJECT_VERSION_ID", "v1"}})
                  .ok());
  EXPECT_TRUE(CheckSourceRevisions(Pipeline(), {{"Obj", "S3_OBJECT_KEY", "app.zip"}}).ok());
}

TEST(SourceRevisions, RefusesWithAMessageNamingTheProblem) {
  EXPECT_EQ(Refused({{"Compile", "COMMIT_ID", kCommit}}),
            "sourceRevisions: action 'Compile' is not a source action of pipeline p (its source "
            "actions: Git, Conn, CC, Obj, Locked, Image, Mine).");
  EXPECT_NE(Refused({{"Nope", "COMMIT_ID", kCommit}}).find("'Nope' is not a source action"),
            std::string::npos);
  EXPECT_EQ(Refused({{"Git", "COMMIT_ID", kCommit}, {"Git", "COMMIT_ID", kCommit}}),
            "sourceRevisions: action 'Git' is named more than once; give one revision per "
            "action.");
  EXPECT_EQ(Refused({{"CC", "S3_OBJECT_KEY", "k"}}),
            "sourceRevisions: action 'CC' is a Source/AWS/CodeCommit/1 source: its revisionType "
            "is COMMIT_ID, not S3_OBJECT_KEY.");
  EXPECT_NE(Refused({{"Conn", "COMMIT_ID", "abc123"}}).find("not a full commit id"),
            std::string::npos);
  EXPECT_NE(Refused({{"Obj", "COMMIT_ID", kCommit}}).find("S3_OBJECT_VERSION_ID or S3_OBJECT_KEY"),
            std::string::npos);
  EXPECT_EQ(Refused({{"Image", "IMAGE_DIGEST", "sha256:abc"}}),
            "sourceRevisions: action 'Image': sourceRevisions are not supported for "
            "Source/AWS/ECR/1 sources yet; start the execution without one for this action.");
  EXPECT_NE(
      Refused({{"Mine", "COMMIT_ID", kCommit}}).find("not supported for Source/Custom/Thing/1"),
      std::string::npos);
}

TEST(SourceRevisions, NormalizesCommitIdsToLowerCase) {
  auto out =
      NormalizeSourceRevisions({{"Git", "COMMIT_ID", kCommit}, {"Obj", "S3_OBJECT_KEY", "A"}});
  EXPECT_EQ(out[0].value, "0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(out[1].value, "A");
}

TEST(SourceRevisions, AnS3SourceTakesAKeyAndAVersionTogetherWhenItsKeyMayBeOverridden) {
  EXPECT_TRUE(CheckSourceRevisions(Pipeline(), {{"Obj", "S3_OBJECT_KEY", "other.zip"},
                                                {"Obj", "S3_OBJECT_VERSION_ID", "v1"}})
                  .ok());
  EXPECT_NE(Refused({{"Obj", "S3_OBJECT_VERSION_ID", "v1"}, {"Obj", "S3_OBJECT_VERSION_ID", "v2"}})
                .find("named more than once with S3_OBJECT_VERSION_ID"),
            std::string::npos);
  EXPECT_TRUE(CheckSourceRevisions(Pipeline(), {{"Locked", "S3_OBJECT_VERSION_ID", "v1"}}).ok());
  EXPECT_NE(Refused({{"Locked", "S3_OBJECT_KEY", "other.zip"}})
                .find("needs the action's configuration AllowOverrideForS3ObjectKey set to true"),
            std::string::npos);
}

}  // namespace
}  // namespace pw::engine::source_revisions_test
