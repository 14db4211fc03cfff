"""A crash campaign against a real `pipewright serve` ("an engine that never
loses a result"), shared by tests/e2e/test_crash_campaign.py (bounded, in
`make check`) and scripts/crash-campaign (a long run).

One data directory (SQLite), one server at a time on a fixed port, restarted
again and again. While it runs, a mixed workload drives it from a few client
threads: StartPipelineExecution with a clientRequestToken, RetryStageExecution
(FAILED_ACTIONS) on every failed stage, PutApprovalResult, a custom action
completed by the campaign itself (PollForJobs / AcknowledgeJob /
PutJobSuccessResult), and now and then CreatePipeline. A real
`pipewright worker` serves a second custom action type through the same
restarts. Pipelines have parallel groups (several actions with one runOrder)
and sequential runOrders; every Commands action sleeps 0.05-0.5 s (one of
them 1-2.5 s, so kills find processes running), and one or two per pipeline
fail the first time they run in an execution, so retries happen all the time;
10% of the approvals are rejected (and retried).

Every request the server acknowledged (HTTP 200) is written down. After a
random 0.1-2 s the server is killed (`kill -9`, sometimes SIGTERM, which must
exit 0), and then, with the server down and again after it restarted on the
same data directory:

1. `PRAGMA integrity_check` on the SQLite file (read-only) is "ok";
2. every acknowledged CreatePipeline exists, every acknowledged
   StartPipelineExecution id is returned by GetPipelineExecution (and its
   clientRequestToken still gives the same id), every acknowledged retry has
   new attempts of the actions it retried, every acknowledged approval and job
   result is in its action's status;
3. every action run that was InProgress in the database when the server died
   is, as soon as the new server listens, Failed with the restart message
   (Commands, Source, Deploy), still waiting (approvals) or still backed by an
   open job (job actions): nothing InProgress without something behind it;
   and no process the dead server left running for those runs survives the
   new server's Recover;
4. every stage interrupted that way is retryable (GetStageRetryPlan, then
   RetryStageExecution FAILED_ACTIONS by the workload), unless a newer
   execution has run the stage since, and its execution then reaches
   Succeeded;
5. every few kills and at the end the workload stops starting new work and
   everything must settle (deadline): no execution InProgress, no stage whose
   latest execution failed (the workload retries those), nothing stuck;
6. at the end, every Succeeded execution ran every declared action, and the
   latest attempt of each succeeded; every HTTP 500 is a failure.

A job handed out in a PollForJobs answer that a kill (or SIGTERM) cut off is
Dispatched to nobody: it waits out the server's 60 s dispatch lease. That is
slow, not lost: the settle deadline allows for it and the figures count it
(jobs_held_by_dispatch_lease).

Nothing waits with a bare sleep for the server: every wait polls with a
deadline. (The random delay before a kill and the workload's pacing are
sleeps on purpose.)
"""

import collections
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("PW_BINARY_DIR", os.path.join(ROOT, "build"))
PIPEWRIGHT = os.path.join(BUILD, "pipewright")

RESTART_MESSAGE = "server stopped while this action was running"
TERMINAL = ("Succeeded", "Failed", "Stopped", "Superseded", "Cancelled")
PIPEWRIGHT_PREFIX = "Pipewright_20261125."

WORKER_TYPE = {"category": "Build", "owner": "Custom", "provider": "CrashWorker", "version": "1"}
POLLER_TYPE = {"category": "Test", "owner": "Custom", "provider": "CrashPoller", "version": "1"}

# Kinds of actions, for the invariants: local runs die with the server; an
# approval keeps waiting; a job action lives as long as its job.
LOCAL, APPROVAL, JOB = "local", "approval", "job"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Unreachable(Exception):
    """The request got no HTTP answer (the server is down or died mid-request),
    or was not sent at all (sent=False: its server generation is gone)."""

    def __init__(self, message, sent=True):
        super().__init__(message)
        self.sent = sent


# -- pipeline templates ---------------------------------------------------------

def _sleep_cmd(lo_ms=50, hi_ms=500):
    # Random per run (the kill lands at varied moments): 0.05-0.5 s by default.
    return ("ms=$(( $(od -An -N2 -tu2 /dev/urandom) %% %d + %d )); "
            "sleep $(printf '%%d.%%03d' $((ms / 1000)) $((ms %% 1000)))" % (hi_ms - lo_ms, lo_ms))


def _commands(name, run_order, cmds, inputs=("SourceOut",), category="Build"):
    return {"name": name, "runOrder": run_order,
            "actionTypeId": {"category": category, "owner": "AWS", "provider": "Commands",
                             "version": "1"},
            "configuration": {"Commands": "\n".join(cmds)},
            "inputArtifacts": [{"name": n} for n in inputs], "outputArtifacts": []}


def _busy(name, run_order, category="Build", lo_ms=50, hi_ms=500):
    return _commands(name, run_order, [_sleep_cmd(lo_ms, hi_ms), "echo %s done" % name],
                     category=category)


def _flaky(name, run_order, markers, category="Build"):
    """Fails the first time it runs in an execution, succeeds when retried."""
    marker = "%s/#{codepipeline.PipelineExecutionId}.%s" % (markers, name)
    return _commands(name, run_order, [
        _sleep_cmd(),
        "M=%s" % marker,
        'if [ -f "$M" ]; then echo retried; else touch "$M"; '
        'echo "first attempt fails on purpose" >&2; exit 3; fi'], category=category)


def _source(src):
    return {"name": "Src", "runOrder": 1,
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "Directory",
                             "version": "1"},
            "configuration": {"Path": src}, "inputArtifacts": [],
            "outputArtifacts": [{"name": "SourceOut"}]}


def _custom(name, run_order, type_id, inputs=("SourceOut",), outputs=()):
    return {"name": name, "runOrder": run_order, "actionTypeId": dict(type_id),
            "configuration": {}, "inputArtifacts": [{"name": n} for n in inputs],
            "outputArtifacts": [{"name": n} for n in outputs]}


def _approval(name, run_order=1):
    return {"name": name, "runOrder": run_order,
            "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual",
                             "version": "1"},
            "configuration": {"CustomData": "crash campaign"}, "inputArtifacts": [],
            "outputArtifacts": []}


def _deploy(name, run_order, path, artifact):
    return {"name": name, "runOrder": run_order,
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "Directory",
                             "version": "1"},
            "configuration": {"Path": path}, "inputArtifacts": [{"name": artifact}],
            "outputArtifacts": []}


