#include "common/status.h"

#include <gtest/gtest.h>

namespace pw::status_test {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd");
  return x / 2;
}

Status UseHalf(int x, int* out) {
  PW_ASSIGN_OR_RETURN(*out, Half(x));
  return Status::Ok();
}

TEST(Status, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(Status, CarriesWireName) {
  Status s = FailedPrecondition("no failed actions", "StageNotRetryableException");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.wire_name(), "StageNotRetryableException");
  EXPECT_EQ(s.ToString(), "FAILED_PRECONDITION (StageNotRetryableException): no failed actions");
}

TEST(Result, ValueOrError) {
  int out = 0;
  EXPECT_TRUE(UseHalf(4, &out).ok());
  EXPECT_EQ(out, 2);
  Status s = UseHalf(3, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.wire_name(), "ValidationException");
}

}  // namespace
}  // namespace pw::status_test
