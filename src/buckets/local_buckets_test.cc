#include "buckets/local_buckets.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "buckets/digests.h"
#include "runner/temp_dir.h"
#include "store/faulty_store.h"

namespace pw::buckets::local_buckets_test {
namespace {

using ::testing::ElementsAre;

class TestClock final : public Clock {
 public:
  EpochSeconds Now() const override { return now; }
  EpochSeconds now = 1700000000;
};

class LocalBucketsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenSqliteStore(tmp_.path() + "/pw.db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    Reopen();
    ASSERT_TRUE(b_->CreateBucket("bkt").ok());
  }
  void Reopen() {
    LocalBucketsOptions o;
    o.root = tmp_.path() + "/buckets";
    o.min_part_bytes = 4;
    o.max_object_bytes = 1 << 20;
    b_ = std::make_unique<LocalBuckets>(*store_, clock_, o);
    b_->SetPublicUrl("http://127.0.0.1:8480");
    Status s = b_->Open();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  std::string File(const std::string& content) {
    std::string p = tmp_.path() + "/src-" + std::to_string(n_++);
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  // A body handed over in the buckets' temp dir, as the HTTP front leaves it.
  std::string Upload(const std::string& content) {
    std::string p = b_->temp_dir() + "/up-" + std::to_string(n_++);
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  std::string Read(const std::string& key, const std::string& version = "") {
    std::string dest = tmp_.path() + "/out";
    auto got = b_->Get("bkt", key, version, dest);
    if (!got.ok()) return "<" + got.status().wire_name() + ">";
    std::ifstream in(dest, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // Commits `batch` to the store as an earlier server's database: one whose
  // key documents ({"versions": [...]}) Open has not moved yet.
  void CommitAsAnEarlierServer(store::Batch batch) {
    batch.kv_deletes.push_back("s3meta/versions-are-rows");
    Status s = store_->Commit(batch);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  std::string PutText(const std::string& key, const std::string& content) {
    auto r = b_->Put("bkt", key, File(content), {});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->version_id : "";
  }

  runner::ScopedTempDir tmp_ = *runner::ScopedTempDir::Create("buckets-test");
  std::unique_ptr<store::Store> store_;
  TestClock clock_;
  std::unique_ptr<LocalBuckets> b_;
  int n_ = 0;
};

TEST(BucketNames, FollowS3Rules) {
  EXPECT_TRUE(ValidateBucketName("my-source").ok());
  EXPECT_TRUE(ValidateBucketName("a.b-c1").ok());
  for (const char* bad : {"ab", "My-Bucket", "-abc", "abc-", "a..b", "192.168.1.1", "a_b",
                          "xn--abc", "abc-s3alias", "a.-b"}) {
    Status s = ValidateBucketName(bad);
    EXPECT_EQ(s.wire_name(), "InvalidBucketName") << bad;
  }
}

TEST_F(LocalBucketsTest, BucketsAreCreatedListedAndDeleted) {
  EXPECT_EQ(b_->CreateBucket("bkt").wire_name(), "BucketAlreadyOwnedByYou");
  EXPECT_EQ(b_->CreateBucket("Bad_Name").wire_name(), "InvalidBucketName");
  // The names of the server's own top-level routes.
  for (const char* reserved : {"metrics", "health", "console", "logs"}) {
    EXPECT_EQ(b_->CreateBucket(reserved).wire_name(), "InvalidBucketName") << reserved;
  }
  ASSERT_TRUE(b_->CreateBucket("other").ok());
  auto list = b_->ListBuckets();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "bkt");
  EXPECT_EQ((*list)[1].name, "other");
  PutText("k", "v");
  EXPECT_EQ(b_->DeleteBucket("bkt").wire_name(), "BucketNotEmpty");
  // Only a delete marker left: the bucket goes, with its old versions.
  ASSERT_TRUE(b_->DeleteObject("bkt", "k").ok());
  ASSERT_TRUE(b_->DeleteBucket("bkt").ok());
  EXPECT_EQ(b_->HeadBucket("bkt").wire_name(), "NoSuchBucket");
  EXPECT_FALSE(std::filesystem::exists(tmp_.path() + "/buckets/bkt"));
  EXPECT_EQ(b_->Head("bkt", "k").status().wire_name(), "NoSuchBucket");
  // A new bucket of that name starts empty.
  ASSERT_TRUE(b_->CreateBucket("bkt").ok());
  EXPECT_EQ(Read("k"), "<NoSuchKey>");
}

TEST_F(LocalBucketsTest, EveryPutIsANewVersionAndTheLatestIsRead) {
  std::string v1 = PutText("app.zip", "one");
  clock_.now += 10;
  std::string v2 = PutText("app.zip", "two");
  EXPECT_NE(v1, v2);
  EXPECT_EQ(v1.size(), 32u);
  EXPECT_EQ(Read("app.zip"), "two");
  EXPECT_EQ(Read("app.zip", v1), "one");
  EXPECT_EQ(Read("app.zip", v2), "two");
  auto head = b_->Head("bkt", "app.zip");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->version_id, v2);
  EXPECT_EQ(head->size, 3u);
  EXPECT_EQ(head->etag, "b8a9f715dbb64fd5c56e7783c6820a61");  // md5("two")
  EXPECT_EQ(head->last_modified, 1700000010);
  EXPECT_EQ(head->content_type, "binary/octet-stream");
  EXPECT_EQ(Read("app.zip", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), "<NoSuchVersion>");
  EXPECT_EQ(Read("app.zip", "../../etc/passwd"), "<InvalidArgument>");
  EXPECT_EQ(Read("missing"), "<NoSuchKey>");
  EXPECT_EQ(b_->UrlOf("bkt", "dir/a b.zip", v1),
            "http://127.0.0.1:8480/bkt/dir/a%20b.zip?versionId=" + v1);
}

// A key that is not UTF-8 was stored and then listed as raw bytes in XML that
// no client could parse; new ones are refused, nothing is stored.
TEST_F(LocalBucketsTest, NewKeysMustBeUtf8) {
  auto put = b_->Put("bkt", "\xff\xfe", File("x"), {});
  EXPECT_EQ(put.status().wire_name(), "InvalidArgument");
  EXPECT_NE(put.status().message().find("UTF-8"), std::string::npos);
  EXPECT_EQ(b_->CreateMultipartUpload("bkt", "caf\xe9", {}).status().wire_name(),
            "InvalidArgument");
  EXPECT_EQ(Read("\xff\xfe"), "<NoSuchKey>");  // Reads answer as for any absent key.
  PutText("caf\xc3\xa9/\xe2\x82\xac", "utf8");
  EXPECT_EQ(Read("caf\xc3\xa9/\xe2\x82\xac"), "utf8");
}

TEST_F(LocalBucketsTest, OptionsAndMetadataAreKept) {
  runner::PutOptions o;
  o.content_type = "application/zip";
  o.cache_control = "max-age=60";
  o.canned_acl = "public-read";
  o.metadata = {{"codepipeline-artifact-revision-summary", "hello"}};
  ASSERT_TRUE(b_->Put("bkt", "a", File("x"), o).ok());
  auto head = b_->Head("bkt", "a");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->content_type, "application/zip");
  EXPECT_EQ(head->cache_control, "max-age=60");
  EXPECT_EQ(head->metadata.at("codepipeline-artifact-revision-summary"), "hello");
}

TEST_F(LocalBucketsTest, ListPagesWithDelimiterAndCommonPrefixes) {
  for (const char* k : {"a.txt", "dir/one", "dir/two", "dir/sub/three", "e.txt", "z/x"}) {
    PutText(k, k);
  }
  ListQuery q;
  q.delimiter = "/";
  auto all = b_->List("bkt", q);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->objects.size(), 2u);
  EXPECT_EQ(all->objects[0].key, "a.txt");
  EXPECT_EQ(all->objects[1].key, "e.txt");
  EXPECT_THAT(all->common_prefixes, ElementsAre("dir/", "z/"));
  EXPECT_FALSE(all->truncated);

  q.prefix = "dir/";
  auto dir = b_->List("bkt", q);
  ASSERT_TRUE(dir.ok());
  ASSERT_EQ(dir->objects.size(), 2u);
  EXPECT_EQ(dir->objects[0].key, "dir/one");
  EXPECT_THAT(dir->common_prefixes, ElementsAre("dir/sub/"));

  // Pages of two, without a delimiter: every key once, in byte order.
  ListQuery p;
  p.max_keys = 2;
  std::vector<std::string> seen;
  for (int page = 0; page < 10; ++page) {
    auto r = b_->List("bkt", p);
    ASSERT_TRUE(r.ok());
    for (const auto& o : r->objects) seen.push_back(o.key);
    if (!r->truncated) break;
    EXPECT_EQ(r->objects.size(), 2u);
    p.after = r->next_after;
  }
  EXPECT_THAT(seen, ElementsAre("a.txt", "dir/one", "dir/sub/three", "dir/two", "e.txt", "z/x"));

  // Paging with a delimiter: a common prefix counts once and is not repeated.
  ListQuery d;
  d.delimiter = "/";
  d.max_keys = 2;
  auto first = b_->List("bkt", d);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->truncated);
  EXPECT_EQ(first->next_after, "dir/");
  d.after = first->next_after;
  auto second = b_->List("bkt", d);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->objects.size(), 1u);
  EXPECT_EQ(second->objects[0].key, "e.txt");
  EXPECT_THAT(second->common_prefixes, ElementsAre("z/"));
  EXPECT_FALSE(second->truncated);
}

TEST_F(LocalBucketsTest, ObjectStoreDeleteHidesTheLatestVersion) {
  std::string v1 = PutText("k", "one");
  ASSERT_TRUE(b_->Delete("bkt", "k").ok());
  EXPECT_EQ(Read("k"), "<NoSuchKey>");
  EXPECT_EQ(Read("k", v1), "one");  // Versioned: the lifecycle rules' business.
  EXPECT_TRUE(b_->Delete("bkt", "k").ok());
  EXPECT_EQ(b_->Delete("nope", "k").wire_name(), "NoSuchBucket");
}

TEST_F(LocalBucketsTest, DeleteMarkersHideAndVersionDeletesUncover) {
  std::string v1 = PutText("k", "one");
  std::string v2 = PutText("k", "two");
  auto del = b_->DeleteObject("bkt", "k");
  ASSERT_TRUE(del.ok());
  EXPECT_TRUE(del->delete_marker);
  EXPECT_EQ(Read("k"), "<NoSuchKey>");
  EXPECT_EQ(Read("k", v1), "one");
  EXPECT_EQ(Read("k", del->version_id), "<MethodNotAllowed>");
  auto listed = b_->List("bkt", {});
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->objects.empty());

