#include "runner/artifact_mirror.h"

#include <utility>

namespace pw::runner {
namespace {

class ObjectStoreArtifactMirror final : public ArtifactMirror {
 public:
  ObjectStoreArtifactMirror(std::shared_ptr<ObjectStore> store, std::string bucket,
                            std::string endpoint)
      : store_(std::move(store)), bucket_(std::move(bucket)), endpoint_(std::move(endpoint)) {}

  std::string Where() const override {
    return "s3://" + bucket_ + "/artifacts/" + (endpoint_.empty() ? "" : " at " + endpoint_);
  }

  Result<bool> Contains(const std::string& revision) override {
    Result<ObjectInfo> head = store_->Head(bucket_, ArtifactMirrorKey(revision));
    if (head.ok()) return true;
    // NoSuchBucket is a configuration error, not an absent object.
    if (head.status().code() == StatusCode::kNotFound &&
        head.status().wire_name() != "NoSuchBucket") {
      return false;
    }
    return head.status();
  }

  Status Upload(const std::string& revision, const std::string& zip_path) override {
    PutOptions options;
    options.content_type = "application/zip";
    Result<ObjectInfo> put = store_->Put(bucket_, ArtifactMirrorKey(revision), zip_path, options);
    return put.ok() ? Status::Ok() : put.status();
  }

  Status Download(const std::string& revision, const std::string& dest_path) override {
    Result<ObjectInfo> got = store_->Get(bucket_, ArtifactMirrorKey(revision), "", dest_path);
    return got.ok() ? Status::Ok() : got.status();
  }

  Result<std::optional<EpochSeconds>> Modified(const std::string& revision) override {
    Result<ObjectInfo> head = store_->Head(bucket_, ArtifactMirrorKey(revision));
    if (head.ok()) return std::optional<EpochSeconds>(head->last_modified);
    if (head.status().code() == StatusCode::kNotFound &&
        head.status().wire_name() != "NoSuchBucket") {
      return std::optional<EpochSeconds>();
    }
    return head.status();
  }

  Status Remove(const std::string& revision) override {
    return store_->Delete(bucket_, ArtifactMirrorKey(revision));
  }

 private:
  const std::shared_ptr<ObjectStore> store_;
  const std::string bucket_;
  const std::string endpoint_;
};

}  // namespace

std::string ArtifactMirrorKey(const std::string& revision) {
  return "artifacts/" + revision + ".zip";
}

std::shared_ptr<ArtifactMirror> NewObjectStoreArtifactMirror(std::shared_ptr<ObjectStore> store,
                                                             std::string bucket,
                                                             std::string endpoint) {
  return std::make_shared<ObjectStoreArtifactMirror>(std::move(store), std::move(bucket),
                                                     std::move(endpoint));
}

}  // namespace pw::runner
