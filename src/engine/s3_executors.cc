// The S3 executors, over the ObjectStore the engine was given (the server's
// own buckets or `serve --s3-endpoint`):
//   Source/S3  reads one object (the latest version, or the one
//              StartPipelineExecution.sourceRevisions asks for), checks it is
//              a zip within the artifact limits and stores it as the output
//              artifact; revision = version id (ETag without versioning).
//   Deploy/S3  uploads the input artifact: every file below ObjectKey/
//              (Extract true) or the zip as one object at ObjectKey.
// Each runs to completion on the calling worker thread, without the engine
// mutex, writes what it did to the run's log and reports at once.

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <string_view>
#include <vector>

#include "common/mutex.h"
#include "core/timers.h"
#include "engine/executor.h"
#include "engine/helpers.h"
#include "runner/artifact_store.h"
#include "runner/object_store.h"

namespace pw::engine {

namespace fs = std::filesystem;

namespace {

constexpr const char* kNoObjectStore =
    "No S3 store is configured for S3 actions: start the server with --s3-endpoint URL (an "
    "S3-compatible store; credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).";
// The object metadata AWS shows as an S3 source revision's summary.
constexpr const char* kRevisionSummaryKey = "codepipeline-artifact-revision-summary";

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string S3Url(const std::string& bucket, const std::string& key) {
  return "s3://" + bucket + "/" + key;
}

// Appends lines to the run's log (best effort: a log that cannot be written
// never fails the action).
class RunLog {
 public:
  RunLog(const ExecutorEnv& env, const std::string& run_id)
      : out_(env.LogPath(run_id), std::ios::app) {}
  void Line(const std::string& text) {
    if (out_) out_ << text << "\n" << std::flush;
  }

