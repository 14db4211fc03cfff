#pragma once

// Pipeline definition operations: CreatePipeline, GetPipeline,
// UpdatePipeline, DeletePipeline, ListPipelines, TagResource, UntagResource,
// ListTagsForResource. The engine must outlive the dispatcher.

#include "api/dispatcher.h"
#include "engine/engine.h"

namespace pw::api {

void RegisterPipelineOps(Dispatcher& d, engine::Engine& engine);

// Opaque pagination tokens: `key` encoded so clients treat it as opaque.
std::string EncodeToken(const std::string& key);
// The key, or InvalidNextTokenException.
Result<std::string> DecodeToken(const std::string& token);

}  // namespace pw::api
