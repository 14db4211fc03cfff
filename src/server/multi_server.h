#pragma once

// What several `pipewright serve` processes sharing one PostgreSQL database
// need (issue 14; README: Several servers), checked at start-up and by
// --check-config before anything is opened. Multi-server mode = a server id
// (serve --server-id) on a PostgreSQL store. In it:
//  - artifacts live in an S3-compatible bucket every server reaches
//    (--artifact-endpoint, --artifact-bucket), never only in a local --data-dir;
//  - action logs are shipped to the database (engine/log_shipper.h) and
//    GET /logs/<id> reads them there when the file is not local;
//  - the server's own S3 buckets (<data dir>/buckets) are off: their bodies
//    would be on one server's disk. S3 actions use --s3-endpoint, and the
//    S3 endpoint's ordinary buckets answer NotImplemented (BucketsOffMessage).
// Thread-safe (pure functions).

#include <string>

#include "common/status.h"

namespace pw::server {

// Checks a server id: 1-64 of letters, digits, '.', '_', '-'. Empty is fine
// (single server). kInvalidArgument saying what to fix.
Status CheckServerId(const std::string& server_id);

// kInvalidArgument, with what to configure, when `server_id` is set and the
// store is not PostgreSQL (`postgres` false) or artifacts have no
// S3-compatible bucket (`artifact_endpoint` empty). OK otherwise, also for a
// single server (empty id).
Status CheckMultiServer(const std::string& server_id, bool postgres,
                        const std::string& artifact_endpoint);

// What the S3 endpoint answers for ordinary buckets in multi-server mode.
std::string BucketsOffMessage();

}  // namespace pw::server
