#include "runner/artifact_mirror.h"

#include <gtest/gtest.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "common/test_files.h"
#include "runner/artifact_store.h"
#include "runner/temp_dir.h"

namespace pw::runner::artifact_mirror_test {
namespace {

using test_files::ReadFile;
using test_files::WriteFile;

namespace fs = std::filesystem;

// The shared bucket, in memory.
class FakeMirror final : public ArtifactMirror {
 public:
  std::string Where() const override { return "s3://shared/artifacts/ at http://fake:9000"; }
  Result<bool> Contains(const std::string& revision) override {
    if (unavailable) return Unavailable("connection refused");
    return objects.count(revision) > 0;
  }
  Status Upload(const std::string& revision, const std::string& zip_path) override {
    if (unavailable) return Unavailable("connection refused");
    ++uploads;
    objects[revision] = ReadFile(zip_path);
    modified[revision] = static_cast<double>(time(nullptr));
    return Status::Ok();
  }
  Result<std::optional<EpochSeconds>> Modified(const std::string& revision) override {
    if (unavailable) return Unavailable("connection refused");
    if (!objects.count(revision)) return std::optional<EpochSeconds>();
    return std::optional<EpochSeconds>(modified[revision]);
  }
  Status Remove(const std::string& revision) override {
    if (unavailable) return Unavailable("connection refused");
    objects.erase(revision);
    modified.erase(revision);
    return Status::Ok();
  }
  Status Download(const std::string& revision, const std::string& dest_path) override {
    if (unavailable) return Unavailable("connection refused");
    auto it = objects.find(revision);
    if (it == objects.end()) return NotFound("no such key", "NoSuchKey");
    ++downloads;
    WriteFile(dest_path, it->second);
    return Status::Ok();
  }

  std::map<std::string, std::string> objects;
  std::map<std::string, EpochSeconds> modified;  // As S3's LastModified.
  bool unavailable = false;
  int uploads = 0;
  int downloads = 0;
};

// Files in `dir` (not below), e.g. leftover temporaries.
int CountFiles(const std::string& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++n;
  }
  return n;
}

class ArtifactMirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = ScopedTempDir::Create("mirror-test");
    ASSERT_TRUE(tmp.ok());
    tmp_ = std::make_unique<ScopedTempDir>(*std::move(tmp));
    mirror_ = std::make_shared<FakeMirror>();
    a_ = std::make_unique<ArtifactStore>(tmp_->path() + "/a", ArtifactLimits{}, mirror_);
    b_ = std::make_unique<ArtifactStore>(tmp_->path() + "/b", ArtifactLimits{}, mirror_);
    src_ = tmp_->path() + "/src";
    WriteFile(src_ + "/app.txt", "hello");
    WriteFile(src_ + "/lib/x.txt", "x");
  }

  std::unique_ptr<ScopedTempDir> tmp_;
  std::shared_ptr<FakeMirror> mirror_;
  std::unique_ptr<ArtifactStore> a_;  // Server A's store.
  std::unique_ptr<ArtifactStore> b_;  // Server B's, another disk, the same bucket.
  std::string src_;
};

TEST_F(ArtifactMirrorTest, PutUploadsAndAnotherStoreDownloadsOnAMiss) {
  Result<std::string> rev = a_->PutDirectory(src_);
  ASSERT_TRUE(rev.ok()) << rev.status().ToString();
  EXPECT_EQ(mirror_->uploads, 1);
  EXPECT_EQ(mirror_->objects.count(*rev), 1u);
  EXPECT_EQ(ReadFile(a_->PathOf(*rev)), mirror_->objects[*rev]);

  EXPECT_FALSE(b_->Has(*rev));
  ASSERT_TRUE(b_->Extract(*rev, tmp_->path() + "/out").ok());
  EXPECT_EQ(ReadFile(tmp_->path() + "/out/app.txt"), "hello");
  EXPECT_EQ(ReadFile(tmp_->path() + "/out/lib/x.txt"), "x");
  EXPECT_TRUE(b_->Has(*rev));  // Committed locally: the next Extract reads the disk.
  EXPECT_EQ(mirror_->downloads, 1);
  ASSERT_TRUE(b_->Extract(*rev, tmp_->path() + "/out2").ok());
  EXPECT_EQ(mirror_->downloads, 1);
  // B puts the same content: already in the bucket, not uploaded again.
  ASSERT_TRUE(b_->PutDirectory(src_).ok());
  EXPECT_EQ(mirror_->uploads, 1);
}

TEST_F(ArtifactMirrorTest, ZipBytesRevisionVerifiedByItsBytes) {
  Result<std::string> dir_rev = a_->PutDirectory(src_);
  ASSERT_TRUE(dir_rev.ok());
  Result<std::string> rev = a_->PutZipBytes(ReadFile(a_->PathOf(*dir_rev)));
  ASSERT_TRUE(rev.ok()) << rev.status().ToString();
  ASSERT_NE(*rev, *dir_rev);
  ASSERT_TRUE(b_->Fetch(*rev).ok());
  EXPECT_EQ(ReadFile(b_->PathOf(*rev)), ReadFile(a_->PathOf(*rev)));
}

