"""Several servers on one PostgreSQL, the shared pieces (issue 14): what
`serve --server-id` refuses, action logs readable through any server (shipped
to the database), GET /health for a load balancer.

A real PostgreSQL started by scripts/pg-test-server (PW_SKIP_POSTGRES=1 skips
the tests that need it) and s3rver (an independent S3 implementation from
npm, as in test_jobs.py) as the servers' artifact bucket.
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

import harness
from harness import Server, action, commands, pipeline, pw, wait_execution, wait_for

PG_TEST_SERVER = os.path.join(harness.ROOT, "scripts", "pg-test-server")
SKIP_PG = os.environ.get("PW_SKIP_POSTGRES") == "1"


def serve_exit(*args):
    """Runs `pipewright serve <args>` expecting it to refuse; (exit code, stderr)."""
    data = tempfile.mkdtemp(prefix="pw-e2e-ms-")
    try:
        p = subprocess.run([harness.PIPEWRIGHT, "serve", "--listen", "127.0.0.1:0",
                            "--data-dir", data] + list(args),
                           capture_output=True, text=True, timeout=60)
        return p.returncode, p.stderr
    finally:
        shutil.rmtree(data, ignore_errors=True)


def http_get(url):
    """(status, body) of a GET, without authentication."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class RefusalTest(unittest.TestCase):
    """The checks run before anything is opened: no database needed."""

    def test_a_server_id_with_the_sqlite_store_is_refused(self):
        code, err = serve_exit("--server-id", "s1")
        self.assertEqual(code, 2, err)
        self.assertIn("--server-id", err)
        self.assertIn("--database postgresql://", err)

    def test_several_servers_with_a_local_artifact_store_are_refused(self):
        url = "postgresql://pw@127.0.0.1:1/none"  # Never reached: refused before.
        code, err = serve_exit("--database", url, "--server-id", "s1")
        self.assertEqual(code, 2, err)
        self.assertIn("--artifact-endpoint", err)
        self.assertIn("--artifact-bucket", err)
        code, err = serve_exit("--database", url, "--server-id", "s1", "--check-config")
        self.assertEqual(code, 2, err)
        self.assertIn("--artifact-endpoint", err)
        code, err = serve_exit("--database", url, "--server-id", "bad id",
                               "--artifact-endpoint", "http://127.0.0.1:1",
                               "--artifact-bucket", "b")
        self.assertEqual(code, 2, err)
        self.assertIn("--server-id must be", err)


