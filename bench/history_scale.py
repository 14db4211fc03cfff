#!/usr/bin/python3
"""History at scale (issue 15): GetPipelineState and ListPipelineExecutions
(first page) latency at 10^2, 10^4 and 10^5 past executions of one pipeline,
and server RSS with 1,000 pipelines and 10^5 executions.

The history is made by inserting copies of a real execution's rows (made by
the server itself) straight into the SQLite file, so it takes seconds.

    bench/history_scale.py build/pipewright [--before /path/to/old/pipewright]

With --before, the same databases are served by the old binary first (made
with the older schema, which the new binary migrates). Prints one table."""

import argparse
import http.client
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time


def serve(binary, data_dir):
    log = open(os.path.join(data_dir, "server.log"), "ab")
    p = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
                          "--sandbox", "none", "--source-poll-interval", "0"],
                         stdout=subprocess.PIPE, stderr=log)
    line = p.stdout.readline().decode()
    m = re.search(r"(http://127\.0\.0\.1:\d+)", line)
    if not m:
        raise RuntimeError("server did not start: %r" % line)
    return p, m.group(1)


def call(endpoint, op, body):
    host = endpoint.split("//")[1]
    c = http.client.HTTPConnection(host, timeout=60)
    c.request("POST", "/", json.dumps(body), {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "CodePipeline_20150709." + op})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError("%s: %s %s" % (op, r.status, data[:300]))
    return json.loads(data)


def stop(p):
    p.terminate()
    p.wait(timeout=60)


def seed(binary, work):
    """A data directory with one real execution of pipeline p0; returns it."""
    d = os.path.join(work, "seed")
    os.makedirs(d)
    src = os.path.join(work, "src")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "in.txt"), "w") as f:
        f.write("x\n")
    p, ep = serve(binary, d)
    try:
        decl = {"name": "p0", "roleArn": "arn:aws:iam::123456789012:role/r",
                "artifactStore": {"type": "S3", "location": "bucket"},
                "stages": [
                    {"name": "Source", "actions": [{
                        "name": "Src", "actionTypeId": {"category": "Source", "owner": "AWS",
                                                        "provider": "Directory", "version": "1"},
                        "configuration": {"Path": src}, "outputArtifacts": [{"name": "Out"}]}]},
                    {"name": "Build", "actions": [{
                        "name": "Build", "actionTypeId": {"category": "Build", "owner": "AWS",
                                                          "provider": "Commands", "version": "1"},
                        "commands": ["true"], "inputArtifacts": [{"name": "Out"}]}]}]}
        call(ep, "CreatePipeline", {"pipeline": decl})
        deadline = time.time() + 60
        while time.time() < deadline:
            s = call(ep, "ListPipelineExecutions", {"pipelineName": "p0"})
            ex = s["pipelineExecutionSummaries"]
            if ex and ex[0]["status"] == "Succeeded":
                break
            time.sleep(0.1)
    finally:
        stop(p)
    return d


