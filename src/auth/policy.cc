#include "auth/policy.h"

#include <nlohmann/json.hpp>

namespace pw::auth {
namespace {

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// A string or a list of non-empty strings, as IAM allows for Action and Resource.
Result<std::vector<std::string>> StringOrList(const nlohmann::json& v, const std::string& where) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array() && !v.empty()) {
    for (const auto& e : v) {
      if (!e.is_string()) return InvalidArgument(where + " must be a string or a list of strings");
      out.push_back(e.get<std::string>());
    }
  } else {
    return InvalidArgument(where + " must be a string or a non-empty list of strings");
  }
  for (const auto& s : out) {
    if (s.empty()) return InvalidArgument(where + " holds an empty string");
    if (s.find("${") != std::string::npos) {
      return InvalidArgument(where + " uses a policy variable (" + s +
                             "); policy variables are not supported by Pipewright");
    }
  }
  return out;
}

Status CheckAction(const std::string& a, const std::string& where) {
  if (a == "*") return Status::Ok();
  auto colon = a.find(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgument(where + " '" + a +
                           "' is not 'service:Operation' (e.g. codepipeline:GetPipeline)");
  }
  return Status::Ok();
}

}  // namespace

bool WildcardMatch(std::string_view pattern, std::string_view text, bool ignore_case) {
  // Iterative glob with backtracking to the last '*': linear in practice,
  // never exponential.
  size_t p = 0;
  size_t t = 0;
  size_t star = std::string_view::npos;
  size_t star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_t = t;
    } else if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t] ||
                                      (ignore_case && Lower(pattern[p]) == Lower(text[t])))) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++star_t;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Result<Policy> Policy::Parse(std::string_view json_text) {
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgument("the policy is not valid JSON");
  if (!doc.is_object()) return InvalidArgument("the policy must be a JSON object");
  Policy policy;
  for (const auto& [key, value] : doc.items()) {
    if (key == "Version") {
      if (!value.is_string() ||
          (value.get<std::string>() != "2012-10-17" && value.get<std::string>() != "2008-10-17")) {
        return InvalidArgument("Version must be \"2012-10-17\" (or \"2008-10-17\")");
      }
    } else if (key != "Statement") {
      return InvalidArgument("the policy element " + key +
                             " is not supported by Pipewright (only Version and Statement)");
    }
  }
  if (!doc.contains("Statement")) return InvalidArgument("the policy has no Statement");
  nlohmann::json statements = doc["Statement"];
  if (statements.is_object()) statements = nlohmann::json::array({statements});
  if (!statements.is_array()) {
    return InvalidArgument("Statement must be an object or a list of objects");
  }
  int n = 0;
  for (const auto& st : statements) {
    std::string where = "Statement " + std::to_string(++n);
    if (!st.is_object()) return InvalidArgument(where + " is not an object");
    Statement s;
    bool has_effect = false;
    bool has_action = false;
    bool has_resource = false;
    for (const auto& [key, value] : st.items()) {
      if (key == "Sid") {
        if (!value.is_string()) return InvalidArgument(where + ": Sid must be a string");
      } else if (key == "Effect") {
        if (value == "Allow") {
          s.allow = true;
        } else if (value == "Deny") {
          s.allow = false;
        } else {
          return InvalidArgument(where + ": Effect must be \"Allow\" or \"Deny\"");
        }
        has_effect = true;
      } else if (key == "Action" || key == "NotAction") {
        if (has_action) return InvalidArgument(where + " has both Action and NotAction");
        has_action = true;
        s.not_action = key == "NotAction";
        PW_ASSIGN_OR_RETURN(s.actions, StringOrList(value, where + ": " + key));
        for (const auto& a : s.actions) PW_RETURN_IF_ERROR(CheckAction(a, where + ": " + key));
      } else if (key == "Resource") {
        has_resource = true;
        PW_ASSIGN_OR_RETURN(s.resources, StringOrList(value, where + ": Resource"));
        for (const auto& r : s.resources) {
          if (r != "*" && r.rfind("arn:", 0) != 0) {
            return InvalidArgument(where + ": Resource '" + r + "' is neither \"*\" nor an ARN");
          }
        }
      } else {
        return InvalidArgument(where + ": " + key +
                               " is not supported by Pipewright (supported: Sid, Effect, Action, "
                               "NotAction, Resource)");
      }
    }
    if (!has_effect) return InvalidArgument(where + " has no Effect");
    if (!has_action) return InvalidArgument(where + " has no Action or NotAction");
    if (!has_resource) {
      return InvalidArgument(where + " has no Resource (use \"Resource\": \"*\" for all)");
    }
    policy.statements_.push_back(std::move(s));
  }
  if (policy.statements_.empty()) return InvalidArgument("Statement is empty");
  return policy;
}

Decision Policy::Evaluate(std::string_view action, std::string_view resource) const {
  bool allowed = false;
  for (const Statement& s : statements_) {
    bool action_listed = false;
    for (const auto& a : s.actions) {
      if (WildcardMatch(a, action, /*ignore_case=*/true)) {
        action_listed = true;
        break;
      }
    }
    if (action_listed == s.not_action) continue;
    bool resource_matches = false;
    for (const auto& r : s.resources) {
      if (WildcardMatch(r, resource, /*ignore_case=*/false)) {
        resource_matches = true;
        break;
      }
    }
    if (!resource_matches) continue;
    if (!s.allow) return Decision::kExplicitDeny;
    allowed = true;
  }
  return allowed ? Decision::kAllow : Decision::kImplicitDeny;
}

}  // namespace pw::auth
