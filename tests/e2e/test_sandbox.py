"""Commands actions run inside a bubblewrap sandbox (serve --sandbox): an
action can build from its input into its output, but cannot read the
database, the rest of the data directory, the server's keys file or its other
files that may hold secrets (--config, git connections and their token files,
build projects and their secret files). The same
pipeline under --sandbox none reads all of them, so the sandbox is what blocks
it. The data directory and the keys live outside /tmp on purpose: the
sandbox's private /tmp would hide anything there regardless of the policy.
"""

import ctypes
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import (BUILD, PIPEWRIGHT, Server, action, aws, aws_newest, commands, pipeline,
                     wait_execution, wait_for)

# The Snoop stage's actions: each succeeds only if it reads what it should not.
SNOOPS = ("ReadDatabase", "ListDataDir", "ReadKeys", "ReadConfig", "ReadGitToken",
          "ReadGitConnections", "ReadBuildProjects", "ReadBuildSecret")
KEY_ID = "AKIDPIPEWRIGHT"
SECRET = "pipewright-secret"


def bwrap_runs():
    try:
        return subprocess.run(["/usr/bin/bwrap", "--ro-bind", "/", "/", "--unshare-pid", "--dev", "/dev",
                               "--proc", "/proc", "/bin/true"], capture_output=True, timeout=30).returncode == 0
    except OSError:
        return False


def may_mount_overlays(directory):
    """Mounts an overlay by hand in `directory`: whether the server's probe should succeed
    (CAP_SYS_ADMIN and a file system that takes an upper dir)."""
    t = tempfile.mkdtemp(prefix="oracle-", dir=directory)
    try:
        for sub in ("l", "u", "w", "m"):
            os.makedirs(os.path.join(t, sub))
        libc = ctypes.CDLL(None, use_errno=True)
        opts = "lowerdir=%s/l,upperdir=%s/u,workdir=%s/w" % (t, t, t)
        ok = libc.mount(b"overlay", (t + "/m").encode(), b"overlay", 0, opts.encode()) == 0
        if ok:
            libc.umount2((t + "/m").encode(), 2)
        return ok
    finally:
        shutil.rmtree(t, ignore_errors=True)