  auto versions = b_->ListVersions("bkt", {});
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->versions.size(), 3u);
  EXPECT_TRUE(versions->versions[0].delete_marker);
  EXPECT_TRUE(versions->versions[0].is_latest);
  EXPECT_EQ(versions->versions[1].info.version_id, v2);
  EXPECT_FALSE(versions->versions[1].is_latest);
  EXPECT_EQ(versions->versions[2].info.version_id, v1);

  // Removing the marker makes v2 current again; removing v2 makes v1 current.
  auto undo = b_->DeleteObject("bkt", "k", del->version_id);
  ASSERT_TRUE(undo.ok());
  EXPECT_TRUE(undo->delete_marker);
  EXPECT_EQ(Read("k"), "two");
  ASSERT_TRUE(b_->DeleteObject("bkt", "k", v2).ok());
  EXPECT_EQ(Read("k"), "one");
  EXPECT_EQ(Read("k", v2), "<NoSuchVersion>");
  EXPECT_FALSE(std::filesystem::exists(tmp_.path() + "/buckets/bkt/" + v2));
  ASSERT_TRUE(b_->DeleteObject("bkt", "k", v1).ok());
  EXPECT_EQ(Read("k"), "<NoSuchKey>");
  auto none = b_->ListVersions("bkt", {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->versions.empty());
}

