#include "http/server.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <re2/re2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "common/check.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "http/fair_scheduler.h"

namespace pw::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// Named, not anonymous: Server::Impl has a field of this type (GCC's -Wsubobject-linkage in a
// unity build).
namespace server_internal {
struct RouteEntry {
  std::string method;
  std::unique_ptr<RE2> pattern;
  // The pattern when it is a plain path ("/", "/console/api/session"):
  // compared as a string, without the regex engine or any allocation.
  std::optional<std::string> literal;
  RouteOptions options;
  Handler handler;
};
}  // namespace server_internal
using server_internal::RouteEntry;

namespace {

constexpr uint64_t kMaxDrainBytes = 32u << 20;  // Discarded after an early refusal.
// What a connection's read buffer holds at most: the headers (max_header_bytes
// is capped below it), and later a chunk-size line with its extensions or the
// trailers, which the parser needs whole. Beast bounds neither, so without
// this a client could send trailer lines forever into memory; and below 64 KiB
// no field can reach the size at which Beast's field container throws.
constexpr size_t kMaxReadBuffer = 64 * 1024;

std::chrono::milliseconds Ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// Streams a file through SHA-256; returns lower-case hex, or "" on error.
std::string Sha256File(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 16);
  bool ok = true;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      ok = false;
      break;
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  unsigned char md[32];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  if (!ok) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

// A file as Beast's file_body sees it, cut to the bytes [start, start +
// length): a range or offset answer streams from the file like a whole one
// (Beast 1.81's file_body starts at byte 0 only) instead of being read into
// memory on the I/O thread. Read-only.
class FileWindow {
 public:
  FileWindow() = default;
  bool is_open() const { return file_.is_open(); }
  void close(beast::error_code& ec) { file_.close(ec); }
  void open(const char* path, beast::file_mode mode, beast::error_code& ec) {
    file_.open(path, mode, ec);
  }
  void set_window(uint64_t start, uint64_t length) {
    start_ = start;
    length_ = length;
    pos_ = 0;
  }
  uint64_t size(beast::error_code& ec) const {
    ec = {};
    return length_;
  }
  uint64_t pos(beast::error_code& ec) const {
    ec = {};
    return pos_;
  }
  void seek(uint64_t offset, beast::error_code& ec) {
    ec = {};
    pos_ = std::min(offset, length_);
  }
  size_t read(void* buffer, size_t n, beast::error_code& ec) {
    ec = {};
    n = static_cast<size_t>(std::min<uint64_t>(n, length_ - pos_));
    if (n == 0) return 0;
    ssize_t got;
    do {
      got = ::pread(file_.native_handle(), buffer, n, static_cast<off_t>(start_ + pos_));
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
      ec.assign(errno, boost::system::system_category());
      return 0;
    }
    pos_ += static_cast<uint64_t>(got);
    return static_cast<size_t>(got);
  }
  size_t write(const void*, size_t, beast::error_code& ec) {
    ec = make_error_code(boost::system::errc::operation_not_supported);
    return 0;
  }

 private:
  beast::file file_;
  uint64_t start_ = 0;
  uint64_t length_ = 0;
  uint64_t pos_ = 0;
};
using FileWindowBody = bhttp::basic_file_body<FileWindow>;

// Parses a single "bytes=a-b" range against `size`. Returns false when the
// header is absent, malformed or names several ranges (then the whole file is
// served: a server may ignore Range, and several ranges would multiply the
// reply). `unsatisfiable` is set for a well-formed range past the end.
bool ParseSingleRange(std::string_view h, uint64_t size, uint64_t& first, uint64_t& last,
                      bool& unsatisfiable) {
  unsatisfiable = false;
  if (h.substr(0, 6) != "bytes=") return false;
  h.remove_prefix(6);
  if (h.find(',') != std::string_view::npos) return false;
  auto dash = h.find('-');
  if (dash == std::string_view::npos) return false;
  auto num = [](std::string_view s, uint64_t& v) {
    if (s.empty() || s.size() > 19) return false;
    v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    return true;
  };
  std::string_view a = h.substr(0, dash);
  std::string_view b = h.substr(dash + 1);
  if (a.empty()) {  // Suffix: the last N bytes.
    uint64_t n = 0;
    if (!num(b, n)) return false;
    if (n == 0 || size == 0) {
      unsatisfiable = true;
      return true;
    }
    first = n >= size ? 0 : size - n;
    last = size - 1;
    return true;
  }
  if (!num(a, first)) return false;
  if (b.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else if (!num(b, last) || last < first) {
    return false;
  }
  if (first >= size) {
    unsatisfiable = true;
    return true;
  }
  if (last >= size) last = size - 1;
  return true;
}

// True for a Transfer-Encoding value that is "chunked" alone (any case,
// optional whitespace).
bool IsJustChunked(std::string_view te) {
  while (!te.empty() && (te.front() == ' ' || te.front() == '\t')) te.remove_prefix(1);
  while (!te.empty() && (te.back() == ' ' || te.back() == '\t')) te.remove_suffix(1);
  return beast::iequals(te, "chunked");
}

}  // namespace

// ---------------------------------------------------------------------------
// Connection bookkeeping shared by plain and TLS connections. Everything here
// runs on the single I/O thread, so none of it needs a lock.

class ConnBase {
 public:
  virtual ~ConnBase() = default;
  virtual void Close() = 0;
  bool idle() const { return idle_; }
  // A handler runs (or is about to) for its current request.
  bool busy() const { return busy_; }
  Clock::time_point idle_since() const { return idle_since_; }
  const std::string& peer() const { return peer_; }
  // Reading a request body or writing a response that lags: no byte has
  // moved for a second, or bytes move slower than `min_rate` per second after
  // a second's grace (a client that starts a body and stops, or does not read
  // its answers). Such a connection holds a slot for a client that is not
  // using it, and is closed to admit another as an idle one is. `since`
  // orders candidates.
  bool lagging(Clock::time_point now, double min_rate, Clock::time_point& since) const {
    if (!in_body_ && !in_write_) return false;
    double elapsed = std::chrono::duration<double>(now - body_started_).count();
    bool stalled = now - last_progress_ >= std::chrono::seconds(1);
    bool slow = static_cast<double>(body_bytes_) < min_rate * (elapsed - 1.0);
    since = last_progress_;
    return stalled || slow;
  }

