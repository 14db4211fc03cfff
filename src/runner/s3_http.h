#pragma once

// What the S3 clients (S3Client for job workers, RemoteObjectStore for the S3
// actions) share about talking to an S3-compatible endpoint: parsing the
// endpoint URL and turning an S3 error answer into a Status. Pure functions;
// thread-safe.
//
//   std::optional<S3Endpoint> e = ParseS3Endpoint("http://127.0.0.1:4568");
//   httplib::Client http(e->origin);
//   if (res->status >= 300) return S3ErrorFrom(res->status, res->body, "GET s3://b/k");

#include <optional>
#include <string>

#include "common/status.h"

namespace pw::runner {

struct S3Endpoint {
  std::string origin;       // "http://host:port" for httplib.
  std::string host_header;  // "host[:port]" as it will be signed.
  std::string base_path;    // "" or "/base", without a trailing '/'.
};

// "http[s]://host[:port][/base]"; nullopt for any other form.
std::optional<S3Endpoint> ParseS3Endpoint(const std::string& url);

// The text of the first <tag>…</tag> in an S3 XML document, or "".
std::string S3XmlField(const std::string& xml, const std::string& tag);

// The Status of a non-2xx S3 answer, its message "<what>: <Code>: <Message>"
// and wire name the S3 error code (the status number when the body has none,
// e.g. HEAD): kNotFound for 404, kFailedPrecondition for 403, kUnavailable
// for 5xx, kInvalidArgument otherwise.
Status S3ErrorFrom(int status, const std::string& body, const std::string& what);

}  // namespace pw::runner
