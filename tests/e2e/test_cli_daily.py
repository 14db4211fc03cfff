"""The CLI in daily use (issue 16), against a real server: --version and
--help, the connection hint, --output text|table and --query compared with
Debian's aws CLI on the same responses, --wait that shows every transition
and prints the retry command that then works, retry-stage-execution --wait,
--dry-run's exit status, logs naming the failed command, `status`, and the
refusal of a relative Path.
"""

import json
import os
import re
import socket
import subprocess
import unittest

from harness import (PIPEWRIGHT, ServerTestCase, _env, action, aws_newest, commands, pipeline, pw,
                     stage_state, wait_for)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CliBasicsTest(unittest.TestCase):

    def run_pw(self, *args):
        return subprocess.run([PIPEWRIGHT] + list(args), capture_output=True, text=True,
                              env=_env(), timeout=120)

    def test_version_and_help(self):
        v = self.run_pw("--version")
        self.assertEqual(v.returncode, 0)
        self.assertRegex(v.stdout, r"^pipewright \d+\.\d+\.\d+ \(\S+\)\n$")
        h = self.run_pw("--help")
        self.assertEqual(h.returncode, 0)
        lines = h.stdout.splitlines()
        # Pipewright's verbs first, then every model operation with a description.
        self.assertLess(h.stdout.index("\n  serve "), h.stdout.index("\n  acknowledge-job "))
        for verb in ("serve", "worker", "status", "logs", "get-stage-retry-plan",
                     "retry-stage-execution --wait", "retry-stage-execution --dry-run"):
            self.assertTrue(any(l.startswith("  " + verb + " ") for l in lines), verb)
        first = lines.index("CodePipeline commands (as `aws codepipeline`):") + 1
        ops = lines[first:lines.index("", first)]
        self.assertGreaterEqual(len(ops), 44)
        for line in ops:
            self.assertRegex(line, r"^  [a-z-]+ +\S.*\.$", "a one-line description per operation")

    def test_could_not_connect_says_how_to_start_a_server(self):
        url = "http://127.0.0.1:%d" % free_port()
        r = self.run_pw("list-pipelines", "--endpoint-url", url, "--cli-connect-timeout", "2")
        self.assertEqual(r.returncode, 255)
        self.assertIn('Could not connect to the endpoint URL: "%s/"' % url, r.stderr)
        self.assertIn("pipewright serve", r.stderr)
        self.assertIn("PIPEWRIGHT_ENDPOINT", r.stderr)

    def test_bad_query_and_output_are_parameter_errors(self):
        r = self.run_pw("list-pipelines", "--query", "pipelines[?name==", "--endpoint-url",
                        "http://127.0.0.1:1")
        self.assertEqual(r.returncode, 252)
        self.assertIn("Bad value for --query pipelines[?name==: syntax:", r.stderr)
        r = self.run_pw("list-pipelines", "--output", "yaml")
        self.assertEqual(r.returncode, 252)
        self.assertIn("json | text | table", r.stderr)
        r = self.run_pw("logs", "--pipeline-name", "p", "--action-name", "a", "--output", "text")
        self.assertEqual(r.returncode, 252)
        self.assertIn("--output and --query do not apply", r.stderr)


