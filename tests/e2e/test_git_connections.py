"""End-to-end tests of the Git-backed AWS sources: Source/AWS/CodeStarSourceConnection and
Source/AWS/CodeCommit, mapped to local repositories by `serve --git-connections FILE`, and
StartPipelineExecution.sourceRevisions (COMMIT_ID) for them and for Source/AWS/Git.

The repositories are bare repositories made with git in a temporary directory; commits are
pushed to them from a working clone, as a developer would. sourceRevisions goes through
Debian's /usr/bin/aws: awscli 2.9 predates the parameter, so the test hands it the service
model of this repository (spec/) through AWS_DATA_PATH, which botocore reads models from.
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

import harness
from harness import action, commands, pipeline, wait_for

GIT = "/usr/bin/git"
ARN = "arn:aws:codeconnections:us-east-1:123456789012:connection/abc-123"
# The same connection in its older service name.
OLD_ARN = "arn:aws:codestar-connections:us-east-1:123456789012:connection/abc-123"
TERMINAL = ("Succeeded", "Failed", "Stopped", "Superseded", "Cancelled")


def git(cwd, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="Pipewright Test", GIT_AUTHOR_EMAIL="test@example.com",
               GIT_COMMITTER_NAME="Pipewright Test", GIT_COMMITTER_EMAIL="test@example.com",
               GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_SYSTEM="/dev/null")
    return subprocess.run([GIT] + list(args), cwd=cwd, check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


class Repo:
    """A bare repository at `bare` and a working clone that pushes to it."""

    def __init__(self, bare, work):
        os.makedirs(os.path.dirname(bare), exist_ok=True)
        git(os.path.dirname(bare), "init", "-q", "--bare", "-b", "main", bare)
        git(os.path.dirname(work) or ".", "clone", "-q", bare, work)
        git(work, "checkout", "-q", "-b", "main")
        self.work = work

    def commit(self, text, message):
        """Writes app.txt, commits and pushes main; returns the commit id."""
        with open(os.path.join(self.work, "app.txt"), "w") as f:
            f.write(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", "main")
        return git(self.work, "rev-parse", "HEAD")


class GitHttpServer:
    """Smart HTTP Git over `git http-backend` on 127.0.0.1, behind Basic authentication with
    one user name and token; records every Authorization header it is sent."""

    def __init__(self, root, username, token):
        import base64
        import http.server
        import threading
        expected = "Basic " + base64.b64encode((username + ":" + token).encode()).decode()
        self.authorizations = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def handle_one(self, method):
                auth = self.headers.get("Authorization")
                outer.authorizations.append(auth)
                if auth != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b""
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        chunk = self.rfile.read(size)
                        self.rfile.readline()
                        if size == 0:
                            break
                        body += chunk
                else:
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path, _, query = self.path.partition("?")
                env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1",
                           REQUEST_METHOD=method, PATH_INFO=path, QUERY_STRING=query,
                           CONTENT_TYPE=self.headers.get("Content-Type", ""),
                           CONTENT_LENGTH=str(len(body)), REMOTE_USER=username,
                           GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_SYSTEM="/dev/null")
                if self.headers.get("Content-Encoding"):
                    env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
                out = subprocess.run([GIT, "http-backend"], input=body, env=env,
                                     capture_output=True).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode().split("\r\n"):
                    name, _, value = line.partition(": ")
                    if name.lower() == "status":
                        status = int(value.split()[0])
                    elif name:
                        headers.append((name, value))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                self.handle_one("GET")

            def do_POST(self):
                self.handle_one("POST")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def connection_source(arn=ARN, repo="octo/app", **config):
    cfg = {"ConnectionArn": arn, "FullRepositoryId": repo, "BranchName": "main"}
    cfg.update(config)
    return action("Src", "Source", "CodeStarSourceConnection", config=cfg, outputs=["Code"],
                  namespace="SourceVariables")


def codecommit_source(name="app", **config):
    cfg = {"RepositoryName": name, "BranchName": "main"}
    cfg.update(config)
    return action("Src", "Source", "CodeCommit", config=cfg, outputs=["Code"],
                  namespace="SourceVariables")


class GitConnections(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pw-e2e-gitconn-")
        repos = os.path.join(self.tmp, "repos")
        self.github = Repo(os.path.join(repos, "octo", "app.git"), os.path.join(self.tmp, "w1"))
        self.codecommit = Repo(os.path.join(repos, "cc", "app.git"), os.path.join(self.tmp, "w2"))
        self.config = os.path.join(self.tmp, "git-connections.json")
        with open(self.config, "w") as f:
            json.dump({"connections": [{
                "arn": OLD_ARN,
                # file:// goes through the server's mirror (git-cache), as https:// would.
                "url": "file://" + repos + "/{FullRepositoryId}.git",
                "webUrl": "https://github.com/{FullRepositoryId}"}],
                "codecommit": {"url": repos + "/cc/{RepositoryName}.git",
                               "webUrl": "https://git.example.com/{RepositoryName}"}}, f)
        self.server = harness.Server(extra_args=["--git-connections", self.config,
                                                 "--source-poll-interval", "1"])

    def tearDown(self):
        self.server.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------
    def executions(self, name):
        return self.server.ok("ListPipelineExecutions",
                              {"pipelineName": name})["pipelineExecutionSummaries"]

    def first_execution(self, name):
        return wait_for(lambda: self.executions(name), what="the first execution")[-1][
            "pipelineExecutionId"]

    def wait(self, name, eid):
        return harness.wait_execution(self.server, name, eid, TERMINAL, timeout=30)

    def summary(self, name, eid):
        return [s for s in self.executions(name) if s["pipelineExecutionId"] == eid][0]

    def source_detail(self, name, eid):
        details = self.server.ok("ListActionExecutions", {
            "pipelineName": name, "filter": {"pipelineExecutionId": eid}})["actionExecutionDetails"]
        return [d for d in details if d["actionName"] == "Src"][-1]

    def aws(self, *args):
        """Debian's aws codepipeline, with this repository's newer model of the service."""
        models = os.path.join(self.tmp, "models", "codepipeline", "2015-07-09")
        os.makedirs(models, exist_ok=True)
        shutil.copy(os.path.join(harness.ROOT, "spec", "codepipeline-2015-07-09.service-2.json"),
                    os.path.join(models, "service-2.json"))
        return harness.aws(self.server, *args,
                           env={"AWS_DATA_PATH": os.path.join(self.tmp, "models")})

    def create(self, name, source, build_commands, **extra):
        self.server.ok("CreatePipeline", {"pipeline": pipeline(name, [
            ("Source", [source]),
            ("Build", [commands("Check", build_commands, inputs=["Code"])])], **extra)})

    # -- tests ---------------------------------------------------------------------------
    def test_connection_source_runs_the_branch_head_with_its_variables(self):
        sha = self.github.commit("v1\n", "first change\n\nwith a body")
        self.create("Conn", connection_source(), [
            "grep -qx v1 app.txt",
            "test ! -e .git",
            'test "#{SourceVariables.CommitId}" = ' + sha,
            'test "#{SourceVariables.BranchName}" = main',
            'test "#{SourceVariables.FullRepositoryName}" = octo/app',
            # As declared in the pipeline; the file names it in the older form.
            'test "#{SourceVariables.ConnectionArn}" = ' + ARN,
            'test "#{SourceVariables.CommitMessage}" = "$(printf "first change\\n\\nwith a body")"',
        ])
        eid = self.first_execution("Conn")
        self.assertEqual(self.wait("Conn", eid), "Succeeded",
                         self.server.ok("GetPipelineState", {"name": "Conn"}))
        expected_summary = json.dumps({"ProviderType": "GitHub",
                                       "CommitMessage": "first change\n\nwith a body"},
                                      separators=(",", ":"))
        rev = self.summary("Conn", eid)["sourceRevisions"][0]
        self.assertEqual(rev["revisionId"], sha)
        self.assertEqual(rev["revisionUrl"], "https://github.com/octo/app/commit/" + sha)
        self.assertEqual(rev["revisionSummary"], expected_summary)
        pe = self.server.ok("GetPipelineExecution", {"pipelineName": "Conn",
                                                     "pipelineExecutionId": eid})
        art = pe["pipelineExecution"]["artifactRevisions"][0]
        self.assertEqual(art["revisionUrl"], "https://github.com/octo/app/commit/" + sha)
        detail = self.source_detail("Conn", eid)
        variables = detail["output"]["outputVariables"]
        self.assertEqual(sorted(variables), ["AuthorDate", "BranchName", "CommitId",
                                             "CommitMessage", "ConnectionArn",
                                             "FullRepositoryName"])
        self.assertRegex(variables["AuthorDate"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(detail["output"]["executionResult"]["externalExecutionId"], sha)
        state = harness.stage_state(self.server, "Conn", "Source")["actionStates"][0]
        self.assertEqual(state["latestExecution"]["summary"], expected_summary)

    def test_codecommit_source_runs_the_branch_head_with_its_variables(self):
        sha = self.codecommit.commit("cc1\n", "codecommit change")
        self.create("CC", codecommit_source(), [
            "grep -qx cc1 app.txt",
            'test "#{SourceVariables.CommitId}" = ' + sha,
            'test "#{SourceVariables.RepositoryName}" = app',
            'test "#{SourceVariables.CommitMessage}" = "codecommit change"',
            'echo "#{SourceVariables.CommitterDate}" | grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2}T"',
        ])
        eid = self.first_execution("CC")
        self.assertEqual(self.wait("CC", eid), "Succeeded")
        rev = self.summary("CC", eid)["sourceRevisions"][0]
        self.assertEqual(rev["revisionId"], sha)
        self.assertEqual(rev["revisionSummary"], "codecommit change")
        self.assertEqual(rev["revisionUrl"], "https://git.example.com/app/commit/" + sha)
        variables = self.source_detail("CC", eid)["output"]["outputVariables"]
        self.assertEqual(sorted(variables), ["AuthorDate", "BranchName", "CommitId",
                                             "CommitMessage", "CommitterDate", "RepositoryName"])

    def test_unknown_connection_or_unmapped_repository_fails_saying_where_to_declare_it(self):
        self.github.commit("v1\n", "first")
        other = "arn:aws:codestar-connections:us-east-1:123456789012:connection/not-declared"
        self.create("Unknown", connection_source(arn=other), ["true"])
        eid = self.first_execution("Unknown")
        self.assertEqual(self.wait("Unknown", eid), "Failed")
        error = self.source_detail("Unknown", eid)["output"]["executionResult"]["errorDetails"]
        self.assertEqual(error["code"], "ConfigurationError")
        self.assertIn("The connection " + other + " is not declared on this server", error["message"])
        self.assertIn("pipewright serve --git-connections FILE", error["message"])
        self.assertIn('{"connections": [{"arn": "<ConnectionArn>", "url": ', error["message"])

        self.create("Missing", codecommit_source(name="no-such-repo"), ["true"])
        eid = self.first_execution("Missing")
        self.assertEqual(self.wait("Missing", eid), "Failed")
        error = self.source_detail("Missing", eid)["output"]["executionResult"]["errorDetails"]
        self.assertIn("CodeCommit repository no-such-repo", error["message"])

    def test_a_new_commit_starts_one_execution_through_polling(self):
        self.github.commit("v1\n", "first")
        self.create("Poll", connection_source(), ["cat app.txt"])
        first = self.first_execution("Poll")
        self.assertEqual(self.wait("Poll", first), "Succeeded")
        second = self.github.commit("v2\n", "second")
        polled = wait_for(lambda: [s for s in self.executions("Poll")
                                   if s["trigger"]["triggerType"] == "PollForSourceChanges"],
                          timeout=30, what="an execution started by the poller")
        eid = polled[0]["pipelineExecutionId"]
        self.assertEqual(self.wait("Poll", eid), "Succeeded")
        self.assertEqual(self.summary("Poll", eid)["sourceRevisions"][0]["revisionId"], second)
        # Later poll rounds start nothing more: one commit, one execution. A
        # second pipeline's polled start shows that further rounds went by.
        self.codecommit.commit("x\n", "x")
        self.create("Marker", codecommit_source(), ["true"])
        self.assertEqual(self.wait("Marker", self.first_execution("Marker")), "Succeeded")
        self.codecommit.commit("y\n", "y")
        wait_for(lambda: len(self.executions("Marker")) >= 2, timeout=30, what="a polled start")
        self.assertEqual(len([s for s in self.executions("Poll")
                              if s["trigger"]["triggerType"] == "PollForSourceChanges"]), 1)

    def test_detect_changes_false_is_not_polled(self):
        self.github.commit("v1\n", "first")
        self.create("NoPoll", connection_source(DetectChanges="false"), ["true"])
        self.assertEqual(self.wait("NoPoll", self.first_execution("NoPoll")), "Succeeded")
        self.github.commit("v2\n", "second")
        # A pipeline that is polled, made after the commit: once it has been
        # polled past its first execution, NoPoll had its chance too.
        self.codecommit.commit("x\n", "x")
        self.create("Polled", codecommit_source(), ["true"])
        self.assertEqual(self.wait("Polled", self.first_execution("Polled")), "Succeeded")
        self.codecommit.commit("y\n", "y")
        wait_for(lambda: len(self.executions("Polled")) >= 2, timeout=30, what="a polled start")
        self.assertEqual(len(self.executions("NoPoll")), 1)

    def test_source_revisions_commit_id_runs_the_older_commit(self):
        old = self.github.commit("v1\n", "first")
        new = self.github.commit("v2\n", "second")
        self.create("Pinned", connection_source(DetectChanges="false"),
                    ["cat app.txt", 'test "#{SourceVariables.CommitId}" = ' + old,
                     "grep -qx v1 app.txt"])
        self.wait("Pinned", self.first_execution("Pinned"))  # The head: fails the v1 check.
        out = self.aws("start-pipeline-execution", "--name", "Pinned", "--source-revisions",
                       "actionName=Src,revisionType=COMMIT_ID,revisionValue=" + old)
        self.assertEqual(out.code, 0, out.stderr)
        eid = out.json()["pipelineExecutionId"]
        self.assertEqual(self.wait("Pinned", eid), "Succeeded")
        rev = self.summary("Pinned", eid)["sourceRevisions"][0]
        self.assertEqual(rev["revisionId"], old)
        self.assertNotEqual(old, new)
        # The build's log shows the older file.
        latest = harness.stage_state(self.server, "Pinned", "Build")["actionStates"][0][
            "latestExecution"]
        with urllib.request.urlopen(latest["externalExecutionUrl"], timeout=10) as resp:
            self.assertIn("v1", resp.read().decode())

        # A commit that does not exist fails the source with a clear message.
        missing = "0" * 40
        out = self.aws("start-pipeline-execution", "--name", "Pinned", "--source-revisions",
                       "actionName=Src,revisionType=COMMIT_ID,revisionValue=" + missing)
        self.assertEqual(out.code, 0, out.stderr)
        eid = out.json()["pipelineExecutionId"]
        self.assertEqual(self.wait("Pinned", eid), "Failed")
        error = self.source_detail("Pinned", eid)["output"]["executionResult"]["errorDetails"]
        self.assertEqual(error["message"], "Commit " + missing + " (sourceRevisions) does not "
                         "exist in repository octo/app of connection " + ARN + ".")

    def test_source_revisions_commit_id_for_the_git_source(self):
        repo = os.path.join(self.tmp, "plain")
        os.makedirs(repo)
        git(repo, "init", "-q", "-b", "main")
        with open(os.path.join(repo, "app.txt"), "w") as f:
            f.write("old\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "old")
        old = git(repo, "rev-parse", "HEAD")
        with open(os.path.join(repo, "app.txt"), "w") as f:
            f.write("new\n")
        git(repo, "commit", "-q", "-am", "new")
        self.server.ok("CreatePipeline", {"pipeline": pipeline("Plain", [
            ("Source", [action("Src", "Source", "Git", outputs=["Code"], config={
                "RepositoryPath": repo, "PollForSourceChanges": "false"})]),
            ("Build", [commands("Check", ["grep -qx old app.txt"], inputs=["Code"])])])})
        self.assertEqual(self.wait("Plain", self.first_execution("Plain")), "Failed")
        out = self.aws("start-pipeline-execution", "--name", "Plain", "--source-revisions",
                       "actionName=Src,revisionType=COMMIT_ID,revisionValue=" + old)
        self.assertEqual(out.code, 0, out.stderr)
        eid = out.json()["pipelineExecutionId"]
        self.assertEqual(self.wait("Plain", eid), "Succeeded")
        self.assertEqual(self.summary("Plain", eid)["sourceRevisions"][0]["revisionId"], old)

    def test_invalid_source_revisions_are_refused_naming_the_problem(self):
        self.github.commit("v1\n", "first")
        self.create("Bad", connection_source(DetectChanges="false"), ["true"])
        sha = "a" * 40
        cases = [
            ("actionName=Check,revisionType=COMMIT_ID,revisionValue=" + sha,
             "action 'Check' is not a source action of pipeline Bad"),
            ("actionName=Src,revisionType=S3_OBJECT_KEY,revisionValue=app.zip",
             "its revisionType is COMMIT_ID, not S3_OBJECT_KEY"),
            ("actionName=Src,revisionType=COMMIT_ID,revisionValue=main",
             "is not a full commit id"),
        ]
        before = len(self.executions("Bad"))
        for arg, message in cases:
            out = self.aws("start-pipeline-execution", "--name", "Bad", "--source-revisions", arg)
            self.assertNotEqual(out.code, 0)
            self.assertIn("ValidationException", out.stderr)
            self.assertIn(message, out.stderr)
        status, body = self.server.call("StartPipelineExecution", {"name": "Bad", "sourceRevisions": [
            {"actionName": "Src", "revisionType": "COMMIT_ID", "revisionValue": sha},
            {"actionName": "Src", "revisionType": "COMMIT_ID", "revisionValue": sha}]})
        self.assertEqual(status, 400)
        self.assertEqual(body["__type"], "ValidationException")
        self.assertIn("named more than once", body["message"])
        self.assertEqual(len(self.executions("Bad")), before)

    def test_codebuild_clone_ref_gives_a_working_git_directory(self):
        sha = self.codecommit.commit("c1\n", "clone me")
        self.create("Clone", codecommit_source(OutputArtifactFormat="CODEBUILD_CLONE_REF"), [
            "grep -qx c1 app.txt",
            'test "$(git rev-parse HEAD)" = ' + sha,
            'test "$(git rev-parse --abbrev-ref HEAD)" = main',
            'test -z "$(git status --porcelain)"',
            "git log --format=%s -1 | grep -qx 'clone me'",
        ])
        eid = self.first_execution("Clone")
        self.assertEqual(self.wait("Clone", eid), "Succeeded",
                         self.server.ok("GetPipelineState", {"name": "Clone"}))


class GitConnectionCredentials(unittest.TestCase):
    """A connection's token reaches the Git server as HTTP credentials, and nowhere else."""

    TOKEN = "s3cr3t-t0ken-4567"

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pw-e2e-gitcred-")
        repos = os.path.join(self.tmp, "repos")
        self.repo = Repo(os.path.join(repos, "octo", "app.git"), os.path.join(self.tmp, "w"))
        self.sha = self.repo.commit("v1\n", "first")
        self.git_server = GitHttpServer(repos, "pw-user", self.TOKEN)
        good = os.path.join(self.tmp, "token")
        with open(good, "w") as f:
            f.write(self.TOKEN + "\n")
        bad = os.path.join(self.tmp, "wrong-token")
        with open(bad, "w") as f:
            f.write("not-the-token\n")
        config = os.path.join(self.tmp, "git.json")
        url = self.git_server.url + "/{FullRepositoryId}.git"
        with open(config, "w") as f:
            json.dump({"connections": [
                {"arn": ARN, "url": url, "username": "pw-user", "tokenFile": good},
                {"arn": ARN.replace("abc-123", "wrong"), "url": url, "username": "pw-user",
                 "tokenFile": bad}]}, f)
        self.server = harness.Server(extra_args=["--git-connections", config,
                                                 "--source-poll-interval", "0"])

    def tearDown(self):
        self.server.close()
        self.git_server.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_pipeline(self, name, arn):
        self.server.ok("CreatePipeline", {"pipeline": pipeline(name, [
            ("Source", [connection_source(arn=arn)]),
            ("Build", [commands("Check", ["grep -qx v1 app.txt"], inputs=["Code"])])])})
        eid = wait_for(lambda: self.server.ok("ListPipelineExecutions", {"pipelineName": name})
                       ["pipelineExecutionSummaries"], what="an execution")[-1]["pipelineExecutionId"]
        return eid, harness.wait_execution(self.server, name, eid, TERMINAL, timeout=60)

    def test_the_token_is_sent_to_the_git_server_and_never_shown(self):
        eid, status = self.run_pipeline("Good", ARN)
        self.assertEqual(status, "Succeeded")
        self.assertTrue(any(a and a.startswith("Basic ") for a in self.git_server.authorizations))

        eid, status = self.run_pipeline("Bad", ARN.replace("abc-123", "wrong"))
        self.assertEqual(status, "Failed")
        details = self.server.ok("ListActionExecutions", {
            "pipelineName": "Bad", "filter": {"pipelineExecutionId": eid}})["actionExecutionDetails"]
        message = details[-1]["output"]["executionResult"]["errorDetails"]["message"]
        self.assertIn("Cannot read branch 'main' of repository octo/app", message)
        everything = json.dumps(details) + message
        with open(os.path.join(self.server.data_dir, "server.log")) as f:
            everything += f.read()
        for name in ("Good", "Bad"):
            everything += json.dumps(self.server.ok("GetPipelineState", {"name": name}))
            everything += json.dumps(self.server.ok("ListPipelineExecutions",
                                                    {"pipelineName": name}))
        self.assertNotIn(self.TOKEN, everything)
        self.assertNotIn("not-the-token", everything)


