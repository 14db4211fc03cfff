"""SIGTERM ends the server cleanly (exit 0) even while actions are finishing
and their completions are queued, and a restart carries on: the runs that were
cut off are Failed and retryable, as after kill -9."""

import os
import signal
import time
import unittest

from harness import Server, ServerTestCase, action, commands, pipeline


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
