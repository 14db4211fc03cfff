"""The server's own S3 buckets, end to end: Debian's AWS CLI (/usr/bin/aws, 2.9) and the
newest-model CLI on PATH against `pipewright serve` (aws s3 mb/cp/ls/rm, s3api versions),
multipart uploads and ranged downloads of a 20 MB file, aws-chunked bodies over TLS,
SigV4 with --auth-keys-file and per-key policies, and job credentials kept out of
ordinary buckets."""

import base64
import hashlib
import http.client
import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest
import urllib.parse
import zlib

import boto3
import botocore.config
import botocore.exceptions

import harness
from harness import action, pipeline, wait_for

def newest_aws():
    """An `aws` on PATH that is not Debian's (e.g. pip's, with the newest models), or None.
    Compared by real path: on a merged-/usr system /bin/aws *is* /usr/bin/aws, and a plain
    bookworm PATH holds /bin (Debian's 2.9 sends no checksums and no aws-chunked bodies)."""
    debian = os.path.realpath("/usr/bin/aws")
    for d in os.environ.get("PATH", "").split(os.pathsep):
        cli = os.path.join(d, "aws") if d else ""
        if cli and os.access(cli, os.X_OK) and os.path.realpath(cli) != debian:
            return cli
    return None


NEWEST_AWS = newest_aws()


def run_cli(cli, server, *args, env=None, extra=()):
    e = harness._env()
    e.update(env or {})
    p = subprocess.run([cli, "--endpoint-url", server.endpoint] + list(extra) + list(args),
                       capture_output=True, text=True, env=e, timeout=300)
    return harness.CliResult(p)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def read(path):
    with open(path, "rb") as f:
        return f.read()


def client(server, key="AKIDPIPEWRIGHT", secret="pipewright-secret", token=None, verify=True):
    return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        aws_session_token=token, verify=verify,
                        config=botocore.config.Config(s3={"addressing_style": "path"},
                                                      retries={"max_attempts": 1}))


def error_of(fn):
    try:
        fn()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("the call did not fail")


