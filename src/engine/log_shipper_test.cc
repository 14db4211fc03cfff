#include "engine/log_shipper.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "store/faulty_store.h"

namespace pw::engine::log_shipper_test {
namespace {

using store::FaultyStore;

namespace fs = std::filesystem;

class LogShipperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pw-shipper-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = store::OpenSqliteStore(dir_ + "/pipewright.db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    real_ = std::move(*s);
    store_ = std::make_unique<FaultyStore>(*real_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string PathOf(const std::string& id) const { return dir_ + "/" + id + ".log"; }
  std::unique_ptr<LogShipper> Make(LogShipperOptions o = {}) {
    return std::make_unique<LogShipper>(
        *store_, [this](const std::string& id) { return PathOf(id); }, o);
  }
  void Append(const std::string& id, const std::string& text) {
    std::ofstream(PathOf(id), std::ios::app | std::ios::binary) << text;
  }
  // The stored log, or "<none>".
  std::string Stored(const std::string& id) {
    auto got = real_->ReadActionLog(id, 0, 1 << 20);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() && got->has_value() ? **got : "<none>";
  }

  std::string dir_;
  std::unique_ptr<store::Store> real_;
  std::unique_ptr<FaultyStore> store_;
};

TEST_F(LogShipperTest, RoundsShipWhatWasAppendedAndFinishShipsTheRest) {
  auto shipper = Make();
  shipper->Follow("a1", "p", "e1");
  ASSERT_TRUE(shipper->ShipRound().ok());  // No file yet: nothing, no error.
  EXPECT_EQ(Stored("a1"), "<none>");
  Append("a1", "step 1\n");
  ASSERT_TRUE(shipper->ShipRound().ok());
  EXPECT_EQ(Stored("a1"), "step 1\n");
  ASSERT_TRUE(shipper->ShipRound().ok());  // Nothing new: no row written.
  EXPECT_EQ(store_->log_appends, 1);
  Append("a1", std::string("step 2 \0\xff\n", 10));
  ASSERT_TRUE(shipper->Finish("a1").ok());
  EXPECT_EQ(Stored("a1"), std::string("step 1\nstep 2 \0\xff\n", 17));
  EXPECT_EQ(shipper->FollowedForTest(), 0u);
  Append("a1", "after the end\n");  // No longer followed.
  ASSERT_TRUE(shipper->ShipRound().ok());
  EXPECT_EQ(Stored("a1").size(), 17u);
}

TEST_F(LogShipperTest, LongLogsAreStoredInChunksOfTheConfiguredSize) {
  LogShipperOptions o;
  o.max_chunk_bytes = 4;
  auto shipper = Make(o);
  shipper->Follow("a1", "p", "e1");
  Append("a1", "0123456789");
  ASSERT_TRUE(shipper->Finish("a1").ok());
  EXPECT_EQ(store_->log_appends, 3);
  EXPECT_EQ(Stored("a1"), "0123456789");
  EXPECT_EQ(**real_->ReadActionLog("a1", 5, 100), "56789");
}

TEST_F(LogShipperTest, AFailedFinishIsRetriedByLaterRoundsUntilStored) {
  auto shipper = Make();
  shipper->Follow("a1", "p", "e1");
  Append("a1", "early\n");
  ASSERT_TRUE(shipper->ShipRound().ok());
  store_->fail_log_appends = true;
  Append("a1", "late\n");
  Status s = shipper->Finish("a1");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(shipper->FollowedForTest(), 1u);
  EXPECT_FALSE(shipper->ShipRound().ok());
  store_->fail_log_appends = false;
  ASSERT_TRUE(shipper->ShipRound().ok());
  EXPECT_EQ(Stored("a1"), "early\nlate\n");
  EXPECT_EQ(shipper->FollowedForTest(), 0u);  // Finished and all stored: dropped.
}

TEST_F(LogShipperTest, FinishOfALogNeverFollowedOrNeverWrittenIsOk) {
  auto shipper = Make();
  EXPECT_TRUE(shipper->Finish("unknown").ok());
  shipper->Follow("quiet", "p", "e1");
  EXPECT_TRUE(shipper->Finish("quiet").ok());
  EXPECT_EQ(Stored("quiet"), "<none>");
  EXPECT_EQ(store_->log_appends, 0);
}

TEST_F(LogShipperTest, TheBackgroundThreadShipsRunningLogs) {
  LogShipperOptions o;
  o.interval_seconds = 0.05;
  auto shipper = Make(o);
  shipper->Start();
  shipper->Follow("a1", "p", "e1");
  Append("a1", "running\n");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Stored("a1") != "running\n" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(Stored("a1"), "running\n");
  shipper.reset();  // Stops and joins the thread.
}

}  // namespace
}  // namespace pw::engine::log_shipper_test
