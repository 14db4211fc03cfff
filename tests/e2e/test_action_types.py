"""End-to-end tests of the action type table (issue 11): every standard AWS
action type is accepted in the shapes of AWS's documentation examples, through
Debian's AWS CLI (/usr/bin/aws, awscli 2.9) and the newest-model `aws` on PATH;
configuration keys are checked (a missing required key and an unknown key are
refused with their names); and an AWS-owned type without a built-in runner
(Deploy/AWS/CloudFormation/1) waits as a job that names the command to run,
is completed by `pipewright worker --action-type ...` or a boto3 worker
polling owner AWS, or fails after `serve --worker-wait-timeout`.
"""

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import unittest

import harness
from harness import action, pipeline, stage_state, wait_for

PYTHON = "/usr/bin/python3"  # Debian's, which has python3-boto3.
CFN = {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"}
WAITING = ("Waiting for a worker: run pipewright worker --action-type "
           "Deploy/AWS/CloudFormation/1 -- <program>")


def newest_aws():
    """The `aws` on PATH that is not Debian's (the pip CLI with the newest model)."""
    for d in os.environ.get("PATH", "").split(":"):
        p = os.path.join(d, "aws")
        if os.access(p, os.X_OK) and os.path.realpath(p) != os.path.realpath(harness.AWS):
            return p
    return None


def aws_action(name, category, provider, config, inputs=(), outputs=(), run_order=1):
    """An action exactly as AWS's documentation examples spell one out."""
    return {"name": name,
            "actionTypeId": {"category": category, "owner": "AWS", "provider": provider,
                             "version": "1"},
            "runOrder": run_order,
            "configuration": config,
            "inputArtifacts": [{"name": n} for n in inputs],
            "outputArtifacts": [{"name": n} for n in outputs]}


def s3_codebuild_codedeploy(name):
    return pipeline(name, [
        ("Source", [aws_action("Source", "Source", "S3",
                               {"S3Bucket": "my-bucket-oregon", "S3ObjectKey": "my-application.zip",
                                "PollForSourceChanges": "false"}, outputs=["SourceArtifact"])]),
        ("Build", [aws_action("PackageExport", "Build", "CodeBuild",
                              {"ProjectName": "my-build-project"},
                              inputs=["SourceArtifact"], outputs=["BuildArtifact"])]),
        ("Deploy", [aws_action("Deploy", "Deploy", "CodeDeploy",
                               {"ApplicationName": "my-application",
                                "DeploymentGroupName": "my-deployment-group"},
                               inputs=["BuildArtifact"])]),
    ])


def github_codebuild_cloudformation(name):
    return pipeline(name, [
        ("Source", [aws_action("ApplicationSource", "Source", "CodeStarSourceConnection",
                               {"ConnectionArn": "arn:aws:codestar-connections:us-west-2:"
                                                 "123456789012:connection/0a1b2c3d-example",
                                "FullRepositoryId": "some-user/my-repo", "BranchName": "main",
                                "OutputArtifactFormat": "CODE_ZIP"},
                               outputs=["SourceArtifact"])]),
        ("Build", [aws_action("Build", "Build", "CodeBuild",
                              {"ProjectName": "my-build-project", "PrimarySource": "SourceArtifact"},
                              inputs=["SourceArtifact"], outputs=["BuildArtifact"])]),
        ("Deploy", [
            aws_action("CreateChangeSet", "Deploy", "CloudFormation",
                       {"ActionMode": "CHANGE_SET_REPLACE", "StackName": "my-project--lambda",
                        "ChangeSetName": "pipeline-changeset",
                        "Capabilities": "CAPABILITY_NAMED_IAM,CAPABILITY_AUTO_EXPAND",
                        "RoleArn": "arn:aws:iam::123456789012:role/CloudFormationRole",
                        "TemplatePath": "BuildArtifact::template-export.yml",
                        "TemplateConfiguration": "BuildArtifact::template-configuration.json",
                        "ParameterOverrides": "{\"ProjectId\": \"my-project\"}"},
                       inputs=["BuildArtifact"]),
            aws_action("ExecuteChangeSet", "Deploy", "CloudFormation",
                       {"ActionMode": "CHANGE_SET_EXECUTE", "StackName": "my-project--lambda",
                        "ChangeSetName": "pipeline-changeset"}, run_order=2),
        ]),
    ])


def ecr_ecs(name):
    return pipeline(name, [
        ("Source", [aws_action("Image", "Source", "ECR",
                               {"RepositoryName": "my-image-repo", "ImageTag": "latest"},
                               outputs=["MyImage"])]),
        ("Deploy", [aws_action("Deploy", "Deploy", "ECS",
                               {"ClusterName": "my-cluster", "ServiceName": "sample-app-service",
                                "FileName": "imagedefinitions.json"},
                               inputs=["MyImage"])]),
    ])


class DocumentationShapesTest(harness.ServerTestCase):
    server_args = ("--no-start-on-create",)

    def run_cli(self, cli, *args):
        env = harness._env()
        if cli == "debian-newest-model":  # Debian's CLI with the repository's newest model.
            cli = harness.AWS
            env["AWS_DATA_PATH"] = harness.newest_model_dir()
        p = subprocess.run([cli, "--endpoint-url", self.server.endpoint, "codepipeline"]
                           + list(args), capture_output=True, text=True, env=env, timeout=120)
        return harness.CliResult(p)

    def clis(self):
        out = [harness.AWS, "debian-newest-model"]
        newest = newest_aws()
        if newest:
            out.append(newest)
        else:
            sys.stderr.write("no newest-model aws on PATH; only Debian's CLI checked\n")
        return out

    def test_documented_pipelines_are_accepted_and_returned_as_sent(self):
        n = 0
        for cli in self.clis():
            for make in (s3_codebuild_codedeploy, github_codebuild_cloudformation, ecr_ecs):
                n += 1
                with self.subTest(cli=cli, pipeline=make.__name__):
                    p = make("doc-%d" % n)
                    path = self.write_json("p%d.json" % n, p)
                    r = self.run_cli(cli, "create-pipeline", "--pipeline", "file://" + path)
                    self.assertEqual(r.code, 0, r.stderr)
                    got = self.run_cli(cli, "get-pipeline", "--name", p["name"])
                    self.assertEqual(got.code, 0, got.stderr)
                    self.assertEqual(got.json()["pipeline"]["stages"], p["stages"])
        # Nothing started (--no-start-on-create): these need clouds to run.
        self.assertEqual(self.server.ok("ListPipelineExecutions",
                                        {"pipelineName": "doc-1"})["pipelineExecutionSummaries"], [])

    def test_missing_and_unknown_keys_are_refused_with_their_names(self):
        missing = s3_codebuild_codedeploy("missing")
        del missing["stages"][2]["actions"][0]["configuration"]["DeploymentGroupName"]
        unknown = ecr_ecs("unknown")
        unknown["stages"][1]["actions"][0]["configuration"]["Cluster"] = "typo"
        for cli in self.clis():
            with self.subTest(cli=cli):
                r = self.run_cli(cli, "create-pipeline", "--pipeline",
                                 "file://" + self.write_json("missing.json", missing))
                self.assertNotEqual(r.code, 0)
                self.assertIn("InvalidActionDeclarationException", r.stderr)
                self.assertIn("'DeploymentGroupName'", r.stderr)
                self.assertIn("Deploy/AWS/CodeDeploy/1", r.stderr)
                r = self.run_cli(cli, "create-pipeline", "--pipeline",
                                 "file://" + self.write_json("unknown.json", unknown))
                self.assertNotEqual(r.code, 0)
                self.assertIn("InvalidActionDeclarationException", r.stderr)
                self.assertIn("'Cluster'", r.stderr)
        self.assertEqual(self.server.ok("ListPipelines")["pipelines"], [])

    def test_s3_deploy_extract_false_needs_object_key(self):
        p = pipeline("extract", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.tmp},
                               outputs=["Out"])]),
            ("Deploy", [aws_action("Site", "Deploy", "S3",
                                   {"BucketName": "website-bucket", "Extract": "false"},
                                   inputs=["Out"])])])
        status, out = self.server.call("CreatePipeline", {"pipeline": p})
        self.assertEqual(status, 400)
        self.assertEqual(out["__type"], "InvalidActionDeclarationException")
        self.assertIn("'ObjectKey'", out["message"])
        p["stages"][1]["actions"][0]["configuration"]["Extract"] = "sometimes"
        status, out = self.server.call("CreatePipeline", {"pipeline": p})
        self.assertEqual(status, 400)
        self.assertIn("'Extract'", out["message"])

    def test_list_and_get_action_types_show_the_table(self):
        types = self.server.ok("ListActionTypes", {"actionOwnerFilter": "AWS"})["actionTypes"]
        ids = {"%s/%s/%s" % (t["id"]["category"], t["id"]["provider"], t["id"]["version"])
               for t in types}
        for expected in ("Deploy/CloudFormation/1", "Source/S3/1", "Invoke/StepFunctions/1",
                         "Compute/Commands/1", "Source/Git/1", "Deploy/EKS/1"):
            self.assertIn(expected, ids)
        self.assertTrue(all(t["id"]["owner"] == "AWS" for t in types))
        s3 = next(t for t in types if t["id"]["category"] == "Deploy"
                  and t["id"]["provider"] == "S3")
        props = {p["name"]: p for p in s3["actionConfigurationProperties"]}
        self.assertTrue(props["BucketName"]["required"])
        self.assertEqual(props["Extract"]["type"], "Boolean")
        self.assertEqual(s3["inputArtifactDetails"], {"minimumCount": 1, "maximumCount": 1})
        third = self.server.ok("ListActionTypes", {"actionOwnerFilter": "ThirdParty"})
        self.assertTrue(third["actionTypes"])
        self.assertTrue(all(t["id"]["owner"] == "ThirdParty" for t in third["actionTypes"]))
        got = self.server.ok("GetActionType", dict(CFN))["actionType"]
        names = {p["name"]: p for p in got["properties"]}
        self.assertFalse(names["ActionMode"]["optional"])
        self.assertTrue(names["TemplatePath"]["optional"])
        r = harness.aws(self.server, "list-action-types", "--action-owner-filter", "AWS")
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual(len(r.json()["actionTypes"]), len(types))


