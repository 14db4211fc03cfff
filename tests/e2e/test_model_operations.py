"""Every operation of the service model answers something other than
UnknownOperationException (the test walks the model's operation list), and the
operations added last work on the engine's real machinery: the ThirdParty job API
with its clientToken check, ListDeployActionExecutionTargets for Deploy/Directory,
UpdateActionType for a custom type, and rule 15's limit on concurrent executions."""

import json
import os
import shutil
import tempfile
import unittest

import harness
from harness import action, commands, pipeline, wait_for

MODEL = os.path.join(harness.ROOT, "spec", "codepipeline-2015-07-09.service-2.json")

def model_operations():
    with open(MODEL) as f:
        return sorted(json.load(f)["operations"])


class EveryOperationTest(harness.ServerTestCase):
    def test_every_model_operation_is_implemented(self):
        ops = model_operations()
        self.assertEqual(len(ops), 44)
        unknown = []
        for op in ops:
            status, out = self.server.call(op, {})
            if isinstance(out, dict) and out.get("__type") == "UnknownOperationException":
                unknown.append(op)
            # An empty body is refused as invalid or names what is missing, never a fault.
            self.assertLess(status, 500, (op, out))
        self.assertEqual(unknown, [])


class ThirdPartyJobsTest(harness.ServerTestCase):
    def test_third_party_job_api_with_client_token(self):
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        self.server.ok("CreatePipeline", {"pipeline": pipeline("partner", [
            ("Source", [action("Code", "Source", "Directory", config={"Path": src},
                               outputs=["Code"])]),
            ("Partner", [dict(action("Partner", "Deploy", "AlexaSkillsKit", inputs=["Code"],
                                     config={"ClientId": "c", "ClientSecret": "s",
                                             "RefreshToken": "r", "SkillId": "skill"}),
                              actionTypeId={"category": "Deploy", "owner": "ThirdParty",
                                            "provider": "AlexaSkillsKit", "version": "1"})])])})
        type_id = {"category": "Deploy", "owner": "ThirdParty", "provider": "AlexaSkillsKit",
                   "version": "1"}
        jobs = wait_for(lambda: self.server.ok("PollForThirdPartyJobs", {
            "actionTypeId": type_id, "maxBatchSize": 1})["jobs"], timeout=30,
            what="a ThirdParty job")
        job_id, client_id = jobs[0]["jobId"], jobs[0]["clientId"]
        self.assertRegex(client_id, r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        details = self.server.ok("GetThirdPartyJobDetails", {"jobId": job_id,
                                                             "clientToken": "token-A"})["jobDetails"]
        self.assertEqual(details["id"], job_id)
        self.assertEqual(details["data"]["actionTypeId"], type_id)
        self.assertNotIn("pipelineArn", details["data"]["pipelineContext"])
        self.assertEqual(details["data"]["pipelineContext"]["pipelineName"], "partner")
        # Another clientToken: refused, everywhere.
        for op, extra in [("GetThirdPartyJobDetails", {}),
                          ("AcknowledgeThirdPartyJob", {"nonce": details["nonce"]}),
                          ("PutThirdPartyJobFailureResult",
                           {"failureDetails": {"type": "JobFailed", "message": "x"}})]:
            status, out = self.server.call(op, dict(extra, jobId=job_id, clientToken="token-B"))
            self.assertEqual((status, out["__type"]), (400, "InvalidClientTokenException"), op)
        status, out = self.server.call("AcknowledgeThirdPartyJob", {
            "jobId": job_id, "nonce": "wrong", "clientToken": "token-A"})
        self.assertEqual(out["__type"], "InvalidNonceException")
        ack = self.server.ok("AcknowledgeThirdPartyJob", {"jobId": job_id, "nonce": details["nonce"],
                                                          "clientToken": "token-A"})
        self.assertEqual(ack["status"], "InProgress")
        self.server.ok("PutThirdPartyJobFailureResult", {
            "jobId": job_id, "clientToken": "token-A",
            "failureDetails": {"type": "JobFailed", "message": "partner says no"}})
        state = wait_for(lambda: (lambda s: s if s["latestExecution"]["status"] == "Failed" else None)(
            harness.stage_state(self.server, "partner", "Partner")), what="the partner stage to fail")
        self.assertEqual(state["actionStates"][0]["latestExecution"]["errorDetails"]["message"],
                         "partner says no")
        status, out = self.server.call("PollForThirdPartyJobs", {"actionTypeId": dict(
            type_id, owner="Custom")})
        self.assertEqual(status, 400, out)
        status, out = self.server.call("GetThirdPartyJobDetails", {"jobId": "nope",
                                                                   "clientToken": "x"})
        self.assertEqual(out["__type"], "JobNotFoundException")


class DeployTargetsTest(harness.ServerTestCase):
    def test_directory_deploy_reports_its_target(self):
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        with open(os.path.join(src, "index.html"), "w") as f:
            f.write("hi")
        target = os.path.join(self.tmp, "site")
        self.server.ok("CreatePipeline", {"pipeline": pipeline("deploy", [
            ("Source", [action("Code", "Source", "Directory", config={"Path": src},
                               outputs=["Code"])]),
            ("Deploy", [action("Publish", "Deploy", "Directory", config={"Path": target},
                               inputs=["Code"])])])})
        execution = wait_for(lambda: self.server.ok("ListPipelineExecutions", {
            "pipelineName": "deploy"})["pipelineExecutionSummaries"], what="an execution")[0]
        self.assertEqual(harness.wait_execution(self.server, "deploy",
                                                execution["pipelineExecutionId"]), "Succeeded")
        runs = self.server.ok("ListActionExecutions", {"pipelineName": "deploy"})
        run = [r for r in runs["actionExecutionDetails"] if r["actionName"] == "Publish"][0]
        out = self.server.ok("ListDeployActionExecutionTargets", {
            "pipelineName": "deploy", "actionExecutionId": run["actionExecutionId"]})
        self.assertEqual(len(out["targets"]), 1)
        t = out["targets"][0]
        self.assertEqual((t["targetId"], t["targetType"], t["status"]),
                         (target, "Directory", "Succeeded"))
        self.assertEqual(t["events"][0]["status"], "Succeeded")
        out = self.server.ok("ListDeployActionExecutionTargets", {
            "actionExecutionId": run["actionExecutionId"],
            "filters": [{"name": "TARGET_STATUS", "values": ["Failed"]}]})
        self.assertEqual(out["targets"], [])
        status, out = self.server.call("ListDeployActionExecutionTargets", {
            "actionExecutionId": "00000000-0000-0000-0000-000000000000"})
        self.assertEqual(out["__type"], "ActionExecutionNotFoundException")
        # The real AWS CLI reads the answer.
        cli = harness.aws_newest(self.server, "list-deploy-action-execution-targets",
                                 "--action-execution-id", run["actionExecutionId"])
        self.assertEqual(cli.code, 0, cli.stderr)
        self.assertEqual(cli.json()["targets"][0]["targetId"], target)


class UpdateActionTypeTest(harness.ServerTestCase):
    def test_update_action_type_is_refused_with_the_reason(self):
        declaration = {
            "executor": {"type": "JobWorker", "configuration": {
                "jobWorkerExecutorConfiguration": {}}},
            "id": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub",
                   "version": "1"},
            "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 0},
            "outputArtifactDetails": {"minimumCount": 1, "maximumCount": 1}}
        # A type of the server's table: its definition is fixed.
        status, out = self.server.call("UpdateActionType", {"actionType": declaration})
        self.assertEqual((status, out["__type"]), (400, "ValidationException"), out)
        self.assertIn("built-in", out["message"])
        # A type nobody registered.
        status, out = self.server.call("UpdateActionType", {"actionType": dict(
            declaration, id=dict(declaration["id"], provider="Missing"))})
        self.assertEqual(out["__type"], "ActionTypeNotFoundException")
        # GetActionType answers for the ThirdParty type.
        got = self.server.ok("GetActionType", declaration["id"])["actionType"]
        self.assertEqual(got["id"], declaration["id"])


