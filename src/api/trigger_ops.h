#pragma once

// The operations of issue 13's second half: webhooks (PutWebhook,
// ListWebhooks, DeleteWebhook, Register/DeregisterWebhookWithThirdParty,
// and Pipewright's ListWebhookDeliveries), PutActionRevision,
// ListDeployActionExecutionTargets, UpdateActionType and the ThirdParty job
// API (PollForThirdPartyJobs, AcknowledgeThirdPartyJob,
// GetThirdPartyJobDetails, PutThirdPartyJobSuccessResult,
// PutThirdPartyJobFailureResult); and the route serving webhook urls.
// The engine must outlive the dispatcher and the server.

#include <string_view>

#include "api/dispatcher.h"
#include "engine/engine.h"
#include "http/server.h"

namespace pw::api {

// Where webhook urls live: POST /_webhooks/<32 hex digits>. The path cannot
// be an S3 bucket (bucket names have no '_'), so it never shadows the S3
// endpoint, which owns every other /<bucket>/… path.
inline constexpr std::string_view kWebhookPathPrefix = "/_webhooks/";

void RegisterTriggerOps(Dispatcher& d, engine::Engine& engine);

// POST /_webhooks/<token>: public (the webhook's own authentication applies:
// GITHUB_HMAC, IP or UNAUTHENTICATED), bodies up to 25 MiB (GitHub's cap).
// Replies {"message"[, "pipelineExecutionId"]} with the engine's status:
// 200 (started, filtered out, ignored), 400, 401 (bad or missing signature),
// 403 (address outside the range), 404 (no such url), 409 (limit reached).
// A url no webhook has is a 404 decided from the headers (the body is not
// read); bodies stream to a file in `temp_dir`. Register before the S3
// endpoint.
void RegisterWebhookRoute(http::Server& server, engine::Engine& engine,
                          const std::string& temp_dir);

}  // namespace pw::api
