#include "store/kv_range.h"

#include <cstdint>

#include "common/utf8.h"

namespace pw::store {

std::optional<std::string> BytesPrefixEnd(std::string_view prefix) {
  std::string out(prefix);
  while (!out.empty() && static_cast<unsigned char>(out.back()) == 0xFF) out.pop_back();
  if (out.empty()) return std::nullopt;
  out.back() = static_cast<char>(static_cast<unsigned char>(out.back()) + 1);
  return out;
}

namespace {

// The start of the last code point of well-formed UTF-8 `s` (non-empty).
size_t LastCodePointStart(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

uint32_t Decode(std::string_view s) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(s[i])); };
  switch (s.size()) {
    case 1:
      return b(0);
    case 2:
      return (b(0) & 0x1F) << 6 | (b(1) & 0x3F);
    case 3:
      return (b(0) & 0x0F) << 12 | (b(1) & 0x3F) << 6 | (b(2) & 0x3F);
    default:
      return (b(0) & 0x07) << 18 | (b(1) & 0x3F) << 12 | (b(2) & 0x3F) << 6 | (b(3) & 0x3F);
  }
}

}  // namespace

std::optional<std::string> Utf8PrefixEnd(std::string_view prefix) {
  while (!prefix.empty()) {
    size_t start = LastCodePointStart(prefix);
    uint32_t c = Decode(prefix.substr(start));
    prefix = prefix.substr(0, start);
    if (c == 0x10FFFF) continue;
    std::string out(prefix);
    AppendUtf8(c == 0xD7FF ? 0xE000 : c + 1, out);
    return out;
  }
  return std::nullopt;
}

namespace {

// The well-formed, NUL-free bytes `s` starts with.
size_t StorableLength(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && s[i] != '\0') {
    const size_t n = Utf8SequenceAt(s, i);
    if (n == 0) break;
    i += n;
  }
  return i;
}

// The least well-formed sequence that starts with lead byte `b` (0xC2..0xF4).
std::string LeastSequence(unsigned char b) {
  std::string out(1, static_cast<char>(b));
  const size_t continuations = b < 0xE0 ? 1 : b < 0xF0 ? 2 : 3;
  for (size_t k = 0; k < continuations; ++k) out += '\x80';
  if (b == 0xE0) out[1] = '\xA0';  // No overlong forms.
  if (b == 0xF0) out[1] = '\x90';
  return out;
}

}  // namespace

std::optional<KvScan> Utf8StorableScan(const KvScan& scan, bool* exact) {
  *exact = true;
  if (StorableLength(scan.prefix) != scan.prefix.size()) return std::nullopt;
  const size_t i = StorableLength(scan.start);
  if (i == scan.start.size()) return scan;
  // Every storable key that shares the start's storable part `head` goes on
  // with a lead byte (0x01..0x7F, 0xC2..0xF4) where the start has `b`.
  const std::string head = scan.start.substr(0, i);
  const auto b = static_cast<unsigned char>(scan.start[i]);
  KvScan out = scan;
  if (b == 0) {
    out.start = head;  // Only `head` itself sorts before the start.
    out.from = KvFrom::kAfter;
  } else if (b < 0xC2) {
    out.start = head + "\xC2\x80";  // 0x80..0xC1: past every ASCII byte, before U+0080.
    out.from = KvFrom::kAt;
  } else if (b > 0xF4) {
    out.start = head;  // Past every lead byte.
    out.from = KvFrom::kPast;
  } else {
    // A lead byte whose sequence is broken: start at the least sequence of
    // that lead byte, and let the caller drop what sorts before the start.
    out.start = head + LeastSequence(b);
    out.from = KvFrom::kAt;
    *exact = false;
  }
  return out;
}

bool KvStartAdmits(const KvScan& scan, std::string_view key) {
  switch (scan.from) {
    case KvFrom::kAt:
      return key >= scan.start;
    case KvFrom::kAfter:
      return key > scan.start;
    case KvFrom::kPast:
      return key > scan.start && !key.starts_with(scan.start);
  }
  return false;
}

std::optional<KvLower> KvLowerBound(const KvScan& scan,
                                    std::optional<std::string> (*prefix_end)(std::string_view)) {
  KvLower lower{scan.prefix, true};
  KvLower start{scan.start, scan.from == KvFrom::kAt};
  if (scan.from == KvFrom::kPast) {
    auto end = prefix_end(scan.start);
    if (!end) return std::nullopt;
    start = {*end, true};
  }
  // The greater bound; at a tie the exclusive one.
  if (start.bound > lower.bound || (start.bound == lower.bound && !start.inclusive)) {
    lower = start;
  }
  return lower;
}

}  // namespace pw::store