 protected:
  bool idle_ = true;  // Waiting for a request's first bytes.
  bool busy_ = false;
  Clock::time_point idle_since_ = Clock::now();
  std::string peer_;
  // Progress of the body being read (in_body_) or the answer being written
  // (in_write_).
  bool in_body_ = false;
  bool in_write_ = false;
  Clock::time_point body_started_;
  Clock::time_point last_progress_;
  uint64_t body_bytes_ = 0;
};

class Server::Impl {
 public:
  explicit Impl(ServerOptions o)
      : options(std::move(o)),
        pool(static_cast<size_t>(std::max(1, options.handler_threads))),
        sched(static_cast<size_t>(std::max(1, options.handler_threads)),
              [this](FairScheduler::Task t) { asio::post(pool, std::move(t)); }) {}

  ServerOptions options;
  asio::io_context ioc{1};
  asio::thread_pool pool;
  // Every task for the pool goes through it, keyed by the peer's address: a
  // client's backlog waits behind other clients' next requests.
  FairScheduler sched;
  std::optional<tcp::acceptor> acceptor;
  std::unique_ptr<ssl::context> tls;
  std::vector<RouteEntry> routes;
  Authenticator auth;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;

  // Open connections by peer, oldest first. I/O thread only.
  std::map<std::string, std::list<std::weak_ptr<ConnBase>>> by_peer;
  size_t open = 0;
  std::atomic<size_t> open_count{0};
  std::atomic<size_t> receiving_bodies{0};  // Connections with in_body_ set.
  // Timers of parked requests. I/O thread only.
  std::list<std::weak_ptr<asio::steady_timer>> parked;
  bool stopping = false;
  std::atomic<bool> dead{false};  // Set by ~Server: connections must not post any more.

  void Accept();
  template <typename Stream>
  void Start(tcp::socket socket);
  bool Admit(const std::string& peer);
  void Register(const std::shared_ptr<ConnBase>& c);
  void Unregister(const ConnBase* c);
  void CloseAll();

  // Route lookup: entry, or nullptr with `status` 404/405.
  const RouteEntry* Find(const Request& req, std::vector<std::string>& params, int& status) const;
  // The authenticator for `route`, or nullptr when none applies.
  const Authenticator* AuthFor(const RouteEntry& route) const {
    if (route.options.authenticator) return &route.options.authenticator;
    if (route.options.auth == AuthMode::kRequired && auth) return &auth;
    return nullptr;
  }
};

namespace {

// One HTTP/1.1 connection: read headers, authenticate, read the body, run the
// handler on the pool, write, repeat while kept alive.
template <typename Stream>
class Conn : public ConnBase, public std::enable_shared_from_this<Conn<Stream>> {
 public:
  Conn(Server::Impl& s, Stream stream, std::string peer) : s_(s), stream_(std::move(stream)) {
    peer_ = std::move(peer);
  }
  ~Conn() override {
    if (!body_file_.empty()) ::unlink(body_file_.c_str());
    s_.Unregister(this);
  }

