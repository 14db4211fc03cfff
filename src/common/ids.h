#pragma once

// Random identifiers. Thread-safe.

#include <string>

namespace pw {

// A random lower-case UUID version 4, e.g. "3f0c8a4e-9d1b-4c2a-8e7f-0a1b2c3d4e5f".
std::string NewUuid();

// `n` random lower-case hex digits.
std::string RandomHex(int n);

}  // namespace pw
