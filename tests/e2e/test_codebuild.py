"""CodeBuild actions run their buildspec: the example source tree of
examples/codebuild in a pipeline Source -> CodeBuild -> Commands, the guide's
retry story with a CodeBuild action, projects and secrets from
serve --build-projects, and (where podman runs) a build inside a container.
"""

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import unittest

import harness
from harness import action, commands, pipeline, stage_state, wait_execution, wait_for

EXAMPLE = os.path.join(harness.ROOT, "examples", "codebuild")


def codebuild(name, project, inputs, outputs=(), config=None, **extra):
    c = {"ProjectName": project}
    c.update(config or {})
    return action(name, "Build", "CodeBuild", config=c, inputs=inputs, outputs=outputs, **extra)


def read(path):
    """The file's text, or "" when it does not exist (yet)."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def source(path):
    return ("Source", [action("Source", "Source", "Directory", config={"Path": path},
                              outputs=["SourceArtifact"])])


class CodeBuildTestCase(unittest.TestCase):
    """A fresh server per test, started with the test's own flags."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pw-e2e-codebuild-")
        self.server = None

    def tearDown(self):
        if self.server:
            self.server.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, projects=None, args=()):
        args = list(args)
        if projects is not None:
            path = os.path.join(self.tmp, "build-projects.yml")
            with open(path, "w") as f:
                f.write(projects)
            args += ["--build-projects", path]
        self.server = harness.Server(extra_args=args)

    def create(self, p):
        path = os.path.join(self.tmp, p["name"] + ".json")
        with open(path, "w") as f:
            json.dump(p, f)
        r = harness.aws(self.server, "create-pipeline", "--pipeline", "file://" + path)
        self.assertEqual(r.code, 0, r.stderr)

    def latest(self, pipeline_name):
        return wait_for(lambda: self.server.ok("ListPipelineExecutions", {"pipelineName": pipeline_name})
                        ["pipelineExecutionSummaries"], what="an execution")[0]["pipelineExecutionId"]

    def runs(self, pipeline_name, execution_id):
        out = {}
        for d in self.server.ok("ListActionExecutions", {
                "pipelineName": pipeline_name,
                "filter": {"pipelineExecutionId": execution_id}})["actionExecutionDetails"]:
            out.setdefault(d["actionName"], d)  # Newest first.
        return out

    def log_of(self, run):
        with open(os.path.join(self.server.data_dir, "logs", run["actionExecutionId"] + ".log")) as f:
            return f.read()


