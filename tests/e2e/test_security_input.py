"""Input that cannot hurt the server: each payload below crashed `pipewright serve`
(SIGSEGV: stack overflow in std::regex or in a recursive JSON walk) or made it
answer 500 before; each must now get a 400 with the model's error type, a reply
that is valid UTF-8 JSON, and the server must keep answering.
"""

import json
import os
import shutil
import tempfile
import unittest
import urllib.error
import urllib.request

from harness import Server, action, pipeline

UUID = "3137f7cb-7cf7-4a3e-9b1e-0123456789ab"
ARN_PREFIX = "arn:aws:codepipeline:us-east-1:123456789012:"


def nested(depth, leaf="1"):
    return "[" * depth + leaf + "]" * depth


class SecurityInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(extra_args=["--no-start-on-create"])
        cls.src = tempfile.mkdtemp(prefix="pw-e2e-src-")

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.src, ignore_errors=True)

    def post(self, op, body):
        """POSTs raw bytes; returns (status, reply parsed as strict UTF-8 JSON)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(
            self.server.endpoint + "/", data=data, method="POST",
            headers={"Content-Type": "application/x-amz-json-1.1",
                     "X-Amz-Target": "CodePipeline_20150709." + op})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        text = raw.decode("utf-8")  # Strict: raises on invalid UTF-8.
        return status, (json.loads(text) if text else {})

    def assertRefused(self, op, body, error_type, in_message=None):
        status, reply = self.post(op, body)
        self.assertEqual(status, 400, reply)
        self.assertEqual(reply["__type"], error_type, reply)
        if in_message is not None:
            self.assertIn(in_message, reply["message"])
        self.assertServerAlive()
        return reply

    def assertServerAlive(self):
        self.assertIsNone(self.server.proc.poll(), "the server process died")
        status, reply = self.post("ListPipelines", {})
        self.assertEqual(status, 200, reply)

    def pipeline(self, name, **extra):
        return pipeline(name, [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.src},
                               outputs=["Out"])]),
            ("Gate", [action("Approve", "Approval", "Manual")])], **extra)

    # 1. std::regex recursed per character: a 50,000-character value overflowed the stack.
    def test_fifty_thousand_character_arn_is_refused_by_pattern(self):
        arn = "arn:aws:" + "x" * 50000
        self.assertRefused("ListTagsForResource", {"resourceArn": arn}, "ValidationException",
                           "regular expression pattern")
        self.assertRefused("TagResource", {"resourceArn": arn, "tags": [{"key": "k", "value": "v"}]},
                           "ValidationException")
        self.assertRefused("UntagResource", {"resourceArn": arn, "tagKeys": ["k"]},
                           "ValidationException")
        # Matches the pattern (no length limit in the model): the handler refuses it,
        # quoting a bounded prefix.
        reply = self.assertRefused("ListTagsForResource", {"resourceArn": ARN_PREFIX + "p" * 50000},
                                   "ResourceNotFoundException")
        self.assertLess(len(reply["message"]), 1000)

    def test_fifty_thousand_character_output_variable_key(self):
        reply = self.assertRefused(
            "PutJobSuccessResult",
            {"jobId": UUID, "outputVariables": {"k" * 50000 + "!": "v"}}, "ValidationException",
            "outputVariables")
        self.assertLess(len(reply["message"]), 2000, "the key quoted in the message is cut")

    # 2. Deep nesting: recursive dumps and walks overflowed the stack.
    def test_deeply_nested_value_in_a_validated_member(self):
        body = ('{"name": %s}' % nested(10000)).encode()
        self.assertRefused("GetPipeline", body, "SerializationException", "64 levels")

    def test_deeply_nested_unknown_action_field(self):
        p = json.dumps({"pipeline": self.pipeline("deep")})
        body = p.replace('"name": "Approve"', '"name": "Approve", "extra": %s' % nested(12000))
        self.assertNotEqual(body, p)
        self.assertRefused("CreatePipeline", body.encode(), "SerializationException", "64 levels")
        # Brackets inside strings are text, not nesting.
        self.assertRefused("GetPipeline", {"name": "[" * 10000}, "ValidationException")

    def test_message_cut_never_splits_a_utf8_character(self):
        for prefix in ("", "x"):  # The cut lands inside a 2-byte character for one of them.
            reply = self.assertRefused("GetPipeline", {"name": prefix + "\u00e9" * 300},
                                       "ValidationException", "...'")
            self.assertIn("\u00e9", reply["message"])

    # 3. null in optional members was a 500; now it means "absent". In lists: refused.
    def test_null_members_are_absent(self):
        out = self.server.ok("CreatePipeline", {"pipeline": self.pipeline("nulls"), "tags": None})
        self.assertNotIn("tags", out)
        p = self.pipeline("nullcfg")
        p["stages"][1]["actions"][0]["configuration"] = None
        p["stages"][0]["actions"][0]["namespace"] = None
        p["variables"] = None
        self.server.ok("CreatePipeline", {"pipeline": p})
        started = self.server.ok("StartPipelineExecution", {"name": "nulls", "variables": None,
                                                            "clientRequestToken": None})
        self.assertIn("pipelineExecutionId", started)
        self.server.ok("ListPipelines", {"nextToken": None, "maxResults": None})
        self.server.ok("GetPipeline", {"name": "nulls", "version": None})
        self.server.ok("ListPipelineExecutions", {"pipelineName": "nulls", "filter": None})
        self.assertServerAlive()

    def test_null_inside_a_list_is_refused(self):
        self.assertRefused("CreatePipeline", {"pipeline": self.pipeline("nl"), "tags": [None]},
                           "ValidationException", "'tags.1.member'")
        p = self.pipeline("nl2")
        p["stages"].append(None)
        self.assertRefused("CreatePipeline", {"pipeline": p}, "ValidationException",
                           "'pipeline.stages.3.member'")
        self.assertRefused("StartPipelineExecution", {"name": "x", "variables": [None]},
                           "ValidationException", "must not be null")

    # 4. A NUL silently truncated a Commands action's command list (it still Succeeded).
    def test_nul_characters_are_refused_naming_the_field(self):
        p = self.pipeline("nul")
        p["stages"][1]["actions"] = [action("Run", "Build", "Commands", inputs=["Out"],
                                            config={"Commands": "true\u0000false"})]
        self.assertRefused("CreatePipeline", {"pipeline": p}, "ValidationException",
                           "'pipeline.stages.2.member.actions.1.member.configuration.Commands'")
        self.assertRefused("GetPipeline", {"name": "a\u0000b"}, "ValidationException", "'name'")
        self.assertRefused("PutJobSuccessResult", {"jobId": UUID, "outputVariables": {"a\u0000": "v"}},
                           "ValidationException", "NUL")
        status, _ = self.post("GetPipeline", {"name": "nul"})
        self.assertEqual(status, 400, "nothing was created")

    # 5. Type confusions get the model's ValidationException, never a 500.
    def test_type_confusions(self):
        self.server.ok("CreatePipeline", {"pipeline": self.pipeline("types")})
        cases = [
            ("GetPipeline", {"name": 5}),
            ("GetPipeline", {"name": "types", "version": "1"}),
            ("GetPipeline", {"name": "types", "version": 10 ** 30}),
            ("GetPipeline", {"name": "types", "version": 18446744073709551615}),
            ("ListPipelines", {"maxResults": -1}),
            ("ListPipelineExecutions", {"pipelineName": "types", "maxResults": -5}),
            ("ListPipelineExecutions", {"pipelineName": "types", "filter": []}),
            ("ListPipelineExecutions", {"pipelineName": "types",
                                        "filter": {"succeededInStage": "Gate"}}),
            ("CreatePipeline", {"pipeline": "types"}),
            ("CreatePipeline", {"pipeline": self.pipeline("t2"), "tags": {"k": "v"}}),
            ("UpdatePipeline", {"pipeline": dict(self.pipeline("types"), stages={})}),
            ("StartPipelineExecution", {"name": "types", "variables": {"a": "b"}}),
            ("TagResource", {"resourceArn": ARN_PREFIX + "types", "tags": [["k", "v"]]}),
            ("UntagResource", {"resourceArn": ARN_PREFIX + "types", "tagKeys": "k"}),
            ("PutJobSuccessResult", {"jobId": UUID, "outputVariables": ["a"]}),
            ("PutJobSuccessResult", {"jobId": UUID, "executionDetails": {"percentComplete": "50"}}),
            ("PutJobFailureResult", {"jobId": UUID, "failureDetails": "boom"}),
            ("PollForJobs", {"actionTypeId": {"category": "Build", "owner": "Custom",
                                              "provider": "X", "version": "1"},
                             "maxBatchSize": 10 ** 12}),
            ("PollForJobs", {"actionTypeId": {"category": "Build", "owner": "Custom",
                                              "provider": "X", "version": "1"},
                             "queryParam": {"a": 1}}),
            ("PutApprovalResult", {"pipelineName": "types", "stageName": "Gate",
                                   "actionName": "Approve", "token": UUID, "result": []}),
        ]
        for op, body in cases:
            with self.subTest(op=op, body=str(body)[:80]):
                status, reply = self.post(op, body)
                self.assertEqual(status, 400, reply)
                self.assertIn("__type", reply)
        self.assertServerAlive()

    # 6. An integer past 32 bits was wrapped, not refused: GetPipeline with
    # version 4294967297 answered version 1, and 2^31 asked for version
    # -2147483648. The model's integer is 32 bits: ValidationException.
    def test_integers_past_32_bits_are_refused_not_wrapped(self):
        self.server.ok("CreatePipeline", {"pipeline": self.pipeline("wide")})
        for version in (4294967297, 2 ** 31, 2 ** 63, 2 ** 64 + 1):
            with self.subTest(version=version):
                self.assertRefused("GetPipeline", {"name": "wide", "version": version},
                                   "ValidationException", "at 'version'")
        self.assertRefused("ListPipelines", {"maxResults": -2 ** 31 - 1},
                           "ValidationException", "32-bit integer")
        status, reply = self.post("GetPipeline", {"name": "wide", "version": 2 ** 31 - 1})
        self.assertEqual(reply["__type"], "PipelineVersionNotFoundException", reply)
        self.assertIn("2147483647", reply["message"])


if __name__ == "__main__":
    unittest.main()
