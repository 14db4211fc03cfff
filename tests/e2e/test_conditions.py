"""Stage conditions (semantics.md rules 62-64): beforeEntry FAIL/SKIP,
onSuccess FAIL/ROLLBACK, DeploymentWindow waiting and OverrideStageCondition,
Commands rules, ListRuleExecutions, ListRuleTypes, refusals at CreatePipeline,
and a waiting condition surviving a restart."""

import os
import unittest

import harness
from harness import action, aws_newest, commands, pipeline, stage_state, wait_execution, wait_for


def rule(name, provider, config=None, **extra):
    r = {"name": name, "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": provider,
                                      "version": "1"},
         "configuration": config or {}}
    r.update(extra)
    return r


GATE_OPEN = rule("GateOpen", "VariableCheck",
                 {"Variable": "#{variables.gate}", "Value": "open", "Operator": "EQ"})
NEVER = "* * * ? * * 2199"  # A window that is closed until 2199.


class Conditions(harness.ServerTestCase):
    server_args = ("--no-start-on-create",)

    def make(self, name, deploy_extra, verify=True):
        """Source -> Deploy{D: touches deployed-<n>} [-> Verify{V}], V2, variable gate=closed."""
        src = os.path.join(self.tmp, "src")
        os.makedirs(src, exist_ok=True)
        deploy = {"name": "Deploy",
                  "actions": [commands("D", ["touch %s/deployed-$(date +%%s%%N)" % self.tmp])]}
        deploy.update(deploy_extra)
        stages = [("Source", [action("S", "Source", "Directory", config={"Path": src},
                                     outputs=["Src"])])]
        p = pipeline(name, stages + ([("Verify", [commands("V", ["true"])])] if verify else []),
                     pipelineType="V2", variables=[{"name": "gate", "defaultValue": "closed"}])
        p["stages"].insert(1, deploy)
        self.server.ok("CreatePipeline", {"pipeline": p})

    def start(self, name, gate="closed"):
        return self.server.ok("StartPipelineExecution", {
            "name": name, "variables": [{"name": "gate", "value": gate}]})["pipelineExecutionId"]

    def deployed(self):
        return len([f for f in os.listdir(self.tmp) if f.startswith("deployed-")])

    def test_before_entry_fail_stops_the_stage_and_open_gate_passes(self):
        self.make("Gate", {"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [GATE_OPEN]}]}})
        closed = self.start("Gate", "closed")
        self.assertEqual(wait_execution(self.server, "Gate", closed), "Failed")
        st = stage_state(self.server, "Gate", "Deploy")
        self.assertEqual(st["latestExecution"]["status"], "Failed")
        cond = st["beforeEntryConditionState"]
        self.assertEqual(cond["latestExecution"]["status"], "Failed")
        rs = cond["conditionStates"][0]["ruleStates"][0]
        self.assertEqual((rs["ruleName"], rs["latestExecution"]["status"]), ("GateOpen", "Failed"))
        self.assertIn("'closed' EQ 'open'", rs["latestExecution"]["summary"])
        self.assertNotIn("latestExecution", st["actionStates"][0])  # D never ran.
        self.assertEqual(self.deployed(), 0)

        opened = self.start("Gate", "open")
        self.assertEqual(wait_execution(self.server, "Gate", opened), "Succeeded")
        self.assertEqual(self.deployed(), 1)
        self.assertEqual(stage_state(self.server, "Gate", "Deploy")["beforeEntryConditionState"]
                         ["latestExecution"]["status"], "Succeeded")

#ListRuleExecutions shows each evaluation, newest first; filters and paging.
        out = aws_newest(self.server, "list-rule-executions", "--pipeline-name", "Gate")
        self.assertEqual(out.code, 0, out.stderr)
        details = out.json()["ruleExecutionDetails"]
        self.assertEqual([(d["pipelineExecutionId"], d["status"]) for d in details],
                         [(opened, "Succeeded"), (closed, "Failed")])
        self.assertEqual(details[1]["input"]["resolvedConfiguration"]["Variable"], "closed")
        self.assertEqual(details[1]["input"]["configuration"]["Variable"], "#{variables.gate}")
        self.assertEqual(details[1]["input"]["ruleTypeId"]["provider"], "VariableCheck")
        page = self.server.ok("ListRuleExecutions", {"pipelineName": "Gate", "maxResults": 1})
        self.assertEqual(len(page["ruleExecutionDetails"]), 1)
        rest = self.server.ok("ListRuleExecutions", {"pipelineName": "Gate",
                                                     "nextToken": page["nextToken"]})
        self.assertEqual(rest["ruleExecutionDetails"][0]["pipelineExecutionId"], closed)
        self.assertNotIn("nextToken", rest)
#A token is a position (start time and id); anything else is refused, not taken as "from the top".
        for token in ("pw1." + "ab" * 8, "pw1.7c61", "nonsense", "pw1." + b"nan|x".hex(),
                      "pw1." + b"inf|x".hex(), "pw1." + b"1|".hex()):
            bad = self.server.call("ListRuleExecutions", {"pipelineName": "Gate",
                                                          "nextToken": token})
            self.assertEqual(bad[1]["__type"], "InvalidNextTokenException", token)
        only = self.server.ok("ListRuleExecutions", {"pipelineName": "Gate",
                                                     "filter": {"pipelineExecutionId": closed}})
        self.assertEqual(len(only["ruleExecutionDetails"]), 1)

#A succeeded stage has nothing to retry(test_open_window_... retries an entry failure).
        retry = self.server.call("RetryStageExecution", {
            "pipelineName": "Gate", "stageName": "Deploy", "pipelineExecutionId": opened,
            "retryMode": "FAILED_ACTIONS"})
        self.assertEqual(retry[1]["__type"], "StageNotRetryableException")

    def test_skip_gives_skipped_and_the_execution_succeeds(self):
        self.make("Skip", {"beforeEntry": {"conditions": [{"result": "SKIP", "rules": [GATE_OPEN]}]}})
        eid = self.start("Skip", "closed")
        self.assertEqual(wait_execution(self.server, "Skip", eid), "Succeeded")
        st = stage_state(self.server, "Skip", "Deploy")
        self.assertEqual(st["latestExecution"]["status"], "Skipped")
        self.assertNotIn("latestExecution", st["actionStates"][0])
        self.assertEqual(self.deployed(), 0)
        self.assertEqual(stage_state(self.server, "Skip", "Verify")["latestExecution"]["status"],
                         "Succeeded")
        out = aws_newest(self.server, "override-stage-condition", "--pipeline-name", "Skip",
                         "--stage-name", "Deploy", "--pipeline-execution-id", eid,
                         "--condition-type", "BEFORE_ENTRY")
        self.assertNotEqual(out.code, 0)
        self.assertIn("ConditionNotOverridableException", out.stderr)

    def test_closed_deployment_window_waits_survives_a_restart_and_override_lets_it_through(self):
        window = rule("Window", "DeploymentWindow", {"Cron": NEVER, "TimeZone": "Europe/Berlin"})
        self.make("Win", {"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [window]}]}})
        eid = self.start("Win")

        def waiting():
            st = stage_state(self.server, "Win", "Deploy")
            c = st.get("beforeEntryConditionState", {}).get("conditionStates", [{}])[0]
            rs = c.get("ruleStates", [{}])[0].get("latestExecution", {})
            return st if rs.get("status") == "InProgress" else None
        st = wait_for(waiting, what="the window rule to wait")
        self.assertEqual(st["latestExecution"]["status"], "InProgress")
        self.assertIn("Waiting for the deployment window",
                      st["beforeEntryConditionState"]["conditionStates"][0]["ruleStates"][0]
                      ["latestExecution"]["summary"])
        self.server.restart()  # Persisted: still waiting after a restart.
        st = wait_for(waiting, what="the window rule to wait after the restart")
        self.assertEqual(self.deployed(), 0)
        out = aws_newest(self.server, "override-stage-condition", "--pipeline-name", "Win",
                         "--stage-name", "Deploy", "--pipeline-execution-id", eid,
                         "--condition-type", "BEFORE_ENTRY")
        self.assertEqual(out.code, 0, out.stderr)
        self.assertEqual(wait_execution(self.server, "Win", eid), "Succeeded")
        self.assertEqual(self.deployed(), 1)
        cond = stage_state(self.server, "Win", "Deploy")["beforeEntryConditionState"]
        self.assertEqual(cond["latestExecution"]["status"], "Overridden")
        self.assertEqual(cond["conditionStates"][0]["ruleStates"][0]["latestExecution"]["status"],
                         "Abandoned")
#Nothing left to override now.
        status, err = self.server.call("OverrideStageCondition", {
            "pipelineName": "Win", "stageName": "Deploy", "pipelineExecutionId": eid,
            "conditionType": "BEFORE_ENTRY"})
        self.assertEqual((status, err["__type"]), (400, "ConditionNotOverridableException"))

    def test_open_window_and_commands_rule_pass(self):
        flag = os.path.join(self.tmp, "allow")
        check = rule("Check", "Commands", commands=["test -f %s" % flag])
        window = rule("Window", "DeploymentWindow", {"Cron": "* * * ? * *"})
        self.make("Cmd", {"beforeEntry": {"conditions": [{"result": "FAIL",
                                                          "rules": [window, check]}]}},
                  verify=False)
        first = self.start("Cmd")
        self.assertEqual(wait_execution(self.server, "Cmd", first), "Failed")
        rules = self.server.ok("ListRuleExecutions", {"pipelineName": "Cmd"})["ruleExecutionDetails"]
        by_rule = {d["ruleName"]: d["status"] for d in rules}
        self.assertEqual(by_rule["Check"], "Failed")
#The first failed rule abandons the others; the window is usually decided first.
        self.assertIn(by_rule["Window"], ("Succeeded", "Abandoned"))
        open(flag, "w").close()
        self.server.ok("RetryStageExecution", {"pipelineName": "Cmd", "stageName": "Deploy",
                                               "pipelineExecutionId": first,
                                               "retryMode": "FAILED_ACTIONS"})
        self.assertEqual(wait_execution(self.server, "Cmd", first), "Succeeded")
        self.assertEqual(self.deployed(), 1)
        latest = self.server.ok("ListRuleExecutions", {
            "pipelineName": "Cmd", "filter": {"latestInPipelineExecution": {
                "pipelineExecutionId": first, "startTimeRange": "Latest"}}})["ruleExecutionDetails"]
        self.assertEqual(sorted((d["ruleName"], d["status"]) for d in latest),
                         [("Check", "Succeeded"), ("Window", "Succeeded")])

    def test_on_success_fail_and_rollback(self):
        self.make("OnFail", {"onSuccess": {"conditions": [{"result": "FAIL", "rules": [GATE_OPEN]}]}})
        eid = self.start("OnFail", "closed")
        self.assertEqual(wait_execution(self.server, "OnFail", eid), "Failed")
        st = stage_state(self.server, "OnFail", "Deploy")
        self.assertEqual(st["actionStates"][0]["latestExecution"]["status"], "Succeeded")
        self.assertEqual(st["onSuccessConditionState"]["latestExecution"]["status"], "Failed")
        self.assertNotIn("latestExecution", stage_state(self.server, "OnFail", "Verify"))

        self.make("OnRb", {"onSuccess": {"conditions": [{"result": "ROLLBACK", "rules": [GATE_OPEN]}]}})
        good = self.start("OnRb", "open")
        self.assertEqual(wait_execution(self.server, "OnRb", good), "Succeeded")
        bad = self.start("OnRb", "closed")
        self.assertEqual(wait_execution(self.server, "OnRb", bad), "Failed")

        def rollback():
            for s in self.server.ok("ListPipelineExecutions",
                                    {"pipelineName": "OnRb"})["pipelineExecutionSummaries"]:
                if s.get("executionType") == "ROLLBACK":
                    return s
        rb = wait_for(rollback, what="the automatic rollback")
        self.assertEqual(rb["rollbackMetadata"]["rollbackTargetPipelineExecutionId"], good)
        self.assertEqual(wait_execution(self.server, "OnRb", rb["pipelineExecutionId"]), "Succeeded")

    def test_worker_rule_waits_for_a_worker_and_invalid_declarations_are_refused(self):
        alarm = rule("Alarm", "CloudWatchAlarm", {"AlarmName": "errors"})
        self.make("Alarm", {"onSuccess": {"conditions": [{"result": "FAIL", "rules": [alarm]}]}})
        eid = self.start("Alarm", "open")

        def waiting():
            st = stage_state(self.server, "Alarm", "Deploy").get("onSuccessConditionState", {})
            rs = st.get("conditionStates", [{}])[0].get("ruleStates", [{}])[0]
            return rs.get("latestExecution", {}).get("summary")
        self.assertIn("pipewright worker", wait_for(waiting, what="the waiting-for-a-worker summary"))
        self.server.ok("StopPipelineExecution", {"pipelineName": "Alarm", "pipelineExecutionId": eid,
                                                 "abandon": True})
        self.assertEqual(wait_execution(self.server, "Alarm", eid), "Stopped")

        base = pipeline("Bad", [("Source", [action("S", "Source", "Directory",
                                                   config={"Path": self.tmp}, outputs=["Src"])]),
                                ("Deploy", [commands("D", ["true"])])], pipelineType="V2")
        cases = [
            ({"beforeEntry": {"conditions": [{"result": "ROLLBACK", "rules": [GATE_OPEN]}]}},
             "InvalidStageDeclarationException", "FAIL or SKIP"),
            ({"beforeEntry": {"conditions": [{"result": "SKIP", "rules": [
                rule("C", "Commands", commands=["true"])]}]}},
             "InvalidStageDeclarationException", "VariableCheck or LambdaInvoke"),
            ({"onSuccess": {"conditions": [{"result": "FAIL", "rules": [rule("X", "Nope")]}]}},
             "InvalidStageDeclarationException", "ListRuleTypes"),
            ({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [
                rule("W", "DeploymentWindow", {"Cron": "* * 25 ? * *"})]}]}},
             "InvalidStageDeclarationException", "hours"),
            ({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [
                rule("W", "DeploymentWindow", {"Cron": "* * * ? * *", "TimeZone": "Mars/Base"})]}]}},
             "InvalidStageDeclarationException", "Mars/Base"),
            ({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [
                rule("V", "VariableCheck", {"Variable": "a", "Value": "b", "Operator": "GT"})]}]}},
             "InvalidStageDeclarationException", "EQ, NE, CONTAINS, MATCHES"),
            ({"onFailure": {"result": "RETRY", "conditions": [{"rules": [GATE_OPEN]}]}},
             "InvalidStageDeclarationException", "automatic retry"),
        ]
        for extra, code, words in cases:
            p = dict(base)
            p["stages"] = [dict(s) for s in base["stages"]]
            p["stages"][1].update(extra)
            status, err = self.server.call("CreatePipeline", {"pipeline": p})
            self.assertEqual((status, err.get("__type")), (400, code), (extra, err))
            self.assertIn(words, err["message"])

    def test_list_rule_types(self):
        out = aws_newest(self.server, "list-rule-types")
        self.assertEqual(out.code, 0, out.stderr)
        types = {t["id"]["provider"]: t for t in out.json()["ruleTypes"]}
        self.assertEqual(sorted(types), ["CloudWatchAlarm", "Commands", "DeploymentWindow",
                                         "LambdaInvoke", "VariableCheck"])
        props = {p["name"]: p for p in types["VariableCheck"]["ruleConfigurationProperties"]}
        self.assertTrue(props["Operator"]["required"])
        self.assertEqual(self.server.ok("ListRuleTypes", {"regionFilter": "eu-west-1"})["ruleTypes"], [])
        self.assertEqual(len(self.server.ok("ListRuleTypes", {"ruleOwnerFilter": "AWS"})["ruleTypes"]), 5)


if __name__ == "__main__":
    unittest.main()
