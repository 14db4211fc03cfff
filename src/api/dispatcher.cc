#include "api/dispatcher.h"

#include "common/json_nesting.h"
#include "common/log.h"
#include "spec/service_model.h"

namespace pw::api {
namespace {

using nlohmann::json;

std::string Field(const std::string& path) {
  return path.empty() ? "input" : spec::TruncateUtf8(path, spec::kMaxQuotedBytes);
}

std::string Child(const std::string& path, const std::string& member) {
  return path.empty() ? member : path + "." + member;
}

// Removes null object members (as if absent: SDKs never send them), and
// refuses nulls inside lists and NUL characters in strings or member names,
// naming the field with the validator's path syntax ("stages.1.member.name").
// Recursion depth is bounded by the nesting limit checked before parsing.
Status Sanitize(json& v, const std::string& path) {
  if (v.is_string()) {
    if (v.get_ref<const std::string&>().find('\0') != std::string::npos) {
      return InvalidArgument("Value at '" + Field(path) +
                                 "' failed to satisfy constraint: Member must not contain a NUL "
                                 "character (\\u0000)",
                             "ValidationException");
    }
    return Status::Ok();
  }
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end();) {
      if (it.key().find('\0') != std::string::npos) {
        return InvalidArgument(
            "A member name in '" + Field(path) + "' contains a NUL character (\\u0000); remove it.",
            "ValidationException");
      }
      if (it->is_null()) {
        it = v.erase(it);
        continue;
      }
      PW_RETURN_IF_ERROR(Sanitize(*it, Child(path, it.key())));
      ++it;
    }
    return Status::Ok();
  }
  if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string item = Child(path, std::to_string(i + 1) + ".member");
      if (v[i].is_null()) {
        return InvalidArgument("Value null at '" + Field(item) +
                                   "' failed to satisfy constraint: Member must not be null",
                               "ValidationException");
      }
      PW_RETURN_IF_ERROR(Sanitize(v[i], item));
    }
  }
  return Status::Ok();
}

// Serializes a reply; invalid UTF-8 (never expected) becomes U+FFFD instead of a throw.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

Status ParseRequestBody(std::string_view body, nlohmann::json* out) {
  *out = json::object();
  if (body.empty()) return Status::Ok();
  if (body.find('\0') != std::string_view::npos) {
    // JSON has no raw NUL byte (one in a string is written \u0000); the
    // parser would take it for the end of the text and accept "{}\0junk".
    return InvalidArgument(
        "The request body is not valid JSON: it holds a NUL byte (in a string, write \\u0000).",
        "SerializationException");
  }
  if (!JsonNestingWithin(body, kMaxNestingDepth)) {
    return InvalidArgument("The request body nests arrays and objects deeper than " +
                               std::to_string(kMaxNestingDepth) + " levels.",
                           "SerializationException");
  }
  json input = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (input.is_discarded()) {
    return InvalidArgument("The request body is not valid JSON.", "SerializationException");
  }
  if (!input.is_object()) {
    return InvalidArgument("The request body must be a JSON object.", "SerializationException");
  }
  PW_RETURN_IF_ERROR(Sanitize(input, ""));
  *out = std::move(input);
  return Status::Ok();
}

void Dispatcher::Register(std::string target, std::string model_operation, Handler handler) {
  handlers_[std::move(target)] = {std::move(model_operation), std::move(handler), nullptr, nullptr};
}

void Dispatcher::RegisterRaw(std::string target, std::string model_operation, RawHandler handler,
                             PeekHandler peek) {
  handlers_[std::move(target)] = {std::move(model_operation), nullptr, std::move(handler),
                                  std::move(peek)};
}

void Dispatcher::NoteLogFields(const nlohmann::json& input, const RequestContext& ctx) {
  for (const char* key : {"pipelineName", "name"}) {
    auto at = input.find(key);
    if (at != input.end() && at->is_string() && ctx.log_pipeline.empty()) {
      ctx.log_pipeline = spec::TruncateUtf8(at->get<std::string>(), 200);
    }
  }
  if (auto at = input.find("pipelineExecutionId"); at != input.end() && at->is_string()) {
    ctx.log_execution_id = spec::TruncateUtf8(at->get<std::string>(), 200);
  }
}