  void Run() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      beast::get_lowest_layer(stream_).expires_after(Ms(s_.options.header_timeout_seconds));
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->Close();
                                self->ReadHeader();
                              });
    } else {
      ReadHeader();
    }
  }

  void Close() override {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    if (parked_) parked_->cancel();
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(stream_).close();
  }

 private:
  using Self = Conn<Stream>;

  void ReadHeader() {
    if (closed_) return;
    idle_ = true;
    idle_since_ = Clock::now();
    req_ = Request{};
    res_ = Response{};
    route_ = nullptr;
    header_parser_.emplace();
    header_parser_->header_limit(
        static_cast<std::uint32_t>(std::min(s_.options.max_header_bytes, kMaxReadBuffer - 1024)));
    header_parser_->eager(false);
    // Body limits are the route's, checked once the headers are read.
    header_parser_->body_limit((std::numeric_limits<std::uint64_t>::max)());
    double t = first_ ? s_.options.header_timeout_seconds : s_.options.idle_timeout_seconds;
    first_ = false;
    beast::get_lowest_layer(stream_).expires_after(Ms(t));
    bhttp::async_read_header(
        stream_, buffer_, *header_parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    idle_ = false;
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || closed_) return Close();
    if (ec == bhttp::error::header_limit) {
      return Fail(431, "RequestHeaderFieldsTooLarge",
                  "The request's headers are larger than " +
                      std::to_string(s_.options.max_header_bytes) + " bytes.");
    }
    if (ec == beast::error::timeout) return Close();
    if (ec) return Fail(400, "SerializationException", "Malformed HTTP request: " + ec.message());
    auto& h = header_parser_->get();
    req_.method = std::string(h.method_string());
    req_.target = std::string(h.target());
    auto q = req_.target.find('?');
    req_.path = req_.target.substr(0, q);
    req_.query = q == std::string::npos ? "" : req_.target.substr(q + 1);
    for (const auto& f : h) req_.headers.emplace_back(f.name_string(), f.value());
    req_.peer = peer_;
    req_.tls = std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>;
    req_.received = Clock::now();
    keep_alive_ = h.keep_alive();
    size_t hosts = 0;
    for (const auto& [name, value] : req_.headers) {
      if (beast::iequals(name, "Host")) ++hosts;
      if (!beast::iequals(name, "Transfer-Encoding") || IsJustChunked(value)) continue;
      // A coding we would not undo (gzip, …) must not reach a handler as if
      // it were the body (RFC 9112 6.1: 501).
      return Fail(501, "NotImplemented",
                  "Transfer-Encoding '" + value.substr(0, 100) +
                      "' is not supported: send the body as is or with 'chunked' alone.");
    }
    if (hosts > 1 || (hosts == 0 && h.version() >= 11)) {
      // RFC 9112 3.2: proxies and this server could disagree on the target.
      return Fail(400, "SerializationException",
                  hosts == 0
                      ? "An HTTP/1.1 request must carry a Host header."
                      : "A request carries one Host header, not " + std::to_string(hosts) + ".");
    }
    if (std::string expect = req_.Header("Expect");
        !expect.empty() && !beast::iequals(expect, "100-continue")) {
      return Fail(417, "ExpectationFailed",
                  "Expect: '" + expect.substr(0, 100) + "' cannot be met (only 100-continue).");
    }
    int status = 0;
    route_ = s_.Find(req_, req_.params, status);
    if (route_ == nullptr) {
      if (status == 405)
        return Fail(405, "MethodNotAllowed",
                    "Method " + req_.method + " is not allowed on " + req_.path + ".");
      return Fail(404, "UnknownOperationException",
                  "Not found: " + req_.path.substr(0, 200) + " (the API is POST /).");
    }
    const RouteOptions& ro = route_->options;
    auto len = header_parser_->content_length();
    bool has_body = (len && *len > 0) || header_parser_->chunked();
    if (has_body && ro.body == BodyMode::kNone) {
      return Fail(413, "RequestEntityTooLargeException", "This route takes no request body.");
    }
    if (len && *len > ro.max_body_bytes) {
      return Fail(413, "RequestEntityTooLargeException",
                  "The request body is " + std::to_string(*len) + " bytes; the limit is " +
                      std::to_string(ro.max_body_bytes) + ".");
    }
    if (const Authenticator* auth = AuthFor(); auth != nullptr) {
      // Authentication may take locks (sessions, job credentials): on the pool.
      s_.sched.Post(peer_, [self = this->shared_from_this(), auth] {
        Response refusal;
        Status st = (*auth)(AuthPhase::kHeaders, self->req_, refusal);
        asio::post(self->s_.ioc, [self, st, refusal = std::move(refusal)]() mutable {
          if (!st.ok()) {
            if (refusal.status == 200)
              refusal.JsonError(403, "AccessDeniedException", st.message());
            self->keep_alive_ = false;
            self->drain_ = true;
            self->res_ = std::move(refusal);
            return self->Write();
          }
          self->ReadBody();
        });
      });
      return;
    }
    ReadBody();
  }

  // The authenticator for the current route, or nullptr when none applies.
  const Authenticator* AuthFor() const { return s_.AuthFor(*route_); }

  void ReadBody() {
    if (closed_) return;
    const RouteOptions& ro = route_->options;
    auto len = header_parser_->content_length();
    bool has_body = (len && *len > 0) || header_parser_->chunked();
    if (!has_body || ro.body == BodyMode::kNone) return RunHandler();
    if (beast::iequals(req_.Header("Expect"), "100-continue")) {
      // The client waits for this before sending the body (AWS CLI uploads).
      continue_ =
          std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, 11);
      beast::get_lowest_layer(stream_).expires_after(Ms(s_.options.header_timeout_seconds));
      bhttp::async_write(stream_, *continue_,
                         [self = this->shared_from_this()](beast::error_code ec, size_t) {
                           if (ec) return self->Close();
                           self->ReadBodyNow();
                         });
      return;
    }
    ReadBodyNow();
  }

  void ReadBodyNow() {
    const RouteOptions& ro = route_->options;
    auto len = header_parser_->content_length();
    double expect = static_cast<double>(len ? *len : ro.max_body_bytes);
    SetInBody(true);
    BeginTransfer(expect);
    if (ro.body == BodyMode::kMemory) {
      mem_parser_.emplace(std::move(*header_parser_));
      mem_parser_->body_limit(ro.max_body_bytes);
      ReadBodySome(*mem_parser_, [](Self& self) {
        self.req_.body = std::move(self.mem_parser_->get().body());
        self.req_.body_size = self.req_.body.size();
        self.mem_parser_.reset();
        self.RunHandler();
      });
      return;
    }
    std::string tmpl = ro.temp_dir + "/pw-upload-XXXXXX";
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0) {
      return Fail(500, "InternalFailure", "cannot create a temporary file for the upload");
    }
    ::close(fd);
    body_file_ = tmpl;
    file_parser_.emplace(std::move(*header_parser_));
    file_parser_->body_limit(ro.max_body_bytes);
    beast::error_code ec;
    file_parser_->get().body().open(body_file_.c_str(), beast::file_mode::write, ec);
    if (ec) return Fail(500, "InternalFailure", "cannot open the upload file");
    ReadBodySome(*file_parser_, [](Self& self) {
      beast::error_code cec;
      self.file_parser_->get().body().file().close(cec);
      self.file_parser_.reset();
      self.req_.body_file = self.body_file_;
      self.RunHandler();
    });
  }

  // A body read or an answer written starts: `size` bytes are due by 30 s +
  // size at body_min_bytes_per_second; progress is counted from now.
  void BeginTransfer(double size) {
    body_bytes_ = 0;
    body_started_ = last_progress_ = Clock::now();
    body_deadline_ = body_started_ + Ms(30 + size / s_.options.body_min_bytes_per_second);
  }

  void NoteProgress(size_t n) {
    if (n == 0) return;
    body_bytes_ += n;
    last_progress_ = Clock::now();
  }

  void SetInBody(bool on) {
    if (on == in_body_) return;
    in_body_ = on;
    if (on) {
      ++s_.receiving_bodies;
    } else {
      --s_.receiving_bodies;
    }
  }

  // Reads the body a piece at a time, so that progress is seen: each read
  // must bring a byte within body_stall_seconds, and the whole body must be
  // in by its deadline. `done` runs once the parser has the whole message.
  template <typename Parser, typename Done>
  void ReadBodySome(Parser& parser, Done done) {
    auto stall = Clock::now() + Ms(s_.options.body_stall_seconds);
    beast::get_lowest_layer(stream_).expires_at(std::min(stall, body_deadline_));
    bhttp::async_read_some(
        stream_, buffer_, parser,
        [self = this->shared_from_this(), &parser, done](beast::error_code ec, size_t n) {
          if (ec) {
            self->SetInBody(false);
            return self->BodyError(ec);
          }
          self->NoteProgress(n);
          if (!parser.is_done()) return self->ReadBodySome(parser, done);
          self->SetInBody(false);
          done(*self);
        });
  }

  void BodyError(beast::error_code ec) {
    if (ec == bhttp::error::buffer_overflow) {
      return Fail(431, "RequestHeaderFieldsTooLarge",
                  "A chunk-size line or the trailers of the request are larger than " +
                      std::to_string(kMaxReadBuffer) + " bytes.");
    }
    if (ec == bhttp::error::body_limit) {
      return Fail(413, "RequestEntityTooLargeException",
                  "The request body is larger than the limit of " +
                      std::to_string(route_->options.max_body_bytes) + " bytes.");
    }
    // A malformed body (a bad chunk size or extension) is answered, as a
    // malformed header is; a client that went away or stalled is not.
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_chunk).category() &&
        ec != bhttp::error::partial_message && ec != bhttp::error::end_of_stream) {
      return Fail(400, "SerializationException", "Malformed HTTP request body: " + ec.message());
    }
    Close();
  }

  // Runs auth (body phase) and the handler on the pool, then writes.
  void RunHandler() {
    if (closed_) return;
    beast::get_lowest_layer(stream_).expires_never();
    if (TryFast()) return;
    PostHandler();
  }

  // RouteOptions::fast on the I/O thread; true when it answered.
  bool TryFast() {
    const auto& fast = route_->options.fast;
    if (!fast || AuthFor() != nullptr || !req_.body_file.empty() ||
        req_.body.size() > kMaxFastBodyBytes || s_.stopping) {
      return false;
    }
    Response res;
    try {
      if (!fast(req_, res) || res.park) return false;
    } catch (const std::exception& e) {
      PW_LOG(Error) << "fast handler for " << req_.path << " threw: " << e.what();
      return false;  // The handler proper answers.
    }
    res_ = std::move(res);
    Write();
    return true;
  }

  // Runs the handler on the pool. Until its answer is written, the I/O loop
  // counts it as outstanding work, so Stop() lets it finish and answer
  // (Serve returns after that) instead of dropping it.
  void PostHandler() {
    busy_ = true;
    s_.sched.Post(peer_, [self = this->shared_from_this(),
                          work = asio::prefer(s_.ioc.get_executor(),
                                              asio::execution::outstanding_work.tracked)] {
      self->CallHandler(work);
    });
  }

  template <typename Work>
  void CallHandler(const Work& work) {
    // The pool's threads (asio makes them): named by their first request.
    static thread_local const bool named = (NameThisThread("pw-http"), true);
    (void)named;
    Request& req = req_;
    Response res;
    try {
      if (!req.body_file.empty() && req.body_size == 0) {
        // Hashed only for routes that check it (SigV4 of S3 uploads).
        if (route_->options.hash_body) req.body_sha256 = Sha256File(req.body_file);
        struct stat st {};
        if (::stat(req.body_file.c_str(), &st) == 0)
          req.body_size = static_cast<uint64_t>(st.st_size);
      }
      bool allowed = true;
      if (const Authenticator* auth = AuthFor(); auth != nullptr) {
        Status st = (*auth)(AuthPhase::kBody, req, res);
        if (!st.ok()) {
          if (res.status == 200) res.JsonError(403, "AccessDeniedException", st.message());
          allowed = false;
        }
      }
      if (allowed) route_->handler(req, res);
    } catch (const std::exception& e) {
      PW_LOG(Error) << "unhandled exception in HTTP handler for " << req.path << ": " << e.what();
      res = Response{};
      res.JsonError(500, "InternalFailure", "internal error");
    } catch (...) {
      PW_LOG(Error) << "unhandled non-standard exception in HTTP handler";
      res = Response{};
      res.JsonError(500, "InternalFailure", "internal error");
    }
    asio::post(s_.ioc, [self = this->shared_from_this(), res = std::move(res), work]() mutable {
      self->busy_ = false;
      if (res.park) {
        // A long poll with nothing yet: stopping ends it without an answer.
        if (self->closed_ || self->s_.stopping) return self->Close();
        return self->Park();
      }
      self->res_ = std::move(res);
      self->Write();
    });
  }

  void Park() {
    parked_ = std::make_shared<asio::steady_timer>(s_.ioc);
    parked_->expires_after(Ms(s_.options.park_recheck_seconds));
    // Timers that fired on their own leave expired entries: drop them, so a
    // long poll that never gets a job does not grow the list.
    s_.parked.remove_if([](const std::weak_ptr<asio::steady_timer>& w) { return w.expired(); });
    s_.parked.push_back(parked_);
    // While parked, a client that goes away is noticed at the next re-run's write.
    parked_->async_wait([self = this->shared_from_this()](beast::error_code) {
      self->parked_.reset();
      if (self->closed_) return;
      self->PostHandler();
    });
  }

  void Write() {
    if (closed_) return;
    if (!body_file_.empty()) {
      ::unlink(body_file_.c_str());
      body_file_.clear();
    }
    Response& r = res_;
    bool head = req_.method == "HEAD";
    auto fill = [&](auto& msg) {
      msg.version(11);
      msg.result(static_cast<unsigned>(r.status));
      for (const auto& [k, v] : r.headers) msg.set(k, v);
      msg.keep_alive(keep_alive_ && !s_.stopping);
    };
    if (!r.file.empty()) {
      struct stat st {};
      if (::stat(r.file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        r.file.clear();
        r.JsonError(404, "NoSuchKey", "The file is gone.");
      } else {
        uint64_t size = static_cast<uint64_t>(st.st_size);
        uint64_t first = std::min(r.file_offset, size);
        uint64_t last_excl =
            r.file_length < 0 ? size : std::min(size, first + static_cast<uint64_t>(r.file_length));
        bool partial = first != 0 || last_excl != size;
        if (!partial && r.status == 200 && !req_.Header("Range").empty()) {
          uint64_t a = 0;
          uint64_t b = 0;
          bool unsat = false;
          if (ParseSingleRange(req_.Header("Range"), size, a, b, unsat)) {
            if (unsat) {
              r.file.clear();
              r.SetHeader("Content-Range", "bytes */" + std::to_string(size));
              r.JsonError(416, "InvalidRange", "The requested range is not satisfiable.");
            } else {
              first = a;
              last_excl = b + 1;
              partial = true;
              r.status = 206;
              r.SetHeader("Content-Range", "bytes " + std::to_string(a) + "-" + std::to_string(b) +
                                               "/" + std::to_string(size));
            }
          }
        }
        if (!r.file.empty()) {
          r.SetHeader("Accept-Ranges", "bytes");
          if (head) {
            auto msg = std::make_shared<bhttp::response<bhttp::empty_body>>();
            fill(*msg);
            msg->content_length(last_excl - first);
            return Send(msg);
          }
          if (partial) {
            auto msg = std::make_shared<bhttp::response<FileWindowBody>>();
            fill(*msg);
            FileWindow window;
            beast::error_code ec;
            window.open(r.file.c_str(), beast::file_mode::scan, ec);
            if (!ec) {
              window.set_window(first, last_excl - first);
              msg->body().reset(std::move(window), ec);
            }
            if (!ec) {
              msg->prepare_payload();
              return Send(msg);
            }
            r.file.clear();
            r.JsonError(404, "NoSuchKey", "The file is gone.");
          } else {
            auto msg = std::make_shared<bhttp::response<bhttp::file_body>>();
            fill(*msg);
            beast::error_code ec;
            msg->body().open(r.file.c_str(), beast::file_mode::scan, ec);
            if (!ec) {
              msg->prepare_payload();
              return Send(msg);
            }
            r.file.clear();
            r.JsonError(404, "NoSuchKey", "The file is gone.");
          }
        }
      }
    }
    if (head) {
      auto msg = std::make_shared<bhttp::response<bhttp::empty_body>>();
      fill(*msg);
      msg->content_length(r.body.size());
      return Send(msg);
    }
    auto msg = std::make_shared<bhttp::response<bhttp::string_body>>();
    fill(*msg);
    msg->body() = std::move(r.body);
    msg->prepare_payload();
    Send(msg);
  }

  // Writes `msg` a piece at a time, so that progress is seen (as bodies are
  // read): each piece must go out within body_stall_seconds (a client that
  // stops reading), the whole by 30 s + its size at body_min_bytes_per_second.
  template <typename Msg>
  void Send(const std::shared_ptr<Msg>& msg) {
    using Serializer = bhttp::serializer<false, typename Msg::body_type, bhttp::fields>;
    auto sr = std::make_shared<Serializer>(*msg);
    const double size = static_cast<double>(msg->payload_size().value_or(0));
    in_write_ = true;
    BeginTransfer(size);
    WriteSome(msg, sr, msg->keep_alive());
  }

  template <typename Msg, typename Serializer>
  void WriteSome(const std::shared_ptr<Msg>& msg, const std::shared_ptr<Serializer>& sr,
                 bool keep) {
    auto stall = Clock::now() + Ms(s_.options.body_stall_seconds);
    beast::get_lowest_layer(stream_).expires_at(std::min(stall, body_deadline_));
    bhttp::async_write_some(
        stream_, *sr,
        [self = this->shared_from_this(), msg, sr, keep](beast::error_code ec, size_t n) {
          self->NoteProgress(n);
          if (!ec && !sr->is_done()) return self->WriteSome(msg, sr, keep);
          self->in_write_ = false;
          if (!ec && !keep && self->drain_) return self->Drain();
          if (ec || !keep) return self->Close();
          self->ReadHeader();
        });
  }

  // After refusing a request whose body was not read: stop sending, and read
  // and discard what the client still sends (bounded in bytes and time), so a
  // client that writes its whole body before reading sees our answer instead
  // of a reset. Nothing of it is kept.
  void Drain() {
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ec);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(3));
    drain_buf_ = std::make_shared<std::array<char, 65536>>();
    DrainSome();
  }

  void DrainSome() {
    beast::get_lowest_layer(stream_).async_read_some(
        asio::buffer(*drain_buf_),
        [self = this->shared_from_this()](beast::error_code ec, size_t n) {
          self->drained_ += n;
          if (ec || self->drained_ > kMaxDrainBytes) return self->Close();
          self->DrainSome();
        });
  }

  // Answers an error the front decided and closes the connection afterwards
  // (its body, if any, is never read).
  void Fail(int status, std::string_view type, const std::string& message) {
    res_ = Response{};
    res_.JsonError(status, type, message);
    res_.SetHeader("x-amzn-RequestId", NewUuid());
    keep_alive_ = false;
    drain_ = true;
    Write();
  }

  Server::Impl& s_;
  Stream stream_;
  beast::flat_buffer buffer_{kMaxReadBuffer};
  std::optional<bhttp::request_parser<bhttp::empty_body>> header_parser_;
  std::optional<bhttp::request_parser<bhttp::string_body>> mem_parser_;
  std::optional<bhttp::request_parser<bhttp::file_body>> file_parser_;
  std::shared_ptr<bhttp::response<bhttp::empty_body>> continue_;
  std::shared_ptr<asio::steady_timer> parked_;
  const RouteEntry* route_ = nullptr;
  Request req_;
  Response res_;
  std::string body_file_;
  Clock::time_point body_deadline_;
  bool keep_alive_ = true;
  bool first_ = true;
  bool closed_ = false;
  bool drain_ = false;
  uint64_t drained_ = 0;
  std::shared_ptr<std::array<char, 65536>> drain_buf_;
};

}  // namespace

