"""Shared pieces of the end-to-end tests: a real `pipewright serve` on a free
port and a fresh data directory, the real Debian AWS CLI (/usr/bin/aws), our
own CLI, and polling with a deadline (never a bare sleep).

Run with Debian's Python: /usr/bin/python3 -m unittest tests/e2e/test_*.py
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request
import urllib.error

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PW_BINARY_DIR", os.path.join(ROOT, "build"))
PIPEWRIGHT = os.path.join(BUILD, "pipewright")
AWS = "/usr/bin/aws"  # Debian's awscli 2.9 (the `aws` on PATH may be another install).


class Server:
    """A pipewright server process on 127.0.0.1:<free port>."""

    def __init__(self, data_dir=None, extra_args=(), command_prefix=()):
        self.owns_dir = data_dir is None
        # Runs the server through another program (e.g. `unshare -m ...`), which must exec it.
        self.command_prefix = list(command_prefix)
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="pw-e2e-")
        self.extra_args = list(extra_args)
        if "--sandbox" not in self.extra_args:
            # Most tests gate and observe actions through files in their own
            # temporary directory, which the sandbox's private /tmp hides.
            # test_sandbox.py covers the sandbox.
            self.extra_args += ["--sandbox", "none"]
        self.proc = None
        self.endpoint = None
        self.start()

    def start(self):
        self.log = open(os.path.join(self.data_dir, "server.log"), "ab")
        self.proc = subprocess.Popen(
            self.command_prefix
            + [PIPEWRIGHT, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir]
            + self.extra_args,
            stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("listening on "):
            raise RuntimeError("server did not start: %r (see %s/server.log)" % (line, self.data_dir))
        self.endpoint = line[len("listening on "):]

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        if self.proc:
            self.proc.stdout.close()
        self.log.close()

    def kill9(self):
        self.stop(signal.SIGKILL)

    def restart(self):
        self.stop()
        self.start()

    def close(self):
        self.stop()
        if self.owns_dir:
            if not os.environ.get("PW_KEEP"):  # PW_KEEP=1: keep data dirs and server.log.
                shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- raw API ---------------------------------------------------------------
    def call(self, op, body=None, raw=None, target_prefix="CodePipeline_20150709.", headers=None):
        """POSTs one operation; returns (http_status, parsed_json_or_text)."""
        data = raw if raw is not None else json.dumps(body or {}).encode()
        h = {"Content-Type": "application/x-amz-json-1.1"}
        if op is not None:
            h["X-Amz-Target"] = target_prefix + op
        h.update(headers or {})
        req = urllib.request.Request(self.endpoint + "/", data=data, headers=h, method="POST")
        for attempt in range(3):
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    text = r.read().decode()
                    return r.status, (json.loads(text) if text else {})
            except urllib.error.HTTPError as e:
                text = e.read().decode()
                try:
                    return e.code, json.loads(text)
                except ValueError:
                    return e.code, text
            except (ConnectionResetError, urllib.error.URLError) as e:
                # A connection refused or reset before the request was read
                # (a full listen queue on a loaded machine): retry, as SDKs do.
                reason = getattr(e, "reason", e)
                if attempt == 2 or not isinstance(reason, (ConnectionResetError,
                                                           ConnectionRefusedError)):
                    raise
                time.sleep(0.05 * (attempt + 1))

    def ok(self, op, body=None, **kw):
        status, out = self.call(op, body, **kw)
        if status != 200:
            raise AssertionError("%s failed: %s %s" % (op, status, out))
        return out


class CliResult:
    def __init__(self, proc):
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def json(self):
        return json.loads(self.stdout) if self.stdout.strip() else {}


def _env():
    env = dict(os.environ)
    env.update({"AWS_ACCESS_KEY_ID": "AKIDPIPEWRIGHT", "AWS_SECRET_ACCESS_KEY": "pipewright-secret",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": "", "AWS_CONFIG_FILE": "/dev/null",
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    return env


def aws(server, *args, cwd=None, env=None):
    """Runs Debian's `aws codepipeline <args>` against the server."""
    e = _env()
    e.update(env or {})
    p = subprocess.run([AWS, "--endpoint-url", server.endpoint, "codepipeline"] + list(args),
                       capture_output=True, text=True, cwd=cwd, env=e, timeout=120)
    return CliResult(p)


_NEWEST_MODEL_DIR = None


def newest_model_dir():
    """An AWS_DATA_PATH directory holding the newest CodePipeline model (the
    repository's spec/), so Debian's awscli 2.9 speaks the operations and
    fields added since it shipped (sourceRevisions, ...)."""
    global _NEWEST_MODEL_DIR
    if _NEWEST_MODEL_DIR is None:
        d = tempfile.mkdtemp(prefix="pw-aws-model-")
        os.makedirs(os.path.join(d, "codepipeline", "2015-07-09"))
        for name in ("service-2.json", "paginators-1.json"):
            src = os.path.join(ROOT, "spec", "codepipeline-2015-07-09." + name)
            if os.path.exists(src):
                shutil.copy(src, os.path.join(d, "codepipeline", "2015-07-09", name))
        _NEWEST_MODEL_DIR = d
    return _NEWEST_MODEL_DIR


