#include "common/ids.h"

#include <cstdint>
#include <mutex>
#include <random>

namespace pw {
namespace {

uint64_t Random64() {
  static std::mutex mu;
  static std::mt19937_64 gen{std::random_device{}()};  // Guarded by mu.
  std::lock_guard lock(mu);
  return gen();
}

}  // namespace

std::string RandomHex(int n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(static_cast<size_t>(n));
  uint64_t bits = 0;
  int left = 0;
  for (int i = 0; i < n; ++i) {
    if (left == 0) {
      bits = Random64();
      left = 16;
    }
    out.push_back(kHex[bits & 0xf]);
    bits >>= 4;
    --left;
  }
  return out;
}

std::string NewUuid() {
  std::string h = RandomHex(32);
  h[12] = '4';
  h[16] = "89ab"[static_cast<unsigned char>(h[16]) % 4];
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

}  // namespace pw
