#include "engine/doc_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace pw::engine::doc_cache_test {
namespace {

int parses = 0;
std::string Name(const nlohmann::json& doc) {
  ++parses;
  return doc.value("name", std::string("?"));
}

TEST(DocCacheTest, TheSameTextIsParsedOnce) {
  DocCache<std::string> c(8);
  parses = 0;
  EXPECT_EQ(*c.Get("r1", 1, R"({"name":"a"})", Name), "a");
  EXPECT_EQ(*c.Get("r1", 1, R"({"name":"a"})", Name), "a");
  EXPECT_EQ(parses, 1);
  EXPECT_EQ(c.counts().hits, 1u);
  EXPECT_EQ(c.counts().misses, 1u);
  EXPECT_EQ(*c.Get("r2", 1, R"({"name":"a"})", Name), "a") << "by row id";
  EXPECT_EQ(parses, 2);
}

TEST(DocCacheTest, AnotherVersionOrAnotherTextIsParsedAgainAndReplacesIt) {
  DocCache<std::string> c(8);
  parses = 0;
  EXPECT_EQ(*c.Get("r", 1, R"({"name":"a"})", Name), "a");
  EXPECT_EQ(*c.Get("r", 2, R"({"name":"b"})", Name), "b") << "a new version";
  // The same version with other text (a row written again elsewhere, e.g.
  // restored): the text decides, not the version alone.
  EXPECT_EQ(*c.Get("r", 2, R"({"name":"c"})", Name), "c");
  EXPECT_EQ(*c.Get("r", 2, R"({"name":"d"})", Name), "d") << "same size, other bytes";
  EXPECT_EQ(*c.Get("r", 2, R"({"name":"d"})", Name), "d");
  EXPECT_EQ(parses, 4);
  EXPECT_EQ(c.counts().entries, 1u) << "one entry per row";
}

TEST(DocCacheTest, UnparseableTextIsAnEmptyObjectAsTheStoreReadsIt) {
  DocCache<std::string> c(8);
  EXPECT_EQ(*c.Get("r", 1, "{not json", Name), "?");
  EXPECT_EQ(*c.Get("r", 1, "", Name), "?");
}

TEST(DocCacheTest, TheLeastRecentlyUsedGoesFirst) {
  DocCache<std::string> c(2);
  parses = 0;
  (void)c.Get("a", 1, R"({"name":"a"})", Name);
  (void)c.Get("b", 1, R"({"name":"b"})", Name);
  (void)c.Get("a", 1, R"({"name":"a"})", Name);  // a is now the most recent.
  (void)c.Get("c", 1, R"({"name":"c"})", Name);  // b goes.
  EXPECT_EQ(c.counts().entries, 2u);
  EXPECT_EQ(parses, 3);
  (void)c.Get("a", 1, R"({"name":"a"})", Name);
  EXPECT_EQ(parses, 3) << "a was kept";
  (void)c.Get("b", 1, R"({"name":"b"})", Name);
  EXPECT_EQ(parses, 4) << "b was not";
  DocCache<std::string> none(0);
  EXPECT_EQ(*none.Get("a", 1, R"({"name":"a"})", Name), "a");
  EXPECT_EQ(none.counts().entries, 0u) << "capacity 0 keeps nothing";
}

}  // namespace
}  // namespace pw::engine::doc_cache_test
