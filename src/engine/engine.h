#pragma once

// Engine: the one place that changes pipelines and executions. It validates
// definitions, asks core for decisions, persists each decision in one store
// transaction, then performs its effects (processes, artifacts) through the
// runner. All mutable execution state is owned here behind one mutex, so
// concurrent API calls are serialized: no race can half-apply a decision.
// Thread-safe.

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "core/pipeline.h"
#include "store/store.h"

namespace pw::engine {

struct EngineOptions {
  std::string region = "us-east-1";
  std::string account_id = "123456789012";
  std::string data_dir;          // Artifacts, logs, workspaces live below it.
  int max_pipelines = 1000;
  bool start_on_create = true;   // Rule 12: CreatePipeline starts the first execution.
};

class Engine {
 public:
  // `store` and `clock` must outlive the engine.
  Engine(store::Store& store, const Clock& clock, EngineOptions options);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  const EngineOptions& options() const { return options_; }
  store::Store& store() { return store_; }
  std::string PipelineArn(const std::string& name) const;

  // Validates the structure (A.6-A.10, unknown action types) and stores
  // version 1. Errors: Invalid*Exception, PipelineNameInUseException,
  // LimitExceededException, TooManyTagsException.
  Result<store::PipelineRecord> CreatePipeline(const nlohmann::json& pipeline,
                                               const std::vector<store::Tag>& tags);
  // Stores the next version. PipelineNotFoundException, Invalid*Exception.
  Result<store::PipelineRecord> UpdatePipeline(const nlohmann::json& pipeline);
  Status DeletePipeline(const std::string& name);

 private:
  bool ActionTypeKnown(const core::ActionTypeId& id) const;

  store::Store& store_;
  const Clock& clock_;
  EngineOptions options_;
  std::mutex mu_;  // Serializes every decision.
};

}  // namespace pw::engine