def template_stages(kind, name, src, markers, deploy_root):
    """The stages of a pipeline of template `kind`."""
    deploy = os.path.join(deploy_root, name)
    if kind == "full":
        return [
            ("Source", [_source(src)]),
            ("Build", [_busy("B1", 1), _flaky("B2", 1, markers), _busy("B3", 1),
                       _custom("W1", 2, WORKER_TYPE, outputs=("WorkerOut",)), _busy("B4", 2)]),
            ("Gate", [_approval("Approve"), _busy("G1", 1, "Test")]),
            ("Release", [_deploy("D1", 1, deploy, "WorkerOut"), _custom("J1", 1, POLLER_TYPE),
                         _busy("R1", 2, "Test")]),
        ]
    if kind == "commands":
        return [
            ("Source", [_source(src)]),
            ("Build", [_busy("B1", 1), _busy("B2", 1), _flaky("B3", 1, markers), _busy("B4", 1),
                       _busy("B5", 2), _busy("B6", 2)]),
            # T1 is slow (1-2.5 s), so kills find it running: its process must
            # not outlive the restart (Recover kills what the old server left).
            ("Test", [_busy("T1", 1, "Test", 1000, 2500), _busy("T2", 2, "Test"),
                      _flaky("T3", 3, markers, "Test")]),
        ]
    if kind == "jobs":
        return [
            ("Source", [_source(src)]),
            ("Work", [_custom("W1", 1, WORKER_TYPE, outputs=("WorkerOut",)),
                      _custom("W2", 1, WORKER_TYPE, outputs=("W2Out",)),
                      _custom("J1", 1, POLLER_TYPE), _flaky("F1", 2, markers)]),
            ("Approve", [_approval("Approve")]),
            ("Deploy", [_deploy("D1", 1, deploy, "WorkerOut"), _busy("C1", 1, "Test")]),
        ]
    raise ValueError(kind)


TEMPLATES = ("full", "commands", "jobs")


def action_kinds(stages):
    kinds = {}
    for stage, actions in stages:
        for a in actions:
            t = a["actionTypeId"]
            if t["owner"] == "Custom":
                kinds[(stage, a["name"])] = JOB
            elif t["category"] == "Approval":
                kinds[(stage, a["name"])] = APPROVAL
            else:
                kinds[(stage, a["name"])] = LOCAL
    return kinds


def pipeline_decl(name, stages):
    return {"name": name, "roleArn": "arn:aws:iam::123456789012:role/pipewright",
            "artifactStore": {"type": "S3", "location": "pipewright-artifacts"},
            "stages": [{"name": n, "actions": acts} for n, acts in stages]}


# -- the campaign -----------------------------------------------------------------