TEST_F(LocalBucketsTest, VersionListingPages) {
  std::string a1 = PutText("a", "1");
  std::string a2 = PutText("a", "2");
  std::string b1 = PutText("b", "1");
  VersionQuery q;
  q.max_keys = 1;
  std::vector<std::string> seen;
  for (int i = 0; i < 10; ++i) {
    auto r = b_->ListVersions("bkt", q);
    ASSERT_TRUE(r.ok());
    for (const auto& v : r->versions) seen.push_back(v.info.key + ":" + v.info.version_id);
    if (!r->truncated) break;
    q.key_marker = r->next_key_marker;
    q.version_id_marker = r->next_version_id_marker;
  }
  EXPECT_THAT(seen, ElementsAre("a:" + a2, "a:" + a1, "b:" + b1));

  // S3's errors for a version marker without a key marker, or not an id
  // (it was ignored before: the listing started from the first key).
  q = VersionQuery();
  q.version_id_marker = a2;
  EXPECT_EQ(b_->ListVersions("bkt", q).status().wire_name(), "InvalidArgument");
  q.key_marker = "a";
  q.version_id_marker = std::string("v\xff\0", 3);
  EXPECT_EQ(b_->ListVersions("bkt", q).status().wire_name(), "InvalidArgument");
  q.version_id_marker = "null";  // S3's id of an unversioned object: none here.
  auto after_a = b_->ListVersions("bkt", q);
  ASSERT_TRUE(after_a.ok());
  ASSERT_EQ(after_a->versions.size(), 1u);
  EXPECT_EQ(after_a->versions[0].info.key, "b");
}

// Listings read the store a page at a time and skip a delimiter's groups by
// seeks. Checked against a model that lists the whole bucket the plain way,
// for every page of many queries over keys with versions, delete markers,
// groups that span pages and non-ASCII bytes.
class ListingModel {
 public:
  struct Ver {
    std::string id;
    bool dm = false;
  };
  std::map<std::string, std::vector<Ver>> keys;  // Newest version first.

  // Entries of a ListObjects page: "k:<key>" or "p:<common prefix>".
  std::vector<std::string> List(const ListQuery& q, bool* truncated) const {
    std::vector<std::string> all;
    for (const auto& [key, vers] : keys) {
      if (!key.starts_with(q.prefix) || vers.empty() || vers.front().dm) continue;
      std::string common = Common(key, q.prefix, q.delimiter);
      std::string entry = common.empty() ? key : common;
      if (!q.after.empty() && entry <= q.after) continue;
      std::string e = (common.empty() ? "k:" : "p:") + entry;
      if (all.empty() || all.back() != e) all.push_back(e);
    }
    *truncated = all.size() > static_cast<size_t>(q.max_keys);
    if (*truncated) all.resize(q.max_keys);
    return all;
  }

