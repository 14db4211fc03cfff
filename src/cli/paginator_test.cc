#include "cli/paginator.h"

#include <gtest/gtest.h>

namespace pw::cli::paginator_test {
namespace {

// Serves pipelines p0..p5 two per page with tokens t1, t2, recording requests.
struct FakeServer {
  std::vector<OJson> requests;
  Result<OJson> operator()(const OJson& input) {
    requests.push_back(input);
    int page = 0;
    if (input.contains("nextToken"))
      page = std::stoi(input["nextToken"].get<std::string>().substr(1));
    OJson out;
    out["pipelines"] = OJson::array();
    for (int i = 0; i < 2; ++i)
      out["pipelines"].push_back({{"name", "p" + std::to_string(page * 2 + i)}});
    if (page < 2) out["nextToken"] = "t" + std::to_string(page + 1);
    return out;
  }
};

std::vector<std::string> Names(const OJson& result) {
  std::vector<std::string> names;
  for (const auto& p : result["pipelines"]) names.push_back(p["name"]);
  return names;
}

PaginateOptions Opts(std::optional<int64_t> max_items, std::optional<int64_t> page_size = {},
                     std::string starting_token = "") {
  return PaginateOptions{max_items, page_size, std::move(starting_token)};
}

const PaginatorSpec& Pipelines() { return *FindPaginator("ListPipelines"); }

TEST(Paginator, FetchesAllPagesAndMerges) {
  FakeServer server;
  auto r = Paginate(Pipelines(), OJson::object(), {}, std::ref(server));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Names(*r), (std::vector<std::string>{"p0", "p1", "p2", "p3", "p4", "p5"}));
  EXPECT_FALSE(r->contains("nextToken"));
  EXPECT_FALSE(r->contains("NextToken"));
  ASSERT_EQ(server.requests.size(), 3u);
  EXPECT_EQ(server.requests[0], OJson::object());
  EXPECT_EQ(server.requests[2]["nextToken"], "t2");
}

TEST(Paginator, MaxItemsMidPageGivesBotocoreToken) {
  FakeServer server;
  auto r = Paginate(Pipelines(), OJson::object(), Opts(3), std::ref(server));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Names(*r), (std::vector<std::string>{"p0", "p1", "p2"}));
  // Byte-for-byte what aws-cli printed against the same pages.
  EXPECT_EQ((*r)["NextToken"], "eyJuZXh0VG9rZW4iOiAidDEiLCAiYm90b190cnVuY2F0ZV9hbW91bnQiOiAxfQ==");
}

TEST(Paginator, MaxItemsInFirstPage) {
  FakeServer server;
  auto r = Paginate(Pipelines(), OJson::object(), Opts(1), std::ref(server));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["NextToken"], "eyJuZXh0VG9rZW4iOiBudWxsLCAiYm90b190cnVuY2F0ZV9hbW91bnQiOiAxfQ==");
}

TEST(Paginator, MaxItemsOnPageBoundary) {
  FakeServer server;
  auto r = Paginate(Pipelines(), OJson::object(), Opts(2), std::ref(server));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Names(*r), (std::vector<std::string>{"p0", "p1"}));
  EXPECT_EQ(DecodeResumeToken((*r)["NextToken"].get<std::string>()).value(),
            OJson::parse(R"({"nextToken":"t1"})"));
}

TEST(Paginator, StartingTokenResumes) {
  FakeServer server;
  PaginateOptions o = Opts(3);
  o.starting_token = "eyJuZXh0VG9rZW4iOiAidDEiLCAiYm90b190cnVuY2F0ZV9hbW91bnQiOiAxfQ==";
  auto r = Paginate(Pipelines(), OJson::object(), o, std::ref(server));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Names(*r), (std::vector<std::string>{"p3", "p4", "p5"}));
  EXPECT_FALSE(r->contains("NextToken"));
  EXPECT_EQ(server.requests[0]["nextToken"], "t1");
}

TEST(Paginator, PageSizeSetsLimitKey) {
  FakeServer server;
  auto r = Paginate(Pipelines(), OJson::object(), Opts(1, 5), std::ref(server));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(server.requests[0]["maxResults"], 5);
}

TEST(Paginator, RepeatedTokenIsAnError) {
  auto r = Paginate(Pipelines(), OJson::object(), {}, [](const OJson&) -> Result<OJson> {
    return OJson::parse(R"({"pipelines":[],"nextToken":"same"})");
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "The same next token was received twice: {'nextToken': 'same'}");
}

TEST(Paginator, BadStartingToken) {
  FakeServer server;
  auto r = Paginate(Pipelines(), OJson::object(), Opts(std::nullopt, std::nullopt, "!!"),
                    std::ref(server));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(Paginator, KnowsTheListOperations) {
  for (const char* op : {"ListPipelines", "ListPipelineExecutions", "ListActionExecutions",
                         "ListActionTypes", "ListTagsForResource", "ListRuleExecutions",
                         "ListDeployActionExecutionTargets", "ListWebhooks"}) {
    EXPECT_NE(FindPaginator(op), nullptr) << op;
  }
  EXPECT_EQ(FindPaginator("GetPipeline"), nullptr);
  EXPECT_EQ(FindPaginator("ListRuleTypes"), nullptr);
}

}  // namespace
}  // namespace pw::cli::paginator_test
