"""Retry failed actions (issue 4): the AWS guide's walk-through with both CLIs,
every refusal with its exact error, a race of many clients, automatic retry."""

import concurrent.futures
import json
import os
import unittest

import harness
from harness import aws, pw, wait_for, stage_state, wait_execution, commands, action, pipeline


def my_first_pipeline(tmp, flag, name="MyFirstPipeline", on_failure=None, extra_staging=()):
    src = os.path.join(tmp, "app")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "index.html"), "w") as f:
        f.write("hello\n")
    staging = {"name": "Staging",
               "actions": [commands("Deploy", ["cat index.html", "test -f %s" % flag],
                                    inputs=["SourceArtifact"])] + list(extra_staging)}
    if on_failure:
        staging["onFailure"] = on_failure
    p = pipeline(name, [("Source", [action("Source", "Source", "Directory", config={"Path": src},
                                           outputs=["SourceArtifact"])])])
    p["stages"].append(staging)
    return p


def process_alive(pid):
    """True if `pid` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class GuideWalkthrough(harness.ServerTestCase):
    def run_story(self, cli):
        flag = os.path.join(self.tmp, "fixed")
        path = self.write_json("pipeline.json", my_first_pipeline(self.tmp, flag))
        r = cli(self.server, "create-pipeline", "--pipeline", "file://" + path)
        self.assertEqual(r.code, 0, r.stderr)
        wait_for(lambda: stage_state(self.server, "MyFirstPipeline", "Staging")
                 .get("latestExecution", {}).get("status") == "Failed", what="Staging Failed")

        # Step 1: get-pipeline-state shows the failed stage and the execution id.
        r = cli(self.server, "get-pipeline-state", "--name", "MyFirstPipeline")
        self.assertEqual(r.code, 0, r.stderr)
        state = r.json()
        staging = [s for s in state["stageStates"] if s["stageName"] == "Staging"][0]
        source = [s for s in state["stageStates"] if s["stageName"] == "Source"][0]
        self.assertEqual(staging["latestExecution"]["status"], "Failed")
        self.assertEqual(source["latestExecution"]["status"], "Succeeded")
        execution_id = staging["latestExecution"]["pipelineExecutionId"]
        failed = staging["actionStates"][0]["latestExecution"]
        self.assertEqual(failed["status"], "Failed")
        self.assertIn("test -f", failed["errorDetails"]["message"])
        source_run = source["actionStates"][0]["latestExecution"]["actionExecutionId"]

        # Steps 2-4: the JSON file and retry-stage-execution --cli-input-json.
        open(flag, "w").close()
        retry = self.write_json("retry-failed-actions.json", {
            "pipelineName": "MyFirstPipeline", "stageName": "Staging",
            "pipelineExecutionId": execution_id, "retryMode": "FAILED_ACTIONS"})
        r = cli(self.server, "retry-stage-execution", "--cli-input-json", "file://" + retry)
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual(r.json()["pipelineExecutionId"], execution_id)

        # Step 5: the retried action succeeded, the execution succeeded, Source was not rerun.
        self.assertEqual(wait_execution(self.server, "MyFirstPipeline", execution_id), "Succeeded")
        state = cli(self.server, "get-pipeline-state", "--name", "MyFirstPipeline").json()
        staging = [s for s in state["stageStates"] if s["stageName"] == "Staging"][0]
        source = [s for s in state["stageStates"] if s["stageName"] == "Source"][0]
        self.assertEqual(staging["latestExecution"]["status"], "Succeeded")
        self.assertEqual(staging["latestExecution"]["pipelineExecutionId"], execution_id)
        self.assertEqual(staging["actionStates"][0]["latestExecution"]["status"], "Succeeded")
        self.assertNotEqual(staging["actionStates"][0]["latestExecution"]["actionExecutionId"],
                            failed["actionExecutionId"])
        self.assertEqual(source["actionStates"][0]["latestExecution"]["actionExecutionId"], source_run)
        history = self.server.ok("ListActionExecutions", {
            "pipelineName": "MyFirstPipeline", "filter": {"pipelineExecutionId": execution_id}})
        runs = [(d["actionName"], d["status"]) for d in history["actionExecutionDetails"]]
        self.assertEqual(sorted(runs), sorted([("Deploy", "Succeeded"), ("Deploy", "Failed"),
                                               ("Source", "Succeeded")]))
        raw = self.server.ok("GetPipelineState", {"name": "MyFirstPipeline"})
        meta = [s for s in raw["stageStates"] if s["stageName"] == "Staging"][0]["retryStageMetadata"]
        self.assertEqual(meta, {"manualStageRetryAttempt": 1, "latestRetryTrigger": "ManualStageRetry"})

    def test_with_pipewright_cli(self):
        self.run_story(pw)

    def test_with_debian_aws_cli(self):
        self.run_story(aws)

    def test_missing_or_bad_json_file_is_a_clear_error(self):
        r = pw(self.server, "retry-stage-execution", "--cli-input-json",
               "file://" + os.path.join(self.tmp, "nope.json"))
        self.assertEqual(r.code, 252)
        self.assertIn("nope.json", r.stderr)
        bad = os.path.join(self.tmp, "bad.json")
        with open(bad, "w") as f:
            f.write("{not json")
        r = pw(self.server, "retry-stage-execution", "--cli-input-json", "file://" + bad)
        self.assertEqual(r.code, 252)
        self.assertIn("JSON", r.stderr)


class Refusals(harness.ServerTestCase):
    def failed_pipeline(self, name="P", extra_staging=()):
        flag = os.path.join(self.tmp, name + "-fixed")
        self.server.ok("CreatePipeline", {"pipeline": my_first_pipeline(self.tmp, flag, name,
                                                                        extra_staging=extra_staging)})
        st = wait_for(lambda: (lambda s: s if s.get("latestExecution", {}).get("status") == "Failed"
                               else None)(stage_state(self.server, name, "Staging")),
                      what="Staging Failed")
        return st["latestExecution"]["pipelineExecutionId"], flag

    def retry(self, name, stage, execution_id, mode="FAILED_ACTIONS"):
        return self.server.call("RetryStageExecution", {"pipelineName": name, "stageName": stage,
                                                        "pipelineExecutionId": execution_id,
                                                        "retryMode": mode})

    def assertRefused(self, result, error, fragment=None):
        status, body = result
        self.assertEqual(status, 400, body)
        self.assertEqual(body["__type"], error, body)
        if fragment:
            self.assertIn(fragment, body["message"])

    def test_unknown_pipeline_and_stage(self):
        eid, _ = self.failed_pipeline()
        self.assertRefused(self.retry("Nope", "Staging", eid), "PipelineNotFoundException")
        self.assertRefused(self.retry("P", "Nope", eid), "StageNotFoundException")

    def test_bad_retry_mode_is_validation_error(self):
        eid, _ = self.failed_pipeline()
        self.assertRefused(self.retry("P", "Staging", eid, "BOGUS"), "ValidationException", "retryMode")
        r = aws(self.server, "retry-stage-execution", "--pipeline-name", "P", "--stage-name", "Staging",
                "--pipeline-execution-id", eid, "--retry-mode", "BOGUS")
        self.assertEqual(r.code, 254)
        self.assertIn("An error occurred (ValidationException) when calling the RetryStageExecution "
                      "operation", r.stderr)

    def test_succeeded_stage_has_no_failed_actions(self):
        eid, _ = self.failed_pipeline()
        self.assertRefused(self.retry("P", "Source", eid), "StageNotRetryableException",
                           "no failed actions")

    def test_structure_changed(self):
        eid, _ = self.failed_pipeline()
        p = self.server.ok("GetPipeline", {"name": "P"})["pipeline"]
        p["stages"][1]["actions"][0]["configuration"]["Commands"] = "true"
        self.server.ok("UpdatePipeline", {"pipeline": p})
        self.assertRefused(self.retry("P", "Staging", eid), "StageNotRetryableException",
                           "structure changed")
        r = aws(self.server, "retry-stage-execution", "--pipeline-name", "P", "--stage-name",
                "Staging", "--pipeline-execution-id", eid, "--retry-mode", "FAILED_ACTIONS")
        self.assertEqual(r.code, 254)
        self.assertIn("StageNotRetryableException", r.stderr)

    def test_actions_still_in_progress_are_named(self):
        gate = os.path.join(self.tmp, "gate")
        flag = os.path.join(self.tmp, "P-fixed")
        slow = commands("Slow", ["while [ ! -f %s ]; do sleep 0.05; done" % gate])
        self.server.ok("CreatePipeline", {"pipeline": my_first_pipeline(self.tmp, flag, "P",
                                                                        extra_staging=[slow])})
        # Deploy fails fast while Slow still runs, so the stage is still InProgress.
        st = wait_for(lambda: (lambda s: s if s["actionStates"][0].get("latestExecution", {})
                               .get("status") == "Failed" else None)(
                                   stage_state(self.server, "P", "Staging")), what="Deploy Failed")
        self.assertEqual(st["latestExecution"]["status"], "InProgress")
        eid = st["latestExecution"]["pipelineExecutionId"]
        self.assertRefused(self.retry("P", "Staging", eid), "StageNotRetryableException", "Slow")
        self.assertRefused(self.retry("P", "Staging", eid, "ALL_ACTIONS"),
                           "StageNotRetryableException", "in progress")
        open(gate, "w").close()
        self.assertEqual(wait_execution(self.server, "P", eid), "Failed")
        open(flag, "w").close()
        self.assertEqual(self.retry("P", "Staging", eid)[0], 200)
        self.assertEqual(wait_execution(self.server, "P", eid), "Succeeded")

    def test_retry_already_in_progress(self):
        gate = os.path.join(self.tmp, "gate")
        self.server.ok("CreatePipeline", {"pipeline": pipeline("R", [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.tmp}, outputs=["A"])]),
            ("Staging", [commands("Wait", ["test -f %s.armed || { touch %s.armed; exit 1; }" % (gate, gate),
                                           "while [ ! -f %s ]; do sleep 0.05; done" % gate])])])})
        st = wait_for(lambda: (lambda s: s if s.get("latestExecution", {}).get("status") == "Failed"
                               else None)(stage_state(self.server, "R", "Staging")))
        eid = st["latestExecution"]["pipelineExecutionId"]
        self.assertEqual(self.retry("R", "Staging", eid)[0], 200)
        self.assertRefused(self.retry("R", "Staging", eid), "StageNotRetryableException",
                           "already in progress")
        open(gate, "w").close()
        self.assertEqual(wait_execution(self.server, "R", eid), "Succeeded")

    def test_later_execution_entered_the_stage(self):
        eid, flag = self.failed_pipeline()
        second = self.server.ok("StartPipelineExecution", {"name": "P"})["pipelineExecutionId"]
        wait_execution(self.server, "P", second)
        self.assertRefused(self.retry("P", "Staging", eid), "NotLatestPipelineExecutionException",
                           second)
        # The later one is retryable.
        open(flag, "w").close()
        self.assertEqual(self.retry("P", "Staging", second)[0], 200)
        self.assertEqual(wait_execution(self.server, "P", second), "Succeeded")

    def test_unknown_execution_id(self):
        self.failed_pipeline()
        self.assertRefused(self.retry("P", "Staging", "00000000-0000-4000-8000-000000000000"),
                           "NotLatestPipelineExecutionException")

    def test_dry_run_plan_explains(self):
        eid, _ = self.failed_pipeline()
        status, plan = self.server.call("GetStageRetryPlan", {
            "pipelineName": "P", "stageName": "Staging", "pipelineExecutionId": eid},
            target_prefix="Pipewright_20261125.")
        self.assertEqual(status, 200, plan)
        self.assertTrue(plan["plans"]["FAILED_ACTIONS"]["retryable"])
        self.assertEqual(plan["plans"]["FAILED_ACTIONS"]["actionsToRerun"], ["Deploy"])
        status, plan = self.server.call("GetStageRetryPlan", {
            "pipelineName": "P", "stageName": "Source", "pipelineExecutionId": eid,
            "retryMode": "FAILED_ACTIONS"}, target_prefix="Pipewright_20261125.")
        self.assertEqual(status, 200, plan)
        self.assertFalse(plan["retryable"])
        self.assertEqual(plan["errorCode"], "StageNotRetryableException")
        self.assertIn("no failed actions", plan["reason"])


class Race(harness.ServerTestCase):
    def test_many_clients_retrying_at_once_exactly_one_wins(self):
        hold = os.path.join(self.tmp, "hold")
        release = os.path.join(self.tmp, "release")
        # First attempt fails at once; retried attempts wait for `release`, then fail again.
        script = ["if [ -f %s ]; then while [ ! -f %s ]; do sleep 0.02; done; fi" % (hold, release),
                  "exit 1"]
        self.server.ok("CreatePipeline", {"pipeline": pipeline("Race", [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.tmp}, outputs=["A"])]),
            ("Staging", [commands("Flaky", script), commands("Also", script)])])})
        for round_ in range(5):
            st = wait_for(lambda: (lambda s: s if s.get("latestExecution", {}).get("status") == "Failed"
                                   else None)(stage_state(self.server, "Race", "Staging")),
                          what="Staging Failed, round %d" % round_)
            if os.path.exists(release):
                os.remove(release)
            open(hold, "w").close()
            eid = st["latestExecution"]["pipelineExecutionId"]
            body = {"pipelineName": "Race", "stageName": "Staging", "pipelineExecutionId": eid,
                    "retryMode": "FAILED_ACTIONS"}
            with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
                results = list(pool.map(lambda _: self.server.call("RetryStageExecution", body),
                                        range(16)))
            accepted = [r for r in results if r[0] == 200]
            refused = [r for r in results if r[0] != 200]
            self.assertEqual(len(accepted), 1, results)
            for status, err in refused:
                self.assertEqual(status, 400)
                self.assertEqual(err["__type"], "StageNotRetryableException", err)
                self.assertIn("already in progress", err["message"])
            meta = stage_state(self.server, "Race", "Staging")["retryStageMetadata"]
            self.assertEqual(meta["manualStageRetryAttempt"], round_ + 1)
            open(release, "w").close()
            wait_execution(self.server, "Race", eid)
            history = self.server.ok("ListActionExecutions", {
                "pipelineName": "Race", "filter": {"pipelineExecutionId": eid}})
            flaky = [d for d in history["actionExecutionDetails"] if d["actionName"] == "Flaky"]
            self.assertEqual(len(flaky), round_ + 2, "one new attempt per accepted retry")


class Modes(harness.ServerTestCase):
    def test_all_actions_reruns_succeeded_actions_and_keeps_history(self):
        flag = os.path.join(self.tmp, "fixed")
        self.server.ok("CreatePipeline", {"pipeline": pipeline("M", [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.tmp}, outputs=["A"])]),
            ("Staging", [commands("Prepare", ["echo prepared > out.txt"], outputs=["Prepared"]),
                         commands("Apply", ["test -f %s" % flag, "cat out.txt"], run_order=2,
                                  inputs=["Prepared"])])])})
        st = wait_for(lambda: (lambda s: s if s.get("latestExecution", {}).get("status") == "Failed"
                               else None)(stage_state(self.server, "M", "Staging")))
        eid = st["latestExecution"]["pipelineExecutionId"]
        prepare_first = st["actionStates"][0]["latestExecution"]["actionExecutionId"]
        open(flag, "w").close()
        self.server.ok("RetryStageExecution", {"pipelineName": "M", "stageName": "Staging",
                                               "pipelineExecutionId": eid, "retryMode": "ALL_ACTIONS"})
        self.assertEqual(wait_execution(self.server, "M", eid), "Succeeded")
        history = self.server.ok("ListActionExecutions", {"pipelineName": "M",
                                                          "filter": {"pipelineExecutionId": eid}})
        prepares = [d for d in history["actionExecutionDetails"] if d["actionName"] == "Prepare"]
        self.assertEqual(len(prepares), 2)
        self.assertEqual(len({d["actionExecutionId"] for d in prepares}), 2)
        self.assertIn(prepare_first, {d["actionExecutionId"] for d in prepares})

    def test_failed_actions_reruns_only_the_failed_one(self):
        flag = os.path.join(self.tmp, "fixed")
        self.server.ok("CreatePipeline", {"pipeline": pipeline("F", [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.tmp}, outputs=["A"])]),
            ("Staging", [commands("Good", ["true"]), commands("Bad", ["test -f %s" % flag]),
                         commands("Later", ["true"], run_order=2)]),
            ("Prod", [commands("Ship", ["true"])])])})
        st = wait_for(lambda: (lambda s: s if s.get("latestExecution", {}).get("status") == "Failed"
                               else None)(stage_state(self.server, "F", "Staging")))
        eid = st["latestExecution"]["pipelineExecutionId"]
        names = {a["actionName"]: a.get("latestExecution") for a in st["actionStates"]}
        self.assertIsNone(names["Later"], "a later group never starts after a failure")
        open(flag, "w").close()
        self.server.ok("RetryStageExecution", {"pipelineName": "F", "stageName": "Staging",
                                               "pipelineExecutionId": eid,
                                               "retryMode": "FAILED_ACTIONS"})
        self.assertEqual(wait_execution(self.server, "F", eid), "Succeeded")
        history = self.server.ok("ListActionExecutions", {"pipelineName": "F",
                                                          "filter": {"pipelineExecutionId": eid}})
        count = {}
        for d in history["actionExecutionDetails"]:
            count[d["actionName"]] = count.get(d["actionName"], 0) + 1
        self.assertEqual(count, {"S": 1, "Good": 1, "Bad": 2, "Later": 1, "Ship": 1})

    def create_with_auto_retry(self, name, cmds, mode):
        p = pipeline(name, [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.tmp}, outputs=["X"])]),
            ("Staging", [commands("Flaky", cmds)])])
        p["stages"][1]["onFailure"] = {"result": "RETRY", "retryConfiguration": {"retryMode": mode}}
        self.server.ok("CreatePipeline", {"pipeline": p})
        return wait_for(lambda: self.server.ok("ListPipelineExecutions", {"pipelineName": name})
                        ["pipelineExecutionSummaries"], what="first execution")[0]["pipelineExecutionId"]

    def test_automatic_retry_once(self):
        marker = os.path.join(self.tmp, "attempted")
        eid = self.create_with_auto_retry(
            "A", ["test -f %s || { touch %s; exit 1; }" % (marker, marker)], "FAILED_ACTIONS")
        self.assertEqual(wait_execution(self.server, "A", eid), "Succeeded")
        meta = stage_state(self.server, "A", "Staging")["retryStageMetadata"]
        self.assertEqual(meta, {"autoStageRetryAttempt": 1, "latestRetryTrigger": "AutomatedStageRetry"})
        history = self.server.ok("ListActionExecutions", {"pipelineName": "A",
                                                          "filter": {"pipelineExecutionId": eid}})
        self.assertEqual(sorted(d["status"] for d in history["actionExecutionDetails"]
                                if d["actionName"] == "Flaky"), ["Failed", "Succeeded"])

    def test_automatic_retry_gives_up_after_one_attempt(self):
        eid = self.create_with_auto_retry("B", ["exit 3"], "ALL_ACTIONS")
        self.assertEqual(wait_execution(self.server, "B", eid), "Failed")
        history = self.server.ok("ListActionExecutions", {"pipelineName": "B",
                                                          "filter": {"pipelineExecutionId": eid}})
        self.assertEqual(len([d for d in history["actionExecutionDetails"]
                              if d["actionName"] == "Flaky"]), 2)
        # A manual retry is still allowed after the automatic one failed (rule 54).
        status, _ = self.server.call("RetryStageExecution", {"pipelineName": "B", "stageName": "Staging",
                                                             "pipelineExecutionId": eid,
                                                             "retryMode": "FAILED_ACTIONS"})
        self.assertEqual(status, 200)
        meta = stage_state(self.server, "B", "Staging")["retryStageMetadata"]
        self.assertEqual(meta["manualStageRetryAttempt"], 1)
        self.assertEqual(meta["autoStageRetryAttempt"], 1)
        self.assertEqual(meta["latestRetryTrigger"], "ManualStageRetry")


class AfterRestart(harness.ServerTestCase):
    def test_retry_after_kill9(self):
        gate = os.path.join(self.tmp, "gate")
        self.server.ok("CreatePipeline", {"pipeline": pipeline("K", [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.tmp}, outputs=["X"])]),
            ("Staging", [commands("Long", ["echo $$ > %s.pid" % gate, "touch %s.started" % gate,
                                           "while [ ! -f %s ]; do sleep 0.05; done" % gate])])])})
        wait_for(lambda: os.path.exists(gate + ".started"), what="action started")
        eid = stage_state(self.server, "K", "Staging")["latestExecution"]["pipelineExecutionId"]
        with open(gate + ".pid") as f:
            pid = int(f.read())
        self.server.kill9()
        self.assertTrue(process_alive(pid), "the action outlives kill -9 of the server")
        self.server.start()
        # The restarted server ends the leftover process group of the interrupted action.
        wait_for(lambda: not process_alive(pid), what="the orphaned action process to be killed")
        st = stage_state(self.server, "K", "Staging")
        self.assertEqual(st["latestExecution"]["status"], "Failed")
        self.assertIn("stopped while this action was running",
                      st["actionStates"][0]["latestExecution"]["errorDetails"]["message"])
        open(gate, "w").close()
        self.server.ok("RetryStageExecution", {"pipelineName": "K", "stageName": "Staging",
                                               "pipelineExecutionId": eid, "retryMode": "FAILED_ACTIONS"})
        self.assertEqual(wait_execution(self.server, "K", eid), "Succeeded")


if __name__ == "__main__":
    unittest.main()


class RollbackStage(harness.ServerTestCase):
    server_args = ("--no-start-on-create",)

    def make(self, name, on_failure=None):
        self.src = os.path.join(self.tmp, "src")
        self.target = os.path.join(self.tmp, "site")
        os.makedirs(self.src, exist_ok=True)
        p = pipeline(name, [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.src}, outputs=["Site"])]),
            ("Prod", [action("Publish", "Deploy", "Directory", config={"Path": self.target},
                             inputs=["Site"]),
                      commands("Verify", ["! grep -q bad %s/index.html" % self.target], run_order=2,
                               category="Test")])])
        if on_failure:
            p["stages"][1]["onFailure"] = on_failure
        self.server.ok("CreatePipeline", {"pipeline": p})

    def release(self, name, content):
        with open(os.path.join(self.src, "index.html"), "w") as f:
            f.write(content)
        eid = self.server.ok("StartPipelineExecution", {"name": name})["pipelineExecutionId"]
        return eid, wait_execution(self.server, name, eid)

    def site(self):
        with open(os.path.join(self.target, "index.html")) as f:
            return f.read()

    def test_manual_rollback_with_our_cli(self):
        self.make("RB")
        good, status = self.release("RB", "v1 good\n")
        self.assertEqual(status, "Succeeded")
        bad, status = self.release("RB", "v2 bad\n")
        self.assertEqual(status, "Failed")
        self.assertEqual(self.site(), "v2 bad\n")
        targets = pw(self.server, "list-pipeline-executions", "--pipeline-name", "RB",
                     "--filter", json.dumps({"succeededInStage": {"stageName": "Prod"}}))
        self.assertEqual(targets.code, 0, targets.stderr)
        self.assertEqual([s["pipelineExecutionId"] for s in targets.json()["pipelineExecutionSummaries"]],
                         [good])
        r = pw(self.server, "rollback-stage", "--pipeline-name", "RB", "--stage-name", "Prod",
               "--target-pipeline-execution-id", good)
        self.assertEqual(r.code, 0, r.stderr)
        rb = r.json()["pipelineExecutionId"]
        self.assertNotIn(rb, (good, bad))
        self.assertEqual(wait_execution(self.server, "RB", rb), "Succeeded")
        self.assertEqual(self.site(), "v1 good\n")
        pe = self.server.ok("GetPipelineExecution", {"pipelineName": "RB", "pipelineExecutionId": rb})
        self.assertEqual(pe["pipelineExecution"]["executionType"], "ROLLBACK")
        self.assertEqual(pe["pipelineExecution"]["rollbackMetadata"],
                         {"rollbackTargetPipelineExecutionId": good})
        self.assertEqual(pe["pipelineExecution"]["trigger"]["triggerType"], "ManualRollback")
        st = stage_state(self.server, "RB", "Prod")["latestExecution"]
        self.assertEqual((st["pipelineExecutionId"], st["type"]), (rb, "ROLLBACK"))
        # Refusals: the source stage, a target that failed there.
        status, err = self.server.call("RollbackStage", {"pipelineName": "RB", "stageName": "Source",
                                                         "targetPipelineExecutionId": good})
        self.assertEqual((status, err["__type"]), (400, "UnableToRollbackStageException"))
        status, err = self.server.call("RollbackStage", {"pipelineName": "RB", "stageName": "Prod",
                                                         "targetPipelineExecutionId": bad})
        self.assertEqual((status, err["__type"]), (400, "UnableToRollbackStageException"))

    def test_automatic_rollback_on_failure(self):
        self.make("AR", on_failure={"result": "ROLLBACK"})
        good, status = self.release("AR", "v1 good\n")
        self.assertEqual(status, "Succeeded")
        bad, status = self.release("AR", "v2 bad\n")
        self.assertEqual(status, "Failed")
        rb = wait_for(lambda: [s for s in self.server.ok("ListPipelineExecutions", {"pipelineName": "AR"})
                               ["pipelineExecutionSummaries"] if s.get("executionType") == "ROLLBACK"],
                      what="automatic rollback execution")[0]
        self.assertEqual(rb["trigger"]["triggerType"], "AutomatedRollback")
        self.assertEqual(rb["rollbackMetadata"]["rollbackTargetPipelineExecutionId"], good)
        self.assertEqual(wait_execution(self.server, "AR", rb["pipelineExecutionId"]), "Succeeded")
        self.assertEqual(self.site(), "v1 good\n")
