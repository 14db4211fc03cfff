#pragma once

// What both stores answer for the same conditions, and how both read a stored document: one
// copy, so SQLite and PostgreSQL give the same codes and messages.

#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "store/store.h"

namespace pw::store {

// A stored JSON document; an object when it cannot be parsed (never throws).
nlohmann::json ParseDoc(const std::string& s);

// A row's document `stored` as `docs` asks: parsed into `doc` (kParsed) or
// kept as `text` (kText, `doc` left as it is).
void SetDoc(std::string stored, Docs docs, nlohmann::json* doc, std::string* text);

// PipelineNotFoundException for `name`.
Status PipelineNotFound(const std::string& name);

// ConcurrentModificationException: the row `what` `id` changed since it was read.
Status RowConflict(const std::string& what, const std::string& id);

// ConcurrentModificationException: `version` cannot follow the pipeline's `current` version.
Status VersionConflict(const std::string& name, int version, int current);

}  // namespace pw::store
