#include "cli/arguments.h"

#include <gtest/gtest.h>

#include <map>

#include "cli/model.h"
#include "cli/shorthand.h"

namespace pw::cli::arguments_test {
namespace {

// An in-memory file system for file:// values.
ParamFileReader FakeFiles(std::map<std::string, std::string> files) {
  return [files](const std::string& path) -> Result<std::string> {
    auto it = files.find(path);
    if (it == files.end()) {
      return InvalidArgument("[Errno 2] No such file or directory: '" + path + "'", "");
    }
    return it->second;
  };
}

const ParamFileReader kFiles = FakeFiles({
    {"pipeline.json", R"({"name":"p","roleArn":"arn:r","stages":[]})"},
    {"in.json", R"({"name":"from-file","version":2})"},
    {"reason.txt", "because\n"},
    {"bad.json", "{oops"},
});

struct ConvertCase {
  const char* name;
  const char* operation;
  std::vector<std::string> args;
  const char* want_json;  // Expected request body (before idempotency tokens).
};

class ConvertTest : public ::testing::TestWithParam<ConvertCase> {};

TEST_P(ConvertTest, BuildsTheRequestBody) {
  const ConvertCase& c = GetParam();
  Result<ParsedArgs> parsed = ParseOperationArgs(c.operation, c.args, kFiles);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->input, OJson::parse(c.want_json)) << parsed->input.dump();
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, ConvertTest,
    ::testing::Values(
        ConvertCase{"String", "GetPipeline", {"--name", "p"}, R"({"name":"p"})"},
        ConvertCase{"StringWithEquals", "GetPipeline", {"--name=p"}, R"({"name":"p"})"},
        ConvertCase{"Integer",
                    "GetPipeline",
                    {"--name", "p", "--pipeline-version", "3"},
                    R"({"name":"p","version":3})"},
        ConvertCase{"NegativeIntegerIsAValue",
                    "ListPipelines",
                    {"--max-results", "-1"},
                    R"({"maxResults":-1})"},
        ConvertCase{"BooleanTrue",
                    "StopPipelineExecution",
                    {"--pipeline-name", "p", "--pipeline-execution-id", "e", "--abandon"},
                    R"({"pipelineName":"p","pipelineExecutionId":"e","abandon":true})"},
        ConvertCase{"BooleanFalse",
                    "StopPipelineExecution",
                    {"--pipeline-name", "p", "--pipeline-execution-id", "e", "--no-abandon"},
                    R"({"pipelineName":"p","pipelineExecutionId":"e","abandon":false})"},
        ConvertCase{"StructureJson",
                    "CreatePipeline",
                    {"--pipeline", R"({"name":"p","roleArn":"r","stages":[]})"},
                    R"({"pipeline":{"name":"p","roleArn":"r","stages":[]}})"},
        ConvertCase{"StructureShorthand",
                    "PutApprovalResult",
                    {"--pipeline-name", "p", "--stage-name", "s", "--action-name", "a", "--result",
                     "summary=looks good,status=Approved", "--token", "t"},
                    R"({"pipelineName":"p","stageName":"s","actionName":"a",
                        "result":{"summary":"looks good","status":"Approved"},"token":"t"})"},
        ConvertCase{"StructureShorthandTypesIntegers",
                    "PollForJobs",
                    {"--action-type-id", "category=Build,owner=Custom,provider=P,version=1",
                     "--max-batch-size", "2"},
                    R"({"actionTypeId":{"category":"Build","owner":"Custom","provider":"P",
                        "version":"1"},"maxBatchSize":2})"},
        ConvertCase{"MapShorthand",
                    "PutJobSuccessResult",
                    {"--job-id", "j", "--output-variables", "a=1,b=two"},
                    R"({"jobId":"j","outputVariables":{"a":"1","b":"two"}})"},
        ConvertCase{"MapJson",
                    "PollForJobs",
                    {"--action-type-id", R"({"category":"Build","owner":"Custom",
                      "provider":"P","version":"1"})",
                     "--query-param", R"({"k":"v"})"},
                    R"({"actionTypeId":{"category":"Build","owner":"Custom","provider":"P",
                        "version":"1"},"queryParam":{"k":"v"}})"},
        ConvertCase{"ListOfStringsAsValues",
                    "UntagResource",
                    {"--resource-arn", "a", "--tag-keys", "k1", "k2"},
                    R"({"resourceArn":"a","tagKeys":["k1","k2"]})"},
        ConvertCase{"ListOfStringsAsJson",
                    "UntagResource",
                    {"--resource-arn", "a", "--tag-keys", R"(["k1"])"},
                    R"({"resourceArn":"a","tagKeys":["k1"]})"},
        ConvertCase{"ListOfStructuresShorthand",
                    "TagResource",
                    {"--resource-arn", "a", "--tags", "key=k1,value=v1", "key=k2,value=v2"},
                    R"({"resourceArn":"a","tags":[{"key":"k1","value":"v1"},
                        {"key":"k2","value":"v2"}]})"},
        ConvertCase{"ListOfStructuresJson",
                    "TagResource",
                    {"--resource-arn", "a", "--tags", R"([{"key":"k","value":"v"}])"},
                    R"({"resourceArn":"a","tags":[{"key":"k","value":"v"}]})"},
        ConvertCase{"ListOfStructuresJsonItems",
                    "TagResource",
                    {"--resource-arn", "a", "--tags", R"({"key":"k","value":"v"})"},
                    R"({"resourceArn":"a","tags":[{"key":"k","value":"v"}]})"},
        ConvertCase{"ShorthandQuotedValueWithComma",
                    "TagResource",
                    {"--resource-arn", "a", "--tags", "key=k,value='a,b'"},
                    R"({"resourceArn":"a","tags":[{"key":"k","value":"a,b"}]})"},
        ConvertCase{"FileStructure",
                    "CreatePipeline",
                    {"--pipeline", "file://pipeline.json"},
                    R"({"pipeline":{"name":"p","roleArn":"arn:r","stages":[]}})"},
        ConvertCase{"FileString",
                    "StopPipelineExecution",
                    {"--pipeline-name", "p", "--pipeline-execution-id", "e", "--reason",
                     "file://reason.txt"},
                    R"({"pipelineName":"p","pipelineExecutionId":"e","reason":"because\n"})"},
        ConvertCase{"CliInputJsonInline",
                    "GetPipeline",
                    {"--cli-input-json", R"({"name":"x","version":4})"},
                    R"({"name":"x","version":4})"},
        ConvertCase{"CliInputJsonFile",
                    "GetPipeline",
                    {"--cli-input-json", "file://in.json"},
                    R"({"name":"from-file","version":2})"},
        ConvertCase{"FlagsOverrideCliInputJson",
                    "GetPipeline",
                    {"--cli-input-json", "file://in.json", "--name", "flag"},
                    R"({"name":"flag","version":2})"},
        ConvertCase{
            "LastFlagWins", "GetPipeline", {"--name", "a", "--name", "b"}, R"({"name":"b"})"},
        ConvertCase{"NoInputMembers", "ListActionTypes", {}, R"({})"}),
    [](const ::testing::TestParamInfo<ConvertCase>& p) { return p.param.name; });

