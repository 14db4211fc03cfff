"""API fidelity (issue 11): answers in AWS's shapes and words where a third-party CodePipeline
suite and an audit found them wrong: not-found messages, reserved tag keys, "tags": [] echoed,
ListActionExecutions' latestInPipelineExecution filter, artifact locations in the pipeline's own
store, rollback executions' revisions, V2-only fields refused on V1 pipelines, inbound
executions that were stopped or failed.

Debian's AWS CLI 2.9 and boto3 (botocore 1.29) predate some of these fields (triggers,
latestInPipelineExecution); those calls go through the raw JSON API, which is what any newer
SDK sends."""

import os
import unittest

import boto3
import botocore.exceptions

import harness
from harness import aws, wait_for, stage_state, wait_execution, commands, action, pipeline


def client(server):
    return boto3.client("codepipeline", endpoint_url=server.endpoint, region_name="us-east-1",
                        aws_access_key_id="AKIDPIPEWRIGHT", aws_secret_access_key="pipewright-secret")


def boto_error(fn, **kw):
    try:
        fn(**kw)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"]
    raise AssertionError("%s succeeded; expected an error" % fn.__name__)


class FidelityCase(harness.ServerTestCase):
    server_args = ("--no-start-on-create",)

    def source_dir(self, content="v1\n"):
        src = os.path.join(self.tmp, "src")
        os.makedirs(src, exist_ok=True)
        with open(os.path.join(src, "index.html"), "w") as f:
            f.write(content)
        return src

    def simple(self, name, **extra):
        return pipeline(name, [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.source_dir()},
                               outputs=["SourceOut"])]),
            ("Build", [commands("Make", ["cp index.html built.html"], inputs=["SourceOut"],
                                outputs=["BuildOut"])])], **extra)

    def git_simple(self, name, **extra):
        """simple() with a Git-connection source (triggers apply to Git-based sources only)."""
        p = self.simple(name, **extra)
        p["stages"][0]["actions"][0].update(
            actionTypeId={"category": "Source", "owner": "AWS",
                          "provider": "CodeStarSourceConnection", "version": "1"},
            configuration={"ConnectionArn": "arn:aws:codeconnections:us-east-1:123456789012:"
                                            "connection/0b6b7e0e-1c6a-4f5e-8f0e-111111111111",
                           "FullRepositoryId": "team/app", "BranchName": "main"})
        return p

    def refused(self, op, body, wire):
        status, err = self.server.call(op, body)
        self.assertEqual(status, 400, err)
        self.assertEqual(err["__type"], wire, err)
        return err["message"]

    def start(self, name):
        eid = self.server.ok("StartPipelineExecution", {"name": name})["pipelineExecutionId"]
        return eid


class NotFoundMessages(FidelityCase):
    server_args = ("--no-start-on-create", "--account-id", "210987654321")

    def test_every_operation_naming_a_missing_pipeline_says_it_as_aws_does(self):
        want = "Account '210987654321' does not have a pipeline with name 'x'"
        r = aws(self.server, "get-pipeline", "--name", "x")
        self.assertNotEqual(r.code, 0)
        self.assertIn("(PipelineNotFoundException)", r.stderr)
        self.assertIn(want, r.stderr)
        eid = "11111111-2222-3333-4444-555555555555"
        for op, body in [("GetPipeline", {"name": "x"}),
                         ("GetPipelineState", {"name": "x"}),
                         ("StartPipelineExecution", {"name": "x"}),
                         ("ListPipelineExecutions", {"pipelineName": "x"}),
                         ("GetPipelineExecution", {"pipelineName": "x", "pipelineExecutionId": eid}),
                         ("ListActionExecutions", {"pipelineName": "x"}),
                         ("StopPipelineExecution", {"pipelineName": "x", "pipelineExecutionId": eid}),
                         ("RetryStageExecution", {"pipelineName": "x", "stageName": "B",
                                                  "pipelineExecutionId": eid,
                                                  "retryMode": "FAILED_ACTIONS"}),
                         ("DisableStageTransition", {"pipelineName": "x", "stageName": "B",
                                                     "transitionType": "Inbound", "reason": "r"}),
                         ("DeletePipeline", {"name": "x"})]:
            with self.subTest(op=op):
                self.assertEqual(self.refused(op, body, "PipelineNotFoundException"), want)

    def test_tags_of_a_missing_pipeline(self):
        arn = "arn:aws:codepipeline:us-east-1:210987654321:gone"
        code, message = boto_error(client(self.server).list_tags_for_resource, resourceArn=arn)
        self.assertEqual(code, "ResourceNotFoundException")
        self.assertEqual(message,
                         "The account with id '210987654321' does not include a pipeline with the "
                         "name 'gone'")


