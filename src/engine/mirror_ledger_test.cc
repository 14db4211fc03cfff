#include "engine/mirror_ledger.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "runner/artifact_store.h"
#include "runner/commands.h"
#include "runner/temp_dir.h"
#include "store/store.h"

// Retention's removal of shared-bucket copies with several servers: two
// ArtifactStores (servers A and B, each its own disk) over one bucket and one
// real SQLite database holding the ledger. The bucket is the only stand-in.

namespace pw::engine::mirror_ledger_test {
namespace {

namespace fs = std::filesystem;
using Removal = runner::ArtifactStore::Removal;

void WriteFile(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

// Time that moves only when a test says so. Thread-safe.
class TestClock final : public Clock {
 public:
  EpochSeconds Now() const override { return now_.load(); }
  void Advance(double seconds) { now_.store(now_.load() + seconds); }

 private:
  std::atomic<double> now_{static_cast<double>(time(nullptr))};
};

// The shared bucket, in memory; LastModified is the test clock's time of the
// upload. Thread-safe.
class Bucket final : public runner::ArtifactMirror {
 public:
  explicit Bucket(const Clock& clock) : clock_(clock) {}
  std::string Where() const override { return "s3://shared/artifacts/"; }
  Result<bool> Contains(const std::string& revision) override {
    MutexLock lock(mu_);
    return objects_.count(revision) > 0;
  }
  Status Upload(const std::string& revision, const std::string& zip_path) override {
    const std::string bytes = runner::ReadFile(zip_path);
    MutexLock lock(mu_);
    ++uploads_;
    objects_[revision] = {bytes, clock_.Now()};
    return Status::Ok();
  }
  Status Download(const std::string& revision, const std::string& dest_path) override {
    std::string bytes;
    {
      MutexLock lock(mu_);
      auto it = objects_.find(revision);
      if (it == objects_.end()) return NotFound("no such key", "NoSuchKey");
      bytes = it->second.first;
    }
    WriteFile(dest_path, bytes);
    return Status::Ok();
  }
  Result<std::optional<EpochSeconds>> Modified(const std::string& revision) override {
    MutexLock lock(mu_);
    auto it = objects_.find(revision);
    if (it == objects_.end()) return std::optional<EpochSeconds>();
    return std::optional<EpochSeconds>(it->second.second);
  }
  Status Remove(const std::string& revision) override {
    if (before_remove) before_remove();
    MutexLock lock(mu_);
    ++removals_;
    objects_.erase(revision);
    return Status::Ok();
  }

  bool Has(const std::string& revision) {
    MutexLock lock(mu_);
    return objects_.count(revision) > 0;
  }
  int uploads() {
    MutexLock lock(mu_);
    return uploads_;
  }
  int removals() {
    MutexLock lock(mu_);
    return removals_;
  }
  std::function<void()> before_remove;  // Set before use; runs once the ledger is marked.

 private:
  const Clock& clock_;
  Mutex mu_;
  std::map<std::string, std::pair<std::string, EpochSeconds>> objects_ GUARDED_BY(mu_);
  int uploads_ GUARDED_BY(mu_) = 0;
  int removals_ GUARDED_BY(mu_) = 0;
};

constexpr double kGrace = 3600;

class MirrorLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = runner::ScopedTempDir::Create("mirror-ledger-test");
    ASSERT_TRUE(tmp.ok());
    tmp_ = std::make_unique<runner::ScopedTempDir>(*std::move(tmp));
    auto db = store::OpenSqliteStore(tmp_->path() + "/pipewright.db");
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    bucket_ = std::make_shared<Bucket>(clock_);
    ledger_a_ = std::make_shared<StoreMirrorLedger>(*db_, clock_, "a", kGrace);
    ledger_b_ = std::make_shared<StoreMirrorLedger>(*db_, clock_, "b", kGrace,
                                                    /*claim_wait_seconds=*/30);
    a_ = std::make_unique<runner::ArtifactStore>(tmp_->path() + "/a", runner::ArtifactLimits{},
                                                 bucket_, ledger_a_);
    b_ = std::make_unique<runner::ArtifactStore>(tmp_->path() + "/b", runner::ArtifactLimits{},
                                                 bucket_, ledger_b_);
    src_ = tmp_->path() + "/src";
    WriteFile(src_ + "/app.txt", "hello");
  }

