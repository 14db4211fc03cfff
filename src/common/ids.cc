#include "common/ids.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdint>

#include "common/check.h"

namespace pw {

void RandomBytes(void* out, size_t n) {
  // getrandom(2) draws from the kernel CSPRNG; every call is independent, so
  // a public id reveals nothing about a secret drawn before or after it.
  auto* p = static_cast<unsigned char*>(out);
  while (n > 0) {
    ssize_t got = ::getrandom(p, n, 0);
    if (got < 0) {
      PW_CHECK(errno == EINTR);  // ENOSYS/EFAULT cannot happen on Linux >= 3.17.
      continue;
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
}

std::string RandomHex(int n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(static_cast<size_t>(n));
  unsigned char buf[64];
  int left = n;
  while (left > 0) {
    int digits = left < 128 ? left : 128;
    size_t bytes = static_cast<size_t>((digits + 1) / 2);
    RandomBytes(buf, bytes);
    for (int i = 0; i < digits; ++i) {
      unsigned char b = buf[i / 2];
      out.push_back(kHex[(i % 2 == 0) ? (b >> 4) : (b & 0xf)]);
    }
    left -= digits;
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