class Campaign:
    """One crash campaign. run() returns the figures (a dict); failures are
    in self.failures (each a dict with kind, detail and the server generation)."""

    def __init__(self, kills=20, seed=None, data_dir=None, max_seconds=None, pipelines=4,
                 max_pipelines=10, settle_every=10, sigterm_share=0.15, out=None,
                 settle_timeout=100.0, verbose=False):
        self.kills_wanted = kills
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1, 2 ** 31)
        self.rng = random.Random(self.seed)
        self.max_seconds = max_seconds
        self.initial_pipelines = pipelines
        self.max_pipelines = max_pipelines
        self.settle_every = settle_every
        self.sigterm_share = sigterm_share
        self.settle_timeout = settle_timeout
        self.out = out or sys.stderr
        self.verbose = verbose

        self.tmp = tempfile.mkdtemp(prefix="pw-crash-")
        self.owns_data = data_dir is None
        self.data_dir = os.path.abspath(data_dir) if data_dir else os.path.join(self.tmp, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.db_path = os.path.join(self.data_dir, "pipewright.db")
        self.src = os.path.join(self.tmp, "src")
        self.markers = os.path.join(self.tmp, "markers")
        self.deploy_root = os.path.join(self.tmp, "deploy")
        for d in (self.src, self.markers, self.deploy_root):
            os.makedirs(d)
        with open(os.path.join(self.src, "hello.txt"), "w") as f:
            f.write("hello from the crash campaign\n")
        # Pipelines of this campaign (a reused data directory may hold others).
        self.tag = "cc%s" % uuid.uuid4().hex[:6]

        self.port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.proc = None
        self.gen = 0  # Server generation: 1 for the first start, +1 per restart.
        self.log_path = os.path.join(self.data_dir, "server.log")
        self.worker = None

        self.lock = threading.Lock()
        self.up = threading.Event()        # The server answers; client threads may call.
        self.new_work = threading.Event()  # Starter and creator may add work.
        self.new_work.set()
        self.stopping = threading.Event()
        self.threads = []
        self.local = threading.local()  # A client thread's server generation.

        self.pipelines = {}  # name -> {"kind", "kinds": {(stage, action): kind}, "acked"}
        self.pipeline_seq = 0
        # Acknowledged requests, each {"gen", ...}; "checked" when checked after a kill.
        self.acks = collections.defaultdict(list)
        self.unchecked = collections.defaultdict(list)
        self.interrupted = {}  # (pipeline, execution, stage) -> generation that failed it
        self.held_jobs = []    # Poller jobs whose ack/result did not get an answer.
        self.refusals = collections.Counter()
        self.stuck_items = set()
        self.notes = []
        self.leases = {}  # job id -> where its undelivered dispatch happened
        # [generation, wall start, wall time of the signal, which signal, wall time of the exit]
        self.lifetimes = []  # Unusual but allowed events, for the report.
        self.failures = []
        self.n = collections.Counter()
        self.started_at = None

    # -- reporting ------------------------------------------------------------------
    def say(self, msg):
        self.out.write("[crash-campaign %6.1fs] %s\n" % (
            time.monotonic() - (self.started_at or time.monotonic()), msg))
        self.out.flush()

    def fail(self, kind, detail):
        with self.lock:
            self.failures.append({"kind": kind, "detail": detail, "gen": self.gen})
            self.n["fail:" + kind] += 1
        self.say("FAILURE %s (server generation %d): %s" % (kind, self.gen, detail))

    def log_excerpt(self, lines=60):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read().decode(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "\n".join(data[-lines:])

    # -- HTTP -----------------------------------------------------------------------
    def call(self, op, body, prefix="CodePipeline_20150709.", timeout=15):
        """Returns (status, parsed body); raises Unreachable without an answer.

        A client thread calls only the server generation its iteration began
        with, so nothing it does reaches a restarted server before the checks."""
        gen = getattr(self.local, "gen", None)
        if gen is not None and (gen != self.gen or not self.up.is_set()):
            raise Unreachable("%s: not sent, the server of generation %d is gone" % (op, gen),
                              sent=False)
        data = json.dumps(body).encode()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                conn.request("POST", "/", body=data, headers={
                    "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": prefix + op})
                r = conn.getresponse()
                text = r.read().decode(errors="replace")
                status = r.status
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as e:
            raise Unreachable("%s: %s" % (op, e))
        try:
            parsed = json.loads(text) if text else {}
        except ValueError:
            parsed = text
        if status >= 500:
            self.fail("http-500", "%s %s -> %s %s" % (op, json.dumps(body)[:300], status,
                                                       str(parsed)[:300]))
        return status, parsed

    def ok(self, op, body, **kw):
        status, out = self.call(op, body, **kw)
        if status != 200:
            raise AssertionError("%s %s: %s %s" % (op, json.dumps(body)[:200], status, out))
        return out

    def list_all(self, op, body, key):
        items, token = [], None
        while True:
            b = dict(body, maxResults=100)
            if token:
                b["nextToken"] = token
            out = self.ok(op, b)
            items += out.get(key, [])
            token = out.get("nextToken")
            if not token:
                return items

    def runs_of(self, pipeline, execution_id):
        return self.list_all("ListActionExecutions", {
            "pipelineName": pipeline, "filter": {"pipelineExecutionId": execution_id}},
            "actionExecutionDetails")

    def runs_or_none(self, pipeline, execution):
        """runs_of, or None when the execution (or its pipeline) does not exist."""
        try:
            return self.runs_of(pipeline, execution)
        except AssertionError as e:
            if "NotFoundException" in str(e):
                return None
            raise

    def executions_of(self, pipeline):
        return self.list_all("ListPipelineExecutions", {"pipelineName": pipeline},
                             "pipelineExecutionSummaries")

    # -- processes ------------------------------------------------------------------
    def server_argv(self):
        return [PIPEWRIGHT, "serve", "--listen", "127.0.0.1:%d" % self.port,
                "--data-dir", self.data_dir, "--sandbox", "none",
                "--deploy-root", self.deploy_root, "--poll-wait", "1", "--job-timeout", "60"]

    def start_server(self):
        self.gen += 1
        deadline = time.monotonic() + 20
        while True:
            with open(self.log_path, "ab") as log:
                log.write(("=== crash campaign: server generation %d (seed %d) ===\n"
                           % (self.gen, self.seed)).encode())
                log.flush()
                proc = subprocess.Popen(self.server_argv(), stdout=subprocess.PIPE, stderr=log)
            line = proc.stdout.readline().decode().strip()
            if line.startswith("listening on "):
                self.proc = proc
                self.lifetimes.append([self.gen, time.time(), None, None, None])
                self.n["starts"] += 1
                return
            code = proc.wait(timeout=30)
            proc.stdout.close()
            # Another process may have taken the port for a moment: try again.
            if "address already in use" in self.log_excerpt(5) and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            self.fail("restart-crash", "server generation %d did not start (exit %s, first line "
                      "%r); log:\n%s" % (self.gen, code, line, self.log_excerpt()))
            raise RuntimeError("the server did not start")

    def stop_server(self, sig):
        """Signals the server and waits for it; returns its exit code."""
        proc, self.proc = self.proc, None
        self.lifetimes[-1][2:4] = [time.time(), "SIGTERM" if sig == signal.SIGTERM else "kill -9"]
        proc.send_signal(sig)
        self.up.clear()  # Client threads stop sending; requests in flight die with it.
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.fail("sigterm-hang", "server generation %d did not exit within 60 s of signal "
                      "%d; log:\n%s" % (self.gen, sig, self.log_excerpt()))
            proc.kill()
            code = proc.wait()
        self.lifetimes[-1][4] = time.time()
        proc.stdout.close()
        return code

    def start_worker(self):
        work = os.path.join(self.tmp, "worker-work")
        program = ("%s; echo \"$PIPEWRIGHT_ACTION $PIPEWRIGHT_JOB_ID\" > worked.txt"
                   % _sleep_cmd())
        self.worker_log = open(os.path.join(self.tmp, "worker.log"), "w+")
        self.worker = subprocess.Popen(
            [PIPEWRIGHT, "worker", "--endpoint", self.endpoint, "--action-type",
             "Build/CrashWorker/1", "--max-jobs", "4", "--poll-interval", "0.1",
             "--work-dir", work, "--", "/bin/sh", "-c", program],
            stdout=subprocess.DEVNULL, stderr=self.worker_log,
            env=dict(os.environ, AWS_ACCESS_KEY_ID="AKIDCRASH", AWS_SECRET_ACCESS_KEY="x",
                     AWS_DEFAULT_REGION="us-east-1"))

    def stop_worker(self):
        if self.worker is None:
            return
        if self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
            try:
                code = self.worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                code = self.worker.wait()
                self.fail("worker-hang", "the worker did not exit within 60 s of SIGTERM")
            if code != 0:
                self.fail("worker-exit", "the worker exited %s on SIGTERM" % code)
        else:
            self.fail("worker-died", "the worker exited early with %s; log:\n%s"
                      % (self.worker.returncode, self.worker_tail()))
        self.worker_log.close()
        self.worker = None

    def worker_tail(self, lines=30):
        try:
            with open(os.path.join(self.tmp, "worker.log")) as f:
                return "\n".join(f.read().splitlines()[-lines:])
        except OSError:
            return ""

    # -- the database (read-only) ---------------------------------------------------
    def db(self):
        return sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True, timeout=30)

    def integrity_check(self, when):
        self.n["integrity_checks"] += 1
        try:
            con = self.db()
            try:
                rows = [r[0] for r in con.execute("PRAGMA integrity_check")]
            finally:
                con.close()
        except sqlite3.Error as e:
            rows = ["error: %s" % e]
        if rows != ["ok"]:
            self.fail("integrity", "%s: PRAGMA integrity_check -> %s" % (when, rows[:10]))

    def snapshot(self):
        """What the database held when the server died: InProgress runs, open jobs."""
        con = self.db()
        try:
            runs = [dict(zip(("id", "execution", "pipeline", "stage", "action"), r))
                    for r in con.execute("SELECT id, execution_id, pipeline, stage, action "
                                         "FROM action_executions WHERE status = 'InProgress'")]
            jobs = self.jobs_from(con)
        finally:
            con.close()
        return runs, jobs

    @staticmethod
    def jobs_from(con):
        jobs = {}
        for key, value in con.execute("SELECT key, value FROM kv WHERE key LIKE 'job/%'"):
            try:
                doc = json.loads(value)
            except ValueError:
                continue
            jobs.setdefault(doc.get("run_id", ""), []).append(doc)
        return jobs

    def live_jobs(self):
        con = self.db()
        try:
            return self.jobs_from(con)
        finally:
            con.close()

    @staticmethod
    def open_job(jobs, run_id):
        return [j for j in jobs.get(run_id, ())
                if j.get("status") in ("Queued", "Dispatched", "InProgress")]

    # -- workload ---------------------------------------------------------------------
    def record(self, kind, **item):
        with self.lock:
            item["gen"] = self.gen
            self.acks[kind].append(item)
            self.unchecked[kind].append(item)
            self.n["acked:" + kind] += 1

    def create_pipeline(self, rng, kind=None):
        with self.lock:
            self.pipeline_seq += 1
            kind = kind or rng.choice(TEMPLATES)
            name = "%s-%s-%d" % (self.tag, kind, self.pipeline_seq)
            stages = template_stages(kind, name, self.src, self.markers, self.deploy_root)
            self.pipelines[name] = {"kind": kind, "kinds": action_kinds(stages), "acked": False}
        status, out = self.call("CreatePipeline", {"pipeline": pipeline_decl(name, stages)})
        if status == 200:
            with self.lock:
                self.pipelines[name]["acked"] = True
            self.record("create", pipeline=name)
        else:
            self.fail("create-refused", "CreatePipeline %s: %s %s" % (name, status, out))

    def known_pipelines(self):
        with self.lock:
            return list(self.pipelines)

    def kind_of(self, pipeline, stage, action):
        info = self.pipelines.get(pipeline)
        return info["kinds"].get((stage, action)) if info else None

    def client(self, name, body_fn, pace):
        """Runs body_fn(rng) in a loop while the campaign lasts, a random pause of
        `pace` (lo, hi) seconds before each round; waits while the server is down."""
        rng = random.Random("%d/%s" % (self.seed, name))

        def loop():
            while not self.stopping.is_set():
                time.sleep(rng.uniform(*pace))  # Pacing, not synchronisation.
                if not self.up.wait(timeout=0.2):
                    continue
                self.local.gen = self.gen
                try:
                    body_fn(rng)
                except Unreachable as e:
                    # The server went away mid-request: nothing was acknowledged.
                    with self.lock:
                        self.n["unanswered" if e.sent else "not_sent"] += 1
                except Exception:  # A bug in the campaign itself: fail loudly.
                    self.fail("client-error", "%s: %s" % (name, traceback.format_exc()))
                    time.sleep(0.5)
        t = threading.Thread(target=loop, name=name, daemon=True)
        self.threads.append(t)
        t.start()

    def starter(self, rng):
        if not self.new_work.is_set():
            return
        with self.lock:
            names = [n for n, p in self.pipelines.items() if p["acked"]]
        if not names:
            return
        name = rng.choice(names)
        latest = self.ok("ListPipelineExecutions", {"pipelineName": name, "maxResults": 1})
        latest = latest.get("pipelineExecutionSummaries", [])
        # Mostly start when the pipeline is idle (so an interrupted execution
        # is usually retried before a newer one takes its stage), sometimes
        # regardless (superseding).
        if latest and latest[0]["status"] in ("InProgress", "Failed") and rng.random() < 0.8:
            return
        token = str(uuid.uuid4())
        status, out = self.call("StartPipelineExecution", {"name": name,
                                                           "clientRequestToken": token})
        if status == 200:
            self.record("start", pipeline=name, execution=out["pipelineExecutionId"],
                        token=token)
        else:
            self.fail("start-refused", "StartPipelineExecution %s: %s %s" % (name, status, out))

    def creator(self, rng):
        if not self.new_work.is_set() or len(self.pipelines) >= self.max_pipelines:
            return
        if rng.random() < 0.15:
            self.create_pipeline(rng)

    def operator(self, rng):
        """Answers approvals and retries every failed stage (FAILED_ACTIONS)."""
        names = self.known_pipelines()
        rng.shuffle(names)
        for name in names:
            if not self.up.is_set():
                return
            status, state = self.call("GetPipelineState", {"name": name})
            if status != 200:
                continue  # Not created (yet): an unacknowledged CreatePipeline.
            for st in state.get("stageStates", []):
                ex = st.get("latestExecution", {})
                for a in st.get("actionStates", []):
                    latest = a.get("latestExecution", {})
                    if latest.get("status") == "InProgress" and latest.get("token"):
                        self.approve(rng, name, st["stageName"], a["actionName"], latest,
                                     ex.get("pipelineExecutionId"))
                if ex.get("status") == "Failed":
                    self.retry(name, st["stageName"], ex["pipelineExecutionId"])

    def approve(self, rng, pipeline, stage, action, latest, execution):
        decision = "Rejected" if rng.random() < 0.1 else "Approved"
        status, out = self.call("PutApprovalResult", {
            "pipelineName": pipeline, "stageName": stage, "actionName": action,
            "result": {"summary": "crash campaign says " + decision, "status": decision},
            "token": latest["token"]})
        if status == 200:
            self.record("approval", pipeline=pipeline, stage=stage, action=action,
                        execution=execution, run=latest["actionExecutionId"],
                        decision=decision)
        else:
            with self.lock:
                self.refusals["PutApprovalResult:" + str(out.get("__type") if isinstance(
                    out, dict) else status)] += 1

    def retry(self, pipeline, stage, execution):
        runs = self.runs_of(pipeline, execution)
        before = collections.defaultdict(set)
        failed = set()
        latest = {}
        for r in runs:
            if r["stageName"] != stage:
                continue
            before[r["actionName"]].add(r["actionExecutionId"])
            if r["actionName"] not in latest or r["startTime"] >= latest[r["actionName"]][0]:
                latest[r["actionName"]] = (r["startTime"], r["status"])
        failed = {a for a, (_, s) in latest.items() if s in ("Failed", "Abandoned")}
        status, out = self.call("RetryStageExecution", {
            "pipelineName": pipeline, "stageName": stage, "pipelineExecutionId": execution,
            "retryMode": "FAILED_ACTIONS"})
        if status == 200:
            self.record("retry", pipeline=pipeline, stage=stage, execution=execution,
                        before={a: sorted(before[a]) for a in failed}, at=time.monotonic())
            return
        err = out.get("__type", str(status)) if isinstance(out, dict) else str(status)
        with self.lock:
            self.refusals["RetryStageExecution:" + err] += 1
        # Races with the other operator, a newer execution taking the stage, or
        # a stage still finishing a sibling are expected; anything else is not.
        if err not in ("StageNotRetryableException", "NotLatestPipelineExecutionException"):
            self.fail("retry-refused", "RetryStageExecution %s/%s/%s: %s %s"
                      % (pipeline, stage, execution, status, out))

    def poller(self, rng):
        """Serves the CrashPoller custom action: poll, acknowledge, work, report success."""
        self.finish_held_jobs()
        out = self.ok("PollForJobs", {"actionTypeId": POLLER_TYPE, "maxBatchSize": 3},
                      timeout=10)
        for job in out.get("jobs", []):
            ctx = job["data"]["pipelineContext"]
            held = {"id": job["id"], "nonce": job["nonce"], "pipeline": ctx["pipelineName"],
                    "execution": ctx["pipelineExecutionId"], "stage": ctx["stage"]["name"],
                    "action": ctx["action"]["name"], "run": ctx["action"]["actionExecutionId"],
                    "acked": False}
            with self.lock:
                self.held_jobs.append(held)
        time.sleep(rng.uniform(0.05, 0.3))  # The job's work.
        self.finish_held_jobs()

    def finish_held_jobs(self):
        with self.lock:
            held = list(self.held_jobs)
        for job in held:
            if not job["acked"]:
                status, out = self.call("AcknowledgeJob", {"jobId": job["id"],
                                                           "nonce": job["nonce"]})
                if status != 200:
                    # Handed out again (the dispatch was not durable, or it timed out).
                    with self.lock:
                        self.refusals["AcknowledgeJob:" + str(out.get("__type"))] += 1
                        self.notes.append("generation %d: AcknowledgeJob %s refused: %s"
                                          % (self.gen, job["id"], out))
                        self.held_jobs.remove(job)
                    continue
                job["acked"] = True
            status, out = self.call("PutJobSuccessResult", {
                "jobId": job["id"], "executionDetails": {"summary": "done by the crash campaign",
                                                         "externalExecutionId": job["id"],
                                                         "percentComplete": 100}})
            with self.lock:
                self.held_jobs.remove(job)
            if status == 200:
                self.record("job", **{k: job[k] for k in ("id", "pipeline", "execution", "stage",
                                                          "action", "run")})
            else:
                # An earlier answer that did not reach us may have done it already.
                with self.lock:
                    self.refusals["PutJobSuccessResult:" + str(out.get("__type"))] += 1
                    self.notes.append("generation %d: PutJobSuccessResult %s refused: %s"
                                      % (self.gen, job["id"], out))

    # -- checks -----------------------------------------------------------------------
    def check_recovery(self, snapshot_runs, snapshot_jobs):
        """Right after a restart: every run that was InProgress when the server died."""
        by_execution = collections.defaultdict(list)
        for r in snapshot_runs:
            if r["pipeline"] in self.pipelines:
                by_execution[(r["pipeline"], r["execution"])].append(r)
        live_jobs = None
        recovered = set()  # Local runs Recover failed: no process of theirs may live on.
        for (pipeline, execution), dead in by_execution.items():
            now = {r["actionExecutionId"]: r
                   for r in self.runs_or_none(pipeline, execution) or []}
            for r in dead:
                kind = self.kind_of(pipeline, r["stage"], r["action"])
                got = now.get(r["id"])
                where = "%s/%s/%s run %s (execution %s)" % (pipeline, r["stage"], r["action"],
                                                            r["id"], execution)
                if got is None:
                    self.n["lost"] += 1
                    self.fail("lost-run", "%s was InProgress in the database and is gone after "
                              "the restart" % where)
                    continue
                status = got["status"]
                message = (got.get("output", {}).get("executionResult", {})
                           .get("errorDetails", {}).get("message", ""))
                if kind == LOCAL:
                    self.n["interrupted_runs"] += 1
                    if status == "Failed" and RESTART_MESSAGE in message:
                        self.interrupted[(pipeline, execution, r["stage"])] = self.gen
                        recovered.add(r["id"])
                    elif status == "InProgress":
                        self.stuck(where)
                        self.fail("stuck-run", "%s stayed InProgress after the restart (no "
                                  "process can be behind it)" % where)
                    else:
                        self.fail("recover-status", "%s: after the restart %s %r, expected "
                                  "Failed with the restart message" % (where, status, message))
                elif kind == APPROVAL:
                    answered_now = any(a["run"] == r["id"] and a["gen"] == self.gen
                                       for a in self.acks.get("approval", []))
                    if status != "InProgress" and not answered_now:
                        self.fail("approval-lost", "%s was a waiting approval; after the "
                                  "restart it is %s %r" % (where, status, message))
                elif kind == JOB:
                    if status != "InProgress":
                        continue  # Its worker reported meanwhile.
                    if live_jobs is None:
                        live_jobs = self.live_jobs()
                    if not self.open_job(live_jobs, r["id"]):
                        # Recover creates the job of a run committed without one; read again.
                        live_jobs = self.live_jobs()
                        if not self.open_job(live_jobs, r["id"]) and self.run_status(
                                pipeline, execution, r["id"]) == "InProgress":
                            self.stuck(where)
                            self.fail("stuck-job-run", "%s is InProgress with no open job "
                                      "after the restart; jobs of the run: %s"
                                      % (where, live_jobs.get(r["id"])))
        self.check_orphans(recovered)
        # The interrupted stages of this restart are retryable (unless a newer
        # execution ran them since, or a sibling is still running).
        for (pipeline, execution, stage), gen in list(self.interrupted.items()):
            if gen != self.gen:
                continue
            self.n["interrupted_stages"] += 1
            status, plan = self.call("GetStageRetryPlan", {
                "pipelineName": pipeline, "stageName": stage, "pipelineExecutionId": execution,
                "retryMode": "FAILED_ACTIONS"}, prefix=PIPEWRIGHT_PREFIX)
            if status != 200:
                self.fail("retry-plan", "GetStageRetryPlan %s/%s/%s: %s %s"
                          % (pipeline, stage, execution, status, plan))
                continue
            if plan.get("retryable"):
                self.n["interrupted_retryable"] += 1
            elif plan.get("errorCode") == "NotLatestPipelineExecutionException" or \
                    "still has actions in progress" in plan.get("reason", "") or \
                    "already in progress" in plan.get("reason", "") or \
                    "superseded" in plan.get("reason", ""):
                self.n["interrupted_not_yet"] += 1
            else:
                self.fail("not-retryable", "interrupted stage %s/%s of %s is not retryable: %s"
                          % (pipeline, stage, execution, plan))

    @staticmethod
    def action_processes(run_ids):
        """pid -> run id of live processes started for `run_ids` (by their environment)."""
        found = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/environ" % pid, "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue  # Gone meanwhile, or not ours.
            for var in env:
                if var.startswith(b"PIPEWRIGHT_ACTION_EXECUTION_ID="):
                    run = var.split(b"=", 1)[1].decode(errors="replace")
                    if run in run_ids:
                        found[int(pid)] = run
                    break
        return found

    def check_orphans(self, run_ids):
        """Recover killed the processes of the runs it failed (they must not run
        beside a retry). SIGKILLed processes take a moment to go: poll, 5 s."""
        if not run_ids:
            return
        deadline = time.monotonic() + 5
        left = self.action_processes(run_ids)
        self.n["orphans_seen"] += len(left)
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = self.action_processes(run_ids)
        if left:
            details = []
            for pid, run in left.items():
                try:
                    with open("/proc/%d/cmdline" % pid, "rb") as f:
                        details.append("pid %d (%s) of run %s" % (
                            pid, f.read().replace(b"\0", b" ").decode(errors="replace")[:100],
                            run))
                except OSError:
                    pass
            if details:
                self.fail("orphan", "processes of interrupted runs still alive 5 s after the "
                          "restart: %s" % details)

    def check_succeeded_executions(self):
        """A Succeeded execution ran every declared action, and each one's latest run succeeded."""
        for name in self.known_pipelines():
            info = self.pipelines[name]
            if not info["acked"]:
                continue
            for e in self.executions_of(name):
                if e["status"] != "Succeeded":
                    continue
                self.n["succeeded_executions_checked"] += 1
                latest = {}
                for r in self.runs_of(name, e["pipelineExecutionId"]):
                    key = (r["stageName"], r["actionName"])
                    if key not in latest or r["startTime"] > latest[key]["startTime"] or (
                            r["startTime"] == latest[key]["startTime"] and
                            r["status"] == "Succeeded"):
                        latest[key] = r
                bad = sorted("%s/%s: %s" % (k[0], k[1], latest[k]["status"] if k in latest
                                            else "never ran") for k in info["kinds"]
                             if k not in latest or latest[k]["status"] != "Succeeded")
                if bad:
                    self.fail("inconsistent", "%s execution %s is Succeeded but %s"
                              % (name, e["pipelineExecutionId"], bad))

    def stuck(self, what):
        with self.lock:
            self.stuck_items.add(what)

    def run_status(self, pipeline, execution, run_id):
        for r in self.runs_of(pipeline, execution):
            if r["actionExecutionId"] == run_id:
                return r["status"]
        return None

    def check_acks(self, everything=False):
        """Acknowledged requests survived: all since the last check, or all of them."""
        with self.lock:
            if everything:
                todo = {k: list(v) for k, v in self.acks.items()}
            else:
                todo = {k: list(v) for k, v in self.unchecked.items()}
            self.unchecked.clear()
        runs_cache = {}

        def runs(pipeline, execution):
            if (pipeline, execution) not in runs_cache:
                runs_cache[(pipeline, execution)] = self.runs_or_none(pipeline, execution) or []
            return runs_cache[(pipeline, execution)]

        def lost(kind, detail):
            self.n["lost"] += 1
            self.fail("lost-" + kind, detail)

        for item in todo.get("create", []):
            self.n["checked"] += 1
            status, out = self.call("GetPipeline", {"name": item["pipeline"]})
            if status != 200:
                lost("create", "CreatePipeline %s was acknowledged by generation %d; GetPipeline "
                     "now: %s %s" % (item["pipeline"], item["gen"], status, out))
        for item in todo.get("start", []):
            self.n["checked"] += 1
            status, out = self.call("GetPipelineExecution", {
                "pipelineName": item["pipeline"], "pipelineExecutionId": item["execution"]})
            if status != 200:
                lost("start", "StartPipelineExecution %s -> %s was acknowledged by generation %d;"
                     " GetPipelineExecution now: %s %s" % (item["pipeline"], item["execution"],
                                                          item["gen"], status, out))
                continue
            # The clientRequestToken is as durable as the execution.
            status, out = self.call("StartPipelineExecution", {
                "name": item["pipeline"], "clientRequestToken": item["token"]})
            if status != 200 or out.get("pipelineExecutionId") != item["execution"]:
                lost("token", "StartPipelineExecution %s with token %s gave %s; now %s %s"
                     % (item["pipeline"], item["token"], item["execution"], status, out))
        for item in todo.get("retry", []):
            self.n["checked"] += 1
            have = collections.defaultdict(set)
            for r in runs(item["pipeline"], item["execution"]):
                if r["stageName"] == item["stage"]:
                    have[r["actionName"]].add(r["actionExecutionId"])
            missing = [a for a, ids in item["before"].items() if not have[a] - set(ids)]
            if missing:
                lost("retry", "RetryStageExecution %s/%s/%s acknowledged by generation %d: no "
                     "new attempt of %s" % (item["pipeline"], item["stage"], item["execution"],
                                            item["gen"], missing))
        for item in todo.get("approval", []):
            self.n["checked"] += 1
            want = "Succeeded" if item["decision"] == "Approved" else "Failed"
            got = None
            for r in runs(item["pipeline"], item["execution"]):
                if r["actionExecutionId"] == item["run"]:
                    got = r["status"]
            if got != want:
                lost("approval", "PutApprovalResult %s on %s/%s/%s run %s acknowledged by "
                     "generation %d; the run is now %s" % (item["decision"], item["pipeline"],
                                                           item["stage"], item["action"],
                                                           item["run"], item["gen"], got))
        for item in todo.get("job", []):
            self.n["checked"] += 1
            got = None
            for r in runs(item["pipeline"], item["execution"]):
                if r["actionExecutionId"] == item["run"]:
                    got = r["status"]
            if got != "Succeeded":
                lost("job", "PutJobSuccessResult of job %s (%s/%s/%s run %s) acknowledged by "
                     "generation %d; the run is now %s" % (item["id"], item["pipeline"],
                                                           item["stage"], item["action"],
                                                           item["run"], item["gen"], got))

    def busy(self):
        """What is not settled yet: InProgress executions and failed latest stages."""
        busy = []
        for name in self.known_pipelines():
            status, state = self.call("GetPipelineState", {"name": name})
            if status != 200:
                continue
            for st in state.get("stageStates", []):
                ex = st.get("latestExecution", {})
                if ex.get("status") == "Failed":
                    busy.append((name, ex["pipelineExecutionId"], "stage %s Failed, not yet "
                                 "retried" % st["stageName"]))
            for e in self.executions_of(name):
                if e["status"] in ("InProgress", "Stopping"):
                    busy.append((name, e["pipelineExecutionId"], e["status"]))
        return busy

    def settle(self, final=False):
        """No new work; everything must end (approvals answered, failures retried)."""
        self.new_work.clear()
        t0 = time.monotonic()
        self.n["settles"] += 1
        busy = []
        told = False
        while time.monotonic() - t0 < self.settle_timeout:
            busy = self.busy()
            if not busy:
                break
            if time.monotonic() - t0 > 5:
                self.note_leases()
            if not told and time.monotonic() - t0 > 15:
                # Slow, not yet stuck (a job handed out in an answer the kill cut
                # off waits out its 60 s dispatch timeout): say what it waits for.
                told = True
                self.say("settling for 15s; waiting for: %s" % "; ".join(
                    self.describe(name, execution, what) for name, execution, what in busy))
            time.sleep(0.25)
        else:
            busy = self.busy()
        took = time.monotonic() - t0
        if busy:
            self.explain_stuck(busy)
        else:
            self.say("settled in %.1fs" % took)
        self.n["settle_seconds_max"] = max(self.n["settle_seconds_max"], round(took))
        if not final:
            self.new_work.set()

    def describe(self, name, execution, what):
        jobs = self.live_jobs()
        inprogress = []
        for r in self.runs_of(name, execution):
            if r["status"] == "InProgress":
                kind = self.kind_of(name, r["stageName"], r["actionName"])
                inprogress.append("%s/%s %s (%s%s)" % (
                    r["stageName"], r["actionName"], r["actionExecutionId"], kind,
                    ", jobs %s" % [(j["id"], j["status"], round(time.time() - j.get(
                        "dispatched", 0) if j.get("dispatched") else -1)) for j in jobs.get(
                        r["actionExecutionId"], [])] if kind == JOB else ""))
        text = "%s execution %s: %s; InProgress runs: %s" % (name, execution, what,
                                                            inprogress or "none")
        # What the worker says about those jobs (a job it never saw, or one
        # whose acknowledgement failed, is Dispatched until its lease ends).
        for r in inprogress:
            for job_id in re.findall(r"\('([0-9a-f-]{36})', 'Dispatched'", r):
                said = [line for line in self.worker_tail(100000).splitlines() if job_id in line]
                text += "; worker on %s: %s" % (job_id, said or "nothing")
                for j in jobs.get(r.split(" ")[1], []):
                    if j["id"] == job_id:
                        text += "; dispatched by %s" % self.generation_at(j.get("dispatched", 0))
        return text

    def note_leases(self):
        """Jobs handed out (Dispatched) in an answer nobody received wait out the
        server's 60 s dispatch lease: count them, and whose answer it was."""
        now = time.time()
        for run_jobs in self.live_jobs().values():
            for j in run_jobs:
                if j.get("status") != "Dispatched" or now - j.get("dispatched", now) < 5:
                    continue
                if j["id"] in self.leases or j.get("pipeline") not in self.pipelines:
                    continue
                where = self.generation_at(j["dispatched"])
                self.leases[j["id"]] = where
                self.n["lease_waits"] += 1
                if any(how == "SIGTERM" and abs(j["dispatched"] - signalled) < 0.05
                       for _, _, signalled, how, _ in self.lifetimes if signalled):
                    self.n["lease_waits_near_sigterm"] += 1
                self.notes.append("job %s (%s/%s) Dispatched %.0fs ago, no worker has it: "
                                  "dispatched by %s" % (j["id"], j.get("pipeline"), j.get("action"),
                                                        now - j["dispatched"], where))

    def generation_at(self, when):
        """Which server generation was up at wall-clock `when`, and how it ended."""
        for gen, started, signalled, how, exited in self.lifetimes:
            if started <= when and (signalled is None or when <= signalled):
                return "generation %d (%.2fs after its start, %s)" % (
                    gen, when - started, "still running" if signalled is None else
                    "%.3fs before its %s" % (signalled - when, how))
            if signalled is not None and signalled < when <= (exited or when):
                return ("generation %d, %.3fs after its %s and %.3fs before it exited (the "
                        "answer cannot have been delivered)" % (gen, when - signalled, how,
                                                                 exited - when))
        return "no generation (at %.3f)" % when

    def explain_stuck(self, busy):
        for name, execution, what in busy:
            self.stuck("%s execution %s" % (name, execution))
            self.fail("stuck-execution", "did not settle within %.0fs: %s" % (
                self.settle_timeout, self.describe(name, execution, what)))

    def check_interrupted(self):
        """At the end: every interrupted stage was retried and its execution succeeded,
        or a newer execution ran the stage since (not retryable by design)."""
        retried = collections.defaultdict(list)
        for item in self.acks.get("retry", []):
            retried[(item["pipeline"], item["execution"], item["stage"])].append(item["gen"])
        statuses = {}
        for (pipeline, execution, stage), gen in self.interrupted.items():
            if (pipeline, execution) not in statuses:
                statuses[(pipeline, execution)] = self.ok("GetPipelineExecution", {
                    "pipelineName": pipeline, "pipelineExecutionId": execution})[
                        "pipelineExecution"]["status"]
            status = statuses[(pipeline, execution)]
            after = [g for g in retried[(pipeline, execution, stage)] if g >= gen]
            if status == "Succeeded" and after:
                self.n["interrupted_retried_succeeded"] += 1
            elif status == "Succeeded":
                # Retried by a request whose answer a kill cut off (its new
                # attempts ran); check_succeeded_executions checks them.
                self.n["interrupted_retried_unanswered_succeeded"] += 1
            elif status in ("Failed", "Superseded"):
                self.n["interrupted_superseded"] += 1
            else:
                self.stuck("%s execution %s" % (pipeline, execution))
                self.fail("stuck-interrupted", "%s execution %s (stage %s interrupted by "
                          "generation %d's start) is %s at the end" % (pipeline, execution,
                                                                       stage, gen, status))

    # -- the loop ---------------------------------------------------------------------
    def setup(self):
        self.start_server()
        for t in (WORKER_TYPE, POLLER_TYPE):
            body = {"category": t["category"], "provider": t["provider"], "version": "1",
                    "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
                    "outputArtifactDetails": {"minimumCount": 0,
                                              "maximumCount": 1 if t is WORKER_TYPE else 0}}
            status, out = self.call("CreateCustomActionType", body)
            if status != 200 and "Exists" not in str(out):
                raise AssertionError("CreateCustomActionType: %s %s" % (status, out))
        rng = random.Random(self.seed)
        for i in range(self.initial_pipelines):
            self.create_pipeline(rng, TEMPLATES[i % len(TEMPLATES)])
        self.start_worker()
        self.up.set()
        self.client("starter", self.starter, (0.05, 0.3))
        self.client("creator", self.creator, (0.3, 1.0))
        self.client("operator-1", self.operator, (0.05, 0.15))
        self.client("operator-2", self.operator, (0.05, 0.15))
        self.client("poller", self.poller, (0, 0.05))

    def kill_once(self):
        sigterm = self.rng.random() < self.sigterm_share
        sig = signal.SIGTERM if sigterm else signal.SIGKILL
        if sigterm:
            self.n["sigterms"] += 1
        else:
            self.n["kills"] += 1
        code = self.stop_server(sig)
        if sigterm and code != 0:
            self.fail("sigterm-exit", "SIGTERM: server generation %d exited %s; log:\n%s"
                      % (self.gen, code, self.log_excerpt()))
        self.integrity_check("after %s of generation %d" % ("SIGTERM" if sigterm else "kill -9",
                                                             self.gen))
        runs, jobs = self.snapshot()
        # Processes the dead server left running (kill -9 does not reach its
        # children); the new server's Recover must end them.
        self.n["leftover_processes"] += len(self.action_processes({r["id"] for r in runs}))
        self.start_server()
        self.n["restarts"] += 1
        self.check_recovery(runs, jobs)
        self.check_acks()
        self.up.set()

    def run(self):
        self.started_at = time.monotonic()
        self.say("seed %d, data directory %s, %d kills wanted%s" % (
            self.seed, self.data_dir, self.kills_wanted,
            ", at most %.0fs" % self.max_seconds if self.max_seconds else ""))
        try:
            self.setup()
            done = 0
            while done < self.kills_wanted:
                if self.max_seconds and time.monotonic() - self.started_at > self.max_seconds:
                    self.say("time budget reached after %d kills" % done)
                    break
                if self.failures and any(f["kind"] == "restart-crash" for f in self.failures):
                    break
                time.sleep(self.rng.uniform(0.1, 2.0))  # The random moment of the kill.
                self.kill_once()
                done += 1
                if self.verbose or done % 10 == 0:
                    self.say("%d kills: %s" % (done, self.brief()))
                if self.settle_every and done % self.settle_every == 0 and done < self.kills_wanted:
                    self.settle()
            self.settle(final=True)
            self.check_interrupted()
            self.check_acks(everything=True)
            self.check_succeeded_executions()
        except RuntimeError as e:
            if not self.failures:
                self.fail("campaign", str(e))
        except Exception:
            self.fail("campaign-error", traceback.format_exc())
        finally:
            self.shutdown()
        return self.figures()

    def shutdown(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=30)
        self.stop_worker()
        if self.proc is not None:
            code = self.stop_server(signal.SIGTERM)
            self.n["sigterms"] += 1
            if code != 0:
                self.fail("sigterm-exit", "final SIGTERM: exit %s; log:\n%s"
                          % (code, self.log_excerpt()))
            self.integrity_check("after the final SIGTERM")

    def brief(self):
        f = self.figures()
        return ", ".join("%s %s" % (k, f[k]) for k in (
            "kills", "sigterms", "restarts", "acknowledged", "lost", "stuck",
            "retries_acknowledged",
            "integrity_failures"))

    def figures(self):
        n = self.n
        acked = sum(len(v) for v in self.acks.values())
        return {
            "seed": self.seed,
            "kills": n["kills"],
            "sigterms": n["sigterms"],
            "restarts": n["restarts"],
            "acknowledged": acked,
            "acknowledged_creates": len(self.acks.get("create", [])),
            "acknowledged_starts": len(self.acks.get("start", [])),
            "acknowledged_approvals": len(self.acks.get("approval", [])),
            "acknowledged_job_results": len(self.acks.get("job", [])),
            "retries_acknowledged": len(self.acks.get("retry", [])),
            "acknowledged_checks": n["checked"],
            "lost": n["lost"],
            "stuck": len(self.stuck_items),
            "interrupted_runs": n["interrupted_runs"],
            "interrupted_stages": len(self.interrupted),
            "interrupted_retried_succeeded": n["interrupted_retried_succeeded"],
            "interrupted_retried_unanswered_succeeded":
                n["interrupted_retried_unanswered_succeeded"],
            "interrupted_superseded": n["interrupted_superseded"],
            "leftover_processes_at_restart": n["leftover_processes"],
            "orphan_processes_after_recover": n["orphans_seen"],
            "succeeded_executions_checked": n["succeeded_executions_checked"],
            "integrity_checks": n["integrity_checks"],
            "integrity_failures": n["fail:integrity"],
            "unanswered_requests": n["unanswered"],
            "requests_not_sent_to_a_dead_generation": n["not_sent"],
            "refusals": dict(self.refusals),
            # Jobs seen waiting out the 60 s dispatch lease while settling (a lower bound).
            "jobs_held_by_dispatch_lease": n["lease_waits"],
            "jobs_held_by_lease_near_sigterm": n["lease_waits_near_sigterm"],
            "settles": n["settles"],
            "settle_seconds_max": n["settle_seconds_max"],
            "failures": len(self.failures),
            "elapsed_seconds": round(time.monotonic() - (self.started_at or time.monotonic()), 1),
        }

    def report(self, figures):
        lines = ["crash campaign figures (seed %d):" % figures["seed"]]
        for k, v in figures.items():
            if k != "seed":
                lines.append("  %-32s %s" % (k, v))
        for note in self.notes[:20]:
            lines.append("note: %s" % note)
        for f in self.failures[:40]:
            lines.append("FAILURE [%s, generation %d] %s" % (f["kind"], f["gen"], f["detail"]))
        if len(self.failures) > 40:
            lines.append("... and %d more failures" % (len(self.failures) - 40))
        return "\n".join(lines)

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
