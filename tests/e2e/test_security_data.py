"""Data never becomes code: variable values reach commands only as data, NUL
bytes are refused, Deploy/Directory writes only below --deploy-root and never
touches the data directory, and job uploads are checked zips within the
artifact limits."""

import io
import os
import time
import unittest
import zipfile

import harness
from harness import action, commands, pipeline, stage_state, wait_execution

PAYLOAD_SUBST = "$(touch M)"
PAYLOAD_WORKER = "1.0; touch M"


def latest(server, name, stage, act):
    for a in stage_state(server, name, stage)["actionStates"]:
        if a["actionName"] == act:
            return a.get("latestExecution", {})
    raise AssertionError("no action %s" % act)


def echo_commands(ref, out):
    """Commands writing the value of `ref` in three quoting contexts, then listing the directory."""
    return ["printf '%%s' %s > %s/unquoted" % (ref, out),
            "printf '%%s' \"%s\" > %s/double" % (ref, out),
            "printf '%%s' '%s' > %s/single" % (ref, out),
            "ls -A > %s/listing" % out]


class VariablesAreData(harness.ServerTestCase):
    server_args = ("--no-start-on-create",)

    def out_dir(self, name):
        d = os.path.join(self.tmp, name)
        os.makedirs(d)
        return d

    def assert_intact(self, out, value):
        for name in ("unquoted", "double", "single"):
            with open(os.path.join(out, name)) as f:
                self.assertEqual(f.read(), value, name)
        with open(os.path.join(out, "listing")) as f:
            self.assertNotIn("M", f.read().split(), "the value ran as a command")

    def test_start_variable_with_command_substitution_stays_data(self):
        config_out, list_out = self.out_dir("config"), self.out_dir("list")
        by_config = commands("ByConfig", echo_commands("#{variables.x}", config_out))
        by_list = action("ByList", "Build", "Commands",
                         commands=echo_commands("#{variables.x}", list_out))
        self.server.ok("CreatePipeline", {"pipeline": pipeline("Subst", [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.out_dir("src")},
                               outputs=["Src"])]),
            ("Build", [by_config, by_list])],
            pipelineType="V2", variables=[{"name": "x", "defaultValue": "plain"}])})
        eid = self.server.ok("StartPipelineExecution", {
            "name": "Subst", "variables": [{"name": "x", "value": PAYLOAD_SUBST}]})["pipelineExecutionId"]
        self.assertEqual(wait_execution(self.server, "Subst", eid), "Succeeded")
        self.assert_intact(config_out, PAYLOAD_SUBST)
        self.assert_intact(list_out, PAYLOAD_SUBST)
        # Users still see the resolved value.
        details = self.server.ok("ListActionExecutions", {
            "pipelineName": "Subst", "filter": {"pipelineExecutionId": eid}})["actionExecutionDetails"]
        resolved = [d for d in details if d["actionName"] == "ByConfig"][0]["input"]["resolvedConfiguration"]
        self.assertIn("printf '%s' " + PAYLOAD_SUBST, resolved["Commands"])

    def test_job_worker_output_variable_stays_data(self):
        self.server.ok("CreateCustomActionType", {
            "category": "Build", "provider": "Versioner", "version": "1",
            "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
            "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1}})
        versioner = {"name": "Version", "namespace": "NS", "runOrder": 1,
                     "actionTypeId": {"category": "Build", "owner": "Custom",
                                      "provider": "Versioner", "version": "1"}}
        out = self.out_dir("out")
        use = commands("Use", echo_commands("#{NS.VERSION}", out), run_order=2)
        self.server.ok("CreatePipeline", {"pipeline": pipeline("Remote", [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.out_dir("src")},
                               outputs=["Src"])]),
            ("Build", [versioner, use])])})
        eid = self.server.ok("StartPipelineExecution", {"name": "Remote"})["pipelineExecutionId"]
        type_id = versioner["actionTypeId"]
        deadline = time.monotonic() + 30
        jobs = []
        while not jobs and time.monotonic() < deadline:
            jobs = self.server.ok("PollForJobs", {"actionTypeId": type_id, "maxBatchSize": 1})["jobs"]
        self.assertTrue(jobs, "no job for the custom action")
        job = jobs[0]
        self.server.ok("AcknowledgeJob", {"jobId": job["id"], "nonce": job["nonce"]})
        self.server.ok("PutJobSuccessResult", {"jobId": job["id"],
                                               "outputVariables": {"VERSION": PAYLOAD_WORKER}})
        self.assertEqual(wait_execution(self.server, "Remote", eid), "Succeeded")
        self.assert_intact(out, PAYLOAD_WORKER)

    def test_nul_byte_in_commands_is_refused(self):
        bad = commands("Nul", ["true\u0000touch M", "echo after"])
        p = pipeline("Nul", [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.tmp},
                               outputs=["Src"])]),
            ("Build", [bad])])
        status, err = self.server.call("CreatePipeline", {"pipeline": p})
        self.assertEqual(status, 400, err)
        self.assertIn(err["__type"], ("InvalidActionDeclarationException", "ValidationException"))
        self.assertIn("NUL", err["message"].upper())
        self.assertIn("Commands", err["message"])
        bad.pop("configuration")
        bad["commands"] = ["true\u0000touch M"]
        status, err = self.server.call("CreatePipeline", {"pipeline": p})
        self.assertEqual(status, 400, err)
        self.assertIn("commands", err["message"])
        # UpdatePipeline too.
        bad["commands"] = ["true"]
        self.server.ok("CreatePipeline", {"pipeline": p})
        bad["commands"] = ["true\u0000touch M"]
        status, err = self.server.call("UpdatePipeline", {"pipeline": p})
        self.assertEqual(status, 400, err)

    def test_nul_byte_in_a_variable_value_fails_the_action(self):
        out = self.out_dir("out")
        self.server.ok("CreatePipeline", {"pipeline": pipeline("NulVar", [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.out_dir("src")},
                               outputs=["Src"])]),
            ("Build", [commands("Use", ["echo #{variables.x} > %s/ran" % out])])],
            pipelineType="V2", variables=[{"name": "x", "defaultValue": "plain"}])})
        status, body = self.server.call("StartPipelineExecution", {
            "name": "NulVar", "variables": [{"name": "x", "value": "a\u0000b"}]})
        if status == 400:  # Refused up front is as good as failing the action.
            self.assertEqual(body["__type"], "ValidationException")
            return
        self.assertEqual(status, 200, body)
        eid = body["pipelineExecutionId"]
        self.assertEqual(wait_execution(self.server, "NulVar", eid), "Failed")
        run = latest(self.server, "NulVar", "Build", "Use")
        self.assertEqual(run["errorDetails"]["code"], "ConfigurationError")
        self.assertIn("NUL", run["errorDetails"]["message"])
        self.assertFalse(os.path.exists(os.path.join(out, "ran")))