@unittest.skipUnless(bwrap_runs(), "bubblewrap (/usr/bin/bwrap) cannot run on this machine")
class SandboxTest(unittest.TestCase):

    def setUp(self):
        # Outside /tmp (see the module comment): beside the binary.
        self.root = tempfile.mkdtemp(prefix="pw-sandbox-e2e-", dir=BUILD)
        self.data = os.path.join(self.root, "data")
        os.makedirs(self.data)
        self.keys = os.path.join(self.root, "keys")
        with open(self.keys, "w") as f:
            f.write("%s:%s\n" % (KEY_ID, SECRET))
        self.src = os.path.join(self.root, "src")
        os.makedirs(self.src)
        with open(os.path.join(self.src, "input.txt"), "w") as f:
            f.write("hello\n")
        # The server's other files that may hold secrets: a --config file naming a git
        # connections file (with a token file) and a build projects file (with a secret file).
        self.secret_files = {}
        for name in ("token", "secret"):
            self.secret_files[name] = os.path.join(self.root, name + ".txt")
            with open(self.secret_files[name], "w") as f:
                f.write("%s-%s\n" % (SECRET, name))
        self.secret_files["git"] = os.path.join(self.root, "git.json")
        with open(self.secret_files["git"], "w") as f:
            json.dump({"connections": [{
                "arn": "arn:aws:codeconnections:us-east-1:123456789012:connection/abc",
                "url": "/srv/git/{FullRepositoryId}.git",
                "tokenFile": self.secret_files["token"]}]}, f)
        self.secret_files["projects"] = os.path.join(self.root, "projects.yml")
        with open(self.secret_files["projects"], "w") as f:
            f.write("# %s-projects\nsecrets:\n  secrets-manager:\n    prod/api: {file: %s}\n"
                    % (SECRET, self.secret_files["secret"]))
        self.secret_files["config"] = os.path.join(self.root, "serve.yml")
        with open(self.secret_files["config"], "w") as f:
            f.write("# %s-config\ngit-connections: %s\nbuild-projects: %s\n"
                    % (SECRET, self.secret_files["git"], self.secret_files["projects"]))
        self.deploy_root = os.path.join(self.root, "deploys")
        os.makedirs(self.deploy_root)
        self.deployed = os.path.join(self.deploy_root, "deployed")
        self.server = None

    def tearDown(self):
        if self.server:
            self.server.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def start(self, sandbox):
        self.server = Server(data_dir=self.data,
                             extra_args=("--sandbox", sandbox, "--auth-keys-file", self.keys,
                                         "--deploy-root", self.deploy_root,
                                         "--config", self.secret_files["config"]))

    def aws_json(self, *args):
        r = aws(self.server, *args)
        self.assertEqual(r.code, 0, r.stderr)
        return r.json()

    def run_pipeline(self):
        """Runs Source -> Build -> Deploy -> Snoop; returns {action: status}."""
        db = os.path.join(self.data, "pipewright.db")
        p = pipeline("snoop", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.src}, outputs=["Src"])]),
            ("Build", [commands("Build", ["tr a-z A-Z < input.txt > output.txt"],
                                inputs=["Src"], outputs=["Out"])]),
            ("Deploy", [action("Deploy", "Deploy", "Directory", config={"Path": self.deployed},
                               inputs=["Out"])]),
            # Each succeeds only if it can reach what it should not.
            ("Snoop", [
                commands("ReadDatabase", ["cat %s > /dev/null" % db]),
                # In the sandbox only the mount points of its own files remain.
                commands("ListDataDir", ["ls -A %s | grep -vx -e work -e logs" % self.data]),
                commands("ReadKeys", ["grep -q %s %s" % (SECRET, self.keys)]),
                # Before: these were readable in the sandbox.
                commands("ReadConfig", ["grep -q %s %s" % (SECRET, self.secret_files["config"])]),
                commands("ReadGitToken", ["grep -q %s %s" % (SECRET, self.secret_files["token"])]),
                commands("ReadGitConnections",
                         ["grep -q codeconnections %s" % self.secret_files["git"]]),
                commands("ReadBuildProjects",
                         ["grep -q %s %s" % (SECRET, self.secret_files["projects"])]),
                commands("ReadBuildSecret",
                         ["grep -q %s %s" % (SECRET, self.secret_files["secret"])]),
            ]),
        ])
        path = os.path.join(self.root, "pipeline.json")
        with open(path, "w") as f:
            json.dump(p, f)
        self.aws_json("create-pipeline", "--pipeline", "file://" + path)

        def finished():
            state = self.aws_json("get-pipeline-state", "--name", "snoop")
            statuses = {}
            for stage in state["stageStates"]:
                for a in stage.get("actionStates", []):
                    statuses[a["actionName"]] = a.get("latestExecution", {}).get("status")
            snoops = [statuses.get(n) for n in SNOOPS]
            return statuses if all(s in ("Succeeded", "Failed") for s in snoops) else None
        return wait_for(finished, timeout=120, interval=0.5, what="the Snoop stage to finish")

    def test_sandbox_hides_database_data_dir_and_keys_but_builds_work(self):
        self.start("bwrap")
        statuses = self.run_pipeline()
        self.assertEqual(statuses["Build"], "Succeeded")
        self.assertEqual(statuses["Deploy"], "Succeeded")
        with open(os.path.join(self.deployed, "output.txt")) as f:
            self.assertEqual(f.read(), "HELLO\n")
        for snoop in SNOOPS:
            self.assertEqual(statuses[snoop], "Failed", snoop)
        with open(os.path.join(self.data, "server.log")) as f:
            self.assertIn("bubblewrap sandbox", f.read())

    def test_without_the_sandbox_the_same_actions_read_everything(self):
        self.start("none")
        statuses = self.run_pipeline()
        self.assertEqual(statuses["Build"], "Succeeded")
        for snoop in SNOOPS:
            self.assertEqual(statuses[snoop], "Succeeded", snoop)

    def test_a_source_cannot_snapshot_the_servers_secret_files(self):
        # The sandbox keeps Commands actions from the keys, but a Source/Directory
        # snapshot is taken by the server itself: before, a pipeline whose source
        # was the keys file's folder put the secrets into an artifact (and a
        # Commands action printed them to its log, readable by any reader).
        conf = os.path.join(self.root, "conf")  # Holds the keys, not the data directory.
        os.makedirs(os.path.join(conf, "sub"))
        shutil.move(self.keys, os.path.join(conf, "keys"))
        self.keys = os.path.join(conf, "keys")
        self.start("bwrap")
        os.symlink(conf, os.path.join(self.deploy_root, "link-to-conf"))
        for i, path in enumerate([conf, conf + "/", self.keys, os.path.join(conf, "sub", ".."),
                                  os.path.join(self.deploy_root, "link-to-conf"), "/proc/self"]):
            spec = os.path.join(self.root, "refused.json")
            with open(spec, "w") as f:
                json.dump(pipeline("leak%d" % i, [
                    ("Source", [action("Src", "Source", "Directory", config={"Path": path},
                                       outputs=["Src"])]),
                    ("Build", [commands("Cat", ["cat keys"], inputs=["Src"])])]), f)
            r = aws(self.server, "create-pipeline", "--pipeline", "file://" + spec)
            self.assertNotEqual(r.code, 0, "%s: %s" % (path, r.stdout))
            self.assertIn("InvalidActionDeclarationException", r.stderr, path)
            self.assertIn("pseudo file system" if path.startswith("/proc") else
                          "which the server keeps from actions", r.stderr, path)
        # A path from a variable is checked when the action runs: it fails, and
        # nothing after it runs.
        spec = os.path.join(self.root, "var.json")
        with open(spec, "w") as f:
            json.dump(pipeline("leakvar", [
                ("Source", [action("Src", "Source", "Directory",
                                   config={"Path": "#{variables.src}"}, outputs=["Src"])]),
                ("Build", [commands("Cat", ["cat keys"], inputs=["Src"])])],
                pipelineType="V2", variables=[{"name": "src", "defaultValue": self.src}]), f)
        r = aws_newest(self.server, "create-pipeline", "--pipeline", "file://" + spec)
        self.assertEqual(r.code, 0, r.stderr)
        r = aws_newest(self.server, "start-pipeline-execution", "--name", "leakvar",
                       "--variables", "name=src,value=" + conf)
        self.assertEqual(r.code, 0, r.stderr)
        eid = r.json()["pipelineExecutionId"]

        def runs_when_ended():
            e = self.aws_json("get-pipeline-execution", "--pipeline-name", "leakvar",
                              "--pipeline-execution-id", eid)["pipelineExecution"]
            if e["status"] == "InProgress":
                return None
            return e["status"], self.aws_json(
                "list-action-executions", "--pipeline-name", "leakvar",
                "--filter", "pipelineExecutionId=" + eid)["actionExecutionDetails"]
        status, runs = wait_for(runs_when_ended, timeout=60, interval=0.1,
                                what="the execution to end")
        self.assertEqual(status, "Failed")
        self.assertEqual([r["actionName"] for r in runs], ["Src"])  # Cat never ran.
        self.assertEqual(runs[0]["status"], "Failed")
        self.assertIn("which the server keeps from actions",
                      runs[0]["output"]["executionResult"]["externalExecutionSummary"])

    def test_a_source_below_the_servers_working_directory_is_read(self):
        # The README's way: the server started in a checkout with --data-dir
        # ./.pipewright, a source in examples/ beside it. The sandbox hides the
        # working directory then (it holds the data directory), but a source
        # below it that does not hold the data directory is ordinary. The first
        # version of the secret-file check counted the working directory and refused it.
        self.server = Server(data_dir=self.data, extra_args=("--sandbox", "bwrap"),
                             command_prefix=("env", "-C", self.root))
        self.server.ok("CreatePipeline", {"pipeline": pipeline("beside", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.src},
                               outputs=["Src"])]),
            ("Build", [commands("Read", ["test \"$(cat input.txt)\" = hello"],
                                inputs=["Src"])])])})
        ex = self.server.ok("ListPipelineExecutions", {"pipelineName": "beside"})
        eid = ex["pipelineExecutionSummaries"][0]["pipelineExecutionId"]
        self.assertEqual(wait_execution(self.server, "beside", eid), "Succeeded")
        status, err = self.server.call("CreatePipeline", {"pipeline": pipeline("around", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.root},
                               outputs=["Src"])]),
            ("Build", [commands("Read", ["true"], inputs=["Src"])])])})
        self.assertEqual((status, err.get("__type")), (400, "InvalidActionDeclarationException"))
        self.assertIn("data directory", err["message"])

    def test_parallel_actions_each_get_a_private_input_and_none_fails_to_start(self):
        # Each action checks that its input is as the source made it, then
        # writes into it (in place, new files, a deletion). With overlays the
        # inputs are mounts of one unpacked copy: a write must reach neither
        # the copy nor another action. Actions end at different times, so
        # overlays are released while other sandboxes are being set up: once
        # that removed a mount point a starting bwrap held a copy of, and the
        # action failed ("Unable to apply mount flags: remount ...").
        self.fan_out(16)

    @unittest.skipUnless(os.geteuid() == 0 and subprocess.run(
        ["unshare", "-m", "--propagation", "shared", "true"], capture_output=True).returncode == 0,
        "needs root and unshare(1)")
    def test_on_a_shared_root_mount_parallel_sandboxes_none_fails_to_start(self):
        # The same, with the server started where `/` is a shared mount, as on
        # every systemd host (this test machine's root is private). There the
        # server's overlay mounts and unmounts propagated into the sandboxes'
        # namespaces (bwrap makes its copies slaves), and a sandbox setting
        # itself up lost a mount it was remounting: every execution of a
        # group of 40 failed ("Unable to apply mount flags: remount
        # .../work/...: No such file or directory"). Now the server keeps its
        # mounts in a namespace of its own, where they are private.
        self.fan_out(40, prefix=("unshare", "-m", "--propagation", "shared"))

    def fan_out(self, n, prefix=()):
        """Runs a group of `n` sandboxed actions on one input 3 times (see above)."""
        self.server = Server(data_dir=self.data, extra_args=("--sandbox", "bwrap"),
                             command_prefix=prefix)
        self.seen_on_host, self.seen_in_server = [], []
        for i in range(40):
            with open(os.path.join(self.src, "f%02d.txt" % i), "w") as f:
                f.write("file %d\n" % i)
        script = ['test "$(cat input.txt)" = hello',
                  'test "$(ls | wc -l)" = 41',
                  'echo "$PIPEWRIGHT_ACTION" > input.txt',
                  'rm f00.txt && mkdir -p gen && echo x > gen/out.txt',
                  'sleep 0.$(( 1$(echo "$PIPEWRIGHT_ACTION" | tr -dc 0-9) % 5 ))',
                  'test "$(cat input.txt)" = "$PIPEWRIGHT_ACTION"']
        self.server.ok("CreatePipeline", {"pipeline": pipeline("fan", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.src},
                               outputs=["Src"])]),
            ("Build", [commands("A%02d" % i, script, inputs=["Src"]) for i in range(n)]),
        ])})
        for _ in range(3):
            eid = self.server.ok("StartPipelineExecution", {"name": "fan"})["pipelineExecutionId"]

            def running():  # Polled until every action has started, then they run <= 0.5 s.
                with open("/proc/self/mountinfo") as f:
                    self.seen_on_host += [line for line in f if self.data + "/work" in line]
                # The inputs are mounted in each action's own namespace, not the server's.
                with open("/proc/%d/mountinfo" % self.server.proc.pid) as f:
                    self.seen_in_server += [line for line in f if self.data + "/work" in line]
                runs = self.server.ok("ListActionExecutions", {
                    "pipelineName": "fan", "filter": {"pipelineExecutionId": eid}})
                return len(runs["actionExecutionDetails"]) >= n + 1
            wait_for(running, timeout=120, interval=0.02, what="the group's actions to start")
            status = wait_execution(self.server, "fan", eid, timeout=120)
            if status != "Succeeded":
                runs = self.server.ok("ListActionExecutions", {
                    "pipelineName": "fan", "filter": {"pipelineExecutionId": eid}})
                failed = [(r["actionName"], r.get("output", {}).get("executionResult", {}))
                          for r in runs["actionExecutionDetails"] if r["status"] != "Succeeded"]
                logs = []
                for r in runs["actionExecutionDetails"]:
                    if r["status"] != "Succeeded":
                        path = os.path.join(self.data, "logs", r["actionExecutionId"] + ".log")
                        if os.path.exists(path):
                            with open(path, errors="replace") as f:
                                logs.append(f.read()[-400:])
                self.fail("execution %s: %s\n%s\n%s" % (eid, status, failed, "\n".join(logs)))
        with open(os.path.join(self.data, "server.log")) as f:
            log = f.read()
        if may_mount_overlays(self.root):  # Then the server must use them.
            self.assertIn("input artifacts reach actions as overlay mounts", log)
            # ...in the actions' own mount namespaces: each sandbox copied the server's few
            # mounts, not the overlays of every action of its group (make bench's parallel
            # group of 40: 2x its floor before, 1.2x after).
            self.assertEqual(len(self.seen_in_server), 0, "overlays in the server's "
                             "namespace: %s" % self.seen_in_server[:1])
        self.server.close()
        self.server = None
        # Nothing stays mounted on the data directory once the server is gone,
        # and while it ran its overlays stayed in its own mount namespace.
        with open("/proc/self/mountinfo") as f:
            left = [line for line in f if self.data in line]
        self.assertEqual(left, [])
        self.assertEqual(len(self.seen_on_host), 0, "the server's mounts reached the host's "
                         "namespace: %s" % self.seen_on_host[:1])
        # The unpacked copy is as the source made it.
        unpacked = os.path.join(self.data, "unpacked")
        if os.path.isdir(unpacked):
            for entry in os.listdir(unpacked):
                if entry.startswith("."):  # Spare directories, temporary ones.
                    continue
                copy = os.path.join(unpacked, entry)
                with open(os.path.join(copy, "input.txt")) as f:
                    self.assertEqual(f.read(), "hello\n")
                self.assertTrue(os.path.exists(os.path.join(copy, "f00.txt")))
                self.assertFalse(os.path.exists(os.path.join(copy, "gen")))

    def test_output_variables_and_the_failing_command_come_back_out_of_the_sandbox(self):
        # The result files an action writes from inside the sandbox (which
        # command failed; the declared output variables) are bound into it;
        # the variables file only for an action that declares variables.
        self.server = Server(data_dir=self.data, extra_args=("--sandbox", "bwrap"))
        exports = commands("Exports", ["export VERSION=1.2.$((1 + 2))", "true"])
        exports["outputVariables"] = ["VERSION"]
        exports["namespace"] = "Built"
        fails = commands("Fails", ["true", "exit 7", "true"])
        plain = commands("Plain", ['test ! -e "$PIPEWRIGHT_VARIABLES_FILE"'])
        self.server.ok("CreatePipeline", {"pipeline": pipeline("vars", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.src},
                               outputs=["Src"])]),
            ("Build", [exports, fails, plain]),
        ])})
        eid = self.server.ok("StartPipelineExecution", {"name": "vars"})["pipelineExecutionId"]
        self.assertEqual(wait_execution(self.server, "vars", eid, timeout=120), "Failed")
        runs = {r["actionName"]: r for r in self.server.ok("ListActionExecutions", {
            "pipelineName": "vars", "filter": {"pipelineExecutionId": eid}})["actionExecutionDetails"]}
        self.assertEqual(runs["Exports"]["status"], "Succeeded")
        self.assertEqual(runs["Exports"]["output"]["outputVariables"], {"VERSION": "1.2.3"})
        self.assertEqual(runs["Plain"]["status"], "Succeeded")
        self.assertEqual(runs["Fails"]["status"], "Failed")
        summary = runs["Fails"]["output"]["executionResult"]["externalExecutionSummary"]
        self.assertIn("2", summary)
        self.assertIn("exited with code 7", summary)

    def test_a_command_run_without_the_shell_gets_no_status_file(self):
        # One plain command runs without a shell, which is what writes the status file (which
        # command failed): none is made or bound then, so the sandbox's data directory (an
        # empty tmpfs but for the bound paths) holds only the working directory. Before, the
        # status file was bound too (one more mount and one more file per action).
        self.server = Server(data_dir=self.data, extra_args=("--sandbox", "bwrap"))
        self.server.ok("CreatePipeline", {"pipeline": pipeline("direct", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.src},
                               outputs=["Src"])]),
            ("Build", [commands("List", ["ls -A " + self.data], inputs=["Src"]),
                       commands("Shell", ["ls -A %s > listing.txt" % self.data,
                                          "cat listing.txt"], inputs=["Src"])]),
        ])})
        eid = self.server.ok("StartPipelineExecution", {"name": "direct"})["pipelineExecutionId"]
        self.assertEqual(wait_execution(self.server, "direct", eid, timeout=120), "Succeeded")
        runs = {r["actionName"]: r for r in self.server.ok("ListActionExecutions", {
            "pipelineName": "direct", "filter": {"pipelineExecutionId": eid}})[
                "actionExecutionDetails"]}

        def listing(name):
            with open(os.path.join(self.data, "logs", runs[name]["actionExecutionId"] + ".log")) as f:
                return set(f.read().split())
        self.assertEqual(listing("List"), {"work"})
        self.assertEqual(listing("Shell"), {"work", "logs"})  # The shell's status file is bound.

    def test_bad_sandbox_flags_refuse_to_start(self):
        # An action user that does not exist is refused the same way, by name.
        p = subprocess.run([PIPEWRIGHT, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data,
                            "--sandbox", "bwrap", "--action-user", "no-such-user-pw"],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no-such-user-pw", p.stderr)
        p = subprocess.run([PIPEWRIGHT, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data,
                            "--sandbox", "maybe"], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("auto, bwrap or none", p.stderr)

    # An action user that may not search a parent of the data directory (a checkout in
    # /root, 0700) once saw every action fail with bwrap's "Can't find source path"; serve
    # now refuses to start, naming the directory and the fix.
    @unittest.skipUnless(os.geteuid() == 0, "--action-user needs root")
    def test_an_action_user_that_cannot_reach_the_data_directory_is_refused(self):
        locked = tempfile.mkdtemp(prefix="pw-locked-", dir="/var/tmp")  # 0700, owned by root
        try:
            data = os.path.join(locked, "data")
            p = subprocess.run([PIPEWRIGHT, "serve", "--listen", "127.0.0.1:0", "--data-dir", data,
                                "--sandbox", "bwrap", "--action-user", "nobody"],
                               capture_output=True, text=True, timeout=30)
            if "bubblewrap cannot run" in p.stderr:  # As nobody: no user namespaces here.
                self.skipTest("bubblewrap cannot run as nobody here: " + p.stderr[-200:])
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("nobody cannot reach %s/work" % data, p.stderr)
            self.assertIn("chmod o+x", p.stderr)
        finally:
            shutil.rmtree(locked, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
