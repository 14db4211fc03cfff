#pragma once

// A linear pre-scan of a JSON text, run before the parser: how deeply its
// arrays and objects nest. Parsing (and every recursive walk of the result)
// of a text such as 25 MiB of '[' costs seconds of CPU; this costs one pass.
//
//   if (!JsonNestingWithin(body, 64)) return InvalidArgument("nests too deep");
//
// Pure; thread-safe.

#include <string_view>

namespace pw {

// False when arrays/objects in `text` nest deeper than `limit`. No recursion:
// brackets inside JSON strings (with their escapes) do not count. Malformed
// texts may pass; the parser refuses them.
bool JsonNestingWithin(std::string_view text, int limit);

}  // namespace pw