struct ErrorCase {
  const char* name;
  const char* operation;
  std::vector<std::string> args;
  const char* want_message;  // Exact text the CLI prints (after a blank line).
};

class ArgumentErrorTest : public ::testing::TestWithParam<ErrorCase> {};

// Parse and validate as RunCli does; the CLI exits 252 for every one of these.
Status ParseAndValidate(const ErrorCase& c) {
  Result<ParsedArgs> parsed = ParseOperationArgs(c.operation, c.args, kFiles);
  if (!parsed.ok()) return parsed.status();
  return ValidateRequest(c.operation, parsed->input);
}

TEST_P(ArgumentErrorTest, ReportsLikeAws) {
  const ErrorCase& c = GetParam();
  Status s = ParseAndValidate(c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), c.want_message);
}

const char* const kUsage =
    "usage: pipewright [options] <command> [parameters]\n"
    "To see help text, you can run:\n"
    "\n"
    "  pipewright help\n"
    "  pipewright <command> help\n"
    "\n";

std::string Usage(const std::string& tail) { return kUsage + tail; }

// Strings must outlive the test parameters.
const std::string kUnknownOption = Usage("Unknown options: --bogus, 1");
const std::string kMissingName =
    Usage("pipewright: error: the following arguments are required: --name");
const std::string kMissingTwo = Usage(
    "pipewright: error: the following arguments are required: --pipeline-name, "
    "--pipeline-execution-id");
