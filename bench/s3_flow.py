#!/usr/bin/python3
"""What do S3 sources and deploys cost? (issue 11)

Runs the real server binary (PW_BINARY_DIR, default build/) and prints, in one run:
  1. the server's own S3 endpoint: PutObject / GetObject of a SIZE MB object with boto3
     (Debian's python3-boto3), beside `cp` of the same file on this disk (the floor);
  2. one execution of S3 source -> Commands -> S3 deploy (examples/s3-pipeline.json) beside
     the same shape with Directory source -> Commands -> Directory deploy, median of N runs
     started back to back (each waits for the previous to end).

  /usr/bin/python3 bench/s3_flow.py [--size-mb 64] [--runs 10] [--binary-dir build-release]
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=64)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--binary-dir", default=None)
    args = ap.parse_args()
    if args.binary_dir:
        os.environ["PW_BINARY_DIR"] = os.path.abspath(args.binary_dir)
    import harness  # noqa: E402 (after PW_BINARY_DIR)
    import boto3
    from botocore.config import Config

    tmp = tempfile.mkdtemp(prefix="pw-bench-s3-")
    server = harness.Server(extra_args=["--deploy-root", tmp, "--source-poll-interval", "0"])
    try:
        s3 = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x",
                          config=Config(s3={"addressing_style": "path"}))
        big = os.path.join(tmp, "big.bin")
        with open(big, "wb") as f:
            f.write(os.urandom(args.size_mb << 20))
        t = time.monotonic()
        shutil.copyfile(big, big + ".copy")
        floor = time.monotonic() - t
        s3.create_bucket(Bucket="bench")
        t = time.monotonic()
        with open(big, "rb") as f:
            s3.put_object(Bucket="bench", Key="big.bin", Body=f)
        put = time.monotonic() - t
        t = time.monotonic()
        got = s3.get_object(Bucket="bench", Key="big.bin")["Body"].read()
        get = time.monotonic() - t
        assert len(got) == args.size_mb << 20
        mb = args.size_mb
        print("S3 endpoint, %d MB object: PutObject %.0f ms (%.0f MB/s), GetObject %.0f ms "
              "(%.0f MB/s); cp on this disk %.0f ms" % (mb, put * 1e3, mb / put, get * 1e3,
                                                         mb / get, floor * 1e3))

        # Pipelines: S3 -> Commands -> S3, and Directory -> Commands -> Directory.
        src_dir = os.path.join(tmp, "src")
        os.makedirs(os.path.join(src_dir, "app"))
        with open(os.path.join(src_dir, "app", "version.txt"), "w") as f:
            f.write("one\n")
        zpath = os.path.join(tmp, "app.zip")
        with zipfile.ZipFile(zpath, "w") as z:
            z.write(os.path.join(src_dir, "app", "version.txt"), "app/version.txt")
        s3.create_bucket(Bucket="my-source")
        s3.create_bucket(Bucket="my-site")
        s3.upload_file(zpath, "my-source", "app.zip")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(root, "examples", "s3-pipeline.json")) as f:
            s3flow = json.load(f)
        build = s3flow["stages"][1]["actions"][0]
        dirflow = harness.pipeline("dir-flow", [
            ("Source", [harness.action("Source", "Source", "Directory", config={"Path": src_dir},
                                       outputs=["SourceArtifact"])]),
            ("Build", [dict(build, configuration={
                "Commands": "test -f app/version.txt\ncp app/version.txt built.txt"})]),
            ("Deploy", [harness.action("Deploy", "Deploy", "Directory",
                                       config={"Path": os.path.join(tmp, "site")},
                                       inputs=["BuildArtifact"])]),
        ])
        for decl in (s3flow, dirflow):
            server.ok("CreatePipeline", {"pipeline": decl})
        results = {}
        for name in ("s3-flow", "dir-flow"):
            # The execution CreatePipeline started first.
            first = harness.wait_for(lambda: server.ok("ListPipelineExecutions", {
                "pipelineName": name})["pipelineExecutionSummaries"], what="first execution")
            harness.wait_execution(server, name, first[0]["pipelineExecutionId"])
            times = []
            for _ in range(args.runs):
                t = time.monotonic()
                eid = server.ok("StartPipelineExecution", {"name": name})["pipelineExecutionId"]
                status = harness.wait_for(lambda: (lambda st: st if st not in (
                    "InProgress", "Stopping") else None)(harness.execution_status(
                        server, name, eid)), timeout=60, interval=0.002, what="execution")
                times.append(time.monotonic() - t)
                assert status == "Succeeded", status
            results[name] = times
        for name, times in results.items():
            print("%-9s execution (3 stages, 3 actions): median %.1f ms, min %.1f ms over %d runs"
                  % (name, statistics.median(times) * 1e3, min(times) * 1e3, len(times)))
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