class DeployPaths(harness.ServerTestCase):
    """The server runs with --deploy-root self.tmp (harness)."""
    server_args = ("--no-start-on-create",)

    def deploy_pipeline(self, name, path, source=None):
        src = source or os.path.join(self.tmp, "src")
        if source is None:
            os.makedirs(src, exist_ok=True)
            with open(os.path.join(src, "index.html"), "w") as f:
                f.write("v1")
        return pipeline(name, [
            ("Source", [action("S", "Source", "Directory", config={"Path": src}, outputs=["A"])]),
            ("Deploy", [action("D", "Deploy", "Directory", config={"Path": path}, inputs=["A"])])],
            pipelineType="V2", variables=[{"name": "target", "defaultValue": "unused"}])

    def refused(self, name, path, source=None, expect=""):
        status, err = self.server.call("CreatePipeline",
                                       {"pipeline": self.deploy_pipeline(name, path, source)})
        self.assertEqual((status, err.get("__type")), (400, "InvalidActionDeclarationException"),
                         err)
        self.assertIn(expect, err["message"])

    def test_targets_are_checked_at_create(self):
        data = self.server.data_dir
        self.refused("D1", data, expect="data directory")
        self.refused("D2", os.path.join(data, "artifacts"), expect="data directory")
        self.refused("D3", "relative/site", expect="absolute")
        self.refused("D4", "/var/tmp/pw-elsewhere", expect="--deploy-root")
        self.refused("D5", os.path.join(self.tmp, "www", "..", "..", "x"), expect="--deploy-root")
        self.refused("D6", os.path.join(self.tmp, "site"), source=data, expect="data directory")
        self.refused("D7", os.path.join(self.tmp, "site"), source="relative/src", expect="absolute")
        self.assertTrue(os.path.exists(os.path.join(data, "pipewright.db")))

    def test_a_target_from_a_variable_is_checked_when_the_action_runs(self):
        p = self.deploy_pipeline("Var", "#{variables.target}")
        self.server.ok("CreatePipeline", {"pipeline": p})
        eid = self.server.ok("StartPipelineExecution", {
            "name": "Var", "variables": [{"name": "target", "value": self.server.data_dir}]
        })["pipelineExecutionId"]
        self.assertEqual(wait_execution(self.server, "Var", eid), "Failed")
        run = latest(self.server, "Var", "Deploy", "D")
        self.assertEqual(run["errorDetails"]["code"], "ConfigurationError")
        self.assertIn("data directory", run["errorDetails"]["message"])
        self.assertTrue(os.path.exists(os.path.join(self.server.data_dir, "pipewright.db")))
        # The server still works, and a target below the root deploys.
        site = os.path.join(self.tmp, "site")
        eid = self.server.ok("StartPipelineExecution", {
            "name": "Var", "variables": [{"name": "target", "value": site}]})["pipelineExecutionId"]
        self.assertEqual(wait_execution(self.server, "Var", eid), "Succeeded")
        with open(os.path.join(site, "index.html")) as f:
            self.assertEqual(f.read(), "v1")