const std::string kExpectedOne = Usage("pipewright: error: argument --name: expected one argument");
const std::string kExtraValue = Usage("Unknown options: true");

INSTANTIATE_TEST_SUITE_P(
    Errors, ArgumentErrorTest,
    ::testing::Values(
        ErrorCase{"MissingRequiredWithCliInputJson",
                  "GetPipeline",
                  {"--cli-input-json", "{}"},
                  "Parameter validation failed:\nMissing required parameter in input: \"name\""},
        ErrorCase{"MissingRequiredFlag", "GetPipeline", {}, kMissingName.c_str()},
        ErrorCase{
            "MissingRequiredFlags", "StopPipelineExecution", {"--abandon"}, kMissingTwo.c_str()},
        ErrorCase{
            "UnknownFlag", "GetPipeline", {"--name", "p", "--bogus", "1"}, kUnknownOption.c_str()},
        ErrorCase{"FlagWithoutValue", "GetPipeline", {"--name"}, kExpectedOne.c_str()},
        ErrorCase{"BooleanTakesNoValue",
                  "StopPipelineExecution",
                  {"--pipeline-name", "p", "--pipeline-execution-id", "e", "--abandon", "true"},
                  kExtraValue.c_str()},
        ErrorCase{"IntegerNotANumber",
                  "ListPipelines",
                  {"--max-results", "x"},
                  "invalid literal for int() with base 10: 'x'"},
        ErrorCase{"IntegerBelowMin",
                  "ListPipelines",
                  {"--max-results", "0"},
                  "Parameter validation failed:\nInvalid value for parameter maxResults, "
                  "value: 0, valid min value: 1"},
        ErrorCase{"StringBelowMin",
                  "ListPipelines",
                  {"--next-token", ""},
                  "Parameter validation failed:\nInvalid length for parameter nextToken, "
                  "value: 0, valid min length: 1"},
        ErrorCase{"MissingParamFile",
                  "GetPipeline",
                  {"--cli-input-json", "file://x.json"},
                  "Error parsing parameter '--cli-input-json': Unable to load paramfile "
                  "file://x.json: [Errno 2] No such file or directory: 'x.json'"},
        ErrorCase{"BadJsonInParamFile",
                  "GetPipeline",
                  {"--cli-input-json", "file://bad.json"},
                  "Error parsing parameter '--cli-input-json': Invalid JSON: parse error at "
                  "line 1, column 2: syntax error while parsing object key - invalid literal; "
                  "last read: '{o'; expected string literal\nJSON received: {oops"},
        ErrorCase{"StructureNotAnObject",
                  "CreatePipeline",
                  {"--pipeline", "[1]"},
                  "Error parsing parameter '--pipeline': Invalid JSON:\n[1]"},
        ErrorCase{"UnknownAndWrongTypes",
                  "GetPipeline",
                  {"--cli-input-json", R"({"name":"","foo":1,"version":"3"})"},
                  "Parameter validation failed:\n"
                  "Unknown parameter in input: \"foo\", must be one of: name, version\n"
                  "Invalid length for parameter name, value: 0, valid min length: 1\n"
                  "Invalid type for parameter version, value: 3, type: <class 'str'>, "
                  "valid types: <class 'int'>"},
        ErrorCase{"NestedMissingAndUnknown",
                  "CreatePipeline",
                  {"--pipeline",
                   R"({"name":"p","roleArn":"r","stages":[{"name":"s","actions":[{}]}],
                       "bogus":1})"},
                  "Parameter validation failed:\n"
                  "Unknown parameter in pipeline: \"bogus\", must be one of: name, roleArn, "
                  "artifactStore, artifactStores, stages, version, executionMode, "
                  "pipelineType, variables, triggers\n"
                  "Missing required parameter in pipeline.stages[0].actions[0]: \"name\"\n"
                  "Missing required parameter in pipeline.stages[0].actions[0]: "
                  "\"actionTypeId\""},
        ErrorCase{"ShorthandMissingMember",
                  "TagResource",
                  {"--resource-arn", "a", "--tags", "key=k1,valu=v1"},
                  "Parameter validation failed:\n"
                  "Missing required parameter in tags[0]: \"value\"\n"
                  "Unknown parameter in tags[0]: \"valu\", must be one of: key, value"},
        ErrorCase{"PythonTypesInMessages",
                  "GetPipeline",
                  {"--cli-input-json", R"({"name":{"a":[1,"x",true,null,1.5]}})"},
                  "Parameter validation failed:\n"
                  "Invalid type for parameter name, value: {'a': [1, 'x', True, None, 1.5]}, "
                  "type: <class 'dict'>, valid types: <class 'str'>"},
        ErrorCase{"ListExpected",
                  "CreatePipeline",
                  {"--cli-input-json", R"({"pipeline":[1],"tags":{}})"},
                  "Parameter validation failed:\n"
                  "Invalid type for parameter pipeline, value: [1], type: <class 'list'>, "
                  "valid types: <class 'dict'>\n"
                  "Invalid type for parameter tags, value: {}, type: <class 'dict'>, "
                  "valid types: <class 'list'>, <class 'tuple'>"},
        ErrorCase{"ShorthandSyntax",
                  "TagResource",
                  {"--resource-arn", "a", "--tags", "key"},
                  "Error parsing parameter '--tags': Expected: '=', received: 'EOF' for "
                  "input:\nkey\n   ^"}),
    [](const ::testing::TestParamInfo<ErrorCase>& p) { return p.param.name; });

