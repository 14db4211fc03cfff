#include "api/dispatcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "api/pipeline_ops.h"
#include "engine/engine.h"
#include "store/store.h"

namespace pw::api::dispatcher_test {
namespace {

using nlohmann::json;

class FixedClock final : public Clock {
 public:
  EpochSeconds Now() const override { return 1700000000.5; }
};

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pw-api-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = store::OpenSqliteStore(dir_ + "/db");
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    engine::EngineOptions o;
    o.data_dir = dir_;
    o.start_on_create = false;
    engine_ = std::make_unique<engine::Engine>(*store_, clock_, o);
    RegisterPipelineOps(d_, *engine_);
  }
  void TearDown() override {
    engine_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  json Call(const std::string& op, const std::string& body, int want_status = 200) {
    HttpReply r = d_.Handle("CodePipeline_20150709." + op, body, {});
    EXPECT_EQ(r.status, want_status) << r.body;
    return json::parse(r.body);
  }
  static std::string Pipeline(const std::string& name) {
    return R"({"pipeline":{"name":")" + name + R"(","roleArn":"arn:aws:iam::123456789012:role/r",
      "artifactStore":{"type":"S3","location":"bucket"},
      "stages":[{"name":"Source","actions":[{"name":"Src","actionTypeId":{"category":"Source","owner":"AWS","provider":"Directory","version":"1"},"configuration":{"Path":"/srv/pipewright-test-source"},"outputArtifacts":[{"name":"Out"}]}]},
                {"name":"Build","actions":[{"name":"B","actionTypeId":{"category":"Build","owner":"AWS","provider":"Commands","version":"1"},"inputArtifacts":[{"name":"Out"}],"configuration":{"Commands":"true"}}]}]}})";
  }
  std::string dir_;
  FixedClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<engine::Engine> engine_;
  Dispatcher d_;
};

TEST_F(DispatcherTest, MissingTarget) {
  HttpReply r = d_.Handle("", "{}", {});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["__type"], "UnknownOperationException");
}

TEST_F(DispatcherTest, UnknownTarget) {
  HttpReply r = d_.Handle("CodePipeline_20150709.Nope", "{}", {});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_type, "UnknownOperationException");
}

TEST_F(DispatcherTest, MalformedJsonIsSerializationException) {
  EXPECT_EQ(Call("ListPipelines", "{not json", 400)["__type"], "SerializationException");
  EXPECT_EQ(Call("ListPipelines", "[1,2]", 400)["__type"], "SerializationException");
}

TEST_F(DispatcherTest, EmptyBodyIsAnEmptyObject) {
  EXPECT_TRUE(Call("ListPipelines", "")["pipelines"].empty());
}

TEST_F(DispatcherTest, ModelValidationNamesTheField) {
  json e = Call("GetPipeline", R"({"name":"has space"})", 400);
  EXPECT_EQ(e["__type"], "ValidationException");
  EXPECT_NE(e["message"].get<std::string>().find("'name'"), std::string::npos);
}

TEST_F(DispatcherTest, CreateGetUpdateVersions) {
  json c = Call("CreatePipeline", Pipeline("p"));
  EXPECT_EQ(c["pipeline"]["version"], 1);
  EXPECT_EQ(c["pipeline"]["pipelineType"], "V1");
  EXPECT_EQ(c["pipeline"]["stages"][1]["actions"][0]["runOrder"], 1);
  EXPECT_EQ(Call("CreatePipeline", Pipeline("p"), 400)["__type"], "PipelineNameInUseException");
  json u = Call("UpdatePipeline", Pipeline("p"));
  EXPECT_EQ(u["pipeline"]["version"], 2);
  json g = Call("GetPipeline", R"({"name":"p","version":1})");
  EXPECT_EQ(g["pipeline"]["version"], 1);
  EXPECT_EQ(g["metadata"]["pipelineArn"], "arn:aws:codepipeline:us-east-1:123456789012:p");
  EXPECT_EQ(g["metadata"]["created"], 1700000000.5);
  EXPECT_EQ(Call("GetPipeline", R"({"name":"p","version":9})", 400)["__type"],
            "PipelineVersionNotFoundException");
  EXPECT_EQ(Call("UpdatePipeline", Pipeline("q"), 400)["__type"], "PipelineNotFoundException");
}

