#pragma once

// The S3-compatible endpoint on the API address, path-style
// (http://host:port/<bucket>/<key>), answering in S3's XML:
//  - the server's own buckets (buckets::LocalBuckets): ListBuckets,
//    Create/Head/DeleteBucket, GetBucketLocation, Get/PutBucketVersioning
//    (always Enabled), ListObjects V1/V2, ListObjectVersions, Put/Get/Head/
//    DeleteObject (Range, versionId, Content-MD5, x-amz-checksum-*,
//    aws-chunked bodies), CopyObject, DeleteObjects and multipart uploads;
//  - the job artifact objects (GET/PUT /<bucket>/<key>) of job workers, who
//    sign with their job's artifact credentials and reach only that job's
//    objects, never an ordinary bucket.
// Requests are authenticated with SigV4 (service s3): job credentials are
// tried first (Engine::JobForAccessKey), then the server's keys; a key's
// policy is evaluated for the S3 action (s3:GetObject on
// arn:aws:s3:::bucket/key ...). Without a keys file any key (or none) opens
// the ordinary buckets, as the API does without one.
//
//   api::RegisterS3RootRoute(http, endpoint);   // before the console's GET /
//   console::RegisterConsole(http);
//   api::RegisterS3Endpoint(http, endpoint);    // last: matches any /<bucket>...
//
// The engine, buckets and keys must outlive the server.

#include <cstdint>
#include <string>

#include "auth/keys.h"
#include "buckets/local_buckets.h"
#include "engine/engine.h"
#include "http/server.h"

namespace pw::api {

struct S3Endpoint {
  engine::Engine* engine = nullptr;               // Job credentials and objects.
  buckets::LocalBuckets* buckets = nullptr;       // Ordinary buckets.
  const auth::KeyStore* keys = nullptr;           // Null: signatures are not verified.
  std::string region = "us-east-1";               // GetBucketLocation, x-amz-bucket-region.
  std::string account_id = "123456789012";        // Owner and caller ARNs.
  uint64_t max_object_bytes = uint64_t{5} << 30;  // Per PutObject / UploadPart.
  // Non-empty: the ordinary buckets are off (several servers share a
  // database, server/multi_server.h) and every request for them is answered
  // 501 NotImplemented with this message. Job artifact objects still work.
  std::string buckets_off;
};

// GET / : ListBuckets for a signed request (or any request when signatures
// are not verified and it carries an S3 header); a browser is redirected to
// the console. Register before console::RegisterConsole.
void RegisterS3RootRoute(http::Server& server, const S3Endpoint& endpoint);

// Every other S3 route. Register last: its patterns match any /<bucket>[/<key>].
void RegisterS3Endpoint(http::Server& server, const S3Endpoint& endpoint);

}  // namespace pw::api
