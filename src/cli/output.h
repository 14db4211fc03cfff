#pragma once

// Response handling as botocore's JSON parser and the aws CLI v2 JSON
// formatter do it: keep only members the model knows (in model order, nulls
// dropped), render timestamps as ISO 8601, print with a 4-space indent and
// print nothing for an empty object. Pure.

#include <string>
#include <string_view>

#include "cli/model.h"

namespace pw::cli {

// `body` reduced to `shape_name`'s members, in model order; timestamps (epoch
// seconds) become "2023-11-14T22:13:20.500000+00:00".
OJson ShapeOutput(const OJson& body, std::string_view shape_name);

// Python's datetime.fromtimestamp(seconds, tzutc()).isoformat().
std::string IsoTimestamp(double epoch_seconds);

// What `aws --output json` prints for `response`: indented JSON and a newline,
// or "" for an empty object.
std::string RenderJson(const OJson& response);

}  // namespace pw::cli