class WorkerTypeTestBase(harness.ServerTestCase):
    def setUp(self):
        super().setUp()
        self.workers = []
        self.src = os.path.join(self.tmp, "src")
        os.makedirs(self.src)
        with open(os.path.join(self.src, "template.yml"), "w") as f:
            f.write("Resources: {}\n")

    def tearDown(self):
        for w in self.workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
                try:
                    w.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    w.kill()
                    w.wait()
        super().tearDown()

    def create(self, name="stack"):
        p = pipeline(name, [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.src},
                               outputs=["SourceOut"])]),
            ("Deploy", [aws_action("Stack", "Deploy", "CloudFormation",
                                   {"ActionMode": "CREATE_UPDATE", "StackName": "my-stack",
                                    "TemplatePath": "SourceOut::template.yml"},
                                   inputs=["SourceOut"])])])
        self.server.ok("CreatePipeline", {"pipeline": p})
        return name

    def deploy_state(self, name):
        return next(a for a in stage_state(self.server, name, "Deploy")["actionStates"]
                    if a["actionName"] == "Stack")

    def latest_execution_id(self, name):
        return wait_for(lambda: (self.server.ok("ListPipelineExecutions", {"pipelineName": name})
                                 ["pipelineExecutionSummaries"] or [{}])[0]
                        .get("pipelineExecutionId"), what="an execution")

    def wait_waiting_summary(self, name):
        return wait_for(lambda: self.deploy_state(name).get("latestExecution", {})
                        .get("summary") == WAITING, timeout=60,
                        what="the Deploy action to wait for a worker")