const RouteEntry* Server::Impl::Find(const Request& req, std::vector<std::string>& params,
                                     int& status) const {
  status = 404;
  for (const auto& r : routes) {
    bool method_ok = r.method == req.method || (r.method == "GET" && req.method == "HEAD");
    if (r.literal) {
      if (req.path != *r.literal) continue;
      if (!method_ok) {
        status = 405;
        continue;
      }
      params.clear();
      return &r;
    }
    int n = r.pattern->NumberOfCapturingGroups();
    std::vector<std::string> caps(static_cast<size_t>(n));
    std::vector<RE2::Arg> args(static_cast<size_t>(n));
    std::vector<const RE2::Arg*> argp(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      args[static_cast<size_t>(i)] = &caps[static_cast<size_t>(i)];
      argp[static_cast<size_t>(i)] = &args[static_cast<size_t>(i)];
    }
    if (!RE2::FullMatchN(req.path, *r.pattern, argp.data(), n)) continue;
    if (!method_ok) {
      status = 405;
      continue;
    }
    params = std::move(caps);
    return &r;
  }
  return nullptr;
}

bool Server::Impl::Admit(const std::string& peer) {
  if (stopping) return false;
  const auto now = Clock::now();
  const double min_rate = options.body_min_bytes_per_second;
  // Closes the connection of `l` that is idlest (awaiting a request), or
  // failing that the one whose body lags longest; false when none qualifies
  // (every connection is busy or receiving at a fair rate).
  auto evict = [now, min_rate](std::list<std::weak_ptr<ConnBase>>& l) {
    std::shared_ptr<ConnBase> idle;
    std::shared_ptr<ConnBase> lagging;
    Clock::time_point lag_since{};
    for (auto& w : l) {
      auto c = w.lock();
      if (!c) continue;
      Clock::time_point since{};
      if (c->idle()) {
        if (!idle || c->idle_since() < idle->idle_since()) idle = c;
      } else if (c->lagging(now, min_rate, since) && (!lagging || since < lag_since)) {
        lagging = c;
        lag_since = since;
      }
    }
    auto victim = idle ? idle : lagging;
    if (!victim) return false;
    victim->Close();
    return true;
  };
  auto& mine = by_peer[peer];
  mine.remove_if([](const std::weak_ptr<ConnBase>& w) { return w.expired(); });
  if (mine.size() >= options.max_connections_per_client && !evict(mine)) {
    return false;
  }
  if (open >= options.max_connections) {
    // Close the idlest (or most lagging) connection of the client that holds
    // the most, or of the next biggest when that one has none to spare.
    std::vector<std::list<std::weak_ptr<ConnBase>>*> by_size;
    by_size.reserve(by_peer.size());
    for (auto& [p, l] : by_peer) by_size.push_back(&l);
    std::stable_sort(by_size.begin(), by_size.end(),
                     [](const auto* a, const auto* b) { return a->size() > b->size(); });
    bool made_room = false;
    for (auto* l : by_size) {
      if (evict(*l)) {
        made_room = true;
        break;
      }
    }
    if (!made_room) return false;
  }
  return true;
}

