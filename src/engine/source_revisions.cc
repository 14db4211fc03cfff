#include "engine/source_revisions.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <string>

namespace pw::engine {
namespace {

const core::ActionDecl* FindAction(const core::PipelineDecl& d, const std::string& name) {
  for (const auto& s : d.stages) {
    for (const auto& a : s.actions) {
      if (a.name == name) return &a;
    }
  }
  return nullptr;
}

std::string SourceActionNames(const core::PipelineDecl& d) {
  std::string names;
  for (const auto& s : d.stages) {
    for (const auto& a : s.actions) {
      if (a.type.category == "Source") names += (names.empty() ? "" : ", ") + a.name;
    }
  }
  return names.empty() ? "none" : names;
}

bool IsCommitId(const std::string& v) {
  return v.size() == 40 &&
         std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

}  // namespace

Status CheckSourceRevisions(const core::PipelineDecl& d,
                            const std::vector<core::SourceRevisionOverride>& revisions) {
  std::set<std::string> seen;
  for (const auto& r : revisions) {
    const std::string where = "sourceRevisions: action '" + r.action + "'";
    const core::ActionDecl* a = FindAction(d, r.action);
    if (a == nullptr || a->type.category != "Source") {
      return InvalidArgument(where + " is not a source action of pipeline " + d.name +
                             " (its source actions: " + SourceActionNames(d) + ").");
    }
    const std::string& provider = a->type.provider;
    // An S3 source may take one S3_OBJECT_VERSION_ID and one S3_OBJECT_KEY
    // together (that key at that version); any other action one revision.
    const bool s3 = a->type.owner == "AWS" && provider == "S3";
    if (!seen.insert(s3 ? r.action + "\n" + r.type : r.action).second) {
      return InvalidArgument(where + " is named more than once" +
                             (s3 ? " with " + r.type +
                                       "; an S3 source takes at most one S3_OBJECT_VERSION_ID "
                                       "and one S3_OBJECT_KEY."
                                 : std::string("; give one revision per action.")));
    }
    const std::string type = a->type.ToString();
    if (a->type.owner == "AWS" &&
        (provider == "Git" || provider == "CodeCommit" || provider == "CodeStarSourceConnection")) {
      if (r.type != "COMMIT_ID") {
        return InvalidArgument(where + " is a " + type +
                               " source: its revisionType is COMMIT_ID, not " + r.type + ".");
      }
      if (!IsCommitId(r.value)) {
        return InvalidArgument(where + ": revisionValue '" + r.value +
                               "' is not a full commit id (40 hexadecimal digits).");
      }
      continue;
    }
    if (a->type.owner == "AWS" && provider == "S3") {
      if (r.type != "S3_OBJECT_VERSION_ID" && r.type != "S3_OBJECT_KEY") {
        return InvalidArgument(where + " is a " + type +
                               " source: its revisionType is S3_OBJECT_VERSION_ID or "
                               "S3_OBJECT_KEY, not " +
                               r.type + ".");
      }
      if (r.type == "S3_OBJECT_KEY") {
        auto allow = a->configuration.find("AllowOverrideForS3ObjectKey");
        std::string v = allow == a->configuration.end() ? "false" : allow->second;
        std::transform(v.begin(), v.end(), v.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (v != "true") {
          return InvalidArgument(where +
                                 ": an S3_OBJECT_KEY override needs the action's "
                                 "configuration AllowOverrideForS3ObjectKey set to true (it "
                                 "defaults to false, as in CodePipeline).");
        }
      }
      continue;
    }
    return InvalidArgument(where + ": sourceRevisions are not supported for " + type +
                           " sources yet; start the execution without one for this action.");
  }
  return Status::Ok();
}

std::vector<core::SourceRevisionOverride> NormalizeSourceRevisions(
    std::vector<core::SourceRevisionOverride> revisions) {
  for (auto& r : revisions) {
    if (r.type == "COMMIT_ID") {
      std::transform(r.value.begin(), r.value.end(), r.value.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    }
  }
  return revisions;
}

}  // namespace pw::engine