class CliDailyTest(ServerTestCase):

    def setUp(self):
        super().setUp()
        self.src = os.path.join(self.tmp, "src")
        os.makedirs(self.src)
        with open(os.path.join(self.src, "run.sh"), "w") as f:
            f.write('echo "hello"\n')
        self.note = os.path.join(self.tmp, "note.txt")

    def create(self, name="daily", extra_stage_actions=None):
        stages = [
            ("Source", [action("Source", "Source", "Directory", config={"Path": self.src},
                               outputs=["Src"])]),
            ("Staging", [commands("Build", ["sh run.sh > out.txt", "cat out.txt"],
                                  inputs=["Src"], outputs=["Built"]),
                         commands("Check", ["grep hello out.txt", "test -f " + self.note],
                                  run_order=2, inputs=["Built"], category="Test")]
             + (extra_stage_actions or [])),
        ]
        path = self.write_json(name + ".json", pipeline(name, stages))
        r = pw(self.server, "create-pipeline", "--pipeline", "file://" + path)
        self.assertEqual(r.code, 0, r.stderr)

    def wait_staging(self, name, status):
        return wait_for(lambda: (stage_state(self.server, name, "Staging").get("latestExecution")
                                 or {}).get("status") == status,
                        timeout=60, what="Staging " + status)

    def test_output_and_query_as_the_aws_cli(self):
        self.create()
        self.wait_staging("daily", "Failed")
        # Each aws run costs a Python start-up (seconds on a loaded machine): a few that cover
        # nested structures, lists, projections, filters, functions and scalars.
        for args, outputs in (
                (["get-pipeline-state", "--name", "daily"], ("json", "text", "table")),
                (["list-action-executions", "--pipeline-name", "daily"], ("text", "table")),
                (["get-pipeline", "--name", "daily", "--query",
                  "pipeline.stages[].actions[].{name: name, provider: actionTypeId.provider}"],
                 ("json", "table")),
                (["list-action-executions", "--pipeline-name", "daily", "--query",
                  "sort_by(actionExecutionDetails, &actionName)[?status=='Failed']"
                  ".[actionName, status, output.executionResult.errorDetails.message]"],
                 ("text",)),
                (["get-pipeline-state", "--name", "daily", "--query",
                  "length(stageStates[?latestExecution.status=='Failed'])"], ("json",))):
            for output in outputs:
                ours = pw(self.server, *args, "--output", output)
                # Debian's aws 2.9 with the repository's model: the same members to show.
                theirs = aws_newest(self.server, *args, "--output", output)
                self.assertEqual(theirs.code, 0, theirs.stderr)
                self.assertEqual(ours.code, 0, ours.stderr)
                self.assertEqual(ours.stdout, theirs.stdout, "%s --output %s" % (args, output))
        # A query that fails while evaluating (a function given the wrong type).
        r = pw(self.server, "list-pipelines", "--query", "length(`1`)")
        self.assertEqual(r.code, 255)
        self.assertIn("invalid-type", r.stderr)

    def test_wait_shows_each_transition_and_the_retry_command_that_works(self):
        path = self.write_json("p.json", pipeline("waited", [
            ("Source", [action("Source", "Source", "Directory", config={"Path": self.src},
                               outputs=["Src"])]),
            ("Staging", [commands("Check", ["test -f " + self.note], inputs=["Src"],
                                  category="Test")])]))
        env = {"PIPEWRIGHT_ENDPOINT": self.server.endpoint}
        with open(path) as f:
            self.server.ok("CreatePipeline", {"pipeline": json.load(f)})
        # create starts an execution; wait for it, then start ours and follow it.
        wait_for(lambda: not any(
            e["status"] == "InProgress" for e in self.server.ok(
                "ListPipelineExecutions", {"pipelineName": "waited"})["pipelineExecutionSummaries"]),
            timeout=60, what="the first execution to end")
        r = pw(self.server, "start-pipeline-execution", "--name", "waited", "--wait", env=env)
        self.assertEqual(r.code, 1, r.stdout + r.stderr)
        lines = [l.split() for l in r.stdout.splitlines() if not l.startswith(("{", "}", " "))]
        # Every stage and action goes InProgress before it ends, even if it ended between polls.
        for label, end in (("Source", "Succeeded"), ("Source/Source", "Succeeded"),
                           ("Staging/Check", "Failed"), ("Staging", "Failed")):
            self.assertIn([label, "InProgress"], lines, r.stdout)
            self.assertIn([label, end], lines, r.stdout)
            self.assertLess(lines.index([label, "InProgress"]), lines.index([label, end]))
        self.assertEqual(lines[-1], ["Execution", "Failed"])
        self.assertIn("Staging/Check failed: Command 1 (test -f %s) exited with code 1." % self.note,
                      r.stderr)
        retry = re.search(r"^  (pipewright retry-stage-execution .*)$", r.stderr, re.M)
        self.assertIsNotNone(retry, r.stderr)
        self.assertIn("--retry-mode FAILED_ACTIONS --wait", retry.group(1))
        # The printed command, run as printed once the cause is fixed, retries and waits.
        open(self.note, "w").close()
        argv = retry.group(1).split()
        done = subprocess.run([PIPEWRIGHT] + argv[1:], capture_output=True, text=True,
                              env=dict(_env(), **env), timeout=120)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertRegex(done.stdout, r"Staging +InProgress\n")
        self.assertRegex(done.stdout, r"Staging/Check \(attempt 2\) +InProgress\n")
        self.assertRegex(done.stdout, r"Staging/Check \(attempt 2\) +Succeeded\n")
        self.assertRegex(done.stdout, r"Execution +Succeeded\n$")
        # Only what the retry changed: the Source stage it did not rerun is not shown.
        self.assertNotIn("Source", done.stdout.split("}\n", 1)[1])

    def test_dry_run_exit_status_and_logs_of_a_failed_attempt(self):
        self.create()
        self.wait_staging("daily", "Failed")
        base = ["retry-stage-execution", "--pipeline-name", "daily", "--stage-name", "Staging",
                "--retry-mode", "FAILED_ACTIONS", "--latest", "--dry-run"]
        ok = pw(self.server, *base)
        self.assertEqual(ok.code, 0, ok.stderr)
        self.assertEqual(ok.json()["retryable"], True)
        # The Source stage succeeded: a retry would be refused, and so is the dry run.
        refused = pw(self.server, *[a if a != "Staging" else "Source" for a in base])
        self.assertEqual(refused.code, 254, refused.stdout + refused.stderr)
        self.assertIn("Retry not allowed", refused.stderr)

        logs = pw(self.server, "logs", "--pipeline-name", "daily", "--action-name", "Check")
        self.assertEqual(logs.code, 0, logs.stderr)
        self.assertIn("hello", logs.stdout)
        self.assertIn("Staging/Check attempt 1 Failed: Command 2 (test -f %s) exited with code 1."
                      % self.note, logs.stderr)
        self.assertRegex(logs.stderr, r"\n    1  grep hello out.txt\n")
        self.assertRegex(logs.stderr, r"\n  > 2  test -f \S+ +<- exited with code 1\n")

    def test_status_in_words(self):
        approval = action("Approve", "Approval", "Manual", run_order=3)
        self.create(extra_stage_actions=[approval])
        self.wait_staging("daily", "Failed")
        r = pw(self.server, "status", "daily")
        self.assertEqual(r.code, 0, r.stderr)
        self.assertRegex(r.stdout, r"Pipeline daily \(version 1\): latest execution \S+ Failed")
        self.assertRegex(r.stdout, r"\n    Check +Failed +Command 2 \(test -f \S+\) exited with "
                                   r"code 1\.\n")
        self.assertRegex(r.stdout, r"\n    Approve +Not run")
        self.assertIn("pipewright retry-stage-execution --pipeline-name daily --stage-name "
                      "Staging --pipeline-execution-id", r.stdout)
        # Fixed and retried: the approval now waits, said in words.
        open(self.note, "w").close()
        retried = pw(self.server, "retry-stage-execution", "--pipeline-name", "daily",
                     "--stage-name", "Staging", "--retry-mode", "FAILED_ACTIONS", "--latest")
        self.assertEqual(retried.code, 0, retried.stderr)
        wait_for(lambda: "Waiting for approval" in pw(self.server, "status", "daily").stdout,
                 timeout=60, what="the approval to wait")
        # A disabled transition with an execution held before it.
        self.server.ok("DisableStageTransition", {"pipelineName": "daily", "stageName": "Staging",
                                                  "transitionType": "Inbound",
                                                  "reason": "release freeze"})
        self.server.ok("StopPipelineExecution", {
            "pipelineName": "daily", "abandon": True,
            "pipelineExecutionId": stage_state(self.server, "daily", "Staging")[
                "latestExecution"]["pipelineExecutionId"]})
        self.server.ok("StartPipelineExecution", {"name": "daily"})
        held = wait_for(lambda: re.search(r"\n  Staging +Blocked at transition +execution \S+ "
                                          r"waits: release freeze\n",
                                          pw(self.server, "status", "daily").stdout),
                        timeout=60, what="Staging blocked at its transition")
        self.assertTrue(held)

    def test_relative_path_is_refused_with_its_name(self):
        path = self.write_json("rel.json", pipeline("rel", [
            ("Source", [action("Source", "Source", "Directory", config={"Path": "app"},
                               outputs=["Src"])]),
            ("Build", [commands("B", ["true"], inputs=["Src"])])]))
        r = pw(self.server, "create-pipeline", "--pipeline", "file://" + path)
        self.assertEqual(r.code, 254)
        self.assertIn("Path 'app' must be an absolute path", r.stderr)


if __name__ == "__main__":
    unittest.main()
