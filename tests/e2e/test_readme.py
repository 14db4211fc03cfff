"""The README's walk-through ("Using it"), run as written: the ```sh blocks
between <!-- walkthrough:start --> and <!-- walkthrough:end -->, with only
what must differ on a test machine replaced - the port (the server listens on
a free one), the walk-through's directory (a fresh one under /var/tmp, which a
sandboxed action sees) and build/pipewright (the binary under test). The
first block starts the server; the others run in one bash, in order, in a
directory holding the repository's examples/. Every command must succeed
except those the README marks `# exits 1`, which must exit 1.
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import PIPEWRIGHT, ROOT

WALK_DIR = "/var/tmp/pipewright-walkthrough"


def walkthrough_blocks():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    start = text.index("<!-- walkthrough:start -->")
    end = text.index("<!-- walkthrough:end -->")
    return re.findall(r"```sh\n(.*?)```", text[start:end], re.S)


class ReadmeWalkthroughTest(unittest.TestCase):

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="pw-readme-", dir="/var/tmp")
        self.cwd = os.path.join(self.work, "repo")
        self.walk = os.path.join(self.work, "walkthrough")
        os.makedirs(os.path.join(self.cwd, "examples"))
        os.makedirs(os.path.join(self.cwd, "build"))
        os.symlink(PIPEWRIGHT, os.path.join(self.cwd, "build", "pipewright"))
        for name in os.listdir(os.path.join(ROOT, "examples")):
            if not os.path.isfile(os.path.join(ROOT, "examples", name)):
                continue  # examples/codebuild/ is a source tree (test_codebuild.py)
            with open(os.path.join(ROOT, "examples", name)) as f:
                content = f.read().replace(WALK_DIR, self.walk)
            with open(os.path.join(self.cwd, "examples", name), "w") as f:
                f.write(content)
        self.server = None

    def tearDown(self):
        if self.server and self.server.poll() is None:
            self.server.terminate()
            self.server.wait(timeout=30)
        if self.server:
            self.server.stdout.close()
        shutil.rmtree(self.work, ignore_errors=True)

    def test_walkthrough_as_written(self):
        blocks = walkthrough_blocks()
        self.assertGreaterEqual(len(blocks), 4, "the README's walk-through blocks")
        serve = blocks[0].strip()
        self.assertRegex(serve, r"^build/pipewright serve .*&")
        # The server block, on a free port instead of 8480.
        command = serve.split("&")[0].strip() + " --listen 127.0.0.1:0"
        self.server = subprocess.Popen(["bash", "-c", "exec " + command], cwd=self.cwd,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.server.stdout.readline().decode().strip()
        self.assertTrue(line.startswith("listening on "), line)
        endpoint = line[len("listening on "):]

        script = ["trap 'echo \"README-EXIT $? at line $LINENO: $BASH_COMMAND\"' ERR"]
        expected_failures = []
        for block in blocks[1:]:
            block = block.replace("http://127.0.0.1:8480", endpoint).replace(WALK_DIR, self.walk)
            for raw in block.replace("\\\n", " ").splitlines():
                if "# exits 1" in raw:
                    expected_failures.append(raw.split("#")[0].strip())
                script.append(raw)
        env = dict(os.environ)
        env["PIPEWRIGHT_ENDPOINT"] = endpoint
        # `aws` is Debian's awscli, as the README says to install.
        env["PATH"] = "/usr/bin:" + env.get("PATH", "")
        for key in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            env[key] = "/dev/null"
        run = subprocess.run(["bash", "-c", "\n".join(script)], cwd=self.cwd, env=env,
                             capture_output=True, text=True, timeout=240)
        out = run.stdout + run.stderr
        failures = re.findall(r"README-EXIT (\d+) at line \d+: (.*)", out)
        self.assertEqual([code for code, _ in failures], ["1"] * len(expected_failures), out)
        self.assertEqual(len(failures), len(expected_failures), out)
        for (_, cmd), marked in zip(failures, expected_failures):
            self.assertIn("status MyFirstPipeline --wait", cmd, out)
            self.assertIn("status MyFirstPipeline --wait", marked)

        # The story the README tells, as the commands printed it.
        self.assertIn('"MyFirstPipeline"', run.stdout)  # create-pipeline --query pipeline.name
        self.assertRegex(run.stdout, r"Staging/Check +Failed")
        self.assertIn("pipewright retry-stage-execution --pipeline-name MyFirstPipeline "
                      "--stage-name Staging --pipeline-execution-id", out)
        self.assertIn("hello from MyFirstPipeline", run.stdout)  # logs of Check: grep's output
        self.assertRegex(run.stderr, r"> 2  test -f \S+release-note.txt +<- exited with code 1")
        self.assertIn('"retryable": true', run.stdout)  # --dry-run
        self.assertRegex(run.stdout, r"Staging/Check \(attempt 2\) +Succeeded")
        self.assertRegex(run.stdout, r"Execution +Succeeded")
        # The AWS CLI's table of both executions, each Succeeded after its retry.
        self.assertRegex(run.stdout, r"ListPipelineExecutions")
        self.assertEqual(len(re.findall(r"\|\s+Succeeded\s+\|", run.stdout)), 2, run.stdout)


if __name__ == "__main__":
    unittest.main()