  // Entries of a ListObjectVersions page: "v:<key>:<id>" or "p:<common prefix>".
  std::vector<std::string> Versions(const VersionQuery& q, bool* truncated) const {
    std::vector<std::string> all;
    for (const auto& [key, vers] : keys) {
      if (!key.starts_with(q.prefix) || vers.empty()) continue;
      std::string common = Common(key, q.prefix, q.delimiter);
      if (!common.empty()) {
        if (!q.key_marker.empty() && common <= q.key_marker) continue;
        if (all.empty() || all.back() != "p:" + common) all.push_back("p:" + common);
        continue;
      }
      if (!q.key_marker.empty() && key < q.key_marker) continue;
      bool skipping = key == q.key_marker;
      if (skipping && q.version_id_marker.empty()) continue;
      for (const Ver& v : vers) {
        if (skipping) {
          skipping = v.id != q.version_id_marker;
          continue;
        }
        all.push_back("v:" + key + ":" + v.id);
      }
    }
    *truncated = all.size() > static_cast<size_t>(q.max_keys);
    if (*truncated) all.resize(q.max_keys);
    return all;
  }

 private:
  static std::string Common(const std::string& key, const std::string& prefix,
                            const std::string& delimiter) {
    if (delimiter.empty()) return "";
    auto pos = key.find(delimiter, prefix.size());
    return pos == std::string::npos ? "" : key.substr(0, pos + delimiter.size());
  }
};

TEST_F(LocalBucketsTest, ListingsMatchAFullReadOnEveryPage) {
  std::mt19937 rng(11);
  ListingModel model;
  const std::vector<std::string> parts = {"a", "b", "a/", "b/", "/", "x/y/", "\xc3\xa9/", "_", "B"};
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  for (int i = 0; i < 240; ++i) {
    std::string key;
    for (size_t n = 1 + pick(4); n > 0; --n) key += parts[pick(parts.size())];
    int op = static_cast<int>(pick(10));
    auto& vers = model.keys[key];
    if (op < 7 || vers.empty()) {
      std::string id = PutText(key, key);
      vers.insert(vers.begin(), {id, false});
    } else if (op < 9) {
      auto del = b_->DeleteObject("bkt", key);
      ASSERT_TRUE(del.ok());
      vers.insert(vers.begin(), {del->version_id, true});
    } else {
      size_t at = pick(vers.size());
      ASSERT_TRUE(b_->DeleteObject("bkt", key, vers[at].id).ok());
      vers.erase(vers.begin() + static_cast<std::ptrdiff_t>(at));
    }
  }
  int pages = 0;
  for (const std::string prefix : {"", "a", "a/", "x/y/", "\xc3\xa9/", "zz"}) {
    for (const std::string delimiter : {"", "/", "a", "y/"}) {
      for (int max_keys : {1, 2, 7, 1000}) {
        ListQuery q;
        q.prefix = prefix;
        q.delimiter = delimiter;
        q.max_keys = max_keys;
        for (int page = 0;; ++page) {
          ASSERT_LT(page, 400);
          auto got = b_->List("bkt", q);
          ASSERT_TRUE(got.ok()) << got.status().ToString();
          bool truncated = false;
          auto want = model.List(q, &truncated);
          std::vector<std::string> entries;
          for (const auto& o : got->objects) entries.push_back("k:" + o.key);
          for (const auto& c : got->common_prefixes) entries.push_back("p:" + c);
          std::sort(entries.begin(), entries.end(),
                    [](const auto& x, const auto& y) { return x.substr(2) < y.substr(2); });
          ASSERT_EQ(entries, want) << "prefix '" << prefix << "' delimiter '" << delimiter
                                   << "' max " << max_keys << " after '" << q.after << "'";
          ASSERT_EQ(got->truncated, truncated);
          ++pages;
          if (!got->truncated) break;
          ASSERT_EQ(got->next_after, want.back().substr(2));
          q.after = got->next_after;
        }
        VersionQuery v;
        v.prefix = prefix;
        v.delimiter = delimiter;
        v.max_keys = max_keys;
        for (int page = 0;; ++page) {
          ASSERT_LT(page, 800);
          auto got = b_->ListVersions("bkt", v);
          ASSERT_TRUE(got.ok()) << got.status().ToString();
          bool truncated = false;
          auto want = model.Versions(v, &truncated);
          // The model's order: keys and common prefixes by their bytes.
          std::vector<std::string> entries;
          size_t vi = 0;
          size_t ci = 0;
          while (vi < got->versions.size() || ci < got->common_prefixes.size()) {
            bool take_common = ci < got->common_prefixes.size() &&
                               (vi == got->versions.size() ||
                                got->common_prefixes[ci] < got->versions[vi].info.key);
            if (take_common) {
              entries.push_back("p:" + got->common_prefixes[ci++]);
            } else {
              const auto& ov = got->versions[vi++];
              entries.push_back("v:" + ov.info.key + ":" + ov.info.version_id);
            }
          }
          ASSERT_EQ(entries, want)
              << "versions: prefix '" << prefix << "' delimiter '" << delimiter << "' max "
              << max_keys << " marker '" << v.key_marker << "' '" << v.version_id_marker << "'";
          ASSERT_EQ(got->truncated, truncated);
          ++pages;
          if (!got->truncated) break;
          v.key_marker = got->next_key_marker;
          v.version_id_marker = got->next_version_id_marker;
        }
      }
    }
  }
  EXPECT_GT(pages, 1000);
}

