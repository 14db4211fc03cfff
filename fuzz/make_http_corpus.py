#!/usr/bin/env python3
"""Writes the seeds of http_fuzzer to fuzz/corpus-http/ (run from anywhere).

Each seed: byte 0 = method index (GET 0, PUT 1, POST 2, DELETE 3, HEAD 4)
+ 8 when the fuzzer signs the request; then the target line, header lines,
an empty line and the body (fuzz/http_fuzzer.cc)."""
import os

GET, PUT, POST, DELETE, HEAD = range(5)
SIGN = 8
CHUNKED = ("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n")
SEEDS = {
    "create-bucket": (PUT | SIGN, "/fuzz-bucket", [], ""),
    "put-object": (PUT | SIGN, "/fuzz-bucket/dir/key.txt",
                   ["Content-Type: text/plain", "x-amz-meta-a: b"], "hello"),
    "put-object-md5": (PUT | SIGN, "/fuzz-bucket/k2", ["Content-MD5: XUFAKrxLKna5cZ2REBfFkg=="], "hello"),
    "put-aws-chunked": (PUT | SIGN, "/fuzz-bucket/chunked",
                        ["Content-Encoding: aws-chunked",
                         "x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                         "x-amz-trailer: x-amz-checksum-crc32",
                         "x-amz-decoded-content-length: 5"], CHUNKED),
    "get-object": (GET | SIGN, "/fuzz-bucket/dir/key.txt", [], ""),
    "get-range": (GET | SIGN, "/fuzz-bucket/dir/key.txt", ["Range: bytes=1-3"], ""),
    "head-object": (HEAD | SIGN, "/fuzz-bucket/dir/key.txt", ["If-None-Match: \"x\""], ""),
    "list-v2": (GET | SIGN, "/fuzz-bucket?list-type=2&prefix=dir%2F&delimiter=%2F&max-keys=2", [], ""),
    "list-v1": (GET | SIGN, "/fuzz-bucket?marker=a&max-keys=1", [], ""),
    "list-versions": (GET | SIGN, "/fuzz-bucket?versions", [], ""),
    "location": (GET | SIGN, "/fuzz-bucket?location", [], ""),
    "copy": (PUT | SIGN, "/fuzz-bucket/copy", ["x-amz-copy-source: /fuzz-bucket/dir/key.txt"], ""),
    "delete-object": (DELETE | SIGN, "/fuzz-bucket/k2", [], ""),
    "delete-objects": (POST | SIGN, "/fuzz-bucket?delete", [],
                       "<Delete><Quiet>false</Quiet><Object><Key>copy</Key></Object>"
                       "<Object><Key>a&amp;b</Key><VersionId>1</VersionId></Object></Delete>"),
    "multipart-start": (POST | SIGN, "/fuzz-bucket/big?uploads", [], ""),
    "multipart-part": (PUT | SIGN, "/fuzz-bucket/big?partNumber=1&uploadId=abc", [], "0123456789abcdef"),
    "multipart-complete": (POST | SIGN, "/fuzz-bucket/big?uploadId=abc", [],
                           "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                           "<ETag>\"x\"</ETag></Part></CompleteMultipartUpload>"),
    "multipart-list": (GET | SIGN, "/fuzz-bucket?uploads", [], ""),
    "list-buckets": (GET | SIGN, "/", [], ""),
    "delete-bucket": (DELETE | SIGN, "/fuzz-bucket", [], ""),
    "unsigned-bad-auth": (GET, "/fuzz-bucket", [
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIDFUZZ/20261202/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
        "x-amz-date: 20261202T000000Z"], ""),
    "presigned": (GET, "/fuzz-bucket/dir/key.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
                  "AKIDFUZZ%2F20261202%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261202T000000Z"
                  "&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=" + "0" * 64, [], ""),
    "api-list": (POST | SIGN, "/", ["X-Amz-Target: CodePipeline_20150709.ListPipelines",
                                     "Content-Type: application/x-amz-json-1.1"], "{}"),
    "api-unsigned": (POST, "/", ["X-Amz-Target: CodePipeline_20150709.GetPipeline",
                                 "Content-Type: application/x-amz-json-1.1"], '{"name":"p"}'),
    "console": (GET, "/console/index.html", [], ""),
    "console-session": (GET, "/console/api/session", ["Cookie: pw_session=abc"], ""),
    "metrics": (GET | SIGN, "/metrics", [], ""),
    "webhook": (POST, "/_webhooks/0123456789abcdef0123456789abcdef",
                ["X-Hub-Signature-256: sha256=00", "X-GitHub-Event: push",
                 "Content-Type: application/json"], '{"ref":"refs/heads/main"}'),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-http")
os.makedirs(out, exist_ok=True)
for name, (flags, target, headers, body) in SEEDS.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([flags]) + ("\n".join([target] + headers) + "\n\n" + body).encode())
print("wrote %d seeds to %s" % (len(SEEDS), out))
