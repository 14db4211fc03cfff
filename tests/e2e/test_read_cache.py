"""Cached reads (issue 15): GetPipeline, GetPipelineState, the first page
of ListPipelineExecutions, GetPipelineExecution and ListActionExecutions come
from a cache of serialised answers; a read after each mutation (start,
update, transition, retry, delete) sees it."""

import os
import re
import threading
import unittest
import urllib.request

from harness import ServerTestCase, action, commands, pipeline, wait_execution, wait_for


class ReadCacheTest(ServerTestCase):
    def reads(self):
        """The three cached reads, twice each (the second from the cache)."""
        out = []
        for _ in range(2):
            out.append((self.server.ok("GetPipeline", {"name": "rc"}),
                        self.server.ok("GetPipelineState", {"name": "rc"}),
                        self.server.ok("ListPipelineExecutions", {"pipelineName": "rc"})))
        self.assertEqual(out[0], out[1], "a cached answer is the computed one")
        return out[1]

    def execution(self, eid):
        """GetPipelineExecution of `eid`, twice (the second from the cache)."""
        body = {"pipelineName": "rc", "pipelineExecutionId": eid}
        out = [self.server.ok("GetPipelineExecution", body) for _ in range(2)]
        self.assertEqual(out[0], out[1], "a cached answer is the computed one")
        return out[1]["pipelineExecution"]

    def action_runs(self, eid):
        """ListActionExecutions of `eid` as (action, status), oldest first, read twice."""
        body = {"pipelineName": "rc", "filter": {"pipelineExecutionId": eid}}
        out = [self.server.ok("ListActionExecutions", body) for _ in range(2)]
        self.assertEqual(out[0], out[1], "a cached answer is the computed one")
        return [(d["actionName"], d["status"])
                for d in reversed(out[1]["actionExecutionDetails"])]

    def test_every_mutation_is_seen_by_the_next_read(self):
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        with open(os.path.join(src, "f"), "w") as f:
            f.write("x\n")
        flag = os.path.join(self.tmp, "flag")
        decl = pipeline("rc", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": src},
                               outputs=["Out"])]),
            ("Build", [commands("Build", ["test -e " + flag], inputs=["Out"])])])
        self.server.ok("CreatePipeline", {"pipeline": decl})
        first = wait_for(lambda: self.server.ok("ListPipelineExecutions", {"pipelineName": "rc"})[
            "pipelineExecutionSummaries"], what="the first execution")[0]["pipelineExecutionId"]
        self.assertEqual(wait_execution(self.server, "rc", first), "Failed")
        got, state, listed = self.reads()
        self.assertEqual(got["pipeline"]["version"], 1)  # Same input as GetPipelineState.
        self.assertEqual(state["pipelineVersion"], 1)
        self.assertEqual([e["status"] for e in listed["pipelineExecutionSummaries"]], ["Failed"])
        self.assertEqual(self.execution(first)["status"], "Failed")
        self.assertEqual(self.action_runs(first), [("Src", "Succeeded"), ("Build", "Failed")])

        # A retry.
        open(flag, "w").close()
        self.server.ok("RetryStageExecution", {"pipelineName": "rc", "stageName": "Build",
                                               "pipelineExecutionId": first,
                                               "retryMode": "FAILED_ACTIONS"})
        self.assertEqual(wait_execution(self.server, "rc", first), "Succeeded")
        got, state, listed = self.reads()
        self.assertEqual(listed["pipelineExecutionSummaries"][0]["status"], "Succeeded")
        self.assertEqual(self.execution(first)["status"], "Succeeded")
        self.assertEqual(self.action_runs(first), [("Src", "Succeeded"), ("Build", "Failed"),
                                                   ("Build", "Succeeded")])
        build = [s for s in state["stageStates"] if s["stageName"] == "Build"][0]
        self.assertEqual(build["latestExecution"]["status"], "Succeeded")

        # A transition.
        self.server.ok("DisableStageTransition", {"pipelineName": "rc", "stageName": "Build",
                                                  "transitionType": "Inbound",
                                                  "reason": "freeze"})
        got, state, listed = self.reads()
        build = [s for s in state["stageStates"] if s["stageName"] == "Build"][0]
        self.assertFalse(build["inboundTransitionState"]["enabled"])

        # A start. Its Source action runs on meanwhile, and the two reads of reads() must see
        # the same state: read once it waits at Build's disabled transition (scripts/
        # fresh-bookworm saw the Source action end between them).
        second = self.server.ok("StartPipelineExecution", {"name": "rc"})["pipelineExecutionId"]

        def source_done():
            st = self.server.ok("GetPipelineState", {"name": "rc"})
            src = [s for s in st["stageStates"] if s["stageName"] == "Source"][0]
            latest = src.get("latestExecution", {})
            return (latest.get("pipelineExecutionId") == second
                    and latest.get("status") == "Succeeded")
        wait_for(source_done, what="the second execution's Source stage")
        got, state, listed = self.reads()
        self.assertEqual(listed["pipelineExecutionSummaries"][0]["pipelineExecutionId"], second)
        self.assertEqual(self.execution(second)["pipelineExecutionId"], second)

        # An update.
        decl["stages"][1]["actions"][0]["configuration"]["Commands"] = "true"
        self.server.ok("UpdatePipeline", {"pipeline": decl})
        got, state, listed = self.reads()
        self.assertEqual(got["pipeline"]["version"], 2)
        self.assertEqual(state["pipelineVersion"], 2)
        # The second execution ends on version 1 (stopped by the update or run to its end).
        wait_execution(self.server, "rc", second)
        ended = self.execution(second)
        self.assertIn(ended["status"], ("Failed", "Stopped", "Succeeded", "Superseded"))
        self.assertEqual(ended["pipelineVersion"], 1)

        # A delete.
        self.server.ok("DeletePipeline", {"name": "rc"})
        for op, body in (("GetPipeline", {"name": "rc"}), ("GetPipelineState", {"name": "rc"}),
                         ("ListPipelineExecutions", {"pipelineName": "rc"}),
                         ("GetPipelineExecution", {"pipelineName": "rc",
                                                   "pipelineExecutionId": first}),
                         ("ListActionExecutions", {"pipelineName": "rc"})):
            status, out = self.server.call(op, body)
            self.assertEqual(out.get("__type"), "PipelineNotFoundException", (op, out))


    def test_a_write_is_seen_by_the_next_read_while_other_clients_read_the_same_page(self):
        """Readers that miss together share one computation of the answer (SingleFlight), and
        none may get an answer older than a write that finished before its read began. Six
        clients read without pause while this one starts executions and reads right after each
        start and right after each has ended. (Which computation a read joins is a matter of
        microseconds here; single_flight_test.cc proves the version rule deterministically.)"""
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        with open(os.path.join(src, "f"), "w") as f:
            f.write("x\n")
        self.server.ok("CreatePipeline", {"pipeline": pipeline("busy", [
            ("Source", [action("Src", "Source", "Directory", config={"Path": src},
                               outputs=["Out"])]),
            ("Build", [commands("Build", ["true"], inputs=["Out"])])])})
        first = wait_for(lambda: self.server.ok("ListPipelineExecutions", {
            "pipelineName": "busy"})["pipelineExecutionSummaries"], what="the first execution")
        wait_execution(self.server, "busy", first[0]["pipelineExecutionId"])
        stop = threading.Event()
        errors = []
        last = [first[0]["pipelineExecutionId"]]  # The execution the readers poll.

        def read_on():
            try:
                while not stop.is_set():
                    self.server.ok("ListPipelineExecutions", {"pipelineName": "busy"})
                    self.server.ok("GetPipelineState", {"name": "busy"})
                    if last:
                        self.server.ok("GetPipelineExecution", {"pipelineName": "busy",
                                                                "pipelineExecutionId": last[-1]})
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)
        readers = [threading.Thread(target=read_on) for _ in range(6)]
        for t in readers:
            t.start()
        try:
            for _ in range(40):
                eid = self.server.ok("StartPipelineExecution", {"name": "busy"})[
                    "pipelineExecutionId"]
                listed = self.server.ok("ListPipelineExecutions", {"pipelineName": "busy"})
                self.assertIn(eid, [e["pipelineExecutionId"]
                                    for e in listed["pipelineExecutionSummaries"]])
                last.append(eid)
                self.assertEqual(wait_execution(self.server, "busy", eid), "Succeeded")
                listed = self.server.ok("ListPipelineExecutions", {"pipelineName": "busy"})
                mine = [e for e in listed["pipelineExecutionSummaries"]
                        if e["pipelineExecutionId"] == eid]
                self.assertEqual([e["status"] for e in mine], ["Succeeded"])
                got = self.server.ok("GetPipelineExecution", {"pipelineName": "busy",
                                                              "pipelineExecutionId": eid})
                self.assertEqual(got["pipelineExecution"]["status"], "Succeeded")
            state = self.server.ok("GetPipelineState", {"name": "busy"})
            build = [st for st in state["stageStates"] if st["stageName"] == "Build"][0]
            self.assertEqual(build["latestExecution"]["pipelineExecutionId"], eid)
            self.assertEqual(build["latestExecution"]["status"], "Succeeded")
        finally:
            stop.set()
            for t in readers:
                t.join()
        self.assertEqual(errors, [])
        with urllib.request.urlopen(self.server.endpoint + "/metrics", timeout=10) as r:
            text = r.read().decode()
        counted = {m.group(1): float(m.group(2)) for m in re.finditer(
            r'^pipewright_cached_reads_total\{operation="ListPipelineExecutions",'
            r'result="(\w+)"\} (\S+)$', text, re.M)}
        self.assertGreater(counted.get("miss", 0), 40, counted)  # Each change computed again.
        print("ListPipelineExecutions answers: %s" % counted)


if __name__ == "__main__":
    unittest.main()