class Tags(FidelityCase):
    def test_reserved_aws_prefix_is_refused_everywhere(self):
        cp = client(self.server)
        code, message = boto_error(cp.create_pipeline, pipeline=self.simple("T"),
                                   tags=[{"key": "team", "value": "a"},
                                         {"key": "aws:cloudformation:stack-name", "value": "s"}])
        self.assertEqual(code, "InvalidTagsException")
        self.assertIn("System tags start with 'aws:'", message)
        self.assertIn("'aws:cloudformation:stack-name'", message)
        # Nothing was created.
        self.assertEqual(boto_error(cp.get_pipeline, name="T")[0], "PipelineNotFoundException")

        cp.create_pipeline(pipeline=self.simple("T"), tags=[{"key": "team", "value": "a"}])
        arn = cp.get_pipeline(name="T")["metadata"]["pipelineArn"]
        code, message = boto_error(cp.tag_resource, resourceArn=arn,
                                   tags=[{"key": "aws:owner", "value": "me"}])
        self.assertEqual(code, "InvalidTagsException")
        self.assertIn("'aws:owner'", message)
        code, message = boto_error(cp.untag_resource, resourceArn=arn, tagKeys=["team", "aws:x"])
        self.assertEqual(code, "InvalidTagsException")
        self.assertIn("'aws:x'", message)
        # The refused untag removed nothing.
        self.assertEqual(cp.list_tags_for_resource(resourceArn=arn)["tags"],
                         [{"key": "team", "value": "a"}])
        # A key merely containing aws: elsewhere is an ordinary key.
        cp.tag_resource(resourceArn=arn, tags=[{"key": "my:aws:x", "value": "1"}])

    def test_a_key_given_twice_is_refused(self):
        # Before: accepted, and the last value silently replaced the first.
        cp = client(self.server)
        twice = [{"key": "k", "value": "v"}, {"key": "k", "value": "w"}]
        code, message = boto_error(cp.create_pipeline, pipeline=self.simple("Twice"), tags=twice)
        self.assertEqual(code, "InvalidTagsException")
        self.assertIn("'k' is given more than once", message)
        self.assertEqual(boto_error(cp.get_pipeline, name="Twice")[0], "PipelineNotFoundException")
        cp.create_pipeline(pipeline=self.simple("Twice"), tags=[{"key": "k", "value": "v"}])
        arn = cp.get_pipeline(name="Twice")["metadata"]["pipelineArn"]
        self.assertEqual(boto_error(cp.tag_resource, resourceArn=arn, tags=twice)[0],
                         "InvalidTagsException")
        self.assertEqual(cp.list_tags_for_resource(resourceArn=arn)["tags"],
                         [{"key": "k", "value": "v"}])
        cp.untag_resource(resourceArn=arn, tagKeys=["k", "k"])  # Harmless twice.
        self.assertEqual(cp.list_tags_for_resource(resourceArn=arn)["tags"], [])

    def test_empty_tag_list_is_echoed(self):
        out = client(self.server).create_pipeline(pipeline=self.simple("Empty"), tags=[])
        self.assertIn("tags", out)
        self.assertEqual(out["tags"], [])
        # Without tags the answer has none, as before.
        status, out = self.server.call("CreatePipeline", {"pipeline": self.simple("None")})
        self.assertEqual(status, 200, out)
        self.assertNotIn("tags", out)


