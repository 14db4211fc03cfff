"""Running Pipewright as a service (issue 17), end to end with the real binary:
the configuration file (--config, --check-config, unknown keys with their
line), GET /metrics in the Prometheus text format after a workload (checked by
a strict parser, values matching what happened) and behind authentication,
JSON logs line by line with no secret in them, and backup of a running server
restored into a new directory where a failed stage is then retried.

Run: /usr/bin/python3 -m unittest tests/e2e/test_operations.py
"""

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

import harness
from harness import PIPEWRIGHT, Server, action, commands, pipeline, stage_state, wait_execution, wait_for

ADMIN_KEY = "AKIDOPSADMIN"
ADMIN_SECRET = "ops-admin-secret-8f3a1c"
GIT_TOKEN = "ghp_opsTokenThatMustNeverBeLogged42"


def get(server, path, headers=None):
    req = urllib.request.Request(server.endpoint + path, headers=headers or {}, method="GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def signed_headers(server, method, path, key, secret, body=b"", headers=None):
    """SigV4 headers (service codepipeline) from Debian's botocore."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method=method, url=server.endpoint + path, data=body, headers=headers or {})
    SigV4Auth(Credentials(key, secret), "codepipeline", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def signed_call(server, op, body, key=ADMIN_KEY, secret=ADMIN_SECRET):
    data = json.dumps(body).encode()
    h = signed_headers(server, "POST", "/", key, secret, data,
                       {"Content-Type": "application/x-amz-json-1.1",
                        "X-Amz-Target": "CodePipeline_20150709." + op})
    req = urllib.request.Request(server.endpoint + "/", data=data, headers=h, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read().decode() or "{}")


# -- a strict reader of the Prometheus text format (0.0.4) ---------------------------------
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{(?:%s)(?:,%s)*\})? (\S+)$" % (NAME, LABEL, LABEL))
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_metrics(text):
    """Returns {family: {"type", "help", "samples": {(name, labels tuple): value}}}; raises
    AssertionError on anything promtool's parser would refuse (and on lint-level issues:
    counters not named *_total, histograms without +Inf, non-cumulative buckets)."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    families = {}
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d: %r" % (n, line)
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert re.fullmatch(NAME, name), where
            assert name not in families, "family repeated: " + where
            assert not re.search(r"\\[^\\n]", help_text), "bad escape in HELP: " + where
            families[name] = {"help": help_text, "type": None, "samples": {}}
            current = name
            continue
        if line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == current and families[name]["type"] is None, where
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), where
            families[name]["type"] = kind
            continue
        assert not line.startswith("#"), where
        m = SAMPLE.match(line)
        assert m, "not a sample: " + where
        name, labels_text, value = m.group(1), m.group(2) or "", m.group(3)
        fam = families[current]
        kind = fam["type"]
        allowed = {current} if kind != "histogram" else {current + s for s in ("_bucket", "_sum", "_count")}
        assert name in allowed, "sample of another family: " + where
        labels = tuple(LABEL_RE.findall(labels_text))
        assert len({k for k, _ in labels}) == len(labels), "label repeated: " + where
        v = float(value)  # Accepts +Inf, NaN as Prometheus does.
        key = (name, labels)
        assert key not in fam["samples"], "series repeated: " + where
        fam["samples"][key] = v
    for name, fam in families.items():
        assert fam["type"], name + " has no TYPE"
        if fam["type"] == "counter":
            assert name.endswith("_total"), name
            assert all(v >= 0 for v in fam["samples"].values()), name
        if fam["type"] == "histogram":
            series = {}
            for (sname, labels), v in fam["samples"].items():
                base = tuple(l for l in labels if l[0] != "le")
                series.setdefault(base, {"buckets": [], "sum": None, "count": None})
                if sname.endswith("_bucket"):
                    le = dict(labels)["le"]
                    series[base]["buckets"].append((float(le), v))
                elif sname.endswith("_sum"):
                    series[base]["sum"] = v
                else:
                    series[base]["count"] = v
            for base, s in series.items():
                b = s["buckets"]
                assert b and b[-1][0] == math.inf, "%s%s: no +Inf bucket" % (name, base)
                assert [x[0] for x in b] == sorted(x[0] for x in b), name
                assert all(b[i][1] <= b[i + 1][1] for i in range(len(b) - 1)), name + " not cumulative"
                assert s["count"] == b[-1][1] and s["sum"] is not None, name
    return families


