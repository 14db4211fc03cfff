#include "common/ids.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

namespace pw {
namespace {

TEST(Ids, UuidHasVersion4Shape) {
  std::regex re("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(std::regex_match(NewUuid(), re));
}

TEST(Ids, UuidsDiffer) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(NewUuid());
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace pw