// A page costs its own rows: a one-key page of a bucket of 2,000 keys, and
// a delimiter listing of its ten groups, read a few rows each, not the
// bucket (each read every key under the prefix before).
TEST_F(LocalBucketsTest, APageReadsAboutItsOwnRowsNotTheBucket) {
  store::Batch batch;
  for (int i = 0; i < 2000; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "dir%d/obj%05d", i % 10, i);
    // The metadata rows only, as an earlier server wrote them (Open moves
    // them to a row per version): the listing reads no body.
    batch.kv.emplace_back(std::string("s3obj/bkt/") + key,
                          R"({"versions":[{"id":"v)" + std::to_string(i) +
                              R"(","size":1,"etag":"e","mtime":1700000000}]})");
  }
  CommitAsAnEarlierServer(std::move(batch));
  store::FaultyStore counting(*store_);
  LocalBucketsOptions o;
  o.root = tmp_.path() + "/buckets";
  LocalBuckets b(counting, clock_, o);
  ASSERT_TRUE(b.Open().ok());
  counting.kv_rows_read = 0;

  ListQuery q;
  q.max_keys = 1;
  auto one = b.List("bkt", q);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->objects.size(), 1u);
  EXPECT_EQ(one->objects[0].key, "dir0/obj00000");
  EXPECT_TRUE(one->truncated);
  EXPECT_LE(counting.kv_rows_read.load(), 2u);

  counting.kv_rows_read = 0;
  q = ListQuery();
  q.delimiter = "/";
  auto groups = b.List("bkt", q);
  ASSERT_TRUE(groups.ok());
  EXPECT_EQ(groups->common_prefixes.size(), 10u);
  EXPECT_EQ(groups->common_prefixes[9], "dir9/");
  EXPECT_LE(counting.kv_rows_read.load(), 10u * 101);

  counting.kv_rows_read = 0;
  q = ListQuery();
  q.prefix = "dir3/";
  q.max_keys = 5;
  q.after = "dir3/obj01003";
  auto page = b.List("bkt", q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->objects.size(), 5u);
  EXPECT_EQ(page->objects[0].key, "dir3/obj01013");
  EXPECT_LE(counting.kv_rows_read.load(), 6u);

  counting.kv_rows_read = 0;
  VersionQuery vq;
  vq.max_keys = 3;
  auto versions = b.ListVersions("bkt", vq);
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(versions->versions.size(), 3u);
  // Four keys' rows (the fourth tells the page is truncated); a key of one
  // version holds it in its row, so no version row is read.
  EXPECT_LE(counting.kv_rows_read.load(), 4u);
}