class ActionExecutions(FidelityCase):
    def failing_then_fixed(self, name, **extra):
        flag = os.path.join(self.tmp, "fixed")
        p = pipeline(name, [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.source_dir()},
                               outputs=["SourceOut"])]),
            ("Build", [commands("Make", ["test -f %s" % flag, "cp index.html out.html"],
                                inputs=["SourceOut"], outputs=["BuildOut"])])], **extra)
        self.server.ok("CreatePipeline", {"pipeline": p})
        eid = self.start(name)
        self.assertEqual(wait_execution(self.server, name, eid), "Failed")
        open(flag, "w").close()
        self.server.ok("RetryStageExecution", {"pipelineName": name, "stageName": "Build",
                                               "pipelineExecutionId": eid,
                                               "retryMode": "FAILED_ACTIONS"})
        self.assertEqual(wait_execution(self.server, name, eid), "Succeeded")
        return eid

    def test_latest_in_pipeline_execution_filter(self):
        eid = self.failing_then_fixed("L")
        other = self.start("L")  # Another execution: never listed by the filter.
        wait_execution(self.server, "L", other)

        def listed(flt):
            out = self.server.ok("ListActionExecutions", {"pipelineName": "L", "filter": flt})
            return [(d["pipelineExecutionId"], d["actionName"], d["status"])
                    for d in out["actionExecutionDetails"]]

        latest = listed({"latestInPipelineExecution": {"pipelineExecutionId": eid,
                                                       "startTimeRange": "Latest"}})
        self.assertEqual(sorted(latest), sorted([(eid, "Make", "Succeeded"),
                                                 (eid, "Src", "Succeeded")]))
        every = listed({"latestInPipelineExecution": {"pipelineExecutionId": eid,
                                                      "startTimeRange": "All"}})
        self.assertEqual(sorted(every), sorted([(eid, "Make", "Succeeded"), (eid, "Make", "Failed"),
                                                (eid, "Src", "Succeeded")]))
        self.assertEqual(sorted(every), sorted(listed({"pipelineExecutionId": eid})))

        message = self.refused("ListActionExecutions", {
            "pipelineName": "L",
            "filter": {"pipelineExecutionId": eid,
                       "latestInPipelineExecution": {"pipelineExecutionId": eid,
                                                     "startTimeRange": "Latest"}}},
            "ValidationException")
        self.assertIn("not both", message)
        self.refused("ListActionExecutions", {
            "pipelineName": "L",
            "filter": {"latestInPipelineExecution": {
                "pipelineExecutionId": "11111111-2222-3333-4444-555555555555",
                "startTimeRange": "All"}}},
            "PipelineExecutionNotFoundException")
        self.refused("ListActionExecutions", {
            "pipelineName": "L",
            "filter": {"latestInPipelineExecution": {"pipelineExecutionId": eid,
                                                     "startTimeRange": "Sometimes"}}},
            "ValidationException")

    def test_artifact_locations_name_the_pipelines_artifact_store(self):
        p = self.simple("Loc")
        p["artifactStore"] = {"type": "S3", "location": "my-team-artifacts"}
        self.server.ok("CreatePipeline", {"pipeline": p})
        eid = self.start("Loc")
        self.assertEqual(wait_execution(self.server, "Loc", eid), "Succeeded")
        r = aws(self.server, "list-action-executions", "--pipeline-name", "Loc")
        self.assertEqual(r.code, 0, r.stderr)
        by_action = {d["actionName"]: d for d in r.json()["actionExecutionDetails"]}
        src_out = by_action["Src"]["output"]["outputArtifacts"][0]
        make_in = by_action["Make"]["input"]["inputArtifacts"][0]
        make_out = by_action["Make"]["output"]["outputArtifacts"][0]
        for art in (src_out, make_in, make_out):
            self.assertEqual(art["s3location"]["bucket"], "my-team-artifacts")
            self.assertRegex(art["s3location"]["key"], r"^artifacts/[0-9a-f]{64}\.zip$")
        self.assertEqual(src_out["s3location"], make_in["s3location"])  # The same object.
        self.assertNotEqual(src_out["s3location"], make_out["s3location"])

        # artifactStores (per region): the location of the store for the pipeline's region.
        p = self.simple("Regional")
        del p["artifactStore"]
        p["artifactStores"] = {"us-east-1": {"type": "S3", "location": "regional-artifacts"}}
        self.server.ok("CreatePipeline", {"pipeline": p})
        eid = self.start("Regional")
        self.assertEqual(wait_execution(self.server, "Regional", eid), "Succeeded")
        out = self.server.ok("ListActionExecutions", {"pipelineName": "Regional"})
        buckets = {a["s3location"]["bucket"] for d in out["actionExecutionDetails"]
                   for a in d["output"]["outputArtifacts"]}
        self.assertEqual(buckets, {"regional-artifacts"})