void Server::Impl::Register(const std::shared_ptr<ConnBase>& c) {
  by_peer[c->peer()].push_back(c);
  ++open;
  open_count = open;
}

void Server::Impl::Unregister(const ConnBase* c) {
  // Called from destructors, which may run on the pool after the last
  // reference drops there: hop to the I/O thread for the bookkeeping.
  if (dead) return;
  std::string peer = c->peer();
  asio::post(ioc, [this, peer] {
    if (open > 0) --open;
    open_count = open;
    auto it = by_peer.find(peer);
    if (it == by_peer.end()) return;
    it->second.remove_if([](const std::weak_ptr<ConnBase>& w) { return w.expired(); });
    if (it->second.empty()) by_peer.erase(it);
  });
}

void Server::Impl::CloseAll() {
  // A connection whose handler runs is left to answer (not kept alive once
  // stopping) and closes itself after the write.
  for (auto& [p, l] : by_peer) {
    for (auto& w : l) {
      if (auto c = w.lock(); c && !c->busy()) c->Close();
    }
  }
  for (auto& w : parked) {
    if (auto t = w.lock()) t->cancel();
  }
  parked.clear();
}

template <typename Stream>
void Server::Impl::Start(tcp::socket socket) {
  beast::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return;
  std::string peer = ep.address().to_string();
  if (!Admit(peer)) {
    socket.close(ec);
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  std::shared_ptr<Conn<Stream>> c;
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    c = std::make_shared<Conn<Stream>>(*this, beast::tcp_stream(std::move(socket)), peer);
  } else {
    c = std::make_shared<Conn<Stream>>(*this, Stream(beast::tcp_stream(std::move(socket)), *tls),
                                       peer);
  }
  Register(c);
  c->Run();
}