// A key's versions are rows of their own: a put writes, and a read of the
// latest or of one old version reads, a few hundred bytes however many
// versions the key has. (One document held them all before: every put
// rewrote it and every read parsed it, 30 KB each at 300 versions.)
TEST_F(LocalBucketsTest, AKeysReadsAndWritesCostTheSameWhateverItsVersions) {
  std::vector<std::string> ids;
  for (int i = 0; i < 300; ++i) ids.push_back(PutText("latest.zip", "v" + std::to_string(i)));
  store::FaultyStore counting(*store_);
  LocalBucketsOptions o;
  o.root = tmp_.path() + "/buckets";
  LocalBuckets b(counting, clock_, o);
  auto read = [&](const std::string& version) {
    std::string dest = tmp_.path() + "/out";
    auto got = b.Get("bkt", "latest.zip", version, dest);
    if (!got.ok()) return "<" + got.status().wire_name() + ">";
    std::ifstream in(dest, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  auto reset = [&] {
    counting.kv_bytes_read = 0;
    counting.kv_bytes_written = 0;
    counting.kv_rows_read = 0;
  };
  constexpr size_t kFew = 1024;

  reset();
  EXPECT_EQ(read(""), "v299");
  EXPECT_LE(counting.kv_bytes_read.load(), kFew);
  reset();
  EXPECT_EQ(read(ids[7]), "v7");
  EXPECT_LE(counting.kv_bytes_read.load(), kFew);

  reset();
  auto put = b.Put("bkt", "latest.zip", File("v300"), {});
  ASSERT_TRUE(put.ok());
  ids.push_back(put->version_id);
  EXPECT_LE(counting.kv_bytes_read.load(), kFew);
  EXPECT_LE(counting.kv_bytes_written.load(), kFew);

  // A page of two versions from the middle of the key's history.
  reset();
  VersionQuery vq;
  vq.max_keys = 2;
  vq.key_marker = "latest.zip";
  vq.version_id_marker = ids[150];
  auto page = b.ListVersions("bkt", vq);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->versions.size(), 2u);
  EXPECT_EQ(page->versions[0].info.version_id, ids[149]);
  EXPECT_EQ(page->versions[1].info.version_id, ids[148]);
  EXPECT_FALSE(page->versions[0].is_latest);
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_version_id_marker, ids[148]);
  // The key's row and three versions (the third tells the page is truncated).
  EXPECT_LE(counting.kv_rows_read.load(), 4u);
  EXPECT_LE(counting.kv_bytes_read.load(), 2 * kFew);

  // Deleting an old version, then the latest: the one before it is read.
  reset();
  ASSERT_TRUE(b.DeleteObject("bkt", "latest.zip", ids[100]).ok());
  EXPECT_LE(counting.kv_bytes_read.load(), kFew);
  EXPECT_EQ(read(ids[100]), "<NoSuchVersion>");
  EXPECT_EQ(read(ids[101]), "v101");
  reset();
  ASSERT_TRUE(b.DeleteObject("bkt", "latest.zip", ids[300]).ok());
  EXPECT_LE(counting.kv_bytes_read.load(), kFew);
  EXPECT_LE(counting.kv_bytes_written.load(), kFew);
  EXPECT_EQ(read(""), "v299");
  auto listed = b.List("bkt", {});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->objects.size(), 1u);
  EXPECT_EQ(listed->objects[0].version_id, ids[299]);
  auto first = b.ListVersions("bkt", {});
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->versions.size(), 299u);
  EXPECT_EQ(first->versions[0].info.version_id, ids[299]);
  EXPECT_TRUE(first->versions[0].is_latest);
  EXPECT_EQ(first->versions[298].info.version_id, ids[0]);
}

// A data directory of an earlier server keeps each key's versions in one
// document. Open moves them to rows of their own, 500 keys per transaction;
// a crash part way leaves documents the next Open moves, and no body is
// swept meanwhile.
TEST_F(LocalBucketsTest, OpenMovesAnEarlierServersVersionDocumentsEvenAfterACrash) {
  auto body = [&](const std::string& id, const std::string& content) {
    std::ofstream(tmp_.path() + "/buckets/bkt/" + id, std::ios::binary) << content;
  };
  auto ver = [](const std::string& id, bool dm = false) {
    return R"({"id":")" + id + R"(","mtime":1700000000)" +
           (dm ? R"(,"dm":true})" : R"(,"etag":"e","size":2})");
  };
  store::Batch batch;
  // Newest first: a2, a marker, a1.
  batch.kv.emplace_back("s3obj/bkt/a", R"({"versions":[)" + ver("a2") + "," + ver("am", true) +
                                           "," + ver("a1") + "]}");
  body("a2", "a2");
  body("a1", "a1");
  batch.kv.emplace_back("s3obj/bkt/gone",
                        R"({"versions":[)" + ver("gm", true) + "," + ver("g1") + "]}");
  body("g1", "g1");
  for (int i = 0; i < 1200; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "many/%04d", i);
    batch.kv.emplace_back(std::string("s3obj/bkt/") + key,
                          R"({"versions":[)" + ver("m" + std::to_string(i)) + "]}");
    body("m" + std::to_string(i), "m" + std::to_string(i));
  }
  CommitAsAnEarlierServer(std::move(batch));

  store::FaultyStore crashing(*store_);
  crashing.fail_commits_after = 1;
  LocalBucketsOptions o;
  o.root = tmp_.path() + "/buckets";
  LocalBuckets first(crashing, clock_, o);
  EXPECT_FALSE(first.Open().ok());
  auto moved = store_->ListKv("s3ver/bkt/");
  ASSERT_TRUE(moved.ok());
  EXPECT_GT(moved->size(), 0u);  // Some moved, in one transaction ...
  EXPECT_LT(moved->size(), 1204u);
  auto left = store_->ListKv("s3obj/bkt/many/");
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1200u);
  EXPECT_NE(left->back().second.find("versions"), std::string::npos);  // ... and some did not.
  EXPECT_TRUE(std::filesystem::exists(tmp_.path() + "/buckets/bkt/m1199"));

  Reopen();
  EXPECT_EQ(Read("a"), "a2");
  EXPECT_EQ(Read("a", "a1"), "a1");
  EXPECT_EQ(Read("a", "am"), "<MethodNotAllowed>");
  EXPECT_EQ(Read("gone"), "<NoSuchKey>");
  EXPECT_EQ(Read("gone", "g1"), "g1");
  EXPECT_EQ(Read("many/1199"), "m1199");
  VersionQuery only_a;
  only_a.prefix = "a";
  auto versions = b_->ListVersions("bkt", only_a);
  ASSERT_TRUE(versions.ok());
  std::vector<std::string> seen;
  for (const auto& v : versions->versions) {
    seen.push_back(v.info.version_id + (v.is_latest ? "*" : "") + (v.delete_marker ? "x" : ""));
  }
  EXPECT_THAT(seen, ElementsAre("a2*", "amx", "a1"));
  ListQuery everything;
  everything.max_keys = 2000;
  auto listed = b_->List("bkt", everything);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->objects.size(), 1201u);  // a and many/*; gone's latest is a marker.
  auto all = store_->ListKv("s3ver/bkt/");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1205u);
  // Once all are moved, a start reads no key row: only the bucket's row and
  // the version rows, which the sweep reads to know the live bodies.
  store::FaultyStore counting(*store_);
  LocalBucketsOptions again;
  again.root = tmp_.path() + "/buckets";
  ASSERT_TRUE(LocalBuckets(counting, clock_, again).Open().ok());
  EXPECT_EQ(counting.kv_rows_read.load(), 1u + 1205u);
  // Removing a2 makes the marker current; the new version rows work as ever.
  ASSERT_TRUE(b_->DeleteObject("bkt", "a", "a2").ok());
  EXPECT_EQ(Read("a"), "<NoSuchKey>");
  EXPECT_FALSE(std::filesystem::exists(tmp_.path() + "/buckets/bkt/a2"));
  std::string a3 = PutText("a", "a3");
  EXPECT_EQ(Read("a"), "a3");
  EXPECT_EQ(Read("a", "a1"), "a1");
}

