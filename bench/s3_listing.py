#!/usr/bin/python3
"""What does a listing of the server's own S3 endpoint cost as a bucket grows?

Runs the real server binary (PW_BINARY_DIR, default build/), fills buckets of 10^2, 2x10^3 and
10^4 objects (keys "dir<i mod 10>/obj<i>") plus a bucket of one object, then prints the median
latency of one request, over a kept-alive connection, for:
  - ListObjectsV2 with max-keys=1 (a first page that needs one key),
  - ListObjectsV2 with max-keys=1000 (a full first page),
  - ListObjectsV2 with delimiter "/" (ten common prefixes),
  - ListObjectsV2 with prefix "dir3/" and max-keys=1,
  - ListObjectVersions with max-keys=1,
  - ListObjectsV2 of the one-object bucket (does a big neighbour slow a small bucket?).
Requests are unsigned (the server runs without --auth-keys-file), so the figure is the server's.

  /usr/bin/python3 bench/s3_listing.py [--sizes 100,2000,10000] [--reps 50] [--binary-dir DIR]
"""

import argparse
import http.client
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))


def connect(endpoint):
    u = urllib.parse.urlparse(endpoint)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60)


def request(conn, method, path, body=b""):
    conn.request(method, path, body=body)
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError("%s %s: %d %s" % (method, path, r.status, data[:300]))
    return data


def fill(endpoint, bucket, n, threads=8):
    def work(start):
        conn = connect(endpoint)
        for i in range(start, n, threads):
            request(conn, "PUT", "/%s/dir%d/obj%06d" % (bucket, i % 10, i), b"x")
        conn.close()
    ts = [threading.Thread(target=work, args=(s,)) for s in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def median_ms(conn, path, reps, expect=None):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        data = request(conn, "GET", path)
        times.append(time.perf_counter() - t)
        if expect is not None and expect not in data:
            raise RuntimeError("%s: %r not in %s" % (path, expect, data[:300]))
    return statistics.median(times) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,2000,10000")
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--binary-dir", default=None)
    args = ap.parse_args()
    if args.binary_dir:
        os.environ["PW_BINARY_DIR"] = os.path.abspath(args.binary_dir)
    import harness  # noqa: E402 (after PW_BINARY_DIR)

    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = tempfile.mkdtemp(prefix="pw-bench-s3list-")
    server = harness.Server(data_dir=tmp)
    try:
        conn = connect(server.endpoint)
        request(conn, "PUT", "/tiny")
        request(conn, "PUT", "/tiny/only", b"x")
        t = time.monotonic()
        for n in sizes:
            request(conn, "PUT", "/b%d" % n)
            fill(server.endpoint, "b%d" % n, n)
        print("filled %s objects in %.1f s" % ("+".join(map(str, sizes)), time.monotonic() - t))
        rows = [
            ("ListObjectsV2 max-keys=1", "/{b}?list-type=2&max-keys=1", b"<KeyCount>1<"),
            ("ListObjectsV2 max-keys=1000", "/{b}?list-type=2&max-keys=1000", b"<Key>"),
            ("ListObjectsV2 delimiter=/", "/{b}?list-type=2&delimiter=%2F",
             b"<Prefix>dir9/</Prefix>"),
            ("ListObjectsV2 prefix=dir3/ max-keys=1", "/{b}?list-type=2&prefix=dir3%2F&max-keys=1",
             b"<Key>dir3/"),
            ("ListObjectVersions max-keys=1", "/{b}?versions&max-keys=1", b"<Version>"),
        ]
        print("%-40s %s" % ("median ms per request", "  ".join("%8s" % ("%d obj" % n)
                                                                  for n in sizes)))
        for label, path, expect in rows:
            cells = [median_ms(conn, path.format(b="b%d" % n), args.reps, expect) for n in sizes]
            print("%-40s %s" % (label, "  ".join("%8.2f" % c for c in cells)))
        tiny = median_ms(conn, "/tiny?list-type=2", args.reps, b"<Key>only</Key>")
        print("%-40s %8.2f  (beside %d objects in other buckets)"
              % ("ListObjectsV2 of a 1-object bucket", tiny, sum(sizes)))
        conn.close()
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