class S3EndpointTest(harness.ServerTestCase):
    deploy_root = False

    def cli(self, *args, cli=harness.AWS, **kw):
        return run_cli(cli, self.server, *args, **kw)

    def ok(self, *args, **kw):
        r = self.cli(*args, **kw)
        self.assertEqual(r.code, 0, "aws %s: %s %s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def test_debian_cli_buckets_objects_versions_multipart_and_removal(self):
        r = self.ok("s3", "mb", "s3://my-source")
        self.assertIn("make_bucket: my-source", r.stdout)
        again = self.cli("s3", "mb", "s3://my-source")
        self.assertNotEqual(again.code, 0)
        self.assertIn("BucketAlreadyOwnedByYou", again.stderr)
        bad = self.cli("s3", "mb", "s3://Bad_Name")
        self.assertNotEqual(bad.code, 0)

        small = write(os.path.join(self.tmp, "app.zip"), b"version one\n")
        big_data = os.urandom(20 * 1024 * 1024 + 12345)
        big = write(os.path.join(self.tmp, "big.bin"), big_data)
        self.ok("s3", "cp", small, "s3://my-source/app.zip")
        self.ok("s3", "cp", big, "s3://my-source/dir/big.bin")
        self.ok("s3", "cp", small, "s3://my-source/dir/sub/deep.txt")

        # Down again, bytes compared; the 20 MB file comes back in ranged GETs.
        self.ok("s3", "cp", "s3://my-source/dir/big.bin", os.path.join(self.tmp, "big.out"))
        self.assertEqual(hashlib.sha256(read(os.path.join(self.tmp, "big.out"))).hexdigest(),
                         hashlib.sha256(big_data).hexdigest())
        self.ok("s3", "cp", "s3://my-source/app.zip", os.path.join(self.tmp, "app.out"))
        self.assertEqual(read(os.path.join(self.tmp, "app.out")), b"version one\n")

        head = json.loads(self.ok("s3api", "head-object", "--bucket", "my-source",
                                  "--key", "app.zip").stdout)
        self.assertEqual(head["ETag"], '"%s"' % hashlib.md5(b"version one\n").hexdigest())
        self.assertEqual(head["ContentLength"], 12)
        self.assertTrue(head["VersionId"])
        big_head = json.loads(self.ok("s3api", "head-object", "--bucket", "my-source",
                                      "--key", "dir/big.bin").stdout)
        self.assertRegex(big_head["ETag"], r'^"[0-9a-f]{32}-3"$')  # Three 8 MB parts.

        buckets = self.ok("s3", "ls").stdout
        self.assertIn("my-source", buckets)
        top = self.ok("s3", "ls", "s3://my-source/").stdout
        self.assertIn("PRE dir/", top)
        self.assertIn("app.zip", top)
        self.assertNotIn("big.bin", top)
        under = self.ok("s3", "ls", "s3://my-source/dir/").stdout
        self.assertIn(str(len(big_data)) + " big.bin", under)
        self.assertIn("PRE sub/", under)
        recursive = self.ok("s3", "ls", "--recursive", "s3://my-source/").stdout
        self.assertIn("dir/sub/deep.txt", recursive)

        # A second version; the first stays readable by its version id.
        write(small, b"version two, longer\n")
        self.ok("s3", "cp", small, "s3://my-source/app.zip")
        versions = json.loads(self.ok("s3api", "list-object-versions", "--bucket", "my-source",
                                      "--prefix", "app.zip").stdout)["Versions"]
        self.assertEqual(len(versions), 2)
        self.assertTrue(versions[0]["IsLatest"])
        self.assertFalse(versions[1]["IsLatest"])
        self.assertEqual(versions[0]["Size"], 20)
        old = os.path.join(self.tmp, "old.out")
        got = json.loads(self.ok("s3api", "get-object", "--bucket", "my-source", "--key",
                                 "app.zip", "--version-id", versions[1]["VersionId"], old).stdout)
        self.assertEqual(got["VersionId"], versions[1]["VersionId"])
        self.assertEqual(read(old), b"version one\n")
        missing = self.cli("s3api", "get-object", "--bucket", "my-source", "--key", "nope", old)
        self.assertIn("NoSuchKey", missing.stderr)

        # rm leaves a delete marker; rm --recursive empties the bucket; rb removes it.
        self.ok("s3", "rm", "s3://my-source/app.zip")
        self.assertNotIn("app.zip", self.ok("s3", "ls", "s3://my-source/").stdout)
        listing = json.loads(self.ok("s3api", "list-object-versions", "--bucket", "my-source",
                                     "--prefix", "app.zip").stdout)
        self.assertEqual(len(listing["DeleteMarkers"]), 1)
        self.assertTrue(listing["DeleteMarkers"][0]["IsLatest"])
        self.assertEqual(len(listing["Versions"]), 2)
        r = self.ok("s3", "rm", "--recursive", "s3://my-source/")
        self.assertIn("delete: s3://my-source/dir/big.bin", r.stdout)
        self.assertEqual(self.ok("s3", "ls", "--recursive", "s3://my-source/").stdout.strip(), "")
        self.ok("s3", "rb", "s3://my-source")
        self.assertNotIn("my-source", self.ok("s3", "ls").stdout)

    @unittest.skipUnless(NEWEST_AWS, "no newest-model aws on PATH")
    def test_newest_cli_basics_with_checksums(self):
        self.ok("s3", "mb", "s3://newest", cli=NEWEST_AWS)
        data = os.urandom(9 * 1024 * 1024)
        src = write(os.path.join(self.tmp, "nine.bin"), data)
        self.ok("s3", "cp", src, "s3://newest/nine.bin", cli=NEWEST_AWS)
        small = write(os.path.join(self.tmp, "s.txt"), b"hello world\n")
        self.ok("s3", "cp", small, "s3://newest/s.txt", cli=NEWEST_AWS)
        out = os.path.join(self.tmp, "nine.out")
        self.ok("s3", "cp", "s3://newest/nine.bin", out, cli=NEWEST_AWS)
        self.assertEqual(read(out), data)
        ls = self.ok("s3", "ls", "s3://newest/", cli=NEWEST_AWS).stdout
        self.assertIn("nine.bin", ls)
        # The CRC32 the CLI sent is kept and returned when asked for.
        got = json.loads(self.ok("s3api", "get-object", "--bucket", "newest", "--key", "s.txt",
                                 "--checksum-mode", "ENABLED", os.path.join(self.tmp, "s.out"),
                                 cli=NEWEST_AWS).stdout)
        self.assertEqual(got.get("ChecksumCRC32"), "rwg7LQ==")
        self.ok("s3", "rm", "--recursive", "s3://newest/", cli=NEWEST_AWS)
        self.assertEqual(self.ok("s3", "ls", "s3://newest/", cli=NEWEST_AWS).stdout.strip(), "")

    def test_a_wrong_checksum_or_md5_is_refused(self):
        s3 = client(self.server)
        s3.create_bucket(Bucket="sums")
        code, status = error_of(lambda: s3.put_object(Bucket="sums", Key="k", Body=b"abc",
                                                       ContentMD5="AAAAAAAAAAAAAAAAAAAAAA=="))
        self.assertEqual((code, status), ("BadDigest", 400))
        self.assertEqual(error_of(lambda: s3.get_object(Bucket="sums", Key="k")),
                         ("NoSuchKey", 404))
        self.assertEqual(error_of(lambda: s3.get_object(Bucket="nobucket", Key="k")),
                         ("NoSuchBucket", 404))
        put = s3.put_object(Bucket="sums", Key="k", Body=b"abc")
        got = s3.get_object(Bucket="sums", Key="k", Range="bytes=1-1")
        self.assertEqual(got["ResponseMetadata"]["HTTPStatusCode"], 206)
        self.assertEqual(got["Body"].read(), b"b")
        self.assertEqual(got["VersionId"], put["VersionId"])
        self.assertEqual(error_of(lambda: s3.delete_bucket(Bucket="sums")),
                         ("BucketNotEmpty", 409))

    # Found by fuzz/http_fuzzer: a metadata header holding bytes that are not UTF-8 made
    # PutObject throw while storing it, a 500. Now: 400 InvalidArgument, nothing stored.
    def test_headers_that_are_not_utf8_are_refused_and_nothing_is_stored(self):
        s3 = client(self.server)
        s3.create_bucket(Bucket="ascii")
        s3.put_object(Bucket="ascii", Key="src", Body=b"abc")
        u = urllib.parse.urlparse(self.server.endpoint)
        cases = [("PUT", "/ascii/k", {"x-amz-meta-a": b"\xd9\xd9"}, b"abc"),
                 ("PUT", "/ascii/k", {"Content-Type": b"text/\xff"}, b"abc"),
                 ("PUT", "/ascii/k", {"x-amz-meta-b": b"caf\xe9"}, b"abc"),
                 ("PUT", "/ascii/k", {"x-amz-meta-c": b"\xed\xa0\x80"}, b"abc"),
                 ("PUT", "/ascii/k", {"x-amz-copy-source": b"/ascii/src", "x-amz-acl": b"\xd9"},
                  b""),
                 ("POST", "/ascii/k?uploads", {"x-amz-meta-a": b"\xd9"}, b""),
                 # A key that is not UTF-8 was stored, then listed as raw bytes in XML.
                 ("PUT", "/ascii/%FF%FE", {}, b"abc")]
        for method, path, headers, body in cases:
            with self.subTest(method=method, headers=headers):
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
                c.request(method, path, body=body, headers=dict(headers, **{
                    "x-amz-content-sha256": hashlib.sha256(body).hexdigest()}))
                r = c.getresponse()
                text = r.read().decode()
                c.close()
                self.assertEqual(r.status, 400, text)
                self.assertIn("<Code>InvalidArgument</Code>", text)
                self.assertIn("UTF-8", text)
        self.assertEqual(error_of(lambda: s3.get_object(Bucket="ascii", Key="k")),
                         ("NoSuchKey", 404))
        self.assertEqual([o["Key"] for o in s3.list_objects_v2(Bucket="ascii")["Contents"]],
                         ["src"])
        s3.put_object(Bucket="ascii", Key="k", Body=b"abc", Metadata={"a": "plain text"})
        self.assertEqual(s3.head_object(Bucket="ascii", Key="k")["Metadata"], {"a": "plain text"})
        # UTF-8 is kept as it came (it was before).
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        c.request("PUT", "/ascii/u", body=b"x", headers={
            "x-amz-meta-b": "caf\u00e9".encode(),
            "x-amz-content-sha256": hashlib.sha256(b"x").hexdigest()})
        self.assertEqual(c.getresponse().status, 200)
        c.close()

    # A listing pages through the store's key index and skips a delimiter's groups by seeks
    # (before, every page read the whole prefix). Real clients follow the continuation
    # tokens and markers over 2,400 keys: every key once, in order, groups once.
    def test_real_clients_page_through_a_large_bucket(self):
        s3 = client(self.server)
        s3.create_bucket(Bucket="big")
        keys = sorted(["d%d/k%04d" % (i % 4, i) for i in range(2400)] + ["top.txt", "\u00e9t\u00e9"])
        u = urllib.parse.urlparse(self.server.endpoint)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        for k in keys:
            c.request("PUT", "/big/" + urllib.parse.quote(k), body=b"x",
                      headers={"x-amz-content-sha256": hashlib.sha256(b"x").hexdigest()})
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        c.close()
        # A deleted key is not listed (its delete marker is, as a version).
        s3.delete_object(Bucket="big", Key="d2/k0002")
        live = [k for k in keys if k != "d2/k0002"]
        # Debian's CLI: `aws s3 ls --recursive` pages by 1,000 with continuation tokens.
        lines = self.ok("s3", "ls", "--recursive", "s3://big/").stdout.splitlines()
        self.assertEqual([ln.split(None, 3)[3] for ln in lines], live)
        top = self.ok("s3", "ls", "s3://big/").stdout
        self.assertEqual(sorted(ln.split()[-1] for ln in top.splitlines()),
                         sorted(["d0/", "d1/", "d2/", "d3/", "top.txt", "\u00e9t\u00e9"]))
        # Small pages, with a delimiter and a prefix, V2 and V1.
        got = json.loads(self.ok("s3api", "list-objects-v2", "--bucket", "big", "--prefix", "d1/",
                                 "--page-size", "97").stdout)
        self.assertEqual([o["Key"] for o in got["Contents"]], [k for k in live if k[:3] == "d1/"])
        got = json.loads(self.ok("s3api", "list-objects", "--bucket", "big", "--delimiter", "/",
                                 "--page-size", "2").stdout)
        self.assertEqual([p["Prefix"] for p in got["CommonPrefixes"]], ["d0/", "d1/", "d2/", "d3/"])
        self.assertEqual([o["Key"] for o in got["Contents"]], ["top.txt", "\u00e9t\u00e9"])
        got = json.loads(self.ok("s3api", "list-objects-v2", "--bucket", "big",
                                 "--start-after", "d3/k2398", "--max-items", "3").stdout)
        self.assertEqual([o["Key"] for o in got["Contents"]], ["d3/k2399", "top.txt", "\u00e9t\u00e9"])
        # Versions pages of 250 with key and version markers: the marker is listed first.
        got = json.loads(self.ok("s3api", "list-object-versions", "--bucket", "big", "--prefix",
                                 "d2/", "--page-size", "250").stdout)
        self.assertEqual([v["Key"] for v in got["Versions"]], [k for k in keys if k[:3] == "d2/"])
        self.assertEqual([m["Key"] for m in got["DeleteMarkers"]], ["d2/k0002"])
        # boto3's paginator over V2 with a delimiter under a prefix: pages of 5.
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket="big", Prefix="d", Delimiter="/", PaginationConfig={"PageSize": 5})
        prefixes = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
        self.assertEqual(prefixes, ["d0/", "d1/", "d2/", "d3/"])

    def test_a_browser_at_the_root_is_sent_to_the_console(self):
        u = urllib.parse.urlparse(self.server.endpoint)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        c.request("GET", "/")
        r = c.getresponse()
        self.assertEqual((r.status, r.getheader("Location")), (302, "/console/"))
        c.close()