std::optional<HttpReply> Dispatcher::HandleFast(std::string_view target, std::string_view body,
                                                const RequestContext& ctx) const {
  if (authorizer_) return std::nullopt;  // Authorization may block: Handle decides.
  auto it = handlers_.find(target);
  if (it == handlers_.end() || !it->second.peek) return std::nullopt;
  const Entry& e = it->second;
  try {
    nlohmann::json input;
    if (!ParseRequestBody(body, &input).ok()) return std::nullopt;
    if (!e.model_operation.empty() &&
        !spec::ServiceModel::Get().ValidateInput(e.model_operation, input).ok()) {
      return std::nullopt;
    }
    std::optional<std::string> hit = e.peek(input);
    if (!hit) return std::nullopt;
    NoteLogFields(input, ctx);
    HttpReply r;
    r.body = std::move(*hit);
    return r;
  } catch (const std::exception&) {
    return std::nullopt;  // Handle answers (and logs) whatever went wrong.
  }
}

std::vector<std::string> Dispatcher::Targets() const {
  std::vector<std::string> out;
  for (const auto& [target, entry] : handlers_) out.push_back(target);
  return out;
}

HttpReply Dispatcher::ErrorReply(const Status& s) {
  HttpReply r;
  std::string type = s.wire_name();
  if (s.code() == StatusCode::kInternal) {
    r.status = 500;
    type = "InternalFailure";
  } else if (s.code() == StatusCode::kUnavailable && type.empty()) {
    r.status = 503;
    type = "ServiceUnavailable";
  } else {
    r.status = 400;
    if (type.empty()) type = "ValidationException";
  }
  r.error_type = type;
  r.body = Dump(json{{"__type", type}, {"message", s.message()}});
  return r;
}

HttpReply Dispatcher::Handle(std::string_view target, std::string_view body,
                             const RequestContext& ctx) const {
  if (target.empty()) {
    return ErrorReply(InvalidArgument(
        "Missing X-Amz-Target header; send e.g. X-Amz-Target: CodePipeline_20150709.ListPipelines",
        "UnknownOperationException"));
  }
  auto it = handlers_.find(target);
  if (it == handlers_.end()) {
    std::string op(target);
    if (op.rfind(kCodePipelinePrefix, 0) == 0 &&
        spec::ServiceModel::Get().HasOperation(op.substr(kCodePipelinePrefix.size()))) {
      return ErrorReply(InvalidArgument("Operation " + op.substr(kCodePipelinePrefix.size()) +
                                            " is part of the CodePipeline API but Pipewright "
                                            "does not implement it yet.",
                                        "UnknownOperationException"));
    }
    return ErrorReply(InvalidArgument("Unknown operation '" + op + "' in X-Amz-Target.",
                                      "UnknownOperationException"));
  }
  nlohmann::json input;
  if (Status p = ParseRequestBody(body, &input); !p.ok()) return ErrorReply(p);
  NoteLogFields(input, ctx);
  const Entry& e = it->second;
  if (!e.model_operation.empty()) {
    Status v = Status::Ok();
    try {
      v = spec::ServiceModel::Get().ValidateInput(e.model_operation, input);
    } catch (const std::exception& ex) {  // A validator bug: a fault, never a crash.
      PW_LOG(Error) << "validating " << target << " threw: " << ex.what();
      v = Internal("internal error");
    }
    if (!v.ok()) return ErrorReply(v);
  }
  if (authorizer_) {
    std::string_view op = it->first;
    op.remove_prefix(op.find('.') + 1);  // Targets are "<Service>_<version>.<Operation>".
    Status allowed = authorizer_(op, input, ctx);
    if (!allowed.ok()) return ErrorReply(allowed);
  }
  // Both kinds of handler end as a serialised body (a raw one gives it).
  Result<std::string> answer = Status();
  try {
    if (e.raw) {
      answer = e.raw(input, ctx);
    } else if (Result<nlohmann::json> out = e.handler(input, ctx); out.ok()) {
      answer = out->is_null() ? std::string("{}") : Dump(*out);
    } else {
      answer = out.status();
    }
  } catch (const std::exception& ex) {  // Boundary: nothing escapes to the HTTP library.
    PW_LOG(Error) << "handler for " << target << " threw: " << ex.what();
    answer = Internal("internal error");
  }
  if (!answer.ok()) {
    if (answer.status().code() == StatusCode::kInternal) {
      PW_LOG(Error) << target << ": " << answer.status().ToString();
    }
    return ErrorReply(answer.status());
  }
  HttpReply r;
  r.body = std::move(*answer);
  return r;
}

}  // namespace pw::api
