#pragma once

// The building blocks of an AWS Signature Version 4 canonical request and
// string to sign, exactly as AWS defines them
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html).
// Pure string functions, no I/O or clock; thread-safe. sigv4.h composes them;
// they are public so tests can compare each step with AWS's test suite.
//
//   std::string cr = CanonicalRequest("GET", CanonicalUri("/", "service"), CanonicalQuery(""),
//                                     CanonicalHeaderMap(headers), Sha256Hex(""));
//   std::string sts = StringToSign("20150830T123600Z",
//                                  "20150830/us-east-1/service/aws4_request", Sha256Hex(cr));

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pw::sigv4 {

// Header names and values as received: names in any case, duplicates allowed.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Lowercase name -> canonical value. std::map keeps the names sorted, which
// is the canonical order.
using CanonicalHeaders = std::map<std::string, std::string>;

// Percent-encodes every byte except the unreserved A-Z a-z 0-9 - _ . ~ (and
// '/' when `keep_slash`), with uppercase hex digits: AWS's UriEncode.
std::string UriEncode(std::string_view s, bool keep_slash);

// Decodes %XX sequences; a '%' not followed by two hex digits stays literal.
// '+' stays '+' (it is not a space in SigV4).
std::string PercentDecode(std::string_view s);

// The canonical URI for `path` as sent on the wire (already percent-encoded
// once by the client). For service "s3" the path is used as is, without
// normalization. For every other service the path is normalized (empty and
// "." segments dropped, ".." resolved, a trailing '/' kept) and each segment
// is URI-encoded once more, so it ends up encoded twice ("/a%20b" ->
// "/a%2520b"). An empty path is "/".
std::string CanonicalUri(std::string_view path, std::string_view service);

// The canonical query string for a raw query (without '?'): each key and value
// is decoded and re-encoded with UriEncode, pairs are sorted by key then value
// and joined "k=v&k2=v2". A key without '=' gets an empty value; empty pairs
// ("a=1&&b=2") are dropped.
std::string CanonicalQuery(std::string_view raw_query);

// Trims leading and trailing spaces and tabs and collapses inner runs of them
// into one space.
std::string TrimAll(std::string_view value);

// Groups `headers` by lowercase name; values are TrimAll'ed and the values of a
// repeated name are joined with ',' in the order received.
CanonicalHeaders CanonicalHeaderMap(const HeaderList& headers);

// The ';'-joined names of `headers` (already lowercase and sorted).
std::string SignedHeaderNames(const CanonicalHeaders& headers);

// The canonical request:
//   method \n uri \n query \n (name:value \n)* \n signed-names \n payload-hash
// `headers` must hold exactly the headers to sign.
std::string CanonicalRequest(std::string_view method, std::string_view canonical_uri,
                             std::string_view canonical_query, const CanonicalHeaders& headers,
                             std::string_view payload_hash);

// "AWS4-HMAC-SHA256\n" amz_date "\n" scope "\n" hex SHA-256 of the canonical request.
std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request_sha256_hex);

// Formats seconds since the Unix epoch as the ISO 8601 basic UTC timestamp
// SigV4 uses, "20150830T123600Z".
std::string FormatAmzDate(int64_t epoch_seconds);

// Parses "yyyymmddThhmmssZ" into seconds since the Unix epoch; nullopt when
// the text is not exactly that shape or names an impossible date or time.
std::optional<int64_t> ParseAmzDate(std::string_view amz_date);

}  // namespace pw::sigv4
