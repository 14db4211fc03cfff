#include "engine/engine.h"

#include "engine/action_types.h"
#include "engine/decl_json.h"

namespace pw::engine {

Engine::Engine(store::Store& store, const Clock& clock, EngineOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {}

Engine::~Engine() = default;

std::string Engine::PipelineArn(const std::string& name) const {
  return "arn:aws:codepipeline:" + options_.region + ":" + options_.account_id + ":" + name;
}

bool Engine::ActionTypeKnown(const core::ActionTypeId& id) const {
  return FindBuiltin(id) != nullptr;
}

Result<store::PipelineRecord> Engine::CreatePipeline(const nlohmann::json& pipeline,
                                                     const std::vector<store::Tag>& tags) {
  nlohmann::json decl = NormalizeDeclaration(pipeline);
  core::PipelineDecl d = DeclFromJson(decl);
  PW_RETURN_IF_ERROR(core::ValidateStructure(
      d, [this](const core::ActionTypeId& id) { return ActionTypeKnown(id); }));
  std::lock_guard lock(mu_);
  return store_.CreatePipeline(d.name, PipelineArn(d.name), decl, tags, clock_.Now(),
                               options_.max_pipelines);
}

Result<store::PipelineRecord> Engine::UpdatePipeline(const nlohmann::json& pipeline) {
  nlohmann::json decl = NormalizeDeclaration(pipeline);
  core::PipelineDecl d = DeclFromJson(decl);
  PW_RETURN_IF_ERROR(core::ValidateStructure(
      d, [this](const core::ActionTypeId& id) { return ActionTypeKnown(id); }));
  std::lock_guard lock(mu_);
  return store_.UpdatePipeline(d.name, decl, clock_.Now());
}

Status Engine::DeletePipeline(const std::string& name) {
  std::lock_guard lock(mu_);
  return store_.DeletePipeline(name);
}

}  // namespace pw::engine
