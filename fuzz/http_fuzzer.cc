// libFuzzer target for the HTTP routes behind the parser: the S3 endpoint
// (buckets, objects, multipart uploads, aws-chunked bodies, XML documents),
// the JSON API route, webhooks, the console's files and /metrics, wired as
// `pipewright serve` wires them with --auth-keys-file, over a real Engine and
// LocalBuckets on SQLite in a temporary directory. Requests go through
// http::Server::HandleForTest (routing, both authentication phases, the
// handler) without a socket: Beast's parser is not ours to fuzz.
//
// Input: byte 0 picks the method (bits 0-2) and whether the request is
// signed with the fuzzer's key (bit 3: then SigV4 passes and the handlers are
// reached; unsigned requests fuzz the signature checks). The rest is text:
// the first line is the target ("/bucket/key?uploads"), the lines up to an
// empty line are headers ("Name: value"), the remainder is the body.
//
// A handler's exception or a 500 aborts (a connection would answer 500 and
// log an unhandled exception): libFuzzer reports the input.
//
// PW_FUZZ_DIR: data directory to use (fuzz_engine.h).

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "api/http_server.h"
#include "api/s3_ops.h"
#include "auth/authenticator.h"
#include "auth/keys.h"
#include "buckets/local_buckets.h"
#include "console/console.h"
#include "fuzz_engine.h"
#include "http/server.h"
#include "sigv4/sigv4.h"

namespace {

constexpr const char* kKeyId = "AKIDFUZZ";
constexpr const char* kSecret = "fuzz-secret-key";

struct World {
  pw::fuzz::FuzzEngine* base = nullptr;  // Engine, store and dispatcher.
  std::unique_ptr<pw::buckets::LocalBuckets> buckets;
  std::unique_ptr<pw::auth::KeyStore> s3_keys;
  std::unique_ptr<pw::auth::Authenticator> authn;
  std::unique_ptr<pw::http::Server> http;
};

World* world = nullptr;  // Lives for the whole process (libFuzzer exits without returning).

using pw::fuzz::Die;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  world = new World();
  world->base = pw::fuzz::MakeFuzzEngine();
  pw::fuzz::FuzzEngine& base = *world->base;
  pw::buckets::LocalBucketsOptions bo;
  bo.root = base.dir + "/buckets";
  bo.max_object_bytes = 1 << 20;
  bo.min_part_bytes = 16;  // Lets small inputs complete multipart uploads.
  world->buckets = std::make_unique<pw::buckets::LocalBuckets>(*base.store, base.clock, bo);
  if (pw::Status s = world->buckets->Open(); !s.ok()) Die("buckets", s.ToString());

  const std::string keys_text = std::string(kKeyId) + ":" + kSecret + "\n";
  auto keys = pw::auth::KeyStore::Parse(keys_text, "fuzz", base.dir);
  if (!keys.ok()) Die("keys", keys.status().ToString());
  world->s3_keys = std::make_unique<pw::auth::KeyStore>(*keys);
  world->authn = std::make_unique<pw::auth::Authenticator>(std::move(*keys), base.clock);

  base.dispatcher.SetAuthorizer([a = world->authn.get()](std::string_view op,
                                                         const nlohmann::json& input,
                                                         const pw::api::RequestContext& ctx) {
    return a->Authorize(ctx.access_key_id, op, input);
  });

  pw::http::ServerOptions ho;
  world->http = std::make_unique<pw::http::Server>(ho);
  pw::http::Server& http = *world->http;
  http.SetAuthenticator([a = world->authn.get()](pw::http::AuthPhase phase, pw::http::Request& req,
                                                 pw::http::Response& res) {
    return a->Authenticate(phase, req, res);
  });
  pw::api::RegisterApiRoute(http, base.dispatcher);
  pw::api::RegisterMetricsRoute(http, [] { return std::string("up 1\n"); });
  pw::api::S3Endpoint s3;
  s3.engine = base.engine.get();
  s3.buckets = world->buckets.get();
  s3.keys = world->s3_keys.get();
  s3.max_object_bytes = 1 << 20;
  pw::api::RegisterWebhookRoute(http, *base.engine, world->buckets->temp_dir());
  pw::api::RegisterS3RootRoute(http, s3);
  pw::console::RegisterConsole(http);
  pw::api::RegisterS3Endpoint(http, s3);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const char* const kMethods[] = {"GET",  "PUT", "POST", "DELETE",
                                         "HEAD", "GET", "PUT",  "POST"};
  const bool sign = (data[0] & 8) != 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  pw::http::Request req;
  req.method = kMethods[data[0] & 7];
  size_t eol = text.find('\n');
  req.target = std::string(text.substr(0, eol));
  if (req.target.empty() || req.target[0] != '/') req.target.insert(0, "/");
  text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
  while (!text.empty()) {
    eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    req.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  req.body = std::string(text);
  // What Beast refuses before a route sees it (RFC 7230): a target with a
  // space or a control character, a header name that is not a token, a value
  // with a control character other than tab (bytes past 0x7F pass, obs-text).
  auto ctl = [](unsigned char c) { return c < 0x20 || c == 0x7F; };
  auto token = [](unsigned char c) {
    return std::isalnum(c) != 0 ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  };
  if (std::any_of(req.target.begin(), req.target.end(),
                  [&](char c) { return c == ' ' || ctl(static_cast<unsigned char>(c)); })) {
    return -1;
  }
  for (const auto& [k, v] : req.headers) {
    if (!std::all_of(k.begin(), k.end(),
                     [&](char c) { return token(static_cast<unsigned char>(c)); }) ||
        std::any_of(v.begin(), v.end(),
                    [&](char c) { return c != '\t' && ctl(static_cast<unsigned char>(c)); })) {
      return -1;
    }
  }
  size_t q = req.target.find('?');
  req.path = req.target.substr(0, q);
  req.query = q == std::string::npos ? "" : req.target.substr(q + 1);
  req.peer = "127.0.0.1";
  if (!req.HasHeader("Host")) req.headers.emplace_back("Host", "127.0.0.1:8480");

  if (sign) {
    const bool api = req.path == "/" && req.method == "POST" && req.HasHeader("X-Amz-Target");
    pw::sigv4::HttpRequestView view{req.method, req.path, req.query, req.headers, req.body};
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    for (auto& [name, value] : pw::sigv4::Sign(view, {kKeyId, kSecret, ""}, "us-east-1",
                                               api ? "codepipeline" : "s3", now)) {
      std::erase_if(req.headers, [&n = name](const auto& h) {
        return h.first.size() == n.size() &&
               std::equal(n.begin(), n.end(), h.first.begin(), [](char a, char b) {
                 return std::tolower(static_cast<unsigned char>(a)) ==
                        std::tolower(static_cast<unsigned char>(b));
               });
      });
      req.headers.emplace_back(name, value);
    }
  }

  pw::http::Response res;
  try {
    res = world->http->HandleForTest(req);
  } catch (const std::exception& e) {
    Die("handler exception", std::string(e.what()) + " on " + req.method + " " + req.target);
  }
  if (res.status == 500) {
    Die("500", req.method + " " + req.target + ": " + res.body);
  }
  return 0;
}
