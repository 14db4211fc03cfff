"""Several `pipewright serve` processes on one PostgreSQL database (issue 14):
any server answers any call, each pipeline is driven by exactly one server
(leases with fencing epochs), mutating calls are forwarded to the owner, a
killed owner's pipelines are taken over after the lease expires.

A real PostgreSQL (scripts/pg-test-server) and three servers are shared by the
tests of the class; each test uses its own pipelines.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import harness
from harness import Server, action, commands, pipeline, wait_for

ROOT = harness.ROOT
PG_TEST_SERVER = os.path.join(ROOT, "scripts", "pg-test-server")
LEASE_SECONDS = 3
GC_GRACE_SECONDS = 2
CUSTOM_TYPE = {"category": "Build", "owner": "Custom", "provider": "MsJob", "version": "1"}


def call_retrying(server, op, body):
    """One call as an SDK makes it: a 503 (a pipeline changing hands) is retried."""
    deadline = time.monotonic() + 20
    while True:
        status, out = server.call(op, body)
        if status != 503 or time.monotonic() > deadline:
            return status, out
        time.sleep(0.2)


def ok(server, op, body=None):
    status, out = call_retrying(server, op, body or {})
    if status != 200:
        raise AssertionError("%s on %s failed: %s %s" % (op, server.endpoint, status, out))
    return out


def git(repo, *args):
    subprocess.run(["git", "-C", repo] + list(args), check=True, capture_output=True,
                   env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e",
                            GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@e"))


class MultiServerTest(unittest.TestCase):
    servers = []

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pw-e2e-ms-")
        os.chmod(cls.tmp, 0o755)  # PostgreSQL runs as `postgres` when the tests run as root.
        cls.pg_dir = os.path.join(cls.tmp, "pg")
        cls.src = os.path.join(cls.tmp, "src")  # Small Directory sources (not the database).
        os.makedirs(cls.src)
        with open(os.path.join(cls.src, "app.txt"), "w") as f:
            f.write("v1\n")
        out = subprocess.run([PG_TEST_SERVER, "start", cls.pg_dir, "--watch", str(os.getpid())],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise unittest.SkipTest("PostgreSQL did not start: " + out.stderr[-2000:])
        cls.database = out.stdout.strip().splitlines()[-1]
        # Several servers keep artifacts in a shared S3-compatible bucket (s3rver here).
        cls.s3 = None
        try:
            cls.s3, cls.s3_endpoint = harness.start_s3rver(cls.tmp, "team-artifacts")
        except BaseException:
            subprocess.run([PG_TEST_SERVER, "stop", cls.pg_dir], capture_output=True, timeout=60)
            raise
        os.environ["PIPEWRIGHT_ARTIFACT_ACCESS_KEY_ID"] = "S3RVER"
        os.environ["PIPEWRIGHT_ARTIFACT_SECRET_ACCESS_KEY"] = "S3RVER"
        cls.servers = [cls.start_server(name) for name in ("a", "b", "c")]
        # Every server has reported itself before the tests begin.
        wait_for(lambda: cls.live_count() == 3, timeout=30, what="three live servers")

    @classmethod
    def start_server(cls, name, data_dir=None):
        # Retention for the "gc" pipeline only (one execution kept), with a short
        # artifact grace period: no other test's executions are deleted.
        config = os.path.join(cls.tmp, "retention.yaml")
        with open(config, "w") as f:
            f.write("retention:\n  pipelines:\n    gc: {executions: 1}\n")
        return Server(data_dir=data_dir, extra_args=[
            "--config", config, "--retain-artifact-grace", str(GC_GRACE_SECONDS),
            "--database", cls.database, "--server-id", name,
            "--lease-seconds", str(LEASE_SECONDS), "--source-poll-interval", "1",
            "--deploy-root", cls.tmp,
            "--artifact-endpoint", cls.s3_endpoint, "--artifact-bucket", "team-artifacts"])

    @classmethod
    def list_servers(cls, server=None):
        server = server or cls.servers[0]
        status, out = server.call("ListServers", {}, target_prefix="Pipewright_20261125.")
        if status != 200:
            raise AssertionError("ListServers: %s %s" % (status, out))
        return out

    @classmethod
    def live_count(cls, via=None):
        return len([s for s in cls.list_servers(via)["servers"] if s["live"]])

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers:
            s.close()
        harness.stop_s3rver(cls.s3)
        subprocess.run([PG_TEST_SERVER, "stop", cls.pg_dir], capture_output=True, timeout=60)
        for k in ("PIPEWRIGHT_ARTIFACT_ACCESS_KEY_ID", "PIPEWRIGHT_ARTIFACT_SECRET_ACCESS_KEY"):
            os.environ.pop(k, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- helpers -------------------------------------------------------------
    def path(self, name):
        return os.path.join(self.tmp, name)

    def touch(self, name):
        with open(self.path(name), "w"):
            pass

    def owner_of(self, pipeline_name, via=None):
        for s in self.list_servers(via)["servers"]:
            if pipeline_name in s["pipelines"]:
                return s["serverId"]
        return None

    def server_named(self, name):
        return self.servers["abc".index(name)]

    def latest_execution(self, server, name):
        runs = ok(server, "ListPipelineExecutions", {"pipelineName": name})
        return runs["pipelineExecutionSummaries"][0] if runs["pipelineExecutionSummaries"] else None

    def wait_status(self, server, name, execution_id, statuses, timeout=60):
        def status():
            out = ok(server, "GetPipelineExecution", {"pipelineName": name,
                                                      "pipelineExecutionId": execution_id})
            s = out["pipelineExecution"]["status"]
            return s if s in statuses else None
        return wait_for(status, timeout=timeout, interval=0.1,
                        what="execution %s of %s to reach %s" % (execution_id, name, statuses))

    # -- tests ---------------------------------------------------------------
    def test_any_server_answers_and_calls_reach_the_owner(self):
        a, b, c = self.servers
        ok(a, "CreatePipeline", {"pipeline": pipeline("anywhere", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.src},
                               outputs=["S"])]),
            ("Build", [commands("Check", ["test -f %s" % self.path("ok-anywhere")])])])})
        # Read on B and C straight away.
        self.assertEqual(ok(b, "GetPipeline", {"name": "anywhere"})["pipeline"]["name"], "anywhere")
        state = ok(c, "GetPipelineState", {"name": "anywhere"})
        self.assertEqual([s["stageName"] for s in state["stageStates"]], ["Source", "Build"])
        first = wait_for(lambda: self.latest_execution(c, "anywhere"), what="first execution")
        self.assertEqual(self.wait_status(c, "anywhere", first["pipelineExecutionId"],
                                          ("Failed",)), "Failed")
        # Started on B, observed on C, retried through C once it can pass.
        started = ok(b, "StartPipelineExecution", {"name": "anywhere"})["pipelineExecutionId"]
        self.assertEqual(self.wait_status(c, "anywhere", started, ("Failed", "Succeeded")), "Failed")
        self.touch("ok-anywhere")
        ok(c, "RetryStageExecution", {"pipelineName": "anywhere", "stageName": "Build",
                                      "pipelineExecutionId": started,
                                      "retryMode": "FAILED_ACTIONS"})
        self.assertEqual(self.wait_status(a, "anywhere", started, ("Failed", "Succeeded")),
                         "Succeeded")
        # Exactly one server drives it, and ListServers says which.
        owners = [s["serverId"] for s in self.list_servers(b)["servers"]
                  if "anywhere" in s["pipelines"]]
        self.assertEqual(len(owners), 1, owners)

    def metric(self, server, sample):
        """The value of `sample` (name{labels}, as the page writes it) on `server`, or None."""
        with urllib.request.urlopen(server.endpoint + "/metrics", timeout=10) as r:
            text = r.read().decode()
        m = re.search(r'^%s (\S+)$' % re.escape(sample), text, re.M)
        return float(m.group(1)) if m else None

    def stamped_reads(self, server, op, result):
        """pipewright_stamped_reads_total{operation=op, result=result} on `server`."""
        return self.metric(server, 'pipewright_stamped_reads_total{operation="%s",result="%s"}'
                           % (op, result)) or 0.0

    def read_cache(self, server, family, cache):
        """pipewright_read_cache_{bytes,answers}{cache=cache} on `server`."""
        return self.metric(server, 'pipewright_read_cache_%s{cache="%s"}' % (family, cache))

    def test_reads_of_a_pipeline_driven_elsewhere_are_kept_until_it_changes(self):
        """A server keeps its answers for a pipeline another server drives by the pipeline's
        change stamp: repeated reads are served without the database's dozen queries, and every
        change the owner commits shows in the very next read."""
        ok(self.servers[0], "CreatePipeline", {"pipeline": pipeline("stamped", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.src},
                               outputs=["S"])]),
            ("Build", [commands("Check", ["true"])])])})
        first = wait_for(lambda: self.latest_execution(self.servers[0], "stamped"),
                         what="first execution")
        self.wait_status(self.servers[0], "stamped", first["pipelineExecutionId"], ("Succeeded",))
        reads = (("GetPipelineState", {"name": "stamped"}),
                 ("ListPipelineExecutions", {"pipelineName": "stamped"}))
        # Leases may still move while the servers share out the pipelines: try again then.
        for attempt in range(5):
            owner = wait_for(lambda: self.owner_of("stamped"), what="an owner")
            reader = self.servers[("abc".index(owner) + 1) % 3]
            hits = [self.stamped_reads(reader, op, "hit") for op, _ in reads]
            answers = [ok(reader, op, body) for op, body in reads]
            for _ in range(5):
                self.assertEqual([ok(reader, op, body) for op, body in reads], answers)
            gained = [self.stamped_reads(reader, op, "hit") - h for (op, _), h in zip(reads, hits)]
            if self.owner_of("stamped") == owner:
                break
        self.assertTrue(all(g >= 5 for g in gained), "kept answers served on %s (owner %s): %s" % (
            "abc"[self.servers.index(reader)], owner, gained))
        # The metrics say what the reader keeps for pipelines it does not drive; with several
        # servers the owner cache is off (another server's commits would not invalidate it).
        self.assertGreaterEqual(self.read_cache(reader, "answers", "stamped"), 2)
        self.assertEqual(self.read_cache(reader, "answers", "owner"), 0)
        self.assertEqual(self.read_cache(reader, "bytes", "owner"), 0)
        self.assertGreater(self.read_cache(reader, "bytes", "stamped"),
                           sum(len(json.dumps(a, separators=(",", ":"))) for a in answers) * 0.9)
        self.assertEqual(answers[0]["stageStates"][1]["latestExecution"]["pipelineExecutionId"],
                         first["pipelineExecutionId"])

        # Each change, made through the owner, shows in the reader's next read.
        driver = self.server_named(owner)
        ok(driver, "DisableStageTransition", {"pipelineName": "stamped", "stageName": "Build",
                                              "transitionType": "Inbound", "reason": "hold"})
        build = ok(reader, "GetPipelineState", {"name": "stamped"})["stageStates"][1]
        self.assertIs(build["inboundTransitionState"]["enabled"], False)
        started = ok(driver, "StartPipelineExecution", {"name": "stamped"})["pipelineExecutionId"]
        self.assertEqual(self.latest_execution(reader, "stamped")["pipelineExecutionId"], started)
        def source_done():
            latest = ok(reader, "GetPipelineState", {"name": "stamped"})["stageStates"][0][
                "latestExecution"]
            return (latest["pipelineExecutionId"], latest["status"]) == (started, "Succeeded")
        wait_for(source_done, what="the source to succeed")
        ok(driver, "EnableStageTransition", {"pipelineName": "stamped", "stageName": "Build",
                                             "transitionType": "Inbound"})
        self.assertEqual(self.wait_status(reader, "stamped", started, ("Succeeded", "Failed")),
                         "Succeeded")
        state = ok(reader, "GetPipelineState", {"name": "stamped"})
        self.assertIs(state["stageStates"][1]["inboundTransitionState"]["enabled"], True)
        latest = state["stageStates"][1]["latestExecution"]
        self.assertEqual((latest["pipelineExecutionId"], latest["status"]), (started, "Succeeded"))
        self.assertEqual(self.latest_execution(reader, "stamped")["status"], "Succeeded")

    def test_reads_while_a_built_in_action_runs_are_kept_too(self):
        """While a Commands action runs (no job: the owner's executor runs it), a server that
        does not drive the pipeline keeps its GetPipelineState answer by the change stamp.
        Before, such a read looked for job documents (all of them) and was never kept."""
        gate = self.path("gate-kept")
        ok(self.servers[1], "CreatePipeline", {"pipeline": pipeline("kept", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.src},
                               outputs=["S"])]),
            ("Build", [commands("Hold", ["while [ ! -f %s ]; do sleep 0.05; done" % gate])])])})
        first = wait_for(lambda: self.latest_execution(self.servers[1], "kept"),
                         what="first execution")["pipelineExecutionId"]

        def holding(server):
            state = ok(server, "GetPipelineState", {"name": "kept"})
            latest = state["stageStates"][1].get("latestExecution") or {}
            return (latest.get("pipelineExecutionId"), latest.get("status")) == (
                first, "InProgress")
        wait_for(lambda: holding(self.servers[1]), what="Hold to run")
        body = {"name": "kept"}
        # Leases may still move while the servers share out the pipelines: try again then.
        for attempt in range(5):
            owner = wait_for(lambda: self.owner_of("kept"), what="an owner")
            reader = self.servers[("abc".index(owner) + 1) % 3]
            before = [self.stamped_reads(reader, "GetPipelineState", r)
                      for r in ("hit", "uncacheable")]
            answer = ok(reader, "GetPipelineState", body)
            for _ in range(5):
                self.assertEqual(ok(reader, "GetPipelineState", body), answer)
            after = [self.stamped_reads(reader, "GetPipelineState", r)
                     for r in ("hit", "uncacheable")]
            if self.owner_of("kept") == owner:
                break
        self.assertEqual(answer["stageStates"][1]["latestExecution"]["status"], "InProgress")
        self.assertGreaterEqual(after[0] - before[0], 5, "kept answers while Hold runs")
        self.assertEqual(after[1], before[1], "uncacheable reads while Hold runs")
        self.touch("gate-kept")
        self.assertEqual(self.wait_status(reader, "kept", first, ("Succeeded", "Failed")),
                         "Succeeded")

    def mirrored(self, key):
        """Whether s3rver holds `key` in the shared bucket (its files on disk)."""
        return bool(glob.glob(os.path.join(self.tmp, "s3-*", "team-artifacts", key + "*")))

    def test_retention_removes_a_deleted_executions_artifact_from_the_shared_bucket(self):
        a, b, c = self.servers
        src = self.path("gc-src")
        os.makedirs(src)
        with open(os.path.join(src, "input.txt"), "w") as f:
            f.write("content 0\n")  # The first execution starts with the pipeline.
        ok(a, "CreatePipeline", {"pipeline": pipeline("gc", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": src},
                               outputs=["S"])]),
            ("Build", [commands("Use", ["test -f input.txt"], inputs=["S"])])])})
        keys = []
        for i in range(2):
            if i == 0:
                eid = wait_for(lambda: self.latest_execution(b, "gc"),
                               what="first execution")["pipelineExecutionId"]
            else:
                with open(os.path.join(src, "input.txt"), "w") as f:
                    f.write("content %d\n" % i)
                eid = ok(b, "StartPipelineExecution", {"name": "gc"})["pipelineExecutionId"]
            self.assertEqual(self.wait_status(c, "gc", eid, ("Failed", "Succeeded")), "Succeeded")
            runs = ok(c, "ListActionExecutions", {
                "pipelineName": "gc", "filter": {"pipelineExecutionId": eid}})
            key = [o["s3location"]["key"] for r in runs["actionExecutionDetails"]
                   if r["actionName"] == "Src" for o in r["output"]["outputArtifacts"]][0]
            self.assertTrue(self.mirrored(key), key)
            keys.append(key)
        self.assertNotEqual(keys[0], keys[1])
        # Retention keeps one execution: the first one's artifact is no longer
        # referenced, and once the grace period has passed since a server last
        # relied on it, the shared bucket's copy goes too. The second one stays.
        wait_for(lambda: not self.mirrored(keys[0]), timeout=90,
                 what="the deleted execution's artifact to leave the shared bucket")
        self.assertTrue(self.mirrored(keys[1]))

    def test_concurrent_retries_over_all_servers_exactly_one_accepted(self):
        gate = self.path("gate-retries")
        self.touch("gate-retries")  # The first run fails at once.
        ok(self.servers[1], "CreatePipeline", {"pipeline": pipeline("retries", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.src},
                               outputs=["S"])]),
            ("Build", [commands("Gate", ["while [ ! -f %s ]; do sleep 0.05; done" % gate,
                                         "false"])])])})
        first = wait_for(lambda: self.latest_execution(self.servers[0], "retries"),
                         what="first execution")["pipelineExecutionId"]
        self.wait_status(self.servers[2], "retries", first, ("Failed",))
        for round_ in range(3):
            os.remove(gate)  # The retried run waits until every answer is in.
            barrier = threading.Barrier(20)
            results = []

            def retry(i):
                barrier.wait()
                results.append(call_retrying(self.servers[i % 3], "RetryStageExecution", {
                    "pipelineName": "retries", "stageName": "Build",
                    "pipelineExecutionId": first, "retryMode": "FAILED_ACTIONS"}))
            threads = [threading.Thread(target=retry, args=(i,)) for i in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            accepted = [r for r in results if r[0] == 200]
            refused = [r[1].get("__type") for r in results if r[0] != 200]
            self.assertEqual(len(accepted), 1, "round %d: %s" % (round_, results))
            self.assertEqual(set(refused), {"StageNotRetryableException"},
                             "round %d: %s" % (round_, results))
            self.touch("gate-retries")
            self.wait_status(self.servers[round_ % 3], "retries", first, ("Failed",))

    def test_superseded_lock_holds_across_servers(self):
        gate = self.path("gate-superseded")
        ok(self.servers[2], "CreatePipeline", {"pipeline": pipeline("locked", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.src},
                               outputs=["S"])]),
            ("Build", [commands("Hold", ["while [ ! -f %s ]; do sleep 0.05; done" % gate])])])})
        started = []

        def start(i):
            started.append(ok(self.servers[i % 3], "StartPipelineExecution",
                              {"name": "locked"})["pipelineExecutionId"])
        threads = [threading.Thread(target=start, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(started), 6)

        def in_build(server):
            runs = ok(server, "ListActionExecutions", {"pipelineName": "locked"})
            return {r["pipelineExecutionId"] for r in runs["actionExecutionDetails"]
                    if r["stageName"] == "Build" and r["status"] == "InProgress"}
        wait_for(lambda: in_build(self.servers[0]), what="an execution in Build")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # Sampled through every server.
            for s in self.servers:
                inside = in_build(s)
                self.assertLessEqual(len(inside), 1, inside)
        self.touch("gate-superseded")
        ended = [self.wait_status(self.servers[i % 3], "locked", e,
                                  ("Succeeded", "Superseded", "Failed", "Stopped"))
                 for i, e in enumerate(started)]
        self.assertNotIn("Failed", ended)
        self.assertIn("Superseded", ended)

    def test_job_polled_through_two_servers_is_handed_out_once(self):
        a, b, c = self.servers
        ok(a, "CreateCustomActionType", {
            "category": "Build", "provider": "MsJob", "version": "1",
            "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
            "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1}})
        ok(b, "CreatePipeline", {"pipeline": pipeline("jobs", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.src},
                               outputs=["S"])]),
            ("Build", [{"name": "Job", "actionTypeId": CUSTOM_TYPE, "runOrder": 1,
                        "configuration": {}}])])})
        for round_ in range(3):
            if round_ > 0:
                ok(self.servers[round_], "StartPipelineExecution", {"name": "jobs"})
            barrier = threading.Barrier(2)
            handed = []

            def poll(server):
                barrier.wait()
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and not handed:
                    out = ok(server, "PollForJobs", {"actionTypeId": CUSTOM_TYPE,
                                                     "maxBatchSize": 5})
                    handed.extend(out["jobs"])
                # The other poller may still be inside a call: poll once more after.
                out = ok(server, "PollForJobs", {"actionTypeId": CUSTOM_TYPE, "maxBatchSize": 5})
                handed.extend(out["jobs"])
            threads = [threading.Thread(target=poll, args=(s,)) for s in (a, b)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(len(handed), 1, "round %d: %s" % (round_, handed))
            job = handed[0]
            ok(c, "AcknowledgeJob", {"jobId": job["id"], "nonce": job["nonce"]})
            ok(c, "PutJobSuccessResult", {"jobId": job["id"]})
            execution = job["data"]["pipelineContext"]["pipelineExecutionId"]
            self.assertEqual(self.wait_status(a, "jobs", execution, ("Succeeded", "Failed")),
                             "Succeeded")

    def test_git_polling_starts_one_execution_per_change(self):
        repo = self.path("repo")
        os.makedirs(repo)
        git(repo, "init", "-q", "-b", "main")
        with open(os.path.join(repo, "app.txt"), "w") as f:
            f.write("v1\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "first")
        ok(self.servers[0], "CreatePipeline", {"pipeline": pipeline("polled", [
            ("Source", [action("Git", "Source", "Git", config={"RepositoryPath": repo},
                               outputs=["Src"])]),
            ("Build", [commands("Done", ["true"])])])})

        def executions():
            return ok(self.servers[1], "ListPipelineExecutions",
                      {"pipelineName": "polled"})["pipelineExecutionSummaries"]
        wait_for(lambda: len(executions()) == 1, what="the first execution")
        with open(os.path.join(repo, "app.txt"), "w") as f:
            f.write("v2\n")
        git(repo, "commit", "-q", "-am", "second")
        try:
            wait_for(lambda: len(executions()) >= 2, timeout=30,
                     what="an execution for the change")
        except AssertionError as missed:
            # Seen once under load and not since: keep what the servers said about it.
            said = []
            for server in self.servers:
                with open(os.path.join(server.data_dir, "server.log"), errors="replace") as f:
                    lines = [line for line in f if "polled" in line or "lease" in line
                             or "level\":\"warning" in line or "level\":\"error" in line]
                said.append("%s:\n%s" % (server.data_dir, "".join(lines[-40:])))
            raise AssertionError("%s; owner %s; executions %r\n%s" % (
                missed, self.owner_of("polled"), executions(), "\n".join(said)))
        # Every server polls each second; only the owner starts anything.
        time.sleep(3 * 1.5)
        polled = [e for e in executions() if e["trigger"]["triggerType"] == "PollForSourceChanges"]
        self.assertEqual(len(polled), 1, executions())

    def test_z_owner_killed_another_server_takes_over(self):
        gate = self.path("gate-failover")
        ok(self.servers[0], "CreatePipeline", {"pipeline": pipeline("failover", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.src},
                               outputs=["S"])]),
            ("Build", [commands("Hold", ["while [ ! -f %s ]; do sleep 0.05; done" % gate])])])})
        execution = wait_for(lambda: self.latest_execution(self.servers[1], "failover"),
                             what="first execution")["pipelineExecutionId"]

        def build_run(server):
            runs = ok(server, "ListActionExecutions", {"pipelineName": "failover"})
            builds = [r for r in runs["actionExecutionDetails"] if r["stageName"] == "Build"]
            return builds[0] if builds else None
        wait_for(lambda: (build_run(self.servers[1]) or {}).get("status") == "InProgress",
                 what="the Build action to run")
        owner = self.owner_of("failover")
        self.assertIsNotNone(owner)
        victim = self.server_named(owner)
        others = [s for s in self.servers if s is not victim]
        victim.kill9()
        killed_at = time.monotonic()
        failed = wait_for(lambda: (lambda r: r if r and r["status"] == "Failed" else None)(
            build_run(others[0])), timeout=LEASE_SECONDS + 20, interval=0.1,
            what="another server to fail the interrupted action")
        takeover = time.monotonic() - killed_at
        self.assertLess(takeover, LEASE_SECONDS + 10)
        self.assertIn("stopped while this action was running", json.dumps(failed))
        new_owner = self.owner_of("failover", via=others[0])
        self.assertNotIn(new_owner, (None, owner))
        # The interrupted stage is retryable and the retry succeeds.
        self.touch("gate-failover")
        ok(others[1], "RetryStageExecution", {"pipelineName": "failover", "stageName": "Build",
                                              "pipelineExecutionId": execution,
                                              "retryMode": "FAILED_ACTIONS"})
        self.assertEqual(self.wait_status(others[0], "failover", execution,
                                          ("Succeeded", "Failed")), "Succeeded")
        print("failover: action failed as interrupted %.1f s after kill -9 (lease %d s)"
              % (takeover, LEASE_SECONDS))
        # The killed server comes back under its name and takes a share again.
        index = self.servers.index(victim)
        data_dir = victim.data_dir
        restarted = self.start_server(owner, data_dir=data_dir)
        restarted.owns_dir = True
        type(self).servers[index] = restarted
        wait_for(lambda: self.live_count() == 3, timeout=30, what="three live servers again")


if __name__ == "__main__":
    unittest.main()
