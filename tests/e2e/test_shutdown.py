"""SIGTERM ends the server cleanly (exit 0) even while actions are finishing
and their completions are queued, and a restart carries on: the runs that were
cut off are Failed and retryable, as after kill -9."""

import os
import signal
import subprocess
import time
import unittest

from harness import (PIPEWRIGHT, Server, ServerTestCase, action, commands, pipeline,
                     wait_execution, wait_for)


class ShutdownTest(ServerTestCase):
    def test_sigterm_under_load_exits_zero_and_restart_recovers(self):
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        with open(os.path.join(src, "a.txt"), "w") as f:
            f.write("x")
        # Ten parallel actions that end within milliseconds of each other, so
        # their completions queue up in the engine while SIGTERM arrives.
        p = pipeline("Busy", [
            ("Source", [action("S", "Source", "Directory", config={"Path": src},
                               outputs=["Src"])]),
            ("Build", [commands("B%d" % i, ["true"], inputs=["Src"]) for i in range(10)]),
            ("Test", [commands("T%d" % i, ["true"], inputs=["Src"]) for i in range(10)]),
        ])
        for round_ in range(8):
            if round_ == 0:
                self.server.ok("CreatePipeline", {"pipeline": p})
            else:
                self.server.ok("StartPipelineExecution", {"name": "Busy"})
            # Let the execution get going, then stop the server in the thick of it.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                runs = self.server.ok("ListActionExecutions",
                                      {"pipelineName": "Busy"})["actionExecutionDetails"]
                if any(r["stageName"] == "Build" for r in runs):
                    break
            self.server.proc.send_signal(signal.SIGTERM)
            code = self.server.proc.wait(timeout=30)
            self.assertEqual(code, 0, "round %d: exit %s" % (round_, code))
            self.server.stop()
            self.server.start()
            # Nothing stays InProgress after the restart without a process behind it.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                ex = self.server.ok("ListPipelineExecutions",
                                    {"pipelineName": "Busy"})["pipelineExecutionSummaries"]
                if all(e["status"] != "InProgress" for e in ex):
                    break
                time.sleep(0.05)
            self.assertTrue(all(e["status"] != "InProgress" for e in ex), ex)


class SnapshotShutdownTest(ServerTestCase):
    # Room for the file below (the default unpacked limit is 4 GiB).
    server_args = ("--max-unpacked-bytes", str(128 << 30))

    def test_sigterm_stops_a_long_snapshot(self):
        # Before: SIGTERM waited for a Source/Directory snapshot to hash and zip
        # its whole tree (minutes for a large one) while the port was already
        # closed. 64 GiB of zeros (sparse: no blocks) take any machine minutes
        # to hash and compress, so the bound below is far from both outcomes
        # (3.5 GiB took the old binary 22 s here).
        src = os.path.join(self.tmp, "big")
        os.makedirs(src)
        with open(os.path.join(src, "zeros.bin"), "wb") as f:
            f.truncate(64 << 30)
        self.server.ok("CreatePipeline", {"pipeline": pipeline("Big", [
            ("Source", [action("S", "Source", "Directory", config={"Path": src},
                               outputs=["Src"])]),
            ("Build", [commands("B", ["true"], inputs=["Src"])])])})

        def snapshotting():
            runs = self.server.ok("ListActionExecutions",
                                  {"pipelineName": "Big"})["actionExecutionDetails"]
            return any(r["actionName"] == "S" and r["status"] == "InProgress" for r in runs)
        wait_for(snapshotting, timeout=30, what="the snapshot to start")
        started = time.monotonic()
        self.server.proc.send_signal(signal.SIGTERM)
        code = self.server.proc.wait(timeout=60)
        took = time.monotonic() - started
        self.assertEqual(code, 0)
        self.assertLess(took, 30, "the server took %.1f s to stop" % took)
        # The cut-off snapshot is a failed, retryable source after the restart.
        self.server.stop()
        self.server.start()
        ex = wait_for(lambda: [e for e in self.server.ok("ListPipelineExecutions", {
            "pipelineName": "Big"})["pipelineExecutionSummaries"] if e["status"] != "InProgress"],
                      timeout=30, what="the execution to end")
        self.assertEqual(ex[0]["status"], "Failed")


class OneServerPerDataDirTest(ServerTestCase):
    def test_a_second_server_on_the_data_directory_is_refused_and_harms_nothing(self):
        # Before: the second server started, "recovered" the first one's running
        # action (killed its process, failed its run) and both wrote one file.
        gate = os.path.join(self.tmp, "gate")
        started = os.path.join(self.tmp, "started")
        self.server.ok("CreatePipeline", {"pipeline": pipeline("Held", [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.tmp},
                               outputs=["Src"])]),
            ("Build", [commands("Wait", ["touch %s" % started,
                                         "while [ ! -e %s ]; do sleep 0.05; done" % gate])])])})
        eid = self.server.ok("ListPipelineExecutions", {"pipelineName": "Held"})[
            "pipelineExecutionSummaries"][0]["pipelineExecutionId"]
        wait_for(lambda: os.path.exists(started), timeout=30, what="the action to start")
        p = subprocess.run([PIPEWRIGHT, "serve", "--listen", "127.0.0.1:0", "--sandbox", "none",
                            "--data-dir", self.server.data_dir], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertNotIn("listening on", p.stdout)
        self.assertIn("another server is using the data directory %s (pid %d)"
                      % (self.server.data_dir, self.server.proc.pid), p.stderr)
        # The first server's action is untouched and finishes.
        run = self.server.ok("ListActionExecutions", {"pipelineName": "Held", "filter": {
            "pipelineExecutionId": eid}})["actionExecutionDetails"]
        self.assertEqual({r["actionName"]: r["status"] for r in run}["Wait"], "InProgress")
        with open(gate, "w"):
            pass
        self.assertEqual(wait_execution(self.server, "Held", eid), "Succeeded")
        # Once the first server has exited, the directory is free again.
        self.server.restart()
        self.assertEqual(self.server.ok("GetPipelineExecution", {
            "pipelineName": "Held", "pipelineExecutionId": eid})["pipelineExecution"]["status"],
            "Succeeded")


class CommandsConfigurationTest(ServerTestCase):
    """A configuration the runner could not use is refused at create time,
    naming the field, instead of leaving a run InProgress for ever (a number
    in EnvironmentVariables threw after the run was committed)."""

    def create(self, config):
        build = commands("B", ["true"], inputs=["Src"])
        build["configuration"].update(config)
        p = pipeline("Cfg", [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.tmp},
                               outputs=["Src"])]),
            ("Build", [build]),
        ])
        return self.server.call("CreatePipeline", {"pipeline": p})

    def test_bad_values_are_refused_naming_the_field(self):
        for config, field in [
                ({"EnvironmentVariables": '[{"name": "A", "value": 1}]'}, "EnvironmentVariables[0]"),
                ({"EnvironmentVariables": '{"A": "1"}'}, "EnvironmentVariables"),
                ({"TimeoutInMinutes": "5abc"}, "TimeoutInMinutes"),
                ({"TimeoutInMinutes": "0"}, "TimeoutInMinutes")]:
            status, err = self.create(config)
            self.assertEqual(status, 400, (config, err))
            self.assertEqual(err["__type"], "InvalidActionDeclarationException")
            self.assertIn(field, err["message"])

    def test_good_values_run(self):
        status, err = self.create({"EnvironmentVariables": '[{"name": "A", "value": "1"}]',
                                   "TimeoutInMinutes": "5"})
        self.assertEqual(status, 200, err)


if __name__ == "__main__":
    unittest.main()