class DeployWithoutRoot(harness.ServerTestCase):
    server_args = ("--no-start-on-create",)
    deploy_root = False

    def test_deploy_directory_is_refused_naming_the_flag(self):
        p = DeployPaths.deploy_pipeline(self, "NoRoot", os.path.join(self.tmp, "site"))
        status, err = self.server.call("CreatePipeline", {"pipeline": p})
        self.assertEqual((status, err.get("__type")), (400, "InvalidActionDeclarationException"),
                         err)
        self.assertIn("--deploy-root", err["message"])


def zip_bytes(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            z.writestr(name, content)
    return buf.getvalue()


class Uploads(harness.ServerTestCase):
    server_args = ("--no-start-on-create", "--max-unpacked-bytes", str(1 << 20))

    def test_empty_non_zip_and_bomb_uploads_are_refused(self):
        import boto3
        from botocore.config import Config
        from botocore.exceptions import ClientError

        self.server.ok("CreateCustomActionType", {
            "category": "Build", "provider": "Uploader", "version": "1",
            "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
            "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1}})
        type_id = {"category": "Build", "owner": "Custom", "provider": "Uploader", "version": "1"}
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        self.server.ok("CreatePipeline", {"pipeline": pipeline("Up", [
            ("Source", [action("S", "Source", "Directory", config={"Path": src}, outputs=["A"])]),
            ("Build", [{"name": "U", "actionTypeId": type_id, "outputArtifacts": [{"name": "Out"}]}])])})
        eid = self.server.ok("StartPipelineExecution", {"name": "Up"})["pipelineExecutionId"]
        deadline = time.monotonic() + 30
        jobs = []
        while not jobs and time.monotonic() < deadline:
            jobs = self.server.ok("PollForJobs", {"actionTypeId": type_id, "maxBatchSize": 1})["jobs"]
        self.assertTrue(jobs)
        job = jobs[0]
        self.server.ok("AcknowledgeJob", {"jobId": job["id"], "nonce": job["nonce"]})
        creds = job["data"]["artifactCredentials"]
        s3 = boto3.client("s3", endpoint_url=self.server.endpoint, region_name="us-east-1",
                          aws_access_key_id=creds["accessKeyId"],
                          aws_secret_access_key=creds["secretAccessKey"],
                          aws_session_token=creds["sessionToken"],
                          config=Config(s3={"addressing_style": "path"},
                                        retries={"max_attempts": 1}))
        dst = job["data"]["outputArtifacts"][0]["location"]["s3Location"]

        def put(body):
            try:
                s3.put_object(Bucket=dst["bucketName"], Key=dst["objectKey"], Body=body)
                return 200, ""
            except ClientError as e:
                return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Message"]

        status, message = put(b"")
        self.assertEqual(status, 400)
        self.assertIn("empty", message)
        self.assertEqual(put(b"not a zip")[0], 400)
        bomb = zip_bytes({"zeros": b"\0" * (8 << 20)})
        self.assertLess(len(bomb), 64 << 10)
        status, message = put(bomb)
        self.assertEqual(status, 400)
        self.assertIn("--max-unpacked-bytes", message)
        # A good zip is still accepted.
        self.assertEqual(put(zip_bytes({"ok.txt": "fine"}))[0], 200)
        self.server.ok("PutJobSuccessResult", {"jobId": job["id"]})
        self.assertEqual(wait_execution(self.server, "Up", eid), "Succeeded")


if __name__ == "__main__":
    unittest.main()
