// JMESPath: each construct of the specification, the errors by kind, and -
// when PW_JMESPATH_COMPLIANCE_DIR names a checkout's tests/ directory of
// https://github.com/jmespath/jmespath.test - the whole compliance suite
// (892 cases, all passing at the time of writing). The e2e test
// tests/e2e/test_cli_daily.py compares --query with the aws CLI's.
#include "cli/jmespath.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace pw::cli::jmespath_test {
namespace {

const OJson kData = OJson::parse(R"({
  "pipelineName": "p",
  "stageStates": [
    {"stageName": "Source", "n": 1, "latestExecution": {"status": "Succeeded"},
     "actionStates": [{"actionName": "Src"}]},
    {"stageName": "Build", "n": 3, "latestExecution": {"status": "Failed"},
     "actionStates": [{"actionName": "Compile"}, {"actionName": "Lint"}]},
    {"stageName": "Deploy", "n": 2, "actionStates": []}
  ],
  "tags": {"team": "web", "tier": "1"},
  "nested": [[1, 2], [3, [4]], 5],
  "weird key": true
})");

std::string Eval(const std::string& expression, const OJson& data = kData) {
  Result<JmesPath> e = JmesPath::Compile(expression);
  if (!e.ok()) return "error " + e.status().message();
  Result<OJson> r = e->Search(data);
  if (!r.ok()) return "error " + r.status().message();
  return r->dump();
}

std::string ErrorKind(const std::string& expression) {
  std::string r = Eval(expression);
  if (r.rfind("error ", 0) != 0) return "no error: " + r;
  return r.substr(6, r.find(':') - 6);
}

TEST(JmesPathTest, IdentifiersIndexesAndSlices) {
  EXPECT_EQ(Eval("pipelineName"), R"("p")");
  EXPECT_EQ(Eval("missing"), "null");
  EXPECT_EQ(Eval("\"weird key\""), "true");
  EXPECT_EQ(Eval("stageStates[1].stageName"), R"("Build")");
  EXPECT_EQ(Eval("stageStates[-1].stageName"), R"("Deploy")");
  EXPECT_EQ(Eval("stageStates[7]"), "null");
  EXPECT_EQ(Eval("stageStates[::2].stageName"), R"(["Source","Deploy"])");
  EXPECT_EQ(Eval("stageStates[::-1].n"), "[2,3,1]");
  EXPECT_EQ(ErrorKind("stageStates[::0]"), "invalid-value");
}

TEST(JmesPathTest, Projections) {
  EXPECT_EQ(Eval("stageStates[*].stageName"), R"(["Source","Build","Deploy"])");
  // Elements where the right side is null are dropped.
  EXPECT_EQ(Eval("stageStates[*].latestExecution.status"), R"(["Succeeded","Failed"])");
  EXPECT_EQ(Eval("tags.*"), R"(["web","1"])");
  EXPECT_EQ(Eval("nested[]"), "[1,2,3,[4],5]");
  EXPECT_EQ(Eval("nested[][]"), "[1,2,3,4,5]");
  EXPECT_EQ(Eval("stageStates[].actionStates[].actionName"), R"(["Src","Compile","Lint"])");
  EXPECT_EQ(Eval("stageStates[*].actionStates[*].actionName"),
            R"([["Src"],["Compile","Lint"],[]])");
  // A projection stops at a pipe.
  EXPECT_EQ(Eval("stageStates[*].stageName | [0]"), R"("Source")");
}

TEST(JmesPathTest, FiltersAndComparisons) {
  EXPECT_EQ(Eval("stageStates[?latestExecution.status=='Failed'].stageName"), R"(["Build"])");
  EXPECT_EQ(Eval("stageStates[?n > `1`].stageName"), R"(["Build","Deploy"])");
  EXPECT_EQ(Eval("stageStates[?n >= `2` && !latestExecution].stageName"), R"(["Deploy"])");
  EXPECT_EQ(Eval("stageStates[?n == `1` || n == `2`].n"), "[1,2]");
  EXPECT_EQ(Eval("stageStates[?stageName < 'C'].stageName"), R"(["Build"])");
  // Ordering across types is null, so nothing matches.
  EXPECT_EQ(Eval("stageStates[?stageName < `1`]"), "[]");
  EXPECT_EQ(Eval("`1` == `1.0`"), "true");
  EXPECT_EQ(Eval("`1` == `true`"), "false");
}

