#include "store/store_errors.h"

namespace pw::store {

nlohmann::json ParseDoc(const std::string& s) {
  nlohmann::json j = nlohmann::json::parse(s, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

void SetDoc(std::string stored, Docs docs, nlohmann::json* doc, std::string* text) {
  if (docs == Docs::kText) {
    *text = std::move(stored);
  } else {
    *doc = ParseDoc(stored);
  }
}

Status PipelineNotFound(const std::string& name) {
  return NotFound("The pipeline '" + name + "' was not found; check its name with list-pipelines.",
                  "PipelineNotFoundException");
}

Status RowConflict(const std::string& what, const std::string& id) {
  return Aborted(what + " " + id + " was changed by another writer; reload it and decide again.",
                 "ConcurrentModificationException");
}

Status VersionConflict(const std::string& name, int version, int current) {
  return Aborted("Pipeline '" + name + "' was changed by another update: version " +
                     std::to_string(version) + " cannot follow its current version " +
                     std::to_string(current) + "; get the pipeline again and retry.",
                 "ConcurrentModificationException");
}

}  // namespace pw::store