class ExamplePipeline(CodeBuildTestCase):
    def test_example_buildspec_runs_and_feeds_the_next_action(self):
        self.start(args=["--sandbox", "auto"])  # Inside bubblewrap where it runs here.
        src = os.path.join(self.tmp, "src")
        shutil.copytree(EXAMPLE, src)
        check = commands("Check", [
            'test "#{BuildVars.VERSION}" = "1.4-1"',
            'test "#{BuildVars.ARTIFACT_COUNT}" = 3',
            # discard-paths: every file at the artifact's root; exclude-paths: no *.tmp.
            "ls -R",
            "test -x hello && test ! -e bin && test ! -e scratch.tmp && test -f README.txt",
            './hello | grep -x "hello from version 1.4-1"',
            'grep -q \'"succeeded":1\' build-info.json',
            'grep -x "PASS hello prints its version" "$CODEBUILD_SRC_DIR_Reports/tests.txt"',
        ], inputs=["BuildOutput", "Reports"])
        self.create(pipeline("example", [
            source(src),
            ("Build", [codebuild("Build", "hello-build", ["SourceArtifact"],
                                 ["BuildOutput", "Reports"], namespace="BuildVars")]),
            ("Check", [check]),
        ]))
        eid = self.latest("example")
        runs = lambda: self.runs("example", eid)
        status = wait_execution(self.server, "example", eid, timeout=60)
        build_log = self.log_of(runs()["Build"])
        self.assertEqual(status, "Succeeded", build_log + self.log_of(runs().get("Check", runs()["Build"])))

        build = runs()["Build"]
        self.assertEqual(build["output"]["outputVariables"], {"VERSION": "1.4-1", "ARTIFACT_COUNT": "3"})
        self.assertEqual(sorted(a["name"] for a in build["output"]["outputArtifacts"]),
                         ["BuildOutput", "Reports"])
        self.assertIn("Build succeeded", build["output"]["executionResult"]["externalExecutionSummary"])
        # CodeBuild's log shape, the runtime-versions note and the environment.
        source_revision = stage_state(self.server, "example", "Source")["actionStates"][0][
            "currentRevision"]["revisionId"]
        for line in ["[Container] Note: phases.install.runtime-versions is ignored",
                     "[Container] Entering phase INSTALL", "[Container] Entering phase POST_BUILD",
                     "[Container] Running command cd src",
                     "[Container] Phase complete: BUILD State: SUCCEEDED",
                     "build phase done, succeeding=1",
                     "building hello 1.4-1 for codepipeline/example from " + source_revision]:
            self.assertIn(line, build_log)

        # A second run numbers its build 2, so the Check (expecting 1.4-1) fails.
        self.server.ok("StartPipelineExecution", {"name": "example"})
        wait_for(lambda: len(self.server.ok("ListPipelineExecutions", {"pipelineName": "example"})
                             ["pipelineExecutionSummaries"]) == 2, what="a second execution")
        second = self.latest("example")
        self.assertEqual(wait_execution(self.server, "example", second, timeout=60), "Failed")
        again = self.runs("example", second)
        self.assertEqual(again["Build"]["output"]["outputVariables"]["VERSION"], "1.4-2")
        self.assertIn("Command 1 (", again["Check"]["output"]["executionResult"]["errorDetails"]["message"]
                      if "errorDetails" in again["Check"]["output"]["executionResult"]
                      else again["Check"]["output"]["executionResult"]["externalExecutionSummary"])


class SandboxesStartWhileInputsAreReleased(CodeBuildTestCase):
    def test_sandboxed_actions_never_trip_over_a_released_input(self):
        """A CodeBuild action's input is an overlay in the server's mount
        namespace. Each sandboxed action copies that namespace (and so the
        overlays in it) and remounts every copy by its path while it sets
        itself up; meanwhile the builds of another pipeline finish, their
        overlays are unmounted and their mount points recycled. A sandbox
        failed ("Unable to apply mount flags: remount .../work/<run>: No such
        file or directory"; e2e.test_codebuild's Check, now and then) until a
        sandbox's set-up held the released mount points in place."""
        self.start(args=["--sandbox", "auto"])
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        with open(os.path.join(src, "buildspec.yml"), "w") as f:
            # B<order>x<hundredths>: each build lasts its hundredths of a second.
            f.write("version: 0.2\nphases:\n  build:\n    commands:\n"
                    "      - sleep 0.${PIPEWRIGHT_ACTION##*x}\n")
        n = 40
        self.create(pipeline("builds", [source(src)] + [("Build%d" % st, [
            codebuild("B%dx%02d" % (order, k), "any", ["SourceArtifact"], run_order=order + 1)
            for order in range(2 * st, 2 * st + 2) for k in range(0, 40, 2)]) for st in range(2)]))
        self.create(pipeline("sandboxed", [source(src), ("Check", [
            commands("C%d" % i, ["test -f buildspec.yml"], run_order=i + 1, inputs=["SourceArtifact"])
            for i in range(n)])]))
        for name in ("builds", "sandboxed"):
            eid = self.latest(name)
            status = wait_execution(self.server, name, eid, timeout=300)
            failed = [(a, self.log_of(run)[-400:]) for a, run in self.runs(name, eid).items()
                      if run["status"] != "Succeeded"]
            self.assertEqual((status, failed), ("Succeeded", []))


