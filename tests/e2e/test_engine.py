"""End-to-end tests of the execution engine: a real `pipewright serve`, real
child processes, real git repositories, driven through our CLI (harness.pw),
Debian's AWS CLI (harness.aws) and the raw JSON API where neither CLI can send
what is needed.

Rule numbers refer to docs/semantics.md (shared/docs/semantics.md).

Synchronisation: never a sleep. Actions that must stay running block on a
"gate" file the test creates, and the test polls with harness.wait_for; every
gate loop also exits when the test's temporary directory disappears, so a
failed test cannot leave a shell spinning forever.
"""

import os
import shlex
import subprocess
import urllib.request
import unittest

import harness
from harness import action, aws, commands, pipeline, pw, stage_state, wait_for

GIT = "/usr/bin/git"
TERMINAL = ("Succeeded", "Failed", "Stopped", "Superseded", "Cancelled")


def wait_execution(server, name, execution_id, statuses=TERMINAL, timeout=20):
    """harness.wait_execution with a shorter deadline: every action here takes well under a
    second once its gate is open, so 20 s means stuck, and a stuck test should fail fast."""
    return harness.wait_execution(server, name, execution_id, statuses, timeout=timeout)


def git(repo, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="Pipewright Test", GIT_AUTHOR_EMAIL="test@example.com",
               GIT_COMMITTER_NAME="Pipewright Test", GIT_COMMITTER_EMAIL="test@example.com",
               GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_SYSTEM="/dev/null")
    return subprocess.run([GIT] + list(args), cwd=repo, check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def commit_files(repo, files, message):
    """Writes `files` ({relative path: text}) into `repo`, commits; returns the commit id."""
    for rel, text in files.items():
        path = os.path.join(repo, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def read(path):
    with open(path) as f:
        return f.read()


def pid_alive(pid):
    """True if `pid` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class EngineTestCase(harness.ServerTestCase):

    def setUp(self):
        super().setUp()
        self.gates = os.path.join(self.tmp, "gates")
        self.marks = os.path.join(self.tmp, "marks")
        os.makedirs(self.gates)
        os.makedirs(self.marks)
        self.src = os.path.join(self.tmp, "src")
        os.makedirs(self.src)
        with open(os.path.join(self.src, "input.txt"), "w") as f:
            f.write("directory source\n")

    def tearDown(self):
        # Release every gate still closed, so nothing keeps waiting.
        for name in os.listdir(self.marks) if os.path.isdir(self.marks) else ():
            if name.endswith(".started"):
                open(os.path.join(self.gates, name[:-len(".started")]), "w").close()
        super().tearDown()

    # -- shell snippets for actions -------------------------------------------
    def gate_cmds(self, key="$PIPEWRIGHT_EXECUTION_ID"):
        """Commands that mark `key` as started (marks/<key>.started, holding the shell's pid;
        renamed into place so it is never seen empty) and then wait until gates/<key> exists."""
        g, m = shlex.quote(self.gates), shlex.quote(self.marks)
        return ['echo $$ > %s/"%s.pid" && mv %s/"%s.pid" %s/"%s.started"' % (m, key, m, key, m, key),
                'while [ ! -e %s/"%s" ]; do [ -d %s ] || exit 97; sleep 0.05; done' % (g, key, g)]

    def started(self, key):
        return os.path.exists(os.path.join(self.marks, key + ".started"))

    def wait_started(self, key, timeout=20):
        wait_for(lambda: self.started(key), timeout=timeout, what="action gated on %s to start" % key)
        with open(os.path.join(self.marks, key + ".started")) as f:
            return int(f.read().strip())

    def release(self, key):
        open(os.path.join(self.gates, key), "w").close()

    # -- API helpers ------------------------------------------------------------
    def dir_source(self, name="Src", out="SourceOut"):
        return action(name, "Source", "Directory", config={"Path": self.src}, outputs=[out])

    def create_with(self, client, decl):
        path = self.write_json("create-%s.json" % decl["name"], {"pipeline": decl})
        r = client(self.server, "create-pipeline", "--cli-input-json", "file://" + path)
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual(r.json()["pipeline"]["name"], decl["name"])
        return self.executions(decl["name"])[-1]["pipelineExecutionId"]

    def executions(self, name):
        """All execution summaries, newest first."""
        return self.server.ok("ListPipelineExecutions",
                              {"pipelineName": name})["pipelineExecutionSummaries"]

    def execution(self, name, execution_id):
        return self.server.ok("GetPipelineExecution", {"pipelineName": name,
                                                       "pipelineExecutionId": execution_id})[
            "pipelineExecution"]

    def action_state(self, name, stage, act):
        for a in stage_state(self.server, name, stage)["actionStates"]:
            if a["actionName"] == act:
                return a
        raise AssertionError("no action %s/%s" % (stage, act))

    def action_executions(self, name, execution_id=None):
        body = {"pipelineName": name}
        if execution_id:
            body["filter"] = {"pipelineExecutionId": execution_id}
        return self.server.ok("ListActionExecutions", body)["actionExecutionDetails"]

    def page_through(self, pipeline, max_results):
        """Every ListActionExecutions page of `max_results`, concatenated."""
        got, token = [], None
        for _ in range(100):
            body = {"pipelineName": pipeline, "maxResults": max_results}
            if token:
                body["nextToken"] = token
            page = self.server.ok("ListActionExecutions", body)
            self.assertLessEqual(len(page["actionExecutionDetails"]), max_results)
            got += page["actionExecutionDetails"]
            token = page.get("nextToken")
            if not token:
                return got
        self.fail("ListActionExecutions kept returning a nextToken")

    def wait_action(self, name, stage, act, statuses, timeout=30):
        def probe():
            latest = self.action_state(name, stage, act).get("latestExecution")
            return latest if latest and latest["status"] in statuses else None
        return wait_for(probe, timeout=timeout, what="%s/%s to reach %s" % (stage, act, statuses))

    def start(self, name, client=pw):
        r = client(self.server, "start-pipeline-execution", "--name", name)
        self.assertEqual(r.code, 0, r.stderr)
        return r.json()["pipelineExecutionId"]

    def assertCliError(self, result, exception):
        self.assertNotEqual(result.code, 0, "expected %s, got success: %s" % (exception, result.stdout))
        self.assertIn("(%s)" % exception, result.stderr)

    def assertApiError(self, status_and_body, exception):
        status, body = status_and_body
        self.assertGreaterEqual(status, 400, body)
        self.assertIsInstance(body, dict, body)
        self.assertEqual(body.get("__type", "").split("#")[-1], exception, body)


# ---------------------------------------------------------------------------
class FlowTest(EngineTestCase):
    """Rules 7, 12, 13, 21, 25: a three-stage pipeline from a git repository."""

    def test_git_source_parallel_actions_and_deploy(self):
        repo = os.path.join(self.tmp, "repo")
        os.makedirs(repo)
        git(repo, "init", "-q", "-b", "main")
        commit1 = commit_files(repo, {"content.txt": "v1", "docs/readme.md": "hello"},
                               "Add content v1")
        deploy_dir = os.path.join(self.tmp, "deploy")
        stamps = os.path.join(self.tmp, "stamps")
        os.makedirs(stamps)
        st = shlex.quote(stamps)

        def parallel_member(me, other):
            # Records timestamps and the artifact content; waits (bounded) until its sibling has
            # started too, which only happens if both really run at the same time.
            return commands(me, [
                'date +%%s.%%N > %s/"$PIPEWRIGHT_EXECUTION_ID.%s.start"' % (st, me),
                'touch %s/"$PIPEWRIGHT_EXECUTION_ID.%s.running"' % (st, me),
                'i=0; while [ ! -e %s/"$PIPEWRIGHT_EXECUTION_ID.%s.running" ]; do '
                'i=$((i+1)); [ $i -lt 600 ] || { echo "%s never ran beside %s" >&2; exit 3; }; '
                'sleep 0.05; done' % (st, other, other, me),
                'echo "%s saw: $(cat content.txt)" > %s_seen.txt' % (me, me),
                'echo "LOG-MARKER-%s $PIPEWRIGHT_ACTION"' % me,
                'date +%%s.%%N > %s/"$PIPEWRIGHT_EXECUTION_ID.%s.end"' % (st, me),
            ], run_order=1, inputs=["SourceOut"], outputs=[me + "Out"])

        combine = commands("Combine", [
            'date +%%s.%%N > %s/"$PIPEWRIGHT_EXECUTION_ID.Combine.start"' % st,
            'cat A_seen.txt "$PIPEWRIGHT_INPUT_BOut/B_seen.txt" > combined.txt',
            'test "$(cat content.txt)" != "v2-broken"',
            'date +%%s.%%N > %s/"$PIPEWRIGHT_EXECUTION_ID.Combine.end"' % st,
        ], run_order=2, inputs=["AOut", "BOut"], outputs=["CombinedOut"])
        decl = pipeline("flow", [
            ("Source", [action("Checkout", "Source", "Git",
                               config={"RepositoryPath": repo, "BranchName": "main",
                                       "PollForSourceChanges": "false"},
                               outputs=["SourceOut"])]),
            ("Build", [parallel_member("A", "B"), parallel_member("B", "A"), combine]),
            ("Deploy", [action("Publish", "Deploy", "Directory", config={"Path": deploy_dir},
                               inputs=["CombinedOut"])]),
        ])
        run1 = self.create_with(pw, decl)
        self.assertEqual(wait_execution(self.server, "flow", run1), "Succeeded",
                         self.execution("flow", run1))

        # Artifacts flowed Source -> A/B -> Combine -> deploy directory.
        self.assertEqual(read(os.path.join(deploy_dir, "combined.txt")), "A saw: v1\nB saw: v1\n")
        self.assertEqual(read(os.path.join(deploy_dir, "content.txt")), "v1")
        self.assertEqual(read(os.path.join(deploy_dir, "docs", "readme.md")), "hello")

        # Order: A and B overlapped; both finished before Combine started; Source before Build,
        # Combine before Deploy.
        t = {}
        for n in os.listdir(stamps):
            if n.startswith(run1) and (n.endswith(".start") or n.endswith(".end")):
                t[n[len(run1) + 1:]] = float(read(os.path.join(stamps, n)))
        for key in ("A.start", "A.end", "B.start", "B.end", "Combine.start", "Combine.end"):
            self.assertIn(key, t)
        self.assertLess(max(t["A.start"], t["B.start"]), min(t["A.end"], t["B.end"]))
        self.assertLessEqual(max(t["A.end"], t["B.end"]), t["Combine.start"])
        details = {d["actionName"]: d for d in self.action_executions("flow", run1)}
        self.assertEqual(sorted(details), ["A", "B", "Checkout", "Combine", "Publish"])
        for d in details.values():
            self.assertEqual(d["status"], "Succeeded", d)
        slack = 0.01  # the server keeps milliseconds
        self.assertLessEqual(details["Checkout"]["lastUpdateTime"], min(t["A.start"], t["B.start"]) + slack)
        self.assertGreaterEqual(details["Publish"]["startTime"], t["Combine.end"] - slack)

        # Source revision: the commit id and message (get-pipeline-state via the AWS CLI).
        r = aws(self.server, "get-pipeline-state", "--name", "flow")
        self.assertEqual(r.code, 0, r.stderr)
        stages = {s["stageName"]: s for s in r.json()["stageStates"]}
        self.assertEqual([s["stageName"] for s in r.json()["stageStates"]], ["Source", "Build", "Deploy"])
        checkout = stages["Source"]["actionStates"][0]
        self.assertEqual(checkout["currentRevision"]["revisionId"], commit1)
        self.assertEqual(checkout["latestExecution"]["summary"], "Add content v1")
        for s in stages.values():
            self.assertEqual(s["latestExecution"]["pipelineExecutionId"], run1)
            self.assertEqual(s["latestExecution"]["status"], "Succeeded")

        # GetPipelineExecution: artifactRevisions (AWS CLI).
        r = aws(self.server, "get-pipeline-execution", "--pipeline-name", "flow",
                "--pipeline-execution-id", run1)
        self.assertEqual(r.code, 0, r.stderr)
        pe = r.json()["pipelineExecution"]
        self.assertEqual(pe["status"], "Succeeded")
        self.assertEqual(pe["pipelineVersion"], 1)
        self.assertEqual(len(pe["artifactRevisions"]), 1, pe)
        rev = pe["artifactRevisions"][0]
        self.assertEqual(rev["name"], "SourceOut")
        self.assertEqual(rev["revisionId"], commit1)
        self.assertEqual(rev["revisionSummary"], "Add content v1")
        # (awscli 2.9's model predates PipelineExecution.trigger: check it on the raw API.)
        self.assertEqual(self.execution("flow", run1)["trigger"]["triggerType"], "CreatePipeline")

        # The log URL serves the action's output.
        url = stages["Build"]["actionStates"][0]["latestExecution"].get("externalExecutionUrl")
        self.assertTrue(url, stages["Build"]["actionStates"][0])
        self.assertEqual(stages["Build"]["actionStates"][0]["actionName"], "A")
        with urllib.request.urlopen(url, timeout=10) as resp:
            self.assertEqual(resp.status, 200)
            self.assertIn("LOG-MARKER-A A", resp.read().decode())
        self.assertEqual(details["B"]["output"]["executionResult"].get("externalExecutionUrl"),
                         self.server.endpoint + "/logs/" + details["B"]["actionExecutionId"])
        with urllib.request.urlopen(details["B"]["output"]["executionResult"]["externalExecutionUrl"],
                                    timeout=10) as resp:
            self.assertIn("LOG-MARKER-B B", resp.read().decode())

        # Second run: a commit that makes Combine fail; Build fails, Deploy keeps v1.
        commit2 = commit_files(repo, {"content.txt": "v2-broken"}, "Break content")
        run2 = self.start("flow")
        self.assertNotEqual(run2, run1)
        self.assertEqual(wait_execution(self.server, "flow", run2), "Failed")
        self.assertEqual(read(os.path.join(deploy_dir, "content.txt")), "v1")
        self.assertEqual(self.action_state("flow", "Source", "Checkout")["currentRevision"]["revisionId"],
                         commit2)
        self.assertEqual(self.execution("flow", run2)["artifactRevisions"][0]["revisionId"], commit2)
        self.assertEqual(self.action_state("flow", "Build", "Combine")["latestExecution"]["status"], "Failed")
        self.assertEqual(stage_state(self.server, "flow", "Deploy")["latestExecution"]["pipelineExecutionId"],
                         run1)

        # ListPipelineExecutions: newest first; paging with maxResults 1.
        page1 = self.server.ok("ListPipelineExecutions", {"pipelineName": "flow", "maxResults": 1})
        self.assertEqual([e["pipelineExecutionId"] for e in page1["pipelineExecutionSummaries"]], [run2])
        self.assertIn("nextToken", page1)
        page2 = self.server.ok("ListPipelineExecutions", {"pipelineName": "flow", "maxResults": 1,
                                                          "nextToken": page1["nextToken"]})
        self.assertEqual([e["pipelineExecutionId"] for e in page2["pipelineExecutionSummaries"]], [run1])
        self.assertNotIn("nextToken", page2)
        summaries = {e["pipelineExecutionId"]: e for e in self.executions("flow")}
        self.assertEqual(summaries[run2]["sourceRevisions"][0]["revisionId"], commit2)
        self.assertEqual(summaries[run2]["sourceRevisions"][0]["revisionSummary"], "Break content")
        self.assertEqual(summaries[run2]["trigger"]["triggerType"], "StartPipelineExecution")
        # The AWS CLI pages through everything with --page-size 1.
        r = aws(self.server, "list-pipeline-executions", "--pipeline-name", "flow", "--page-size", "1")
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual([e["pipelineExecutionId"] for e in r.json()["pipelineExecutionSummaries"]],
                         [run2, run1])
        # succeededInStage (awscli 2.9 has no --filter here: raw API and our CLI).
        got = self.server.ok("ListPipelineExecutions", {"pipelineName": "flow",
                                                        "filter": {"succeededInStage": {"stageName": "Build"}}})
        self.assertEqual([e["pipelineExecutionId"] for e in got["pipelineExecutionSummaries"]], [run1])
        r = pw(self.server, "list-pipeline-executions", "--pipeline-name", "flow",
               "--filter", "succeededInStage={stageName=Deploy}")
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual([e["pipelineExecutionId"] for e in r.json()["pipelineExecutionSummaries"]], [run1])
        r = pw(self.server, "list-pipeline-executions", "--pipeline-name", "flow",
               "--filter", "succeededInStage={stageName=Source}")
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual([e["pipelineExecutionId"] for e in r.json()["pipelineExecutionSummaries"]],
                         [run2, run1])

        # ListActionExecutions: filter by execution, and paging.
        only2 = self.action_executions("flow", run2)
        self.assertEqual(sorted(d["actionName"] for d in only2), ["A", "B", "Checkout", "Combine"])
        self.assertTrue(all(d["pipelineExecutionId"] == run2 for d in only2))
        failed = [d for d in only2 if d["actionName"] == "Combine"][0]
        self.assertEqual(failed["status"], "Failed")
        paged = self.page_through("flow", 2)
        ids = [d["actionExecutionId"] for d in paged]
        self.assertEqual(len(ids), 9)  # 5 in run 1, 4 in run 2 (Deploy never ran)
        self.assertEqual(len(set(ids)), 9)
        self.assertEqual(set(ids), {d["actionExecutionId"] for d in self.action_executions("flow")})
        # One at a time, across the executions' boundary: the same order as one page. A
        # token goes on from its run's execution, read by id; a token naming only the run
        # (an older server's) still works; one naming an execution that is gone is refused.
        whole = self.server.ok("ListActionExecutions", {"pipelineName": "flow"})
        whole = [d["actionExecutionId"] for d in whole["actionExecutionDetails"]]
        self.assertEqual([d["actionExecutionId"] for d in self.page_through("flow", 1)], whole)
        token = lambda key: "pw1." + key.encode().hex()
        page = self.server.ok("ListActionExecutions", {"pipelineName": "flow", "maxResults": 2,
                                                       "nextToken": token(whole[4])})
        self.assertEqual([d["actionExecutionId"] for d in page["actionExecutionDetails"]], whole[5:7])
        status, out = self.server.call("ListActionExecutions", {
            "pipelineName": "flow", "nextToken": token("00000000-0000-4000-8000-000000000000/" + whole[4])})
        self.assertEqual((status, out.get("__type")), (400, "InvalidNextTokenException"), out)
        r = pw(self.server, "list-action-executions", "--pipeline-name", "flow",
               "--filter", "pipelineExecutionId=" + run1)
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual({d["actionExecutionId"] for d in r.json()["actionExecutionDetails"]},
                         {d["actionExecutionId"] for d in details.values()})


# ---------------------------------------------------------------------------
class ApprovalTest(EngineTestCase):
    """Rules 24, 71."""

    def approval_pipeline(self):
        return pipeline("appr", [
            ("Source", [self.dir_source()]),
            ("Gate", [action("Approve", "Approval", "Manual")]),
            ("After", [commands("Mark", ['touch %s/"$PIPEWRIGHT_EXECUTION_ID.after"'
                                         % shlex.quote(self.marks)], inputs=["SourceOut"])]),
        ])

    def wait_token(self, execution_id):
        def probe():
            s = stage_state(self.server, "appr", "Gate")
            latest = s["actionStates"][0].get("latestExecution") or {}
            if s.get("latestExecution", {}).get("pipelineExecutionId") == execution_id and latest.get("token"):
                return latest
            return None
        return wait_for(probe, what="an approval token for %s" % execution_id)

    def put(self, client, execution_id_token, status, summary="checked"):
        return client(self.server, "put-approval-result", "--pipeline-name", "appr",
                      "--stage-name", "Gate", "--action-name", "Approve",
                      "--result", "summary=%s,status=%s" % (summary, status),
                      "--token", execution_id_token)

    def test_approve_reject_and_token_errors(self):
        run1 = self.create_with(aws, self.approval_pipeline())
        latest = self.wait_token(run1)
        self.assertEqual(latest["status"], "InProgress")
        token1 = latest["token"]
        self.assertEqual(self.execution("appr", run1)["status"], "InProgress")

        # A wrong token while the approval is open.
        self.assertCliError(self.put(aws, "00000000-0000-0000-0000-000000000000", "Approved"),
                            "InvalidApprovalTokenException")
        self.assertEqual(self.action_state("appr", "Gate", "Approve")["latestExecution"]["status"],
                         "InProgress")

        r = self.put(aws, token1, "Approved", "looks good")
        self.assertEqual(r.code, 0, r.stderr)
        self.assertIn("approvedAt", r.json())
        self.assertEqual(wait_execution(self.server, "appr", run1), "Succeeded")
        approved = self.action_state("appr", "Gate", "Approve")["latestExecution"]
        self.assertEqual(approved["status"], "Succeeded")
        self.assertNotIn("token", approved)
        self.assertEqual(approved.get("summary"), "looks good")
        self.assertTrue(os.path.exists(os.path.join(self.marks, run1 + ".after")))

        # Answering the answered approval again (rule 71: already answered).
        self.assertCliError(self.put(pw, token1, "Rejected"), "ApprovalAlreadyCompletedException")
        self.assertEqual(self.execution("appr", run1)["status"], "Succeeded")

        # Second run: rejected -> action Failed, execution Failed, later stage never runs.
        run2 = self.start("appr", client=aws)
        token2 = self.wait_token(run2)["token"]
        self.assertNotEqual(token2, token1)
        r = self.put(pw, token2, "Rejected", "not today")
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual(wait_execution(self.server, "appr", run2), "Failed")
        rejected = self.action_state("appr", "Gate", "Approve")["latestExecution"]
        self.assertEqual(rejected["status"], "Failed")
        self.assertIn("errorDetails", rejected)
        self.assertEqual(stage_state(self.server, "appr", "Gate")["latestExecution"],
                         {"pipelineExecutionId": run2, "status": "Failed", "type": "STANDARD"})
        self.assertFalse(os.path.exists(os.path.join(self.marks, run2 + ".after")))
        self.assertNotIn("After", {d["stageName"] for d in self.action_executions("appr", run2)})
        self.assertCliError(self.put(aws, token2, "Approved"), "ApprovalAlreadyCompletedException")


# ---------------------------------------------------------------------------
class StopTest(EngineTestCase):
    """Rules 33-36, 38, 39."""

    def stop_pipeline(self):
        return pipeline("stopper", [
            ("Source", [self.dir_source()]),
            ("Build", [commands("Wait", self.gate_cmds() + ["echo finished > finished.txt"],
                                inputs=["SourceOut"], outputs=["WaitOut"]),
                       commands("Later", ['touch %s/"$PIPEWRIGHT_EXECUTION_ID.later"'
                                          % shlex.quote(self.marks)], run_order=2,
                                inputs=["WaitOut"])]),
            ("Ship", [commands("Ship", ['touch %s/"$PIPEWRIGHT_EXECUTION_ID.ship"'
                                        % shlex.quote(self.marks)], inputs=["SourceOut"])]),
        ])

    def test_stop_and_wait(self):
        run = self.create_with(pw, self.stop_pipeline())
        self.wait_started(run)
        self.wait_action("stopper", "Build", "Wait", ("InProgress",))

        r = pw(self.server, "stop-pipeline-execution", "--pipeline-name", "stopper",
               "--pipeline-execution-id", run, "--reason", "stop for test")
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual(r.json()["pipelineExecutionId"], run)
        # Stop and wait: Stopping while the running action continues.
        self.assertEqual(self.execution("stopper", run)["status"], "Stopping")
        self.assertEqual(stage_state(self.server, "stopper", "Build")["latestExecution"]["status"],
                         "Stopping")
        self.assertEqual(self.action_state("stopper", "Build", "Wait")["latestExecution"]["status"],
                         "InProgress")
        # A second stop-and-wait is a duplicate.
        self.assertCliError(aws(self.server, "stop-pipeline-execution", "--pipeline-name", "stopper",
                                "--pipeline-execution-id", run),
                            "DuplicatedStopRequestException")
        self.assertEqual(self.execution("stopper", run)["status"], "Stopping")

        self.release(run)
        self.assertEqual(wait_execution(self.server, "stopper", run), "Stopped")
        self.assertEqual(self.action_state("stopper", "Build", "Wait")["latestExecution"]["status"],
                         "Succeeded")
        self.assertEqual(stage_state(self.server, "stopper", "Build")["latestExecution"]["status"],
                         "Stopped")
        # Nothing after the running action started: not the next group, not the next stage.
        self.assertNotIn("latestExecution", self.action_state("stopper", "Build", "Later"))
        self.assertNotIn("latestExecution", stage_state(self.server, "stopper", "Ship"))
        self.assertFalse(os.path.exists(os.path.join(self.marks, run + ".later")))
        self.assertEqual(sorted(d["actionName"] for d in self.action_executions("stopper", run)),
                         ["Src", "Wait"])
        summary = [e for e in self.executions("stopper") if e["pipelineExecutionId"] == run][0]
        self.assertEqual(summary.get("stopTrigger", {}).get("reason"), "stop for test")

        # A finished execution cannot be stopped (either way).
        self.assertCliError(pw(self.server, "stop-pipeline-execution", "--pipeline-name", "stopper",
                               "--pipeline-execution-id", run),
                            "PipelineExecutionNotStoppableException")
        self.assertCliError(aws(self.server, "stop-pipeline-execution", "--pipeline-name", "stopper",
                                "--pipeline-execution-id", run, "--abandon"),
                            "PipelineExecutionNotStoppableException")

    def test_stop_and_abandon_kills_the_process(self):
        run = self.create_with(aws, self.stop_pipeline())
        pid = self.wait_started(run)
        self.assertTrue(pid_alive(pid))
        r = aws(self.server, "stop-pipeline-execution", "--pipeline-name", "stopper",
                "--pipeline-execution-id", run, "--abandon", "--reason", "abandon it")
        self.assertEqual(r.code, 0, r.stderr)
        # The gate is never opened: only the abandon can end this execution.
        self.assertEqual(wait_execution(self.server, "stopper", run, timeout=15), "Stopped")
        latest = self.action_state("stopper", "Build", "Wait")["latestExecution"]
        self.assertEqual(latest["status"], "Abandoned")
        self.assertEqual(stage_state(self.server, "stopper", "Build")["latestExecution"]["status"],
                         "Stopped")
        wait_for(lambda: not pid_alive(pid), timeout=15, what="abandoned action's shell %d to die" % pid)
        self.assertNotIn("latestExecution", self.action_state("stopper", "Build", "Later"))
        # A second abandon of the stopped execution.
        self.assertCliError(pw(self.server, "stop-pipeline-execution", "--pipeline-name", "stopper",
                               "--pipeline-execution-id", run, "--abandon"),
                            "PipelineExecutionNotStoppableException")
        # The stage unlocked: a new execution runs through it.
        run2 = self.start("stopper")
        self.wait_started(run2)
        self.release(run2)
        self.assertEqual(wait_execution(self.server, "stopper", run2), "Succeeded")

    def test_abandon_after_stop_and_wait_then_duplicate(self):
        run = self.create_with(pw, self.stop_pipeline())
        pid = self.wait_started(run)
        ok = self.server.call("StopPipelineExecution", {"pipelineName": "stopper",
                                                        "pipelineExecutionId": run})
        self.assertEqual(ok[0], 200, ok)
        # Rule 35: abandon on a Stopping (stop-and-wait) execution is allowed...
        ok = self.server.call("StopPipelineExecution", {"pipelineName": "stopper",
                                                        "pipelineExecutionId": run, "abandon": True})
        self.assertEqual(ok[0], 200, ok)
        # ...a second abandon is a duplicate (if it is still stopping) or not stoppable (if done).
        status, body = self.server.call("StopPipelineExecution", {
            "pipelineName": "stopper", "pipelineExecutionId": run, "abandon": True})
        self.assertGreaterEqual(status, 400, body)
        self.assertIn(body.get("__type", "").split("#")[-1],
                      ("DuplicatedStopRequestException", "PipelineExecutionNotStoppableException"))
        self.assertEqual(wait_execution(self.server, "stopper", run, timeout=15), "Stopped")
        self.assertEqual(self.action_state("stopper", "Build", "Wait")["latestExecution"]["status"],
                         "Abandoned")
        wait_for(lambda: not pid_alive(pid), timeout=15, what="shell %d to die" % pid)


# ---------------------------------------------------------------------------
class TransitionTest(EngineTestCase):
    """Rules 17, 26, 27, 31."""

    def test_disabled_transition_holds_then_enable_releases(self):
        decl = pipeline("trans", [
            ("Source", [self.dir_source()]),
            ("Build", [commands("Build", ['touch %s/"$PIPEWRIGHT_EXECUTION_ID.build"'
                                          % shlex.quote(self.marks)], inputs=["SourceOut"])]),
        ])
        run1 = self.create_with(pw, decl)
        self.assertEqual(wait_execution(self.server, "trans", run1), "Succeeded")
        self.assertEqual(stage_state(self.server, "trans", "Build")["inboundTransitionState"],
                         {"enabled": True})

        r = aws(self.server, "disable-stage-transition", "--pipeline-name", "trans",
                "--stage-name", "Build", "--transition-type", "Inbound",
                "--reason", "Held for review (test)")
        self.assertEqual(r.code, 0, r.stderr)
        run2 = self.start("trans", client=aws)

        def held():
            s = stage_state(self.server, "trans", "Build")
            inbound = s.get("inboundExecution")
            return s if inbound and inbound["pipelineExecutionId"] == run2 else None
        s = wait_for(held, what="run2 to wait in front of Build")
        self.assertEqual(s["inboundExecution"]["status"], "InProgress")
        ts = s["inboundTransitionState"]
        self.assertIs(ts["enabled"], False)
        self.assertEqual(ts["disabledReason"], "Held for review (test)")
        self.assertIn("lastChangedBy", ts)
        self.assertIn("lastChangedAt", ts)
        self.assertEqual(s["latestExecution"]["pipelineExecutionId"], run1)
        self.assertEqual(self.execution("trans", run2)["status"], "InProgress")
        self.assertFalse(os.path.exists(os.path.join(self.marks, run2 + ".build")))
        self.assertEqual(stage_state(self.server, "trans", "Source")["latestExecution"],
                         {"pipelineExecutionId": run2, "status": "Succeeded", "type": "STANDARD"})

        r = pw(self.server, "enable-stage-transition", "--pipeline-name", "trans",
               "--stage-name", "Build", "--transition-type", "Inbound")
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual(wait_execution(self.server, "trans", run2), "Succeeded")
        s = stage_state(self.server, "trans", "Build")
        self.assertEqual(s["latestExecution"]["pipelineExecutionId"], run2)
        self.assertNotIn("inboundExecution", s)
        self.assertIs(s["inboundTransitionState"]["enabled"], True)
        self.assertNotIn("disabledReason", s["inboundTransitionState"])
        self.assertTrue(os.path.exists(os.path.join(self.marks, run2 + ".build")))


# ---------------------------------------------------------------------------
class ExecutionModeTest(EngineTestCase):
    """Rules 16-19: SUPERSEDED and QUEUED with a locked stage."""

    def blocking_decl(self, name, **extra):
        st = shlex.quote(self.marks)
        return pipeline(name, [
            ("Source", [self.dir_source()]),
            ("Hold", [commands("Block", ['date +%%s.%%N > %s/"$PIPEWRIGHT_EXECUTION_ID.t0"' % st]
                               + self.gate_cmds()
                               + ['date +%%s.%%N > %s/"$PIPEWRIGHT_EXECUTION_ID.t1"' % st],
                               inputs=["SourceOut"])]),
        ], **extra)

    def stamp(self, execution_id, which):
        return float(read(os.path.join(self.marks, "%s.%s" % (execution_id, which))))

    def test_superseded(self):
        e1 = self.create_with(pw, self.blocking_decl("sup"))
        self.wait_started(e1)
        e2 = self.start("sup")
        wait_for(lambda: (stage_state(self.server, "sup", "Hold").get("inboundExecution") or {})
                 .get("pipelineExecutionId") == e2, what="e2 inbound")
        e3 = self.start("sup", client=aws)
        # The middle one is superseded while waiting; e1 keeps running in the stage.
        self.assertEqual(wait_execution(self.server, "sup", e2, statuses=TERMINAL), "Superseded")
        self.assertEqual(self.execution("sup", e1)["status"], "InProgress")
        s = stage_state(self.server, "sup", "Hold")
        self.assertEqual(s["inboundExecution"]["pipelineExecutionId"], e3)
        self.assertEqual(s["latestExecution"]["pipelineExecutionId"], e1)

        self.release(e1)
        self.assertEqual(wait_execution(self.server, "sup", e1), "Succeeded")
        self.wait_started(e3)
        self.release(e3)
        self.assertEqual(wait_execution(self.server, "sup", e3), "Succeeded")
        self.assertEqual(self.execution("sup", e2)["status"], "Superseded")
        self.assertFalse(self.started(e2))
        self.assertEqual([d["stageName"] for d in self.action_executions("sup", e2)], ["Source"])
        self.assertGreaterEqual(self.stamp(e3, "t0"), self.stamp(e1, "t1"))
        # Superseded executions cannot be retried (rules 18, 47, 48).
        status, body = self.server.call("RetryStageExecution", {
            "pipelineName": "sup", "stageName": "Hold", "pipelineExecutionId": e2,
            "retryMode": "FAILED_ACTIONS"})
        self.assertEqual(status, 400, body)
        self.assertIn(body.get("__type", "").split("#")[-1],
                      ("NotLatestPipelineExecutionException", "StageNotRetryableException"))

    def test_queued(self):
        decl = self.blocking_decl("queue", pipelineType="V2", executionMode="QUEUED")
        self.server.ok("CreatePipeline", {"pipeline": decl})
        got = self.server.ok("GetPipeline", {"name": "queue"})["pipeline"]
        self.assertEqual(got.get("executionMode"), "QUEUED")
        self.assertEqual(got.get("pipelineType"), "V2")
        e1 = self.executions("queue")[0]["pipelineExecutionId"]
        self.wait_started(e1)
        e2 = self.server.ok("StartPipelineExecution", {"name": "queue"})["pipelineExecutionId"]
        wait_for(lambda: (stage_state(self.server, "queue", "Hold").get("inboundExecution") or {})
                 .get("pipelineExecutionId") == e2, what="e2 inbound")
        e3 = self.server.ok("StartPipelineExecution", {"name": "queue"})["pipelineExecutionId"]
        s = wait_for(lambda: (lambda s: s if len(s.get("inboundExecutions", [])) == 2 else None)(
            stage_state(self.server, "queue", "Hold")), what="two queued executions")
        self.assertEqual([e["pipelineExecutionId"] for e in s["inboundExecutions"]], [e2, e3])
        self.assertEqual(s["inboundExecution"]["pipelineExecutionId"], e2)  # the next to enter
        for e in (e2, e3):
            self.assertEqual(self.execution("queue", e)["status"], "InProgress")

        self.release(e1)
        self.assertEqual(wait_execution(self.server, "queue", e1), "Succeeded")
        self.wait_started(e2)
        # e3 still waits: the stage is locked by e2.
        s = stage_state(self.server, "queue", "Hold")
        self.assertEqual(s["latestExecution"]["pipelineExecutionId"], e2)
        self.assertEqual(s["inboundExecution"]["pipelineExecutionId"], e3)
        self.assertFalse(self.started(e3))
        self.release(e2)
        self.assertEqual(wait_execution(self.server, "queue", e2), "Succeeded")
        self.wait_started(e3)
        self.release(e3)
        self.assertEqual(wait_execution(self.server, "queue", e3), "Succeeded")
        statuses = {e["pipelineExecutionId"]: e["status"] for e in self.executions("queue")}
        self.assertEqual(statuses, {e1: "Succeeded", e2: "Succeeded", e3: "Succeeded"})
        self.assertLessEqual(self.stamp(e1, "t1"), self.stamp(e2, "t0"))
        self.assertLessEqual(self.stamp(e2, "t1"), self.stamp(e3, "t0"))
        for e in self.executions("queue"):
            self.assertEqual(e["executionMode"], "QUEUED")


# ---------------------------------------------------------------------------
class CrashTest(EngineTestCase):
    """A server killed with SIGKILL: interrupted work fails visibly and can be retried;
    open approvals survive."""

    def test_kill9_during_commands_action_then_retry(self):
        decl = pipeline("crash", [
            ("Source", [self.dir_source()]),
            ("Build", [commands("Wait", self.gate_cmds("gate") + ["cat input.txt"],
                                inputs=["SourceOut"])]),
            ("Ship", [commands("Ship", ["true"], inputs=["SourceOut"])]),
        ])
        run = self.create_with(pw, decl)
        self.wait_started("gate")
        self.wait_action("crash", "Build", "Wait", ("InProgress",))
        self.server.kill9()
        self.server.start()

        latest = self.action_state("crash", "Build", "Wait")["latestExecution"]
        self.assertEqual(latest["status"], "Failed", latest)
        msg = latest.get("errorDetails", {}).get("message", "")
        self.assertRegex(msg.lower(), r"server.*(stopped|restart)", latest)
        self.assertEqual(self.execution("crash", run)["status"], "Failed")
        self.assertEqual(stage_state(self.server, "crash", "Build")["latestExecution"]["status"], "Failed")
        self.assertNotIn("latestExecution", stage_state(self.server, "crash", "Ship"))
        # The interrupted run's working directory (its input, what it wrote) is removed
        # once the restarted server has failed the run: nothing else would ever remove it.
        work = os.path.join(self.server.data_dir, "work", latest["actionExecutionId"])
        wait_for(lambda: not os.path.exists(work), timeout=30,
                 what="the interrupted run's working directory %s to be removed" % work)
        # Its log stays: it is the run's record.
        self.assertTrue(os.path.exists(os.path.join(
            self.server.data_dir, "logs", latest["actionExecutionId"] + ".log")))

        self.release("gate")
        r = aws(self.server, "retry-stage-execution", "--pipeline-name", "crash", "--stage-name", "Build",
                "--pipeline-execution-id", run, "--retry-mode", "FAILED_ACTIONS")
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual(r.json()["pipelineExecutionId"], run)
        self.assertEqual(wait_execution(self.server, "crash", run), "Succeeded")
        runs = [d for d in self.action_executions("crash", run) if d["actionName"] == "Wait"]
        self.assertEqual(sorted(d["status"] for d in runs), ["Failed", "Succeeded"])
        self.assertEqual(stage_state(self.server, "crash", "Build")["retryStageMetadata"],
                         {"manualStageRetryAttempt": 1, "latestRetryTrigger": "ManualStageRetry"})

    def test_kill9_with_open_approval(self):
        decl = pipeline("crashappr", [
            ("Source", [self.dir_source()]),
            ("Gate", [action("Approve", "Approval", "Manual")]),
        ])
        run = self.create_with(aws, decl)
        token = wait_for(lambda: (self.action_state("crashappr", "Gate", "Approve").get("latestExecution")
                                  or {}).get("token"), what="approval token")
        self.server.kill9()
        self.server.start()
        latest = self.action_state("crashappr", "Gate", "Approve")["latestExecution"]
        self.assertEqual(latest["status"], "InProgress")
        self.assertEqual(latest.get("token"), token)
        self.assertEqual(self.execution("crashappr", run)["status"], "InProgress")
        r = aws(self.server, "put-approval-result", "--pipeline-name", "crashappr", "--stage-name", "Gate",
                "--action-name", "Approve", "--result", "summary=after restart,status=Approved",
                "--token", token)
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual(wait_execution(self.server, "crashappr", run), "Succeeded")


# ---------------------------------------------------------------------------
class MiscTest(EngineTestCase):

    def test_client_request_token_is_idempotent(self):
        """Rule 14."""
        decl = pipeline("idem", [("Source", [self.dir_source()]),
                                 ("Build", [commands("B", ["true"], inputs=["SourceOut"])])])
        first = self.create_with(pw, decl)
        self.assertEqual(wait_execution(self.server, "idem", first), "Succeeded")
        a = self.server.ok("StartPipelineExecution", {"name": "idem", "clientRequestToken": "token-one"})
        b = self.server.ok("StartPipelineExecution", {"name": "idem", "clientRequestToken": "token-one"})
        self.assertEqual(a["pipelineExecutionId"], b["pipelineExecutionId"])
        c = self.server.ok("StartPipelineExecution", {"name": "idem", "clientRequestToken": "token-two"})
        self.assertNotEqual(c["pipelineExecutionId"], a["pipelineExecutionId"])
        ids = [e["pipelineExecutionId"] for e in self.executions("idem")]
        self.assertEqual(sorted(ids), sorted([first, a["pipelineExecutionId"], c["pipelineExecutionId"]]))
        for e in (a, c):
            wait_execution(self.server, "idem", e["pipelineExecutionId"])

    def test_update_pipeline_cancels_after_running_action(self):
        """Rules 29, 69."""
        marks = shlex.quote(self.marks)
        decl = pipeline("upd", [
            ("Source", [self.dir_source()]),
            ("Build", [commands("Wait", self.gate_cmds(), inputs=["SourceOut"]),
                       commands("Next", ['touch %s/"$PIPEWRIGHT_EXECUTION_ID.next"' % marks],
                                run_order=2, inputs=["SourceOut"])]),
        ])
        run1 = self.create_with(pw, decl)
        self.wait_started(run1)
        run2 = self.start("upd")
        wait_for(lambda: (stage_state(self.server, "upd", "Build").get("inboundExecution") or {})
                 .get("pipelineExecutionId") == run2, what="run2 inbound")

        decl["stages"][1]["actions"][1]["configuration"]["Commands"] = "echo changed"
        path = self.write_json("update.json", {"pipeline": decl})
        r = aws(self.server, "update-pipeline", "--cli-input-json", "file://" + path)
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual(r.json()["pipeline"]["version"], 2)

        # The running action completes; nothing else of run1 runs afterwards.
        self.assertEqual(self.execution("upd", run1)["status"], "InProgress")
        self.assertEqual(self.action_state("upd", "Build", "Wait")["latestExecution"]["status"], "InProgress")
        # Rule 29: the inbound execution fails.
        self.assertEqual(wait_execution(self.server, "upd", run2), "Failed")
        self.release(run1)
        self.assertEqual(wait_execution(self.server, "upd", run1), "Cancelled")
        self.assertEqual(self.action_state("upd", "Build", "Wait")["latestExecution"]["status"], "Succeeded")
        self.assertNotIn("latestExecution", self.action_state("upd", "Build", "Next"))
        self.assertFalse(os.path.exists(os.path.join(self.marks, run1 + ".next")))
        self.assertEqual(stage_state(self.server, "upd", "Build")["latestExecution"]["status"], "Cancelled")
        self.assertEqual(self.execution("upd", run1)["pipelineVersion"], 1)
        # The update starts nothing by itself.
        self.assertEqual(sorted(e["pipelineExecutionId"] for e in self.executions("upd")),
                         sorted([run1, run2]))

    def test_failing_command_error_details(self):
        decl = pipeline("fails", [
            ("Source", [self.dir_source()]),
            ("Build", [commands("Broken", ["echo step one", "test -f input.txt",
                                           "sh -c 'exit 7'", "echo never"], inputs=["SourceOut"])]),
        ])
        run = self.create_with(pw, decl)
        self.assertEqual(wait_execution(self.server, "fails", run), "Failed")
        r = pw(self.server, "get-pipeline-state", "--name", "fails")
        self.assertEqual(r.code, 0, r.stderr)
        build = [s for s in r.json()["stageStates"] if s["stageName"] == "Build"][0]
        latest = build["actionStates"][0]["latestExecution"]
        self.assertEqual(latest["status"], "Failed")
        msg = latest["errorDetails"]["message"]
        self.assertIn("sh -c 'exit 7'", msg)
        self.assertRegex(msg, r"\b7\b")
        self.assertIn("3", msg)  # command number
        self.assertNotIn("never", msg)
        self.assertEqual(build["latestExecution"]["status"], "Failed")
        detail = [d for d in self.action_executions("fails", run) if d["actionName"] == "Broken"][0]
        self.assertEqual(detail["output"]["executionResult"]["errorDetails"]["message"], msg)
        with urllib.request.urlopen(latest["externalExecutionUrl"], timeout=10) as resp:
            log = resp.read().decode()
        self.assertIn("step one", log)
        self.assertNotIn("never", log)


class SourcePolling(harness.ServerTestCase):
    server_args = ("--source-poll-interval", "1")

    def test_a_new_commit_starts_an_execution(self):
        repo = os.path.join(self.tmp, "repo")
        os.makedirs(repo)
        git(repo, "init", "-q", "-b", "main")
        first = commit_files(repo, {"app.txt": "v1\n"}, "first")
        self.server.ok("CreatePipeline", {"pipeline": pipeline("Poll", [
            ("Source", [action("Git", "Source", "Git", config={"RepositoryPath": repo},
                               outputs=["Src"])]),
            ("Build", [commands("Show", ["cat app.txt"], inputs=["Src"])])])})
        created = wait_for(lambda: self.server.ok("ListPipelineExecutions", {"pipelineName": "Poll"})
                           ["pipelineExecutionSummaries"], what="first execution")[0]
        self.assertEqual(wait_execution(self.server, "Poll", created["pipelineExecutionId"]),
                         "Succeeded")
        self.assertEqual(created["trigger"]["triggerType"], "CreatePipeline")
        second = commit_files(repo, {"app.txt": "v2\n"}, "second change")
        polled = wait_for(lambda: [s for s in self.server.ok("ListPipelineExecutions", {
            "pipelineName": "Poll"})["pipelineExecutionSummaries"]
            if s["trigger"]["triggerType"] == "PollForSourceChanges"], timeout=30,
            what="an execution started by the poller")
        self.assertEqual(len(polled), 1)
        eid = polled[0]["pipelineExecutionId"]
        self.assertEqual(wait_execution(self.server, "Poll", eid), "Succeeded")
        revs = self.server.ok("ListPipelineExecutions", {"pipelineName": "Poll"})
        summary = [s for s in revs["pipelineExecutionSummaries"] if s["pipelineExecutionId"] == eid][0]
        self.assertEqual(summary["sourceRevisions"][0]["revisionId"], second)
        self.assertNotEqual(first, second)


class ApprovalTimeout(harness.ServerTestCase):
    server_args = ("--approval-timeout", "1")

    def test_an_unanswered_approval_fails(self):
        self.server.ok("CreatePipeline", {"pipeline": pipeline("T", [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.tmp},
                               outputs=["A"])]),
            ("Gate", [action("Approve", "Approval", "Manual")])])})
        eid = wait_for(lambda: self.server.ok("ListPipelineExecutions", {"pipelineName": "T"})
                       ["pipelineExecutionSummaries"])[0]["pipelineExecutionId"]
        self.assertEqual(wait_execution(self.server, "T", eid), "Failed")
        st = stage_state(self.server, "T", "Gate")["actionStates"][0]["latestExecution"]
        self.assertEqual(st["status"], "Failed")
        self.assertIn("timed out", st["errorDetails"]["message"])


if __name__ == "__main__":
    unittest.main()
