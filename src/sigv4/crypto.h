#pragma once

// SHA-256 and HMAC-SHA256 as SigV4 uses them, over OpenSSL's libcrypto.
// Pure functions; thread-safe.
//
//   std::string key = SigningKeyFor(secret, "20150830", "us-east-1", "service");
//   std::string sig = HexEncode(HmacSha256(key, string_to_sign));

#include <string>
#include <string_view>

namespace pw::sigv4 {

// Lowercase hex of `bytes`.
std::string HexEncode(std::string_view bytes);

// Lowercase hex SHA-256 of `data` (64 characters).
std::string Sha256Hex(std::string_view data);

// Raw 32-byte HMAC-SHA256 of `data` under `key`.
std::string HmacSha256(std::string_view key, std::string_view data);

// The raw 32-byte SigV4 signing key:
// HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
// `date` is yyyymmdd. Computed afresh on each call (no cache).
std::string SigningKeyFor(std::string_view secret_access_key, std::string_view date,
                          std::string_view region, std::string_view service);

// True when `a` and `b` are equal, in time independent of where they differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace pw::sigv4
