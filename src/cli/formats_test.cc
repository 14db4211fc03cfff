// --output text and --output table against what the aws CLI 2.9 (Debian's
// awscli: awscli/text.py, awscli/table.py) printed for the same responses.
#include "cli/formats.h"

#include <gtest/gtest.h>

namespace pw::cli::formats_test {
namespace {

const OJson kState = OJson::parse(R"({"pipelineName":"p","stageStates":[
  {"stageName":"Source","latestExecution":{"pipelineExecutionId":"e1","status":"Succeeded"}},
  {"stageName":"Build","latestExecution":{"pipelineExecutionId":"e1","status":"Failed"}}]})");

TEST(FormatsTest, TextAsTheAwsCli) {
  EXPECT_EQ(RenderText(kState),
            "p\nSTAGESTATES\tSource\nLATESTEXECUTION\te1\tSucceeded\nSTAGESTATES\tBuild\n"
            "LATESTEXECUTION\te1\tFailed\n");
  EXPECT_EQ(RenderText(OJson::parse(R"([true, null, 1.5, 2, "x"])")), "True\tNone\t1.5\t2\tx\n");
  EXPECT_EQ(RenderText(OJson("just a string")), "just a string\n");
}

TEST(FormatsTest, TableAsTheAwsCli) {
  EXPECT_EQ(RenderTable("GetPipelineState", kState, 80),
            "------------------------------------------\n"
            "|            GetPipelineState            |\n"
            "+------------------------------+---------+\n"
            "|  pipelineName                |  p      |\n"
            "+------------------------------+---------+\n"
            "||              stageStates             ||\n"
            "|+--------------------------------------+|\n"
            "||               stageName              ||\n"
            "|+--------------------------------------+|\n"
            "||  Source                              ||\n"
            "|+--------------------------------------+|\n"
            "|||           latestExecution          |||\n"
            "||+----------------------+-------------+||\n"
            "|||  pipelineExecutionId |   status    |||\n"
            "||+----------------------+-------------+||\n"
            "|||  e1                  |  Succeeded  |||\n"
            "||+----------------------+-------------+||\n"
            "||              stageStates             ||\n"
            "|+--------------------------------------+|\n"
            "||               stageName              ||\n"
            "|+--------------------------------------+|\n"
            "||  Build                               ||\n"
            "|+--------------------------------------+|\n"
            "|||           latestExecution          |||\n"
            "||+------------------------+-----------+||\n"
            "|||   pipelineExecutionId  |  status   |||\n"
            "||+------------------------+-----------+||\n"
            "|||  e1                    |  Failed   |||\n"
            "||+------------------------+-----------+||\n");
  EXPECT_EQ(RenderTable("ListPipelines", OJson::object(), 80), "");
}

}  // namespace
}  // namespace pw::cli::formats_test