void Server::Impl::Accept() {
  acceptor->async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || stopping) return;
    if (!ec) {
      if (tls) {
        Start<beast::ssl_stream<beast::tcp_stream>>(std::move(socket));
      } else {
        Start<beast::tcp_stream>(std::move(socket));
      }
    } else if (ec == asio::error::no_descriptors) {
      // Out of file descriptors: back off briefly rather than spin.
      auto t = std::make_shared<asio::steady_timer>(ioc, std::chrono::milliseconds(50));
      t->async_wait([this, t](beast::error_code) { Accept(); });
      return;
    }
    Accept();
  });
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Server::~Server() {
  Stop();
  impl_->pool.join();
  impl_->dead = true;
}

void Server::Route(std::string method, std::string pattern, RouteOptions options, Handler handler) {
  auto re = std::make_unique<RE2>(pattern);
  PW_CHECK(re->ok());  // Patterns are compile-time constants of ours.
  std::optional<std::string> literal;
  if (pattern.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_-") ==
      std::string::npos) {
    literal = pattern;
  }
  impl_->routes.push_back({std::move(method), std::move(re), std::move(literal), std::move(options),
                           std::move(handler)});
}

void Server::SetAuthenticator(Authenticator auth) { impl_->auth = std::move(auth); }

Result<std::string> Server::Bind(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgument("--listen must be host:port, e.g. 127.0.0.1:8480, not '" + listen + "'");
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::string port_text = listen.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgument("--listen port is not a number: '" + listen + "'");
  }
  int port = std::stoi(port_text);
  if (port > 65535) return InvalidArgument("--listen port out of range: " + listen);
  if (!impl_->options.tls_cert_file.empty() || !impl_->options.tls_key_file.empty()) {
    if (impl_->options.tls_cert_file.empty() || impl_->options.tls_key_file.empty()) {
      return InvalidArgument("TLS needs both --tls-cert and --tls-key");
    }
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                     ssl::context::single_dh_use);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    SSL_CTX_set_options(ctx->native_handle(), SSL_OP_NO_RENEGOTIATION);
    beast::error_code ec;
    ctx->use_certificate_chain_file(impl_->options.tls_cert_file, ec);
    if (ec) {
      return Unavailable("cannot load the TLS certificate " + impl_->options.tls_cert_file + ": " +
                         ec.message());
    }
    ctx->use_private_key_file(impl_->options.tls_key_file, ssl::context::pem, ec);
    if (ec) {
      return Unavailable("cannot load the TLS key " + impl_->options.tls_key_file + ": " +
                         ec.message());
    }
    impl_->tls = std::move(ctx);
  }
  beast::error_code ec;
  tcp::resolver resolver(impl_->ioc);
  auto results = resolver.resolve(host, port_text, tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    return InvalidArgument("--listen host '" + host + "' cannot be resolved: " + ec.message());
  }
  tcp::endpoint ep = results.begin()->endpoint();
  tcp::acceptor acc(impl_->ioc);
  acc.open(ep.protocol(), ec);
  if (ec) return Unavailable("cannot open a socket for " + listen + ": " + ec.message());
  // SO_REUSEADDR only (restart while old connections linger in TIME_WAIT);
  // never SO_REUSEPORT, so a second server cannot share the port.
  acc.set_option(asio::socket_base::reuse_address(true), ec);
  acc.bind(ep, ec);
  if (ec) {
    if (ec == asio::error::address_in_use) {
      return Unavailable("cannot listen on " + listen +
                         ": the address is already in use (is another pipewright server "
                         "running? choose another --listen port)");
    }
    return Unavailable("cannot bind " + listen + ": " + ec.message());
  }
  acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable("cannot listen on " + listen + ": " + ec.message());
  auto bound = acc.local_endpoint();
  impl_->acceptor.emplace(std::move(acc));
  std::string h = bound.address().to_string();
  if (bound.address().is_v6()) h = "[" + h + "]";
  return h + ":" + std::to_string(bound.port());
}