class RetryStory(CodeBuildTestCase):
    def test_failing_build_is_retried_with_failed_actions_and_succeeds(self):
        flag = os.path.join(self.tmp, "fixed")
        self.start(projects="""
projects:
  flaky-tests:
    environment-variables:
      FLAG: %s
    buildspec:
      version: 0.2
      phases:
        build:
          commands:
            - echo testing
            - test -f "$FLAG"
        post_build:
          commands:
            - echo "post_build sees succeeding=$CODEBUILD_BUILD_SUCCEEDING"
""" % flag)
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        with open(os.path.join(src, "index.html"), "w") as f:
            f.write("hello\n")
        self.create(pipeline("retry-story", [
            source(src),
            ("Test", [action("UnitTests", "Test", "CodeBuild", config={"ProjectName": "flaky-tests"},
                             inputs=["SourceArtifact"])]),
        ]))
        wait_for(lambda: stage_state(self.server, "retry-story", "Test").get("latestExecution", {})
                 .get("status") == "Failed", what="Test Failed")
        state = stage_state(self.server, "retry-story", "Test")
        failed = state["actionStates"][0]["latestExecution"]
        self.assertEqual(failed["errorDetails"]["message"],
                         'Phase BUILD: command 2 (test -f "$FLAG") exited with code 1.')
        log = self.log_of({"actionExecutionId": failed["actionExecutionId"]})
        self.assertIn("post_build sees succeeding=0", log)
        self.assertIn('[Container] Command did not exit successfully test -f "$FLAG" exit status 1', log)

        open(flag, "w").close()
        eid = state["latestExecution"]["pipelineExecutionId"]
        r = harness.aws(self.server, "retry-stage-execution", "--pipeline-name",
                        "retry-story", "--stage-name", "Test", "--pipeline-execution-id", eid,
                        "--retry-mode", "FAILED_ACTIONS")
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual(wait_execution(self.server, "retry-story", eid), "Succeeded")
        retried = stage_state(self.server, "retry-story", "Test")["actionStates"][0]["latestExecution"]
        self.assertNotEqual(retried["actionExecutionId"], failed["actionExecutionId"])
        self.assertIn("post_build sees succeeding=1",
                      self.log_of({"actionExecutionId": retried["actionExecutionId"]}))


class StopKillsTheBuild(CodeBuildTestCase):
    def test_stop_and_abandon_ends_the_build_shell_and_its_children(self):
        pidfile = os.path.join(self.tmp, "pid")
        self.start(projects="""
projects:
  slow:
    environment-variables: {PIDFILE: %s}
    buildspec:
      version: 0.2
      phases:
        build:
          commands:
            - sleep 120 & echo "$$ $!" > "$PIDFILE"; wait
""" % pidfile)
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        open(os.path.join(src, "x"), "w").close()
        self.create(pipeline("slow", [source(src), ("Build", [codebuild("Build", "slow", ["SourceArtifact"])])]))
        eid = self.latest("slow")
        pids = [int(p) for p in wait_for(lambda: read(pidfile).split(),
                                         what="the build to start")]
        self.server.ok("StopPipelineExecution", {"pipelineName": "slow", "pipelineExecutionId": eid,
                                                 "abandon": True})
        self.assertEqual(wait_execution(self.server, "slow", eid), "Stopped")
        for pid in pids:
            wait_for(lambda: read("/proc/%d/stat" % pid).rsplit(")", 1)[-1].split()[:1] in ([], ["Z"]),
                     timeout=30, what="process %d to end" % pid)


