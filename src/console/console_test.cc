#include "console/console.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <thread>

#include "console/assets.h"
#include "http/server.h"

namespace pw::console::console_test {
namespace {

// The real HTTP front with only the console routes, on a free port.
class ConsoleServer {
 public:
  ConsoleServer() : server_(http::ServerOptions{}) {
    RegisterConsole(server_);
    auto bound = server_.Bind("127.0.0.1:0");
    EXPECT_TRUE(bound.ok());
    port_ = std::stoi(bound->substr(bound->rfind(':') + 1));
    thread_ = std::thread([this] { (void)server_.Serve(); });
    // Bind already listens: clients queue in the backlog until accepted.
  }
  ~ConsoleServer() {
    server_.Stop();
    thread_.join();
  }
  httplib::Client Client() const { return httplib::Client("127.0.0.1", port_); }

 private:
  http::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST(Console, RootRedirectsToConsole) {
  ConsoleServer s;
  auto res = s.Client().Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 302);
  EXPECT_EQ(res->get_header_value("Location"), "/console/");
  res = s.Client().Get("/console");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 301);
  EXPECT_EQ(res->get_header_value("Location"), "/console/");
}

TEST(Console, ServesTheAppWithSameOriginPolicy) {
  ConsoleServer s;
  auto res = s.Client().Get("/console/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(res->body.find("console.js"), std::string::npos);
  EXPECT_NE(res->get_header_value("Content-Security-Policy").find("default-src 'self'"),
            std::string::npos);
  EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(res->get_header_value("Cache-Control"), "no-cache");

  auto js = s.Client().Get("/console/console.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->status, 200);
  EXPECT_EQ(js->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  auto css = s.Client().Get("/console/console.css");
  ASSERT_TRUE(css);
  EXPECT_EQ(css->status, 200);
  EXPECT_EQ(css->get_header_value("Content-Type"), "text/css; charset=utf-8");
}

TEST(Console, UnknownFileIsNotFound) {
  ConsoleServer s;
  auto res = s.Client().Get("/console/nope.js");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; charset=utf-8");
}

TEST(Console, MatchingEtagIsNotModified) {
  ConsoleServer s;
  auto first = s.Client().Get("/console/console.css");
  ASSERT_TRUE(first);
  const std::string etag = first->get_header_value("ETag");
  ASSERT_FALSE(etag.empty());
  auto again = s.Client().Get("/console/console.css", {{"If-None-Match", etag}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);
  EXPECT_TRUE(again->body.empty());
  auto stale = s.Client().Get("/console/console.css", {{"If-None-Match", "\"0\""}});
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->status, 200);
}

TEST(ConsoleAssets, EmbedsTheAppAndNothingFromElsewhere) {
  for (const char* name : {"index.html", "console.js", "console.css", "favicon.svg"}) {
    const Asset* a = FindAsset(name);
    ASSERT_NE(a, nullptr) << name;
    EXPECT_FALSE(a->body.empty()) << name;
  }
  // Works offline: no page, style or script reaches for another origin (a CDN).
  for (const RawAsset& r : EmbeddedAssetsData()) {
    if (ContentTypeFor(r.name).find("image/") == 0) continue;  // SVG namespaces are URLs.
    EXPECT_EQ(r.body.find("http://"), std::string_view::npos) << r.name;
    EXPECT_EQ(r.body.find("https://"), std::string_view::npos) << r.name;
  }
}

TEST(ConsoleAssets, ContentTypeByExtension) {
  EXPECT_EQ(ContentTypeFor("a.html"), "text/html; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("a.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("a.css"), "text/css; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("a.svg"), "image/svg+xml");
  EXPECT_EQ(ContentTypeFor("Makefile"), "application/octet-stream");
}

}  // namespace
}  // namespace pw::console::console_test
