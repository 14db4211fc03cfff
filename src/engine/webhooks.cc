// Webhooks (PutWebhook, ListWebhooks, DeleteWebhook, Register/Deregister with
// a third party) and their deliveries: a POST to a webhook's url is
// authenticated as the webhook says (GITHUB_HMAC, IP, UNAUTHENTICATED),
// matched against its filters and, for a pipeline with a V2 trigger on the
// target action, against the trigger's filters (core/triggers.h: the same
// evaluation the poller uses), then starts the pipeline at the pushed commit.
//
// Storage (the store's kv table): "webhook/<name>" -> {"definition", "token",
// "arn", "tags", "created", "lastTriggered", "errorMessage", "errorCode",
// "registered"} (the secret is kept: it is needed to check signatures, and
// never shown: "****" in every answer); "webhookurl/<token>" -> name;
// "webhookdlv/<name>" -> the last kMaxDeliveries deliveries, newest first,
// without bodies, headers or secrets.

#include <algorithm>

#include "common/ids.h"
#include "common/json_nesting.h"
#include "common/log.h"
#include "engine/engine.h"
#include "engine/git_connections.h"
#include "engine/internal.h"
#include "engine/triggers.h"
#include "engine/webhook_rules.h"
#include "runner/git_source.h"
#include "sigv4/crypto.h"

