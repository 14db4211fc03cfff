#!/usr/bin/python3
"""Several servers on one PostgreSQL (issue 14): failover time and throughput.

Starts a throwaway PostgreSQL (scripts/pg-test-server) and real servers
(PW_BINARY_DIR, default build/) with --server-id, then prints:
  1. failover: an action running on the owner of a pipeline; kill -9 of the owner;
     seconds until another server has failed the interrupted action (retryable) and
     until its retry succeeded;
  2. throughput: executions per second of a 1-action pipeline (P pipelines, each
     started K times, clients spread over the servers), with 1 server and with 3;
  3. reads of a pipeline another server drives: GetPipelineState and
     ListPipelineExecutions under wrk with 8 kept-alive connections, with
     --database-connections 1 and with the default pool (4); the pipeline idle
     (answers kept by its change stamp) and while its owner runs executions
     back to back (the stamp moves: most reads go to PostgreSQL).

  /usr/bin/python3 bench/multi_server.py [--lease-seconds 3] [--pipelines 6] [--runs 5]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary-dir", default=None)
    ap.add_argument("--lease-seconds", type=float, default=3)
    ap.add_argument("--pipelines", type=int, default=6)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if args.binary_dir:
        os.environ["PW_BINARY_DIR"] = os.path.abspath(args.binary_dir)
    import harness  # noqa: E402 (after PW_BINARY_DIR)
    import bench_all  # noqa: E402 (wrk and its figures)
    from harness import Server, action, commands, pipeline, wait_for

    tmp = tempfile.mkdtemp(prefix="pw-bench-ms-")
    os.chmod(tmp, 0o755)  # PostgreSQL runs as `postgres` when run as root.
    pg_dir = os.path.join(tmp, "pg")
    script = os.path.join(ROOT, "scripts", "pg-test-server")
    out = subprocess.run([script, "start", pg_dir, "--watch", str(os.getpid())],
                         capture_output=True, text=True, check=True)
    base_url = out.stdout.strip().splitlines()[-1]
    servers = []
    # Several servers keep artifacts in a shared S3-compatible bucket (s3rver here).
    s3, s3_endpoint = harness.start_s3rver(tmp, "team-artifacts")
    os.environ["PIPEWRIGHT_ARTIFACT_ACCESS_KEY_ID"] = "S3RVER"
    os.environ["PIPEWRIGHT_ARTIFACT_SECRET_ACCESS_KEY"] = "S3RVER"

    def database(name):
        admin = subprocess.run(["psql", base_url, "-qc", "CREATE DATABASE " + name],
                               capture_output=True, text=True)
        if admin.returncode != 0:
            raise SystemExit("CREATE DATABASE failed: " + admin.stderr)
        return base_url.replace("/postgres?", "/%s?" % name)

    def start(db, name, extra=()):
        s = Server(extra_args=["--database", db, "--server-id", name,
                               "--lease-seconds", str(args.lease_seconds),
                               "--artifact-endpoint", s3_endpoint,
                               "--artifact-bucket", "team-artifacts"] + list(extra))
        servers.append(s)
        return s

    def ok(server, op, body):
        deadline = time.monotonic() + 30
        while True:
            status, res = server.call(op, body)
            if status == 200:
                return res
            if status != 503 or time.monotonic() > deadline:
                raise SystemExit("%s: %s %s" % (op, status, res))
            time.sleep(0.1)

    def status_of(server, name, execution):
        return ok(server, "GetPipelineExecution", {"pipelineName": name,
                                                   "pipelineExecutionId": execution})[
            "pipelineExecution"]["status"]

    src = os.path.join(tmp, "src")  # A small source (not the database's directory).
    os.makedirs(src)
    with open(os.path.join(src, "app.txt"), "w") as f:
        f.write("v1\n")

    def source():
        return ("Source", [action("Src", "Source", "Directory", config={"Path": src},
                                  outputs=["S"])])

    try:
        # 1. Failover.
        db = database("failover")
        trio = [start(db, n) for n in ("a", "b", "c")]
        gate = os.path.join(tmp, "gate")
        ok(trio[0], "CreatePipeline", {"pipeline": pipeline("failover", [
            source(), ("Build", [commands("Hold", ["while [ ! -f %s ]; do sleep 0.02; done"
                                                   % gate])])])})

        def build_run(server):
            runs = ok(server, "ListActionExecutions", {"pipelineName": "failover"})
            b = [r for r in runs["actionExecutionDetails"] if r["stageName"] == "Build"]
            return b[0] if b else None
        wait_for(lambda: (build_run(trio[1]) or {}).get("status") == "InProgress", timeout=60)
        status, listed = trio[1].call("ListServers", {}, target_prefix="Pipewright_20261125.")
        owner = [s["serverId"] for s in listed["servers"] if "failover" in s["pipelines"]][0]
        victim = trio["abc".index(owner)]
        rest = [s for s in trio if s is not victim]
        execution = ok(rest[0], "ListPipelineExecutions", {"pipelineName": "failover"})[
            "pipelineExecutionSummaries"][0]["pipelineExecutionId"]
        victim.kill9()
        t0 = time.monotonic()
        wait_for(lambda: (build_run(rest[0]) or {}).get("status") == "Failed", timeout=120,
                 interval=0.02)
        failed_after = time.monotonic() - t0
        open(gate, "w").close()
        ok(rest[1], "RetryStageExecution", {"pipelineName": "failover", "stageName": "Build",
                                            "pipelineExecutionId": execution,
                                            "retryMode": "FAILED_ACTIONS"})
        wait_for(lambda: status_of(rest[0], "failover", execution) == "Succeeded", timeout=60,
                 interval=0.02)
        done_after = time.monotonic() - t0
        print("failover (lease %.1f s): interrupted action failed %.2f s after kill -9, "
              "retried execution Succeeded %.2f s after" % (args.lease_seconds, failed_after,
                                                             done_after))
        for s in trio:
            s.close()
        servers.clear()

        # 2. Throughput, 1 vs 3 servers.
        for count in (1, 3):
            db = database("tput%d" % count)
            group = [start(db, "s%d" % i) for i in range(count)]
            names = ["p%d" % i for i in range(args.pipelines)]
            for i, name in enumerate(names):
                ok(group[i % count], "CreatePipeline", {"pipeline": pipeline(name, [
                    source(), ("Build", [commands("One", ["true"])])])})
            # Let the first executions end and the leases spread.
            for i, name in enumerate(names):
                first = wait_for(lambda: ok(group[0], "ListPipelineExecutions", {
                    "pipelineName": name})["pipelineExecutionSummaries"], timeout=60)[0]
                wait_for(lambda: status_of(group[0], name, first["pipelineExecutionId"])
                         in ("Succeeded", "Failed"), timeout=60)
            time.sleep(args.lease_seconds)
            started = []
            lock = threading.Lock()

            def client(i):
                server = group[i % count]
                for _ in range(args.runs):
                    e = ok(server, "StartPipelineExecution", {"name": names[i]})[
                        "pipelineExecutionId"]
                    with lock:
                        started.append((server, names[i], e))
                    wait_for(lambda: status_of(server, names[i], e) in ("Succeeded", "Failed",
                                                                       "Superseded"),
                             timeout=120, interval=0.01)
            t0 = time.monotonic()
            threads = [threading.Thread(target=client, args=(i,)) for i in range(len(names))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - t0
            print("%d server(s): %d executions of a 1-action pipeline in %.2f s = %.1f/s "
                  "(%d pipelines, each started %d times in a row)"
                  % (count, len(started), elapsed, len(started) / elapsed, len(names), args.runs))
            for s in group:
                s.close()
            servers.clear()

        # 3. Reads from the database under wrk, pool of 1 vs 4.
        if not os.path.exists("/usr/bin/wrk"):
            print("reads from the database: skipped (no /usr/bin/wrk)")
        for pool in ((1, 4) if os.path.exists("/usr/bin/wrk") else ()):
            db = database("reads%d" % pool)
            owner = start(db, "a")
            reader = start(db, "b", ["--database-connections", str(pool)])
            ok(owner, "CreatePipeline", {"pipeline": pipeline("read", [
                source(), ("Build", [commands("One", ["true"])])])})
            for _ in range(20):  # A short history to list.
                e = ok(owner, "StartPipelineExecution", {"name": "read"})["pipelineExecutionId"]
                wait_for(lambda: status_of(owner, "read", e) in ("Succeeded", "Failed"),
                         timeout=60, interval=0.01)
            def reads(name="read"):
                figures = []
                for op, body in (("GetPipelineState", {"name": name}),
                                 ("ListPipelineExecutions", {"pipelineName": name})):
                    w = bench_all.wrk(reader.endpoint + "/", bench_all.TARGET + op, body, 8, 3,
                                      tmp)
                    if w["non2xx"] or w["errors"]:
                        raise SystemExit("wrk %s: %s" % (op, bench_all.describe(w)))
                    figures.append("%s %s" % (op, bench_all.describe(w)))
                return "; ".join(figures)
            # Idle: answered from the reader's kept answers (by the pipeline's change stamp).
            print("reads of an idle pipeline another server drives, --database-connections %d, "
                  "wrk -c8: %s" % (pool, reads()))
            # Busy: the owner runs executions back to back, so the stamp keeps moving and
            # most reads go to the database.
            busy = threading.Event()
            started = [0]

            def run_back_to_back():
                while not busy.is_set():
                    e = ok(owner, "StartPipelineExecution", {"name": "read"})["pipelineExecutionId"]
                    started[0] += 1
                    wait_for(lambda: status_of(owner, "read", e) in ("Succeeded", "Failed"),
                             timeout=60, interval=0.01)
            runner = threading.Thread(target=run_back_to_back)
            runner.start()
            try:
                figures = reads()
            finally:
                busy.set()
                runner.join()
            print("the same while the owner runs executions back to back (%d in ~6 s): %s"
                  % (started[0], figures))
            # One long built-in action on the owner: the stamp holds still while it runs,
            # so the reader keeps its answers (before, such a read looked for job documents
            # and was never kept).
            gate = os.path.join(tmp, "gate-long-%d" % pool)
            ok(owner, "CreatePipeline", {"pipeline": pipeline("long", [
                source(), ("Build", [commands("Hold", [
                    "while [ ! -f %s ]; do sleep 0.05; done" % gate])])])})
            e = ok(owner, "StartPipelineExecution", {"name": "long"})["pipelineExecutionId"]

            def holding():
                latest = ok(reader, "GetPipelineState", {"name": "long"})["stageStates"][1].get(
                    "latestExecution") or {}
                return latest.get("status") == "InProgress"  # (Created: its first execution.)
            wait_for(holding, timeout=60, interval=0.01)
            figures = reads("long")
            open(gate, "w").close()
            wait_for(lambda: status_of(owner, "long", e) in ("Succeeded", "Failed"), timeout=60,
                     interval=0.01)
            print("the same while one Commands action of the pipeline runs on its owner: %s"
                  % figures)
            for s in (owner, reader):
                s.close()
            servers.clear()
    finally:
        for s in servers:
            s.close()
        harness.stop_s3rver(s3)
        subprocess.run([script, "stop", pg_dir], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