Status Server::Serve() {
  if (!impl_->acceptor) return FailedPrecondition("Serve() before Bind()");
  impl_->work.emplace(impl_->ioc.get_executor());
  impl_->Accept();
  for (;;) {
    try {
      impl_->ioc.run();
      break;
    } catch (const std::exception& e) {
      PW_LOG(Error) << "HTTP I/O loop: " << e.what();
    }
  }
  // Let handlers still running finish, then run what they posted back.
  impl_->pool.join();
  impl_->ioc.restart();
  impl_->ioc.poll();
  return Status::Ok();
}

void Server::Stop() {
  asio::post(impl_->ioc, [impl = impl_.get()] {
    if (impl->stopping) return;
    impl->stopping = true;
    beast::error_code ec;
    if (impl->acceptor) impl->acceptor->close(ec);
    impl->CloseAll();
    impl->work.reset();
  });
}

void Server::WakeParked() {
  asio::post(impl_->ioc, [impl = impl_.get()] {
    for (auto& w : impl->parked) {
      if (auto t = w.lock()) t->cancel();
    }
    impl->parked.clear();
  });
}

size_t Server::OpenConnectionsForTest() const { return impl_->open_count.load(); }

size_t Server::WaitingHandlersForTest() const { return impl_->sched.Waiting(); }

