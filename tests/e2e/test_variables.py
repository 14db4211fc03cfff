"""Variables: action output variables in a namespace, pipeline-level variables
(V2) with per-execution values, and a reference that cannot be resolved."""

import os
import unittest

import harness
from harness import action, commands, pipeline, stage_state, wait_execution, wait_for


class Variables(harness.ServerTestCase):
    server_args = ("--no-start-on-create",)

    def test_namespaces_are_unique_and_not_reserved(self):
        # Before: all three were accepted; an action in namespace `codepipeline`
        # (a job worker's, say) then set #{codepipeline.PipelineExecutionId}.
        def declared(namespaces):
            src = action("S", "Source", "Directory", config={"Path": self.tmp}, outputs=["Src"])
            build = commands("Build", ["true"])
            test = commands("Test", ["true"])
            for a, ns in zip((src, build, test), namespaces):
                if ns:
                    a["namespace"] = ns
            return pipeline("NS", [("Source", [src]), ("Build", [build, test])])
        for namespaces, expect in (((None, "codepipeline"), "reserved"),
                                   ((None, "variables"), "reserved"),
                                   (("SV", None, "SV"), "unique"),
                                   ((None, "Src"), "artifact")):
            status, err = self.server.call("CreatePipeline", {"pipeline": declared(namespaces)})
            self.assertEqual((status, err.get("__type")),
                             (400, "InvalidActionDeclarationException"), (namespaces, err))
            self.assertIn(expect, err["message"])
        self.server.ok("CreatePipeline", {"pipeline": declared(("SV", "BV", "TV"))})
        status, err = self.server.call("UpdatePipeline", {"pipeline": declared(("SV", "SV"))})
        self.assertEqual((status, err.get("__type")), (400, "InvalidActionDeclarationException"))

    def test_output_variables_flow_to_later_actions(self):
        build = commands("Build", ["TAG=v$(cat version)", "COMMIT=abc123"])
        build["namespace"] = "BuildVariables"
        build["outputVariables"] = ["TAG", "COMMIT"]
        build["inputArtifacts"] = [{"name": "Src"}]
        report = commands("Report", ["echo \"$RELEASE\" > %s/release.txt" % self.tmp], run_order=2)
        report["configuration"]["EnvironmentVariables"] = (
            '[{"name": "RELEASE", "value": "#{BuildVariables.TAG}-#{BuildVariables.COMMIT} '
            'for #{variables.env} in #{codepipeline.PipelineExecutionId}"}]')
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        with open(os.path.join(src, "version"), "w") as f:
            f.write("42")
        p = pipeline("Vars", [
            ("Source", [action("S", "Source", "Directory", config={"Path": src}, outputs=["Src"])]),
            ("Release", [build, report])],
            pipelineType="V2",
            variables=[{"name": "env", "defaultValue": "staging"}, {"name": "owner"}])
        self.server.ok("CreatePipeline", {"pipeline": p})

        # A variable with no default must be given.
        status, err = self.server.call("StartPipelineExecution", {"name": "Vars"})
        self.assertEqual((status, err["__type"]), (400, "ValidationException"))
        self.assertIn("owner", err["message"])

        eid = self.server.ok("StartPipelineExecution", {
            "name": "Vars", "variables": [{"name": "owner", "value": "team-a"},
                                          {"name": "env", "value": "prod"}]})["pipelineExecutionId"]
        self.assertEqual(wait_execution(self.server, "Vars", eid), "Succeeded")
        with open(os.path.join(self.tmp, "release.txt")) as f:
            self.assertEqual(f.read(), "v42-abc123 for prod in %s\n" % eid)
        pe = self.server.ok("GetPipelineExecution", {"pipelineName": "Vars",
                                                     "pipelineExecutionId": eid})["pipelineExecution"]
        self.assertEqual(sorted((v["name"], v["resolvedValue"]) for v in pe["variables"]),
                         [("env", "prod"), ("owner", "team-a")])
        details = self.server.ok("ListActionExecutions", {
            "pipelineName": "Vars", "filter": {"pipelineExecutionId": eid}})["actionExecutionDetails"]
        by_name = {d["actionName"]: d for d in details}
        self.assertEqual(by_name["Build"]["output"]["outputVariables"],
                         {"TAG": "v42", "COMMIT": "abc123"})
        resolved = by_name["Report"]["input"]["resolvedConfiguration"]["EnvironmentVariables"]
        self.assertIn("v42-abc123 for prod", resolved)
        self.assertIn("#{BuildVariables.TAG}",
                      by_name["Report"]["input"]["configuration"]["EnvironmentVariables"])

    def test_unresolvable_reference_fails_the_action_with_a_clear_error(self):
        use = commands("Use", ["true"])
        use["configuration"]["EnvironmentVariables"] = '[{"name": "X", "value": "#{Nope.Missing}"}]'
        self.server.ok("CreatePipeline", {"pipeline": pipeline("Bad", [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.tmp},
                               outputs=["Src"])]),
            ("Go", [use])])})
        eid = self.server.ok("StartPipelineExecution", {"name": "Bad"})["pipelineExecutionId"]
        self.assertEqual(wait_execution(self.server, "Bad", eid), "Failed")
        latest = stage_state(self.server, "Bad", "Go")["actionStates"][0]["latestExecution"]
        self.assertEqual(latest["errorDetails"]["code"], "ConfigurationError")
        self.assertIn("#{Nope.Missing}", latest["errorDetails"]["message"])

    def test_output_variable_names_are_checked(self):
        bad = commands("B", ["true"])
        bad["outputVariables"] = ["NOT-A-NAME"]
        status, err = self.server.call("CreatePipeline", {"pipeline": pipeline("Names", [
            ("Source", [action("S", "Source", "Directory", config={"Path": self.tmp},
                               outputs=["Src"])]),
            ("Go", [bad])])})
        self.assertEqual((status, err["__type"]), (400, "InvalidActionDeclarationException"))


if __name__ == "__main__":
    unittest.main()
