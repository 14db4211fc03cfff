#!/usr/bin/python3
"""What does a key's version history cost its reads and writes?

Every bucket of the server's own S3 endpoint is versioned. Until 2026-12-02 a key's versions were
kept in one document (one kv row), so each PutObject and GetObject of a key read all of them; now
each version is a row of its own. Runs the real server binary (PW_BINARY_DIR, default build/),
puts the same key again and again over one kept-alive connection (unsigned requests), and prints,
at 50, 1,000, 3,000 and 6,000 versions, the median latency of: the last 50 PutObjects, GetObject
of the latest, GetObject of the first version by its id, and ListObjectVersions max-keys=1.

  /usr/bin/python3 bench/s3_versions.py [--steps 50,1000,3000,6000] [--binary-dir DIR]
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", default="50,1000,3000,6000")
    ap.add_argument("--binary-dir", default=None)
    args = ap.parse_args()
    if args.binary_dir:
        os.environ["PW_BINARY_DIR"] = os.path.abspath(args.binary_dir)
    import harness  # noqa: E402 (after PW_BINARY_DIR)
    from s3_listing import connect, median_ms, request

    server = harness.Server()
    try:
        conn = connect(server.endpoint)
        request(conn, "PUT", "/versions")
        conn.request("PUT", "/versions/same", body=b"x")
        r = conn.getresponse()
        r.read()
        first = r.getheader("x-amz-version-id")
        done = 1
        for target in (int(s) for s in args.steps.split(",")):
            times = []
            for _ in range(target - done):
                t = time.perf_counter()
                request(conn, "PUT", "/versions/same", b"x")
                times.append(time.perf_counter() - t)
            done = target
            print("%5d versions: PutObject %.2f ms, GetObject %.2f ms, GetObject of the first"
                  " version %.2f ms, ListObjectVersions max-keys=1 %.2f ms (medians)"
                  % (target, statistics.median(times[-50:]) * 1e3,
                     median_ms(conn, "/versions/same", 50),
                     median_ms(conn, "/versions/same?versionId=" + first, 50),
                     median_ms(conn, "/versions?versions&max-keys=1", 50)))
        conn.close()
    finally:
        server.close()


if __name__ == "__main__":
    main()