class ProjectsAndSecrets(CodeBuildTestCase):
    def test_secrets_resolve_from_the_server_and_refusals_are_clear(self):
        secret = os.path.join(self.tmp, "api.json")
        with open(secret, "w") as f:
            json.dump({"token": "tok-123"}, f)
        password = os.path.join(self.tmp, "db-password")
        with open(password, "w") as f:
            f.write("hunter2\n")
        self.start(projects="""
projects:
  with-secrets:
    buildspec: ci/spec.yml
secrets:
  parameter-store:
    /app/db-password: {file: %s}
  secrets-manager:
    prod/api: {file: %s}
""" % (password, secret))
        src = os.path.join(self.tmp, "src")
        os.makedirs(os.path.join(src, "ci"))
        with open(os.path.join(src, "ci", "spec.yml"), "w") as f:
            f.write("""version: 0.2
env:
  parameter-store:
    DB_PASSWORD: /app/db-password
  secrets-manager:
    TOKEN: prod/api:token
phases:
  build:
    commands:
      - test "$DB_PASSWORD" = hunter2
      - test "$TOKEN" = tok-123
      - test "$FROM_ACTION" = hunter2
      - test "$PLAIN" = "a b"
""")
        ev = json.dumps([{"name": "FROM_ACTION", "value": "/app/db-password", "type": "PARAMETER_STORE"},
                         {"name": "PLAIN", "value": "a b", "type": "PLAINTEXT"}])
        self.create(pipeline("secrets", [
            source(src),
            ("Build", [codebuild("Build", "with-secrets", ["SourceArtifact"],
                                 config={"EnvironmentVariables": ev})]),
        ]))
        eid = self.latest("secrets")
        status = wait_execution(self.server, "secrets", eid)
        self.assertEqual(status, "Succeeded", self.log_of(self.runs("secrets", eid)["Build"]))

        # An undeclared secret fails the action, saying where to declare it.
        self.create(pipeline("undeclared", [
            source(src),
            ("Build", [codebuild("Build", "with-secrets", ["SourceArtifact"], config={
                "EnvironmentVariables": json.dumps([{"name": "X", "value": "other/secret",
                                                     "type": "SECRETS_MANAGER"}])})]),
        ]))
        eid = self.latest("undeclared")
        self.assertEqual(wait_execution(self.server, "undeclared", eid), "Failed")
        err = self.runs("undeclared", eid)["Build"]["output"]["executionResult"]
        self.assertIn("'other/secret' is not declared", err["externalExecutionSummary"])
        self.assertIn("serve --build-projects", err["externalExecutionSummary"])

        # Batch builds and a bad PrimarySource are refused at CreatePipeline.
        for config, message in [({"BatchEnabled": "true"}, "BatchEnabled true is not supported"),
                                ({"PrimarySource": "Nope"}, "PrimarySource 'Nope' must name one"),
                                ({"EnvironmentVariables": '[{"name":"A","value":"1","type":"VAULT"}]'},
                                 "type must be PLAINTEXT, PARAMETER_STORE or SECRETS_MANAGER")]:
            with self.subTest(config=config):
                r = self.server.call("CreatePipeline", {"pipeline": pipeline("refused", [
                    source(src), ("Build", [codebuild("Build", "p1", ["SourceArtifact"], config=config)])])})
                self.assertEqual(r[0], 400)
                self.assertEqual(r[1]["__type"], "InvalidActionDeclarationException")
                self.assertIn(message, r[1]["message"])

        # An undeclared project without buildspec.yml says what to add.
        bare = os.path.join(self.tmp, "bare")
        os.makedirs(bare)
        open(os.path.join(bare, "x"), "w").close()
        self.create(pipeline("no-buildspec", [
            source(bare), ("Build", [codebuild("Build", "not-declared", ["SourceArtifact"])])]))
        eid = self.latest("no-buildspec")
        self.assertEqual(wait_execution(self.server, "no-buildspec", eid), "Failed")
        state = stage_state(self.server, "no-buildspec", "Build")["actionStates"][0]["latestExecution"]
        self.assertEqual(state["errorDetails"]["code"], "ConfigurationError")
        self.assertIn("The primary source has no buildspec.yml: add one, or declare project "
                      "not-declared", state["errorDetails"]["message"])


