#!/usr/bin/python3
"""Does heavy artifact I/O stall unrelated API calls? (issue 10, "I/O off the lock")

Runs the real server binary (PW_BINARY_DIR, default build/), then:
  1. idle floor: GetPipelineState of a small pipeline, N times, on one kept-alive connection;
  2. load: a second pipeline whose Directory source holds a SIZE MB incompressible file and
     whose Commands action unpacks it; while it runs, the same GetPipelineState calls go on.
Prints p50/p99/max latency of both phases and how long the big execution took.
Target: p99 under load < 5 ms.

  /usr/bin/python3 bench/stall.py [--size-mb 200] [--binary-dir build-release]
"""

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--binary-dir", default=None)
    ap.add_argument("--floor-calls", type=int, default=500)
    args = ap.parse_args()
    if args.binary_dir:
        os.environ["PW_BINARY_DIR"] = os.path.abspath(args.binary_dir)
    import harness  # After PW_BINARY_DIR is set.

    tmp = tempfile.mkdtemp(prefix="pw-stall-", dir="/var/tmp")
    server = None
    try:
        small = os.path.join(tmp, "small")
        big = os.path.join(tmp, "big")
        os.makedirs(small)
        os.makedirs(big)
        with open(os.path.join(small, "a.txt"), "w") as f:
            f.write("hello\n")
        with open(os.path.join(big, "blob.bin"), "wb") as f:
            for _ in range(args.size_mb):
                f.write(os.urandom(1 << 20))
        os.makedirs(os.path.join(tmp, "data"))
        server = harness.Server(data_dir=os.path.join(tmp, "data"))
        host = server.endpoint.split("//", 1)[1]

        def pipeline(name, path):
            return harness.pipeline(name, [
                ("Source", [harness.action("Src", "Source", "Directory", config={"Path": path},
                                           outputs=["Out"])]),
                ("Build", [harness.commands("Build", ["ls -l > /dev/null"], inputs=["Out"])]),
            ])

        server.ok("CreatePipeline", {"pipeline": pipeline("other", small)})
        conn = http.client.HTTPConnection(host, timeout=30)
        body = json.dumps({"name": "other"})
        headers = {"Content-Type": "application/x-amz-json-1.1",
                   "X-Amz-Target": "CodePipeline_20150709.GetPipelineState"}

        # ListActionTypes takes no pipeline lock: under load it shows the
        # machine's floor (CPU shared with the unpacking), so a gap between
        # the two is time spent waiting for the engine.
        floor_body = json.dumps({"actionOwnerFilter": "Custom"})
        floor_headers = dict(headers)
        floor_headers["X-Amz-Target"] = "CodePipeline_20150709.ListActionTypes"

        def call(b=body, h=headers):
            t0 = time.perf_counter()
            conn.request("POST", "/", body=b, headers=h)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError("%s: HTTP %d" % (h["X-Amz-Target"], r.status))
            return (time.perf_counter() - t0) * 1000.0

        floor = [call() for _ in range(args.floor_calls)]

        done = threading.Event()
        loaded = []
        loaded_floor = []

        def poll():
            while not done.is_set():
                loaded.append(call())
                loaded_floor.append(call(floor_body, floor_headers))

        t = threading.Thread(target=poll)
        t.start()
        t0 = time.monotonic()
        server.ok("CreatePipeline", {"pipeline": pipeline("big", big)})
        ids = harness.wait_for(
            lambda: server.ok("ListPipelineExecutions", {"pipelineName": "big"})
            ["pipelineExecutionSummaries"], timeout=60, what="big execution")
        eid = ids[0]["pipelineExecutionId"]
        status = harness.wait_execution(server, "big", eid, timeout=600)
        elapsed = time.monotonic() - t0
        done.set()
        t.join()
        print("stall bench: %d MB input unpacked by a Commands action; binary %s" %
              (args.size_mb, harness.PIPEWRIGHT))
        print("  big execution: %s in %.2f s" % (status, elapsed))
        for name, v in (("GetPipelineState(other), idle", floor),
                        ("GetPipelineState(other), during load", loaded),
                        ("ListActionTypes (no engine lock), during load", loaded_floor)):
            print("  %-46s n=%5d  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms"
                  % (name, len(v), percentile(v, 50), percentile(v, 99), max(v)))
    finally:
        if server:
            server.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
