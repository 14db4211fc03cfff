#include "api/dispatcher.h"

#include "common/log.h"
#include "spec/service_model.h"

namespace pw::api {

void Dispatcher::Register(std::string target, std::string model_operation, Handler handler) {
  handlers_[std::move(target)] = {std::move(model_operation), std::move(handler)};
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
  r.body = nlohmann::json{{"__type", type}, {"message", s.message()}}.dump();
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
  nlohmann::json input = nlohmann::json::object();
  if (!body.empty()) {
    input = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (input.is_discarded()) {
      return ErrorReply(
          InvalidArgument("The request body is not valid JSON.", "SerializationException"));
    }
    if (!input.is_object()) {
      return ErrorReply(
          InvalidArgument("The request body must be a JSON object.", "SerializationException"));
    }
  }
  const Entry& e = it->second;
  if (!e.model_operation.empty()) {
    Status v = spec::ServiceModel::Get().ValidateInput(e.model_operation, input);
    if (!v.ok()) return ErrorReply(v);
  }
  if (authorizer_) {
    std::string_view op = it->first;
    op.remove_prefix(op.find('.') + 1);  // Targets are "<Service>_<version>.<Operation>".
    Status allowed = authorizer_(op, input, ctx);
    if (!allowed.ok()) return ErrorReply(allowed);
  }
  Result<nlohmann::json> out = Status();
  try {
    out = e.handler(input, ctx);
  } catch (const std::exception& ex) {  // Boundary: nothing escapes to the HTTP library.
    PW_LOG(Error) << "handler for " << target << " threw: " << ex.what();
    out = Internal("internal error");
  }
  if (!out.ok()) {
    if (out.status().code() == StatusCode::kInternal) {
      PW_LOG(Error) << target << ": " << out.status().ToString();
    }
    return ErrorReply(out.status());
  }
  HttpReply r;
  if (!out->is_null())
    r.body = out->dump();
  else
    r.body = "{}";
  return r;
}

}  // namespace pw::api
