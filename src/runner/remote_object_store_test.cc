// RemoteObjectStore against a small S3 server in the test (cpp-httplib):
// path-style, SigV4 checked with the real verifier, versions, metadata and
// the PUT headers recorded. tests/e2e/test_s3_actions.py runs it against
// s3rver, an independent implementation.

#include "runner/remote_object_store.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/test_files.h"
#include "runner/temp_dir.h"
#include "sigv4/sigv4.h"

namespace pw::runner::remote_object_store_test {
namespace {

using test_files::ReadFile;

namespace fs = std::filesystem;

const sigv4::Credentials kCreds{"AKIDSTORE", "store-secret", ""};

// One bucket "b" with versioning; every request must be signed with kCreds.
class FakeS3 {
 public:
  struct Version {
    std::string id;
    std::string body;
    httplib::Headers put_headers;  // As the PUT sent them.
  };

  FakeS3() {
    server_.Get("/(.*)", [this](const httplib::Request& q, httplib::Response& s) { Handle(q, s); });
    server_.Put("/(.*)", [this](const httplib::Request& q, httplib::Response& s) { Handle(q, s); });
    server_.Delete("/(.*)",
                   [this](const httplib::Request& q, httplib::Response& s) { Handle(q, s); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeS3() {
    server_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::atomic<int> requests{0};
  std::atomic<int> fail_with_500{0};  // Answer this many more requests with 500.
  std::atomic<int> deletes{0};

  std::vector<Version> Versions(const std::string& key) {
    std::lock_guard lock(mu_);
    return objects_[key];
  }

 private:
  static void Error(httplib::Response& res, int status, const std::string& code) {
    res.status = status;
    res.set_content("<Error><Code>" + code + "</Code><Message>" + code + " here</Message></Error>",
                    "application/xml");
  }

  void Handle(const httplib::Request& req, httplib::Response& res) {
    ++requests;
    if (fail_with_500 > 0) {
      --fail_with_500;
      return Error(res, 500, "InternalError");
    }
    sigv4::HttpRequestView view;
    view.method = req.method;
    const auto q = req.target.find('?');
    view.path = req.target.substr(0, q);
    view.query = q == std::string::npos ? "" : req.target.substr(q + 1);
    for (const auto& [k, v] : req.headers) {
      if (k == "REMOTE_ADDR" || k == "REMOTE_PORT" || k == "LOCAL_ADDR" || k == "LOCAL_PORT") {
        continue;
      }
      view.headers.emplace_back(k, v);
    }
    view.body = req.body;
    auto who = sigv4::Verify(view, "s3", std::time(nullptr), [](std::string_view id) {
      std::optional<sigv4::SecretInfo> info;
      if (id == kCreds.access_key_id) info = sigv4::SecretInfo{kCreds.secret_access_key, "", 0};
      return info;
    });
    if (!who.ok()) return Error(res, 403, "SignatureDoesNotMatch");
    if (req.path.rfind("/b/", 0) != 0) return Error(res, 404, "NoSuchBucket");
    const std::string key = req.path.substr(3);
    std::lock_guard lock(mu_);
    std::vector<Version>& versions = objects_[key];
    if (req.method == "PUT") {
      versions.push_back({"ver" + std::to_string(++next_), req.body, req.headers});
      res.set_header("ETag", "\"etag-" + versions.back().id + "\"");
      res.set_header("x-amz-version-id", versions.back().id);
      return;
    }
    if (req.method == "DELETE") {  // An unversioned bucket's answer, absent keys included.
      ++deletes;
      objects_.erase(key);
      res.status = 204;
      return;
    }
    const Version* v = versions.empty() ? nullptr : &versions.back();
    if (req.has_param("versionId")) {
      v = nullptr;
      for (const auto& x : versions) {
        if (x.id == req.get_param_value("versionId")) v = &x;
      }
      if (v == nullptr) return Error(res, 404, "NoSuchVersion");
    }
    if (v == nullptr) return Error(res, 404, "NoSuchKey");
    res.set_header("ETag", "\"etag-" + v->id + "\"");
    res.set_header("x-amz-version-id", v->id);
    res.set_header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT");
    for (const auto& [k, val] : v->put_headers) {
      if (k.rfind("x-amz-meta-", 0) == 0 || k.rfind("X-Amz-Meta-", 0) == 0 ||
          k == "Cache-Control") {
        res.set_header(k, val);
      }
    }
    res.set_content(v->body, v->put_headers.find("Content-Type")->second);
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, std::vector<Version>> objects_;  // Guarded by mu_.
  int next_ = 0;                                         // Guarded by mu_.
};

class RemoteObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = ScopedTempDir::Create("pw-remote-s3");
    ASSERT_TRUE(tmp.ok());
    tmp_ = std::make_unique<ScopedTempDir>(std::move(*tmp));
  }

  std::unique_ptr<RemoteObjectStore> Store(sigv4::Credentials creds = kCreds) {
    RemoteObjectStoreOptions o;
    o.endpoint_url = s3_.url();
    o.credentials = std::move(creds);
    o.backoff_base = std::chrono::milliseconds(1);
    auto s = RemoteObjectStore::Create(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(*s);
  }

  std::string File(const std::string& name, const std::string& content) {
    const std::string path = tmp_->path() + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  FakeS3 s3_;
  std::unique_ptr<ScopedTempDir> tmp_;
};

TEST_F(RemoteObjectStoreTest, PutSendsTheBodyAndHeadersAndHeadAndGetReadThemBack) {
  auto store = Store();
  std::string body(200000, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 7);
  PutOptions opts;
  opts.content_type = "text/html";
  opts.cache_control = "max-age=60";
  opts.canned_acl = "public-read";
  opts.metadata = {{"codepipeline-artifact-revision-summary", "Release 2"}};
  auto put = store->Put("b", "web/a b+c.html", File("in", body), opts);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->version_id, "ver1");
  EXPECT_EQ(put->etag, "etag-ver1");
  EXPECT_EQ(put->size, body.size());
  auto sent = s3_.Versions("web/a b+c.html");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].body, body);
  EXPECT_EQ(sent[0].put_headers.find("Content-Type")->second, "text/html");
  EXPECT_EQ(sent[0].put_headers.find("Cache-Control")->second, "max-age=60");
  EXPECT_EQ(sent[0].put_headers.find("x-amz-acl")->second, "public-read");

  auto head = store->Head("b", "web/a b+c.html");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->version_id, "ver1");
  EXPECT_EQ(head->etag, "etag-ver1");
  EXPECT_EQ(head->size, body.size());
  EXPECT_EQ(head->last_modified, 1445412480);
  EXPECT_EQ(head->content_type, "text/html");
  EXPECT_EQ(head->cache_control, "max-age=60");
  EXPECT_EQ(head->metadata["codepipeline-artifact-revision-summary"], "Release 2");

  const std::string out = tmp_->path() + "/out";
  auto got = store->Get("b", "web/a b+c.html", "", out);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(ReadFile(out), body);
  EXPECT_EQ(got->size, body.size());
  EXPECT_EQ(got->metadata["codepipeline-artifact-revision-summary"], "Release 2");
}

TEST_F(RemoteObjectStoreTest, VersionIdSelectsAnOlderVersion) {
  auto store = Store();
  ASSERT_TRUE(store->Put("b", "app.zip", File("one", "first"), {}).ok());
  ASSERT_TRUE(store->Put("b", "app.zip", File("two", "second"), {}).ok());
  const std::string out = tmp_->path() + "/out";
  auto old = store->Get("b", "app.zip", "ver1", out);
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(ReadFile(out), "first");
  EXPECT_EQ(old->version_id, "ver1");
  EXPECT_EQ(store->Head("b", "app.zip")->version_id, "ver2");
  auto missing = store->Get("b", "app.zip", "ver9", out);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().wire_name(), "NoSuchVersion");
}

TEST_F(RemoteObjectStoreTest, MissingObjectIsNoSuchKeyAndABadSignatureIsRefused) {
  auto store = Store();
  auto got = store->Get("b", "missing.zip", "", tmp_->path() + "/out");
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(got.status().wire_name(), "NoSuchKey");
  EXPECT_NE(got.status().message().find("s3://b/missing.zip"), std::string::npos);
  auto head = store->Head("b", "missing.zip");
  EXPECT_EQ(head.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(head.status().wire_name(), "NoSuchKey");

  auto wrong = Store({kCreds.access_key_id, "not-the-secret", ""});
  auto refused = wrong->Head("b", "missing.zip");
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  auto put = wrong->Put("b", "x", File("x", "x"), {});
  EXPECT_EQ(put.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(put.status().wire_name(), "SignatureDoesNotMatch");
}

TEST_F(RemoteObjectStoreTest, DeleteRemovesTheObjectAndAnAbsentOneIsFine) {
  auto store = Store();
  ASSERT_TRUE(store->Put("b", "artifacts/r.zip", File("r", "zip"), {}).ok());
  ASSERT_TRUE(store->Delete("b", "artifacts/r.zip").ok());
  EXPECT_EQ(s3_.deletes.load(), 1);
  EXPECT_EQ(store->Head("b", "artifacts/r.zip").status().wire_name(), "NoSuchKey");
  EXPECT_TRUE(store->Delete("b", "artifacts/r.zip").ok());  // Already gone.
  Status no_bucket = store->Delete("other", "artifacts/r.zip");
  EXPECT_EQ(no_bucket.code(), StatusCode::kNotFound);
  EXPECT_EQ(no_bucket.wire_name(), "NoSuchBucket");
  auto wrong = Store({kCreds.access_key_id, "not-the-secret", ""});
  EXPECT_EQ(wrong->Delete("b", "artifacts/r.zip").code(), StatusCode::kFailedPrecondition);
}

TEST_F(RemoteObjectStoreTest, ServerErrorsAreRetriedThenUnavailable) {
  auto store = Store();
  s3_.fail_with_500 = 2;  // The third attempt succeeds.
  ASSERT_TRUE(store->Put("b", "k", File("k", "body"), {}).ok());
  EXPECT_EQ(s3_.requests.load(), 3);
  s3_.fail_with_500 = 3;
  auto head = store->Head("b", "k");
  EXPECT_EQ(head.status().code(), StatusCode::kUnavailable);
}

TEST(RemoteObjectStore, UnreachableEndpointIsUnavailableAndAMalformedOneIsRefused) {
  RemoteObjectStoreOptions bad;
  bad.endpoint_url = "ftp://x";
  EXPECT_EQ(RemoteObjectStore::Create(bad).status().code(), StatusCode::kInvalidArgument);
  RemoteObjectStoreOptions o;
  o.endpoint_url = "http://127.0.0.1:1/base/";
  o.max_attempts = 1;
  auto store = RemoteObjectStore::Create(o);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->Head("b", "k").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ((*store)->UrlOf("b", "dir/a b.zip", "v 1"),
            "http://127.0.0.1:1/base/b/dir/a%20b.zip?versionId=v%201");
  EXPECT_EQ((*store)->UrlOf("b", "k", "null"), "http://127.0.0.1:1/base/b/k");
}

}  // namespace
}  // namespace pw::runner::remote_object_store_test
