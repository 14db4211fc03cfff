"""End-to-end tests of the built-in S3 actions (issue 11): a Source/S3 action
reads a .zip object, a Commands build uses it, a Deploy/S3 action uploads the
result; the source poller starts an execution when a new object is uploaded.

Where the buckets live is chosen by one method, S3ActionsTest.make_store():
here s3rver (an independent S3 implementation from npm) reached through
`serve --s3-endpoint`. Objects are put and read with Debian's AWS CLI
(/usr/bin/aws s3 / s3api), as a user would.
"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request
import zipfile

import harness
from harness import action, commands, pipeline, wait_execution, wait_for


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def zip_bytes(files):
    """A zip archive of {name: text}."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in sorted(files.items()):
            z.writestr(name, text)
    return buf.getvalue()


class S3rverStore:
    """Buckets in s3rver, which the server reaches through --s3-endpoint."""

    access_key = "S3RVER"  # s3rver's built-in account.
    secret_key = "S3RVER"

    def __init__(self):
        harness.ensure_s3rver_installed()
        port = free_port()
        self.dir = tempfile.mkdtemp(prefix="pw-s3rver-")
        self.proc = subprocess.Popen(
            ["node", harness.S3RVER_BIN,
             "-d", self.dir, "-a", "127.0.0.1", "-p", str(port), "--silent",
             "--no-vhost-buckets"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = "http://127.0.0.1:%d" % port

        def up():
            try:
                urllib.request.urlopen(self.url + "/", timeout=2)
            except urllib.error.HTTPError:
                return True
            except OSError:
                return False
            return True
        wait_for(up, timeout=30, what="s3rver to listen")

    def server_args(self):
        return ["--s3-endpoint", self.url, "--s3-region", "us-east-1"]

    def server_env(self):
        """Environment the server needs to reach the store."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def endpoint(self, server):
        """The URL users' `aws s3` calls go to."""
        return self.url

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        shutil.rmtree(self.dir, ignore_errors=True)


class S3ActionsTest(harness.ServerTestCase):
    deploy_root = False

    def make_store(self):
        """Where the S3 actions' buckets live (the one place that decides)."""
        return S3rverStore()

    def setUp(self):
        self.store = self.make_store()
        self.server_args = tuple(self.store.server_args()) + ("--source-poll-interval", "1")
        self.saved_env = {k: os.environ.get(k) for k in self.store.server_env()}
        os.environ.update(self.store.server_env())  # The server inherits the environment.
        try:
            super().setUp()
        finally:
            for k, v in self.saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def tearDown(self):
        super().tearDown()
        self.store.close()

    # --- The user's side: Debian's AWS CLI against the store ------------------

    def s3(self, *args, binary=False):
        env = dict(os.environ)
        env.update({"AWS_ACCESS_KEY_ID": self.store.access_key,
                    "AWS_SECRET_ACCESS_KEY": self.store.secret_key,
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": ""})
        p = subprocess.run([harness.AWS, "--endpoint-url", self.store.endpoint(self.server)]
                           + list(args), capture_output=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 0, "aws %s: %s" % (" ".join(args), p.stderr.decode()))
        return p.stdout if binary else p.stdout.decode()

    def upload(self, bucket, key, data, metadata=None):
        path = os.path.join(self.tmp, "upload.bin")
        with open(path, "wb") as f:
            f.write(data)
        args = ["s3", "cp", path, "s3://%s/%s" % (bucket, key)]
        if metadata:
            args += ["--metadata", ",".join("%s=%s" % kv for kv in metadata.items())]
        self.s3(*args)

    def download(self, bucket, key):
        return self.s3("s3", "cp", "s3://%s/%s" % (bucket, key), "-", binary=True)

    # --- Pipelines --------------------------------------------------------------

    def s3_pipeline(self, name, deploys=()):
        src = action("Src", "Source", "S3", config={"S3Bucket": "src", "S3ObjectKey": "app.zip"},
                     outputs=["SourceOut"])
        src["namespace"] = "SourceVariables"
        build = commands("Build", ["grep -q hello app.txt",
                                   "mkdir -p out && cp app.txt index.html out/",
                                   "echo built > out/build.txt"],
                         inputs=["SourceOut"])
        build["outputArtifacts"] = [{"name": "Site", "files": ["out/**"]}]
        stages = [("Source", [src]), ("Build", [build])]
        if deploys:
            stages.append(("Deploy", list(deploys)))
        return pipeline(name, stages)

    def executions(self, name):
        return self.server.ok("ListPipelineExecutions",
                              {"pipelineName": name})["pipelineExecutionSummaries"]

    def only_execution(self, name):
        summaries = wait_for(lambda: self.executions(name), what="the first execution")
        self.assertEqual(len(summaries), 1, summaries)
        return summaries[0]["pipelineExecutionId"]

    # --- Tests --------------------------------------------------------------------

    def test_s3_source_build_and_s3_deploy(self):
        self.s3("s3", "mb", "s3://src")
        self.s3("s3", "mb", "s3://site")
        app = zip_bytes({"app.txt": "hello from s3\n", "index.html": "<h1>site</h1>\n"})
        self.upload("src", "app.zip", app,
                    metadata={"codepipeline-artifact-revision-summary": "first release"})
        extract = action("Site", "Deploy", "S3", inputs=["Site"],
                         config={"BucketName": "site", "Extract": "true", "ObjectKey": "web",
                                 "CacheControl": "max-age=60", "CannedACL": "public-read"})
        archive = action("Archive", "Deploy", "S3", inputs=["SourceOut"],
                         config={"BucketName": "site", "Extract": "false",
                                 "ObjectKey": "releases/app.zip",
                                 "KMSEncryptionKeyARN": "arn:aws:kms:us-east-1:123456789012:key/x"})
        self.server.ok("CreatePipeline", {"pipeline": self.s3_pipeline("s3app", [extract, archive])})
        eid = self.only_execution("s3app")
        self.assertEqual(wait_execution(self.server, "s3app", eid), "Succeeded")

        # The deployed objects are readable, with the type and cache control set.
        self.assertEqual(self.download("site", "web/out/index.html"), b"<h1>site</h1>\n")
        self.assertEqual(self.download("site", "web/out/build.txt"), b"built\n")
        head = json.loads(self.s3("s3api", "head-object", "--bucket", "site",
                                  "--key", "web/out/index.html"))
        self.assertEqual(head["ContentType"], "text/html")
        self.assertEqual(head["CacheControl"], "max-age=60")
        self.assertEqual(self.download("site", "releases/app.zip"), app)

        # The revision: s3rver keeps no versions, so the ETag (the MD5 of the object).
        etag = hashlib.md5(app).hexdigest()
        pe = self.server.ok("GetPipelineExecution", {"pipelineName": "s3app",
                                                     "pipelineExecutionId": eid})["pipelineExecution"]
        rev = pe["artifactRevisions"][0]
        self.assertEqual(rev["name"], "SourceOut")
        self.assertEqual(rev["revisionId"], etag)
        self.assertEqual(rev["revisionSummary"], "first release")
        self.assertTrue(rev["revisionUrl"].endswith("/src/app.zip"), rev)
        details = self.server.ok("ListActionExecutions", {
            "pipelineName": "s3app", "filter": {"pipelineExecutionId": eid}})["actionExecutionDetails"]
        by_name = {d["actionName"]: d for d in details}
        self.assertEqual(by_name["Src"]["output"]["outputVariables"]["ETag"], etag)
        self.assertIn("s3://site/web/", by_name["Site"]["output"]["executionResult"]
                      ["externalExecutionSummary"])
        self.assertIn("KMSEncryptionKeyARN ignored", by_name["Archive"]["output"]
                      ["executionResult"]["externalExecutionSummary"])

    def test_a_new_upload_starts_one_execution_by_polling(self):
        self.s3("s3", "mb", "s3://src")
        uploads = [zip_bytes({"app.txt": "hello %d\n" % n, "index.html": "%d\n" % n})
                   for n in range(3)]
        self.upload("src", "app.zip", uploads[0])
        self.server.ok("CreatePipeline", {"pipeline": self.s3_pipeline("polled")})
        first = self.only_execution("polled")
        self.assertEqual(wait_execution(self.server, "polled", first), "Succeeded")

        for n in (1, 2):
            self.upload("src", "app.zip", uploads[n])
            summaries = wait_for(
                lambda: (lambda s: s if len(s) > n and s[0]["status"] == "Succeeded" else None)(
                    self.executions("polled")),
                timeout=60, what="execution %d started by the poller" % (n + 1))
            self.assertEqual(summaries[0]["trigger"]["triggerType"], "PollForSourceChanges")

        # One execution per upload, each with its own object (newest first).
        summaries = self.executions("polled")
        self.assertEqual([s["sourceRevisions"][0]["revisionId"] for s in summaries],
                         [hashlib.md5(u).hexdigest() for u in reversed(uploads)])

    def test_an_object_that_is_not_a_zip_fails_the_source_saying_so(self):
        self.s3("s3", "mb", "s3://src")
        self.upload("src", "app.zip", b"just some text, not an archive\n")
        self.server.ok("CreatePipeline", {"pipeline": self.s3_pipeline("notzip")})
        eid = self.only_execution("notzip")
        self.assertEqual(wait_execution(self.server, "notzip", eid), "Failed")
        details = self.server.ok("ListActionExecutions", {
            "pipelineName": "notzip", "filter": {"pipelineExecutionId": eid}})["actionExecutionDetails"]
        src = [d for d in details if d["actionName"] == "Src"][0]
        self.assertEqual(src["status"], "Failed")
        message = src["output"]["executionResult"]["errorDetails"]["message"]
        self.assertIn("s3://src/app.zip", message)
        self.assertIn(".zip archive", message)

    def test_a_missing_object_fails_the_source_naming_it(self):
        self.s3("s3", "mb", "s3://src")
        self.server.ok("CreatePipeline", {"pipeline": self.s3_pipeline("missing")})
        eid = self.only_execution("missing")
        self.assertEqual(wait_execution(self.server, "missing", eid), "Failed")
        state = harness.stage_state(self.server, "missing", "Source")
        message = state["actionStates"][0]["latestExecution"]["errorDetails"]["message"]
        self.assertIn("s3://src/app.zip", message)
        self.assertIn("NoSuchKey", message)


if __name__ == "__main__":
    unittest.main()
