#include "common/json_nesting.h"

#include <gtest/gtest.h>

#include <string>

namespace pw {
namespace {

TEST(JsonNesting, CountsArraysAndObjectsButNotBracketsInStrings) {
  EXPECT_TRUE(JsonNestingWithin("", 0));
  EXPECT_TRUE(JsonNestingWithin("{}", 1));
  EXPECT_FALSE(JsonNestingWithin("{}", 0));
  EXPECT_TRUE(JsonNestingWithin(R"({"a":[1,{"b":2}]})", 3));
  EXPECT_FALSE(JsonNestingWithin(R"({"a":[1,{"b":2}]})", 2));
  // Siblings do not add up.
  EXPECT_TRUE(JsonNestingWithin("[[],[],[],[]]", 2));
  // Brackets in strings, escaped quotes included, are text.
  EXPECT_TRUE(JsonNestingWithin(R"({"k":"[[[[{{{{\"[[[["})", 1));
  EXPECT_FALSE(JsonNestingWithin(R"({"k":"\\"[[)", 2));
}

TEST(JsonNesting, AHugeRunOfOpeningBracketsStopsAtTheLimit) {
  std::string deep(25u << 20, '[');
  EXPECT_FALSE(JsonNestingWithin(deep, 64));
  std::string ok = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(JsonNestingWithin(ok, 64));
  EXPECT_FALSE(JsonNestingWithin("[" + ok + "]", 64));
}

}  // namespace
}  // namespace pw
