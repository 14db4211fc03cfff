#include "server/multi_server.h"

#include <gtest/gtest.h>

namespace pw::server::multi_server_test {
namespace {

TEST(MultiServer, ASingleServerNeedsNothing) {
  EXPECT_TRUE(CheckMultiServer("", false, "").ok());
  EXPECT_TRUE(CheckMultiServer("", true, "").ok());
}

TEST(MultiServer, AServerIdWithTheSqliteStoreIsRefusedNamingDatabase) {
  Status s = CheckMultiServer("s1", false, "http://s3:9000");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--database postgresql://"), std::string::npos) << s.message();
}

TEST(MultiServer, ALocalArtifactStoreIsRefusedNamingArtifactEndpoint) {
  Status s = CheckMultiServer("s1", true, "");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--artifact-endpoint"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--artifact-bucket"), std::string::npos) << s.message();
  EXPECT_TRUE(CheckMultiServer("s1", true, "http://s3:9000").ok());
}

TEST(MultiServer, ServerIdsAreShortPlainNames) {
  EXPECT_TRUE(CheckServerId("pipewright-2.eu_west").ok());
  for (const char* bad : {"s 1", "s/1", "ü", "$(id)"}) {
    EXPECT_EQ(CheckMultiServer(bad, true, "http://s3").code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(CheckServerId(std::string(65, 'a')).ok());
}

}  // namespace
}  // namespace pw::server::multi_server_test
