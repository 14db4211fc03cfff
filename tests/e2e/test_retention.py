"""History retention (issue 15): serve --retain-executions deletes old ended
executions in small batches with their action runs, logs and the artifacts
nothing else refers to; a retryable execution and its inputs stay."""

import json
import os
import unittest

from harness import ServerTestCase, action, commands, pipeline, wait_execution, wait_for


def artifact_path(server, key):
    # Keys are "artifacts/<sha256>.zip", the server's own artifact store.
    return os.path.join(server.data_dir, key)


class RetentionTest(ServerTestCase):
    server_args = ("--retain-executions", "3", "--retain-batch", "2",
                   "--retain-artifact-grace", "0")

    def list_ids(self):
        out = self.server.ok("ListPipelineExecutions", {"pipelineName": "keep"})
        return [e["pipelineExecutionId"] for e in out["pipelineExecutionSummaries"]]

    def runs(self, execution_id):
        out = self.server.ok("ListActionExecutions", {
            "pipelineName": "keep", "filter": {"pipelineExecutionId": execution_id}})
        return out["actionExecutionDetails"]

    def test_old_executions_go_in_batches_and_the_retryable_one_keeps_its_artifacts(self):
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        flag = os.path.join(self.tmp, "flag")
        self.server.ok("CreatePipeline", {"pipeline": pipeline("keep", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": src},
                               outputs=["Out"])]),
            ("Build", [commands("Build", ["test -e " + flag], inputs=["Out"])]),
        ])})
        ids = []
        for i in range(7):  # Each with its own source content; each fails in Build.
            with open(os.path.join(src, "input.txt"), "w") as f:
                f.write("revision %d\n" % i)
            if i == 0:
                ids.append(wait_for(lambda: self.list_ids(), what="the first execution")[0])
            else:
                ids.append(self.server.ok("StartPipelineExecution",
                                          {"name": "keep"})["pipelineExecutionId"])
            self.assertEqual(wait_execution(self.server, "keep", ids[-1]), "Failed")
            if i == 0:
                # Read now: on a slow machine retention may remove it before the 7th ends.
                oldest = self.runs(ids[0])
                old_artifacts = [artifact_path(self.server, a["s3location"]["key"])
                                 for r in oldest for a in r["input"]["inputArtifacts"]
                                 + r["output"]["outputArtifacts"]]
                old_logs = [os.path.join(self.server.data_dir, "logs",
                                         r["actionExecutionId"] + ".log")
                            for r in oldest if r["actionName"] == "Build"]
                self.assertTrue(old_artifacts and all(os.path.exists(p) for p in old_artifacts))
                self.assertTrue(old_logs and all(os.path.exists(p) for p in old_logs))

        wait_for(lambda: len(self.list_ids()) == 3, timeout=30,
                 what="retention down to 3 executions")
        self.assertEqual(self.list_ids(), ids[-1:-4:-1])

        # In batches of at most two (--retain-batch), whenever the ticks came: the server
        # logs each batch (the log is written in batches too: poll).
        def batches():
            with open(os.path.join(self.server.data_dir, "server.log"), errors="replace") as f:
                sizes = [json.loads(line)["executions"] for line in f
                         if '"retention removed' in line and 'execution(s) of' in line]
            return sizes if sum(sizes) == 4 else None
        sizes = wait_for(batches, timeout=10, what="the retention log lines")
        self.assertTrue(all(1 <= n <= 2 for n in sizes), sizes)
        status, out = self.server.call("GetPipelineExecution", {
            "pipelineName": "keep", "pipelineExecutionId": ids[0]})
        self.assertEqual(out.get("__type"), "PipelineExecutionNotFoundException", out)

        # Their logs and artifacts go; what the remaining ones refer to stays.
        wait_for(lambda: not any(os.path.exists(p) for p in old_artifacts + old_logs),
                 timeout=30, what="old logs and artifacts to be removed")
        for execution_id in ids[-3:]:
            for r in self.runs(execution_id):
                for a in r["input"]["inputArtifacts"] + r["output"]["outputArtifacts"]:
                    self.assertTrue(os.path.exists(artifact_path(self.server,
                                                                 a["s3location"]["key"])), a)

        # The latest failed execution is retryable and its input is still there.
        open(flag, "w").close()
        self.server.ok("RetryStageExecution", {"pipelineName": "keep", "stageName": "Build",
                                               "pipelineExecutionId": ids[-1],
                                               "retryMode": "FAILED_ACTIONS"})
        self.assertEqual(wait_execution(self.server, "keep", ids[-1]), "Succeeded")


if __name__ == "__main__":
    unittest.main()
