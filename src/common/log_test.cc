#include "common/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

namespace pw::log_test {
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

// Buffered lines reach stderr in batches: nothing per info line, everything
// (in order) before a warning, and on FlushLog. The interval is long enough
// that the flusher thread never writes during the test.
TEST(LogBufferingTest, InfoLinesWaitWarningsFlushInOrder) {
  char path[] = "/tmp/pw-log-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::fflush(stderr);
  int saved = dup(2);
  ASSERT_GE(saved, 0);
  ASSERT_GE(dup2(fd, 2), 0);
  auto contents = [&] {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  SetLogBuffering(std::chrono::seconds(30));
  PW_LOG(Info) << "first info";
  PW_LOG(Debug) << "filtered out";
  const std::string before = contents();
  PW_LOG(Warning) << "a warning";
  const std::string after = contents();
  PW_LOG(Info) << "second info";
  const std::string waiting = contents();
  FlushLog();
  const std::string flushed = contents();
  dup2(saved, 2);
  close(saved);
  close(fd);
  unlink(path);
  EXPECT_EQ(before, "");
  const size_t first = after.find("first info"), warning = after.find("a warning");
  ASSERT_NE(first, std::string::npos) << after;
  ASSERT_NE(warning, std::string::npos) << after;
  EXPECT_LT(first, warning);
  EXPECT_EQ(waiting, after);
  EXPECT_NE(flushed.find("second info"), std::string::npos) << flushed;
  EXPECT_EQ(flushed.find("filtered out"), std::string::npos);
}

}  // namespace
}  // namespace pw::log_test