 private:
  std::ofstream out_;
};

// The Content-Type of a deployed file, from its extension (lower-cased), as
// S3 deploy tools guess it; binary/octet-stream (S3's own default) otherwise.
std::string ContentTypeFor(const std::string& key) {
  static const std::vector<std::pair<std::string_view, std::string_view>> kTypes = {
      {"html", "text/html"},
      {"htm", "text/html"},
      {"css", "text/css"},
      {"js", "application/javascript"},
      {"mjs", "application/javascript"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"xml", "application/xml"},
      {"txt", "text/plain"},
      {"md", "text/markdown"},
      {"csv", "text/csv"},
      {"yaml", "application/x-yaml"},
      {"yml", "application/x-yaml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"svg", "image/svg+xml"},
      {"ico", "image/x-icon"},
      {"webp", "image/webp"},
      {"avif", "image/avif"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"ttf", "font/ttf"},
      {"otf", "font/otf"},
      {"eot", "application/vnd.ms-fontobject"},
      {"pdf", "application/pdf"},
      {"zip", "application/zip"},
      {"gz", "application/gzip"},
      {"tgz", "application/gzip"},
      {"tar", "application/x-tar"},
      {"wasm", "application/wasm"},
      {"mp4", "video/mp4"},
      {"webm", "video/webm"},
      {"mp3", "audio/mpeg"},
      {"wav", "audio/wav"},
  };
  const std::string name = key.substr(key.rfind('/') + 1);
  const auto dot = name.rfind('.');
  if (dot == std::string::npos || dot == 0) return "binary/octet-stream";
  const std::string ext = Lower(name.substr(dot + 1));
  for (const auto& [e, type] : kTypes) {
    if (e == ext) return std::string(type);
  }
  return "binary/octet-stream";
}

class S3SourceExecutor final : public ActionExecutor {
 public:
  explicit S3SourceExecutor(const ExecutorEnv& env) : env_(env) {}

  void Run(const ActionWork& w, ActionDone done) override {
    if (env_.objects == nullptr) return done(Failure(kNoObjectStore, "", "ConfigurationError"));
    const std::string bucket = ConfigValue(w.decl, "S3Bucket");
    std::string key = ConfigValue(w.decl, "S3ObjectKey");
    std::string version;
    if (w.source_revision_type == "S3_OBJECT_VERSION_ID") {
      version = w.source_revision_value;
    } else if (w.source_revision_type == "S3_OBJECT_KEY") {
      key = w.source_revision_value;
    } else if (!w.source_revision_type.empty()) {
      return done(Failure("The source revision type " + w.source_revision_type +
                              " does not apply to an S3 source action; use "
                              "S3_OBJECT_VERSION_ID or S3_OBJECT_KEY.",
                          "", "ConfigurationError"));
    }
    // An S3_OBJECT_KEY override, possibly with a version id of that key.
    if (!w.source_object_key.empty()) key = w.source_object_key;
    const std::string where =
        S3Url(bucket, key) + (version.empty() ? "" : " (version " + version + ")");
    RunLog log(env_, w.run_id);
    log.Line("Reading " + where);

    const std::string work = env_.WorkDir(w.run_id);
    std::error_code ec;
    fs::create_directories(work, ec);
    const std::string object = work + "/object.zip";
    auto finish = [&](const core::ActionResult& r) {
      fs::remove_all(work, ec);
      log.Line(r.status == core::ActionStatus::kSucceeded ? r.summary : r.error_message);
      done(r);
    };
    auto got = env_.objects->Get(bucket, key, version, object);
    if (!got.ok()) {
      return finish(Failure("Cannot read the source object " + where + ": " +
                            got.status().message() +
                            (got.status().code() == StatusCode::kNotFound
                                 ? " Upload the source there as a single .zip file."
                                 : "")));
    }
    // AWS requires the source object to be a .zip; the artifact store checks
    // it is one within the server's limits.
    auto rev = env_.artifacts->PutZipFile(object);
    if (!rev.ok()) {
      return finish(
          Failure("The source object " + where + " cannot be used: " + rev.status().message() +
                  (rev.status().code() == StatusCode::kInvalidArgument
                       ? ". An S3 source must be a single .zip archive of the source files."
                       : "")));
    }
    core::ActionResult result;
    for (const auto& o : w.decl.output_artifacts) result.outputs[o.name] = *rev;
    result.revision_id = core::S3RevisionId(got->version_id, got->etag);
    auto summary = got->metadata.find(kRevisionSummaryKey);
    if (summary != got->metadata.end()) result.revision_summary = summary->second;
    result.revision_created = got->last_modified > 0 ? got->last_modified : env_.clock->Now();
    result.revision_url = env_.objects->UrlOf(bucket, key, got->version_id);
    result.output_variables["ETag"] = got->etag;
    result.output_variables["VersionId"] = got->version_id;
    const bool versioned = !got->version_id.empty() && got->version_id != "null";
    result.summary = "Read " + S3Url(bucket, key) +
                     (versioned ? " version " + got->version_id : " ETag " + got->etag) + " (" +
                     std::to_string(got->size) + " bytes)";
    finish(result);
  }

 private:
  ExecutorEnv env_;
};

class S3DeployExecutor final : public ActionExecutor {
 public:
  explicit S3DeployExecutor(const ExecutorEnv& env) : env_(env) {}

  void Run(const ActionWork& w, ActionDone done) override;

  void Cancel(const std::string& run_id) override {
    MutexLock lock(mu_);
    if (running_.count(run_id)) cancelled_.insert(run_id);
  }

 private:
  bool Cancelled(const std::string& run_id) {
    MutexLock lock(mu_);
    return cancelled_.count(run_id) > 0;
  }

  ExecutorEnv env_;
  Mutex mu_;
  std::set<std::string> running_ GUARDED_BY(mu_);    // Run ids in Run.
  std::set<std::string> cancelled_ GUARDED_BY(mu_);  // Of those, abandoned: stop uploading.
};

void S3DeployExecutor::Run(const ActionWork& w, ActionDone done) {
  if (env_.objects == nullptr) return done(Failure(kNoObjectStore, "", "ConfigurationError"));
  const std::string bucket = ConfigValue(w.decl, "BucketName");
  const std::string extract = Lower(ConfigValue(w.decl, "Extract"));
  std::string prefix = ConfigValue(w.decl, "ObjectKey");
  if (extract != "true" && extract != "false") {
    return done(
        Failure("Extract must be true or false, not '" + ConfigValue(w.decl, "Extract") + "'.", "",
                "ConfigurationError"));
  }
  if (extract == "false" && prefix.empty()) {
    return done(
        Failure("ObjectKey is required when Extract is false: name the object to store "
                "the artifact's zip as.",
                "", "ConfigurationError"));
  }
  const std::string rev = w.inputs.empty() ? "" : w.inputs.begin()->second;
  runner::PutOptions put;
  put.cache_control = ConfigValue(w.decl, "CacheControl");
  put.canned_acl = ConfigValue(w.decl, "CannedACL");
  const std::string note = ConfigValue(w.decl, "KMSEncryptionKeyARN").empty()
                               ? ""
                               : " (KMSEncryptionKeyARN ignored: Pipewright does not encrypt "
                                 "objects with KMS)";
  {
    MutexLock lock(mu_);
    running_.insert(w.run_id);
  }
  const std::string work = env_.WorkDir(w.run_id);
  RunLog log(env_, w.run_id);
  std::error_code ec;
  auto finish = [&](const core::ActionResult& r) {
    fs::remove_all(work, ec);
    {
      MutexLock lock(mu_);
      running_.erase(w.run_id);
      cancelled_.erase(w.run_id);
    }
    log.Line(r.status == core::ActionStatus::kSucceeded ? r.summary : r.error_message);
    done(r);
  };

  if (extract == "false") {
    put.content_type = ContentTypeFor(prefix);
    log.Line("Uploading the artifact's zip to " + S3Url(bucket, prefix));
    if (Status st = env_.artifacts->Fetch(rev); !st.ok()) {
      return finish(Failure("Cannot read the input artifact: " + st.message()));
    }
    auto stored = env_.objects->Put(bucket, prefix, env_.artifacts->PathOf(rev), put);
    if (!stored.ok()) {
      return finish(
          Failure("Cannot upload to " + S3Url(bucket, prefix) + ": " + stored.status().message()));
    }
    core::ActionResult result;
    result.summary = "Uploaded the input artifact as " + S3Url(bucket, prefix) + note;
    return finish(result);
  }

  // Extract: unpack (within the artifact limits), then one object per file.
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  const std::string dir = work + "/files";
  if (Status st = env_.artifacts->Extract(rev, dir); !st.ok()) {
    return finish(Failure("Cannot unpack the input artifact: " + st.message()));
  }
  std::vector<std::string> files;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    // Links Extract kept resolve inside the tree; one naming a file deploys
    // that file's content under the link's name.
    if (fs::is_regular_file(it->path())) {
      files.push_back(it->path().lexically_relative(dir).generic_string());
    }
  }
  if (ec) return finish(Failure("Cannot list the unpacked artifact: " + ec.message()));
  std::sort(files.begin(), files.end());
  uint64_t bytes = 0;
  for (const auto& rel : files) {
    if (Cancelled(w.run_id)) return finish(Failure("The deployment was abandoned."));
    const std::string key = prefix.empty() ? rel : prefix + "/" + rel;
    put.content_type = ContentTypeFor(key);
    auto stored = env_.objects->Put(bucket, key, dir + "/" + rel, put);
    if (!stored.ok()) {
      return finish(
          Failure("Cannot upload " + S3Url(bucket, key) + ": " + stored.status().message()));
    }
    bytes += stored->size;
    log.Line("Uploaded " + S3Url(bucket, key) + " (" + put.content_type + ", " +
             std::to_string(stored->size) + " bytes)");
  }
  core::ActionResult result;
  result.summary = "Uploaded " + std::to_string(files.size()) +
                   (files.size() == 1 ? " file" : " files") + " (" + std::to_string(bytes) +
                   " bytes) to " + S3Url(bucket, prefix.empty() ? "" : prefix + "/") + note;
  finish(result);
}

}  // namespace

std::unique_ptr<ActionExecutor> NewS3SourceExecutor(const ExecutorEnv& env) {
  return std::make_unique<S3SourceExecutor>(env);
}
std::unique_ptr<ActionExecutor> NewS3DeployExecutor(const ExecutorEnv& env) {
  return std::make_unique<S3DeployExecutor>(env);
}

}  // namespace pw::engine
