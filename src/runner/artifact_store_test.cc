#include "runner/artifact_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zip.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/test_files.h"
#include "runner/temp_dir.h"

namespace pw::runner::artifact_store_test {
namespace {

using test_files::ReadFile;
using test_files::WriteFile;

namespace fs = std::filesystem;

bool IsExecutable(const fs::path& path) {
  return (fs::status(path).permissions() & fs::perms::owner_exec) != fs::perms::none;
}

// Relative paths of every non-directory below `dir`, sorted.
std::vector<std::string> ListTree(const fs::path& dir) {
  std::vector<std::string> paths;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_directory() || e.is_symlink()) {
      paths.push_back(e.path().lexically_relative(dir).generic_string());
    }
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

// Builds zip bytes with libzip: each entry is (name, content, unix mode or 0).
struct RawEntry {
  std::string name;
  std::string content;
  uint32_t mode = 0;
};
std::string MakeZip(const fs::path& scratch, const std::vector<RawEntry>& entries) {
  const std::string path = (scratch / "raw.zip").string();
  int error = 0;
  zip_t* zip = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  EXPECT_NE(zip, nullptr);
  for (const RawEntry& e : entries) {
    zip_source_t* src = zip_source_buffer(zip, e.content.data(), e.content.size(), 0);
    zip_int64_t index = zip_file_add(zip, e.name.c_str(), src, ZIP_FL_ENC_UTF_8);
    EXPECT_GE(index, 0) << e.name;
    if (e.mode != 0) {
      zip_file_set_external_attributes(zip, static_cast<zip_uint64_t>(index), 0, ZIP_OPSYS_UNIX,
                                       e.mode << 16);
    }
  }
  EXPECT_EQ(zip_close(zip), 0);
  std::string bytes = ReadFile(path);
  fs::remove(path);
  return bytes;
}

class ArtifactStoreTest : public ::testing::Test {
 protected:
  fs::path Dir(const std::string& name) { return fs::path(tmp_.path()) / name; }
  // Stores zip bytes as they are, without PutZipBytes's checks (which refuse
  // what Extract must refuse too): as if stored by an older version.
  std::string StoreUnchecked(const std::string& bytes) {
    std::string revision(64, '0');
    revision.back() = "0123456789abcdef"[++unchecked_ % 16];
    fs::create_directories(store_.root_dir());
    std::ofstream(store_.PathOf(revision), std::ios::binary | std::ios::trunc) << bytes;
    return revision;
  }

