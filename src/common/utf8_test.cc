#include "common/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace pw {
namespace {

TEST(IsUtf8, AcceptsWellFormedText) {
  EXPECT_TRUE(IsUtf8(""));
  EXPECT_TRUE(IsUtf8("plain ascii"));
  EXPECT_TRUE(IsUtf8("caf\xc3\xa9"));           // U+00E9
  EXPECT_TRUE(IsUtf8("\xe2\x82\xac"));          // U+20AC
  EXPECT_TRUE(IsUtf8("\xf0\x9f\x98\x80"));      // U+1F600
  EXPECT_TRUE(IsUtf8("\xf4\x8f\xbf\xbf"));      // U+10FFFF, the last
  EXPECT_TRUE(IsUtf8(std::string("a\0b", 3)));  // NUL is UTF-8 (callers refuse it apart)
}

TEST(IsUtf8, RefusesWhatIsNot) {
  EXPECT_FALSE(IsUtf8("\xff"));
  EXPECT_FALSE(IsUtf8("\xd9\xd9"));  // A lead byte, then another.
  EXPECT_FALSE(IsUtf8("caf\xe9"));   // Latin-1.
  EXPECT_FALSE(IsUtf8("\xc3"));      // Truncated at the end.
  EXPECT_FALSE(IsUtf8("\xe2\x82"));
  EXPECT_FALSE(IsUtf8("\x80"));      // A lone continuation byte.
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));  // Overlong '/'.
  EXPECT_FALSE(IsUtf8("\xe0\x80\xaf"));
  EXPECT_FALSE(IsUtf8("\xed\xa0\x80"));          // U+D800, a surrogate.
  EXPECT_FALSE(IsUtf8("\xf4\x90\x80\x80"));      // Past U+10FFFF.
  EXPECT_FALSE(IsUtf8("\xf8\x88\x80\x80\x80"));  // Five-byte form.
}

TEST(ValidUtf8, ReplacesEachBadByteAndKeepsTheRest) {
  EXPECT_EQ(ValidUtf8("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(ValidUtf8("/b/\xff\xfe"), "/b/\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(ValidUtf8("a\xe2\x82"), "a\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(IsUtf8(ValidUtf8("\xed\xa0\x80\xc0\xaf\xf4\x90\x80\x80")));
}

// Every scalar value encodes to the one well-formed sequence that is it.
TEST(AppendUtf8, EncodesEveryScalarValueWellFormed) {
  for (uint32_t c = 0; c <= 0x10FFFF; c += (c < 0x11000 ? 1 : 0x3F)) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    std::string s;
    AppendUtf8(c, s);
    ASSERT_TRUE(IsUtf8(s)) << c;
    ASSERT_EQ(Utf8SequenceAt(s, 0), s.size()) << c;
    ASSERT_EQ(s.size(), c < 0x80 ? 1u : c < 0x800 ? 2u : c < 0x10000 ? 3u : 4u) << c;
  }
  std::string s;
  AppendUtf8(0xE9, s);
  AppendUtf8(0x10FFFF, s);
  EXPECT_EQ(s, "\xc3\xa9\xf4\x8f\xbf\xbf");
}

}  // namespace
}  // namespace pw
