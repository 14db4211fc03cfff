#pragma once

// UTF-8 well-formedness, for request values that are stored as they came
// (S3 object keys and metadata): JSON and XML replies can hold only UTF-8.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pw {

// True when `s` is well-formed UTF-8 (RFC 3629): no overlong forms, no
// surrogates (U+D800..U+DFFF), nothing past U+10FFFF, no truncated sequence.
bool IsUtf8(std::string_view s);

// Appends the UTF-8 encoding of `code_point` (at most U+10FFFF, not a
// surrogate) to `out`.
void AppendUtf8(uint32_t code_point, std::string& out);

// The length of the well-formed sequence at s[i] (i < s.size()): 1 to 4
// bytes, or 0 when none starts there.
size_t Utf8SequenceAt(std::string_view s, size_t i);

// `s` with each byte that starts no well-formed sequence replaced by U+FFFD
// (what nlohmann::json's error_handler_t::replace does for JSON).
std::string ValidUtf8(std::string_view s);

}  // namespace pw