size_t Server::ReceivingBodiesForTest() const { return impl_->receiving_bodies.load(); }

Response Server::HandleForTest(Request req) {
  Response res;
  int status = 0;
  req.received = Clock::now();
  const RouteEntry* route = impl_->Find(req, req.params, status);
  if (route == nullptr) {
    res.JsonError(status, status == 405 ? "MethodNotAllowed" : "UnknownOperationException",
                  "no route");
    return res;
  }
  const RouteOptions& ro = route->options;
  if (!req.body.empty() && ro.body == BodyMode::kNone) {
    res.JsonError(413, "RequestEntityTooLargeException", "This route takes no request body.");
    return res;
  }
  if (req.body.size() > ro.max_body_bytes) {
    res.JsonError(413, "RequestEntityTooLargeException", "over the route's limit");
    return res;
  }
  struct RemoveFile {
    std::string path;
    ~RemoveFile() {
      if (!path.empty()) ::unlink(path.c_str());
    }
  } body_file;
  if (ro.body == BodyMode::kStream && !req.body.empty()) {
    std::string tmpl = ro.temp_dir + "/pw-upload-XXXXXX";
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0) throw std::runtime_error("HandleForTest: cannot create a body file");
    body_file.path = tmpl;
    size_t off = 0;
    while (off < req.body.size()) {
      ssize_t w = ::write(fd, req.body.data() + off, req.body.size() - off);
      if (w <= 0) {
        ::close(fd);
        throw std::runtime_error("HandleForTest: cannot write the body file");
      }
      off += static_cast<size_t>(w);
    }
    ::close(fd);
    req.body_file = tmpl;
    req.body_size = req.body.size();
    if (route->options.hash_body) req.body_sha256 = Sha256File(tmpl);
    req.body.clear();
  }
  if (const Authenticator* auth = impl_->AuthFor(*route); auth != nullptr) {
    for (AuthPhase phase : {AuthPhase::kHeaders, AuthPhase::kBody}) {
      if (Status st = (*auth)(phase, req, res); !st.ok()) {
        if (res.status == 200) res.JsonError(403, "AccessDeniedException", st.message());
        return res;
      }
    }
  }
  route->handler(req, res);
  return res;
}

}  // namespace pw::http
