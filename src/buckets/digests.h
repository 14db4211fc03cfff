#pragma once

// Digests of object bodies as S3 reports and checks them: the MD5 of the
// ETag and Content-MD5, and the x-amz-checksum-* algorithms (CRC32, CRC32C,
// CRC64NVME, SHA1, SHA256), computed in one pass over the bytes.
//
//   Digester d("CRC32");
//   d.Update(chunk);                       // as often as needed
//   Digests out = d.Finish();              // out.md5_hex, out.checksum (base64)
//
// Thread-compatible.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace pw::buckets {

struct Digests {
  std::string md5_hex;   // Lower-case hex.
  std::string md5_raw;   // 16 bytes.
  std::string checksum;  // Base64 of the big-endian checksum; empty without an algorithm.
};

class Digester {
 public:
  // `checksum_algorithm`: "" (MD5 only) or one of IsChecksumAlgorithm's.
  explicit Digester(std::string_view checksum_algorithm = "");
  ~Digester();
  Digester(const Digester&) = delete;
  Digester& operator=(const Digester&) = delete;

  void Update(std::string_view bytes);
  Digests Finish();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// True for CRC32, CRC32C, CRC64NVME, SHA1, SHA256 (upper case, as the
// x-amz-checksum-algorithm header names them).
bool IsChecksumAlgorithm(std::string_view algorithm);

// Digests of a whole file. kUnavailable when it cannot be read.
Result<Digests> DigestFile(const std::string& path, std::string_view checksum_algorithm);

std::string Base64Encode(std::string_view bytes);
// Decodes standard base64 (padding required); false when malformed.
bool Base64Decode(std::string_view text, std::string& out);

}  // namespace pw::buckets
