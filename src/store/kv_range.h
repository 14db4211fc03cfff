#pragma once

// Key ranges of the kv table, for reads that page through a prefix in byte
// order (the server's S3 listings) instead of reading all of it.
//
//   KvScan scan("s3obj/b/", "s3obj/b/dir3/", KvFrom::kPast, 100);
//   auto rows = store.ScanKv(scan);  // Keys of s3obj/b/ after every "s3obj/b/dir3/..." key.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace pw::store {

// Where a scan starts, relative to KvScan::start.
enum class KvFrom {
  kAt,     // Keys >= start.
  kAfter,  // Keys > start.
  kPast,   // Keys after every key that starts with `start`.
};

struct KvScan {
  KvScan() = default;
  explicit KvScan(std::string key_prefix, std::string start_key = "", KvFrom where = KvFrom::kAt,
                  size_t max_rows = 0)
      : prefix(std::move(key_prefix)), start(std::move(start_key)), from(where), limit(max_rows) {}

  std::string prefix;  // Only keys that start with this ("" = every key).
  std::string start;   // With `from`; "" and kAt = from the prefix's first key.
  KvFrom from = KvFrom::kAt;
  size_t limit = 0;  // At most this many rows; 0 = all.
};

// The least string greater than every string that starts with `prefix`, in
// byte order; nullopt when there is none ("" or all 0xFF bytes). For
// SQLite, whose TEXT keys compare as bytes and may hold any byte.
std::optional<std::string> BytesPrefixEnd(std::string_view prefix);

// The same among well-formed UTF-8 strings, whose byte order is code point
// order: `prefix` with its last code point raised by one (U+D7FF to U+E000;
// a last U+10FFFF is dropped and the one before it raised). Only for a
// well-formed `prefix` (IsUtf8); the result is well-formed too. nullopt when
// there is none. For PostgreSQL, which stores only well-formed UTF-8 and
// refuses a parameter that is not.
std::optional<std::string> Utf8PrefixEnd(std::string_view prefix);

// For a store that holds only well-formed UTF-8 without NUL (PostgreSQL,
// which refuses any other parameter): `scan` with such a prefix and start.
// Among such keys it admits exactly what `scan` admits when *exact is set;
// else a superset whose extra keys all sort before the admitted ones (drop
// them with KvStartAdmits; the first admitted key ends the extras). nullopt
// when no such key can start with scan.prefix.
std::optional<KvScan> Utf8StorableScan(const KvScan& scan, bool* exact);

// True when `key` (which starts with scan.prefix) is at or past the scan's
// start, comparing bytes.
bool KvStartAdmits(const KvScan& scan, std::string_view key);

// The lower bound of `scan` as one comparison: {bound, inclusive}, the
// greater of the prefix and the start condition; nullopt when nothing can
// follow (kPast of a string with no end). `prefix_end` is how the store
// bounds a prefix (BytesPrefixEnd or Utf8PrefixEnd).
struct KvLower {
  std::string bound;
  bool inclusive = true;
};
std::optional<KvLower> KvLowerBound(const KvScan& scan,
                                    std::optional<std::string> (*prefix_end)(std::string_view));

}  // namespace pw::store