TEST_F(ArtifactMirrorTest, CorruptedDownloadIsRefusedAndLeavesNothing) {
  Result<std::string> rev = a_->PutDirectory(src_);
  ASSERT_TRUE(rev.ok());
  WriteFile(tmp_->path() + "/other/app.txt", "tampered");
  Result<std::string> other = a_->PutDirectory(tmp_->path() + "/other");
  ASSERT_TRUE(other.ok());
  mirror_->objects[*rev] = mirror_->objects[*other];  // A valid zip, the wrong content.

  Status st = b_->Extract(*rev, tmp_->path() + "/out");
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_NE(st.message().find("does not match"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("http://fake:9000"), std::string::npos) << st.message();
  EXPECT_FALSE(b_->Has(*rev));
  EXPECT_EQ(CountFiles(b_->root_dir()), 0);  // No temporaries left.

  mirror_->objects[*rev] = "not a zip";
  st = b_->Fetch(*rev);
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_NE(st.message().find("not a valid artifact"), std::string::npos) << st.message();
  EXPECT_EQ(CountFiles(b_->root_dir()), 0);
}

TEST_F(ArtifactMirrorTest, MissingEverywhereIsNotFoundNamingTheBucket) {
  const std::string rev(64, 'a');
  Status st = b_->Extract(rev, tmp_->path() + "/out");
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("s3://shared/artifacts/"), std::string::npos) << st.message();
}

TEST_F(ArtifactMirrorTest, UnreachableBucketFailsThePutAndStoresNothing) {
  mirror_->unavailable = true;
  Result<std::string> rev = a_->PutDirectory(src_);
  ASSERT_FALSE(rev.ok());
  EXPECT_EQ(rev.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(rev.status().message().find("http://fake:9000"), std::string::npos)
      << rev.status().message();
  EXPECT_EQ(CountFiles(a_->root_dir()), 0);

  mirror_->unavailable = false;
  rev = a_->PutDirectory(src_);
  ASSERT_TRUE(rev.ok());
  mirror_->unavailable = true;
  Status st = b_->Fetch(*rev);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("cannot download"), std::string::npos) << st.message();
  EXPECT_EQ(CountFiles(b_->root_dir()), 0);
}

TEST_F(ArtifactMirrorTest, LocalArtifactMissingFromTheBucketIsUploadedOnPut) {
  // Written before the server used a mirror (same root, no mirror).
  ArtifactStore plain(tmp_->path() + "/a");
  Result<std::string> rev = plain.PutDirectory(src_);
  ASSERT_TRUE(rev.ok());
  EXPECT_EQ(mirror_->uploads, 0);
  ASSERT_TRUE(a_->PutDirectory(src_).ok());
  EXPECT_EQ(mirror_->uploads, 1);
  EXPECT_EQ(mirror_->objects.count(*rev), 1u);
}

// The S3 adapter: one object per revision under a fixed key.
class FakeObjectStore final : public ObjectStore {
 public:
  Result<ObjectInfo> Head(const std::string& bucket, const std::string& key,
                          const std::string&) override {
    if (bucket != "shared") return NotFound("no bucket", "NoSuchBucket");
    if (!objects.count(key)) return NotFound("no key", "NoSuchKey");
    return Info(bucket, key);
  }
  Result<ObjectInfo> Get(const std::string& bucket, const std::string& key, const std::string& v,
                         const std::string& dest) override {
    PW_ASSIGN_OR_RETURN(ObjectInfo info, Head(bucket, key, v));
    WriteFile(dest, objects[key]);
    return info;
  }
  Result<ObjectInfo> Put(const std::string& bucket, const std::string& key, const std::string& src,
                         const PutOptions&) override {
    if (bucket != "shared") return NotFound("no bucket", "NoSuchBucket");
    objects[key] = ReadFile(src);
    return Info(bucket, key);
  }
  std::map<std::string, std::string> objects;

 private:
  static ObjectInfo Info(const std::string& bucket, const std::string& key) {
    ObjectInfo info;
    info.bucket = bucket;
    info.key = key;
    return info;
  }
};

TEST_F(ArtifactMirrorTest, ObjectStoreMirrorUsesFixedKeys) {
  auto s3 = std::make_shared<FakeObjectStore>();
  auto mirror = NewObjectStoreArtifactMirror(s3, "shared", "http://s3:4568");
  ArtifactStore a(tmp_->path() + "/sa", ArtifactLimits{}, mirror);
  ArtifactStore b(tmp_->path() + "/sb", ArtifactLimits{}, mirror);
  Result<std::string> rev = a.PutDirectory(src_);
  ASSERT_TRUE(rev.ok());
  EXPECT_EQ(s3->objects.count("artifacts/" + *rev + ".zip"), 1u);
  ASSERT_TRUE(b.Fetch(*rev).ok());

  auto wrong = NewObjectStoreArtifactMirror(s3, "missing", "http://s3:4568");
  EXPECT_FALSE(wrong->Contains(*rev).ok());  // NoSuchBucket is an error, not "absent".
  ArtifactStore c(tmp_->path() + "/sc", ArtifactLimits{}, wrong);
  Status st = c.Fetch(*rev);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("cannot download"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace pw::runner::artifact_mirror_test