class Rollback(FidelityCase):
    def test_rollback_execution_reports_the_target_revisions(self):
        src = self.source_dir("good\n")
        target = os.path.join(self.tmp, "site")
        p = pipeline("RB", [
            ("Source", [action("S", "Source", "Directory", config={"Path": src}, outputs=["Site"])]),
            ("Prod", [action("Publish", "Deploy", "Directory", config={"Path": target},
                             inputs=["Site"])])])
        self.server.ok("CreatePipeline", {"pipeline": p})
        good = self.start("RB")
        self.assertEqual(wait_execution(self.server, "RB", good), "Succeeded")
        with open(os.path.join(src, "index.html"), "w") as f:
            f.write("newer\n")
        newer = self.start("RB")
        self.assertEqual(wait_execution(self.server, "RB", newer), "Succeeded")
        rb = self.server.ok("RollbackStage", {"pipelineName": "RB", "stageName": "Prod",
                                              "targetPipelineExecutionId": good})["pipelineExecutionId"]
        self.assertEqual(wait_execution(self.server, "RB", rb), "Succeeded")

        def execution(eid):
            return self.server.ok("GetPipelineExecution", {"pipelineName": "RB",
                                                           "pipelineExecutionId": eid})["pipelineExecution"]
        want = execution(good)["artifactRevisions"]
        self.assertEqual(len(want), 1)
        self.assertNotEqual(want, execution(newer)["artifactRevisions"])
        self.assertEqual(execution(rb)["artifactRevisions"], want)
        summaries = {s["pipelineExecutionId"]: s for s in self.server.ok(
            "ListPipelineExecutions", {"pipelineName": "RB"})["pipelineExecutionSummaries"]}
        self.assertEqual(summaries[rb]["sourceRevisions"], summaries[good]["sourceRevisions"])
        self.assertEqual(summaries[rb]["sourceRevisions"][0]["revisionId"], want[0]["revisionId"])


class PipelineTypes(FidelityCase):
    def test_v2_only_fields_are_refused_on_v1(self):
        condition = {"conditions": [{"result": "FAIL", "rules": [{
            "name": "Window", "configuration": {"Cron": "* * * ? * *"},
            "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "DeploymentWindow",
                           "version": "1"}}]}]}
        trigger = {"providerType": "CodeStarSourceConnection",
                   "gitConfiguration": {"sourceActionName": "Src",
                                        "push": [{"tags": {"includes": ["v*"]}}]}}

        def with_stage(field, value):
            def f(p):
                p["stages"][1][field] = value
            return f

        cases = [
            ("variables", lambda p: p.update(variables=[{"name": "v", "defaultValue": "1"}]),
             "Pipeline-level variables"),
            ("triggers", lambda p: p.update(triggers=[trigger]), "Triggers"),
            ("beforeEntry", with_stage("beforeEntry", condition), "beforeEntry conditions"),
            ("onSuccess", with_stage("onSuccess", condition), "onSuccess conditions"),
            # onFailure conditions roll back (rule 62).
            ("onFailure conditions", with_stage("onFailure", {
                "result": "ROLLBACK",
                "conditions": [dict(condition["conditions"][0], result="ROLLBACK")]}),
             "onFailure conditions"),
        ]
        for label, mutate, what in cases:
            for explicit in (True, False):
                with self.subTest(field=label, explicit_v1=explicit):
                    maker = self.git_simple if label == "triggers" else self.simple
                    p = maker("V1" + label.replace(" ", ""))
                    if explicit:
                        p["pipelineType"] = "V1"
                    mutate(p)
                    message = self.refused("CreatePipeline", {"pipeline": p},
                                           "InvalidStructureException")
                    self.assertIn(what + " can only be used with V2 pipelines", message)
                    self.assertIn('"pipelineType": "V2"', message)
                    # The same declaration as V2 is accepted.
                    p["pipelineType"] = "V2"
                    if not explicit:
                        self.server.ok("CreatePipeline", {"pipeline": p})
        # QUEUED needs V2 as well (already enforced by core).
        self.refused("CreatePipeline", {"pipeline": self.simple("Q", executionMode="QUEUED")},
                     "InvalidStructureException")
        # UpdatePipeline applies the same rule: a V2 pipeline with variables cannot become V1.
        p = self.simple("Upd", pipelineType="V2", variables=[{"name": "v", "defaultValue": "1"}])
        self.server.ok("CreatePipeline", {"pipeline": p})
        p["pipelineType"] = "V1"
        self.refused("UpdatePipeline", {"pipeline": p}, "InvalidStructureException")
        # Empty lists are no V2 fields.
        self.server.ok("CreatePipeline", {"pipeline": self.simple("EmptyV1", variables=[],
                                                                  triggers=[])})

    def test_trigger_must_name_a_source_action_once(self):
        def trigger(action_name):
            return {"providerType": "CodeStarSourceConnection",
                    "gitConfiguration": {"sourceActionName": action_name,
                                         "push": [{"branches": {"includes": ["main"]}}]}}
        p = self.git_simple("Trig", pipelineType="V2", triggers=[trigger("Nope")])
        message = self.refused("CreatePipeline", {"pipeline": p}, "InvalidStructureException")
        self.assertIn("'Nope'", message)
        self.assertIn("'Src'", message)  # Names the source actions there are.
        p["triggers"] = [trigger("Make")]  # A build action is no source action.
        self.refused("CreatePipeline", {"pipeline": p}, "InvalidStructureException")
        p["triggers"] = [trigger("Src"), trigger("Src")]
        message = self.refused("CreatePipeline", {"pipeline": p}, "InvalidStructureException")
        self.assertIn("more than one trigger", message)
        # A trigger on a source that is not Git-based would never fire: refused, not ignored.
        d = self.simple("TrigDir", pipelineType="V2", triggers=[trigger("Src")])
        message = self.refused("CreatePipeline", {"pipeline": d}, "InvalidStructureException")
        self.assertIn("Git-based sources", message)
        p["triggers"] = [trigger("Src")]
        self.server.ok("CreatePipeline", {"pipeline": p})
        got = self.server.ok("GetPipeline", {"name": "Trig"})["pipeline"]
        self.assertEqual(got["triggers"], [trigger("Src")])