TEST(Arguments, PagingFlagsOnlyForPaginatedOperations) {
  Result<ParsedArgs> parsed = ParseOperationArgs(
      "ListPipelines", {"--max-items", "5", "--starting-token", "abc", "--page-size", "2"}, kFiles);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->max_items, 5);
  EXPECT_EQ(parsed->page_size, 2);
  EXPECT_EQ(parsed->starting_token, "abc");
  EXPECT_EQ(parsed->input, OJson::object());
  EXPECT_FALSE(ParseOperationArgs("GetPipeline", {"--name", "p", "--max-items", "5"}, kFiles).ok());
}

TEST(Arguments, HelpIsRecognised) {
  EXPECT_TRUE(ParseOperationArgs("GetPipeline", {"help"}, kFiles)->help);
  EXPECT_TRUE(ParseOperationArgs("GetPipeline", {"--help"}, kFiles)->help);
}

TEST(Arguments, IdempotencyTokenFilledOnlyWhenAbsent) {
  OJson filled = FillIdempotencyTokens("StartPipelineExecution", {{"name", "p"}},
                                       [] { return std::string("tok"); });
  EXPECT_EQ(filled, OJson::parse(R"({"name":"p","clientRequestToken":"tok"})"));
  OJson kept = FillIdempotencyTokens("StartPipelineExecution",
                                     {{"name", "p"}, {"clientRequestToken", "mine"}},
                                     [] { return std::string("tok"); });
  EXPECT_EQ(kept["clientRequestToken"], "mine");
  EXPECT_FALSE(FillIdempotencyTokens("GetPipeline", {{"name", "p"}}, [] {
                 return std::string("tok");
               }).contains("clientRequestToken"));
}

TEST(Arguments, ValidRequestPasses) {
  EXPECT_TRUE(ValidateRequest("GetPipeline", {{"name", "p"}, {"version", 1}}).ok());
  // Like botocore: max, pattern and enum are the server's job.
  EXPECT_TRUE(ValidateRequest("GetPipeline", {{"name", "has spaces"}}).ok());
}

TEST(Model, KebabCaseLikeBotocore) {
  EXPECT_EQ(ToKebab("GetPipelineState"), "get-pipeline-state");
  EXPECT_EQ(ToKebab("ListTagsForResource"), "list-tags-for-resource");
  EXPECT_EQ(ToKebab("pipelineName"), "pipeline-name");
  EXPECT_EQ(ToKebab("MaxResults"), "max-results");
  EXPECT_EQ(ToKebab("resourceArn"), "resource-arn");
  EXPECT_EQ(ToKebab("logStreamARN"), "log-stream-arn");
  EXPECT_EQ(ToKebab("DeregisterWebhookWithThirdParty"), "deregister-webhook-with-third-party");
  EXPECT_EQ(OperationForVerb("get-pipeline-state"), "GetPipelineState");
  EXPECT_EQ(OperationForVerb("nope"), "");
}

TEST(Shorthand, NestedListsAndHashes) {
  Result<OJson> parsed = ParseShorthand("a=b,c,d=[x, y],e={f=g},h=\"q,r\"");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, OJson::parse(R"({"a":["b","c"],"d":["x","y"],"e":{"f":"g"},"h":"q,r"})"));
}

}  // namespace
}  // namespace pw::cli::arguments_test