TEST_F(DispatcherTest, StructureErrorsUseTheirExceptions) {
  json p = json::parse(Pipeline("p"));
  p["pipeline"]["stages"].erase(1);
  EXPECT_EQ(Call("CreatePipeline", p.dump(), 400)["__type"], "InvalidStructureException");
  p = json::parse(Pipeline("p"));
  p["pipeline"]["stages"][1]["actions"][0]["actionTypeId"]["provider"] = "Nope";
  EXPECT_EQ(Call("CreatePipeline", p.dump(), 400)["__type"], "InvalidActionDeclarationException");
  EXPECT_EQ(Call("ListPipelines", "{}")["pipelines"].size(), 0u) << "nothing half-created";
}

TEST_F(DispatcherTest, ListPipelinesPages) {
  for (const char* n : {"a", "b", "c"}) Call("CreatePipeline", Pipeline(n));
  json p1 = Call("ListPipelines", R"({"maxResults":2})");
  ASSERT_EQ(p1["pipelines"].size(), 2u);
  ASSERT_TRUE(p1.contains("nextToken"));
  json p2 = Call("ListPipelines", json{{"maxResults", 2}, {"nextToken", p1["nextToken"]}}.dump());
  ASSERT_EQ(p2["pipelines"].size(), 1u);
  EXPECT_EQ(p2["pipelines"][0]["name"], "c");
  EXPECT_FALSE(p2.contains("nextToken"));
  EXPECT_EQ(Call("ListPipelines", R"({"nextToken":"garbage"})", 400)["__type"],
            "InvalidNextTokenException");
}

TEST_F(DispatcherTest, TagsRoundTrip) {
  Call("CreatePipeline", Pipeline("p"));
  std::string arn = "arn:aws:codepipeline:us-east-1:123456789012:p";
  Call("TagResource",
       json{{"resourceArn", arn}, {"tags", {{{"key", "k"}, {"value", "v"}}}}}.dump());
  json t = Call("ListTagsForResource", json{{"resourceArn", arn}}.dump());
  ASSERT_EQ(t["tags"].size(), 1u);
  Call("UntagResource", json{{"resourceArn", arn}, {"tagKeys", {"k"}}}.dump());
  EXPECT_TRUE(Call("ListTagsForResource", json{{"resourceArn", arn}}.dump())["tags"].empty());
  EXPECT_EQ(Call("ListTagsForResource",
                 json{{"resourceArn", "arn:aws:codepipeline:us-east-1:123456789012:zz"}}.dump(),
                 400)["__type"],
            "ResourceNotFoundException");
}

TEST_F(DispatcherTest, DeleteThenNotFound) {
  Call("CreatePipeline", Pipeline("p"));
  Call("DeletePipeline", R"({"name":"p"})");
  EXPECT_EQ(Call("GetPipeline", R"({"name":"p"})", 400)["__type"], "PipelineNotFoundException");
  EXPECT_EQ(Call("DeletePipeline", R"({"name":"p"})", 400)["__type"], "PipelineNotFoundException");
}

std::string Nested(int depth) {
  return std::string(static_cast<size_t>(depth), '[') + "1" +
         std::string(static_cast<size_t>(depth), ']');
}

TEST_F(DispatcherTest, NestingDeeperThanTheLimitIsRefusedBeforeParsing) {
  // 10,000 levels crashed the validation message's dump (stack overflow).
  json e = Call("GetPipeline", R"({"name":)" + Nested(10000) + "}", 400);
  EXPECT_EQ(e["__type"], "SerializationException");
  EXPECT_NE(e["message"].get<std::string>().find("64 levels"), std::string::npos);
  // The limit itself is accepted (and then fails validation as a wrong type).
  EXPECT_EQ(Call("GetPipeline", R"({"name":)" + Nested(kMaxNestingDepth - 1) + "}", 400)["__type"],
            "ValidationException");
  EXPECT_EQ(Call("GetPipeline", R"({"name":)" + Nested(kMaxNestingDepth) + "}", 400)["__type"],
            "SerializationException");
  // Brackets and escaped quotes inside strings are text.
  json t = Call("GetPipeline", json{{"name", std::string(5000, '[') + "\"{"}}.dump(), 400);
  EXPECT_EQ(t["__type"], "ValidationException");
}