class InboundExecutions(FidelityCase):
    def test_stopped_and_failed_inbound_executions_stay_visible(self):
        self.server.ok("CreatePipeline", {"pipeline": self.simple("In")})
        self.server.ok("DisableStageTransition", {"pipelineName": "In", "stageName": "Build",
                                                  "transitionType": "Inbound", "reason": "hold"})
        first = self.start("In")
        wait_for(lambda: stage_state(self.server, "In", "Build").get("inboundExecution"),
                 what="an inbound execution at Build")
        self.server.ok("StopPipelineExecution", {"pipelineName": "In", "pipelineExecutionId": first,
                                                 "reason": "not now"})
        self.assertEqual(wait_execution(self.server, "In", first), "Stopped")
        build = stage_state(self.server, "In", "Build")
        self.assertEqual(build["inboundExecution"],
                         {"pipelineExecutionId": first, "status": "Stopped", "type": "STANDARD"})
        self.assertEqual(build["inboundExecutions"], [build["inboundExecution"]])

        # A newer execution waiting there replaces it.
        second = self.start("In")
        wait_for(lambda: stage_state(self.server, "In", "Build").get("inboundExecution", {})
                 .get("pipelineExecutionId") == second, what="the second execution inbound")
        self.assertEqual(stage_state(self.server, "In", "Build")["inboundExecution"]["status"],
                         "InProgress")

        # Rule 29: editing the pipeline fails the waiting execution; it stays visible as Failed.
        p = self.simple("In")
        p["stages"][1]["actions"][0]["configuration"]["Commands"] = "cp index.html built.html\ntrue"
        self.server.ok("UpdatePipeline", {"pipeline": p})
        self.assertEqual(wait_execution(self.server, "In", second), "Failed")
        build = stage_state(self.server, "In", "Build")
        self.assertEqual(build["inboundExecution"],
                         {"pipelineExecutionId": second, "status": "Failed", "type": "STANDARD"})
        r = aws(self.server, "get-pipeline-state", "--name", "In")
        self.assertEqual(r.code, 0, r.stderr)

        # Once a newer execution has entered the stage, the ended one is no longer inbound.
        self.server.ok("EnableStageTransition", {"pipelineName": "In", "stageName": "Build",
                                                 "transitionType": "Inbound"})
        third = self.start("In")
        self.assertEqual(wait_execution(self.server, "In", third), "Succeeded")
        self.assertNotIn("inboundExecution", stage_state(self.server, "In", "Build"))


if __name__ == "__main__":
    unittest.main()
