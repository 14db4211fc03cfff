#include "store/kv_range.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "common/utf8.h"

namespace pw::store::kv_range_test {
namespace {

TEST(BytesPrefixEnd, RaisesTheLastByteThatCanBeRaised) {
  EXPECT_EQ(BytesPrefixEnd("abc"), "abd");
  EXPECT_EQ(BytesPrefixEnd("a/"), "a0");
  EXPECT_EQ(BytesPrefixEnd(std::string("a\xff\xff", 3)), "b");
  EXPECT_EQ(BytesPrefixEnd(std::string("a\x7f", 2)), std::string("a\x80", 2));
  EXPECT_EQ(BytesPrefixEnd(""), std::nullopt);
  EXPECT_EQ(BytesPrefixEnd(std::string("\xff\xff", 2)), std::nullopt);
}

TEST(Utf8PrefixEnd, RaisesTheLastCodePointAndStaysWellFormed) {
  EXPECT_EQ(Utf8PrefixEnd("abc"), "abd");
  EXPECT_EQ(Utf8PrefixEnd("a\x7f"), "a\xc2\x80");                // U+007F -> U+0080
  EXPECT_EQ(Utf8PrefixEnd("a\xc3\xbf"), "a\xc4\x80");            // U+00FF -> U+0100
  EXPECT_EQ(Utf8PrefixEnd("\xdf\xbf"), "\xe0\xa0\x80");          // U+07FF -> U+0800
  EXPECT_EQ(Utf8PrefixEnd("\xed\x9f\xbf"), "\xee\x80\x80");      // U+D7FF -> U+E000
  EXPECT_EQ(Utf8PrefixEnd("\xef\xbf\xbf"), "\xf0\x90\x80\x80");  // U+FFFF -> U+10000
  EXPECT_EQ(Utf8PrefixEnd("a\xf4\x8f\xbf\xbf"), "b");            // U+10FFFF is dropped
  EXPECT_EQ(Utf8PrefixEnd("\xf4\x8f\xbf\xbf\xf4\x8f\xbf\xbf"), std::nullopt);
  EXPECT_EQ(Utf8PrefixEnd(""), std::nullopt);
}

// A random well-formed string over code points near the encoding's edges.
std::string RandomUtf8(std::mt19937& rng) {
  static const uint32_t kEdges[] = {0x0,    0x2e,   0x2f,    0x30,     0x7e,    0x7f,
                                    0x80,   0xff,   0x7ff,   0x800,    0xd7ff,  0xe000,
                                    0xfffd, 0xffff, 0x10000, 0x10fffe, 0x10ffff};
  std::string out;
  int n = std::uniform_int_distribution<int>(1, 4)(rng);
  for (int i = 0; i < n; ++i) {
    uint32_t c = kEdges[std::uniform_int_distribution<size_t>(0, std::size(kEdges) - 1)(rng)];
    AppendUtf8(c, out);
  }
  return out;
}

// For well-formed strings: [p, end) holds exactly the strings that start
// with p, and the end is well-formed.
TEST(Utf8PrefixEnd, BoundsExactlyTheStringsWithThePrefix) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string p = RandomUtf8(rng);
    std::string s = RandomUtf8(rng);
    if (i % 3 == 0) s = p + s;
    auto end = Utf8PrefixEnd(p);
    if (end) {
      ASSERT_TRUE(IsUtf8(*end));
    }
    bool in_range = s >= p && (!end || s < *end);
    ASSERT_EQ(in_range, s.starts_with(p)) << i;
  }
}

TEST(KvLowerBound, TakesTheGreaterOfPrefixAndStart) {
  auto at = [](std::string prefix, std::string start, KvFrom from) {
    return KvLowerBound(KvScan(prefix, start, from), BytesPrefixEnd);
  };
  auto b = at("p/", "", KvFrom::kAt);
  EXPECT_EQ(b->bound, "p/");
  EXPECT_TRUE(b->inclusive);
  b = at("p/", "a", KvFrom::kAfter);  // A start before the prefix.
  EXPECT_EQ(b->bound, "p/");
  EXPECT_TRUE(b->inclusive);
  b = at("p/", "p/", KvFrom::kAfter);
  EXPECT_EQ(b->bound, "p/");
  EXPECT_FALSE(b->inclusive);
  b = at("p/", "p/k", KvFrom::kAt);
  EXPECT_EQ(b->bound, "p/k");
  EXPECT_TRUE(b->inclusive);
  b = at("p/", "p/d/", KvFrom::kPast);
  EXPECT_EQ(b->bound, "p/d0");
  EXPECT_TRUE(b->inclusive);
  EXPECT_FALSE(at("", std::string("\xff", 1), KvFrom::kPast).has_value());
}