TEST_F(DispatcherTest, ARawNulByteAnywhereIsNotJson) {
  // Before: "{}\0" was taken as "{}" (the parser stopped at the NUL).
  const std::string nul(1, '\0');
  for (const std::string& body :
       {"{}" + nul, "{}" + nul + R"({"x":1})", R"({"name":"a)" + nul + R"(b"})"}) {
    json e = Call("ListPipelines", body, 400);
    EXPECT_EQ(e["__type"], "SerializationException") << e.dump();
    EXPECT_NE(e["message"].get<std::string>().find("NUL byte"), std::string::npos) << e.dump();
  }
}

TEST_F(DispatcherTest, NullMembersAreAbsentNullsInListsAreRefused) {
  json p = json::parse(Pipeline("p"));
  p["tags"] = nullptr;
  p["pipeline"]["stages"][0]["actions"][0]["namespace"] = nullptr;
  p["pipeline"]["variables"] = nullptr;
  json c = Call("CreatePipeline", p.dump());  // "tags": null was a 500.
  EXPECT_FALSE(c.contains("tags"));
  EXPECT_EQ(Call("ListPipelines", R"({"maxResults":null,"nextToken":null})")["pipelines"].size(),
            1u);
  p["tags"] = json::array({nullptr});
  json e = Call("CreatePipeline", p.dump(), 400);
  EXPECT_EQ(e["__type"], "ValidationException");
  EXPECT_NE(e["message"].get<std::string>().find("'tags.1.member'"), std::string::npos) << e;
}

TEST_F(DispatcherTest, NulCharactersAreRefusedNamingTheField) {
  json p = json::parse(Pipeline("p"));
  p["pipeline"]["stages"][1]["actions"][0]["configuration"]["Commands"] =
      std::string("true\0false", 10);
  json e = Call("CreatePipeline", p.dump(), 400);
  EXPECT_EQ(e["__type"], "ValidationException");
  EXPECT_NE(e["message"].get<std::string>().find(
                "'pipeline.stages.2.member.actions.1.member.configuration.Commands'"),
            std::string::npos)
      << e;
  EXPECT_EQ(Call("ListPipelines", "{}")["pipelines"].size(), 0u);
  e = Call("TagResource", R"({"resourceArn":"a","tags":[{"key":"k\u0000","value":"v"}]})", 400);
  EXPECT_NE(e["message"].get<std::string>().find("'tags.1.member.key'"), std::string::npos) << e;
}

TEST_F(DispatcherTest, RepliesAreValidUtf8WhenAMessageIsCut) {
  std::string name;
  for (int i = 0; i < 300; ++i) name += "\xc3\xa9";
  for (const std::string& n : {name, "x" + name}) {
    HttpReply r = d_.Handle("CodePipeline_20150709.GetPipeline", json{{"name", n}}.dump(), {});
    EXPECT_EQ(r.status, 400) << r.body;  // Was a 500 (dump threw on a cut character).
    EXPECT_FALSE(json::parse(r.body, nullptr, false).is_discarded()) << r.body;
  }
}

TEST_F(DispatcherTest, ParseRequestBodyContract) {
  json out;
  EXPECT_TRUE(ParseRequestBody("", &out).ok());
  EXPECT_EQ(out, json::object());
  EXPECT_TRUE(ParseRequestBody(R"({"a":{"b":null,"c":[1]}})", &out).ok());
  EXPECT_EQ(out, json::parse(R"({"a":{"c":[1]}})"));
  EXPECT_EQ(ParseRequestBody("null", &out).wire_name(), "SerializationException");
  EXPECT_EQ(ParseRequestBody(R"({"a":[1,null]})", &out).wire_name(), "ValidationException");
  EXPECT_EQ(ParseRequestBody(R"({"a\u0000":1})", &out).wire_name(), "ValidationException");
}

