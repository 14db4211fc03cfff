#pragma once

// Built-in rule evaluators that need nothing but the rule's resolved
// configuration (VariableCheck) or a time (DeploymentWindow's cron): pure
// functions, used by the state machine when a condition starts and by the
// engine's ticker. Thread-safe.
//
//   RuleVerdict v = EvaluateVariableCheck({{"Variable", "closed"}, {"Value", "open"},
//                                          {"Operator", "EQ"}});   // v.passed == false

#include <map>
#include <string>

#include "common/status.h"

namespace pw::core {

struct RuleVerdict {
  bool passed = false;
  std::string summary;  // What was compared and why it passed or failed.
};

// VariableCheck (AWS's rule reference): Operator EQ, NE, CONTAINS (Value is
// a substring of Variable) or MATCHES (Variable matches the regular
// expression Value as a whole; ECMAScript syntax, close to Java's). A bad
// regular expression fails the rule with a message.
RuleVerdict EvaluateVariableCheck(const std::map<std::string, std::string>& resolved);

// The operators EvaluateVariableCheck knows (for declaration checks).
bool IsVariableCheckOperator(const std::string& op);

}  // namespace pw::core
