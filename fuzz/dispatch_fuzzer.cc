// libFuzzer target for the API front: input byte 0 picks a registered target
// (modulo their number, in sorted order), the rest is the request body. Every
// operation is registered on a real Engine over a SQLite store in a temporary
// directory (on /dev/shm when present, so commits are cheap), exactly as
// `pipewright serve` wires them. A reply with status 500 aborts, so libFuzzer
// reports it with the input that caused it.
//
// Nothing runs outside the process: no start on create, no local runners
// (Commands actions become jobs nobody polls), no source polling, no long
// polls; and pipeline declarations naming the Directory or Git providers
// (which read or replace arbitrary local paths) are skipped before dispatch.
// State persists across inputs (pipelines, executions, jobs), which lets
// sequences reach deep handler paths; a crash normally reproduces from its
// input alone because most faults sit in parsing, validation and handlers.
//
// PW_FUZZ_DIR: data directory to use (fuzz_engine.h).
// PW_FUZZ_PRINT_TARGETS=1: print the targets, one per line with its index
// byte, and exit (fuzz/make_corpus.py uses it to build seeds).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_engine.h"

namespace {

using nlohmann::json;

pw::fuzz::FuzzEngine* world = nullptr;
std::vector<std::string> targets;

// True when `v` holds a string naming a provider that touches local paths.
bool NamesLocalProvider(const json& v) {
  if (v.is_string()) return v == "Directory" || v == "Git";
  if (v.is_array() || v.is_object()) {
    for (const auto& x : v) {
      if (NamesLocalProvider(x)) return true;  // Depth is bounded by ParseRequestBody.
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  world = pw::fuzz::MakeFuzzEngine();
  targets = world->dispatcher.Targets();
  if (std::getenv("PW_FUZZ_PRINT_TARGETS") != nullptr) {
    for (size_t i = 0; i < targets.size(); ++i) {
      std::printf("%zu %s\n", i, targets[i].c_str());
    }
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string& target = targets[data[0] % targets.size()];
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (target.ends_with("CreatePipeline") || target.ends_with("UpdatePipeline")) {
    json parsed;
    if (pw::api::ParseRequestBody(body, &parsed).ok() && NamesLocalProvider(parsed)) return -1;
  }
  pw::api::HttpReply r = world->dispatcher.Handle(target, body, {"fuzzer", "fuzz"});
  if (r.status == 500) {
    std::fprintf(stderr, "500 from %s\nrequest: %.*s\nreply: %s\n", target.c_str(),
                 static_cast<int>(body.size()), body.data(), r.body.c_str());
    std::abort();
  }
  // Every reply must be JSON a client can parse (valid UTF-8 included).
  if (json::parse(r.body, nullptr, false).is_discarded()) {
    std::fprintf(stderr, "unparseable reply from %s: %s\n", target.c_str(), r.body.c_str());
    std::abort();
  }
  return 0;
}