TEST_F(DispatcherTest, TargetsListsEveryRegistration) {
  std::vector<std::string> t = d_.Targets();
  EXPECT_EQ(t.size(), 8u);
  EXPECT_TRUE(std::is_sorted(t.begin(), t.end()));
}

}  // namespace
}  // namespace pw::api::dispatcher_test

namespace pw::api::dispatcher_test {
namespace {

TEST_F(DispatcherTest, AuthorizerRunsAfterValidationAndBeforeTheHandler) {
  std::vector<std::string> seen;
  d_.SetAuthorizer([&seen](std::string_view op, const json& input, const RequestContext& ctx) {
    seen.push_back(std::string(op) + " " + ctx.access_key_id);
    if (op == "CreatePipeline") {
      return FailedPrecondition("User: " + ctx.caller +
                                    " is not authorized to perform: "
                                    "codepipeline:CreatePipeline on resource: " +
                                    input["pipeline"]["name"].get<std::string>(),
                                "AccessDeniedException");
    }
    return Status::Ok();
  });
  RequestContext ctx;
  ctx.caller = "arn:aws:iam::123456789012:user/RO";
  ctx.access_key_id = "RO";
  HttpReply denied = d_.Handle("CodePipeline_20150709.CreatePipeline", Pipeline("p"), ctx);
  EXPECT_EQ(denied.status, 400);
  EXPECT_EQ(denied.error_type, "AccessDeniedException");
  EXPECT_NE(denied.body.find("user/RO is not authorized"), std::string::npos);
  // The handler did not run: the pipeline does not exist.
  EXPECT_EQ(Call("ListPipelines", "{}")["pipelines"].size(), 0u);
  // Invalid input is refused by validation before the authorizer sees it.
  Call("GetPipeline", R"({"name":"has space"})", 400);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], "CreatePipeline RO");
  EXPECT_EQ(seen[1], "ListPipelines ");
}

// HandleFast answers only from the read cache (after the same parsing and
// validation as Handle): a miss, bad input or an authorizer leave the
// request to Handle, which reports errors; an update is never answered stale.
TEST_F(DispatcherTest, HandleFastAnswersCachedReadsOnly) {
  const std::string target = "CodePipeline_20150709.GetPipeline";
  Call("CreatePipeline", Pipeline("fast"));
  EXPECT_FALSE(d_.HandleFast(target, R"({"name":"fast"})", {}));  // Not cached yet.
  HttpReply slow = d_.Handle(target, R"({"name":"fast"})", {});
  ASSERT_EQ(slow.status, 200) << slow.body;
  RequestContext ctx;
  auto hit = d_.HandleFast(target, R"({"name":"fast"})", ctx);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->status, 200);
  EXPECT_EQ(hit->body, slow.body);
  EXPECT_EQ(ctx.log_pipeline, "fast");
  // Errors are Handle's to report.
  EXPECT_FALSE(d_.HandleFast(target, R"({"name":)", {}));
  EXPECT_FALSE(d_.HandleFast(target, R"({"name":"fast","version":0})", {}));  // Below the min.
  EXPECT_FALSE(d_.HandleFast(target, R"({"name":"other"})", {}));
  EXPECT_FALSE(d_.HandleFast("CodePipeline_20150709.ListPipelines", "{}", {}));  // No peek.
  EXPECT_FALSE(d_.HandleFast("nope", "{}", {}));
  // A change invalidates: the next fast call misses, the next Handle sees it.
  json p = json::parse(Pipeline("fast"));
  p["pipeline"]["stages"][1]["actions"][0]["name"] = "Renamed";
  Call("UpdatePipeline", p.dump());
  EXPECT_FALSE(d_.HandleFast(target, R"({"name":"fast"})", {}));
  HttpReply fresh = d_.Handle(target, R"({"name":"fast"})", {});
  EXPECT_NE(fresh.body.find("Renamed"), std::string::npos);
  auto again = d_.HandleFast(target, R"({"name":"fast"})", {});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, fresh.body);
  // With an authorizer every request goes through Handle.
  d_.SetAuthorizer(
      [](std::string_view, const json&, const RequestContext&) { return Status::Ok(); });
  EXPECT_FALSE(d_.HandleFast(target, R"({"name":"fast"})", {}));
}

}  // namespace
}  // namespace pw::api::dispatcher_test
