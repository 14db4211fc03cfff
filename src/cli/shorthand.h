#pragma once

// The aws CLI's shorthand syntax for structure arguments, e.g.
//   --tags key=k1,value=v1 key=k2,value=v2
//   --action-type-id category=Build,owner=Custom,provider=P,version=1
//   --filter succeededInStage={stageName=Build},x=[a,b]
// Parsed text is typed by the model shape afterwards, as awscli's
// BackCompatVisitor does (integers, booleans, scalar-to-list). Pure.

#include <string>
#include <string_view>

#include "cli/model.h"
#include "common/status.h"

namespace pw::cli {

// Parses `text` into an object of strings, lists and nested objects. Fails with
// kInvalidArgument and awscli's message ("Expected: '=', received: 'EOF' for
// input:\n<text>\n<caret>") on malformed text.
Result<OJson> ParseShorthand(std::string_view text);

// Converts parsed shorthand strings to the JSON types of `shape_name`:
// integer/long/double from their text, boolean = ("true" ignoring case),
// a scalar where a list is expected becomes a one-element list. Text that
// does not convert is kept as a string (validation reports it).
OJson TypeShorthand(const OJson& parsed, std::string_view shape_name);

}  // namespace pw::cli
