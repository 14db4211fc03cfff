#include "api/pipeline_ops.h"

#include <algorithm>

#include "engine/server_metrics.h"
#include "spec/service_model.h"

namespace pw::api {
namespace {

using nlohmann::json;

std::vector<store::Tag> TagsFrom(const json& j) {
  std::vector<store::Tag> tags;
  for (const auto& t : j) tags.push_back({t.value("key", ""), t.value("value", "")});
  return tags;
}

json TagsJson(const std::vector<store::Tag>& tags) {
  json out = json::array();
  for (const auto& t : tags) out.push_back({{"key", t.key}, {"value", t.value}});
  return out;
}

// Tag keys starting with "aws:" belong to AWS (InvalidTagsException, in AWS's
// words, naming the key).
// `tags_given`: the keys of tags to set (CreatePipeline, TagResource), where a
// key given twice is refused (before: the last value silently won); an untag
// may name a key twice.
Status CheckTagKeys(const std::vector<std::string>& keys, bool tags_given = true) {
  std::set<std::string> seen;
  for (const auto& key : keys) {
    if (!seen.insert(key).second && tags_given) {
      return InvalidArgument("Tag key '" + spec::TruncateUtf8(key, spec::kMaxQuotedBytes) +
                                 "' is given more than once; give each key once.",
                             "InvalidTagsException");
    }
    if (key.rfind("aws:", 0) == 0) {
      return InvalidArgument(
          "Not allowed to modify system tags. System tags start with 'aws:'. msg=[Caller is an "
          "end user and not allowed to mutate system tags] Tag key '" +
              spec::TruncateUtf8(key, spec::kMaxQuotedBytes) + "' is reserved; choose another key.",
          "InvalidTagsException");
    }
  }
  return Status::Ok();
}

std::vector<std::string> KeysOf(const std::vector<store::Tag>& tags) {
  std::vector<std::string> keys;
  for (const auto& t : tags) keys.push_back(t.key);
  return keys;
}

// Resolves a pipeline ARN to its name. InvalidArnException / ResourceNotFoundException.
Result<std::string> PipelineFromArn(engine::Engine& e, const std::string& arn) {
  auto pos = arn.rfind(':');
  std::string name = pos == std::string::npos ? "" : arn.substr(pos + 1);
  // The model sets no length limit on ARNs: quote a bounded prefix.
  const std::string quoted = spec::TruncateUtf8(arn, spec::kMaxQuotedBytes);
  if (name.empty() || e.PipelineArn(name) != arn) {
    return InvalidArgument("'" + quoted + "' is not a pipeline ARN of this server; expected " +
                               e.PipelineArn("<pipeline-name>") + ".",
                           "InvalidArnException");
  }
  auto rec = e.store().GetPipeline(name, std::nullopt);
  if (!rec.ok()) {
    if (rec.status().code() == StatusCode::kNotFound) {
      return NotFound("The account with id '" + e.options().account_id +
                          "' does not include a pipeline with the name '" +
                          spec::TruncateUtf8(name, spec::kMaxQuotedBytes) + "'",
                      "ResourceNotFoundException");
    }
    return rec.status();
  }
  return name;
}

}  // namespace

std::string EncodeToken(const std::string& key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "pw1.";
  for (unsigned char c : key) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

Result<std::string> DecodeToken(const std::string& token) {
  auto bad = [&] {
    return InvalidArgument("The nextToken '" + spec::TruncateUtf8(token, spec::kMaxQuotedBytes) +
                               "' is not valid; pass back a token returned by a previous call.",
                           "InvalidNextTokenException");
  };
  if (token.rfind("pw1.", 0) != 0 || token.size() % 2 != 0) return bad();
  std::string out;
  for (size_t i = 4; i + 1 < token.size(); i += 2) {
    auto hex = [](char c) {
      return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    };
    int hi = hex(token[i]), lo = hex(token[i + 1]);
    if (hi < 0 || lo < 0) return bad();
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

namespace {

std::string CacheKey(const char* operation, const json& in) {
  return std::string(operation) + " " + in.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

PeekHandler CachedPeek(engine::Engine& engine, const char* operation, const char* name_key) {
  return [&engine, operation, name_key](const json& in) -> std::optional<std::string> {
    auto name = in.find(name_key);
    if (name == in.end() || !name->is_string()) return std::nullopt;
    std::optional<std::string> body =
        engine.read_cache().Get(name->get<std::string>(), CacheKey(operation, in)).body;
    if (body) engine::Metrics().cached_reads.With({operation, "hit"}).Inc();
    return body;
  };
}

RawHandler CachedRead(engine::Engine& engine, const char* operation, const char* name_key,
                      Handler handler, AcrossServers across) {
  return [&engine, operation, name_key, handler = std::move(handler), across](
             const json& in, const RequestContext& ctx) -> Result<std::string> {
    engine::ReadCache& cache = engine.read_cache();
    const json name = in.value(name_key, json());
    if (!name.is_string()) {
      PW_ASSIGN_OR_RETURN(json out, handler(in, ctx));
      return out.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    const std::string key = CacheKey(operation, in);
    if (across == AcrossServers::kByChangeStamp) {
      const std::string& pipeline = name.get_ref<const std::string&>();
      if (std::optional<int64_t> stamp = engine.ChangeStampIfDrivenElsewhere(pipeline)) {
        PW_ASSIGN_OR_RETURN(
            engine::CacheRead read,
            engine.stamped_cache().GetOrCompute(
                pipeline, key, *stamp, [&]() -> Result<engine::SingleFlight::Answer> {
                  const uint64_t job_lookups = engine::Engine::JobLookupsOnThisThread();
                  PW_ASSIGN_OR_RETURN(json out, handler(in, ctx));
                  // An answer that read job documents depends on more than the stamp.
                  return engine::SingleFlight::Answer{
                      out.dump(-1, ' ', false, json::error_handler_t::replace),
                      engine::Engine::JobLookupsOnThisThread() == job_lookups};
                }));
        engine::Metrics().stamped_reads.With({operation, read.result}).Inc();
        return std::move(read.body);
      }
    }
    PW_ASSIGN_OR_RETURN(
        engine::CacheRead read,
        cache.GetOrCompute(name.get<std::string>(), key, [&]() -> Result<std::string> {
          PW_ASSIGN_OR_RETURN(json out, handler(in, ctx));
          return out.dump(-1, ' ', false, json::error_handler_t::replace);
        }));
    engine::Metrics().cached_reads.With({operation, read.result}).Inc();
    return std::move(read.body);
  };
}

void RegisterCachedRead(Dispatcher& d, engine::Engine& engine, const char* operation,
                        const char* name_key, Handler handler, AcrossServers across) {
  d.RegisterRaw(CodePipelineTarget(operation), operation,
                CachedRead(engine, operation, name_key, std::move(handler), across),
                CachedPeek(engine, operation, name_key));
}

void RegisterPipelineOps(Dispatcher& d, engine::Engine& e) {
  d.Register(CodePipelineTarget("CreatePipeline"), "CreatePipeline",
             [&e](const json& in, const RequestContext& ctx) -> Result<json> {
               const bool has_tags = in.contains("tags") && in["tags"].is_array();
               std::vector<store::Tag> tags;
               if (has_tags) tags = TagsFrom(in["tags"]);
               PW_RETURN_IF_ERROR(CheckTagKeys(KeysOf(tags)));
               PW_ASSIGN_OR_RETURN(auto rec, e.CreatePipeline(in["pipeline"], tags, ctx.caller));
               json out = {{"pipeline", e.MaskSecrets(rec.declaration)}};
               if (has_tags) out["tags"] = TagsJson(tags);  // "tags": [] is echoed too.
               return out;
             });

  RegisterCachedRead(
      d, e, "GetPipeline", "name", [&e](const json& in, const RequestContext&) -> Result<json> {
        std::optional<int> version;
        if (in.contains("version") && in["version"].is_number_integer()) {
          version = in["version"].get<int>();
        }
        const std::string name = in["name"];
        auto cur = e.store().GetPipeline(name, std::nullopt);
        if (!cur.ok()) {
          return cur.status().code() == StatusCode::kNotFound ? e.PipelineNotFound(name)
                                                              : cur.status();
        }
        PW_ASSIGN_OR_RETURN(auto rec, e.store().GetPipeline(name, version));
        return json{
            {"pipeline", e.MaskSecrets(rec.declaration)},
            {"metadata",
             {{"pipelineArn", cur->arn}, {"created", cur->created}, {"updated", cur->updated}}}};
      });

  d.Register(CodePipelineTarget("UpdatePipeline"), "UpdatePipeline",
             [&e](const json& in, const RequestContext&) -> Result<json> {
               PW_ASSIGN_OR_RETURN(auto rec, e.UpdatePipeline(in["pipeline"]));
               return json{{"pipeline", e.MaskSecrets(rec.declaration)}};
             });

  d.Register(CodePipelineTarget("DeletePipeline"), "DeletePipeline",
             [&e](const json& in, const RequestContext&) -> Result<json> {
               PW_RETURN_IF_ERROR(e.DeletePipeline(in["name"]));
               return json::object();
             });

  d.Register(
      CodePipelineTarget("ListPipelines"), "ListPipelines",
      [&e](const json& in, const RequestContext&) -> Result<json> {
        std::string after;
        if (in.contains("nextToken")) {
          PW_ASSIGN_OR_RETURN(after, DecodeToken(in["nextToken"]));
        }
        size_t max = static_cast<size_t>(in.value("maxResults", 100));
        PW_ASSIGN_OR_RETURN(auto all, e.store().ListPipelines());
        json page = json::array();
        std::string last;
        bool more = false;
        for (const auto& p : all) {
          if (!after.empty() && p.name <= after) continue;
          if (page.size() == max) {
            more = true;
            break;
          }
          page.push_back({{"name", p.name},
                          {"version", p.version},
                          {"pipelineType", p.declaration.value("pipelineType", "V1")},
                          {"executionMode", p.declaration.value("executionMode", "SUPERSEDED")},
                          {"created", p.created},
                          {"updated", p.updated}});
          last = p.name;
        }
        json out = {{"pipelines", page}};
        if (more) out["nextToken"] = EncodeToken(last);
        return out;
      });

  d.Register(CodePipelineTarget("ListTagsForResource"), "ListTagsForResource",
             [&e](const json& in, const RequestContext&) -> Result<json> {
               PW_ASSIGN_OR_RETURN(auto name, PipelineFromArn(e, in["resourceArn"]));
               (void)name;
               std::string after;
               if (in.contains("nextToken")) {
                 PW_ASSIGN_OR_RETURN(after, DecodeToken(in["nextToken"]));
               }
               size_t max = static_cast<size_t>(in.value("maxResults", 50));
               PW_ASSIGN_OR_RETURN(auto tags, e.store().ListTags(in["resourceArn"]));
               std::vector<store::Tag> page;
               bool more = false;
               for (const auto& t : tags) {
                 if (!after.empty() && t.key <= after) continue;
                 if (page.size() == max) {
                   more = true;
                   break;
                 }
                 page.push_back(t);
               }
               json out = {{"tags", TagsJson(page)}};
               if (more) out["nextToken"] = EncodeToken(page.back().key);
               return out;
             });

  d.Register(CodePipelineTarget("TagResource"), "TagResource",
             [&e](const json& in, const RequestContext&) -> Result<json> {
               PW_ASSIGN_OR_RETURN(auto name, PipelineFromArn(e, in["resourceArn"]));
               (void)name;
               std::vector<store::Tag> tags = TagsFrom(in["tags"]);
               PW_RETURN_IF_ERROR(CheckTagKeys(KeysOf(tags)));
               PW_RETURN_IF_ERROR(e.store().TagResource(in["resourceArn"], tags));
               return json::object();
             });

  d.Register(CodePipelineTarget("UntagResource"), "UntagResource",
             [&e](const json& in, const RequestContext&) -> Result<json> {
               PW_ASSIGN_OR_RETURN(auto name, PipelineFromArn(e, in["resourceArn"]));
               (void)name;
               std::vector<std::string> keys = in["tagKeys"].get<std::vector<std::string>>();
               PW_RETURN_IF_ERROR(CheckTagKeys(keys, /*tags_given=*/false));
               PW_RETURN_IF_ERROR(e.store().UntagResource(in["resourceArn"], keys));
               return json::object();
             });
}

}  // namespace pw::api
