#include "server/multi_server.h"

namespace pw::server {

Status CheckServerId(const std::string& server_id) {
  if (server_id.size() > 64 ||
      server_id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789._-") != std::string::npos) {
    return InvalidArgument(
        "--server-id must be 1 to 64 letters, digits, '.', '_' or '-' (e.g. s1 or "
        "pipewright-2), unique among the servers sharing the database",
        "");
  }
  return Status::Ok();
}

Status CheckMultiServer(const std::string& server_id, bool postgres,
                        const std::string& artifact_endpoint) {
  if (server_id.empty()) return Status::Ok();
  PW_RETURN_IF_ERROR(CheckServerId(server_id));
  if (!postgres) {
    return InvalidArgument(
        "--server-id is for several servers sharing one PostgreSQL database: add --database "
        "postgresql://user@host/dbname (the same on every server), or drop --server-id to run "
        "one server with the SQLite store in --data-dir",
        "");
  }
  if (artifact_endpoint.empty()) {
    return InvalidArgument(
        "several servers (--server-id) cannot keep artifacts in a local --data-dir, which the "
        "other servers do not see: add --artifact-endpoint URL and --artifact-bucket NAME (an "
        "S3-compatible store every server reaches, credentials in "
        "PIPEWRIGHT_ARTIFACT_ACCESS_KEY_ID / PIPEWRIGHT_ARTIFACT_SECRET_ACCESS_KEY)",
        "");
  }
  return Status::Ok();
}

std::string BucketsOffMessage() {
  return "This server's own S3 buckets are off: it is one of several servers sharing a "
         "database (--server-id), and their objects would be on one server's disk. Use an "
         "S3-compatible store directly (the servers' --s3-endpoint for S3 actions).";
}

}  // namespace pw::server
