"""Foundation end-to-end tests: pipeline CRUD, versions, listing and paging, tags,
modeled errors (for Debian's /usr/bin/aws 2.9 and our own CLI), the raw awsJson1_1 wire
protocol, persistence across restarts and kill -9, newer-model inputs, and SigV4.

References: shared/docs/api.md §1-§3, shared/docs/semantics.md section A.

Run: cd tests/e2e && /usr/bin/python3 -m unittest -v test_foundation
"""

import concurrent.futures
import copy
import datetime
import hashlib
import hmac
import json
import os
import re
import shutil
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from harness import ServerTestCase, action, aws, commands, pipeline, pw

TARGET = "CodePipeline_20150709."
JSON_CT = "application/x-amz-json-1.1"
ACCOUNT_ARN_PREFIX = "arn:aws:codepipeline:us-east-1:123456789012:"
ARN_RE = re.compile(r"^arn:aws(-[\w]+)*:codepipeline:.+:[0-9]{12}:.+$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MIB = 1024 * 1024


def simple(name, cmd="true", **extra):
    """A valid two-stage pipeline: Directory source -> Commands build."""
    return pipeline(name, [
        ("Source", [action("Src", "Source", "Directory", config={"Path": "/nonexistent/pw-src"},
                           outputs=["SourceOut"])]),
        ("Build", [commands("Build", [cmd], inputs=["SourceOut"])]),
    ], **extra)


def arn_of(name):
    return ACCOUNT_ARN_PREFIX + name


def parallel(calls):
    """Runs zero-argument callables concurrently (CLI start-up dominates); keeps order."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
        return list(ex.map(lambda f: f(), calls))


def raw_http(server, data, headers, method="POST", path="/"):
    """A request with urllib, returning (status, headers as a case-insensitive Message, body)."""
    req = urllib.request.Request(server.endpoint + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def iso_to_epoch(text):
    return datetime.datetime.fromisoformat(text).timestamp()


class FoundationCase(ServerTestCase):
    server_args = ("--no-start-on-create",)

    def assert_cli_error(self, r, code, op, exit_code=254):
        detail = "exit %s\nstdout: %s\nstderr: %s" % (r.code, r.stdout, r.stderr)
        self.assertEqual(r.code, exit_code, detail)
        prefix = "An error occurred (%s) when calling the %s operation: " % (code, op)
        err = r.stderr.strip()
        self.assertTrue(err.startswith(prefix), "expected stderr to start with %r\n%s" % (prefix, detail))
        self.assertTrue(err[len(prefix):].strip(), "empty error message\n" + detail)

    def assert_ok(self, r):
        self.assertEqual(r.code, 0, "exit %s\nstdout: %s\nstderr: %s" % (r.code, r.stdout, r.stderr))
        return r.json()

    def assert_api_error(self, result, code, status=400):
        st, body = result
        self.assertEqual((st, isinstance(body, dict) and body.get("__type")), (status, code), body)
        self.assertIsInstance(body.get("message"), str, body)
        self.assertTrue(body["message"], body)
        return body["message"]

    def assert_alive(self):
        self.assertIsNone(self.server.proc.poll(), "server process exited")
        st, _ = self.server.call("ListPipelines", {})
        self.assertEqual(st, 200)

    def create(self, decl, tags=None):
        body = {"pipeline": decl}
        if tags is not None:
            body["tags"] = tags
        return self.server.ok("CreatePipeline", body)


# ---------------------------------------------------------------------------------------------
class PipelineCrudTest(FoundationCase):

    def test_create_from_file_and_get_with_both_clis(self):
        decl = simple("crud-aws")
        self.write_json("p.json", decl)
        out = self.assert_ok(aws(self.server, "create-pipeline", "--pipeline", "file://p.json", cwd=self.tmp))
        self.assertEqual(out["pipeline"]["name"], "crud-aws")
        self.assertEqual(out["pipeline"]["version"], 1)
        self.assertEqual(out["pipeline"]["stages"], decl["stages"])

        got = self.assert_ok(aws(self.server, "get-pipeline", "--name", "crud-aws"))
        self.assertEqual(got["pipeline"]["version"], 1)
        self.assertEqual(got["pipeline"]["stages"], decl["stages"])
        self.assertEqual(got["pipeline"]["roleArn"], decl["roleArn"])
        self.assertEqual(got["pipeline"]["artifactStore"], decl["artifactStore"])
        meta = got["metadata"]
        self.assertRegex(meta["pipelineArn"], ARN_RE)
        self.assertTrue(meta["pipelineArn"].endswith(":crud-aws"), meta)
        # The old v2 CLI renders timestamps as ISO-8601 strings ...
        self.assertIsInstance(meta["created"], str)
        self.assertIsInstance(meta["updated"], str)
        self.assertRegex(meta["created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")

        # ... while the wire carries epoch-second numbers (api.md §1 "timestamps").
        raw = self.server.ok("GetPipeline", {"name": "crud-aws"})["metadata"]
        for k in ("created", "updated"):
            self.assertIsInstance(raw[k], (int, float), raw)
            self.assertNotIsInstance(raw[k], bool)
            self.assertLess(abs(raw[k] - time.time()), 600, "timestamp %s not near now" % raw[k])
            self.assertAlmostEqual(iso_to_epoch(meta[k]), raw[k], delta=0.002)
        self.assertEqual(raw["created"], raw["updated"])
        self.assertEqual(raw["pipelineArn"], meta["pipelineArn"])
        state = self.server.ok("GetPipelineState", {"name": "crud-aws"})
        self.assertEqual(state.get("pipelineVersion"), 1)

        # Our CLI, from a file as well.
        decl2 = simple("crud-pw")
        self.write_json("p2.json", decl2)
        out = self.assert_ok(pw(self.server, "create-pipeline", "--pipeline", "file://p2.json", cwd=self.tmp))
        self.assertEqual((out["pipeline"]["name"], out["pipeline"]["version"]), ("crud-pw", 1))
        got = self.assert_ok(pw(self.server, "get-pipeline", "--name", "crud-pw"))
        self.assertEqual(got["pipeline"]["version"], 1)
        self.assertEqual(got["pipeline"]["stages"], decl2["stages"])
        self.assertRegex(got["metadata"]["pipelineArn"], ARN_RE)
        self.assertIn("created", got["metadata"])

    def test_updates_bump_version_and_keep_history(self):
        v1 = simple("upd", cmd="echo one")
        self.write_json("v1.json", v1)
        self.assert_ok(aws(self.server, "create-pipeline", "--pipeline", "file://v1.json", cwd=self.tmp))
        before = self.server.ok("GetPipeline", {"name": "upd"})["metadata"]

        # Update 1 with the old CLI, round-tripping the get-pipeline output (version 1 in it).
        v2 = copy.deepcopy(v1)
        v2["stages"][1]["actions"][0]["configuration"]["Commands"] = "echo two"
        v2["version"] = 1
        self.write_json("v2.json", v2)
        out = self.assert_ok(aws(self.server, "update-pipeline", "--pipeline", "file://v2.json", cwd=self.tmp))
        self.assertEqual(out["pipeline"]["version"], 2, "update output must echo the new version")

        # Update 2 with our CLI.
        v3 = copy.deepcopy(v1)
        v3["stages"][1]["actions"][0]["configuration"]["Commands"] = "echo three"
        self.write_json("v3.json", v3)
        out = self.assert_ok(pw(self.server, "update-pipeline", "--pipeline", "file://v3.json", cwd=self.tmp))
        self.assertEqual(out["pipeline"]["version"], 3, "update output must echo the new version")

        cur = self.assert_ok(aws(self.server, "get-pipeline", "--name", "upd"))
        self.assertEqual(cur["pipeline"]["version"], 3)
        self.assertEqual(cur["pipeline"]["stages"][1]["actions"][0]["configuration"]["Commands"], "echo three")

        # History: the old CLI spells GetPipeline.version as --pipeline-version.
        h1 = self.assert_ok(aws(self.server, "get-pipeline", "--name", "upd", "--pipeline-version", "1"))
        self.assertEqual(h1["pipeline"]["version"], 1)
        self.assertEqual(h1["pipeline"]["stages"], v1["stages"])
        h2 = self.server.ok("GetPipeline", {"name": "upd", "version": 2})
        self.assertEqual(h2["pipeline"]["version"], 2)
        self.assertEqual(h2["pipeline"]["stages"][1]["actions"][0]["configuration"]["Commands"], "echo two")

        after = self.server.ok("GetPipeline", {"name": "upd"})["metadata"]
        self.assertEqual(after["created"], before["created"], "created must not change on update")
        self.assertGreater(after["updated"], before["updated"], "updated must change on update (rule A5)")
        self.assertEqual(after["pipelineArn"], before["pipelineArn"])
        summaries = {p["name"]: p for p in self.server.ok("ListPipelines", {})["pipelines"]}
        self.assertEqual(summaries["upd"]["version"], 3)
        self.assertEqual(self.server.ok("GetPipelineState", {"name": "upd"}).get("pipelineVersion"), 3)

    def test_our_cli_get_pipeline_accepts_pipeline_version(self):
        # aws renames GetPipeline's `version` to --pipeline-version (it clashes with the global
        # --version); a CLI that mirrors `aws codepipeline` must accept the same spelling.
        self.create(simple("hist", cmd="echo one"))
        self.server.ok("UpdatePipeline", {"pipeline": simple("hist", cmd="echo two")})
        r = pw(self.server, "get-pipeline", "--name", "hist", "--pipeline-version", "1")
        got = self.assert_ok(r)
        self.assertEqual(got["pipeline"]["version"], 1)
        self.assertEqual(got["pipeline"]["stages"][1]["actions"][0]["configuration"]["Commands"], "echo one")
        self.assert_cli_error(pw(self.server, "get-pipeline", "--name", "hist", "--pipeline-version", "9"),
                              "PipelineVersionNotFoundException", "GetPipeline")

    def test_version_sent_by_client_is_ignored(self):
        out = self.create(dict(simple("ign"), version=7))
        self.assertEqual(out["pipeline"]["version"], 1)
        self.assertEqual(self.server.ok("GetPipeline", {"name": "ign"})["pipeline"]["version"], 1)
        out = self.server.ok("UpdatePipeline", {"pipeline": dict(simple("ign"), version=99)})
        self.assertEqual(out["pipeline"]["version"], 2)
        self.assert_api_error(self.server.call("GetPipeline", {"name": "ign", "version": 99}),
                              "PipelineVersionNotFoundException")

    def test_list_pipelines_paging(self):
        names = ["page-%d" % i for i in range(5)]
        for n in names:
            self.create(simple(n))

        # Raw API: maxResults/nextToken pages cover every pipeline exactly once.
        seen, tokens, token = [], [], None
        for _ in range(10):
            body = {"maxResults": 2}
            if token:
                body["nextToken"] = token
            page = self.server.ok("ListPipelines", body)
            self.assertLessEqual(len(page["pipelines"]), 2)
            seen += [p["name"] for p in page["pipelines"]]
            token = page.get("nextToken")
            if not token:
                break
            self.assertNotIn(token, tokens, "tokens must differ page to page")
            tokens.append(token)
        else:
            self.fail("paging did not terminate: %s" % seen)
        self.assertEqual(sorted(seen), names)
        self.assertEqual(len(seen), len(set(seen)))
        for p in self.server.ok("ListPipelines", {})["pipelines"]:
            self.assertIsInstance(p["created"], (int, float))
            self.assertEqual(p["version"], 1)
        self.assert_api_error(self.server.call("ListPipelines", {"nextToken": "garbage-token"}),
                              "InvalidNextTokenException")
        self.assert_api_error(self.server.call("ListPipelines", {"maxResults": 1001}), "ValidationException")

        # Both CLIs: --max-items 2 returns NextToken; --starting-token continues.
        for cli in (aws, pw):
            with self.subTest(cli=cli.__name__):
                seen, token, pages = [], None, 0
                while True:
                    args = ["list-pipelines", "--max-items", "2"]
                    if token:
                        args += ["--starting-token", token]
                    out = self.assert_ok(cli(self.server, *args))
                    pages += 1
                    self.assertLessEqual(len(out["pipelines"]), 2)
                    seen += [p["name"] for p in out["pipelines"]]
                    token = out.get("NextToken")
                    if pages == 1:
                        self.assertTrue(token, "first --max-items 2 page must carry NextToken: %s" % out)
                    if not token or pages > 5:
                        break
                self.assertEqual(sorted(seen), names)
                self.assertEqual(pages, 3)
                # Auto-pagination with one result per request still yields everything once.
                out = self.assert_ok(cli(self.server, "list-pipelines", "--page-size", "1"))
                self.assertEqual(sorted(p["name"] for p in out["pipelines"]), names)
                self.assertNotIn("NextToken", out)

    def test_tags(self):
        self.write_json("p.json", simple("tagged"))
        self.assert_ok(aws(self.server, "create-pipeline", "--pipeline", "file://p.json",
                           "--tags", "key=team,value=core", cwd=self.tmp))
        arn = self.server.ok("GetPipeline", {"name": "tagged"})["metadata"]["pipelineArn"]

        self.assert_ok(aws(self.server, "tag-resource", "--resource-arn", arn,
                           "--tags", "key=env,value=dev", "key=team,value=platform"))
        out = self.assert_ok(pw(self.server, "list-tags-for-resource", "--resource-arn", arn))
        self.assertEqual({t["key"]: t["value"] for t in out["tags"]}, {"team": "platform", "env": "dev"})

        self.assert_ok(pw(self.server, "tag-resource", "--resource-arn", arn, "--tags", "key=cost,value="))
        self.assert_ok(pw(self.server, "untag-resource", "--resource-arn", arn, "--tag-keys", "team"))
        out = self.assert_ok(aws(self.server, "list-tags-for-resource", "--resource-arn", arn))
        self.assertEqual({t["key"]: t["value"] for t in out["tags"]}, {"env": "dev", "cost": ""})

        self.assert_ok(aws(self.server, "untag-resource", "--resource-arn", arn, "--tag-keys", "env", "cost"))
        self.assertEqual(self.server.ok("ListTagsForResource", {"resourceArn": arn}).get("tags", []), [])

        # Tags are not part of the structure: no version bump (rule A3).
        self.assertEqual(self.server.ok("GetPipeline", {"name": "tagged"})["pipeline"]["version"], 1)

        for cli in (aws, pw):
            with self.subTest(cli=cli.__name__):
                self.assert_cli_error(cli(self.server, "list-tags-for-resource", "--resource-arn", arn_of("nope")),
                                      "ResourceNotFoundException", "ListTagsForResource")
                self.assert_cli_error(cli(self.server, "tag-resource", "--resource-arn", arn_of("nope"),
                                          "--tags", "key=a,value=b"),
                                      "ResourceNotFoundException", "TagResource")
        self.assert_api_error(self.server.call("ListTagsForResource", {"resourceArn": "not-an-arn"}),
                              "ValidationException")

    def test_delete_pipeline(self):
        self.create(simple("gone"), tags=[{"key": "k", "value": "v"}])
        self.server.ok("UpdatePipeline", {"pipeline": simple("gone", cmd="echo 2")})
        self.create(simple("gone-too"))

        r = aws(self.server, "delete-pipeline", "--name", "gone")
        self.assertEqual((r.code, r.stdout.strip()), (0, ""), r.stderr)
        self.assert_ok(pw(self.server, "delete-pipeline", "--name", "gone-too"))
        for cli in (aws, pw):
            with self.subTest(cli=cli.__name__):
                self.assert_cli_error(cli(self.server, "get-pipeline", "--name", "gone"),
                                      "PipelineNotFoundException", "GetPipeline")
                self.assert_cli_error(cli(self.server, "get-pipeline", "--name", "gone-too"),
                                      "PipelineNotFoundException", "GetPipeline")
        self.assertEqual(self.server.ok("ListPipelines", {}).get("pipelines", []), [])
        self.assert_api_error(self.server.call("ListTagsForResource", {"resourceArn": arn_of("gone")}),
                              "ResourceNotFoundException")

        # A new pipeline with the same name starts from scratch: version 1, no history, no tags.
        out = self.create(simple("gone"))
        self.assertEqual(out["pipeline"]["version"], 1)
        self.assert_api_error(self.server.call("GetPipeline", {"name": "gone", "version": 2}),
                              "PipelineVersionNotFoundException")
        self.assertEqual(self.server.ok("ListTagsForResource", {"resourceArn": arn_of("gone")}).get("tags", []), [])


# ---------------------------------------------------------------------------------------------
class ErrorTest(FoundationCase):

    def test_modeled_errors_with_both_clis(self):
        self.create(simple("taken"))
        cases = []  # (label, json file content or None, args, code, op)

        def add(label, code, op, args, decl=None):
            cases.append((label, code, op, args, decl))

        def mutate(name, f):
            d = simple(name)
            f(d)
            return d

        add("name in use", "PipelineNameInUseException", "CreatePipeline",
            ["create-pipeline", "--pipeline", "file://in.json"], simple("taken"))
        add("get unknown", "PipelineNotFoundException", "GetPipeline", ["get-pipeline", "--name", "ghost"])
        add("update unknown", "PipelineNotFoundException", "UpdatePipeline",
            ["update-pipeline", "--pipeline", "file://in.json"], simple("ghost"))
        add("delete unknown", "PipelineNotFoundException", "DeletePipeline", ["delete-pipeline", "--name", "ghost"])
        add("name with space", "ValidationException", "CreatePipeline",
            ["create-pipeline", "--pipeline", "file://in.json"], simple("has space"))
        add("name of 101 chars", "ValidationException", "CreatePipeline",
            ["create-pipeline", "--pipeline", "file://in.json"], simple("n" * 101))
        add("get name with space", "ValidationException", "GetPipeline", ["get-pipeline", "--name", "a b"])
        add("runOrder 1000", "ValidationException", "CreatePipeline",
            ["create-pipeline", "--pipeline", "file://in.json"],
            mutate("ro", lambda d: d["stages"][1]["actions"][0].update(runOrder=1000)))
        add("one stage", "InvalidStructureException", "CreatePipeline",
            ["create-pipeline", "--pipeline", "file://in.json"],
            mutate("one", lambda d: d.update(stages=d["stages"][:1])))
        add("input nobody produces", "InvalidStructureException", "CreatePipeline",
            ["create-pipeline", "--pipeline", "file://in.json"],
            mutate("ghostin", lambda d: d["stages"][1]["actions"][0].update(inputArtifacts=[{"name": "Nobody"}])))
        add("duplicate stage names", "InvalidStageDeclarationException", "CreatePipeline",
            ["create-pipeline", "--pipeline", "file://in.json"],
            mutate("dupstage", lambda d: d["stages"][1].update(name="Source")))
        add("non-source action in first stage", "InvalidStageDeclarationException", "CreatePipeline",
            ["create-pipeline", "--pipeline", "file://in.json"],
            mutate("nonsrc", lambda d: d["stages"][0]["actions"].append(commands("Early", ["true"]))))
        add("unknown provider", "InvalidActionDeclarationException", "CreatePipeline",
            ["create-pipeline", "--pipeline", "file://in.json"],
            mutate("unk", lambda d: d["stages"][1]["actions"][0]["actionTypeId"].update(provider="NoSuchProvider")))
        add("invalid structure on update", "InvalidStructureException", "UpdatePipeline",
            ["update-pipeline", "--pipeline", "file://in.json"],
            mutate("taken", lambda d: d.update(stages=d["stages"][:1])))

        calls, labels = [], []
        for i, (label, code, op, args, decl) in enumerate(cases):
            cwd = os.path.join(self.tmp, "case%d" % i)
            os.makedirs(cwd)
            if decl is not None:
                with open(os.path.join(cwd, "in.json"), "w") as f:
                    json.dump(decl, f)
            for cli in (aws, pw):
                labels.append((label, cli.__name__, code, op))
                calls.append(lambda cli=cli, args=args, cwd=cwd: cli(self.server, *args, cwd=cwd))
        results = parallel(calls)
        for (label, cli_name, code, op), r in zip(labels, results):
            with self.subTest(case=label, cli=cli_name):
                self.assert_cli_error(r, code, op)

        # The old CLI reaches PipelineVersionNotFoundException through --pipeline-version.
        self.assert_cli_error(aws(self.server, "get-pipeline", "--name", "taken", "--pipeline-version", "7"),
                              "PipelineVersionNotFoundException", "GetPipeline")
        self.assert_api_error(self.server.call("GetPipeline", {"name": "taken", "version": 7}),
                              "PipelineVersionNotFoundException")
        # None of the rejected requests changed anything.
        got = self.server.ok("ListPipelines", {})["pipelines"]
        self.assertEqual([(p["name"], p["version"]) for p in got], [("taken", 1)])
        self.assert_alive()

    def test_run_order_zero_is_caught_client_side(self):
        decl = simple("ro0")
        decl["stages"][1]["actions"][0]["runOrder"] = 0
        self.write_json("p.json", decl)
        for cli in (aws, pw):
            with self.subTest(cli=cli.__name__):
                r = cli(self.server, "create-pipeline", "--pipeline", "file://p.json", cwd=self.tmp)
                self.assertEqual(r.code, 252, r.stderr)
                self.assertIn("Parameter validation failed", r.stderr)
                self.assertIn("runOrder", r.stderr)
        # The server enforces the same range itself.
        msg = self.assert_api_error(self.server.call("CreatePipeline", {"pipeline": decl}), "ValidationException")
        self.assertIn("runOrder", msg)
        self.assert_api_error(self.server.call("GetPipeline", {"name": "ro0"}), "PipelineNotFoundException")

    def test_enum_values_not_in_model(self):
        self.create(simple("enums"))
        d = simple("retrybogus", pipelineType="V2")
        d["stages"][1]["onFailure"] = {"result": "RETRY", "retryConfiguration": {"retryMode": "BOGUS"}}
        msg = self.assert_api_error(self.server.call("CreatePipeline", {"pipeline": d}), "ValidationException")
        self.assertIn("retryMode", msg)
        self.assertIn("BOGUS", msg)

        msg = self.assert_api_error(self.server.call("DisableStageTransition", {
            "pipelineName": "enums", "stageName": "Build", "transitionType": "BOGUS", "reason": "r"}),
            "ValidationException")
        self.assertIn("transitionType", msg)

        d = simple("catbogus")
        d["stages"][1]["actions"][0]["actionTypeId"]["category"] = "BOGUS"
        msg = self.assert_api_error(self.server.call("CreatePipeline", {"pipeline": d}), "ValidationException")
        self.assertIn("category", msg)

        d = simple("modebogus", executionMode="BOGUS")
        msg = self.assert_api_error(self.server.call("CreatePipeline", {"pipeline": d}), "ValidationException")
        self.assertIn("executionMode", msg)

        # The old CLI does not validate enums locally, so the server's answer reaches the user.
        r = aws(self.server, "disable-stage-transition", "--pipeline-name", "enums", "--stage-name", "Build",
                "--transition-type", "BOGUS", "--reason", "r")
        self.assert_cli_error(r, "ValidationException", "DisableStageTransition")
        self.assertIn("transitionType", r.stderr)
        state = self.server.ok("GetPipelineState", {"name": "enums"})
        for s in state["stageStates"]:
            self.assertTrue(s.get("inboundTransitionState", {}).get("enabled", True), s)

    def test_structure_rules(self):
        def mutate(name, f, **extra):
            d = simple(name, **extra)
            f(d)
            return d

        def src(name, out):
            return action(name, "Source", "Directory", config={"Path": "/nonexistent"}, outputs=[out])

        bad = [
            ("both stores", "InvalidStructureException",
             mutate("s1", lambda d: d.update(artifactStores={"us-east-1": d["artifactStore"]}))),
            ("no store", "InvalidStructureException", mutate("s2", lambda d: d.pop("artifactStore"))),
            ("source action in second stage", "InvalidStageDeclarationException",
             mutate("s3", lambda d: d["stages"][1]["actions"].append(src("Late", "LateOut")))),
            ("empty first stage", "InvalidStageDeclarationException",
             mutate("s4", lambda d: d["stages"][0].update(actions=[]))),
            ("duplicate action names", "InvalidActionDeclarationException",
             mutate("s5", lambda d: d["stages"][1]["actions"].append(commands("Build", ["true"])))),
            ("duplicate output artifact", "InvalidStructureException",
             mutate("s6", lambda d: d["stages"][1]["actions"][0].update(outputArtifacts=[{"name": "SourceOut"}]))),
            ("input from same runOrder", "InvalidStructureException",
             mutate("s7", lambda d: d["stages"][1].update(actions=[
                 commands("A", ["true"], outputs=["X"]), commands("B", ["true"], inputs=["X"])]))),
            ("51 stages", "InvalidStructureException",
             mutate("s8", lambda d: d["stages"].extend(
                 {"name": "S%d" % i, "actions": [commands("C", ["true"])]} for i in range(49)))),
            ("QUEUED on V1", "InvalidStructureException", simple("s9", executionMode="QUEUED")),
            ("bad roleArn", "ValidationException", mutate("s10", lambda d: d.update(roleArn="role"))),
        ]
        for label, code, decl in bad:
            with self.subTest(case=label):
                self.assert_api_error(self.server.call("CreatePipeline", {"pipeline": decl}), code)
        good = [
            ("input from lower runOrder", mutate("g1", lambda d: d["stages"][1].update(actions=[
                commands("A", ["true"], outputs=["X"]), commands("B", ["true"], run_order=3, inputs=["X"])]))),
            ("50 stages", mutate("g2", lambda d: d["stages"].extend(
                {"name": "S%d" % i, "actions": [commands("C", ["true"])]} for i in range(48)))),
            ("name of 100 chars", simple("g" * 100)),
            ("QUEUED on V2", simple("g4", executionMode="QUEUED", pipelineType="V2")),
        ]
        for label, decl in good:
            with self.subTest(case=label):
                st, out = self.server.call("CreatePipeline", {"pipeline": decl})
                self.assertEqual(st, 200, out)
                self.assertEqual(out["pipeline"]["version"], 1)
        listed = self.server.ok("ListPipelines", {})["pipelines"]
        self.assertEqual(len(listed), len(good))

    def test_cli_file_errors(self):
        missing = os.path.join(self.tmp, "does-not-exist.json")
        r = pw(self.server, "create-pipeline", "--pipeline", "file://" + missing)
        self.assertEqual(r.code, 252, r.stderr)
        self.assertIn("--pipeline", r.stderr)
        self.assertIn(missing, r.stderr)
        self.assertNotIn("An error occurred", r.stderr)

        bad = os.path.join(self.tmp, "bad.json")
        with open(bad, "w") as f:
            f.write('{"name": "x", "stages": [')
        r = pw(self.server, "create-pipeline", "--pipeline", "file://" + bad)
        self.assertEqual(r.code, 252, r.stderr)
        self.assertIn("--pipeline", r.stderr)
        self.assertIn("JSON", r.stderr)
        # Same contract as the real CLI.
        r = aws(self.server, "create-pipeline", "--pipeline", "file://" + bad)
        self.assertEqual(r.code, 252, r.stderr)
        self.assertEqual(self.server.ok("ListPipelines", {}).get("pipelines", []), [])


# ---------------------------------------------------------------------------------------------
class RawHttpTest(FoundationCase):

    def post(self, data, target="ListPipelines", extra=None):
        h = {"Content-Type": JSON_CT}
        if target is not None:
            h["X-Amz-Target"] = TARGET + target if "." not in target else target
        h.update(extra or {})
        return raw_http(self.server, data, h)

    def assert_error_response(self, resp, status, code):
        st, headers, body = resp
        self.assertEqual(st, status, body)
        self.assertTrue(headers.get("x-amzn-RequestId"), "no x-amzn-RequestId on %s %s" % (st, body))
        try:
            doc = json.loads(body)
        except ValueError:
            self.fail("error body is not JSON: %r" % body[:200])
        self.assertEqual(doc.get("__type"), code, doc)
        self.assertIsInstance(doc.get("message"), str, doc)
        self.assertTrue(doc["message"], doc)
        self.assert_alive()
        return doc

    def test_malformed_json(self):
        self.assert_error_response(self.post(b'{"name": '), 400, "SerializationException")
        self.assert_error_response(self.post(b"not json at all", "GetPipeline"), 400, "SerializationException")
        self.assert_error_response(self.post(b'{"name": "a"} trailing', "GetPipeline"), 400,
                                   "SerializationException")
        self.assert_error_response(self.post(b"[1, 2]"), 400, "SerializationException")

    def test_operation_selection(self):
        self.assert_error_response(self.post(b"{}", target=None), 400, "UnknownOperationException")
        self.assert_error_response(self.post(b"{}", "NoSuchOperation"), 400, "UnknownOperationException")
        self.assert_error_response(self.post(b"{}", "OtherService_1.ListPipelines"), 400,
                                   "UnknownOperationException")
        # And through the harness helper.
        self.assert_api_error(self.server.call("FrobnicatePipeline", {}), "UnknownOperationException")
        self.assert_api_error(self.server.call(None, {}), "UnknownOperationException")

    def test_empty_body_is_accepted(self):
        st, headers, body = self.post(b"")
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body).get("pipelines", []), [])

    def test_body_over_1_mib(self):
        pad = b"a" * (MIB + 1)
        resp = self.post(b'{"name": "' + pad + b'"}', "GetPipeline")
        self.assert_error_response(resp, 413, "RequestEntityTooLargeException")
        # Exactly 1 MiB is within the limit.
        prefix = b'{"name": "nope", "x": "'
        body = prefix + b"b" * (MIB - len(prefix) - 2) + b'"}'
        self.assertEqual(len(body), MIB)
        st, _, out = self.post(body, "GetPipeline")
        self.assertNotEqual(st, 413, out[:200])
        self.assertEqual(json.loads(out).get("__type"), "PipelineNotFoundException")
        self.assert_alive()

    def test_body_far_over_1_mib_still_gets_json_error(self):
        resp = self.post(b'{"name": "' + b"a" * (5 * MIB) + b'"}', "GetPipeline")
        self.assert_error_response(resp, 413, "RequestEntityTooLargeException")

    def test_a_large_artifact_upload_is_not_cut_by_the_api_body_limit(self):
        # 20 MiB to the S3 endpoint: answered by the S3 endpoint (no such
        # bucket: with no keys file an unsigned request is anonymous), not with
        # 413 by the 1 MiB API limit.
        st, headers, body = raw_http(self.server, b"z" * (20 * MIB),
                                     {"Content-Type": "application/zip"}, method="PUT",
                                     path="/pipewright-artifacts/jobs/x/out.zip")
        self.assertEqual(st, 404, body[:200])
        self.assertIn(b"<Code>NoSuchBucket</Code>", body)

    def test_every_response_has_request_id(self):
        self.create(simple("rid"))
        responses = [
            self.post(b"{}"),                                               # 200
            self.post(b'{"name": "rid"}', "GetPipeline"),                   # 200
            self.post(b'{"name": "ghost"}', "GetPipeline"),                 # modeled error
            self.post(b'{"name": "a b"}', "GetPipeline"),                   # validation
            self.post(b"{bad"),                                             # serialization
            self.post(b"{}", target=None),                                  # no target
            self.post(b"{}", "Nope"),                                       # unknown op
            self.post(b'{"name": "' + b"a" * (MIB + 10) + b'"}', "GetPipeline"),  # 413
        ]
        ids = []
        for st, headers, body in responses:
            rid = headers.get("x-amzn-RequestId")
            self.assertTrue(rid, "missing x-amzn-RequestId on %s %r" % (st, body[:120]))
            self.assertRegex(rid, UUID_RE)
            ids.append(rid)
        self.assertEqual(len(set(ids)), len(ids), "request ids must be unique")
        self.assertEqual(responses[0][1].get("Content-Type"), JSON_CT)

    def test_non_post_request_has_request_id(self):
        # GET of any other path is the server's S3 endpoint (path-style
        # buckets): S3's XML errors, with the request id too.
        for path, status, code in (("/no-such-page", 404, b"NoSuchBucket"),
                                   ("/x", 400, b"InvalidBucketName")):
            st, headers, body = raw_http(self.server, None, {}, method="GET", path=path)
            self.assertEqual(st, status, body[:200])
            self.assertTrue(headers.get("x-amzn-RequestId"),
                            "GET answered %s without x-amzn-RequestId (api.md §1: on every "
                            "response)" % st)
            self.assertIn(b"<Code>" + code + b"</Code>", body)
        # A method no route has: the API's JSON error, with the id.
        st, headers, body = raw_http(self.server, None, {}, method="PATCH", path="/no-such-page")
        self.assertEqual(st, 405)
        self.assertTrue(headers.get("x-amzn-RequestId"))
        self.assertEqual(json.loads(body)["__type"], "MethodNotAllowed")
        self.assert_alive()

    def test_error_bodies_carry_type_and_message(self):
        self.create(simple("errs"))
        cases = [
            ("GetPipeline", {"name": "ghost"}, "PipelineNotFoundException"),
            ("GetPipeline", {"name": "errs", "version": 5}, "PipelineVersionNotFoundException"),
            ("GetPipeline", {}, "ValidationException"),
            ("GetPipeline", {"name": 5}, "ValidationException"),
            ("CreatePipeline", {"pipeline": simple("errs")}, "PipelineNameInUseException"),
            ("ListPipelines", {"nextToken": "zzz"}, "InvalidNextTokenException"),
            ("ListTagsForResource", {"resourceArn": arn_of("ghost")}, "ResourceNotFoundException"),
        ]
        for op, body, code in cases:
            with self.subTest(op=op, code=code):
                resp = self.post(json.dumps(body).encode(), op)
                doc = self.assert_error_response(resp, 400, code)
                self.assertEqual(set(doc) - {"__type", "message"}, set(), doc)


# ---------------------------------------------------------------------------------------------
class PersistenceTest(FoundationCase):

    def populate(self):
        self.write_json("keep.json", simple("keep", cmd="echo v1"))
        self.assert_ok(aws(self.server, "create-pipeline", "--pipeline", "file://keep.json",
                           "--tags", "key=owner,value=alice", cwd=self.tmp))
        self.server.ok("UpdatePipeline", {"pipeline": simple("keep", cmd="echo v2")})
        self.write_json("keep3.json", simple("keep", cmd="echo v3"))
        self.assert_ok(pw(self.server, "update-pipeline", "--pipeline", "file://keep3.json", cwd=self.tmp))
        self.server.ok("TagResource", {"resourceArn": arn_of("keep"), "tags": [{"key": "env", "value": "prod"}]})
        self.create(simple("other"))
        self.create(simple("dropped"))
        self.server.ok("DeletePipeline", {"name": "dropped"})
        return self.server.ok("GetPipeline", {"name": "keep"})["metadata"]

    def check(self, meta):
        cur = self.server.ok("GetPipeline", {"name": "keep"})
        self.assertEqual(cur["pipeline"]["version"], 3)
        self.assertEqual(cur["pipeline"]["stages"][1]["actions"][0]["configuration"]["Commands"], "echo v3")
        self.assertEqual(cur["metadata"], meta)
        for v, cmd in ((1, "echo v1"), (2, "echo v2")):
            old = self.server.ok("GetPipeline", {"name": "keep", "version": v})["pipeline"]
            self.assertEqual((old["version"], old["stages"][1]["actions"][0]["configuration"]["Commands"]),
                             (v, cmd))
        tags = self.server.ok("ListTagsForResource", {"resourceArn": arn_of("keep")})["tags"]
        self.assertEqual({t["key"]: t["value"] for t in tags}, {"owner": "alice", "env": "prod"})
        listed = {p["name"]: p["version"] for p in self.server.ok("ListPipelines", {})["pipelines"]}
        self.assertEqual(listed, {"keep": 3, "other": 1})
        self.assert_api_error(self.server.call("GetPipeline", {"name": "dropped"}), "PipelineNotFoundException")
        # The old CLI sees the same thing.
        out = self.assert_ok(aws(self.server, "get-pipeline", "--name", "keep", "--pipeline-version", "2"))
        self.assertEqual(out["pipeline"]["version"], 2)
        # And the server keeps accepting writes.
        self.assertEqual(self.server.ok("UpdatePipeline", {"pipeline": simple("keep", cmd="echo v4")})
                         ["pipeline"]["version"], 4)

    def test_survives_graceful_restart(self):
        meta = self.populate()
        self.server.restart()
        self.check(meta)

    def test_survives_kill_9(self):
        meta = self.populate()
        self.server.kill9()
        self.assertEqual(self.server.proc.returncode, -9)
        self.server.start()
        self.check(meta)


# ---------------------------------------------------------------------------------------------
class NewerModelTest(FoundationCase):

    def v2_decl(self, name):
        d = simple(name, pipelineType="V2", executionMode="QUEUED",
                   variables=[{"name": "Env", "defaultValue": "dev", "description": "target environment"}])
        d["stages"][1]["onFailure"] = {"result": "RETRY", "retryConfiguration": {"retryMode": "FAILED_ACTIONS"}}
        return d

    def test_newer_fields_round_trip_raw(self):
        d = self.v2_decl("newer")
        out = self.create(d)
        self.assertEqual(out["pipeline"], dict(d, version=1))
        got = self.server.ok("GetPipeline", {"name": "newer"})["pipeline"]
        self.assertEqual(got, dict(d, version=1))
        summary = [p for p in self.server.ok("ListPipelines", {})["pipelines"] if p["name"] == "newer"][0]
        self.assertEqual((summary.get("pipelineType"), summary.get("executionMode")), ("V2", "QUEUED"))
        # Still unchanged after an update that re-sends it, and in history.
        self.assertEqual(self.server.ok("UpdatePipeline", {"pipeline": d})["pipeline"], dict(d, version=2))
        self.assertEqual(self.server.ok("GetPipeline", {"name": "newer", "version": 1})["pipeline"],
                         dict(d, version=1))
        # Our CLI (current model) prints it unchanged too.
        got = self.assert_ok(pw(self.server, "get-pipeline", "--name", "newer"))
        self.assertEqual(got["pipeline"], dict(d, version=2))

    def test_old_cli_cannot_send_newer_fields(self):
        d = self.v2_decl("newer-old")
        self.write_json("p.json", d)
        r = aws(self.server, "create-pipeline", "--pipeline", "file://p.json", cwd=self.tmp)
        self.assertEqual(r.code, 252, r.stderr)
        self.assertIn("Unknown parameter", r.stderr)
        for field in ("pipelineType", "executionMode", "variables", "onFailure"):
            self.assertIn(field, r.stderr)
        self.assert_api_error(self.server.call("GetPipeline", {"name": "newer-old"}), "PipelineNotFoundException")
        # Our CLI knows the current model and sends them.
        out = self.assert_ok(pw(self.server, "create-pipeline", "--pipeline", "file://p.json", cwd=self.tmp))
        self.assertEqual(out["pipeline"], dict(d, version=1))
        self.assertEqual(self.server.ok("GetPipeline", {"name": "newer-old"})["pipeline"], dict(d, version=1))

    def test_old_cli_reads_v2_pipeline_and_gets_defaults(self):
        self.create(self.v2_decl("v2-read"))
        out = self.assert_ok(aws(self.server, "get-pipeline", "--name", "v2-read"))
        self.assertEqual([s["name"] for s in out["pipeline"]["stages"]], ["Source", "Build"])
        self.assertEqual(out["pipeline"]["version"], 1)
        # A pipeline created by the old CLI gets the documented defaults (api.md §3.3).
        self.write_json("old.json", simple("v1-old"))
        self.assert_ok(aws(self.server, "create-pipeline", "--pipeline", "file://old.json", cwd=self.tmp))
        got = self.server.ok("GetPipeline", {"name": "v1-old"})["pipeline"]
        self.assertEqual(got.get("pipelineType", "V1"), "V1")
        self.assertEqual(got.get("executionMode", "SUPERSEDED"), "SUPERSEDED")
        self.assertNotIn("onFailure", got["stages"][1])


# ---------------------------------------------------------------------------------------------
def sigv4_headers(endpoint, target, body, akid="AKIDPIPEWRIGHT", secret="pipewright-secret",
                  when=None, region="us-east-1"):
    """Signs one awsJson request with SigV4 (service `codepipeline`), standard library only."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    h = {"content-type": JSON_CT, "host": endpoint.split("//", 1)[1], "x-amz-date": amz_date,
         "x-amz-target": target}
    signed = ";".join(sorted(h))
    canonical = "\n".join(["POST", "/", "", "".join("%s:%s\n" % (k, h[k]) for k in sorted(h)), signed,
                           hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/codepipeline/aws4_request" % (day, region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (day, region, "codepipeline", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": JSON_CT, "X-Amz-Date": amz_date, "X-Amz-Target": target,
            "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                             % (akid, scope, signed, sig)}


class SigV4Test(FoundationCase):

    def setUp(self):
        self.keys_dir = tempfile.mkdtemp(prefix="pw-e2e-keys-")
        keys = os.path.join(self.keys_dir, "keys")
        with open(keys, "w") as f:
            f.write("AKIDPIPEWRIGHT:pipewright-secret\n")
        self.server_args = ("--no-start-on-create", "--auth-keys-file", keys)
        super().setUp()

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.keys_dir, ignore_errors=True)

    def test_right_credentials_work(self):
        self.write_json("p.json", simple("signed"))
        out = self.assert_ok(aws(self.server, "create-pipeline", "--pipeline", "file://p.json", cwd=self.tmp))
        self.assertEqual(out["pipeline"]["version"], 1)
        out = self.assert_ok(aws(self.server, "list-pipelines"))
        self.assertEqual([p["name"] for p in out["pipelines"]], ["signed"])
        out = self.assert_ok(pw(self.server, "list-pipelines"))
        self.assertEqual([p["name"] for p in out["pipelines"]], ["signed"])
        out = self.assert_ok(pw(self.server, "get-pipeline", "--name", "signed"))
        self.assertEqual(out["pipeline"]["name"], "signed")

    def test_wrong_secret(self):
        for cli in (aws, pw):
            with self.subTest(cli=cli.__name__):
                r = cli(self.server, "list-pipelines", env={"AWS_SECRET_ACCESS_KEY": "wrong"})
                self.assert_cli_error(r, "InvalidSignatureException", "ListPipelines")

    def test_unknown_access_key(self):
        for cli in (aws, pw):
            with self.subTest(cli=cli.__name__):
                r = cli(self.server, "list-pipelines", env={"AWS_ACCESS_KEY_ID": "AKIDSTRANGER"})
                self.assert_cli_error(r, "InvalidClientTokenId", "ListPipelines")

    def test_unsigned_requests_are_refused(self):
        self.assert_api_error(self.server.call("ListPipelines", {}), "MissingAuthenticationToken", status=403)
        self.assert_api_error(self.server.call("CreatePipeline", {"pipeline": simple("sneaky")}),
                              "MissingAuthenticationToken", status=403)
        for cli in (aws, pw):
            with self.subTest(cli=cli.__name__):
                self.assert_cli_error(cli(self.server, "list-pipelines", "--no-sign-request"),
                                      "MissingAuthenticationToken", "ListPipelines")
        # Nothing was created by the unsigned CreatePipeline.
        st, _, out = raw_http(self.server, b"{}", sigv4_headers(self.server.endpoint, TARGET + "ListPipelines",
                                                                 b"{}"))
        self.assertEqual(st, 200, out)
        self.assertEqual(json.loads(out).get("pipelines", []), [])

    def test_signature_covers_body_target_and_date(self):
        ep = self.server.endpoint
        body = json.dumps({"pipeline": simple("hand-signed")}).encode()
        st, _, out = raw_http(self.server, body, sigv4_headers(ep, TARGET + "CreatePipeline", body))
        self.assertEqual(st, 200, out)

        # Body changed after signing.
        tampered = json.dumps({"pipeline": simple("hand-signed-2")}).encode()
        st, _, out = raw_http(self.server, tampered, sigv4_headers(ep, TARGET + "CreatePipeline", body))
        self.assertEqual(json.loads(out).get("__type"), "InvalidSignatureException", out)
        # Operation changed after signing.
        get = b'{"name": "hand-signed"}'
        h = sigv4_headers(ep, TARGET + "GetPipeline", get)
        h["X-Amz-Target"] = TARGET + "DeletePipeline"
        st, _, out = raw_http(self.server, get, h)
        self.assertEqual(json.loads(out).get("__type"), "InvalidSignatureException", out)
        # A signature from an hour ago.
        stale = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
        st, _, out = raw_http(self.server, get, sigv4_headers(ep, TARGET + "DeletePipeline", get, when=stale))
        self.assertGreaterEqual(st, 400, out)
        self.assertIn(json.loads(out).get("__type"), ("RequestExpired", "InvalidSignatureException"), out)

        # None of the rejected requests took effect.
        st, _, out = raw_http(self.server, b"{}", sigv4_headers(ep, TARGET + "ListPipelines", b"{}"))
        self.assertEqual([p["name"] for p in json.loads(out)["pipelines"]], ["hand-signed"])


if __name__ == "__main__":
    unittest.main()