def value(families, family, name=None, **labels):
    fam = families[family]
    want = tuple(sorted(labels.items()))
    total = 0.0
    found = False
    for (sname, ls), v in fam["samples"].items():
        if sname == (name or family) and all(item in ls for item in want):
            total += v
            found = True
    return total if found else None


class ParserSelfTest(unittest.TestCase):
    """The reader above refuses what it must, so its passes mean something."""

    def test_refuses_malformed_expositions(self):
        good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n"
        parse_metrics(good)
        for bad in (good.rstrip("\n"),
                    good + "a_total{x=\"1\"} 4\n",
                    good.replace("a_total", "a"),
                    "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\} 3\n",
                    "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_sum 1\nh_count 2\n",
                    "# HELP a_total A.\n# TYPE a_total counter\nb_total 1\n"):
            with self.assertRaises(AssertionError, msg=bad):
                parse_metrics(bad)


class ConfigFileTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pw-e2e-ops-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def serve(self, *args):
        return subprocess.run([PIPEWRIGHT, "serve"] + list(args), capture_output=True, text=True,
                              timeout=60)

    def test_unknown_key_is_an_error_naming_the_key_and_its_line(self):
        path = self.write("bad.yaml", "# Pipewright\nlisten: 127.0.0.1:0\nlissten: 127.0.0.1:1\n")
        r = self.serve("--config", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("bad.yaml:3: unknown key 'lissten'", r.stderr)
        self.assertEqual(r.stdout, "")  # It never started.
        path = self.write("typo.yaml", "data_dir: /tmp/x\n")
        r = self.serve("--config", path, "--check-config")
        self.assertEqual(r.returncode, 2)
        self.assertIn("typo.yaml:1: unknown key 'data_dir': did you mean 'data-dir'?", r.stderr)

    def test_check_config_validates_without_starting(self):
        data = os.path.join(self.tmp, "data")
        good = self.write("good.yaml",
                          "data-dir: %s\njob-timeout: 600\ndeploy-root: [/srv/a, /srv/b]\n"
                          "log-format: logfmt\ngit-connections:\n  codecommit:\n"
                          "    url: /srv/git/{RepositoryName}.git\n" % data)
        r = self.serve("--config", good, "--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)
        self.assertFalse(os.path.exists(data), "--check-config created the data directory")
        for text, expect in (("job-timeout: soon\n", "bad.yaml:1: job-timeout:"),
                             ("listen: [a, b]\n", "bad.yaml:1: listen: takes one value"),
                             ("log-format: xml\n", "bad.yaml:1: log-format:"),
                             ("database-connections: 0\n",
                              "bad.yaml:1: database-connections: --database-connections: Value 0 "
                              "not in range 1 to 64"),
                             ("deploy-root: relative\n", "must be an absolute path"),
                             ("git-connections:\n  connections:\n    - {arn: nope, url: u}\n",
                              "bad.yaml:1: git-connections: "),
                             ("auth-keys-file: /nonexistent/keys\n", "--auth-keys-file")):
            bad = self.write("bad.yaml", text)
            r = self.serve("--config", bad, "--check-config")
            self.assertEqual(r.returncode, 2, text)
            self.assertIn(expect, r.stderr, text)
        r = self.serve("--config", os.path.join(self.tmp, "missing.yaml"), "--check-config")
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot read the configuration file", r.stderr)

    def test_the_file_configures_a_running_server_and_flags_win(self):
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        with open(os.path.join(src, "f.txt"), "w") as f:
            f.write("x\n")
        cfg = self.write("pw.yaml", "no-start-on-create: true\nlog-format: logfmt\n"
                                    "sandbox: none\nregion: eu-west-3\n")
        server = Server(extra_args=["--config", cfg, "--region", "ap-south-1"])
        try:
            server.ok("CreatePipeline", {"pipeline": pipeline("P", [
                ("Source", [action("S", "Source", "Directory", config={"Path": src},
                                   outputs=["O"])]),
                ("Build", [commands("B", ["true"], inputs=["O"])])])})
            # no-start-on-create from the file: nothing started.
            self.assertEqual(server.ok("ListPipelineExecutions",
                                       {"pipelineName": "P"})["pipelineExecutionSummaries"], [])
            # region: the flag won over the file.
            arn = server.ok("GetPipeline", {"name": "P"})["metadata"]["pipelineArn"]
            self.assertTrue(arn.startswith("arn:aws:codepipeline:ap-south-1:"), arn)
        finally:
            server.stop()
        with open(os.path.join(server.data_dir, "server.log")) as f:
            lines = [l for l in f.read().splitlines() if l]
        self.assertTrue(lines)
        for line in lines:  # log-format: logfmt from the file.
            self.assertTrue(line.startswith("time="), line)
        server.close()


class MetricsAndLogsTest(unittest.TestCase):
    """One server with authentication and secret configuration, a workload of
    3 successful executions, 1 failed and retried, then /metrics and the log."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pw-e2e-ops-")
        keys = os.path.join(cls.tmp, "keys")
        with open(keys, "w") as f:
            f.write("%s:%s\n" % (ADMIN_KEY, ADMIN_SECRET))
        token = os.path.join(cls.tmp, "token")
        with open(token, "w") as f:
            f.write(GIT_TOKEN + "\n")
        cfg = os.path.join(cls.tmp, "pw.yaml")
        with open(cfg, "w") as f:
            f.write("auth-keys-file: %s\ngit-connections:\n  connections:\n"
                    "    - arn: arn:aws:codeconnections:us-east-1:123456789012:connection/ops\n"
                    "      url: https://git.invalid/{FullRepositoryId}.git\n"
                    "      tokenFile: %s\n" % (keys, token))
        cls.server = Server(extra_args=["--config", cfg, "--no-start-on-create"])
        src = os.path.join(cls.tmp, "src")
        os.makedirs(src)
        with open(os.path.join(src, "f.txt"), "w") as f:
            f.write("x\n")
        cls.flag = os.path.join(cls.tmp, "fixed")
        s = cls.server
        signed_call(s, "CreatePipeline", {"pipeline": pipeline("Good", [
            ("Source", [action("S", "Source", "Directory", config={"Path": src}, outputs=["O"])]),
            ("Build", [commands("B", ["echo built"], inputs=["O"])])])})
        signed_call(s, "CreatePipeline", {"pipeline": pipeline("Flaky", [
            ("Source", [action("S", "Source", "Directory", config={"Path": src}, outputs=["O"])]),
            ("Build", [commands("B", ["test -f %s" % cls.flag], inputs=["O"])])])})
        cls.ids = []
        for _ in range(3):
            eid = signed_call(s, "StartPipelineExecution", {"name": "Good"})["pipelineExecutionId"]
            cls.ids.append(eid)
            cls.wait(eid, "Good", "Succeeded")
        cls.flaky = signed_call(s, "StartPipelineExecution", {"name": "Flaky"})["pipelineExecutionId"]
        cls.wait(cls.flaky, "Flaky", "Failed")
        # A refused retry (wrong stage), then the good one.
        try:
            signed_call(s, "RetryStageExecution", {"pipelineName": "Flaky", "stageName": "Source",
                                                   "pipelineExecutionId": cls.flaky,
                                                   "retryMode": "FAILED_ACTIONS"})
        except urllib.error.HTTPError as e:
            cls.refused_retry = json.loads(e.read().decode())["__type"]
        open(cls.flag, "w").close()
        signed_call(s, "RetryStageExecution", {"pipelineName": "Flaky", "stageName": "Build",
                                               "pipelineExecutionId": cls.flaky,
                                               "retryMode": "FAILED_ACTIONS"})
        cls.wait(cls.flaky, "Flaky", "Succeeded")

    @classmethod
    def wait(cls, eid, name, status):
        def current():
            out = signed_call(cls.server, "GetPipelineExecution",
                              {"pipelineName": name, "pipelineExecutionId": eid})
            return out["pipelineExecution"]["status"]
        got = wait_for(lambda: (lambda st: st if st not in ("InProgress", "Stopping") else None)(
            current()), timeout=60, what="execution " + eid)
        assert got == status, (eid, got, status)

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def scrape(self):
        h = signed_headers(self.server, "GET", "/metrics", ADMIN_KEY, ADMIN_SECRET)
        status, headers, text = get(self.server, "/metrics", h)
        self.assertEqual(status, 200, text)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers)
        self.raw = text
        return parse_metrics(text)

    @unittest.skipUnless(shutil.which("promtool"), "promtool (Debian's prometheus) is not "
                         "installed: the exposition is checked by the strict reader only")
    def test_promtool_accepts_the_exposition(self):
        self.scrape()
        r = subprocess.run(["promtool", "check", "metrics"], input=self.raw, capture_output=True,
                           text=True, timeout=60)
        # Exit 0 and nothing printed: no format error and no lint finding.
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((r.stdout + r.stderr).strip(), "")

    def test_threads_are_named_for_top_and_perf_and_the_process_keeps_its_name(self):
        # top -H, perf --sort comm and gdb tell the threads apart; the main
        # thread's name is the process's (ps -C pipewright, pgrep pipewright).
        names = {}
        for tid in os.listdir("/proc/%d/task" % self.server.proc.pid):
            with open("/proc/%d/task/%s/comm" % (self.server.proc.pid, tid)) as f:
                name = f.read().strip()
            names[name] = names.get(name, 0) + 1
        with open("/proc/%d/comm" % self.server.proc.pid) as f:
            self.assertEqual(f.read().strip(), "pipewright")
        # The workload ran actions (work queue, reaper) and answered requests
        # (handlers); pw-unmount exists only where overlays work: not asserted.
        for name in ("pw-work", "pw-reaper", "pw-ticker", "pw-http", "pw-log", "pw-signals"):
            self.assertIn(name, names, names)
        self.assertEqual(names["pw-work"], 2, names)

    def test_metrics_match_what_happened(self):
        m = self.scrape()
        self.assertEqual(value(m, "pipewright_executions_started_total",
                               trigger="StartPipelineExecution"), 4)
        self.assertEqual(value(m, "pipewright_executions_finished_total", status="Succeeded"), 4)
        self.assertEqual(value(m, "pipewright_executions_finished_total", status="Failed"), 1)
        # 4 Source runs (the retry reran only the failed Build), 3+1 Build runs succeeded,
        # 1 Build failed.
        self.assertEqual(value(m, "pipewright_action_runs_total", provider="Directory",
                               status="Succeeded"), 4)
        self.assertEqual(value(m, "pipewright_action_runs_total", provider="Commands",
                               status="Succeeded"), 4)
        self.assertEqual(value(m, "pipewright_action_runs_total", provider="Commands",
                               status="Failed"), 1)
        self.assertEqual(value(m, "pipewright_retries_total", kind="manual"), 1)
        self.assertEqual(value(m, "pipewright_retry_refusals_total", reason=self.refused_retry), 1)
        self.assertEqual(value(m, "pipewright_api_requests_total",
                               operation="StartPipelineExecution", error=""), 4)
        self.assertEqual(value(m, "pipewright_api_request_duration_seconds",
                               "pipewright_api_request_duration_seconds_count",
                               operation="StartPipelineExecution", error=""), 4)
        self.assertEqual(value(m, "pipewright_api_requests_total", operation="CreatePipeline"), 2)
        self.assertGreaterEqual(value(m, "pipewright_store_commit_duration_seconds",
                                      "pipewright_store_commit_duration_seconds_count"), 10)
        self.assertEqual(value(m, "pipewright_actions_running"), 0)
        self.assertEqual(value(m, "pipewright_executions_running"), 0)
        self.assertEqual(value(m, "pipewright_work_queue_depth"), 0)
        self.assertGreater(value(m, "pipewright_artifact_store_bytes"), 0)
        info = list(m["pipewright_build_info"]["samples"].items())
        self.assertEqual(len(info), 1)
        labels = dict(info[0][0][1])
        version = subprocess.run([PIPEWRIGHT, "--version"], capture_output=True, text=True)
        self.assertEqual(version.stdout.strip(),
                         "pipewright %s (%s)" % (labels["version"], labels["commit"]))
        self.assertRegex(labels["version"], r"^\d+\.\d+\.\d+$")

    def test_cached_reads_are_counted_by_how_they_were_answered(self):
        """Each GetPipelineState counts once in pipewright_cached_reads_total: computed (miss),
        kept (hit) or shared; on an idle pipeline the reads after the first are kept, and a
        change (a transition disabled) makes the next read compute again."""
        def counts():
            m = self.scrape()
            return {r: value(m, "pipewright_cached_reads_total", operation="GetPipelineState",
                             result=r) or 0.0 for r in ("hit", "miss", "shared")}

        def gained(before, after):
            return {r: after[r] - before[r] for r in before}

        before = counts()
        states = [signed_call(self.server, "GetPipelineState", {"name": "Good"})
                  for _ in range(5)]
        self.assertEqual(len({json.dumps(s, sort_keys=True) for s in states}), 1)
        g = gained(before, counts())
        self.assertEqual(sum(g.values()), 5, g)
        self.assertLessEqual(g["miss"], 1, g)
        self.assertGreaterEqual(g["hit"], 4, g)
        # What the cache keeps is on the page too; one server uses only the owner cache.
        m = self.scrape()
        self.assertGreater(value(m, "pipewright_read_cache_bytes", cache="owner"),
                           0.9 * len(json.dumps(states[0], separators=(",", ":"))))
        self.assertGreaterEqual(value(m, "pipewright_read_cache_answers", cache="owner"), 1)
        self.assertEqual(value(m, "pipewright_read_cache_bytes", cache="stamped"), 0)
        self.assertEqual(value(m, "pipewright_read_cache_answers", cache="stamped"), 0)
        before = counts()
        signed_call(self.server, "DisableStageTransition",
                    {"pipelineName": "Good", "stageName": "Build", "transitionType": "Inbound",
                     "reason": "counting reads"})
        try:
            state = signed_call(self.server, "GetPipelineState", {"name": "Good"})
            build = [s for s in state["stageStates"] if s["stageName"] == "Build"][0]
            self.assertFalse(build["inboundTransitionState"]["enabled"])
            self.assertEqual(gained(before, counts()), {"hit": 0, "miss": 1, "shared": 0})
        finally:
            signed_call(self.server, "EnableStageTransition",
                        {"pipelineName": "Good", "stageName": "Build",
                         "transitionType": "Inbound"})

    def test_metrics_need_the_same_authentication_as_the_api(self):
        status, _, text = get(self.server, "/metrics")
        self.assertEqual(status, 403, text)
        h = signed_headers(self.server, "GET", "/metrics", ADMIN_KEY, "wrong-secret")
        status, _, _ = get(self.server, "/metrics", h)
        self.assertEqual(status, 403)
        m = self.scrape()
        self.assertGreaterEqual(value(m, "pipewright_auth_refusals_total"), 2)

    def test_logs_are_json_lines_with_request_fields_and_no_secret(self):
        signed_call(self.server, "GetPipelineExecution",
                    {"pipelineName": "Good", "pipelineExecutionId": self.ids[0]})

        # Info lines reach the file in batches (every 100 ms): read until the lines this test
        # looks for are there, or the deadline passes (then the assertions below say what
        # is missing).
        def read():
            with open(os.path.join(self.server.data_dir, "server.log"), "rb") as f:
                return f.read().decode("utf-8")

        def complete():
            entries = [json.loads(line) for line in read().splitlines() if line.strip()]
            ended = {e.get("execution_id") for e in entries if e.get("msg") == "execution ended"}
            return set(self.ids) <= ended and any(
                e.get("msg") == "request" and e.get("operation") == "GetPipelineExecution"
                and e.get("execution_id") == self.ids[0] for e in entries)
        try:
            wait_for(complete, timeout=10, what="the log lines of this test")
        except AssertionError:
            pass
        text = read()
        for secret in (ADMIN_SECRET, GIT_TOKEN):
            self.assertNotIn(secret, text)
        entries = [json.loads(line) for line in text.splitlines() if line.strip()]
        for e in entries:
            self.assertIn(e["level"], ("debug", "info", "warning", "error"))
            self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIsInstance(e["msg"], str)
        requests = [e for e in entries if e["msg"] == "request"]
        lookup = [e for e in requests if e.get("operation") == "GetPipelineExecution"
                  and e.get("execution_id") == self.ids[0]]
        self.assertTrue(lookup, requests[-3:])
        self.assertEqual(lookup[-1]["pipeline"], "Good")
        self.assertRegex(lookup[-1]["request_id"], r"^[0-9a-f-]{36}$")
        self.assertIsInstance(lookup[-1]["duration_ms"], int)
        ended = [e for e in entries if e["msg"] == "execution ended" and e["pipeline"] == "Good"]
        self.assertEqual(sorted(e["execution_id"] for e in ended), sorted(self.ids))
        self.assertTrue(all(e["status"] == "Succeeded" for e in ended))


class MetricsBucketTest(harness.ServerTestCase):
    """Path-style S3 owns GET /<bucket>: names of the server's own routes (metrics, health,
    console, logs) are refused, and those routes stay theirs."""

    def test_a_bucket_named_metrics_is_refused_and_other_buckets_work(self):
        import boto3
        import botocore.config
        import botocore.exceptions
        s3 = boto3.client("s3", endpoint_url=self.server.endpoint, region_name="us-east-1",
                          aws_access_key_id="AKIDPIPEWRIGHT", aws_secret_access_key="x",
                          config=botocore.config.Config(s3={"addressing_style": "path"}))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            s3.create_bucket(Bucket="metrics")
        self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidBucketName")
        self.assertIn("reserved", cm.exception.response["Error"]["Message"])
        s3.create_bucket(Bucket="metrics-archive")
        s3.put_object(Bucket="metrics-archive", Key="k", Body=b"v")
        self.assertEqual(s3.get_object(Bucket="metrics-archive", Key="k")["Body"].read(), b"v")
        status, _, text = get(self.server, "/metrics")
        self.assertEqual(status, 200)
        parse_metrics(text)
        # Before: "console" and "logs" were accepted, and a key console/api/session of the
        # bucket console reached the console's sign-in and sign-out instead.
        for name in ("health", "console", "logs"):
            with self.assertRaises(botocore.exceptions.ClientError) as cm:
                s3.create_bucket(Bucket=name)
            self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidBucketName", name)
            self.assertIn("reserved", cm.exception.response["Error"]["Message"])
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        self.assertEqual(names, ["metrics-archive"])


class BackupRestoreTest(harness.ServerTestCase):

    def test_backup_of_a_running_server_restores_pipelines_history_and_logs(self):
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        with open(os.path.join(src, "f.txt"), "w") as f:
            f.write("x\n")
        flag = os.path.join(self.tmp, "fixed")
        gate = os.path.join(self.tmp, "go")
        self.server.ok("CreatePipeline", {"pipeline": pipeline("Flaky", [
            ("Source", [action("S", "Source", "Directory", config={"Path": src}, outputs=["O"])]),
            ("Build", [commands("B", ["echo flaky-log-line", "test -f %s" % flag],
                                inputs=["O"])])])})
        flaky = self.server.ok("ListPipelineExecutions", {"pipelineName": "Flaky"})[
            "pipelineExecutionSummaries"][0]["pipelineExecutionId"]
        wait_execution(self.server, "Flaky", flaky)
        self.server.ok("CreatePipeline", {"pipeline": pipeline("Slow", [
            ("Source", [action("S", "Source", "Directory", config={"Path": src}, outputs=["O"])]),
            ("Build", [commands("B", ["while [ ! -f %s ]; do sleep 0.1; done" % gate],
                                inputs=["O"])])])})
        wait_for(lambda: stage_state(self.server, "Slow", "Build").get("latestExecution", {})
                 .get("status") == "InProgress", what="Slow's Build running")
        history = self.server.ok("ListPipelineExecutions", {"pipelineName": "Flaky"})
        failed_run = [a for a in self.server.ok("ListActionExecutions", {"pipelineName": "Flaky"})[
            "actionExecutionDetails"] if a["actionName"] == "B"][0]["actionExecutionId"]

        archive = os.path.join(self.tmp, "backup.tar.gz")
        r = subprocess.run([PIPEWRIGHT, "backup", "--data-dir", self.server.data_dir,
                            "--to", archive], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("backed up", r.stdout)
        open(gate, "w").close()  # The original carries on after the backup.
        restored = os.path.join(self.tmp, "restored")
        r = subprocess.run([PIPEWRIGHT, "restore", "--from", archive, "--data-dir", restored],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        # Not into a directory in use.
        r2 = subprocess.run([PIPEWRIGHT, "restore", "--from", archive, "--data-dir", restored],
                            capture_output=True, text=True, timeout=120)
        self.assertEqual(r2.returncode, 2)
        self.assertIn("is not empty", r2.stderr)

        second = Server(data_dir=restored, extra_args=["--deploy-root", self.tmp])
        try:
            names = sorted(p["name"] for p in second.ok("ListPipelines")["pipelines"])
            self.assertEqual(names, ["Flaky", "Slow"])
            self.assertEqual(second.ok("ListPipelineExecutions", {"pipelineName": "Flaky"}),
                             history)
            status, _, log = get(second, "/logs/" + failed_run)
            self.assertEqual(status, 200)
            self.assertIn("flaky-log-line", log)
            # The stage that failed before the backup is retried in the restored server.
            open(flag, "w").close()
            second.ok("RetryStageExecution", {"pipelineName": "Flaky", "stageName": "Build",
                                              "pipelineExecutionId": flaky,
                                              "retryMode": "FAILED_ACTIONS"})
            self.assertEqual(wait_execution(second, "Flaky", flaky), "Succeeded")
            # Slow was running at the backup: the restored server fails it as interrupted.
            slow = second.ok("ListPipelineExecutions", {"pipelineName": "Slow"})[
                "pipelineExecutionSummaries"][0]["pipelineExecutionId"]
            self.assertEqual(wait_execution(second, "Slow", slow), "Failed")
        finally:
            second.close()


if __name__ == "__main__":
    unittest.main()
