#include "buckets/digests.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

namespace pw::buckets {

// Named, not anonymous: Digester::State has a field of this type (GCC's -Wsubobject-linkage
// in a unity build).
namespace digests_internal {
enum class Algo { kNone, kCrc32, kCrc32c, kCrc64Nvme, kSha1, kSha256 };
}  // namespace digests_internal
using digests_internal::Algo;

namespace {

Algo AlgoOf(std::string_view a) {
  if (a == "CRC32") return Algo::kCrc32;
  if (a == "CRC32C") return Algo::kCrc32c;
  if (a == "CRC64NVME") return Algo::kCrc64Nvme;
  if (a == "SHA1") return Algo::kSha1;
  if (a == "SHA256") return Algo::kSha256;
  return Algo::kNone;
}

// Reflected CRC tables (the polynomials S3 names).
template <typename T>
std::array<T, 256> CrcTable(T reflected_poly) {
  std::array<T, 256> t{};
  for (unsigned i = 0; i < 256; ++i) {
    T c = static_cast<T>(i);
    for (int k = 0; k < 8; ++k) c = (c & 1) ? static_cast<T>((c >> 1) ^ reflected_poly) : c >> 1;
    t[i] = c;
  }
  return t;
}

const std::array<uint32_t, 256>& Crc32Table() {
  static const auto t = CrcTable<uint32_t>(0xEDB88320u);
  return t;
}
const std::array<uint32_t, 256>& Crc32cTable() {
  static const auto t = CrcTable<uint32_t>(0x82F63B78u);
  return t;
}
const std::array<uint64_t, 256>& Crc64NvmeTable() {
  static const auto t = CrcTable<uint64_t>(0x9A6C9329AC4BC9B5ull);
  return t;
}

std::string BigEndian(uint64_t v, int bytes) {
  std::string out(static_cast<size_t>(bytes), '\0');
  for (int i = bytes - 1; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

struct Digester::State {
  Algo algo = Algo::kNone;
  EVP_MD_CTX* md5 = nullptr;
  EVP_MD_CTX* sha = nullptr;
  uint64_t crc = 0;
};

Digester::Digester(std::string_view checksum_algorithm) : s_(std::make_unique<State>()) {
  s_->algo = AlgoOf(checksum_algorithm);
  s_->md5 = EVP_MD_CTX_new();
  EVP_DigestInit_ex(s_->md5, EVP_md5(), nullptr);
  if (s_->algo == Algo::kSha1 || s_->algo == Algo::kSha256) {
    s_->sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(s_->sha, s_->algo == Algo::kSha1 ? EVP_sha1() : EVP_sha256(), nullptr);
  }
  s_->crc = s_->algo == Algo::kCrc64Nvme ? ~uint64_t{0} : 0xFFFFFFFFu;
}

Digester::~Digester() {
  EVP_MD_CTX_free(s_->md5);
  if (s_->sha != nullptr) EVP_MD_CTX_free(s_->sha);
}

void Digester::Update(std::string_view bytes) {
  EVP_DigestUpdate(s_->md5, bytes.data(), bytes.size());
  switch (s_->algo) {
    case Algo::kNone:
      break;
    case Algo::kSha1:
    case Algo::kSha256:
      EVP_DigestUpdate(s_->sha, bytes.data(), bytes.size());
      break;
    case Algo::kCrc32:
    case Algo::kCrc32c: {
      const auto& t = s_->algo == Algo::kCrc32 ? Crc32Table() : Crc32cTable();
      auto c = static_cast<uint32_t>(s_->crc);
      for (char ch : bytes) c = t[(c ^ static_cast<unsigned char>(ch)) & 0xff] ^ (c >> 8);
      s_->crc = c;
      break;
    }
    case Algo::kCrc64Nvme: {
      const auto& t = Crc64NvmeTable();
      uint64_t c = s_->crc;
      for (char ch : bytes) c = t[(c ^ static_cast<unsigned char>(ch)) & 0xff] ^ (c >> 8);
      s_->crc = c;
      break;
    }
  }
}

Digests Digester::Finish() {
  Digests d;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(s_->md5, md, &len);
  d.md5_raw.assign(reinterpret_cast<const char*>(md), len);
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned i = 0; i < len; ++i) {
    d.md5_hex.push_back(kHex[md[i] >> 4]);
    d.md5_hex.push_back(kHex[md[i] & 0xf]);
  }
  switch (s_->algo) {
    case Algo::kNone:
      break;
    case Algo::kSha1:
    case Algo::kSha256:
      EVP_DigestFinal_ex(s_->sha, md, &len);
      d.checksum = Base64Encode(std::string_view(reinterpret_cast<const char*>(md), len));
      break;
    case Algo::kCrc32:
    case Algo::kCrc32c:
      d.checksum = Base64Encode(BigEndian(~s_->crc & 0xFFFFFFFFu, 4));
      break;
    case Algo::kCrc64Nvme:
      d.checksum = Base64Encode(BigEndian(~s_->crc, 8));
      break;
  }
  return d;
}

bool IsChecksumAlgorithm(std::string_view algorithm) { return AlgoOf(algorithm) != Algo::kNone; }

Result<Digests> DigestFile(const std::string& path, std::string_view checksum_algorithm) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Unavailable("cannot read " + path + ": " + std::strerror(errno));
  Digester d(checksum_algorithm);
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return Unavailable("cannot read " + path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    d.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  return d.Finish();
}

std::string Base64Encode(std::string_view in) {
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16) |
                 (static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += {kB64[v >> 18], kB64[(v >> 12) & 63], kB64[(v >> 6) & 63], kB64[v & 63]};
  }
  if (i + 1 == in.size()) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    out += {kB64[v >> 18], kB64[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16) |
                 (static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8);
    out += {kB64[v >> 18], kB64[(v >> 12) & 63], kB64[(v >> 6) & 63], '='};
  }
  return out;
}

bool Base64Decode(std::string_view text, std::string& out) {
  out.clear();
  if (text.size() % 4 != 0) return false;
  auto val = [](char c) -> int {
    const char* p = std::strchr(kB64, c);
    return c != '\0' && p != nullptr ? static_cast<int>(p - kB64) : -1;
  };
  for (size_t i = 0; i < text.size(); i += 4) {
    int a = val(text[i]);
    int b = val(text[i + 1]);
    bool last = i + 4 == text.size();
    bool pad2 = last && text[i + 2] == '=' && text[i + 3] == '=';
    bool pad1 = last && !pad2 && text[i + 3] == '=';
    int c = pad2 ? 0 : val(text[i + 2]);
    int d = pad1 || pad2 ? 0 : val(text[i + 3]);
    if (a < 0 || b < 0 || c < 0 || d < 0) return false;
    uint32_t v = (static_cast<uint32_t>(a) << 18) | (static_cast<uint32_t>(b) << 12) |
                 (static_cast<uint32_t>(c) << 6) | static_cast<uint32_t>(d);
    out.push_back(static_cast<char>(v >> 16));
    if (!pad2) out.push_back(static_cast<char>((v >> 8) & 0xff));
    if (!pad1 && !pad2) out.push_back(static_cast<char>(v & 0xff));
  }
  return true;
}

}  // namespace pw::buckets
