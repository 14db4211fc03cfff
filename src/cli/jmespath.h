#pragma once

// JMESPath (https://jmespath.org/specification.html) for `--query`, as the
// aws CLI evaluates it (jmespath.py 1.0.1, Debian's python3-jmespath): the
// whole language - identifiers, sub-expressions, indexes, slices, list,
// object and flatten projections, filters with comparisons and && || !,
// multi-select lists and hashes, literals, raw strings, pipes, `@`, function
// calls with expression references, and the 26 built-in functions. Checked
// against the JMESPath compliance suite and jmespath.py itself (see
// jmespath_test.cc). Pure; thread-safe.
//
//   auto expr = cli::JmesPath::Compile("stageStates[?latestExecution.status=='Failed'].stageName");
//   if (!expr.ok()) ...;               // a syntax error, with its position
//   auto names = expr->Search(state);  // OJson, or an error (e.g. invalid-type)

#include <memory>
#include <string>
#include <string_view>

#include "cli/model.h"
#include "common/status.h"

namespace pw::cli {

namespace jmespath_internal {
struct Node;
}  // namespace jmespath_internal

// A compiled expression. Copyable (shares the immutable tree).
class JmesPath {
 public:
  // Parses `expression`. Errors: kInvalidArgument whose message starts with
  // the error's kind as the compliance suite names it ("syntax: ...").
  static Result<JmesPath> Compile(std::string_view expression);

  // Evaluates the expression against `data`. Errors: kInvalidArgument whose
  // message starts with "invalid-type: ", "invalid-value: ",
  // "invalid-arity: " or "unknown-function: ".
  Result<OJson> Search(const OJson& data) const;

 private:
  explicit JmesPath(std::shared_ptr<const jmespath_internal::Node> root) : root_(std::move(root)) {}
  std::shared_ptr<const jmespath_internal::Node> root_;
};

}  // namespace pw::cli
