#pragma once

// Dispatcher: routes one awsJson1_1 request (X-Amz-Target + JSON body) to its
// operation handler and turns the outcome into an HTTP reply: 200 with the
// output JSON, 400 {"__type", "message"} for modeled errors, 500 for faults.
// Knows nothing of sockets, so it is tested without a server.
// Thread-safe after registration is complete.

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace pw::api {

inline constexpr std::string_view kCodePipelinePrefix = "CodePipeline_20150709.";
inline constexpr std::string_view kPipewrightPrefix = "Pipewright_20261125.";

// The X-Amz-Target of the CodePipeline operation `op`: "CodePipeline_20150709.<op>".
inline std::string CodePipelineTarget(std::string_view op) {
  return std::string(kCodePipelinePrefix) + std::string(op);
}

struct RequestContext {
  std::string caller;         // Identity ARN (from the signature's access key), or "anonymous".
  std::string access_key_id;  // The caller's access key ("" when anonymous).
  std::string request_id;
  // Seconds since the request arrived (grows while a long poll is parked).
  double waited_seconds = 0;
  // Set by a long-poll handler with nothing to return yet: the HTTP front
  // parks the request (no thread held) and calls the handler again shortly.
  mutable bool park = false;
  // Set by Dispatcher::Handle from the input, for the request's log line:
  // the pipeline (pipelineName or name) and execution (pipelineExecutionId).
  mutable std::string log_pipeline;
  mutable std::string log_execution_id;
};

struct HttpReply {
  int status = 200;
  std::string body;
  std::string error_type;  // Sent also as X-Amzn-ErrorType when non-empty.
};

// Arrays and objects in a request body may nest this deep, no deeper: the
// model's deepest input nests 8 levels; the limit keeps every recursive walk of
// a request (validation, dumps) far from the stack's end.
inline constexpr int kMaxNestingDepth = 64;

// Parses an awsJson1_1 request body into `*out` (an empty body is {}).
// Null object members are removed (treated as absent). Fails with
// SerializationException for nesting deeper than kMaxNestingDepth, invalid
// JSON or a non-object; with ValidationException naming the field for a null
// inside a list or a NUL character in a string or member name.
Status ParseRequestBody(std::string_view body, nlohmann::json* out);

using Handler =
    std::function<Result<nlohmann::json>(const nlohmann::json& input, const RequestContext& ctx)>;

// A handler answering with the serialised response body itself (e.g. from
// engine::ReadCache); otherwise as Handler.
using RawHandler =
    std::function<Result<std::string>(const nlohmann::json& input, const RequestContext& ctx)>;

// Answers from memory without blocking (e.g. an engine::ReadCache hit), or
// nullopt (then the RawHandler computes the answer). Never an error.
using PeekHandler = std::function<std::optional<std::string>(const nlohmann::json& input)>;

// Decides whether `ctx`'s caller may run `operation` (the target without its
// prefix, e.g. "GetPipelineState") with `input`: OK, or the refusal to send
// (e.g. AccessDeniedException).
using Authorizer = std::function<Status(std::string_view operation, const nlohmann::json& input,
                                        const RequestContext& ctx)>;

class Dispatcher {
 public:
  // Registers `handler` for the full target (e.g. "CodePipeline_20150709.GetPipeline").
  // When `model_operation` is non-empty the input is first validated against
  // that operation's input shape in the service model.
  void Register(std::string target, std::string model_operation, Handler handler);
  // The same for a handler that returns the body already serialised; `peek`,
  // when set, lets HandleFast answer without it.
  void RegisterRaw(std::string target, std::string model_operation, RawHandler handler,
                   PeekHandler peek = nullptr);

  // Sets the check run after input validation and before every handler
  // (none by default: everything is allowed). Call before serving.
  void SetAuthorizer(Authorizer authorizer) { authorizer_ = std::move(authorizer); }

  // Handles one request: ParseRequestBody, model validation, the handler.
  // Never throws; a handler's exception becomes a 500 InternalFailure.
  HttpReply Handle(std::string_view target, std::string_view body, const RequestContext& ctx) const;

  // The request answered by its target's PeekHandler after the same parsing
  // and model validation as Handle: a 200 reply, or nullopt when it cannot be
  // answered that way (no peek, a miss, an authorizer set, or any error, which
  // Handle then reports). Never blocks: run on the HTTP I/O thread, it saves
  // the hand-off to a handler thread for the frequent cached reads.
  std::optional<HttpReply> HandleFast(std::string_view target, std::string_view body,
                                      const RequestContext& ctx) const;

  static HttpReply ErrorReply(const Status& s);

  // Every registered target, sorted.
  std::vector<std::string> Targets() const;

 private:
  struct Entry {
    std::string model_operation;
    Handler handler;
    RawHandler raw;  // Set instead of `handler` by RegisterRaw.
    PeekHandler peek;
  };
  // Sets ctx's log fields (pipeline, execution id) from the input.
  static void NoteLogFields(const nlohmann::json& input, const RequestContext& ctx);
  std::map<std::string, Entry, std::less<>> handlers_;
  Authorizer authorizer_;
};

}  // namespace pw::api
