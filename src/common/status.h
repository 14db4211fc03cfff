#pragma once

// Status and Result<T>: errors as values, shaped like absl::Status/StatusOr.
//
//   Result<int> ParsePort(std::string_view s);
//   auto port = ParsePort("80");
//   if (!port.ok()) return port.status();
//   Use(*port);
//
// A Status carries a canonical code (chosen by abseil's rules), a message for
// people, and optionally the wire name of a service-model exception
// ("StageNotRetryableException") set by the layer that knows it. Only api/
// maps a Status to HTTP. Thread-compatible value types.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace pw {

enum class StatusCode {
  kOk,
  kInvalidArgument,     // Bad input; fix the request.
  kNotFound,            // A named thing does not exist.
  kAlreadyExists,       // Create of something that exists.
  kFailedPrecondition,  // State forbids it until fixed (e.g. stage not retryable).
  kAborted,             // Lost a concurrency race; retry the whole operation.
  kUnavailable,         // Transient (database busy); retry the call.
  kResourceExhausted,   // A limit was reached.
  kInternal,            // A bug or an unexpected environment failure.
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message, std::string wire_name = {})
      : code_(code), message_(std::move(message)), wire_name_(std::move(wire_name)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The service-model exception name, or empty when none was set.
  const std::string& wire_name() const { return wire_name_; }

  // Returns a copy carrying `wire_name`.
  Status WithWireName(std::string wire_name) const {
    return Status(code_, message_, std::move(wire_name));
  }
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string wire_name_;
};

inline Status InvalidArgument(std::string msg, std::string wire = "ValidationException") {
  return Status(StatusCode::kInvalidArgument, std::move(msg), std::move(wire));
}
inline Status NotFound(std::string msg, std::string wire = {}) {
  return Status(StatusCode::kNotFound, std::move(msg), std::move(wire));
}
inline Status AlreadyExists(std::string msg, std::string wire = {}) {
  return Status(StatusCode::kAlreadyExists, std::move(msg), std::move(wire));
}
inline Status FailedPrecondition(std::string msg, std::string wire = {}) {
  return Status(StatusCode::kFailedPrecondition, std::move(msg), std::move(wire));
}
inline Status Aborted(std::string msg, std::string wire = {}) {
  return Status(StatusCode::kAborted, std::move(msg), std::move(wire));
}
inline Status Unavailable(std::string msg, std::string wire = {}) {
  return Status(StatusCode::kUnavailable, std::move(msg), std::move(wire));
}
inline Status ResourceExhausted(std::string msg, std::string wire = {}) {
  return Status(StatusCode::kResourceExhausted, std::move(msg), std::move(wire));
}
inline Status Internal(std::string msg) { return Status(StatusCode::kInternal, std::move(msg)); }

// A value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design, like StatusOr.
  Result(Status status) : v_(std::move(status)) {}  // NOLINT
  bool ok() const { return std::holds_alternative<T>(v_); }
  // The error; Ok() when a value is held.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace pw

#define PW_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::pw::Status pw_status_ = (expr);        \
    if (!pw_status_.ok()) return pw_status_; \
  } while (0)

#define PW_CONCAT_INNER(a, b) a##b
#define PW_CONCAT(a, b) PW_CONCAT_INNER(a, b)
#define PW_ASSIGN_OR_RETURN(lhs, expr) \
  PW_ASSIGN_OR_RETURN_IMPL(PW_CONCAT(pw_res_, __LINE__), lhs, expr)
#define PW_ASSIGN_OR_RETURN_IMPL(res, lhs, expr) \
  auto res = (expr);                             \
  if (!res.ok()) return res.status();            \
  lhs = std::move(res).value()
