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

// `handler` answered from engine.read_cache() (issue 15): the serialised
// response per pipeline (the input's `name_key` member) and input, computed
// by `handler` on a miss and kept until the engine invalidates the pipeline.
// `operation` is part of the key (inputs of two operations may be equal).
// Errors are never cached.
//
// With several servers (where the engine's cache is off), kByChangeStamp
// keeps the answers for a pipeline another server drives in
// engine.stamped_cache() by the pipeline's change stamp instead, unless
// computing one looked at job documents (not stamped). Only for answers that
// depend on nothing else than the stamped rows: not GetPipeline, whose
// masking depends on custom action types.
enum class AcrossServers { kNo, kByChangeStamp };
RawHandler CachedRead(engine::Engine& engine, const char* operation, const char* name_key,
                      Handler handler, AcrossServers across = AcrossServers::kNo);
// The cache lookup of CachedRead alone (Dispatcher::HandleFast): the cached
// response for the same operation and input, or nullopt.
PeekHandler CachedPeek(engine::Engine& engine, const char* operation, const char* name_key);
// Registers CodePipeline's `operation` as a cached read: CachedRead on the
// pool, CachedPeek on the I/O thread, one name for the target, the model
// operation, the cache key and the metrics.
void RegisterCachedRead(Dispatcher& d, engine::Engine& engine, const char* operation,
                        const char* name_key, Handler handler,
                        AcrossServers across = AcrossServers::kNo);

}  // namespace pw::api
