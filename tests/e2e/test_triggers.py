"""V2 trigger filters on a Git source, end to end: the server polls a real repository
(file:// through its mirror, every second) and only changes that match the trigger's
push filters start an execution, at the pushed commit, with the filter recorded as the
execution's trigger. Tags pushed as probes prove that the poller has seen a change that
must start nothing. Also: pullRequest triggers are refused at create; PutActionRevision."""

import os
import shutil
import subprocess
import tempfile
import unittest

import harness
from harness import action, commands, pipeline, wait_for

GIT = "/usr/bin/git"


def git(cwd, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="Pipewright Test", GIT_AUTHOR_EMAIL="test@example.com",
               GIT_COMMITTER_NAME="Pipewright Test", GIT_COMMITTER_EMAIL="test@example.com",
               GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_SYSTEM="/dev/null")
    return subprocess.run([GIT] + list(args), cwd=cwd, check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


class Repo:
    """A bare repository and a working clone that pushes to it."""

    def __init__(self, root):
        self.bare = os.path.join(root, "app.git")
        self.work = os.path.join(root, "work")
        git(root, "init", "-q", "--bare", "-b", "main", self.bare)
        git(root, "clone", "-q", self.bare, self.work)
        git(self.work, "checkout", "-q", "-b", "main")

    def commit(self, files, message, branch="main"):
        """Writes {path: text}, commits on `branch` and pushes it; returns the commit id."""
        git(self.work, "checkout", "-q", "-B", branch)
        for path, text in files.items():
            full = os.path.join(self.work, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", branch)
        return git(self.work, "rev-parse", "HEAD")

    def tag(self, name, commit):
        git(self.work, "tag", name, commit)
        git(self.work, "push", "-q", "origin", name)


def triggered_pipeline(name, repo_url, git_configuration):
    git_configuration = dict(git_configuration, sourceActionName="Src")
    return pipeline(name, [
        ("Source", [action("Src", "Source", "Git", config={
            "RepositoryPath": repo_url, "BranchName": "main"}, outputs=["Code"])]),
        ("Build", [commands("Check", ["test -f README"], inputs=["Code"])]),
    ], pipelineType="V2", executionMode="QUEUED",
        triggers=[{"providerType": "CodeStarSourceConnection",
                   "gitConfiguration": git_configuration}])


class TriggersTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pw-e2e-triggers-")
        self.repo = Repo(self.tmp)
        self.first = self.repo.commit({"README": "hi\n", "src/a.c": "int a;\n",
                                       "docs/a.md": "# a\n"}, "first")
        self.server = harness.Server(extra_args=["--source-poll-interval", "1"])

    def tearDown(self):
        self.server.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def executions(self, name):
        out = self.server.ok("ListPipelineExecutions", {"pipelineName": name})
        return out["pipelineExecutionSummaries"]

    def started_by_trigger(self, name):
        """{commit: triggerDetail} of the executions a trigger started (the poller's detail
        ends with " at <commit>"; sourceRevisions appear only once the source ran)."""
        out = {}
        for e in self.executions(name):
            if e["trigger"]["triggerType"] == "WebhookV2":
                detail = e["trigger"]["triggerDetail"]
                self.assertNotIn(detail.rsplit(" at ", 1)[1], out, "started twice")
                out[detail.rsplit(" at ", 1)[1]] = detail
        return out

    def wait_started(self, name, commit):
        return wait_for(lambda: self.started_by_trigger(name).get(commit), timeout=30,
                        what="an execution at %s" % commit)

    def test_push_filters_on_file_paths_branches_and_tags(self):
        name = "triggered"
        self.server.ok("CreatePipeline", {"pipeline": triggered_pipeline(
            name, "file://" + self.repo.bare,
            {"push": [{"branches": {"includes": ["main", "release/**"]},
                       "filePaths": {"includes": ["src/**"], "excludes": ["src/gen/**"]}},
                      {"tags": {"includes": ["v*"], "excludes": ["v0*"]}}]})})
        first = wait_for(lambda: self.executions(name), what="the first execution")[-1]
        self.assertEqual(first["trigger"]["triggerType"], "CreatePipeline")
        harness.wait_execution(self.server, name, first["pipelineExecutionId"])

        # Only docs/ changes on main: nothing starts. The tag v1 on that commit is the
        # probe: once its execution exists, the poller has seen the docs commit.
        docs = self.repo.commit({"docs/a.md": "# a, revised\n"}, "docs only")
        self.repo.tag("v1", docs)
        detail = self.wait_started(name, docs)
        self.assertIn("tag v1", detail)
        self.assertNotIn("branch main", detail)
        self.assertEqual(len(self.started_by_trigger(name)), 1)

        # A change under src/ on main starts exactly one execution, at that commit.
        src = self.repo.commit({"src/a.c": "int a = 1;\n"}, "code")
        detail = self.wait_started(name, src)
        self.assertIn("branch main", detail)
        self.assertIn("filePaths +src/**", detail)
        self.assertEqual(len(self.started_by_trigger(name)), 2)

        # Excluded paths, another branch, an excluded tag: nothing; then a matching
        # release branch and a matching tag start one each.
        gen = self.repo.commit({"src/gen/x.c": "generated\n"}, "generated only")
        feature = self.repo.commit({"src/b.c": "int b;\n"}, "feature work", branch="feature")
        self.repo.tag("v0.9", src)
        release = self.repo.commit({"src/c.c": "int c;\n"}, "release", branch="release/1.0")
        self.wait_started(name, release)
        self.repo.tag("v2", gen)  # Probe after everything above.
        self.wait_started(name, gen)
        started = self.started_by_trigger(name)
        self.assertNotIn(feature, started)
        self.assertIn("tag v2", started[gen])
        self.assertEqual(set(started), {docs, src, release, gen}, started)
        # Each ran the pushed commit and succeeded.
        for e in self.executions(name):
            harness.wait_execution(self.server, name, e["pipelineExecutionId"])
        for e in self.executions(name):
            if e["trigger"]["triggerType"] != "WebhookV2":
                continue
            self.assertEqual(e["status"], "Succeeded", e)
            self.assertTrue(e["trigger"]["triggerDetail"].endswith(
                e["sourceRevisions"][0]["revisionId"]), e)

    def test_pull_request_triggers_are_refused_at_create(self):
        status, out = self.server.call("CreatePipeline", {"pipeline": triggered_pipeline(
            "pr", "file://" + self.repo.bare,
            {"pullRequest": [{"events": ["OPEN"], "branches": {"includes": ["main"]}}]})})
        self.assertEqual(status, 400, out)
        self.assertEqual(out["__type"], "InvalidStructureException")
        self.assertIn("pullRequest", out["message"])
        status, out = self.server.call("GetPipeline", {"name": "pr"})
        self.assertEqual(out["__type"], "PipelineNotFoundException")

    def test_put_action_revision_starts_the_given_commit(self):
        name = "revisions"
        self.server.ok("CreatePipeline", {"pipeline": pipeline(name, [
            ("Source", [action("Src", "Source", "Git", config={
                "RepositoryPath": self.repo.bare, "BranchName": "main",
                "PollForSourceChanges": "false"}, outputs=["Code"])]),
            ("Build", [commands("Check", ["test -f README"], inputs=["Code"])])])})
        first = wait_for(lambda: self.executions(name), what="the first execution")[-1]
        harness.wait_execution(self.server, name, first["pipelineExecutionId"])
        second = self.repo.commit({"README": "two\n"}, "second")
        revision = {"revisionId": second, "revisionChangeId": "change-2", "created": 1700000000}
        out = self.server.ok("PutActionRevision", {"pipelineName": name, "stageName": "Source",
                                                   "actionName": "Src", "actionRevision": revision})
        self.assertTrue(out["newRevision"])
        execution = out["pipelineExecutionId"]
        self.assertEqual(harness.wait_execution(self.server, name, execution), "Succeeded")
        got = self.server.ok("GetPipelineExecution", {"pipelineName": name,
                                                      "pipelineExecutionId": execution})
        self.assertEqual(got["pipelineExecution"]["trigger"]["triggerType"], "PutActionRevision")
        self.assertEqual(got["pipelineExecution"]["artifactRevisions"][0]["revisionId"], second)
        # The same revision again: not new, nothing started.
        again = self.server.ok("PutActionRevision", {"pipelineName": name, "stageName": "Source",
                                                     "actionName": "Src",
                                                     "actionRevision": revision})
        self.assertFalse(again["newRevision"])
        self.assertEqual(again["pipelineExecutionId"], execution)
        self.assertEqual(len(self.executions(name)), 2)
        for body, error in [({"stageName": "Nope", "actionName": "Src"}, "StageNotFoundException"),
                            ({"stageName": "Source", "actionName": "Nope"},
                             "ActionNotFoundException"),
                            ({"stageName": "Build", "actionName": "Check"}, "ValidationException")]:
            status, out = self.server.call("PutActionRevision", dict(
                body, pipelineName=name, actionRevision=revision))
            self.assertEqual((status, out["__type"]), (400, error), out)
        status, out = self.server.call("PutActionRevision", {
            "pipelineName": "missing", "stageName": "Source", "actionName": "Src",
            "actionRevision": revision})
        self.assertEqual(out["__type"], "PipelineNotFoundException")


if __name__ == "__main__":
    unittest.main()