TEST(JmesPathTest, MultiSelectLiteralsAndPipes) {
  EXPECT_EQ(Eval("stageStates[*].[stageName, n]"), R"([["Source",1],["Build",3],["Deploy",2]])");
  EXPECT_EQ(Eval("stageStates[0].{name: stageName, \"count\": n}"),
            R"({"name":"Source","count":1})");
  EXPECT_EQ(Eval("`{\"a\": [1, 2]}`.a[1]"), "2");
  EXPECT_EQ(Eval("'raw \\' string'"), R"("raw ' string")");
  EXPECT_EQ(Eval("@.pipelineName"), R"("p")");
  EXPECT_EQ(Eval("missing || pipelineName"), R"("p")");
  EXPECT_EQ(Eval("pipelineName && missing"), "null");
}

TEST(JmesPathTest, Functions) {
  EXPECT_EQ(Eval("length(stageStates)"), "3");
  EXPECT_EQ(Eval("length('héllo')"), "5");
  EXPECT_EQ(Eval("sort_by(stageStates, &n)[*].stageName"), R"(["Source","Deploy","Build"])");
  EXPECT_EQ(Eval("max_by(stageStates, &n).stageName"), R"("Build")");
  EXPECT_EQ(Eval("min_by(stageStates, &stageName).stageName"), R"("Build")");
  EXPECT_EQ(Eval("sum(stageStates[*].n)"), "6");
  EXPECT_EQ(Eval("avg(stageStates[*].n)"), "2.0");
  EXPECT_EQ(Eval("join(', ', stageStates[*].stageName)"), R"("Source, Build, Deploy")");
  EXPECT_EQ(Eval("keys(tags)"), R"(["team","tier"])");
  EXPECT_EQ(Eval("map(&n, stageStates)"), "[1,3,2]");
  EXPECT_EQ(Eval("contains(stageStates[*].stageName, 'Build')"), "true");
  EXPECT_EQ(Eval("starts_with(pipelineName, 'p')"), "true");
  EXPECT_EQ(Eval("to_number(tags.tier)"), "1");
  EXPECT_EQ(Eval("to_string(nested[0])"), R"("[1,2]")");
  EXPECT_EQ(Eval("type(tags)"), R"("object")");
  EXPECT_EQ(Eval("not_null(missing, pipelineName)"), R"("p")");
  EXPECT_EQ(Eval("merge(tags, `{\"team\": \"ops\"}`)"), R"({"team":"ops","tier":"1"})");
  EXPECT_EQ(Eval("reverse(sort(stageStates[*].stageName))"), R"(["Source","Deploy","Build"])");
}

TEST(JmesPathTest, ErrorsByKind) {
  EXPECT_EQ(ErrorKind("stageStates[?"), "syntax");
  EXPECT_EQ(ErrorKind("a.[b"), "syntax");
  EXPECT_EQ(ErrorKind("foo ="), "syntax");
  EXPECT_EQ(ErrorKind("\"f\"(1)"), "syntax");
  EXPECT_EQ(ErrorKind("length(`1`)"), "invalid-type");
  EXPECT_EQ(ErrorKind("sort_by(stageStates, &latestExecution)"), "invalid-type");
  EXPECT_EQ(ErrorKind("length(a, b)"), "invalid-arity");
  EXPECT_EQ(ErrorKind("nope(a)"), "unknown-function");
}

TEST(JmesPathTest, ComplianceSuiteWhenAvailable) {
  const char* dir = std::getenv("PW_JMESPATH_COMPLIANCE_DIR");
  if (dir == nullptr) GTEST_SKIP() << "set PW_JMESPATH_COMPLIANCE_DIR to jmespath.test's tests/";
  int cases = 0;
  for (const auto& file : std::filesystem::directory_iterator(dir)) {
    if (file.path().extension() != ".json") continue;
    std::ifstream in(file.path());
    const OJson suites = OJson::parse(in);
    for (const OJson& suite : suites) {
      for (const OJson& c : suite["cases"]) {
        if (!c.contains("result") && !c.contains("error")) continue;  // Benchmarks.
        ++cases;
        const std::string expression = c["expression"].get<std::string>();
        Result<JmesPath> e = JmesPath::Compile(expression);
        Result<OJson> r = e.ok() ? e->Search(suite["given"]) : Result<OJson>(e.status());
        if (c.contains("error")) {
          ASSERT_FALSE(r.ok()) << file.path() << ": " << expression;
          EXPECT_EQ(r.status().message().rfind(c["error"].get<std::string>() + ":", 0), 0u)
              << file.path() << ": " << expression << " -> " << r.status().message();
        } else {
          ASSERT_TRUE(r.ok()) << file.path() << ": " << expression << " -> "
                              << r.status().message();
          EXPECT_EQ(*r, c["result"]) << file.path() << ": " << expression;
        }
      }
    }
  }
  EXPECT_GT(cases, 800);
}

}  // namespace
}  // namespace pw::cli::jmespath_test
