#include "common/log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace pw {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override { SetLogSinkForTest(&lines_); }
  void TearDown() override {
    SetLogSinkForTest(nullptr);
    SetLogFormat(LogFormat::kText);
    SetLogLevel(LogLevel::kInfo);
  }
  std::vector<std::string> lines_;
};

TEST_F(LogTest, JsonLinesParseWithTheirFieldsWhateverTheMessageHolds) {
  SetLogFormat(LogFormat::kJson);
  PW_LOG(Warning).Field("operation", "GetPipeline").Field("duration_ms", 12).Field("empty", "")
      << "quote \" backslash \\ newline \n tab \t nul " << std::string(1, '\0') << " bad \xff"
      << " ok é";
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].find('\n'), std::string::npos);
  auto j = nlohmann::json::parse(lines_[0]);
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["operation"], "GetPipeline");
  EXPECT_EQ(j["duration_ms"], 12);
  EXPECT_FALSE(j.contains("empty"));
  EXPECT_EQ(j["msg"].get<std::string>(),
            std::string("quote \" backslash \\ newline \n tab \t nul ") + std::string(1, '\0') +
                " bad \xef\xbf\xbd ok é");
  EXPECT_TRUE(j["time"].get<std::string>().ends_with("Z"));
}

TEST_F(LogTest, LogfmtQuotesOnlyWhatNeedsIt) {
  SetLogFormat(LogFormat::kLogfmt);
  PW_LOG(Info).Field("pipeline", "my pipe").Field("execution_id", "e-1") << "started";
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_NE(lines_[0].find(" level=info msg=started pipeline=\"my pipe\" execution_id=e-1"),
            std::string::npos)
      << lines_[0];
  EXPECT_EQ(lines_[0].rfind("time=", 0), 0u);
}

TEST_F(LogTest, TextKeepsTheOldShapeAndLevelsFilter) {
  PW_LOG(Info) << "hello";
  PW_LOG(Debug) << "hidden";
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_TRUE(lines_[0].ends_with(" INFO hello")) << lines_[0];
  LogLevel level{};
  ASSERT_TRUE(ParseLogLevel("debug", &level));
  SetLogLevel(level);
  PW_LOG(Debug) << "shown";
  EXPECT_EQ(lines_.size(), 2u);
  LogFormat f{};
  EXPECT_FALSE(ParseLogFormat("yaml", &f));
  EXPECT_TRUE(ParseLogFormat("logfmt", &f));
  EXPECT_EQ(f, LogFormat::kLogfmt);
}

}  // namespace
}  // namespace pw
