#include "api/forward.h"

#include <gtest/gtest.h>

namespace pw::api::forward_test {
namespace {

using nlohmann::json;

TEST(ForwardTest, PipelineOfEachKindOfDrivenRequest) {
  auto jobs = [](const std::string& id) { return id == "j1" ? std::string("fromjob") : ""; };
  EXPECT_EQ(PipelineOfRequest("RetryStageExecution", json{{"pipelineName", "p"}}, jobs), "p");
  EXPECT_EQ(PipelineOfRequest("UpdatePipeline", json{{"pipeline", {{"name", "u"}}}}, jobs), "u");
  EXPECT_EQ(PipelineOfRequest("DeletePipeline", json{{"name", "d"}}, jobs), "d");
  EXPECT_EQ(PipelineOfRequest("StartPipelineExecution", json{{"name", "s"}}, jobs), "s");
  EXPECT_EQ(PipelineOfRequest("PutJobSuccessResult", json{{"jobId", "j1"}}, jobs), "fromjob");
  EXPECT_EQ(PipelineOfRequest("PutJobFailureResult", json{{"jobId", "nope"}}, jobs), "");
  // Not what the model allows: the handler answers (no forwarding).
  EXPECT_EQ(PipelineOfRequest("RetryStageExecution", json{{"pipelineName", 3}}, jobs), "");
  EXPECT_EQ(PipelineOfRequest("UpdatePipeline", json{{"pipeline", "x"}}, jobs), "");
  EXPECT_EQ(PipelineOfRequest("StartPipelineExecution", json::array(), jobs), "");
}

TEST(ForwardTest, ReadsAndPollsAreNotDriven) {
  const auto& ops = DrivenOperations();
  for (const char* op : {"RetryStageExecution", "StartPipelineExecution", "PutApprovalResult",
                         "PutJobSuccessResult", "DeletePipeline"}) {
    EXPECT_TRUE(ops.count(op)) << op;
  }
  for (const char* op : {"GetPipelineState", "ListPipelineExecutions", "PollForJobs",
                         "AcknowledgeJob", "CreatePipeline", "GetPipeline"}) {
    EXPECT_FALSE(ops.count(op)) << op;
  }
}

}  // namespace
}  // namespace pw::api::forward_test