  std::string Row(const std::string& revision) {
    auto v = db_->GetKv(StoreMirrorLedger::Key(revision));
    EXPECT_TRUE(v.ok());
    return v.ok() && *v ? **v : "<none>";
  }

  TestClock clock_;
  std::unique_ptr<runner::ScopedTempDir> tmp_;
  std::unique_ptr<store::Store> db_;
  std::shared_ptr<Bucket> bucket_;
  std::shared_ptr<StoreMirrorLedger> ledger_a_, ledger_b_;
  std::unique_ptr<runner::ArtifactStore> a_, b_;
  std::string src_;
};

TEST_F(MirrorLedgerTest, SweepRemovesTheCopyOnlyOnceNoPutReliedOnItForTheGracePeriod) {
  Result<std::string> rev = a_->PutDirectory(src_);
  ASSERT_TRUE(rev.ok()) << rev.status().ToString();
  EXPECT_TRUE(bucket_->Has(*rev));
  EXPECT_NE(Row(*rev).find("\"claimed\""), std::string::npos) << Row(*rev);

  clock_.Advance(kGrace - 10);
  EXPECT_EQ(a_->RemoveMirrorCopyIfOlderThan(*rev, kGrace), Removal::kYoung);
  EXPECT_TRUE(bucket_->Has(*rev));

  clock_.Advance(20);
  EXPECT_EQ(a_->RemoveMirrorCopyIfOlderThan(*rev, kGrace), Removal::kRemoved);
  EXPECT_FALSE(bucket_->Has(*rev));
  EXPECT_EQ(Row(*rev), "<none>");  // The mark is cleared with the copy.
  EXPECT_EQ(a_->RemoveMirrorCopyIfOlderThan(*rev, kGrace), Removal::kAbsent);

  // The local copy is still here (retention removes it separately), but the
  // memo that it is in the bucket is gone: a Put of it uploads it again.
  ASSERT_TRUE(a_->PutDirectory(src_).ok());
  EXPECT_TRUE(bucket_->Has(*rev));
  EXPECT_EQ(bucket_->uploads(), 2);
}

TEST_F(MirrorLedgerTest, APutReusingACopyClaimsItAgainOnceHalfTheGraceHasPassed) {
  Result<std::string> rev = a_->PutDirectory(src_);
  ASSERT_TRUE(rev.ok());
  // B, which fetched it, makes the same content: already in the bucket, so
  // B only claims it.
  clock_.Advance(100);
  ASSERT_TRUE(b_->Fetch(*rev).ok());
  ASSERT_TRUE(b_->PutDirectory(src_).ok());
  EXPECT_EQ(bucket_->uploads(), 1);
  const std::string claimed_by_b = Row(*rev);

  // Within half the grace period B relies on its own claim: no database write.
  clock_.Advance(kGrace / 2 - 200);
  ASSERT_TRUE(b_->PutDirectory(src_).ok());
  EXPECT_EQ(Row(*rev), claimed_by_b);

  // Later it claims again, so a sweep a little after A's claim expired keeps
  // the copy B just relied on.
  clock_.Advance(kGrace / 2);
  ASSERT_TRUE(b_->PutDirectory(src_).ok());
  EXPECT_NE(Row(*rev), claimed_by_b);
  clock_.Advance(200);
  EXPECT_EQ(a_->RemoveMirrorCopyIfOlderThan(*rev, kGrace), Removal::kYoung);
  EXPECT_TRUE(bucket_->Has(*rev));
  EXPECT_EQ(bucket_->uploads(), 1);
}

TEST_F(MirrorLedgerTest, APutDuringARemovalWaitsForItAndUploadsTheCopyAgain) {
  Result<std::string> rev = a_->PutDirectory(src_);
  ASSERT_TRUE(rev.ok());
  clock_.Advance(kGrace + 1);
  // B holds the artifact on its disk (fetched earlier) and makes it again
  // while A's sweep removes the bucket's copy.
  ASSERT_TRUE(b_->Fetch(*rev).ok());
  std::atomic<bool> put_done{false};
  Status put_status;
  std::thread put;
  bucket_->before_remove = [&] {
    EXPECT_NE(Row(*rev).find("\"removing\""), std::string::npos) << Row(*rev);
    put = std::thread([&] {
      Result<std::string> again = b_->PutDirectory(src_);
      put_status = again.ok() ? Status::Ok() : again.status();
      put_done = true;
    });
    // B's claim must wait for the mark: give it time to get it wrong.
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    while (std::chrono::steady_clock::now() < until) {
      if (put_done.load()) {
        ADD_FAILURE() << "a claim went ahead during a removal";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  EXPECT_EQ(a_->RemoveMirrorCopyIfOlderThan(*rev, kGrace), Removal::kRemoved);
  put.join();
  EXPECT_TRUE(put_status.ok()) << put_status.ToString();
  // The Put returned the revision, so the bucket has it: uploaded again.
  EXPECT_TRUE(bucket_->Has(*rev));
  EXPECT_EQ(bucket_->uploads(), 2);
  EXPECT_NE(Row(*rev).find("\"claimed\""), std::string::npos) << Row(*rev);
}

TEST_F(MirrorLedgerTest, AFreshRemovalMarkFailsAClaimAfterItsWaitNamingTheServer) {
  StoreMirrorLedger impatient(*db_, clock_, "b", kGrace, /*claim_wait_seconds=*/0.2);
  const std::string rev(64, 'c');
  ASSERT_TRUE(db_->PutKv(StoreMirrorLedger::Key(rev),
                         nlohmann::json{{"removing", clock_.Now()}, {"by", "c"}}.dump())
                  .ok());
  Status st = impatient.Claim(rev);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("server c"), std::string::npos) << st.message();

  // A mark its remover left behind (a crash) goes stale and no longer blocks.
  clock_.Advance(runner::MirrorLedger::kStaleRemovalSeconds + 1);
  EXPECT_TRUE(impatient.Claim(rev).ok());
  EXPECT_NE(Row(rev).find("\"claimed\""), std::string::npos) << Row(rev);
  // And a sweep does not mark a revision another server is removing.
  ASSERT_TRUE(db_->PutKv(StoreMirrorLedger::Key(rev),
                         nlohmann::json{{"removing", clock_.Now()}, {"by", "c"}}.dump())
                  .ok());
  Result<std::string> token = ledger_a_->BeginRemoval(rev, 0);
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(*token, "");
}

TEST_F(MirrorLedgerTest, ACopyTheBucketStoredRecentlyIsKeptEvenWithoutAClaim) {
  // Uploaded by a server that does not claim (an older version): the
  // bucket's own time decides, and the mark is cleared.
  runner::ArtifactStore legacy(tmp_->path() + "/legacy", runner::ArtifactLimits{}, bucket_);
  Result<std::string> rev = legacy.PutDirectory(src_);
  ASSERT_TRUE(rev.ok());
  EXPECT_EQ(Row(*rev), "<none>");
  clock_.Advance(10);
  EXPECT_EQ(a_->RemoveMirrorCopyIfOlderThan(*rev, kGrace), Removal::kYoung);
  EXPECT_TRUE(bucket_->Has(*rev));
  EXPECT_EQ(Row(*rev), "<none>");
  clock_.Advance(kGrace);
  EXPECT_EQ(a_->RemoveMirrorCopyIfOlderThan(*rev, kGrace), Removal::kRemoved);
  EXPECT_EQ(bucket_->removals(), 1);
}

TEST_F(MirrorLedgerTest, WithoutALedgerTheBucketKeepsItsCopies) {
  runner::ArtifactStore plain(tmp_->path() + "/plain", runner::ArtifactLimits{}, bucket_);
  Result<std::string> rev = plain.PutDirectory(src_);
  ASSERT_TRUE(rev.ok());
  clock_.Advance(kGrace * 2);
  EXPECT_EQ(plain.RemoveMirrorCopyIfOlderThan(*rev, kGrace), Removal::kAbsent);
  EXPECT_TRUE(bucket_->Has(*rev));
}

}  // namespace
}  // namespace pw::engine::mirror_ledger_test