  int unchecked_ = 0;
  ScopedTempDir tmp_ = *ScopedTempDir::Create("artifact-test");
  ArtifactStore store_{tmp_.path() + "/store"};
};

TEST(MatchesGlob, FnmatchPerSegmentAndDoubleStarAcrossDirectories) {
  EXPECT_TRUE(MatchesGlob("*.txt", "a.txt"));
  EXPECT_FALSE(MatchesGlob("*.txt", "dir/a.txt"));
  EXPECT_TRUE(MatchesGlob("**/*.txt", "a.txt"));
  EXPECT_TRUE(MatchesGlob("**/*.txt", "dir/sub/a.txt"));
  EXPECT_TRUE(MatchesGlob("dist/**", "dist/a/b.js"));
  EXPECT_FALSE(MatchesGlob("dist/**", "distx/a.js"));
  EXPECT_TRUE(MatchesGlob("dist/", "dist/a/b.js"));
  EXPECT_TRUE(MatchesGlob("./bin/?", "bin/x"));
  EXPECT_TRUE(MatchesGlob("src/**/[ab].c", "src/x/y/a.c"));
  EXPECT_FALSE(MatchesGlob("src/**/[ab].c", "src/x/y/c.c"));
  EXPECT_TRUE(MatchesGlob("**", "anything/at/all"));
}

TEST_F(ArtifactStoreTest, RoundTripKeepsTreeExecutableBitsAndLinks) {
  fs::path src = Dir("src");
  WriteFile(src / "README", "hello\n");
  WriteFile(src / "bin/build.sh", "#!/bin/sh\necho hi\n", /*executable=*/true);
  WriteFile(src / "a/b/c/deep.txt", std::string(100000, 'z'));
  fs::create_symlink("../README", src / "bin/readme-link");

  Result<std::string> revision = store_.PutDirectory(src.string());
  ASSERT_TRUE(revision.ok()) << revision.status().ToString();
  EXPECT_TRUE(IsArtifactRevision(*revision));
  EXPECT_TRUE(store_.Has(*revision));
  EXPECT_TRUE(fs::is_regular_file(store_.PathOf(*revision)));
  EXPECT_EQ(store_.PathOf(*revision), tmp_.path() + "/store/" + *revision + ".zip");

  fs::path out = Dir("out/nested");  // Created, with parents.
  Status status = store_.Extract(*revision, out.string());
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(ListTree(out), (std::vector<std::string>{"README", "a/b/c/deep.txt", "bin/build.sh",
                                                     "bin/readme-link"}));
  EXPECT_EQ(ReadFile(out / "README"), "hello\n");
  EXPECT_EQ(ReadFile(out / "a/b/c/deep.txt"), std::string(100000, 'z'));
  EXPECT_TRUE(IsExecutable(out / "bin/build.sh"));
  EXPECT_FALSE(IsExecutable(out / "README"));
  EXPECT_EQ(fs::read_symlink(out / "bin/readme-link"), "../README");
  EXPECT_EQ(ReadFile(out / "bin/readme-link"), "hello\n");
}

TEST_F(ArtifactStoreTest, RevisionDependsOnContentNotMtime) {
  WriteFile(Dir("one") / "f.txt", "same");
  WriteFile(Dir("one") / "x/g.sh", "run", true);
  WriteFile(Dir("two") / "x/g.sh", "run", true);
  WriteFile(Dir("two") / "f.txt", "same");
  fs::last_write_time(Dir("two") / "f.txt",
                      fs::file_time_type::clock::now() - std::chrono::hours(48));
  Result<std::string> one = store_.PutDirectory(Dir("one").string());
  Result<std::string> two = store_.PutDirectory(Dir("two").string());
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_EQ(*one, *two);

  fs::permissions(Dir("two") / "x/g.sh", fs::perms(0644));  // Executable bit counts.
  Result<std::string> three = store_.PutDirectory(Dir("two").string());
  ASSERT_TRUE(three.ok());
  EXPECT_NE(*three, *one);
  WriteFile(Dir("two") / "f.txt", "diff");  // Content counts.
  fs::permissions(Dir("two") / "x/g.sh", fs::perms(0755));
  Result<std::string> four = store_.PutDirectory(Dir("two").string());
  ASSERT_TRUE(four.ok());
  EXPECT_NE(*four, *one);
  EXPECT_NE(*four, *three);

  int zips = 0;
  for (const auto& e : fs::directory_iterator(store_.root_dir())) {
    EXPECT_EQ(e.path().extension(), ".zip");
    EXPECT_NE(e.path().filename().string()[0], '.') << "leftover temp file";
    ++zips;
  }
  EXPECT_EQ(zips, 3);
}

TEST_F(ArtifactStoreTest, RemoveIfOlderThanKeepsWhatAPutMadeNewAgain) {
  WriteFile(Dir("a") / "f.txt", "a");
  WriteFile(Dir("b") / "f.txt", "b");
  const std::string a = *store_.PutDirectory(Dir("a").string());
  const std::string b = *store_.PutDirectory(Dir("b").string());
  const auto old = fs::file_time_type::clock::now() - std::chrono::hours(2);
  fs::last_write_time(store_.PathOf(a), old);
  fs::last_write_time(store_.PathOf(b), old);
  // `a` is produced again (same content, nothing written): it is new again,
  // so a sweep that found it unreferenced before this Put keeps it.
  ASSERT_EQ(*store_.PutDirectory(Dir("a").string()), a);
  EXPECT_EQ(store_.RemoveIfOlderThan(a, 3600), ArtifactStore::Removal::kYoung);
  EXPECT_TRUE(store_.Has(a));
  EXPECT_EQ(store_.RemoveIfOlderThan(b, 3600), ArtifactStore::Removal::kRemoved);
  EXPECT_FALSE(store_.Has(b));
  EXPECT_EQ(store_.RemoveIfOlderThan(b, 3600), ArtifactStore::Removal::kAbsent);
  EXPECT_EQ(store_.RemoveIfOlderThan("../x", 0), ArtifactStore::Removal::kAbsent);
  EXPECT_EQ(store_.RemoveIfOlderThan(a, 0), ArtifactStore::Removal::kRemoved);
  // A Put after the removal writes it anew.
  ASSERT_EQ(*store_.PutDirectory(Dir("a").string()), a);
  EXPECT_TRUE(store_.Has(a));
}

TEST_F(ArtifactStoreTest, GlobsSelectFiles) {
  fs::path src = Dir("src");
  WriteFile(src / "dist/app.js", "js");
  WriteFile(src / "dist/sub/lib.js", "lib");
  WriteFile(src / "dist/sub/notes.md", "md");
  WriteFile(src / "build.log", "log");
  Result<std::string> revision = store_.PutDirectory(src.string(), {"dist/**/*.js", "*.md"});
  ASSERT_TRUE(revision.ok());
  ASSERT_TRUE(store_.Extract(*revision, Dir("out").string()).ok());
  EXPECT_EQ(ListTree(Dir("out")), (std::vector<std::string>{"dist/app.js", "dist/sub/lib.js"}));
}

TEST_F(ArtifactStoreTest, EmptyDirectoryIsAnEmptyArtifact) {
  fs::create_directories(Dir("empty/only/dirs"));
  Result<std::string> revision = store_.PutDirectory(Dir("empty").string());
  ASSERT_TRUE(revision.ok()) << revision.status().ToString();
  EXPECT_TRUE(store_.Has(*revision));
  Status status = store_.Extract(*revision, Dir("out").string());
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_TRUE(fs::is_directory(Dir("out")));
  EXPECT_TRUE(fs::is_empty(Dir("out")));
  // Globs matching nothing give the same empty artifact.
  WriteFile(Dir("other") / "a.txt", "a");
  Result<std::string> filtered = store_.PutDirectory(Dir("other").string(), {"*.none"});
  ASSERT_TRUE(filtered.ok());
  EXPECT_EQ(*filtered, *revision);
}

TEST_F(ArtifactStoreTest, MissingDirectoryIsNotFound) {
  EXPECT_EQ(store_.PutDirectory(Dir("missing").string()).status().code(), StatusCode::kNotFound);
}

TEST_F(ArtifactStoreTest, PutZipBytesStoresUploadedArchive) {
  std::string bytes = MakeZip(
      tmp_.path(), {{"dir/run.sh", "#!/bin/sh\n", S_IFREG | 0755}, {"plain.txt", "text", 0}});
  Result<std::string> revision = store_.PutZipBytes(bytes);
  ASSERT_TRUE(revision.ok()) << revision.status().ToString();
  EXPECT_EQ(ReadFile(store_.PathOf(*revision)), bytes);
  Result<std::string> again = store_.PutZipBytes(bytes);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *revision);
  ASSERT_TRUE(store_.Extract(*revision, Dir("out").string()).ok());
  EXPECT_EQ(ReadFile(Dir("out") / "plain.txt"), "text");
  EXPECT_TRUE(IsExecutable(Dir("out") / "dir/run.sh"));
  EXPECT_FALSE(IsExecutable(Dir("out") / "plain.txt"));
}

TEST_F(ArtifactStoreTest, PutZipBytesRejectsGarbage) {
  EXPECT_EQ(store_.PutZipBytes("definitely not a zip").status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(ArtifactStoreTest, PutZipFileStoresACopyUnderTheRevisionOfItsBytes) {
  std::string bytes = MakeZip(tmp_.path(), {{"app/index.html", "<p>hi</p>", 0}});
  WriteFile(Dir("object.zip"), bytes);
  Result<std::string> revision = store_.PutZipFile(Dir("object.zip").string());
  ASSERT_TRUE(revision.ok()) << revision.status().ToString();
  EXPECT_EQ(*revision, *store_.PutZipBytes(bytes));
  EXPECT_EQ(ReadFile(store_.PathOf(*revision)), bytes);
  EXPECT_TRUE(fs::exists(Dir("object.zip")));  // Left in place.
}

TEST_F(ArtifactStoreTest, PutZipFileRefusesWhatIsNotAZipAndAMissingFile) {
  WriteFile(Dir("plain.txt"), "not a zip");
  EXPECT_EQ(store_.PutZipFile(Dir("plain.txt").string()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_.PutZipFile(Dir("missing.zip").string()).status().code(), StatusCode::kNotFound);
}

TEST_F(ArtifactStoreTest, ZipSlipIsRejectedBeforeWritingAnything) {
  for (const std::string& evil : {std::string("../evil.txt"), std::string("a/../../evil.txt"),
                                  std::string("/tmp/pw-evil-absolute.txt")}) {
    SCOPED_TRACE(evil);
    std::string bytes = MakeZip(tmp_.path(), {{"good.txt", "ok", 0}, {evil, "pwned", 0}});
    EXPECT_EQ(store_.PutZipBytes(bytes).status().code(), StatusCode::kInvalidArgument);
    Result<std::string> revision = StoreUnchecked(bytes);
    fs::path out = Dir("out/inner");
    Status status = store_.Extract(*revision, out.string());
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
    EXPECT_FALSE(fs::exists(out / "good.txt"));
    EXPECT_FALSE(fs::exists(Dir("out/evil.txt")));
    EXPECT_FALSE(fs::exists(Dir("evil.txt")));
    EXPECT_FALSE(fs::exists("/tmp/pw-evil-absolute.txt"));
  }
}

TEST_F(ArtifactStoreTest, LinksResolvingOutsideAreRejected) {
  const uint32_t kLink = S_IFLNK | 0777;
  const std::vector<std::vector<RawEntry>> cases = {
      {{"abs", "/etc", kLink}},
      {{"up", "..", kLink}},
      {{"dir/up2", "../..", kLink}},
      // Physically, b/x/y/../.. climbs out: x resolves to the root.
      {{"t/x", "..", kLink}, {"b", "t", kLink}, {"y/keep", "", 0}, {"a", "b/x/y/../..", kLink}},
      // Writing through a link.
      {{"inside", "sub", kLink}, {"inside/file", "x", 0}},
  };
  for (const auto& entries : cases) {
    SCOPED_TRACE(entries.back().name);
    const std::string bytes = MakeZip(tmp_.path(), entries);
    EXPECT_EQ(store_.PutZipBytes(bytes).status().code(), StatusCode::kInvalidArgument);
    Result<std::string> revision = StoreUnchecked(bytes);
    fs::remove_all(Dir("out"));
    Status status = store_.Extract(*revision, Dir("out").string());
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(status.message().find(entries.back().name == "inside/file" ? "below a symbolic link"
                                                                         : "points outside"),
              std::string::npos)
        << status.message();
    EXPECT_FALSE(fs::exists(Dir("out")));
  }
  // Links that stay inside are fine, including chains.
  Result<std::string> ok = store_.PutZipBytes(MakeZip(
      tmp_.path(),
      {{"t/x", "..", kLink}, {"b", "t", kLink}, {"y/keep", "k", 0}, {"a", "b/x/y", kLink}}));
  ASSERT_TRUE(ok.ok());
  fs::remove_all(Dir("out"));
  Status status = store_.Extract(*ok, Dir("out").string());
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(ReadFile(Dir("out") / "a/keep"), "k");
}

TEST_F(ArtifactStoreTest, MissingAndMalformedRevisions) {
  const std::string missing(64, 'a');
  EXPECT_FALSE(store_.Has(missing));
  EXPECT_EQ(store_.Extract(missing, Dir("out").string()).code(), StatusCode::kNotFound);
  EXPECT_FALSE(store_.Has("../../etc/passwd"));
  EXPECT_EQ(store_.Extract("../x", Dir("out").string()).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(Dir("out")));
}

// A zip bomb made on the fly: 64 MiB of zeros deflates to about 64 KiB.
class ZipLimitsTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kMiB = uint64_t{1} << 20;
  ZipLimitsTest() { bomb_ = MakeZip(tmp_.path(), {{"zeros", std::string(64 * kMiB, '\0'), 0}}); }
  std::string Save(const std::string& name, const std::string& bytes) {
    const std::string path = tmp_.path() + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  static ArtifactLimits Low() {
    ArtifactLimits limits;
    limits.max_unpacked_bytes = kMiB;
    return limits;
  }

  ScopedTempDir tmp_ = *ScopedTempDir::Create("zip-limits");
  std::string bomb_;
};

TEST_F(ZipLimitsTest, ValidateRefusesEmptyNonZipAndBombs) {
  ASSERT_LT(bomb_.size(), 1 * kMiB);  // Small on the wire...
  const std::string bomb = Save("bomb.zip", bomb_);
  Status s = ValidateZipFile(bomb, Low());  // ... too big unpacked.
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--max-unpacked-bytes"), std::string::npos) << s.message();
  EXPECT_TRUE(ValidateZipFile(bomb, ArtifactLimits{}).ok()) << "64 MiB is within the defaults";

  Status empty = ValidateZipFile(Save("empty.zip", ""), ArtifactLimits{});
  EXPECT_EQ(empty.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(empty.message().find("empty"), std::string::npos) << empty.message();
  EXPECT_EQ(ValidateZipFile(Save("text.zip", "not a zip"), ArtifactLimits{}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateZipFile(tmp_.path() + "/missing.zip", ArtifactLimits{}).code(),
            StatusCode::kNotFound);

  ArtifactLimits small;
  small.max_artifact_bytes = 1000;
  Status big = ValidateZipFile(bomb, small);
  EXPECT_NE(big.message().find("--max-artifact-bytes"), std::string::npos) << big.message();

  ArtifactLimits few;
  few.max_entries = 2;
  const std::string three =
      Save("three.zip", MakeZip(tmp_.path(), {{"a", "1"}, {"b", "2"}, {"c", "3"}}));
  Status many = ValidateZipFile(three, few);
  EXPECT_NE(many.message().find("--max-artifact-entries"), std::string::npos) << many.message();
  EXPECT_TRUE(ValidateZipFile(three, ArtifactLimits{}).ok());
}

TEST_F(ZipLimitsTest, PutZipBytesRefusesEmptyUploadsAndBombs) {
  ArtifactStore store(tmp_.path() + "/store", Low());
  EXPECT_EQ(store.PutZipBytes("").status().code(), StatusCode::kInvalidArgument);
  auto bomb = store.PutZipBytes(bomb_);
  EXPECT_EQ(bomb.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bomb.status().message().find("--max-unpacked-bytes"), std::string::npos);
  EXPECT_TRUE(fs::is_empty(store.root_dir())) << "nothing stored";
}

TEST_F(ZipLimitsTest, ExtractCountsTheBytesItWrites) {
  // A bomb already in the store (e.g. stored before the limit was lowered).
  ArtifactStore store(tmp_.path() + "/store", Low());
  const std::string revision(64, 'a');
  fs::create_directories(store.root_dir());
  Save("store/" + revision + ".zip", bomb_);
  Status s = store.Extract(revision, tmp_.path() + "/out");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--max-unpacked-bytes"), std::string::npos) << s.message();
  EXPECT_LE(fs::file_size(tmp_.path() + "/out/zeros"), kMiB);
}

TEST_F(ZipLimitsTest, PutDirectoryRefusesAnArtifactOverTheSizeLimit) {
  ArtifactLimits limits;
  limits.max_artifact_bytes = 100;
  ArtifactStore store(tmp_.path() + "/store", limits);
  WriteFile(fs::path(tmp_.path()) / "src/a.txt", std::string(1000, 'x') + "unique");
  WriteFile(fs::path(tmp_.path()) / "src/b.txt", "some other text");
  auto rev = store.PutDirectory(tmp_.path() + "/src");
  EXPECT_EQ(rev.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(rev.status().message().find("--max-artifact-bytes"), std::string::npos);
}

// Before: a directory was hashed and zipped whole and only the zip's size was
// checked, so a snapshot of a huge tree read all of it (minutes, and the
// shutdown waited), and 1 GiB of zeros passed as a 1 MiB zip that no action
// could unpack. Now the walk refuses it, before a byte is read.
TEST_F(ZipLimitsTest, PutDirectoryRefusesADirectoryBeyondTheUnpackedAndEntryLimits) {
  ArtifactStore store(tmp_.path() + "/store", Low());
  const fs::path src = fs::path(tmp_.path()) / "src";
  WriteFile(src / "a.txt", "small");
  {
    std::ofstream(src / "sparse.bin").close();
    fs::resize_file(src / "sparse.bin", uint64_t{1} << 30);  // 1 GiB, no blocks.
  }
  auto rev = store.PutDirectory(src.string());
  EXPECT_EQ(rev.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(rev.status().message().find("--max-unpacked-bytes"), std::string::npos)
      << rev.status().message();
  fs::remove(src / "sparse.bin");
  EXPECT_TRUE(store.PutDirectory(src.string()).ok());

  ArtifactLimits few;
  few.max_entries = 3;
  ArtifactStore small(tmp_.path() + "/small", few);
  for (int i = 0; i < 3; ++i) WriteFile(src / ("f" + std::to_string(i)), "x");
  auto many = small.PutDirectory(src.string());
  EXPECT_EQ(many.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(many.status().message().find("--max-artifact-entries"), std::string::npos)
      << many.status().message();
  EXPECT_TRUE(small.PutDirectory(src.string(), {"f*"}).ok());  // Only what the globs keep counts.
}

TEST_F(ZipLimitsTest, PutDirectoryStopsWhenCancelledAndStoresNothing) {
  ArtifactStore store(tmp_.path() + "/store");
  const fs::path src = fs::path(tmp_.path()) / "src";
  WriteFile(src / "a.txt", "a");
  std::atomic<bool> stop{true};
  auto rev = store.PutDirectory(src.string(), {}, &stop);
  EXPECT_EQ(rev.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(rev.status().message().find("shutting down"), std::string::npos);
  stop = false;
  auto again = store.PutDirectory(src.string(), {}, &stop);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(store.Has(*again));
}

}  // namespace
}  // namespace pw::runner::artifact_store_test
