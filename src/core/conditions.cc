#include "core/conditions.h"

#include <regex>

namespace pw::core {
namespace {

std::string Get(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? std::string() : it->second;
}

}  // namespace

bool IsVariableCheckOperator(const std::string& op) {
  return op == "EQ" || op == "NE" || op == "CONTAINS" || op == "MATCHES";
}

RuleVerdict EvaluateVariableCheck(const std::map<std::string, std::string>& resolved) {
  const std::string variable = Get(resolved, "Variable");
  const std::string value = Get(resolved, "Value");
  const std::string op = Get(resolved, "Operator");
  RuleVerdict v;
  const std::string shown = "'" + variable + "' " + op + " '" + value + "'";
  if (op == "EQ") {
    v.passed = variable == value;
  } else if (op == "NE") {
    v.passed = variable != value;
  } else if (op == "CONTAINS") {
    v.passed = variable.find(value) != std::string::npos;
  } else if (op == "MATCHES") {
    // std::regex recurses per character: bound the text it walks.
    if (variable.size() > 4096 || value.size() > 1000) {
      v.summary = "MATCHES compares at most 4096 characters against a pattern of at most 1000.";
      return v;
    }
    try {
      v.passed = std::regex_match(variable, std::regex(value, std::regex::ECMAScript));
    } catch (const std::regex_error& e) {
      v.summary = "Value '" + value + "' is not a valid regular expression: " + e.what();
      return v;
    }
  } else {
    v.summary = "Unknown Operator '" + op + "'; use EQ, NE, CONTAINS or MATCHES.";
    return v;
  }
  v.summary = (v.passed ? "Passed: " : "Failed: ") + shown + ".";
  return v;
}

}  // namespace pw::core
