#pragma once

// IAM-style identity policies for Pipewright's access keys: parsing and
// evaluation of the subset of the IAM JSON policy language that applies to
// one service, evaluated as IAM does (an explicit Deny wins, then an Allow,
// else an implicit deny). Immutable after Parse; thread-safe to share.
//
//   auto p = Policy::Parse(R"({"Version":"2012-10-17","Statement":[
//       {"Effect":"Allow","Action":["codepipeline:Get*","codepipeline:List*"],
//        "Resource":"*"}]})");
//   if (!p.ok()) return p.status();
//   bool ok = p->Evaluate("codepipeline:GetPipelineState",
//                         "arn:aws:codepipeline:us-east-1:123456789012:MyPipeline") ==
//             Decision::kAllow;
//
// Supported elements: Version ("2012-10-17" or "2008-10-17", optional),
// Statement (an object or a list), and in each statement Sid, Effect
// (Allow/Deny), exactly one of Action/NotAction (a string or a list; '*' and
// '?' wildcards; compared case-insensitively, as IAM does) and Resource (a
// string or a list of ARNs with '*' and '?' wildcards, case-sensitive). Every
// other element (Condition, Principal, NotPrincipal, NotResource, Id…) and
// policy variables ("${aws:username}") are refused at parse time rather than
// silently ignored: a policy never grants more than it reads as granting.

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace pw::auth {

enum class Decision {
  kAllow,         // A statement allows it and none denies it.
  kExplicitDeny,  // A Deny statement matches (wins over any Allow).
  kImplicitDeny,  // No statement matches.
};

class Policy {
 public:
  // Parses a policy document. Fails with kInvalidArgument and a message
  // naming the statement and element at fault (e.g. "Statement 2: Condition
  // is not supported by Pipewright").
  static Result<Policy> Parse(std::string_view json_text);

  // Decides for `action` ("codepipeline:GetPipeline") on `resource` (an ARN
  // or "*").
  Decision Evaluate(std::string_view action, std::string_view resource) const;

 private:
  struct Statement {
    bool allow = false;
    bool not_action = false;  // The action list is a NotAction.
    std::vector<std::string> actions;
    std::vector<std::string> resources;
  };
  std::vector<Statement> statements_;
};

// IAM wildcard matching: '*' matches any run of characters (also empty), '?'
// exactly one. With `ignore_case`, ASCII letters compare case-insensitively.
bool WildcardMatch(std::string_view pattern, std::string_view text, bool ignore_case);

}  // namespace pw::auth
