#include "cli/output.h"

#include <gtest/gtest.h>

namespace pw::cli::output_test {
namespace {

TEST(Output, TimestampsAsPythonIsoformat) {
  EXPECT_EQ(IsoTimestamp(1700000000.5), "2023-11-14T22:13:20.500000+00:00");
  EXPECT_EQ(IsoTimestamp(1700000000), "2023-11-14T22:13:20+00:00");
  EXPECT_EQ(IsoTimestamp(0.0000004), "1970-01-01T00:00:00+00:00");
}

TEST(Output, ShapeKeepsModelMembersInModelOrder) {
  OJson body = OJson::parse(R"({"version":1,"updated":1700000000,"name":"p","bogus":1,
                                "created":null})");
  OJson shaped = ShapeOutput(body, "PipelineSummary");
  EXPECT_EQ(shaped.dump(), R"({"name":"p","version":1,"updated":"2023-11-14T22:13:20+00:00"})");
}

TEST(Output, NestedListsAndTimestamps) {
  OJson body =
      OJson::parse(R"({"pipelines":[{"name":"a","created":1.25,"x":1}],"nextToken":"t","junk":2})");
  OJson shaped = ShapeOutput(body, "ListPipelinesOutput");
  EXPECT_EQ(shaped.dump(),
            R"({"pipelines":[{"name":"a","created":"1970-01-01T00:00:01.250000+00:00"}],)"
            R"("nextToken":"t"})");
}

TEST(Output, RendersWithFourSpacesAndSkipsEmptyObjects) {
  EXPECT_EQ(RenderJson(OJson::object()), "");
  EXPECT_EQ(RenderJson(OJson::parse(R"({"tags":[]})")), "{\n    \"tags\": []\n}\n");
  EXPECT_EQ(RenderJson(OJson::parse(R"({"a":{"b":"é"}})")),
            "{\n    \"a\": {\n        \"b\": \"é\"\n    }\n}\n");
}

}  // namespace
}  // namespace pw::cli::output_test