// Two servers on one database may both move a document at start: the one
// whose compare fails (the other moved or changed it) reads the page again
// and moves what is there now, instead of failing to start.
TEST_F(LocalBucketsTest, OpenMovesADocumentAnotherServerChangedMeanwhile) {
  for (const std::string id : {"v1", "v2"}) {
    std::ofstream(tmp_.path() + "/buckets/bkt/" + id, std::ios::binary) << id;
  }
  const std::string v1 = R"({"id":"v1","mtime":1700000000,"etag":"e","size":2})";
  const std::string v2 = R"({"id":"v2","mtime":1700000001,"etag":"e","size":2})";
  store::Batch earlier;
  earlier.kv.emplace_back("s3obj/bkt/k", R"({"versions":[)" + v1 + "]}");
  CommitAsAnEarlierServer(std::move(earlier));
  store::FaultyStore racing(*store_);
  int races = 0;
  racing.on_commit = [&](const store::Batch& batch) {
    if (races > 0 || batch.kv_expect.empty()) return;
    ++races;  // The other server's write lands between this one's read and commit.
    EXPECT_TRUE(store_->PutKv("s3obj/bkt/k", R"({"versions":[)" + v2 + "," + v1 + "]}").ok());
  };
  LocalBucketsOptions o;
  o.root = tmp_.path() + "/buckets";
  LocalBuckets b(racing, clock_, o);
  Status opened = b.Open();
  ASSERT_TRUE(opened.ok()) << opened.ToString();
  EXPECT_EQ(races, 1);
  EXPECT_EQ(Read("k"), "v2");
  EXPECT_EQ(Read("k", "v1"), "v1");
  EXPECT_TRUE(std::filesystem::exists(tmp_.path() + "/buckets/bkt/v1"));
}

TEST_F(LocalBucketsTest, MultipartAssemblesPartsInOrder) {
  runner::PutOptions o;
  o.content_type = "application/zip";
  auto id = b_->CreateMultipartUpload("bkt", "big", o);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto e2 = b_->UploadPart("bkt", "big", *id, 2, Upload("55555"));
  auto e1 = b_->UploadPart("bkt", "big", *id, 1, Upload("first"));
  ASSERT_TRUE(e1.ok() && e2.ok());
  // A part uploaded again replaces the first upload of that number.
  auto e1b = b_->UploadPart("bkt", "big", *id, 1, Upload("1111"));
  ASSERT_TRUE(e1b.ok());
  EXPECT_EQ(
      b_->CompleteMultipartUpload("bkt", "big", *id, {{2, *e2}, {1, *e1b}}).status().wire_name(),
      "InvalidPartOrder");
  EXPECT_EQ(
      b_->CompleteMultipartUpload("bkt", "big", *id, {{1, *e1}, {2, *e2}}).status().wire_name(),
      "InvalidPart");
  auto done = b_->CompleteMultipartUpload("bkt", "big", *id, {{1, "\"" + *e1b + "\""}, {2, *e2}});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(Read("big"), "111155555");
  EXPECT_EQ(done->size, 9u);
  // ETag: MD5 of the parts' binary MD5s, then "-<parts>".
  Digester d;
  std::string raw;
  for (const std::string& e : {*e1b, *e2}) {
    for (size_t i = 0; i < 32; i += 2)
      raw.push_back(static_cast<char>(std::stoi(e.substr(i, 2), nullptr, 16)));
  }
  d.Update(raw);
  EXPECT_EQ(done->etag, d.Finish().md5_hex + "-2");
  EXPECT_EQ(b_->Head("bkt", "big")->content_type, "application/zip");
  // The upload is gone once completed.
  EXPECT_EQ(b_->UploadPart("bkt", "big", *id, 3, Upload("x")).status().wire_name(), "NoSuchUpload");
  EXPECT_FALSE(std::filesystem::exists(tmp_.path() + "/buckets/.uploads/" + *id));
}