class S3OverTlsTest(unittest.TestCase):
    """Over HTTPS the newest CLI sends aws-chunked bodies with a trailing CRC checksum."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pw-s3tls-")
        self.cert = os.path.join(self.tmp, "cert.pem")
        self.key = os.path.join(self.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", self.key, "-out", self.cert], check=True, capture_output=True)
        self.server = harness.Server(extra_args=("--tls-cert", self.cert, "--tls-key", self.key))

    def tearDown(self):
        self.server.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @unittest.skipUnless(NEWEST_AWS, "no newest-model aws on PATH")
    def test_newest_cli_aws_chunked_upload(self):
        env = {"AWS_CA_BUNDLE": self.cert}
        r = run_cli(NEWEST_AWS, self.server, "s3", "mb", "s3://chunked", env=env)
        self.assertEqual(r.code, 0, r.stderr)
        data = os.urandom(300 * 1024 + 7)
        src = write(os.path.join(self.tmp, "a.bin"), data)
        r = run_cli(NEWEST_AWS, self.server, "s3api", "put-object", "--bucket", "chunked",
                    "--key", "a.bin", "--body", src, "--debug", env=env)
        self.assertEqual(r.code, 0, r.stderr[-2000:])
        # What this test is about: the body went aws-chunked with a trailing checksum.
        self.assertIn("STREAMING-UNSIGNED-PAYLOAD-TRAILER", r.stderr)
        got = json.loads(run_cli(NEWEST_AWS, self.server, "s3api", "get-object", "--bucket",
                                 "chunked", "--key", "a.bin", "--checksum-mode", "ENABLED",
                                 os.path.join(self.tmp, "b.out"), env=env).stdout)
        crc = base64.b64encode(struct.pack(">I", zlib.crc32(data))).decode()
        self.assertEqual(got.get("ChecksumCRC32"), crc)
        out = os.path.join(self.tmp, "a.out")
        r = run_cli(NEWEST_AWS, self.server, "s3", "cp", "s3://chunked/a.bin", out, env=env)
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual(read(out), data)
        head = json.loads(run_cli(NEWEST_AWS, self.server, "s3api", "head-object", "--bucket",
                                  "chunked", "--key", "a.bin", env=env).stdout)
        self.assertEqual(head["ContentLength"], len(data))
        self.assertEqual(head["ETag"], '"%s"' % hashlib.md5(data).hexdigest())


class S3AuthTest(harness.ServerTestCase):
    """With --auth-keys-file: signatures verified, policies evaluated for s3:* actions, job
    credentials confined to their job's objects."""

    deploy_root = False

    def setUp(self):
        self.keys_dir = tempfile.mkdtemp(prefix="pw-e2e-s3auth-")
        with open(os.path.join(self.keys_dir, "reader.json"), "w") as f:
            json.dump({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                 "Resource": ["arn:aws:s3:::shared", "arn:aws:s3:::shared/*"]}]}, f)
        keys = os.path.join(self.keys_dir, "keys")
        with open(keys, "w") as f:
            f.write("AKIDPIPEWRIGHT:pipewright-secret\nAKIDREADER:reader-secret:reader.json\n")
        self.server_args = ("--no-start-on-create", "--poll-wait", "0.2",
                            "--auth-keys-file", keys)
        super().setUp()

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.keys_dir, ignore_errors=True)

    def test_signatures_keys_and_policies(self):
        r = run_cli(harness.AWS, self.server, "s3", "mb", "s3://shared")
        self.assertEqual(r.code, 0, r.stderr)
        src = write(os.path.join(self.tmp, "f.txt"), b"payload")
        r = run_cli(harness.AWS, self.server, "s3", "cp", src, "s3://shared/f.txt")
        self.assertEqual(r.code, 0, r.stderr)

        wrong = run_cli(harness.AWS, self.server, "s3", "ls", "s3://shared/",
                        env={"AWS_SECRET_ACCESS_KEY": "not-the-secret"})
        self.assertNotEqual(wrong.code, 0)
        self.assertIn("SignatureDoesNotMatch", wrong.stderr)
        self.assertEqual(error_of(lambda: client(self.server, secret="nope").list_objects_v2(
            Bucket="shared")), ("SignatureDoesNotMatch", 403))
        self.assertEqual(error_of(lambda: client(self.server, key="AKIDUNKNOWN").list_objects_v2(
            Bucket="shared")), ("InvalidAccessKeyId", 403))

        # Unsigned: refused before anything is read or written.
        u = urllib.parse.urlparse(self.server.endpoint)
        for method, path in (("GET", "/shared/f.txt"), ("PUT", "/shared/g.txt"),
                             ("GET", "/shared")):
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            c.request(method, path, body=b"x" if method == "PUT" else None)
            resp = c.getresponse()
            body = resp.read().decode()
            self.assertEqual(resp.status, 403, body)
            self.assertIn("<Code>AccessDenied</Code>", body)
            c.close()

        # The reader's policy: GetObject and ListBucket on shared, nothing else.
        reader = client(self.server, key="AKIDREADER", secret="reader-secret")
        self.assertEqual(reader.get_object(Bucket="shared", Key="f.txt")["Body"].read(), b"payload")
        self.assertEqual(len(reader.list_objects_v2(Bucket="shared")["Contents"]), 1)
        self.assertEqual(error_of(lambda: reader.put_object(Bucket="shared", Key="x", Body=b"1")),
                         ("AccessDenied", 403))
        self.assertEqual(error_of(lambda: reader.create_bucket(Bucket="mine")),
                         ("AccessDenied", 403))

    def test_job_credentials_open_only_the_jobs_objects(self):
        admin = client(self.server)
        admin.create_bucket(Bucket="private-bucket")
        admin.put_object(Bucket="private-bucket", Key="secret.txt", Body=b"not for jobs")
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        write(os.path.join(src, "hello.txt"), b"hello")
        cp = boto3.client("codepipeline", endpoint_url=self.server.endpoint,
                          region_name="us-east-1", aws_access_key_id="AKIDPIPEWRIGHT",
                          aws_secret_access_key="pipewright-secret")
        cp.create_custom_action_type(**{
            "category": "Build", "provider": "S3Probe", "version": "1",
            "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
            "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1}})
        type_id = {"category": "Build", "owner": "Custom", "provider": "S3Probe", "version": "1"}
        p = pipeline("Probe", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": src},
                               outputs=["SourceOut"])]),
            ("Build", [{"name": "Probe", "actionTypeId": type_id, "runOrder": 1,
                        "inputArtifacts": [{"name": "SourceOut"}]}])])
        cp.create_pipeline(pipeline=p)
        cp.start_pipeline_execution(name="Probe")
        job = wait_for(lambda: cp.poll_for_jobs(actionTypeId=type_id)["jobs"], what="a job")[0]
        creds = job["data"]["artifactCredentials"]
        worker = client(self.server, key=creds["accessKeyId"], secret=creds["secretAccessKey"],
                        token=creds["sessionToken"])
        loc = job["data"]["inputArtifacts"][0]["location"]["s3Location"]
        # The job's own input: still served on the same paths.
        body = worker.get_object(Bucket=loc["bucketName"], Key=loc["objectKey"])["Body"].read()
        self.assertEqual(body[:2], b"PK")
        # Ordinary buckets: closed to job credentials.
        self.assertEqual(error_of(lambda: worker.list_objects_v2(Bucket="private-bucket")),
                         ("AccessDenied", 403))
        self.assertEqual(error_of(lambda: worker.get_object(Bucket="private-bucket",
                                                            Key="secret.txt")),
                         ("AccessDenied", 403))
        self.assertEqual(error_of(lambda: worker.list_buckets()), ("AccessDenied", 403))
        # And a server key does not reach the job's objects through the job's bucket path.
        self.assertEqual(error_of(lambda: admin.get_object(Bucket=loc["bucketName"],
                                                           Key=loc["objectKey"]))[0],
                         "NoSuchBucket")


if __name__ == "__main__":
    unittest.main()