PODMAN = shutil.which("podman")
BUSYBOX = "/bin/busybox"


def podman_wrapper(tmp):
    """A podman-compatible CLI for machines (like this test's sandbox) where a
    plain `podman run` fails: raising RLIMIT_NOFILE/NPROC is not permitted and
    crun refuses the hybrid cgroup layout. It runs podman in a private mount
    namespace without the cgroup2 mount, with cgroups disabled and the
    limits lowered to what the process may set."""
    path = os.path.join(tmp, "podman-here")
    with open(path, "w") as f:
        f.write("""#!/bin/sh
if [ "$1" = run ]; then
  shift
  set -- run --cgroups=disabled --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$@"
fi
exec unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec %s "$@"' podman "$@"
""" % PODMAN)
    os.chmod(path, 0o755)
    return path


class Container(CodeBuildTestCase):
    def test_build_runs_inside_a_local_image(self):
        if not PODMAN or not os.path.exists(BUSYBOX):
            self.skipTest("podman or busybox-static is not installed")
        image = "localhost/pipewright-e2e-busybox:%d" % os.getpid()
        root = os.path.join(self.tmp, "rootfs")
        os.makedirs(os.path.join(root, "bin"))
        shutil.copy(BUSYBOX, os.path.join(root, "bin", "busybox"))
        for tool in ["sh", "echo", "cat", "test", "mkdir", "printf", "uname", "grep", "hostname"]:
            os.symlink("busybox", os.path.join(root, "bin", tool))
        os.makedirs(os.path.join(root, "tmp"))
        tar = os.path.join(self.tmp, "rootfs.tar")
        with tarfile.open(tar, "w") as t:
            t.add(root, arcname=".")
        r = subprocess.run([PODMAN, "import", tar, image], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            self.skipTest("podman import failed: " + r.stderr.strip()[-300:])
        self.addCleanup(subprocess.run, [PODMAN, "rmi", "-f", image], capture_output=True, timeout=120)
        runtime, why = None, ""
        for candidate in ([PODMAN], [podman_wrapper(self.tmp)]):
            r = subprocess.run(candidate + ["run", "--rm", image, "/bin/sh", "-c", "echo ok"],
                               capture_output=True, text=True, timeout=120)
            if r.returncode == 0 and r.stdout.strip() == "ok":
                runtime = candidate[0]
                break
            why += "%s: %s; " % (os.path.basename(candidate[0]), r.stderr.strip()[-200:])
        if runtime is None:
            self.skipTest("podman cannot run containers here (" + why + "); the host path is "
                          "tested by the other tests")

        self.start(projects="""
projects:
  in-image:
    image: %s
    buildspec:
      version: 0.2
      env:
        exported-variables: [WHERE]
      phases:
        build:
          commands:
            - test -x /bin/busybox && test ! -e /usr/bin/python3
            - test "$CODEBUILD_INITIATOR" = codepipeline/container
            - WHERE="$(cat marker)-in-container"
            - mkdir -p out && echo built > out/result.txt
      artifacts:
        files: [out/result.txt]
""" % image, args=["--container-runtime", runtime])
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        with open(os.path.join(src, "marker"), "w") as f:
            f.write("source")
        self.create(pipeline("container", [
            source(src),
            ("Build", [codebuild("Build", "in-image", ["SourceArtifact"], ["Out"], namespace="B")]),
            ("Check", [commands("Check", ['test "#{B.WHERE}" = source-in-container',
                                          "grep -x built out/result.txt"], inputs=["Out"])]),
        ]))
        eid = self.latest("container")
        status = wait_execution(self.server, "container", eid, timeout=120)
        build = self.runs("container", eid)["Build"]
        self.assertEqual(status, "Succeeded", self.log_of(build))
        self.assertIn("running in image " + image, self.log_of(build))


if __name__ == "__main__":
    unittest.main()
