// libFuzzer target for request decoding and model validation alone: no
// Engine, no store, so it runs far faster than dispatch_fuzzer. Input byte 0
// picks an operation of the service model (modulo their number, in model
// order), the rest is the request body. Each input goes through what
// Dispatcher::Handle does before a handler runs:
//   ParseRequestBody (nesting pre-scan, JSON parse, null/NUL handling),
//   ServiceModel::ValidateInput, Dispatcher::ErrorReply,
// and aborts, so libFuzzer reports it with its input, when
//   - anything throws (Handle would turn it into a 500),
//   - a refusal would be a 500 (or anything but a 400 with an error type),
//   - an error message is not valid UTF-8 (ErrorReply would have to replace
//     bytes: every request value quoted in a message must be cut on a
//     character boundary), or a reply is not JSON with "__type" and "message",
//   - an accepted body breaks ParseRequestBody's contract: a non-object, a
//     null member or list item, or a NUL in a string or member name.
//
// The seed corpus is dispatch_fuzzer's (fuzz/corpus/), whose byte 0 indexes
// the registered targets instead: a seed starts under another operation, and
// mutations of byte 0 carry each body to every operation.
//
// PW_FUZZ_PRINT_TARGETS=1: print the operations, one per line with its index
// byte, and exit.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "api/dispatcher.h"
#include "common/log.h"
#include "common/status.h"
#include "spec/service_model.h"

namespace {

using nlohmann::json;
using pw::Status;

const std::vector<std::string>* operations = nullptr;  // Lives for the whole process.

[[noreturn]] void Fail(const std::string& op, std::string_view body, const std::string& what) {
  std::fprintf(stderr, "%s: %s\nrequest: %.*s\n", op.c_str(), what.c_str(),
               static_cast<int>(body.size()), body.data());
  std::abort();
}

// True when `v` serializes without replacing bytes (its strings are valid UTF-8).
bool ValidUtf8(const json& v) {
  try {
    (void)v.dump();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

// "" when `v` keeps ParseRequestBody's promises, else what it breaks.
// Recursion is bounded by kMaxNestingDepth, checked before parsing.
std::string Broken(const json& v) {
  if (v.is_string()) {
    return v.get_ref<const std::string&>().find('\0') == std::string::npos ? "" : "NUL in a string";
  }
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it.key().find('\0') != std::string::npos) return "NUL in a member name";
      if (it->is_null()) return "null member kept";
      if (std::string b = Broken(*it); !b.empty()) return b;
    }
  }
  if (v.is_array()) {
    for (const auto& x : v) {
      if (x.is_null()) return "null list item accepted";
      if (std::string b = Broken(x); !b.empty()) return b;
    }
  }
  return "";
}

// Checks the reply Handle would send for the refusal `s`.
void CheckRefusal(const std::string& op, std::string_view body, const Status& s) {
  if (s.code() != pw::StatusCode::kInvalidArgument) Fail(op, body, "not a 400: " + s.ToString());
  if (!ValidUtf8(json(s.message()))) Fail(op, body, "message is not valid UTF-8: " + s.message());
  const pw::api::HttpReply r = pw::api::Dispatcher::ErrorReply(s);
  if (r.status != 400 || r.error_type.empty()) {
    Fail(op, body, "reply " + std::to_string(r.status) + " " + r.error_type + ": " + r.body);
  }
  const json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("__type") || !j["__type"].is_string() ||
      !j.contains("message") || !j["message"].is_string() || j["message"] != s.message()) {
    Fail(op, body, "bad reply: " + r.body);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  pw::SetLogLevel(pw::LogLevel::kError);
  operations = new std::vector<std::string>(pw::spec::ServiceModel::Get().OperationNames());
  if (std::getenv("PW_FUZZ_PRINT_TARGETS") != nullptr) {
    for (size_t i = 0; i < operations->size(); ++i) {
      std::printf("%zu %s\n", i, (*operations)[i].c_str());
    }
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string& op = (*operations)[data[0] % operations->size()];
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    json input;
    if (Status p = pw::api::ParseRequestBody(body, &input); !p.ok()) {
      CheckRefusal(op, body, p);
      return 0;
    }
    if (!input.is_object()) Fail(op, body, "accepted a non-object");
    if (std::string b = Broken(input); !b.empty()) Fail(op, body, b);
    // Handlers echo request values in replies: they must serialize unchanged.
    if (!ValidUtf8(input)) Fail(op, body, "accepted input is not valid UTF-8");
    Status v = pw::spec::ServiceModel::Get().ValidateInput(op, input);
    if (!v.ok()) CheckRefusal(op, body, v);
  } catch (const std::exception& e) {
    Fail(op, body, std::string("threw (a 500 in Dispatcher::Handle): ") + e.what());
  }
  return 0;
}