class WorkerTypeTest(WorkerTypeTestBase):
    def test_cloudformation_waits_for_a_worker_then_pipewright_worker_completes_it(self):
        name = self.create()
        execution = self.latest_execution_id(name)
        self.wait_waiting_summary(name)
        self.assertEqual(self.deploy_state(name)["latestExecution"]["status"], "InProgress")
        marker = os.path.join(self.tmp, "deployed.txt")
        script = ('test -f template.yml && printf "%s %s" "$PIPEWRIGHT_CONFIG_StackName" '
                  '"$PIPEWRIGHT_CONFIG_ActionMode" > "$1"')
        log = open(os.path.join(self.tmp, "worker.log"), "w+")
        w = subprocess.Popen([harness.PIPEWRIGHT, "worker", "--endpoint", self.server.endpoint,
                              "--poll-interval", "0.1", "--work-dir", self.tmp,
                              "--action-type", "Deploy/AWS/CloudFormation/1",
                              "--", "/bin/sh", "-c", script, "sh", marker],
                             stdout=subprocess.DEVNULL, stderr=log, env=harness._env())
        self.workers.append(w)
        try:
            status = harness.wait_execution(self.server, name, execution)
        finally:
            log.flush()
            log.seek(0)
            worker_log = log.read()
            log.close()
        self.assertEqual(status, "Succeeded", worker_log)
        with open(marker) as f:
            self.assertEqual(f.read(), "my-stack CREATE_UPDATE")
        self.assertNotEqual(self.deploy_state(name)["latestExecution"].get("summary"), WAITING)

    def test_a_boto3_worker_polling_owner_aws_completes_it(self):
        name = self.create()
        execution = self.latest_execution_id(name)
        self.wait_waiting_summary(name)
        script = os.path.join(self.tmp, "boto_worker.py")
        with open(script, "w") as f:
            f.write(BOTO_WORKER)
        p = subprocess.run([PYTHON, script, self.server.endpoint], capture_output=True, text=True,
                           env=harness._env(), timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("owner AWS stack my-stack", p.stdout)
        self.assertEqual(harness.wait_execution(self.server, name, execution), "Succeeded")
        latest = self.deploy_state(name)["latestExecution"]
        self.assertEqual(latest["summary"], "deployed by boto3")
        self.assertEqual(latest["externalExecutionId"], "boto-stack-1")


class WorkerWaitTimeoutTest(WorkerTypeTestBase):
    server_args = ("--worker-wait-timeout", "2")

    def test_an_untaken_job_fails_with_the_command_to_run(self):
        name = self.create()
        execution = self.latest_execution_id(name)
        self.assertEqual(harness.wait_execution(self.server, name, execution, timeout=30),
                         "Failed")
        latest = self.deploy_state(name)["latestExecution"]
        self.assertEqual(latest["status"], "Failed")
        message = latest["errorDetails"]["message"]
        self.assertIn("within 2 seconds", message)
        self.assertIn(WAITING, message)
        # PollForJobs for that type finds nothing left to do.
        jobs = self.server.ok("PollForJobs", {"actionTypeId": CFN, "maxBatchSize": 1})["jobs"]
        self.assertEqual(jobs, [])


BOTO_WORKER = r'''
import sys, time
import boto3

endpoint = sys.argv[1]
cp = boto3.client("codepipeline", endpoint_url=endpoint, region_name="us-east-1")
type_id = {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"}
deadline = time.time() + 60
while True:
    jobs = cp.poll_for_jobs(actionTypeId=type_id, maxBatchSize=1)["jobs"]
    if jobs:
        break
    if time.time() > deadline:
        sys.exit("no job")
    time.sleep(0.2)
job = jobs[0]
assert cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "InProgress"
details = cp.get_job_details(jobId=job["id"])["jobDetails"]["data"]
owner = details["actionTypeId"]["owner"]
stack = details["actionConfiguration"]["configuration"]["StackName"]
cp.put_job_success_result(jobId=job["id"],
                          executionDetails={"summary": "deployed by boto3",
                                            "externalExecutionId": "boto-stack-1",
                                            "percentComplete": 100})
print("owner", owner, "stack", stack)
'''


if __name__ == "__main__":
    unittest.main()