def grow(db_path, pipelines, per_pipeline):
    """Copies p0's pipeline and execution rows until `pipelines` pipelines have
    `per_pipeline` executions each (the existing ones counted)."""
    db = sqlite3.connect(db_path)
    pipe = db.execute("SELECT arn, current_version, created, updated FROM pipelines "
                      "WHERE name='p0'").fetchone()
    decl = db.execute("SELECT declaration, created FROM pipeline_versions WHERE name='p0'").fetchone()
    ex = db.execute("SELECT id, status, started, updated, doc FROM executions "
                    "WHERE pipeline='p0' ORDER BY seq LIMIT 1").fetchone()
    runs = db.execute("SELECT id, stage, action, status, started, updated, doc FROM "
                      "action_executions WHERE execution_id=?", (ex[0],)).fetchall()
    pstate = db.execute("SELECT value FROM kv WHERE key='pstate/p0'").fetchone()[0]
    for i in range(pipelines):
        name = "p%d" % i
        if i > 0 and not db.execute("SELECT 1 FROM pipelines WHERE name=?", (name,)).fetchone():
            db.execute("INSERT INTO pipelines VALUES (?,?,?,?,?)",
                       (name, pipe[0].replace("p0", name), pipe[1], pipe[2], pipe[3]))
            db.execute("INSERT INTO pipeline_versions VALUES (?,?,?,?)",
                       (name, 1, decl[0].replace('"p0"', '"%s"' % name), decl[1]))
        have = db.execute("SELECT COUNT(*) FROM executions WHERE pipeline=?", (name,)).fetchone()[0]
        newest = None
        for k in range(have, per_pipeline):
            eid = "%s-%08d-%s" % (name, k, ex[0][18:])
            doc = ex[4].replace(ex[0], eid).replace('"p0"', '"%s"' % name)
            t = ex[2] + k
            db.execute("INSERT INTO executions (id, pipeline, status, started, updated, doc) "
                       "VALUES (?,?,?,?,?,?)", (eid, name, ex[1], t, t, doc))
            for r in runs:
                rid = "%s-%s" % (eid, r[0][-12:])
                db.execute("INSERT INTO action_executions (id, execution_id, pipeline, stage, "
                           "action, status, started, updated, doc) VALUES (?,?,?,?,?,?,?,?,?)",
                           (rid, eid, name, r[1], r[2], r[3], t, t,
                            r[6].replace(r[0], rid).replace(ex[0], eid)))
            newest = eid
        if newest is not None:
            state = json.loads(pstate)
            state["stage_latest"] = {k: newest for k in state.get("stage_latest", {})}
            db.execute("INSERT OR REPLACE INTO kv VALUES (?,?)",
                       ("pstate/" + name, json.dumps(state)))
    db.commit()
    db.close()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def latency(binary, data_dir, n=200):
    p, ep = serve(binary, data_dir)
    try:
        out = {}
        for op, body in (("GetPipelineState", {"name": "p0"}),
                         ("ListPipelineExecutions", {"pipelineName": "p0"})):
            for _ in range(20):
                call(ep, op, body)  # Warm: load, caches.
            times = []
            for _ in range(n):
                t = time.perf_counter()
                call(ep, op, body)
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            out[op] = (statistics.median(times), times[int(len(times) * 0.99) - 1])
        out["rss"] = rss_kib(p.pid)
        return out
    finally:
        stop(p)


def rss_many(binary, data_dir, pipelines):
    p, ep = serve(binary, data_dir)
    try:
        for i in range(pipelines):  # Every pipeline read once (Recover loaded them).
            call(ep, "GetPipelineState", {"name": "p%d" % i})
        return rss_kib(p.pid)
    finally:
        stop(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--before", help="an older pipewright to compare with")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="pw-history-")
    try:
        seed_dir = seed(args.before or args.binary, work)
        rows = []
        binaries = ([("before", args.before)] if args.before else []) + [("after", args.binary)]
        for size in (100, 10000, 100000):
            base = os.path.join(work, "h%d" % size)
            shutil.copytree(seed_dir, base)
            grow(os.path.join(base, "pipewright.db"), 1, size)
            for label, binary in binaries:
                d = base + "-" + label
                shutil.copytree(base, d)
                r = latency(binary, d)
                rows.append((label, size, r))
                shutil.rmtree(d)
            shutil.rmtree(base)
        many = os.path.join(work, "many")
        shutil.copytree(seed_dir, many)
        grow(os.path.join(many, "pipewright.db"), 1000, 100)
        rss = []
        for label, binary in binaries:
            d = many + "-" + label
            shutil.copytree(many, d)
            rss.append((label, rss_many(binary, d, 1000)))
            shutil.rmtree(d)
        print("%-7s %9s %22s %22s %9s" % ("binary", "history", "GetPipelineState ms",
                                            "ListPipelineExecs ms", "RSS MiB"))
        for label, size, r in rows:
            print("%-7s %9d %12.2f (p99 %5.2f) %12.2f (p99 %5.2f) %9.1f" % (
                label, size, r["GetPipelineState"][0], r["GetPipelineState"][1],
                r["ListPipelineExecutions"][0], r["ListPipelineExecutions"][1], r["rss"] / 1024))
        for label, kib in rss:
            print("%-7s 1000 pipelines x 100 executions: RSS %.1f MiB" % (label, kib / 1024))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
