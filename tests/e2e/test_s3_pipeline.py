"""The README's S3 walk-through end to end on one server (examples/s3-pipeline.json),
with nothing but the binary and the AWS CLI: `aws s3 mb` / `aws s3 cp` a zip into the server's own S3 endpoint,
a pipeline S3 source -> Commands build -> S3 deploy succeeds, the deployed
object is readable with `aws s3 cp`, a new upload starts an execution by
polling, and sourceRevisions with an older version id runs that version."""

import json
import os
import subprocess
import unittest
import zipfile

from harness import (AWS, ROOT, ServerTestCase, _env, aws, aws_newest, wait_execution,
                     wait_for)


def s3(server, *args):
    p = subprocess.run([AWS, "--endpoint-url", server.endpoint, "s3"] + list(args),
                       capture_output=True, text=True, env=_env(), timeout=120)
    if p.returncode != 0:
        raise AssertionError("aws s3 %s: %s %s" % (" ".join(args), p.stdout, p.stderr))
    return p.stdout


def s3api(server, *args):
    p = subprocess.run([AWS, "--endpoint-url", server.endpoint, "s3api"] + list(args),
                       capture_output=True, text=True, env=_env(), timeout=120)
    if p.returncode != 0:
        raise AssertionError("aws s3api %s: %s %s" % (" ".join(args), p.stdout, p.stderr))
    return json.loads(p.stdout) if p.stdout.strip() else {}


class S3PipelineTest(ServerTestCase):
    server_args = ("--source-poll-interval", "1")

    def make_zip(self, name, version):
        path = os.path.join(self.tmp, name)
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("app/version.txt", version + "\n")
            z.writestr("index.html", "<h1>%s</h1>\n" % version)
        return path

    def definition(self):
        # The README's example, as a user copies it.
        with open(os.path.join(ROOT, "examples", "s3-pipeline.json")) as f:
            return json.load(f)

    def latest_execution(self):
        out = self.server.ok("ListPipelineExecutions", {"pipelineName": "s3-flow"})
        return out["pipelineExecutionSummaries"]

    def test_s3_source_build_deploy_poll_and_older_version(self):
        s3(self.server, "mb", "s3://my-source")
        s3(self.server, "mb", "s3://my-site")
        s3(self.server, "cp", self.make_zip("v1.zip", "one"), "s3://my-source/app.zip")
        v1 = s3api(self.server, "head-object", "--bucket", "my-source", "--key", "app.zip")["VersionId"]

        created = aws(self.server, "create-pipeline", "--pipeline",
                      "file://" + self.write_json("p.json", self.definition()))
        self.assertEqual(created.code, 0, created.stderr)
        first = wait_for(lambda: self.latest_execution(), what="first execution")[0]
        self.assertEqual(wait_execution(self.server, "s3-flow", first["pipelineExecutionId"]),
                         "Succeeded")
        execution = self.server.ok("GetPipelineExecution", {
            "pipelineName": "s3-flow", "pipelineExecutionId": first["pipelineExecutionId"]})
        revs = execution["pipelineExecution"]["artifactRevisions"]
        self.assertEqual(revs[0]["revisionId"], v1)

        # The deployed object is readable with the AWS CLI and holds the build.
        got = os.path.join(self.tmp, "got.zip")
        s3(self.server, "cp", "s3://my-site/release/build.zip", got)
        with zipfile.ZipFile(got) as z:
            text = z.read("built.txt").decode()
        self.assertIn("one", text)
        self.assertIn("built-from-" + v1, text)

        # A new upload starts an execution through polling, once.
        s3(self.server, "cp", self.make_zip("v2.zip", "two"), "s3://my-source/app.zip")
        second = wait_for(lambda: (lambda s: s if len(s) >= 2 else None)(self.latest_execution()),
                          timeout=30, what="an execution started by polling")[0]
        self.assertEqual(wait_execution(self.server, "s3-flow", second["pipelineExecutionId"]),
                         "Succeeded")
        self.assertEqual(second["trigger"]["triggerType"], "PollForSourceChanges")
        s3(self.server, "cp", "s3://my-site/release/build.zip", got)
        with zipfile.ZipFile(got) as z:
            self.assertIn("two", z.read("built.txt").decode())

        # sourceRevisions with the older version id runs that version.
        # (Debian's awscli 2.9 predates sourceRevisions: it runs with the newest model.)
        started = aws_newest(self.server, "start-pipeline-execution", "--name", "s3-flow",
                             "--source-revisions",
                             "actionName=Source,revisionType=S3_OBJECT_VERSION_ID,revisionValue=" + v1)
        self.assertEqual(started.code, 0, started.stderr)
        third = started.json()["pipelineExecutionId"]
        self.assertEqual(wait_execution(self.server, "s3-flow", third), "Succeeded")
        s3(self.server, "cp", "s3://my-site/release/build.zip", got)
        with zipfile.ZipFile(got) as z:
            self.assertIn("one", z.read("built.txt").decode())
        self.assertEqual(len(self.latest_execution()), 3, "no extra execution from polling")


if __name__ == "__main__":
    unittest.main()