class ConcurrencyLimitTest(harness.ServerTestCase):
    server_args = ("--max-concurrent-executions", "2")

    def test_parallel_pipeline_refuses_beyond_the_limit(self):
        gate = os.path.join(self.tmp, "gate")
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        self.server.ok("CreatePipeline", {"pipeline": pipeline("busy", [
            ("Source", [action("Code", "Source", "Directory", config={"Path": src},
                               outputs=["Code"])]),
            ("Wait", [commands("Wait", ["while [ ! -e %s ]; do sleep 0.1; done" % gate],
                               inputs=["Code"])]),
            ("Done", [commands("Done", ["true"])])], pipelineType="V2",
            executionMode="PARALLEL")})
        self.server.ok("StartPipelineExecution", {"name": "busy"})
        status, out = self.server.call("StartPipelineExecution", {"name": "busy"})
        self.assertEqual((status, out["__type"]),
                         (400, "ConcurrentPipelineExecutionsLimitExceededException"), out)
        self.assertIn("limit", out["message"])
        open(gate, "w").close()
        wait_for(lambda: all(e["status"] == "Succeeded" for e in self.server.ok(
            "ListPipelineExecutions", {"pipelineName": "busy"})["pipelineExecutionSummaries"]),
            what="both executions to succeed")
        self.server.ok("StartPipelineExecution", {"name": "busy"})


if __name__ == "__main__":
    unittest.main()
