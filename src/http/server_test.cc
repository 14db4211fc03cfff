#include "http/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

namespace pw::http {
namespace {

using namespace std::chrono_literals;

// A real server on a free port, serving in a thread.
class TestServer {
 public:
  explicit TestServer(ServerOptions o = {}, std::function<void(Server&)> routes = nullptr)
      : server_(std::move(o)) {
    if (routes) {
      routes(server_);
    } else {
      server_.Route("GET", "/hello", {}, [](const Request&, Response& res) {
        res.SetHeader("Content-Type", "text/plain");
        res.body = "hi";
      });
      RouteOptions mem;
      mem.body = BodyMode::kMemory;
      mem.max_body_bytes = 1024;
      server_.Route("POST", "/echo", mem,
                    [](const Request& req, Response& res) { res.body = req.body; });
    }
    auto bound = server_.Bind("127.0.0.1:0");
    EXPECT_TRUE(bound.ok()) << bound.status().ToString();
    addr_ = *bound;
    port_ = std::stoi(addr_.substr(addr_.rfind(':') + 1));
    thread_ = std::thread([this] { (void)server_.Serve(); });
  }
  ~TestServer() {
    server_.Stop();
    thread_.join();
  }
  httplib::Client Client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(10, 0);
    return c;
  }
  int port() const { return port_; }
  const std::string& addr() const { return addr_; }
  Server& server() { return server_; }

 private:
  Server server_;
  std::string addr_;
  int port_ = 0;
  std::thread thread_;
};

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST(HttpServer, ServesARouteAndKeepsTheConnectionAlive) {
  TestServer s;
  auto c = s.Client();
  c.set_keep_alive(true);
  for (int i = 0; i < 3; ++i) {
    auto res = c.Get("/hello");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "hi");
  }
  EXPECT_EQ(s.server().OpenConnectionsForTest(), 1u);
}

TEST(HttpServer, UnknownPathIsJson404AndWrongMethodIs405) {
  TestServer s;
  auto res = s.Client().Get("/nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_NE(res->body.find("\"__type\""), std::string::npos);
  res = s.Client().Delete("/hello");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
}

TEST(HttpServer, BodyOverTheLimitIsRefusedFromItsContentLength) {
  TestServer s;
  int fd = Connect(s.port());
  ASSERT_GE(fd, 0);
  // Announces 250 MB and sends none of it: the answer comes at once.
  std::string head =
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 250000000\r\n"
      "Content-Type: text/plain\r\n\r\n";
  ASSERT_EQ(write(fd, head.data(), head.size()), static_cast<ssize_t>(head.size()));
  std::string reply = ReadAll(fd);
  close(fd);
  EXPECT_NE(reply.find("413"), std::string::npos) << reply;
  EXPECT_NE(reply.find("RequestEntityTooLargeException"), std::string::npos);
}

TEST(HttpServer, EchoesABody) {
  TestServer s;
  auto res = s.Client().Post("/echo", "abc", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "abc");
}

TEST(HttpServer, HugeHeadersAre431) {
  TestServer s;
  auto res = s.Client().Get("/hello", {{"X-Big", std::string(40000, 'a')}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 431);
}

TEST(HttpServer, SecondServerOnTheSamePortFailsToBind) {
  TestServer s;
  Server other(ServerOptions{});
  auto bound = other.Bind(s.addr());
  ASSERT_FALSE(bound.ok());
  EXPECT_NE(bound.status().message().find("already in use"), std::string::npos);
}

TEST(HttpServer, SlowHeaderDripsDoNotBlockOtherClients) {
  ServerOptions o;
  o.handler_threads = 2;
  TestServer s(o);
  std::vector<int> fds;
  for (int i = 0; i < 64; ++i) {
    int fd = Connect(s.port());
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "GET /hel", 8), 8);  // Never finishes its headers.
    fds.push_back(fd);
  }
  auto t0 = std::chrono::steady_clock::now();
  auto res = s.Client().Get("/hello");
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_LT(took, 2s);
  for (int fd : fds) close(fd);
}

TEST(HttpServer, FileRangesAreSingleAndBounded) {
  char tmpl[] = "/tmp/pw-http-test-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  std::string content(8192, 'x');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>('a' + i % 26);
  ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  close(fd);
  std::string path = tmpl;
  TestServer s({}, [path](Server& srv) {
    srv.Route("GET", "/f", {}, [path](const Request&, Response& res) { res.file = path; });
  });
  auto res = s.Client().Get("/f", {{"Range", "bytes=10-19"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 206);
  EXPECT_EQ(res->body, content.substr(10, 10));
  // 2,700 ranges over the file: answered with the file once, not 2,700 times.
  std::string ranges = "bytes=";
  for (int i = 0; i < 2700; ++i) ranges += (i ? "," : "") + std::string("0-8191");
  res = s.Client().Get("/f", {{"Range", ranges}});
  ASSERT_TRUE(res);
  EXPECT_LE(res->body.size(), content.size());
  auto head = s.Client().Head("/f");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->get_header_value("Content-Length"), "8192");
  unlink(tmpl);
}

TEST(HttpServer, ParkedRequestHoldsNoThreadAndIsWoken) {
  ServerOptions o;
  o.handler_threads = 1;
  o.park_recheck_seconds = 30;  // Only WakeParked can release it in time.
  std::atomic<bool> ready{false};
  TestServer s(o, [&ready](Server& srv) {
    srv.Route("GET", "/wait", {}, [&ready](const Request&, Response& res) {
      if (!ready) {
        res.park = true;
        return;
      }
      res.body = "done";
    });
    srv.Route("GET", "/hello", {}, [](const Request&, Response& res) { res.body = "hi"; });
  });
  std::thread waiter([&s] {
    auto res = s.Client().Get("/wait");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->body, "done");
  });
  // The single handler thread stays free for others while /wait is parked.
  for (int i = 0; i < 5; ++i) {
    auto res = s.Client().Get("/hello");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->body, "hi");
  }
  ready = true;
  s.server().WakeParked();
  waiter.join();
}

TEST(HttpServer, PerClientCapClosesTheIdlestConnection) {
  ServerOptions o;
  o.max_connections_per_client = 8;
  TestServer s(o);
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) fds.push_back(Connect(s.port()));
  // A fresh client from the same address is still served: idle ones make room.
  auto res = s.Client().Get("/hello");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (s.server().OpenConnectionsForTest() > 8 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_LE(s.server().OpenConnectionsForTest(), 8u);
  for (int fd : fds) close(fd);
}

}  // namespace
}  // namespace pw::http