namespace pw::engine {

using nlohmann::json;

namespace {

constexpr size_t kMaxDeliveries = 20;
constexpr int kMaxWebhooks = 300;
// How deep arrays and objects may nest in a payload (as in API bodies).
constexpr int kMaxPayloadNesting = 64;

std::string DocKey(const std::string& name) { return "webhook/" + name; }
std::string UrlKey(const std::string& token) { return "webhookurl/" + token; }
std::string DeliveriesKey(const std::string& name) { return "webhookdlv/" + name; }

Status WebhookNotFound(const std::string& name) {
  return NotFound("Webhook '" + name + "' does not exist; see list-webhooks.",
                  "WebhookNotFoundException");
}

const core::ActionDecl* SourceAction(const core::PipelineDecl& d, const std::string& name) {
  if (d.stages.empty()) return nullptr;
  for (const auto& a : d.stages[0].actions) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

}  // namespace

std::string Engine::WebhookUrl(const std::string& token) {
  std::string base;
  {
    MutexLock lock(mu_);
    base = options_.public_url;
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/_webhooks/" + token;
}

json Engine::WebhookItem(const json& doc) {
  json def = doc.value("definition", json::object());
  if (def.contains("authenticationConfiguration") &&
      def["authenticationConfiguration"].contains("SecretToken")) {
    def["authenticationConfiguration"]["SecretToken"] = kMasked;
  }
  json item = {{"definition", def},
               {"url", WebhookUrl(doc.value("token", ""))},
               {"arn", doc.value("arn", "")}};
  if (doc.contains("tags") && !doc["tags"].empty()) item["tags"] = doc["tags"];
  if (doc.contains("lastTriggered")) item["lastTriggered"] = doc["lastTriggered"];
  if (!doc.value("errorMessage", "").empty()) {
    item["errorMessage"] = doc["errorMessage"];
    item["errorCode"] = doc.value("errorCode", "");
  }
  return item;
}

Result<json> Engine::PutWebhook(const json& in_def, const json& tags) {
  json def = in_def;
  const std::string name = def.value("name", "");
  const std::string pipeline = def.value("targetPipeline", "");
  const std::string action = def.value("targetAction", "");
  // The target: a Git source of the pipeline's first stage.
  std::map<std::string, std::string> configuration;
  {
    MutexLock lock(mu_);
    PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(pipeline));
    const core::ActionDecl* a = SourceAction(p->decl, action);
    if (a == nullptr) {
      return InvalidArgument("targetAction '" + action +
                             "' is not an action of the first stage of "
                             "pipeline '" +
                             pipeline + "'; a webhook starts a source action.");
    }
    if (!IsGitSource(*a)) {
      return InvalidArgument("targetAction '" + action + "' is " + a->type.ToString() +
                             "; Pipewright's webhooks start Git sources (Source/AWS/Git, "
                             "CodeCommit, CodeStarSourceConnection) at the pushed commit.");
    }
    configuration = a->configuration;
  }
  // Filters: each jsonPath parses; each {Key} names a configuration key.
  for (const auto& f : def.value("filters", json::array())) {
    PW_RETURN_IF_ERROR(ParseJsonPath(f.value("jsonPath", "")).status());
    if (f.contains("matchEquals")) {
      PW_RETURN_IF_ERROR(ExpandMatchEquals(f.value("matchEquals", ""), configuration).status());
    }
  }
  const std::string auth = def.value("authentication", "");
  json conf = def.value("authenticationConfiguration", json::object());
  MutexLock lock(webhooks_mu_);
  auto old = store_.GetKv(DocKey(name));
  if (!old.ok()) return old.status();
  json doc = json::object();
  if (old->has_value()) doc = json::parse(**old, nullptr, false);
  if (!doc.is_object()) doc = json::object();
  // Rule 9 as for pipelines: "****" sent back keeps the stored secret.
  if (conf.value("SecretToken", "") == kMasked && doc.contains("definition")) {
    conf["SecretToken"] = doc["definition"]
                              .value("authenticationConfiguration", json::object())
                              .value("SecretToken", "");
  }
  auto bad_auth = [](const std::string& m) {
    return InvalidArgument(m, "InvalidWebhookAuthenticationParametersException");
  };
  if (auth == "GITHUB_HMAC") {
    if (conf.value("SecretToken", "").empty()) {
      return bad_auth(
          "authentication GITHUB_HMAC needs authenticationConfiguration.SecretToken "
          "(the secret the repository host signs payloads with).");
    }
    if (conf.contains("AllowedIPRange")) {
      return bad_auth("authentication GITHUB_HMAC takes only SecretToken; remove AllowedIPRange.");
    }
  } else if (auth == "IP") {
    if (!conf.contains("AllowedIPRange")) {
      return bad_auth(
          "authentication IP needs authenticationConfiguration.AllowedIPRange (a "
          "CIDR range such as 192.0.2.0/24).");
    }
    PW_RETURN_IF_ERROR(ParseIpRange(conf.value("AllowedIPRange", "")).status());
    if (conf.contains("SecretToken")) {
      return bad_auth("authentication IP takes only AllowedIPRange; remove SecretToken.");
    }
  } else if (!conf.empty()) {
    return bad_auth(
        "authentication UNAUTHENTICATED takes no authenticationConfiguration; send "
        "{}.");
  }
  def["authenticationConfiguration"] = conf;
  if (!old->has_value()) {
    auto all = store_.ListKv("webhook/");
    if (!all.ok()) return all.status();
    if (static_cast<int>(all->size()) >= kMaxWebhooks) {
      return FailedPrecondition("This server already has " + std::to_string(kMaxWebhooks) +
                                    " webhooks, the most it keeps; delete one first.",
                                "LimitExceededException");
    }
    doc["token"] = RandomHex(32);
    doc["created"] = clock_.Now();
  }
  doc["definition"] = def;
  doc["arn"] =
      "arn:aws:codepipeline:" + options_.region + ":" + options_.account_id + ":webhook:" + name;
  if (!tags.is_null()) doc["tags"] = tags;
  doc.erase("errorMessage");
  doc.erase("errorCode");
  store::Batch batch;
  batch.kv.emplace_back(DocKey(name), doc.dump());
  batch.kv.emplace_back(UrlKey(doc["token"]), name);
  PW_RETURN_IF_ERROR(store_.Commit(batch));
  return WebhookItem(doc);
}

Result<std::vector<json>> Engine::ListWebhooks() {
  PW_ASSIGN_OR_RETURN(auto all, store_.ListKv("webhook/"));
  std::vector<json> out;
  for (const auto& [key, value] : all) {
    json doc = json::parse(value, nullptr, false);
    if (doc.is_object()) out.push_back(WebhookItem(doc));
  }
  return out;
}

Status Engine::DeleteWebhook(const std::string& name) {
  MutexLock lock(webhooks_mu_);
  PW_ASSIGN_OR_RETURN(auto old, store_.GetKv(DocKey(name)));
  if (!old.has_value()) return Status::Ok();  // As AWS: deleting a missing webhook succeeds.
  json doc = json::parse(*old, nullptr, false);
  store::Batch batch;
  batch.kv_deletes.push_back(DocKey(name));
  batch.kv_deletes.push_back(DeliveriesKey(name));
  if (doc.is_object() && doc.contains("token")) {
    batch.kv_deletes.push_back(UrlKey(doc.value("token", "")));
  }
  return store_.Commit(batch);
}

Status Engine::RegisterWebhook(const std::string& name, bool registered) {
  MutexLock lock(webhooks_mu_);
  PW_ASSIGN_OR_RETURN(auto old, store_.GetKv(DocKey(name)));
  if (!old.has_value()) return WebhookNotFound(name);
  json doc = json::parse(*old, nullptr, false);
  if (!doc.is_object()) return WebhookNotFound(name);
  doc["registered"] = registered;
  return store_.PutKv(DocKey(name), doc.dump());
}

Result<json> Engine::WebhookDeliveries(const std::string& name) {
  PW_ASSIGN_OR_RETURN(auto doc, store_.GetKv(DocKey(name)));
  if (!doc.has_value()) return WebhookNotFound(name);
  PW_ASSIGN_OR_RETURN(auto list, store_.GetKv(DeliveriesKey(name)));
  json out = list.has_value() ? json::parse(*list, nullptr, false) : json::array();
  return out.is_array() ? out : json::array();
}

bool Engine::WebhookUrlKnown(const std::string& token) {
  auto found = store_.GetKv(UrlKey(token));
  return !found.ok() || found->has_value();
}

WebhookReply Engine::DeliverWebhook(const WebhookRequest& req) {
  WebhookReply reply;
  std::string name;
  json doc;
  {
    auto found = store_.GetKv(UrlKey(req.token));
    if (!found.ok() || !found->has_value()) {
      reply.status = 404;
      reply.message = std::string(kNoSuchWebhookUrl);
      reply.error_type = "WebhookNotFoundException";
      return reply;
    }
    name = **found;
    auto stored = store_.GetKv(DocKey(name));
    if (stored.ok() && stored->has_value()) doc = json::parse(**stored, nullptr, false);
    if (!doc.is_object() || doc.value("token", "") != req.token) {
      reply.status = 404;
      reply.message = "No webhook has this url.";
      reply.error_type = "WebhookNotFoundException";
      return reply;
    }
  }
  json delivery = {{"at", clock_.Now()}, {"peer", req.peer}};
  if (!req.event.empty()) delivery["event"] = req.event;
  auto finish = [&](int status, const std::string& message, const char* type = nullptr) {
    reply.status = status;
    reply.message = message;
    if (status >= 400) {
      reply.error_type = type != nullptr                    ? type
                         : status == 400                    ? "ValidationException"
                         : status == 409                    ? "ConflictException"
                         : status == 404                    ? "WebhookNotFoundException"
                         : (status == 401 || status == 403) ? "AccessDeniedException"
                                                            : "InternalFailure";
    }
    delivery["status"] = status;
    delivery["outcome"] = message;
    if (!reply.execution_id.empty()) delivery["pipelineExecutionId"] = reply.execution_id;
    MutexLock lock(webhooks_mu_);
    auto list = store_.GetKv(DeliveriesKey(name));
    json all = list.ok() && list->has_value() ? json::parse(**list, nullptr, false) : json::array();
    if (!all.is_array()) all = json::array();
    all.insert(all.begin(), delivery);
    while (all.size() > kMaxDeliveries) all.erase(all.end() - 1);
    store::Batch batch;
    batch.kv.emplace_back(DeliveriesKey(name), all.dump());
    // The webhook's own record: lastTriggered on a start, the error otherwise.
    auto current = store_.GetKv(DocKey(name));
    json cur =
        current.ok() && current->has_value() ? json::parse(**current, nullptr, false) : json();
    if (cur.is_object() && cur.value("token", "") == req.token) {
      if (!reply.execution_id.empty()) {
        cur["lastTriggered"] = delivery["at"];
        cur.erase("errorMessage");
        cur.erase("errorCode");
      } else if (status >= 400) {
        cur["errorMessage"] = message;
        cur["errorCode"] = std::to_string(status);
      }
      batch.kv.emplace_back(DocKey(name), cur.dump());
    }
    if (Status s = store_.Commit(batch); !s.ok()) {
      PW_LOG(Warning) << "webhook " << name << ": delivery not recorded: " << s.ToString();
    }
    return reply;
  };

  const json def = doc.value("definition", json::object());
  const std::string auth = def.value("authentication", "");
  const json conf = def.value("authenticationConfiguration", json::object());
  if (auth == "GITHUB_HMAC") {
    const std::string secret = conf.value("SecretToken", "");
    bool ok = false;
    if (!req.signature_256.empty()) {
      ok = GithubSignatureValid(secret, req.body, req.signature_256);
    } else if (!req.gitlab_token.empty()) {
      ok = sigv4::ConstantTimeEquals(req.gitlab_token, secret);  // GitLab sends the secret.
    }
    if (!ok) {
      return finish(401, req.signature_256.empty() && req.gitlab_token.empty()
                             ? "Missing X-Hub-Signature-256 (GITHUB_HMAC webhook): nothing started."
                             : "The signature does not match the webhook's secret: nothing "
                               "started.");
    }
  } else if (auth == "IP") {
    auto range = ParseIpRange(conf.value("AllowedIPRange", ""));
    if (!range.ok() || !IpInRange(*range, req.peer)) {
      return finish(403, "The sender's address " + req.peer +
                             " is outside the webhook's AllowedIPRange: nothing started.");
    }
  }
  // The same bound as API bodies: a payload of millions of '[' would cost
  // the parser seconds of CPU (GitHub's and GitLab's nest under 10 levels).
  if (!JsonNestingWithin(req.body, kMaxPayloadNesting)) {
    return finish(400, "The payload nests arrays and objects deeper than " +
                           std::to_string(kMaxPayloadNesting) + " levels: nothing started.");
  }
  json payload = json::parse(req.body, nullptr, false);
  if (!payload.is_object()) return finish(400, "The payload is not a JSON object.");
  if (req.event == "ping") return finish(200, "ping: the webhook is reachable.");

  const std::string pipeline = def.value("targetPipeline", "");
  const std::string action = def.value("targetAction", "");
  core::ActionDecl target;
  {
    MutexLock lock(mu_);
    auto p = LoadLocked(pipeline);
    if (!p.ok()) {
      return finish(404, "Pipeline '" + pipeline + "' does not exist.",
                    "PipelineNotFoundException");
    }
    const core::ActionDecl* a = SourceAction((*p)->decl, action);
    if (a == nullptr) {
      return finish(404, "Pipeline '" + pipeline + "' has no source action '" + action + "'.",
                    "ActionNotFoundException");
    }
    target = *a;
  }
  auto record = store_.GetPipeline(pipeline, std::nullopt);
  const std::vector<core::TriggerDecl> triggers =
      record.ok() ? TriggersOf(record->declaration) : std::vector<core::TriggerDecl>{};
  // The webhook's filters, all of which must pass.
  const json filters = def.value("filters", json::array());
  for (size_t i = 0; i < filters.size(); ++i) {
    const json& f = filters[i];
    auto path = ParseJsonPath(f.value("jsonPath", ""));
    if (!path.ok()) return finish(200, "filtered out: " + path.status().message());
    std::optional<std::string> expected;
    if (f.contains("matchEquals")) {
      auto e = ExpandMatchEquals(f.value("matchEquals", ""), target.configuration);
      if (!e.ok()) return finish(200, "filtered out: " + e.status().message());
      expected = *e;
    }
    std::optional<json> value = EvalJsonPath(*path, payload);
    if (!FilterValueMatches(value, expected)) {
      std::string got = !value               ? "nothing"
                        : value->is_string() ? value->get<std::string>()
                                             : value->dump();
      if (got.size() > 200) got = got.substr(0, 200) + "…";
      return finish(200, "filtered out by filter " + std::to_string(i + 1) + ": " +
                             f.value("jsonPath", "") + " is " + got +
                             (expected ? ", not " + *expected : ""));
    }
  }
  PushPayload push = ReadPushPayload(payload);
  delivery["ref"] = push.ref;
  if (push.deleted) return finish(200, "ignored: " + push.ref + " was deleted.");
  if (push.after.empty()) {
    return finish(400,
                  "The payload names no pushed commit (after, checkout_sha or "
                  "head_commit.id with 40 hex digits).");
  }
  delivery["commit"] = push.after;
  std::string trigger_type = "Webhook";
  std::string detail = doc.value("arn", "");
  auto remote = ResolveGitRemote(options_.git_connections, target);
  if (const core::TriggerDecl* t = TriggerFor(triggers, action)) {
    core::GitChange c;
    c.ref = push.ref;
    c.commit = push.after;
    // The changed files: libgit2's diff of before..after, else the payload's list.
    Result<std::vector<std::string>> files = NotFound("no base commit");
    if (remote.ok() && !push.before.empty()) {
      runner::GitAuth gauth;
      if (!remote->token_file.empty()) {
        if (auto token = ReadGitToken(remote->token_file); token.ok()) {
          gauth = {remote->username, *token};
        }
      }
      files = runners_.git->ChangedFiles(remote->url, push.before, push.after, gauth);
    }
    if (files.ok()) {
      c.files = std::move(*files);
    } else if (push.files_listed) {
      c.files = push.files;
    } else {
      c.files_known = false;
    }
    const std::string branch = remote.ok() ? remote->branch : "";
    auto m = core::MatchTrigger(*t, c, branch);
    if (!m) {
      return finish(200, "filtered out: no filter of the pipeline's trigger for '" + action +
                             "' matches " + push.ref + " at " + push.after);
    }
    trigger_type = "WebhookV2";
    detail += " " + m->detail;
  }
  auto id = StartAtCommit(pipeline, action, push.after, trigger_type, detail);
  if (!id.ok()) {
    return finish(id.status().code() == StatusCode::kFailedPrecondition ? 409 : 400,
                  "could not start: " + id.status().message());
  }
  reply.execution_id = *id;
  // The poller need not start the same commit again (a source both polled and
  // webhooked): it has seen it now.
  const std::string refs_key = "poll/" + pipeline + "/" + action + "/refs";
  if (auto seen = store_.GetKv(refs_key); seen.ok() && seen->has_value()) {
    json refs = json::parse(**seen, nullptr, false);
    if (refs.is_object()) {
      refs[push.ref] = push.after;
      (void)store_.PutKv(refs_key, refs.dump());
    }
  }
  if (remote.ok() && push.ref == "refs/heads/" + remote->branch) {
    (void)store_.PutKv("poll/" + pipeline + "/" + action, push.after);
  }
  return finish(200, "started execution " + *id + " at " + push.after);
}

}  // namespace pw::engine
