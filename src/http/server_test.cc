#include "http/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace pw::http::server_test {
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

// A connection from `source` (an address of the loopback net, e.g. 127.0.0.2) to 127.0.0.1.
int ConnectFrom(int port, const char* source) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source, &from.sin_addr);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
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

// A malformed chunked body once closed the connection without a word.
TEST(HttpServer, MalformedChunkedBodyIsAJson400) {
  TestServer s;
  for (const std::string chunk :
       {"FFFFFFFFFFFFFFFFFF\r\n{}\r\n0\r\n\r\n", "zz\r\n{}\r\n0\r\n\r\n"}) {
    int fd = Connect(s.port());
    ASSERT_GE(fd, 0);
    std::string req =
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: text/plain\r\n\r\n" +
        chunk;
    ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    std::string reply = ReadAll(fd);
    close(fd);
    EXPECT_NE(reply.find("HTTP/1.1 400"), std::string::npos) << chunk << reply;
    EXPECT_NE(reply.find("Malformed HTTP request body"), std::string::npos) << reply;
  }
  auto res = s.Client().Post("/echo", "abc", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "abc");
}

// Before: "gzip, chunked" reached the handler as if the gzip bytes were the
// body, and an Expect other than 100-continue was ignored.
TEST(HttpServer, UnknownTransferCodingsAre501UnknownExpectations417AndHostlessRequests400) {
  TestServer s;
  struct Case {
    std::string headers;
    std::string want;
  };
  for (const Case& c :
       {Case{"Transfer-Encoding: gzip, chunked\r\n", "HTTP/1.1 501"},
        Case{"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", "HTTP/1.1 501"},
        Case{"Transfer-Encoding: chunked\r\nExpect: 200-ok\r\n", "HTTP/1.1 417"},
        // Before: no Host, or two, were served (RFC 9112: 400).
        Case{"Host: y\r\nTransfer-Encoding: chunked\r\n", "HTTP/1.1 400"}}) {
    int fd = Connect(s.port());
    ASSERT_GE(fd, 0);
    std::string req = "POST /echo HTTP/1.1\r\nHost: x\r\n" + c.headers +
                      "Content-Type: text/plain\r\n\r\n3\r\nqzq\r\n0\r\n\r\n";
    ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    std::string reply = ReadAll(fd);
    close(fd);
    EXPECT_EQ(reply.rfind(c.want, 0), 0u) << c.headers << reply;
    EXPECT_NE(reply.find("\"__type\""), std::string::npos) << reply;
    // Not echoed ("qzq" cannot occur in the answer's hex request id).
    EXPECT_EQ(reply.find("qzq"), std::string::npos) << reply;
  }
  {
    int nohost = Connect(s.port());
    ASSERT_GE(nohost, 0);
    std::string req = "GET /hello HTTP/1.1\r\n\r\n";
    ASSERT_EQ(write(nohost, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    std::string reply = ReadAll(nohost);
    close(nohost);
    EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
    EXPECT_NE(reply.find("Host header"), std::string::npos) << reply;
  }
  // "chunked" alone (any case) and Expect: 100-continue still work.
  int fd = Connect(s.port());
  ASSERT_GE(fd, 0);
  std::string req =
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  Chunked \r\n"
      "Expect: 100-Continue\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string reply = ReadAll(fd);
  close(fd);
  EXPECT_NE(reply.find("HTTP/1.1 200"), std::string::npos) << reply;
  EXPECT_NE(reply.find("abc"), std::string::npos) << reply;
}

// Sends `head` then up to `max_bytes` of `filler` repeated, stopping when the
// server closes; returns what the server answered.
std::string SendUntilRefused(int port, const std::string& head, const std::string& filler,
                             size_t max_bytes) {
  int fd = Connect(port);
  if (fd < 0) return "";
  timeval tv{};
  tv.tv_sec = 10;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (write(fd, head.data(), head.size()) != static_cast<ssize_t>(head.size())) {
    close(fd);
    return "";
  }
  for (size_t sent = 0; sent < max_bytes; sent += filler.size()) {
    if (send(fd, filler.data(), filler.size(), MSG_NOSIGNAL) <= 0) break;
  }
  shutdown(fd, SHUT_WR);
  std::string reply = ReadAll(fd);
  close(fd);
  return reply;
}

// Before: trailer lines (and a chunk-size line's extensions) were buffered
// without bound (572 MB sent in 2 s took the server from 24 to 650 MB), and a
// trailer field over 64 KiB threw out of the I/O loop (no answer).
TEST(HttpServer, UnboundedTrailersAndChunkExtensionsAre431) {
  TestServer s;
  const std::string chunked =
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string reply = SendUntilRefused(s.port(), chunked + "3\r\nabc\r\n0\r\n",
                                       "X-Trailer: " + std::string(1000, 't') + "\r\n", 64u << 20);
  EXPECT_EQ(reply.rfind("HTTP/1.1 431", 0), 0u) << reply.substr(0, 300);
  reply = SendUntilRefused(s.port(), chunked + "3\r\nabc\r\n0\r\nX-Big: ", std::string(4096, 'b'),
                           1u << 20);
  EXPECT_EQ(reply.rfind("HTTP/1.1 431", 0), 0u) << reply.substr(0, 300);
  reply = SendUntilRefused(s.port(), chunked + "3;ext=", std::string(4096, 'e'), 16u << 20);
  EXPECT_EQ(reply.rfind("HTTP/1.1 431", 0), 0u) << reply.substr(0, 300);
  // Trailers of a sane size are fine.
  reply = SendUntilRefused(s.port(), chunked + "3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n", "", 0);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply.substr(0, 300);
  EXPECT_NE(reply.find("abc"), std::string::npos);
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

// A request whose body starts and then stops: headers announce `length`
// bytes, one byte follows. Returns the socket.
int StartStalledBody(int port, const char* path, size_t length) {
  int fd = Connect(port);
  if (fd < 0) return -1;
  std::string head = std::string("POST ") + path +
                     " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(length) +
                     "\r\n\r\nx";
  if (write(fd, head.data(), head.size()) != static_cast<ssize_t>(head.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

// True once the server has closed `fd` (EOF or reset) before `deadline`.
bool ClosedBy(int fd, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) return false;
    timeval tv{};
    tv.tv_sec = left.count() / 1000;
    tv.tv_usec = static_cast<suseconds_t>((left.count() % 1000) * 1000);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
  }
}

TEST(HttpServer, ABodyThatStopsEndsItsConnectionAfterTheStallTimeout) {
  ServerOptions o;
  o.body_stall_seconds = 0.5;  // The whole-body deadline stays 30 s and more.
  TestServer s(o);
  int fd = StartStalledBody(s.port(), "/echo", 1000);
  ASSERT_GE(fd, 0);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(ClosedBy(fd, t0 + 10s)) << "a stalled body kept its connection open";
  close(fd);
  // A body that keeps coming, slower than the stall timeout between pieces in
  // total but never stopping for that long, is read to the end.
  fd = Connect(s.port());
  ASSERT_GE(fd, 0);
  std::string head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n";
  ASSERT_EQ(write(fd, head.data(), head.size()), static_cast<ssize_t>(head.size()));
  for (char ch : std::string("abcdef")) {
    std::this_thread::sleep_for(200ms);  // Pacing the client, not synchronisation.
    ASSERT_EQ(write(fd, &ch, 1), 1);
  }
  shutdown(fd, SHUT_WR);
  std::string got = ReadAll(fd);
  close(fd);
  EXPECT_NE(got.find("200 OK"), std::string::npos) << got;
  EXPECT_NE(got.find("abcdef"), std::string::npos) << got;
}

// Polls GET /hello with fresh connections until one is answered 200 (the
// server freed a slot) or `within` passes.
bool ServedWithin(const TestServer& s, std::chrono::seconds within) {
  auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    auto c = s.Client();
    c.set_connection_timeout(2, 0);
    auto res = c.Get("/hello");
    if (res && res->status == 200) return true;
    std::this_thread::sleep_for(50ms);  // Poll interval.
  }
  return false;
}

// Connections whose bodies stopped hold every slot; a new client is admitted
// by closing one of them, as an idle connection would be (before: reset until
// the stalled bodies' 30 s deadlines).
void ExpectStalledBodiesMakeRoom(ServerOptions o, size_t hold) {
  o.body_stall_seconds = 120;  // Only eviction can free a slot within the test.
  TestServer s(o);
  std::vector<int> fds;
  for (size_t i = 0; i < hold; ++i) {
    int fd = StartStalledBody(s.port(), "/echo", 1000);
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
  }
  bool served = ServedWithin(s, 15s);
  EXPECT_TRUE(served) << "no slot was freed from the stalled bodies";
  size_t closed = 0;
  for (int fd : fds) {
    if (ClosedBy(fd, std::chrono::steady_clock::now() + 100ms)) ++closed;
    close(fd);
  }
  EXPECT_GE(closed, 1u);
}

TEST(HttpServer, StalledBodiesAreEvictedAtThePerClientCap) {
  ServerOptions o;
  o.max_connections_per_client = 4;
  ExpectStalledBodiesMakeRoom(o, 4);
}

TEST(HttpServer, StalledBodiesAreEvictedAtTheServerCap) {
  ServerOptions o;
  o.max_connections = 4;
  ExpectStalledBodiesMakeRoom(o, 4);
}

TEST(HttpServer, ABodyArrivingAtAFairRateIsNotEvicted) {
  ServerOptions o;
  o.max_connections = 2;
  TestServer s(o, [](Server& server) {
    server.Route("GET", "/hello", {}, [](const Request&, Response& res) { res.body = "hi"; });
    RouteOptions stream;
    stream.body = BodyMode::kStream;
    stream.max_body_bytes = 64u << 20;
    server.Route("PUT", "/up", stream, [](const Request& req, Response& res) {
      res.body = "got " + std::to_string(req.body_size);
    });
  });
  // An upload at loopback speed, its body begun before other clients knock
  // at the cap: each knock closes an idle connection, never the upload.
  const size_t size = 32u << 20;
  int fd = Connect(s.port());
  ASSERT_GE(fd, 0);
  std::string head = "PUT /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
                     std::to_string(size) + "\r\n\r\n";
  ASSERT_EQ(write(fd, head.data(), head.size()), static_cast<ssize_t>(head.size()));
  std::string piece(64 * 1024, 'u');
  ASSERT_EQ(write(fd, piece.data(), piece.size()), static_cast<ssize_t>(piece.size()));
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (s.server().ReceivingBodiesForTest() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);  // Poll interval.
  }
  ASSERT_EQ(s.server().ReceivingBodiesForTest(), 1u);
  std::atomic<bool> done{false};
  std::atomic<int> knocks{0};
  std::thread knocker([&] {
    while (!done) {
      auto c = s.Client();
      if (auto r = c.Get("/hello"); r && r->status == 200) ++knocks;
    }
  });
  for (size_t sent = piece.size(); sent < size; sent += piece.size()) {
    ssize_t n = write(fd, piece.data(), std::min(piece.size(), size - sent));
    if (n <= 0) break;  // Closed: the assertions below say so.
    if (sent < size / 2 && knocks.load() < 3) std::this_thread::sleep_for(1ms);  // Pacing.
  }
  std::string reply = ReadAll(fd);
  close(fd);
  done = true;
  knocker.join();
  EXPECT_NE(reply.find("HTTP/1.1 200"), std::string::npos) << reply.substr(0, 200);
  EXPECT_NE(reply.find("got " + std::to_string(size)), std::string::npos);
  EXPECT_GT(knocks.load(), 0) << "no other client was served meanwhile";
}

// A client that asks for a large answer and never reads it. Before: its
// connection was held, never evictable, until the write deadline (30 s and
// more); now it is evictable once no byte moved for a second, and closed
// after the stall timeout.
TestServer BigAnswerServer(ServerOptions o) {
  return TestServer(o, [](Server& server) {
    server.Route("GET", "/hello", {}, [](const Request&, Response& res) { res.body = "hi"; });
    server.Route("GET", "/big", {},
                 [](const Request&, Response& res) { res.body.assign(16u << 20, 'b'); });
  });
}

int AskAndNeverRead(int port) {
  int fd = Connect(port);
  if (fd < 0) return -1;
  int small = 4096;  // Keep the kernel from buffering the whole answer.
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  std::string req = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST(HttpServer, AnAnswerTheClientDoesNotReadEndsAfterTheStallTimeout) {
  ServerOptions o;
  o.body_stall_seconds = 0.5;
  TestServer s = BigAnswerServer(o);
  int fd = AskAndNeverRead(s.port());
  ASSERT_GE(fd, 0);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (s.server().OpenConnectionsForTest() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);  // Poll interval.
  }
  EXPECT_EQ(s.server().OpenConnectionsForTest(), 0u) << "a stalled answer kept its connection";
  close(fd);
}

TEST(HttpServer, AnswersNobodyReadsAreEvictedAtTheCap) {
  ServerOptions o;
  o.max_connections = 4;
  o.body_stall_seconds = 120;  // Only eviction can free a slot within the test.
  TestServer s = BigAnswerServer(o);
  std::vector<int> fds;
  for (int i = 0; i < 4; ++i) {
    int fd = AskAndNeverRead(s.port());
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
  }
  bool served = ServedWithin(s, 15s);
  EXPECT_TRUE(served) << "no slot was freed from the unread answers";
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

// Before: a range or offset answer was read into memory on the I/O thread,
// cut at 64 MiB, and sent with a Content-Range naming the whole range (a
// resumed 100 MiB download silently got 64 MiB).
TEST(HttpServer, LargeRangesAndOffsetsStreamWhole) {
  char tmpl[] = "/tmp/pw-http-test-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  const off_t size = off_t{80} << 20;  // Sparse: zeros but for the marks.
  ASSERT_EQ(ftruncate(fd, size), 0);
  ASSERT_EQ(pwrite(fd, "A", 1, 1), 1);
  ASSERT_EQ(pwrite(fd, "Z", 1, size - 1), 1);
  ASSERT_EQ(pwrite(fd, "M", 1, 70 << 20), 1);
  close(fd);
  std::string path = tmpl;
  TestServer s({}, [path](Server& srv) {
    srv.Route("GET", "/f", {}, [path](const Request&, Response& res) { res.file = path; });
    srv.Route("GET", "/from70", {}, [path](const Request&, Response& res) {
      res.file = path;
      res.file_offset = 70u << 20;
    });
  });
  auto c = s.Client();
  c.set_read_timeout(60, 0);
  auto res = c.Get("/f", {{"Range", "bytes=1-"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 206);
  EXPECT_EQ(res->get_header_value("Content-Range"),
            "bytes 1-" + std::to_string(size - 1) + "/" + std::to_string(size));
  ASSERT_EQ(res->body.size(), static_cast<size_t>(size - 1));
  EXPECT_EQ(res->body.front(), 'A');
  EXPECT_EQ(res->body.back(), 'Z');
  res = c.Get("/from70");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->body.size(), static_cast<size_t>(size - (70 << 20)));
  EXPECT_EQ(res->body.front(), 'M');
  EXPECT_EQ(res->body.back(), 'Z');
  res = c.Get("/f", {{"Range", "bytes=-1"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "Z");
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

TEST(HttpServer, PipelinedRequestsOnOneConnectionAreAnsweredInOrder) {
  TestServer s;
  int fd = Connect(s.port());
  ASSERT_GE(fd, 0);
  // Three requests in one write: the second and third wait in the read buffer.
  std::string reqs =
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo"
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nthree";
  ASSERT_EQ(write(fd, reqs.data(), reqs.size()), static_cast<ssize_t>(reqs.size()));
  std::string reply = ReadAll(fd);  // Ends when the server closes after the third.
  close(fd);
  auto one = reply.find("\r\n\r\none");
  auto two = reply.find("\r\n\r\ntwo");
  auto three = reply.find("\r\n\r\nthree");
  ASSERT_NE(one, std::string::npos) << reply;
  ASSERT_NE(two, std::string::npos) << reply;
  ASSERT_NE(three, std::string::npos) << reply;
  EXPECT_LT(one, two);
  EXPECT_LT(two, three);
}

TEST(HttpServer, RouteCapturesBecomeParamsAndLiteralRoutesMatchOnlyThemselves) {
  TestServer s({}, [](Server& server) {
    server.Route("GET", "/", {}, [](const Request&, Response& res) { res.body = "root"; });
    server.Route("GET", R"(/logs/([0-9a-f]+)/(\w+))", {}, [](const Request& req, Response& res) {
      res.body = req.params.size() == 2 ? req.params[0] + "+" + req.params[1] : "?";
    });
  });
  auto c = s.Client();
  auto res = c.Get("/logs/abc123/tail");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "abc123+tail");
  res = c.Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "root");
  res = c.Get("//");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  res = c.Get("/logs/xyz/tail");  // Not hex: no route.
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST(HttpServer, HandlerExceptionIsAJson500WithoutItsMessage) {
  TestServer s({}, [](Server& server) {
    server.Route("GET", "/boom", {},
                 [](const Request&, Response&) { throw std::runtime_error("secret detail"); });
  });
  auto res = s.Client().Get("/boom");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);
  EXPECT_NE(res->body.find("\"InternalFailure\""), std::string::npos) << res->body;
  EXPECT_EQ(res->body.find("secret"), std::string::npos);
  for (const auto& [k, v] : res->headers) EXPECT_EQ(v.find("secret"), std::string::npos) << k;
}

TEST(HttpServer, LargeUploadIsStreamedToAFileWithItsSizeAndHash) {
  std::string seen_sha, seen_body;
  uint64_t seen_size = 0;
  TestServer s({}, [&](Server& server) {
    RouteOptions stream;
    stream.body = BodyMode::kStream;
    stream.max_body_bytes = 64u << 20;
    server.Route("PUT", "/up", stream, [&](const Request& req, Response& res) {
      seen_sha = req.body_sha256;
      seen_size = req.body_size;
      std::ifstream in(req.body_file, std::ios::binary);
      seen_body.assign(std::istreambuf_iterator<char>(in), {});
      res.body = "stored";
    });
  });
  std::string body(8u << 20, 'z');  // 8 MiB of 'z'.
  for (size_t i = 0; i < body.size(); i += 4096) body[i] = static_cast<char>('a' + (i / 4096) % 26);
  auto c = s.Client();
  c.set_write_timeout(30, 0);
  auto res = c.Put("/up", body, "application/octet-stream");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "stored");
  EXPECT_EQ(seen_size, body.size());
  EXPECT_TRUE(seen_body == body);
  EXPECT_EQ(seen_sha.size(), 64u);
  // The same body again hashes the same; a different one does not.
  std::string first = seen_sha;
  res = c.Put("/up", body, "application/octet-stream");
  ASSERT_TRUE(res);
  EXPECT_EQ(seen_sha, first);
  body[0] = '!';
  res = c.Put("/up", body, "application/octet-stream");
  ASSERT_TRUE(res);
  EXPECT_NE(seen_sha, first);
}

TEST(HttpServer, StopLetsAnInFlightHandlerFinishAndAnswer) {
  std::atomic<bool> entered{false};
  Server server(ServerOptions{});
  server.Route("GET", "/slow", {}, [&](const Request&, Response& res) {
    entered = true;
    std::this_thread::sleep_for(300ms);
    res.body = "done";
  });
  auto bound = server.Bind("127.0.0.1:0");
  ASSERT_TRUE(bound.ok());
  const int port = std::stoi(bound->substr(bound->rfind(':') + 1));
  std::atomic<bool> served{false};
  std::thread serving([&] {
    EXPECT_TRUE(server.Serve().ok());
    served = true;
  });
  int status = 0;
  std::string body;
  std::thread client([&] {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(10, 0);
    auto res = c.Get("/slow");
    if (res) {
      status = res->status;
      body = res->body;
    }
  });
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!entered && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(entered);
  server.Stop();
  client.join();
  serving.join();
  EXPECT_TRUE(served);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "done");
  // Nothing listens any more.
  EXPECT_LT(Connect(port), 0);
}

// Handlers are taken in turns by client address: a request of another client
// runs before the rest of one client's backlog. First come, first served ran
// it after all of them (200 connections of one client sending UpdatePipeline
// put another client's calls 250 ms behind).
TEST(HttpServer, AnotherClientsRequestGoesBeforeOneClientsBacklog) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::vector<std::string> order;  // The peers of the handlers, in the order they ran.
  ServerOptions o;
  o.handler_threads = 1;
  TestServer s(o, [&](Server& server) {
    server.Route("GET", "/work", {}, [&](const Request& req, Response& res) {
      std::unique_lock lock(mu);
      order.push_back(req.peer);
      cv.wait(lock, [&] { return release; });
      res.body = "ok";
    });
  });
  auto poll = [](const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(2ms);
    }
    return done();
  };
  // A second client address: the loopback net is 127.0.0.0/8 on Linux, unless a
  // container gave `lo` only 127.0.0.1.
  if (int probe = ConnectFrom(s.port(), "127.0.0.2"); probe >= 0) {
    close(probe);
  } else {
    GTEST_SKIP() << "cannot connect from 127.0.0.2 here";
  }
  const std::string get = "GET /work HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  std::vector<int> fds;
  auto send_from = [&](const char* source) {
    int fd = ConnectFrom(s.port(), source);
    ASSERT_GE(fd, 0) << source;
    ASSERT_EQ(write(fd, get.data(), get.size()), static_cast<ssize_t>(get.size()));
    fds.push_back(fd);
  };
  // One client: its first request holds the only handler thread, ten more wait.
  send_from("127.0.0.1");
  ASSERT_TRUE(poll([&] {
    std::lock_guard lock(mu);
    return order.size() == 1;
  }));
  for (int i = 0; i < 10; ++i) send_from("127.0.0.1");
  ASSERT_TRUE(poll([&] { return s.server().WaitingHandlersForTest() == 10; }));
  // Another client's request comes last.
  send_from("127.0.0.2");
  ASSERT_TRUE(poll([&] { return s.server().WaitingHandlersForTest() == 11; }));
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  for (int fd : fds) {
    EXPECT_NE(ReadAll(fd).find("200 OK"), std::string::npos);
    close(fd);
  }
  std::lock_guard lock(mu);
  ASSERT_EQ(order.size(), 12u);
  EXPECT_EQ(order[1], "127.0.0.2");  // Right after the request that was running.
  EXPECT_EQ(std::count(order.begin(), order.end(), "127.0.0.1"), 11);
}

// RouteOptions::fast answers on the I/O thread (never a pool thread) when it
// can; when it declines, throws, the body is too large for it or the route
// needs authentication, the handler answers on the pool.
TEST(HttpServer, FastHandlerAnswersOnTheIoThreadOrFallsBackToTheHandler) {
  std::atomic<int> fast_calls{0}, slow_calls{0};
  std::mutex mu;
  std::set<std::thread::id> fast_threads, slow_threads;
  auto routes = [&](bool with_auth) {
    return [&, with_auth](Server& server) {
      RouteOptions o;
      o.body = BodyMode::kMemory;
      o.max_body_bytes = 1 << 16;
      o.fast = [&](const Request& req, Response& res) {
        ++fast_calls;
        {
          std::lock_guard lock(mu);
          fast_threads.insert(std::this_thread::get_id());
        }
        if (req.body == "throw") throw std::runtime_error("fast failed");
        if (req.body.rfind("fast", 0) != 0) return false;
        res.body = "fast:" + std::to_string(req.body.size());
        return true;
      };
      server.Route("POST", "/read", o, [&](const Request& req, Response& res) {
        ++slow_calls;
        {
          std::lock_guard lock(mu);
          slow_threads.insert(std::this_thread::get_id());
        }
        res.body = "slow:" + std::to_string(req.body.size());
      });
      if (with_auth) {
        server.SetAuthenticator([](AuthPhase, Request& req, Response&) {
          req.caller = "tester";
          return Status::Ok();
        });
      }
    };
  };
  {
    TestServer s({}, routes(false));
    auto c = s.Client();
    for (int i = 0; i < 20; ++i) {
      auto r = c.Post("/read", "fast please", "text/plain");
      ASSERT_TRUE(r);
      EXPECT_EQ(r->body, "fast:11");
    }
    EXPECT_EQ(fast_calls.load(), 20);
    EXPECT_EQ(slow_calls.load(), 0);
    auto declined = c.Post("/read", "other", "text/plain");
    ASSERT_TRUE(declined);
    EXPECT_EQ(declined->body, "slow:5");
    auto threw = c.Post("/read", "throw", "text/plain");
    ASSERT_TRUE(threw);
    EXPECT_EQ(threw->body, "slow:5");
    const int before = fast_calls.load();
    std::string big = "fast" + std::string(kMaxFastBodyBytes, 'x');
    auto large = c.Post("/read", big, "text/plain");
    ASSERT_TRUE(large);
    EXPECT_EQ(large->body, "slow:" + std::to_string(big.size()));
    EXPECT_EQ(fast_calls.load(), before);  // Not even asked.
    EXPECT_EQ(slow_calls.load(), 3);
    std::lock_guard lock(mu);
    ASSERT_EQ(fast_threads.size(), 1u);  // The one I/O thread...
    for (const auto& t : slow_threads) EXPECT_EQ(fast_threads.count(t), 0u);  // ...not the pool.
  }
  fast_calls = 0;
  slow_calls = 0;
  {
    TestServer s({}, routes(true));
    auto r = s.Client().Post("/read", "fast please", "text/plain");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "slow:11");  // Authentication runs on the pool, so does the handler.
    EXPECT_EQ(fast_calls.load(), 0);
    EXPECT_EQ(slow_calls.load(), 1);
  }
}

}  // namespace
}  // namespace pw::http::server_test