class GitConnectionsFile(unittest.TestCase):
    """serve refuses to start on a bad --git-connections file, saying why."""

    def serve(self, content):
        tmp = tempfile.mkdtemp(prefix="pw-e2e-gitconn-file-")
        try:
            path = os.path.join(tmp, "git.json")
            with open(path, "w") as f:
                f.write(content)
            p = subprocess.run([harness.PIPEWRIGHT, "serve", "--listen", "127.0.0.1:0",
                                "--data-dir", os.path.join(tmp, "data"),
                                "--git-connections", path],
                               capture_output=True, text=True, timeout=30)
            return p.returncode, p.stderr
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_unknown_keys_and_missing_token_files_stop_the_server(self):
        code, err = self.serve(json.dumps({"connections": [
            {"arn": ARN, "url": "https://github.com/{FullRepositoryId}.git",
             "token_file": "/x"}]}))
        self.assertEqual(code, 2)
        self.assertIn("--git-connections", err)
        self.assertIn("connections[0]: unknown key 'token_file'", err)
        code, err = self.serve(json.dumps({"codecommit": {"url": "/srv/{RepositoryName}",
                                                          "tokenFile": "/nonexistent/token"}}))
        self.assertEqual(code, 2)
        self.assertIn("codecommit.tokenFile: cannot read /nonexistent/token", err)
        code, err = self.serve("{not json")
        self.assertEqual(code, 2)
        self.assertIn("not valid JSON", err)


if __name__ == "__main__":
    unittest.main()