def aws_newest(server, *args, cwd=None, env=None):
    """Runs Debian's `aws codepipeline <args>` with the newest service model."""
    e = {"AWS_DATA_PATH": newest_model_dir()}
    e.update(env or {})
    return aws(server, *args, cwd=cwd, env=e)


def pw(server, *args, cwd=None, env=None, timeout=120):
    """Runs our `pipewright <args>` against the server."""
    e = _env()
    e.update(env or {})
    p = subprocess.run([PIPEWRIGHT] + list(args) + ["--endpoint-url", server.endpoint],
                       capture_output=True, text=True, cwd=cwd, env=e, timeout=timeout)
    return CliResult(p)


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Polls `predicate` until it returns a truthy value; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.0fs waiting for %s (last: %r)" % (timeout, what, last))


def stage_state(server, pipeline, stage):
    state = server.ok("GetPipelineState", {"name": pipeline})
    for s in state["stageStates"]:
        if s["stageName"] == stage:
            return s
    raise AssertionError("no stage %s" % stage)


def execution_status(server, pipeline, execution_id):
    return server.ok("GetPipelineExecution", {"pipelineName": pipeline,
                                              "pipelineExecutionId": execution_id})["pipelineExecution"]["status"]


def wait_execution(server, pipeline, execution_id, statuses=("Succeeded", "Failed", "Stopped",
                                                             "Superseded", "Cancelled"),
                   timeout=60):
    return wait_for(lambda: (lambda s: s if s in statuses else None)(
        execution_status(server, pipeline, execution_id)), timeout=timeout,
        what="execution %s to reach %s" % (execution_id, statuses))


def action(name, category, provider, run_order=1, config=None, inputs=(), outputs=(), **extra):
    a = {"name": name,
         "actionTypeId": {"category": category, "owner": "AWS", "provider": provider, "version": "1"},
         "runOrder": run_order,
         "configuration": config or {},
         "inputArtifacts": [{"name": n} for n in inputs],
         "outputArtifacts": [{"name": n} for n in outputs]}
    a.update(extra)
    return a


def commands(name, cmds, run_order=1, inputs=(), outputs=(), category="Build"):
    return action(name, category, "Commands", run_order, {"Commands": "\n".join(cmds)}, inputs, outputs)


def pipeline(name, stages, **extra):
    p = {"name": name, "roleArn": "arn:aws:iam::123456789012:role/pipewright",
         "artifactStore": {"type": "S3", "location": "pipewright-artifacts"},
         "stages": [{"name": n, "actions": acts} for n, acts in stages]}
    p.update(extra)
    return p


class ServerTestCase(unittest.TestCase):
    """A test case with a fresh server per test (self.server)."""

    server_args = ()
    # Start the server with --deploy-root self.tmp, so Deploy/Directory may write below it.
    deploy_root = True

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pw-e2e-work-")
        args = list(self.server_args)
        if self.deploy_root:
            args += ["--deploy-root", self.tmp]
        self.server = Server(extra_args=args)

    def tearDown(self):
        self.server.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write_json(self, name, obj):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            json.dump(obj, f)
        return path


S3RVER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "s3rver")


S3RVER_BIN = os.path.join(S3RVER_DIR, "node_modules", "s3rver", "bin", "s3rver.js")


def ensure_s3rver_installed():
    """Installs s3rver from npm once. ctest runs test modules in parallel, and several
    start s3rver: an exclusive lock on a file beside package.json makes one module
    install while the others wait; the test is the entry script itself, so a
    half-written node_modules (another install still running, or one killed) is
    installed again rather than taken as done."""
    import fcntl
    if os.path.isfile(S3RVER_BIN):
        return
    with open(os.path.join(S3RVER_DIR, ".install.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isfile(S3RVER_BIN):
            subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=S3RVER_DIR,
                           check=True, capture_output=True, timeout=300)
        if not os.path.isfile(S3RVER_BIN):
            raise RuntimeError("npm install finished but %s is missing" % S3RVER_BIN)


def start_s3rver(tmp, bucket):
    """Starts s3rver (an independent S3 implementation, npm) on a free port with
    `bucket`; returns (process, endpoint). Retries on a new port when the
    process exits (a port from bind(0) can be taken before s3rver binds it)."""
    import socket
    ensure_s3rver_installed()
    log_path = os.path.join(tmp, "s3rver.log")
    for _attempt in range(3):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        data = os.path.join(tmp, "s3-%d" % port)
        os.makedirs(data)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                ["node", S3RVER_BIN,
                 "-d", data, "-a", "127.0.0.1", "-p", str(port), "--no-vhost-buckets",
                 "--configure-bucket", bucket], stdout=log, stderr=log)
        endpoint = "http://127.0.0.1:%d" % port

        def up_or_exited():
            if proc.poll() is not None:
                return "exited"
            try:
                urllib.request.urlopen(endpoint + "/", timeout=2)
            except urllib.error.HTTPError:
                return "up"
            except OSError:
                return None
            return "up"
        if wait_for(up_or_exited, timeout=90, what="s3rver to listen") == "up":
            return proc, endpoint
    with open(log_path, errors="replace") as log:
        raise RuntimeError("s3rver did not start:\n" + log.read()[-4000:])


def stop_s3rver(proc):
    """Stops an s3rver started by start_s3rver (None or already ended: nothing to do)."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=20)