@unittest.skipIf(SKIP_PG, "PW_SKIP_POSTGRES=1")
class TwoServersTest(unittest.TestCase):
    """Two servers (s1, s2) on one PostgreSQL with s3rver as artifact bucket.
    unittest runs the methods by name: the health test, which stops
    PostgreSQL, sorts last."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pw-e2e-ms-work-")
        os.chmod(cls.tmp, 0o755)  # PostgreSQL runs as `postgres` when the tests run as root.
        cls.pg_dir = os.path.join(cls.tmp, "pg")
        p = subprocess.run([PG_TEST_SERVER, "start", cls.pg_dir, "--watch", str(os.getpid())],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError("pg-test-server failed: " + p.stdout + p.stderr)
        cls.db = p.stdout.strip().splitlines()[-1]
        cls.s3 = None
        cls.servers = []
        try:
            cls.start_s3rver()
            env = {"PIPEWRIGHT_ARTIFACT_ACCESS_KEY_ID": "S3RVER",
                   "PIPEWRIGHT_ARTIFACT_SECRET_ACCESS_KEY": "S3RVER"}
            os.environ.update(env)
            for sid in ("s1", "s2"):
                cls.servers.append(Server(extra_args=[
                    "--database", cls.db, "--server-id", sid,
                    "--artifact-endpoint", cls.s3_endpoint, "--artifact-bucket", "team-artifacts",
                    "--source-poll-interval", "0", "--no-start-on-create",
                    "--lease-seconds", "3"]))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_s3rver(cls):
        cls.s3, cls.s3_endpoint = harness.start_s3rver(cls.tmp, "team-artifacts")

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers:
            s.close()
        harness.stop_s3rver(cls.s3)
        subprocess.run([PG_TEST_SERVER, "stop", cls.pg_dir], capture_output=True, timeout=120)
        for k in ("PIPEWRIGHT_ARTIFACT_ACCESS_KEY_ID", "PIPEWRIGHT_ARTIFACT_SECRET_ACCESS_KEY"):
            os.environ.pop(k, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_action_log_written_on_one_server_reads_through_the_other(self):
        s1, s2 = self.servers
        src = os.path.join(self.tmp, "src")
        os.makedirs(src, exist_ok=True)
        gate = os.path.join(self.tmp, "gate")
        s1.ok("CreatePipeline", {"pipeline": pipeline("logs", [
            ("Source", [action("Source", "Source", "Directory", config={"Path": src},
                               outputs=["Src"])]),
            ("Build", [commands("Build", [
                "echo first line from s1",
                "while [ ! -f %s ]; do sleep 0.1; done" % gate,
                "echo second line from s1"], inputs=["Src"])])])})
        run = s1.ok("StartPipelineExecution", {"name": "logs"})["pipelineExecutionId"]

        def build_run():
            runs = s2.ok("ListActionExecutions", {"pipelineName": "logs", "filter": {
                "pipelineExecutionId": run}})["actionExecutionDetails"]
            return next((r for r in runs if r["actionName"] == "Build"), None)
        build = wait_for(build_run, timeout=60, what="the Build action to start")
        aid = build["actionExecutionId"]
        # Running on s1: its log reaches s2 through the database within about a second.
        self.assertFalse(os.path.exists(os.path.join(s2.data_dir, "logs", aid + ".log")))
        wait_for(lambda: "first line from s1" in http_get(s2.endpoint + "/logs/" + aid)[1],
                 timeout=30, what="the running action's log through s2")
        with open(gate, "w"):
            pass
        self.assertEqual(wait_execution(s1, "logs", run), "Succeeded")
        # Finished: complete through s2 as soon as the result is, by `pipewright logs`.
        out = pw(s2, "logs", "--pipeline-name", "logs", "--pipeline-execution-id", run,
                 "--action-name", "Build")
        self.assertEqual(out.code, 0, out.stderr)
        self.assertIn("first line from s1", out.stdout)
        self.assertIn("second line from s1", out.stdout)
        with open(os.path.join(s1.data_dir, "logs", aid + ".log")) as f:
            local = f.read()
        status, body = http_get(s2.endpoint + "/logs/" + aid)
        self.assertEqual((status, body), (200, local))
        status, tail = http_get(s2.endpoint + "/logs/%s?offset=%d" % (aid, len(local) - 5))
        self.assertEqual((status, tail), (200, local[-5:]))
        self.assertEqual(http_get(s2.endpoint + "/logs/00000000-0000-0000-0000-000000000000")[0],
                         404)
        # The server's own buckets are off with several servers: refused, not per-server.
        status, body = http_get(s2.endpoint + "/some-bucket?list-type=2")
        self.assertEqual(status, 501, body)
        self.assertIn("--s3-endpoint", body)
        # Deleting the pipeline removes its logs from the database too.
        s2.ok("DeletePipeline", {"name": "logs"})
        self.assertEqual(http_get(s2.endpoint + "/logs/" + aid)[0], 404)

    def test_artifact_of_a_killed_owner_is_read_by_the_next_owner(self):
        """The source ran on the owner, kill -9 took its disk away: the retry on
        the new owner fetches the source's zip from the shared bucket."""
        src = os.path.join(self.tmp, "src-artifact")
        os.makedirs(src, exist_ok=True)
        with open(os.path.join(src, "app.txt"), "w") as f:
            f.write("content from the killed owner\n")
        gate = os.path.join(self.tmp, "gate-artifact")
        self.servers[0].ok("CreatePipeline", {"pipeline": pipeline("art", [
            ("Source", [action("Source", "Source", "Directory", config={"Path": src},
                               outputs=["Src"])]),
            ("Build", [commands("Build", ["while [ ! -f %s ]; do sleep 0.1; done" % gate,
                                          "cat app.txt"], inputs=["Src"])])])})
        run = self.servers[0].ok("StartPipelineExecution", {"name": "art"})["pipelineExecutionId"]

        def build_run(server):
            status, out = server.call("ListActionExecutions", {
                "pipelineName": "art", "filter": {"pipelineExecutionId": run}})
            if status != 200:
                return None  # 503 while the pipeline changes hands.
            return next((r for r in out["actionExecutionDetails"]
                         if r["actionName"] == "Build"), None)
        wait_for(lambda: (build_run(self.servers[0]) or {}).get("status") == "InProgress",
                 timeout=60, what="the Build action to run")
        listed = self.servers[0].ok("ListServers", {}, target_prefix="Pipewright_20261125.")
        owner = next(s["serverId"] for s in listed["servers"] if "art" in s["pipelines"])
        victim = self.servers[("s1", "s2").index(owner)]
        other = self.servers[1 - ("s1", "s2").index(owner)]
        zips = os.path.join(other.data_dir, "artifacts")
        before = set(os.listdir(zips)) if os.path.isdir(zips) else set()
        victim.kill9()
        try:
            wait_for(lambda: (build_run(other) or {}).get("status") == "Failed",
                     timeout=40, interval=0.2, what="the new owner to fail the interrupted action")
            with open(gate, "w"):
                pass
            wait_for(lambda: other.call("RetryStageExecution", {
                "pipelineName": "art", "stageName": "Build", "pipelineExecutionId": run,
                "retryMode": "FAILED_ACTIONS"})[0] == 200, timeout=20, what="the retry")
            self.assertEqual(wait_execution(other, "art", run), "Succeeded")
            # The zip came from the bucket onto the new owner's disk.
            self.assertTrue(set(os.listdir(zips)) - before)
            out = pw(other, "logs", "--pipeline-name", "art", "--pipeline-execution-id", run,
                     "--action-name", "Build")
            self.assertIn("content from the killed owner", out.stdout)
        finally:
            victim.start()

    def test_health_is_public_and_turns_503_when_postgresql_stops(self):
        s1, s2 = self.servers
        for sid, s in (("s1", s1), ("s2", s2)):
            status, body = http_get(s.endpoint + "/health")
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body), {"status": "ok", "live": True, "ready": True,
                                                "serverId": sid})
        subprocess.run([PG_TEST_SERVER, "stop", self.pg_dir], check=True, capture_output=True,
                       timeout=120)

        def unavailable():
            status, body = http_get(s1.endpoint + "/health")
            return (status, json.loads(body)) if status == 503 else None
        status, doc = wait_for(unavailable, timeout=30, what="/health to answer 503")
        self.assertEqual((doc["status"], doc["live"], doc["ready"]), ("unavailable", True, False))
        self.assertEqual(doc["serverId"], "s1")


if __name__ == "__main__":
    unittest.main()
