#pragma once

// Custom action types and the job API for remote workers:
// CreateCustomActionType, DeleteCustomActionType, PollForJobs, AcknowledgeJob,
// GetJobDetails, PutJobSuccessResult, PutJobFailureResult. The engine must
// outlive the dispatcher.

#include "api/dispatcher.h"
#include "engine/engine.h"
#include "http/server.h"

namespace pw::api {

void RegisterJobOps(Dispatcher& d, engine::Engine& engine, double poll_wait_seconds);

// The JobSuccess of a Put(ThirdParty)JobSuccessResult request: continuation
// token, execution details and current revision (outputVariables, which only
// PutJobSuccessResult has, are left to its caller).
engine::JobSuccess JobSuccessFromRequest(const nlohmann::json& in);

// The ActionTypeId of a request ({category, owner, provider, version}; missing fields empty).
core::ActionTypeId ActionTypeFromRequest(const nlohmann::json& j);

// The job workers' S3 artifact endpoint is part of the S3 endpoint: api/s3_ops.h.

}  // namespace pw::api
