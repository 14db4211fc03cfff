#pragma once

// Random identifiers and secrets, all from the kernel's CSPRNG (getrandom).
// Thread-safe.

#include <cstddef>
#include <string>

namespace pw {

// Fills `out` with `n` bytes from the OS CSPRNG.
void RandomBytes(void* out, size_t n);

// A random lower-case UUID version 4, e.g. "3f0c8a4e-9d1b-4c2a-8e7f-0a1b2c3d4e5f".
std::string NewUuid();

// `n` random lower-case hex digits (4 bits of entropy each).
std::string RandomHex(int n);

}  // namespace pw
