"""End-to-end tests of custom actions and remote job workers (issue 6): a real
`pipewright serve`, real `pipewright worker` processes (and one worker written
with Debian's python3-boto3), real child programs.

The job program (PROGRAM below) is a Python script the workers run with
/usr/bin/python3; it appends one line per run to a log the test reads, so
"each job done exactly once" is counted, not assumed. Programs that must stay
running wait on gate files and also give up when their worker dies or the
test's temporary directory disappears, so a failed test leaves nothing
spinning.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import harness
from harness import action, pipeline, stage_state, wait_for

PYTHON = "/usr/bin/python3"  # Debian's, which has python3-boto3.
TERMINAL = ("Succeeded", "Failed", "Stopped", "Superseded", "Cancelled")

# The program custom-action workers run: PROGRAM <mode> <log> <worker-name> <state-dir>.
PROGRAM = r'''
import os, sys, time
mode, log, worker, state = sys.argv[1:5]
env = os.environ
parent = os.getppid()

def record(extra=""):
    with open(log, "a") as f:
        f.write("%s %s %s %s %s\n" % (env["PIPEWRIGHT_ACTION"], env["PIPEWRIGHT_JOB_ID"], worker,
                                    env.get("PIPEWRIGHT_CONTINUATION_TOKEN", "-"), extra))

def wait_gate(name):
    open(os.path.join(state, name + ".waiting"), "w").close()
    while not os.path.exists(os.path.join(state, name + ".go")):
        if os.getppid() != parent or not os.path.isdir(state):
            sys.exit(1)  # The worker died or the test is over.
        time.sleep(0.05)

if mode == "count":
    record(env.get("PIPEWRIGHT_CONFIG_Label", ""))
    with open("out.txt", "w") as f:
        f.write(open("hello.txt").read() + " via " + env["PIPEWRIGHT_ACTION"] + "\n")
    time.sleep(0.3)  # Long enough for the other worker to take the next job.
elif mode == "hang-first":
    record()
    if not os.path.exists(os.path.join(state, "hung")):
        open(os.path.join(state, "hung"), "w").close()
        wait_gate("never")  # Until the test SIGKILLs this worker.
    open("out.txt", "w").write("second try\n")
elif mode == "progress":
    token = env.get("PIPEWRIGHT_CONTINUATION_TOKEN", "")
    record()
    if token == "":
        open(env["PIPEWRIGHT_CONTINUATION_TOKEN_FILE"], "w").write("step-1\n")
        open(env["PIPEWRIGHT_PERCENT_COMPLETE_FILE"], "w").write("30")
    elif token == "step-1":
        wait_gate("step-1")
        open(env["PIPEWRIGHT_CONTINUATION_TOKEN_FILE"], "w").write("step-2")
        open(env["PIPEWRIGHT_PERCENT_COMPLETE_FILE"], "w").write("60")
    elif token == "step-2":
        wait_gate("step-2")
        open("out.txt", "w").write("done after " + token + "\n")
        open(env["PIPEWRIGHT_PERCENT_COMPLETE_FILE"], "w").write("100")
        open(env["PIPEWRIGHT_OUTPUT_VARIABLES_FILE"], "w").write("STEPS=3\nLAST=" + token + "\n")
    else:
        sys.exit(5)
else:
    sys.exit(4)
'''

# A job worker written against the plain API with a stock client: Debian's
# boto3 for both the CodePipeline and the S3 calls. Handles one job, then exits.
BOTO_WORKER = r'''
import io, sys, time, zipfile
import boto3
from botocore.config import Config

endpoint = sys.argv[1]
cp = boto3.client("codepipeline", endpoint_url=endpoint, region_name="us-east-1")
type_id = {"category": "Build", "owner": "Custom", "provider": "BotoWorker", "version": "1"}
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
data = job["data"]
creds = data["artifactCredentials"]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=creds["accessKeyId"],
                  aws_secret_access_key=creds["secretAccessKey"],
                  aws_session_token=creds["sessionToken"],
                  config=Config(s3={"addressing_style": "path"}))
src = data["inputArtifacts"][0]["location"]["s3Location"]
s3.head_object(Bucket=src["bucketName"], Key=src["objectKey"])
body = s3.get_object(Bucket=src["bucketName"], Key=src["objectKey"])["Body"].read()
hello = zipfile.ZipFile(io.BytesIO(body)).read("hello.txt").decode()
out = io.BytesIO()
with zipfile.ZipFile(out, "w") as z:
    z.writestr("result.txt", "boto saw: " + hello + " (" + data["actionConfiguration"]["configuration"]["Label"] + ")\n")
dst = data["outputArtifacts"][0]["location"]["s3Location"]
s3.put_object(Bucket=dst["bucketName"], Key=dst["objectKey"], Body=out.getvalue())
cp.put_job_success_result(jobId=job["id"],
                          executionDetails={"summary": "boto did it", "externalExecutionId": "boto-1",
                                            "percentComplete": 100},
                          outputVariables={"WHO": "boto3"})
# The job's artifact credentials die with the job.
try:
    s3.get_object(Bucket=src["bucketName"], Key=src["objectKey"])
    print("credentials still work")
except s3.exceptions.ClientError as e:
    print("credentials ended:", e.response["Error"]["Code"])
print("done", job["id"])
'''


def custom_action(name, provider="MyWorker", config=None, inputs=("SourceOut",), outputs=(),
                  run_order=1, category="Build"):
    return {"name": name,
            "actionTypeId": {"category": category, "owner": "Custom", "provider": provider,
                             "version": "1"},
            "runOrder": run_order,
            "configuration": config or {},
            "inputArtifacts": [{"name": n} for n in inputs],
            "outputArtifacts": [{"name": n} for n in outputs]}


def read(path):
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        return f.read()


class JobsTestBase(harness.ServerTestCase):
    server_args = ("--no-start-on-create", "--job-timeout", "3")

    def setUp(self):
        super().setUp()
        self.workers = []
        self.src = os.path.join(self.tmp, "src")
        os.makedirs(self.src)
        with open(os.path.join(self.src, "hello.txt"), "w") as f:
            f.write("hello from the source")
        self.state = os.path.join(self.tmp, "state")
        os.makedirs(self.state)
        self.log = os.path.join(self.tmp, "runs.log")
        self.program = os.path.join(self.tmp, "program.py")
        with open(self.program, "w") as f:
            f.write(PROGRAM)

    def tearDown(self):
        for w in self.workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
                try:
                    w.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    w.kill()
                    w.wait()
            w.stderr_file.close()
        super().tearDown()

    # -- helpers ---------------------------------------------------------------
    def create_action_type(self, provider="MyWorker"):
        return self.server.ok("CreateCustomActionType", {
            "category": "Build", "provider": provider, "version": "1",
            "configurationProperties": [{"name": "Label", "required": False, "key": False,
                                         "secret": False, "queryable": False,
                                         "description": "shown in the run log", "type": "String"}],
            "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
            "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1}})

    def source_stage(self):
        return ("Source", [action("Src", "Source", "Directory", config={"Path": self.src},
                                  outputs=["SourceOut"])])

    def start_worker(self, name, *args, program=None):
        """Starts `pipewright worker <args>`; program = the argv after `--`."""
        argv = [harness.PIPEWRIGHT, "worker", "--endpoint", self.server.endpoint,
                "--poll-interval", "0.1", "--work-dir", os.path.join(self.tmp, "work-" + name)]
        argv += list(args)
        if program is not None:
            argv += ["--"] + list(program)
        stderr_file = open(os.path.join(self.tmp, "worker-%s.log" % name), "w+")
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr_file,
                             env=harness._env())
        p.stderr_file = stderr_file
        p.name = name
        self.workers.append(p)
        return p

    def custom_worker(self, name, mode, *extra):
        return self.start_worker(name, "--action-type", "Build/MyWorker/1", *extra,
                                 program=[PYTHON, self.program, mode, self.log, name, self.state])

    def worker_log(self, w):
        w.stderr_file.flush()
        return read(w.stderr_file.name)

    def start(self, name):
        return self.server.ok("StartPipelineExecution", {"name": name})["pipelineExecutionId"]

    def wait_execution(self, name, execution_id, statuses=TERMINAL, timeout=60):
        try:
            return harness.wait_execution(self.server, name, execution_id, statuses,
                                          timeout=timeout)
        except AssertionError:
            for w in self.workers:
                sys.stderr.write("--- worker %s:\n%s" % (w.name, self.worker_log(w)))
            raise

    def runs(self):
        return [line.split(" ") for line in read(self.log).splitlines()]

    def action_state(self, name, stage, act):
        for a in stage_state(self.server, name, stage)["actionStates"]:
            if a["actionName"] == act:
                return a
        raise AssertionError("no action %s" % act)

    def gate_waiting(self, gate):
        return os.path.exists(os.path.join(self.state, gate + ".waiting"))

    def open_gate(self, gate):
        open(os.path.join(self.state, gate + ".go"), "w").close()


class CustomActionJobsTest(JobsTestBase):

    def test_two_workers_race_and_each_job_is_done_once(self):
        self.create_action_type()
        builds = [custom_action("B%d" % i, config={"Label": "label-%d" % i}, outputs=["Out%d" % i])
                  for i in range(6)]
        deploy = os.path.join(self.tmp, "deploy")
        self.server.ok("CreatePipeline", {"pipeline": pipeline("race", [
            self.source_stage(),
            ("Build", builds),
            ("Deploy", [action("Publish", "Deploy", "Directory", config={"Path": deploy},
                               inputs=["Out3"])])])})
        self.custom_worker("w1", "count", "--max-jobs", "2")
        self.custom_worker("w2", "count", "--max-jobs", "2")
        run = self.start("race")
        self.assertEqual(self.wait_execution("race", run), "Succeeded")
        runs = self.runs()
        self.assertEqual(sorted(r[0] for r in runs), ["B%d" % i for i in range(6)], runs)
        self.assertEqual(len({r[1] for r in runs}), 6, runs)  # Six distinct jobs.
        for r in runs:
            self.assertEqual(r[4], "label-" + r[0][1:])  # PIPEWRIGHT_CONFIG_Label.
        # The output a worker uploaded is what the deploy action published.
        self.assertEqual(read(os.path.join(deploy, "out.txt")), "hello from the source via B3\n")
        state = self.action_state("race", "Build", "B0")["latestExecution"]
        self.assertEqual(state["status"], "Succeeded")
        self.assertEqual(state.get("summary"), "exit 0")
        sys.stderr.write("jobs per worker: %s\n" % {w: sum(1 for r in runs if r[2] == w)
                                                     for w in ("w1", "w2")})

    def test_killed_worker_times_out_and_retry_runs_on_the_other_worker(self):
        self.create_action_type()
        self.server.ok("CreatePipeline", {"pipeline": pipeline("crash", [
            self.source_stage(),
            ("Build", [custom_action("Work", outputs=["BuildOut"])])])})
        doomed = self.custom_worker("doomed", "hang-first")
        run = self.start("crash")
        wait_for(lambda: self.gate_waiting("never"), timeout=30, what="the first job to start")
        # The other worker is already polling while the job hangs: it must not get it.
        self.custom_worker("survivor", "hang-first")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        killed_at = time.monotonic()
        self.assertEqual(self.wait_execution("crash", run, timeout=30), "Failed")
        self.assertGreater(time.monotonic() - killed_at, 1.5)  # The job's 3 s timeout, not at once.
        failed = self.action_state("crash", "Build", "Work")["latestExecution"]
        self.assertEqual(failed["status"], "Failed")
        self.assertTrue(failed.get("errorDetails", {}).get("message"), failed)
        self.assertEqual([r[2] for r in self.runs()], ["doomed"])

        self.server.ok("RetryStageExecution", {"pipelineName": "crash", "stageName": "Build",
                                               "pipelineExecutionId": run,
                                               "retryMode": "FAILED_ACTIONS"})
        self.assertEqual(self.wait_execution("crash", run), "Succeeded")
        self.assertEqual([r[2] for r in self.runs()], ["doomed", "survivor"])

    def test_continuation_tokens_report_progress_twice_then_succeed(self):
        self.create_action_type()
        deploy = os.path.join(self.tmp, "deploy")
        self.server.ok("CreatePipeline", {"pipeline": pipeline("progress", [
            self.source_stage(),
            ("Build", [custom_action("Long", outputs=["BuildOut"])]),
            ("Deploy", [action("Publish", "Deploy", "Directory", config={"Path": deploy},
                               inputs=["BuildOut"])])])})
        self.custom_worker("w1", "progress")
        run = self.start("progress")

        def latest():
            return self.action_state("progress", "Build", "Long").get("latestExecution", {})

        for gate, percent in (("step-1", 30), ("step-2", 60)):
            wait_for(lambda: self.gate_waiting(gate), timeout=30, what="the job after " + gate)
            state = latest()
            self.assertEqual(state["status"], "InProgress", state)
            self.assertEqual(state.get("percentComplete"), percent, state)
            self.assertEqual(stage_state(self.server, "progress", "Build")["latestExecution"]
                             ["status"], "InProgress")
            self.open_gate(gate)
        self.assertEqual(self.wait_execution("progress", run), "Succeeded")
        self.assertEqual([(r[0], r[3]) for r in self.runs()],
                         [("Long", "-"), ("Long", "step-1"), ("Long", "step-2")])
        self.assertEqual(len({r[1] for r in self.runs()}), 3)  # A new job each time.
        self.assertEqual(read(os.path.join(deploy, "out.txt")), "done after step-2\n")
        details = self.server.ok("ListActionExecutions", {
            "pipelineName": "progress", "filter": {"pipelineExecutionId": run}})
        long_run = [d for d in details["actionExecutionDetails"] if d["actionName"] == "Long"][0]
        self.assertEqual(long_run["output"].get("outputVariables"), {"STEPS": "3", "LAST": "step-2"})

    def test_a_boto3_worker_completes_a_job_read_by_a_later_commands_action(self):
        self.create_action_type(provider="BotoWorker")
        final = os.path.join(self.tmp, "final.txt")
        self.server.ok("CreatePipeline", {"pipeline": pipeline("boto", [
            self.source_stage(),
            ("Build", [custom_action("Boto", provider="BotoWorker", config={"Label": "L1"},
                                     outputs=["BotoOut"])]),
            ("Check", [harness.commands("Read", ["cat result.txt > " + final,
                                                 "grep -q 'boto saw: hello from the source' "
                                                 "result.txt"],
                                        inputs=["BotoOut"])])])})
        script = os.path.join(self.tmp, "boto_worker.py")
        with open(script, "w") as f:
            f.write(BOTO_WORKER)
        run = self.start("boto")
        boto = subprocess.run([PYTHON, script, self.server.endpoint], capture_output=True,
                              text=True, env=harness._env(), timeout=120)
        self.assertEqual(boto.returncode, 0, boto.stdout + boto.stderr)
        self.assertIn("credentials ended: InvalidAccessKeyId", boto.stdout)
        # Job secrets are derived (HMAC of a server key), never written down with the job.
        import sqlite3
        db = sqlite3.connect(os.path.join(self.server.data_dir, "pipewright.db"))
        docs = [v for (v,) in db.execute("SELECT value FROM kv WHERE key LIKE 'job/%'")]
        db.close()
        self.assertTrue(docs)
        for doc in docs:
            self.assertNotIn("secret_access_key", doc)
            self.assertNotIn("session_token", doc)
        self.assertEqual(self.wait_execution("boto", run), "Succeeded")
        self.assertEqual(read(final), "boto saw: hello from the source (L1)\n")
        state = self.action_state("boto", "Build", "Boto")["latestExecution"]
        self.assertEqual(state.get("summary"), "boto did it")
        self.assertEqual(state.get("externalExecutionId"), "boto-1")


class BuiltinCommandsOffServerTest(JobsTestBase):
    server_args = ("--no-start-on-create", "--no-local-runners", "--job-timeout", "30")

    def test_builtin_worker_runs_commands_actions_off_the_server(self):
        deploy = os.path.join(self.tmp, "deploy")
        build = harness.commands("Make", [], inputs=["SourceOut"], outputs=["BuildOut"])
        build["commands"] = ["cat hello.txt > made.txt", "echo \" and $WHO\" >> made.txt",
                             "echo scratch > scratch.tmp", "NOTE=$(printf 'made\\nby a worker')"]
        # Output variables come back as the server's runner gives them: a value keeps its newline.
        build["outputVariables"] = ["NOTE"]
        del build["configuration"]["Commands"]
        # The declaration's environmentVariables and output `files` reach the remote worker.
        build["environmentVariables"] = [{"name": "WHO", "value": "a worker"}]
        build["outputArtifacts"] = [{"name": "BuildOut", "files": ["made.txt"]}]
        self.server.ok("CreatePipeline", {"pipeline": pipeline("offserver", [
            self.source_stage(),
            ("Build", [build]),
            ("Deploy", [action("Publish", "Deploy", "Directory", config={"Path": deploy},
                               inputs=["BuildOut"])])])})
        run = self.start("offserver")
        # Without a worker the Commands action waits as a job.
        wait_for(lambda: self.action_state("offserver", "Build", "Make")
                 .get("latestExecution", {}).get("status") == "InProgress",
                 timeout=30, what="the Commands job")
        worker = self.start_worker("builtin", "--builtin")
        self.assertEqual(self.wait_execution("offserver", run), "Succeeded")
        self.assertEqual(read(os.path.join(deploy, "made.txt")),
                         "hello from the source and a worker\n")
        self.assertEqual(sorted(os.listdir(deploy)), ["made.txt"], "only the `files` globs")
        details = self.server.ok("ListActionExecutions", {
            "pipelineName": "offserver", "filter": {"pipelineExecutionId": run}})
        make = [d for d in details["actionExecutionDetails"] if d["actionName"] == "Make"][0]
        self.assertEqual(make["output"].get("outputVariables"), {"NOTE": "made\nby a worker"})
        self.assertEqual(make["output"]["executionResult"].get("externalExecutionSummary"),
                         "4 command(s) succeeded")
        # SIGTERM: a clean stop, exit 0.
        worker.send_signal(signal.SIGTERM)
        self.assertEqual(worker.wait(timeout=20), 0)
        self.assertIn("reported success", self.worker_log(worker))

    def test_builtin_failure_names_the_command(self):
        build = harness.commands("Make", ["echo about to fail", "false", "echo never"],
                                 inputs=["SourceOut"])
        self.server.ok("CreatePipeline", {"pipeline": pipeline("offfail", [
            self.source_stage(), ("Build", [build])])})
        run = self.start("offfail")
        self.start_worker("builtin", "--builtin")
        self.assertEqual(self.wait_execution("offfail", run), "Failed")
        message = self.action_state("offfail", "Build", "Make")["latestExecution"]["errorDetails"][
            "message"]
        self.assertIn("Command 2 (false) exited with code 1.", message)


class SecretConfiguration(harness.ServerTestCase):
    """Rule 9: secret configuration values are masked as **** and kept on update."""

    server_args = ("--poll-wait", "0.2", "--no-start-on-create")

    def test_secret_is_masked_kept_and_given_to_the_worker(self):
        type_id = {"category": "Deploy", "owner": "Custom", "provider": "Vault", "version": "1"}
        self.server.ok("CreateCustomActionType", {
            "category": "Deploy", "provider": "Vault", "version": "1",
            "configurationProperties": [
                {"name": "Token", "required": True, "key": False, "secret": True},
                {"name": "Target", "required": True, "key": True, "secret": False}],
            "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
            "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 0}})
        deploy = {"name": "Ship", "actionTypeId": type_id, "runOrder": 1,
                  "configuration": {"Token": "s3cr3t", "Target": "prod"}}
        p = pipeline("Secret", [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.tmp},
                               outputs=["A"])]),
            ("Deploy", [deploy])])
        created = self.server.ok("CreatePipeline", {"pipeline": p})
        self.assertEqual(created["pipeline"]["stages"][1]["actions"][0]["configuration"]["Token"], "****")
        got = self.server.ok("GetPipeline", {"name": "Secret"})["pipeline"]
        cfg = got["stages"][1]["actions"][0]["configuration"]
        self.assertEqual(cfg, {"Token": "****", "Target": "prod"})
        # Round-trip the masked definition: the stored secret survives.
        got["stages"][1]["actions"][0]["configuration"]["Target"] = "staging"
        self.server.ok("UpdatePipeline", {"pipeline": got})
        self.server.ok("StartPipelineExecution", {"name": "Secret"})
        jobs = wait_for(lambda: self.server.ok("PollForJobs", {"actionTypeId": type_id})["jobs"],
                        what="a job")
        conf = jobs[0]["data"]["actionConfiguration"]["configuration"]
        self.assertEqual(conf, {"Token": "s3cr3t", "Target": "staging"})
        # A missing required property is refused at update time.
        del got["stages"][1]["actions"][0]["configuration"]["Token"]
        status, err = self.server.call("UpdatePipeline", {"pipeline": got})
        self.assertEqual((status, err["__type"]), (400, "InvalidActionDeclarationException"))
        self.assertIn("Token", err["message"])


class JobLifetime(harness.ServerTestCase):
    """--job-dispatch-timeout and --job-retention: a polled job that is never acknowledged is
    handed out again under a new nonce; an ended job is removed after the retention period."""

    server_args = ("--poll-wait", "0.2", "--no-start-on-create",
                   "--job-dispatch-timeout", "1", "--job-retention", "1")

    def test_unacknowledged_job_comes_back_and_an_ended_job_goes(self):
        type_id = {"category": "Build", "owner": "Custom", "provider": "Life", "version": "1"}
        self.server.ok("CreateCustomActionType", {
            "category": "Build", "provider": "Life", "version": "1",
            "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
            "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 0}})
        p = pipeline("Life", [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.tmp},
                               outputs=["A"])]),
            ("Work", [{"name": "Job", "actionTypeId": type_id, "runOrder": 1}])])
        self.server.ok("CreatePipeline", {"pipeline": p})
        eid = self.server.ok("StartPipelineExecution", {"name": "Life"})["pipelineExecutionId"]
        poll = lambda: self.server.ok("PollForJobs", {"actionTypeId": type_id})["jobs"]
        first = wait_for(poll, what="a job")[0]
        again = wait_for(poll, timeout=15, what="the unacknowledged job handed out again")[0]
        self.assertEqual(again["id"], first["id"])
        self.assertNotEqual(again["nonce"], first["nonce"])
        status, err = self.server.call("AcknowledgeJob", {"jobId": first["id"],
                                                          "nonce": first["nonce"]})
        self.assertEqual((status, err["__type"]), (400, "InvalidNonceException"))
        self.server.ok("AcknowledgeJob", {"jobId": again["id"], "nonce": again["nonce"]})
        self.server.ok("PutJobSuccessResult", {"jobId": again["id"]})
        self.assertEqual(harness.wait_execution(self.server, "Life", eid), "Succeeded")
        # Ended: kept for --job-retention, then gone.
        wait_for(lambda: self.server.call("GetJobDetails", {"jobId": again["id"]})[0] == 400,
                 timeout=15, what="the ended job to be removed")
        status, err = self.server.call("GetJobDetails", {"jobId": again["id"]})
        self.assertEqual(err["__type"], "JobNotFoundException")


class ExternalBucketTest(JobsTestBase):
    """Artifacts in an S3-compatible bucket elsewhere (s3rver, an independent
    implementation from npm), not on the server: the server copies inputs
    there, the worker reads and writes it directly, the server reads outputs."""

    def setUp(self):
        self.s3_dir = tempfile.mkdtemp(prefix="pw-s3rver-")
        self.s3, self.s3_endpoint = harness.start_s3rver(self.s3_dir, "team-artifacts")
        self.server_args = ("--no-start-on-create", "--job-timeout", "30",
                            "--artifact-endpoint", self.s3_endpoint,
                            "--artifact-bucket", "team-artifacts")
        # s3rver's built-in account; the server hands these to its workers.
        os.environ["PIPEWRIGHT_ARTIFACT_ACCESS_KEY_ID"] = "S3RVER"
        os.environ["PIPEWRIGHT_ARTIFACT_SECRET_ACCESS_KEY"] = "S3RVER"
        super().setUp()

    def tearDown(self):
        super().tearDown()
        os.environ.pop("PIPEWRIGHT_ARTIFACT_ACCESS_KEY_ID", None)
        os.environ.pop("PIPEWRIGHT_ARTIFACT_SECRET_ACCESS_KEY", None)
        harness.stop_s3rver(self.s3)
        shutil.rmtree(self.s3_dir, ignore_errors=True)

    def test_a_worker_uses_the_external_bucket(self):
        self.create_action_type("ExtWorker")
        deploy = os.path.join(self.tmp, "deploy")
        remote = {"name": "Remote", "runOrder": 1,
                  "actionTypeId": {"category": "Build", "owner": "Custom",
                                   "provider": "ExtWorker", "version": "1"},
                  "configuration": {}, "inputArtifacts": [{"name": "SourceOut"}],
                  "outputArtifacts": [{"name": "Built"}]}
        self.server.ok("CreatePipeline", {"pipeline": pipeline("ext", [
            self.source_stage(),
            ("Build", [remote]),
            ("Deploy", [action("Publish", "Deploy", "Directory", config={"Path": deploy},
                               inputs=["Built"])])])})
        run = self.start("ext")
        job = wait_for(lambda: self.server.ok("PollForJobs", {"actionTypeId": {
            "category": "Build", "owner": "Custom", "provider": "ExtWorker", "version": "1"}})["jobs"],
            what="the job")[0]
        # The job points at the external bucket; give it back to the queue for the worker.
        loc = job["data"]["inputArtifacts"][0]["location"]["s3Location"]
        self.assertEqual(loc["bucketName"], "team-artifacts")
        self.assertTrue(loc["objectKey"].startswith("pipewright/ext/artifacts/"), loc)
        self.assertEqual(job["data"]["artifactCredentials"]["accessKeyId"], "S3RVER")
        stored = [os.path.join(d, f) for d, _, files in os.walk(self.s3_dir) for f in files]
        self.assertTrue(any("pipewright" in p for p in stored), stored)
        self.server.ok("AcknowledgeJob", {"jobId": job["id"], "nonce": job["nonce"]})
        self.server.ok("PutJobFailureResult", {"jobId": job["id"], "failureDetails": {
            "type": "JobFailed", "message": "handed back to a real worker"}})
        self.assertEqual(self.wait_execution("ext", run), "Failed")
        self.start_worker("ext", "--action-type", "Build/ExtWorker/1",
                          "--s3-endpoint", self.s3_endpoint,
                          program=["/bin/sh", "-c", "cat hello.txt > built.txt; echo ' + external' >> built.txt"])
        self.server.ok("RetryStageExecution", {"pipelineName": "ext", "stageName": "Build",
                                               "pipelineExecutionId": run,
                                               "retryMode": "FAILED_ACTIONS"})
        self.assertEqual(self.wait_execution("ext", run), "Succeeded")
        self.assertEqual(read(os.path.join(deploy, "built.txt")),
                         "hello from the source + external\n")


if __name__ == "__main__":
    unittest.main()
