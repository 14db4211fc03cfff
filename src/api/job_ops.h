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

// A minimal S3-compatible endpoint for job workers: path-style GET, HEAD and
// PUT of /<bucket>/<key>, accepted only with the job's artifact credentials
// (SigV4, service s3), scoped to that job's input and output objects.
// Registered on `server` as the last GET/PUT/HEAD routes. Uploads are
// streamed to `temp_dir` (on the artifacts' file system) and renamed into place.
void RegisterArtifactEndpoint(http::Server& server, engine::Engine& engine,
                              const std::string& temp_dir);

}  // namespace pw::api