// Random byte strings, mostly UTF-8 with stray bytes, NUL and broken sequences.
std::string RandomBytes(std::mt19937& rng) {
  static const char* const kPieces[] = {"a",
                                        "/",
                                        "\x7f",
                                        "(NUL)",
                                        "\x80",
                                        "\xc1",
                                        "\xc3\xa9",
                                        "\xe3",
                                        "\xe3\x81",
                                        "\xe3\x81\x82",
                                        "\xe0\x80",
                                        "\xed\xa0\x80",
                                        "\xef\xbf\xbf",
                                        "\xf0\x90",
                                        "\xf4\x8f\xbf\xbf",
                                        "\xf5",
                                        "\xff"};
  std::string out;
  int n = std::uniform_int_distribution<int>(0, 4)(rng);
  for (int i = 0; i < n; ++i) {
    size_t k = std::uniform_int_distribution<size_t>(0, std::size(kPieces) - 1)(rng);
    if (k == 3) {
      out += '\0';
    } else {
      out += kPieces[k];
    }
  }
  return out;
}

// PostgreSQL's scan: among well-formed keys without NUL, the storable scan
// admits what the byte comparison admits (exactly, or with extras that all
// sort first), and its own strings are storable.
TEST(Utf8StorableScan, AdmitsWhatTheByteComparisonAdmits) {
  std::mt19937 rng(5);
  auto storable = [](const std::string& s) {
    return IsUtf8(s) && s.find('\0') == std::string::npos;
  };
  std::vector<std::string> keys;
  while (keys.size() < 300) {
    std::string k = "p" + RandomBytes(rng);
    if (storable(k)) keys.push_back(k);
  }
  std::sort(keys.begin(), keys.end());
  int inexact = 0;
  for (int i = 0; i < 3000; ++i) {
    KvScan scan(i % 5 == 0 ? "" : "p", "p" + RandomBytes(rng),
                static_cast<KvFrom>(std::uniform_int_distribution<int>(0, 2)(rng)));
    bool exact = false;
    auto q = Utf8StorableScan(scan, &exact);
    ASSERT_TRUE(q.has_value());
    ASSERT_TRUE(storable(q->prefix));
    ASSERT_TRUE(storable(q->start)) << ::testing::PrintToString(q->start);
    inexact += exact ? 0 : 1;
    auto lower = KvLowerBound(*q, Utf8PrefixEnd);
    bool seen_admitted = false;
    for (const auto& k : keys) {
      if (!k.starts_with(scan.prefix)) continue;
      bool in_q = lower && (lower->inclusive ? k >= lower->bound : k > lower->bound);
      bool admitted = KvStartAdmits(scan, k);
      if (admitted) {
        ASSERT_TRUE(in_q) << ::testing::PrintToString(scan.start) << " "
                          << ::testing::PrintToString(k);
        seen_admitted = true;
      } else if (in_q) {
        // An extra: only when not exact, and only before every admitted key.
        ASSERT_FALSE(exact) << ::testing::PrintToString(scan.start) << " "
                            << ::testing::PrintToString(k);
        ASSERT_FALSE(seen_admitted);
      }
    }
  }
  EXPECT_GT(inexact, 0);
  bool exact = true;
  EXPECT_FALSE(Utf8StorableScan(KvScan("p\xff"), &exact).has_value());
}

TEST(KvStartAdmits, ComparesBytes) {
  KvScan s("p/", "p/d/", KvFrom::kAt);
  EXPECT_TRUE(KvStartAdmits(s, "p/d/"));
  EXPECT_FALSE(KvStartAdmits(s, "p/c"));
  s.from = KvFrom::kAfter;
  EXPECT_FALSE(KvStartAdmits(s, "p/d/"));
  EXPECT_TRUE(KvStartAdmits(s, "p/d/x"));
  s.from = KvFrom::kPast;
  EXPECT_FALSE(KvStartAdmits(s, "p/d/x"));
  EXPECT_TRUE(KvStartAdmits(s, "p/d0"));
  EXPECT_TRUE(KvStartAdmits(s, std::string("p/\xff", 3)));
}

}  // namespace
}  // namespace pw::store::kv_range_test