TEST_F(LocalBucketsTest, MultipartChecksSizesAndAborts) {
  auto id = b_->CreateMultipartUpload("bkt", "big", {});
  ASSERT_TRUE(id.ok());
  auto small = b_->UploadPart("bkt", "big", *id, 1, Upload("abc"));
  auto last = b_->UploadPart("bkt", "big", *id, 2, Upload("def"));
  ASSERT_TRUE(small.ok() && last.ok());
  EXPECT_EQ(b_->CompleteMultipartUpload("bkt", "big", *id, {{1, *small}, {2, *last}})
                .status()
                .wire_name(),
            "EntityTooSmall");
  EXPECT_EQ(b_->UploadPart("bkt", "other-key", *id, 1, Upload("x")).status().wire_name(),
            "NoSuchUpload");
  EXPECT_EQ(b_->UploadPart("bkt", "big", *id, 10001, Upload("x")).status().wire_name(),
            "InvalidArgument");
  ASSERT_TRUE(b_->AbortMultipartUpload("bkt", "big", *id).ok());
  EXPECT_EQ(b_->AbortMultipartUpload("bkt", "big", *id).wire_name(), "NoSuchUpload");
  EXPECT_EQ(Read("big"), "<NoSuchKey>");
}

// Before: uploads never completed piled up without bound.
TEST_F(LocalBucketsTest, OpenMultipartUploadsPerBucketAreBounded) {
  LocalBucketsOptions o;
  o.root = tmp_.path() + "/buckets";
  o.max_open_uploads = 3;
  LocalBuckets b(*store_, clock_, o);
  ASSERT_TRUE(b.Open().ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto id = b.CreateMultipartUpload("bkt", "k" + std::to_string(i), {});
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(*id);
  }
  auto refused = b.CreateMultipartUpload("bkt", "k3", {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().wire_name(), "InvalidRequest");
  EXPECT_NE(refused.status().message().find("AbortMultipartUpload"), std::string::npos);
  ASSERT_TRUE(b.CreateBucket("other").ok());
  EXPECT_TRUE(b.CreateMultipartUpload("other", "k", {}).ok()) << "the cap is per bucket";
  ASSERT_TRUE(b.AbortMultipartUpload("bkt", "k0", ids[0]).ok());
  EXPECT_TRUE(b.CreateMultipartUpload("bkt", "k3", {}).ok());
}

TEST_F(LocalBucketsTest, IntegrityIsChecked) {
  Integrity bad_md5;
  bad_md5.content_md5 = Base64Encode(std::string(16, 'x'));
  EXPECT_EQ(b_->PutUploaded("bkt", "k", Upload("hello"), {}, bad_md5).status().wire_name(),
            "BadDigest");
  Integrity crc;
  crc.checksum_algorithm = "CRC32";
  crc.checksum_value = "rwg7LQ==";  // CRC32 of "hello world\n", as the AWS CLI sends it.
  auto ok = b_->PutUploaded("bkt", "k", Upload("hello world\n"), {}, crc);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  auto located = b_->Locate("bkt", "k", "");
  ASSERT_TRUE(located.ok());
  EXPECT_EQ(located->checksum_value, "rwg7LQ==");
  EXPECT_EQ(b_->PutUploaded("bkt", "k", Upload("hello world?"), {}, crc).status().wire_name(),
            "BadDigest");
  EXPECT_EQ(Read("k"), "hello world\n");
  EXPECT_EQ(b_->Put("bkt", "huge", File(std::string((1 << 20) + 1, 'x')), {}).status().wire_name(),
            "EntityTooLarge");
}

TEST_F(LocalBucketsTest, PutInterruptedBeforeTheMetadataCommitKeepsTheOldVersion) {
  std::string v1 = PutText("app.zip", "old");
  b_->FailBeforeCommitForTest(true);
  EXPECT_FALSE(b_->Put("bkt", "app.zip", File("new"), {}).ok());
  b_->FailBeforeCommitForTest(false);
  // The new body is on disk, but nothing names it: the old version is read.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp_.path() + "/buckets/bkt")) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 2u);
  EXPECT_EQ(Read("app.zip"), "old");
  EXPECT_EQ(b_->Head("bkt", "app.zip")->version_id, v1);
  // The next start sweeps the orphan and keeps the live body.
  Reopen();
  files = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp_.path() + "/buckets/bkt")) {
    EXPECT_EQ(e.path().filename().string(), v1);
    ++files;
  }
  EXPECT_EQ(files, 1u);
  EXPECT_EQ(Read("app.zip"), "old");
}

}  // namespace
}  // namespace pw::buckets::local_buckets_test
