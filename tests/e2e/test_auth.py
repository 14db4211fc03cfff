"""Authentication on every route, per-key policies and console sessions,
end to end: a real `pipewright serve --auth-keys-file` with an admin key
(no policy), a read-only key and a key whose policy has an explicit deny;
Debian's AWS CLI signs with each; the console session flow over plain HTTP.

Run: /usr/bin/python3 -m unittest tests/e2e/test_auth.py
"""

import json
import os
import shutil
import tempfile
import unittest
import urllib.error
import urllib.request

from harness import ServerTestCase, action, aws, commands, pipeline, wait_execution

TARGET = "CodePipeline_20150709."
ACCOUNT_ARN = "arn:aws:iam::123456789012:user/"
PIPE_ARN = "arn:aws:codepipeline:us-east-1:123456789012:"

READ_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["codepipeline:Get*", "codepipeline:List*"], "Resource": "*"}]}
DENY_ALL = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Deny", "Action": "*", "Resource": "*"}]}
NO_PROD = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "codepipeline:*", "Resource": "*"},
    {"Effect": "Deny", "Action": "codepipeline:*", "Resource": PIPE_ARN + "prod*"}]}

ADMIN = {"AWS_ACCESS_KEY_ID": "AKIDADMIN", "AWS_SECRET_ACCESS_KEY": "admin-secret"}
READER = {"AWS_ACCESS_KEY_ID": "AKIDREADER", "AWS_SECRET_ACCESS_KEY": "reader-secret"}
NOPROD = {"AWS_ACCESS_KEY_ID": "AKIDNOPROD", "AWS_SECRET_ACCESS_KEY": "noprod-secret"}


def http(server, method, path, body=None, headers=None):
    """One request; returns (status, headers, parsed JSON or text)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(server.endpoint + path, data=data, headers=headers or {},
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, hdrs, text = r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        status, hdrs, text = e.code, e.headers, e.read().decode()
    try:
        return status, hdrs, json.loads(text) if text else {}
    except ValueError:
        return status, hdrs, text


class AuthTest(ServerTestCase):

    def setUp(self):
        self.keys_dir = tempfile.mkdtemp(prefix="pw-e2e-auth-")
        with open(os.path.join(self.keys_dir, "read-only.json"), "w") as f:
            json.dump(READ_ONLY, f)
        with open(os.path.join(self.keys_dir, "no-prod.json"), "w") as f:
            json.dump(NO_PROD, f)
        with open(os.path.join(self.keys_dir, "deny-all.json"), "w") as f:
            json.dump(DENY_ALL, f)
        keys = os.path.join(self.keys_dir, "keys")
        with open(keys, "w") as f:
            f.write("# admin: no policy, may do everything\n"
                    "AKIDADMIN:admin-secret\n"
                    "AKIDREADER:reader-secret:read-only.json\n"
                    "AKIDNOPROD:noprod-secret:no-prod.json\n"
                    "AKIDNONE:none-secret:deny-all.json\n")
        self.server_args = ("--no-start-on-create", "--auth-keys-file", keys)
        super().setUp()
        self.src = os.path.join(self.tmp, "src")
        os.mkdir(self.src)
        with open(os.path.join(self.src, "f.txt"), "w") as f:
            f.write("hello\n")
        for name in ("MyPipeline", "prod-web"):
            self.write_json(name + ".json", self.simple(name))
            r = aws(self.server, "create-pipeline", "--pipeline", "file://%s.json" % name,
                    cwd=self.tmp, env=ADMIN)
            self.assertEqual(r.code, 0, r.stderr)

    def tearDown(self):
        # Nothing secret reaches the server's log, whatever the test did.
        with open(os.path.join(self.server.data_dir, "server.log"), errors="replace") as f:
            log = f.read()
        for secret in ("admin-secret", "reader-secret"):
            self.assertNotIn(secret, log)
        super().tearDown()
        shutil.rmtree(self.keys_dir, ignore_errors=True)

    def simple(self, name):
        return pipeline(name, [
            ("Source", [action("Src", "Source", "Directory", config={"Path": self.src},
                               outputs=["Out"])]),
            ("Build", [commands("Echo", ["echo built-by-pipewright"], inputs=["Out"])])])

    def assert_denied(self, r, op, resource, explicit=False):
        detail = "exit %s\nstderr: %s" % (r.code, r.stderr)
        self.assertEqual(r.code, 254, detail)
        self.assertIn("An error occurred (AccessDeniedException) when calling the %s operation: "
                      % op, r.stderr, detail)
        self.assertIn("is not authorized to perform: codepipeline:%s on resource: %s"
                      % (op, resource), r.stderr, detail)
        self.assertEqual("explicit deny" in r.stderr, explicit, detail)

    # -- per-key policies ---------------------------------------------------------
    def test_read_only_key_reads_but_cannot_act(self):
        r = aws(self.server, "get-pipeline-state", "--name", "MyPipeline", env=READER)
        self.assertEqual(r.code, 0, r.stderr)
        self.assertEqual(r.json()["pipelineName"], "MyPipeline")
        r = aws(self.server, "list-pipelines", env=READER)
        self.assertEqual(r.code, 0, r.stderr)

        r = aws(self.server, "retry-stage-execution", "--pipeline-name", "MyPipeline",
                "--stage-name", "Build", "--pipeline-execution-id",
                "00000000-0000-0000-0000-000000000000", "--retry-mode", "FAILED_ACTIONS",
                env=READER)
        self.assert_denied(r, "RetryStageExecution", PIPE_ARN + "MyPipeline")
        self.assertIn("User: " + ACCOUNT_ARN + "AKIDREADER", r.stderr)
        r = aws(self.server, "start-pipeline-execution", "--name", "MyPipeline", env=READER)
        self.assert_denied(r, "StartPipelineExecution", PIPE_ARN + "MyPipeline")
        r = aws(self.server, "delete-pipeline", "--name", "MyPipeline", env=READER)
        self.assert_denied(r, "DeletePipeline", PIPE_ARN + "MyPipeline")
        # Nothing was started or deleted.
        r = aws(self.server, "list-pipeline-executions", "--pipeline-name", "MyPipeline", env=ADMIN)
        self.assertEqual(r.json()["pipelineExecutionSummaries"], [])

    def test_the_caller_is_recorded(self):
        r = aws(self.server, "start-pipeline-execution", "--name", "MyPipeline", env=ADMIN)
        self.assertEqual(r.code, 0, r.stderr)
        r = aws(self.server, "list-pipeline-executions", "--pipeline-name", "MyPipeline", env=ADMIN)
        trigger = r.json()["pipelineExecutionSummaries"][0]["trigger"]
        self.assertEqual(trigger["triggerDetail"], "arn:aws:iam::123456789012:user/AKIDADMIN")

    def test_explicit_deny_wins_over_allow(self):
        r = aws(self.server, "get-pipeline", "--name", "MyPipeline", env=NOPROD)
        self.assertEqual(r.code, 0, r.stderr)
        r = aws(self.server, "get-pipeline", "--name", "prod-web", env=NOPROD)
        self.assert_denied(r, "GetPipeline", PIPE_ARN + "prod-web", explicit=True)
        r = aws(self.server, "delete-pipeline", "--name", "prod-web", env=NOPROD)
        self.assert_denied(r, "DeletePipeline", PIPE_ARN + "prod-web", explicit=True)
        r = aws(self.server, "get-pipeline", "--name", "prod-web", env=ADMIN)
        self.assertEqual(r.code, 0, r.stderr)

    def test_a_second_name_member_does_not_move_the_policy_check(self):
        # Before: the policy was checked against pipelineName (else name, else pipeline.name)
        # while each handler reads its own member, so NOPROD (Deny on prod*) rewrote, started,
        # read and deleted prod-web by naming MyPipeline in a member the operation ignores.
        cookie, csrf = self.sign_in("AKIDNOPROD", "noprod-secret")
        as_noprod = {"Cookie": cookie, "X-Pw-Csrf": csrf}
        decl = self.simple("prod-web")
        decl["stages"][1]["actions"][0]["configuration"]["Commands"] = "echo PWNED"
        attempts = [
            ("UpdatePipeline", {"pipeline": decl, "pipelineName": "MyPipeline",
                                "name": "MyPipeline"}),
            ("CreatePipeline", {"name": "MyPipeline2", "pipeline": self.simple("prod-new")}),
            ("GetPipeline", {"name": "prod-web", "pipelineName": "MyPipeline"}),
            ("StartPipelineExecution", {"name": "prod-web", "pipelineName": "MyPipeline"}),
            ("DeletePipeline", {"name": "prod-web", "pipelineName": "MyPipeline"}),
        ]
        for op, body in attempts:
            st, out = self.server.call(op, body, headers=as_noprod)
            self.assertIn(st, (400, 403), (op, out))
            self.assertEqual(out["__type"], "AccessDeniedException", (op, out))
            self.assertIn("explicit deny", out["message"])
        r = aws(self.server, "get-pipeline", "--name", "prod-web", env=ADMIN)
        self.assertNotIn("PWNED", r.stdout)
        r = aws(self.server, "list-pipelines", env=ADMIN)
        self.assertEqual(sorted(p["name"] for p in r.json()["pipelines"]), ["MyPipeline", "prod-web"])
        r = aws(self.server, "list-pipeline-executions", "--pipeline-name", "prod-web", env=ADMIN)
        self.assertEqual(r.json()["pipelineExecutionSummaries"], [])

    # -- every route needs credentials ---------------------------------------------
    def test_unsigned_api_call_is_refused(self):
        st, out = self.server.call("ListPipelines", {})
        self.assertEqual(st, 403, out)
        self.assertEqual(out["__type"], "MissingAuthenticationToken")

    def sign_in(self, akid, secret):
        st, hdrs, out = http(self.server, "POST", "/console/api/session",
                             {"accessKeyId": akid, "secretAccessKey": secret},
                             {"Content-Type": "application/json"})
        self.assertEqual(st, 200, out)
        cookie = hdrs["Set-Cookie"]
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        self.assertEqual(out["identity"], ACCOUNT_ARN + akid)
        return cookie.split(";")[0], out["csrfToken"]

    def test_logs_need_credentials(self):
        r = aws(self.server, "start-pipeline-execution", "--name", "MyPipeline", env=ADMIN)
        self.assertEqual(r.code, 0, r.stderr)
        execution = r.json()["pipelineExecutionId"]
        cookie, csrf = self.sign_in("AKIDREADER", "reader-secret")
        as_reader = {"Cookie": cookie, "X-Pw-Csrf": csrf}
        self.assertEqual(wait_execution(_SessionServer(self.server, as_reader), "MyPipeline",
                                        execution), "Succeeded")
        runs = self.server.ok("ListActionExecutions", {"pipelineName": "MyPipeline"},
                              headers=as_reader)["actionExecutionDetails"]
        echo = [a for a in runs if a["actionName"] == "Echo"][0]["actionExecutionId"]

        st, _, out = http(self.server, "GET", "/logs/" + echo)
        self.assertIn(st, (401, 403), out)
        self.assertNotIn("built-by-pipewright", str(out))
        st, _, out = http(self.server, "GET", "/logs/" + echo, headers={"Cookie": cookie})
        self.assertEqual(st, 200, out)
        self.assertIn("built-by-pipewright", out)

    def test_logs_and_metrics_follow_the_keys_policy(self):
        # Before: any authenticated key could read any log by id and /metrics, whatever its
        # policy denied.
        echo = {}
        cookie, csrf = self.sign_in("AKIDADMIN", "admin-secret")
        as_admin = _SessionServer(self.server, {"Cookie": cookie, "X-Pw-Csrf": csrf})
        for name in ("MyPipeline", "prod-web"):
            r = aws(self.server, "start-pipeline-execution", "--name", name, env=ADMIN)
            self.assertEqual(r.code, 0, r.stderr)
            self.assertEqual(wait_execution(as_admin, name, r.json()["pipelineExecutionId"]),
                             "Succeeded")
            runs = aws(self.server, "list-action-executions", "--pipeline-name", name,
                       env=ADMIN).json()["actionExecutionDetails"]
            echo[name] = [a for a in runs if a["actionName"] == "Echo"][0]["actionExecutionId"]
        as_noprod = {"Cookie": self.sign_in("AKIDNOPROD", "noprod-secret")[0]}
        as_none = {"Cookie": self.sign_in("AKIDNONE", "none-secret")[0]}
        as_reader = {"Cookie": self.sign_in("AKIDREADER", "reader-secret")[0]}

        st, _, out = http(self.server, "GET", "/logs/" + echo["MyPipeline"], headers=as_noprod)
        self.assertEqual(st, 200, out)
        self.assertIn("built-by-pipewright", out)
        st, _, out = http(self.server, "GET", "/logs/" + echo["prod-web"], headers=as_noprod)
        self.assertEqual(st, 403, out)
        self.assertEqual(out["__type"], "AccessDeniedException")
        self.assertIn("codepipeline:ListActionExecutions on resource: " + PIPE_ARN + "prod-web",
                      out["message"])
        for name in ("MyPipeline", "prod-web"):
            st, _, out = http(self.server, "GET", "/logs/" + echo[name], headers=as_none)
            self.assertEqual(st, 403, out)
            self.assertNotIn("built-by-pipewright", str(out))
        # An id no action execution has: 404, whoever asks.
        st, _, out = http(self.server, "GET", "/logs/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12,
                          headers=as_reader)
        self.assertEqual(st, 404, out)

        st, _, out = http(self.server, "GET", "/metrics", headers=as_none)
        self.assertEqual(st, 403, out)
        self.assertIn("codepipeline:GetMetrics", out["message"])
        self.assertNotIn("pipewright_", str(out))
        st, _, out = http(self.server, "GET", "/metrics", headers=as_reader)
        self.assertEqual(st, 200, out)
        self.assertIn("pipewright_build_info", out)

    # -- console sessions -----------------------------------------------------------
    def test_console_session_flow(self):
        st, _, out = http(self.server, "GET", "/console/api/session")
        self.assertEqual(st, 401, out)
        self.assertTrue(out["authRequired"])
        st, hdrs, out = http(self.server, "POST", "/console/api/session",
                             {"accessKeyId": "AKIDADMIN", "secretAccessKey": "wrong"},
                             {"Content-Type": "application/json"})
        self.assertEqual(st, 401, out)
        self.assertIsNone(hdrs.get("Set-Cookie"))

        cookie, csrf = self.sign_in("AKIDADMIN", "admin-secret")
        st, _, out = http(self.server, "GET", "/console/api/session", headers={"Cookie": cookie})
        self.assertEqual((st, out["csrfToken"]), (200, csrf), out)

        # The cookie alone is not enough for an API call: the CSRF token must come too.
        st, out = self.server.call("ListPipelines", {}, headers={"Cookie": cookie})
        self.assertEqual(st, 403, out)
        self.assertIn("X-Pw-Csrf", out["message"])
        st, out = self.server.call("ListPipelines", {}, headers={"Cookie": cookie,
                                                                 "X-Pw-Csrf": "0" * 64})
        self.assertEqual(st, 403, out)
        st, out = self.server.call("ListPipelines", {}, headers={"Cookie": cookie,
                                                                 "X-Pw-Csrf": csrf})
        self.assertEqual(st, 200, out)
        self.assertEqual(sorted(p["name"] for p in out["pipelines"]), ["MyPipeline", "prod-web"])

        # A session carries its key's policy.
        rcookie, rcsrf = self.sign_in("AKIDREADER", "reader-secret")
        st, out = self.server.call("StartPipelineExecution", {"name": "MyPipeline"},
                                   headers={"Cookie": rcookie, "X-Pw-Csrf": rcsrf})
        self.assertEqual((st, out["__type"]), (400, "AccessDeniedException"), out)

        # Sign-out needs the CSRF token, then the cookie no longer works.
        st, _, out = http(self.server, "DELETE", "/console/api/session", headers={"Cookie": cookie})
        self.assertEqual(st, 403, out)
        st, hdrs, out = http(self.server, "DELETE", "/console/api/session",
                             headers={"Cookie": cookie, "X-Pw-Csrf": csrf})
        self.assertEqual(st, 200, out)
        self.assertIn("Max-Age=0", hdrs["Set-Cookie"])
        st, out = self.server.call("ListPipelines", {}, headers={"Cookie": cookie,
                                                                 "X-Pw-Csrf": csrf})
        self.assertEqual(st, 403, out)
        st, _, out = http(self.server, "GET", "/console/api/session", headers={"Cookie": cookie})
        self.assertEqual(st, 401, out)
        # The other session is untouched.
        st, out = self.server.call("ListPipelines", {}, headers={"Cookie": rcookie,
                                                                 "X-Pw-Csrf": rcsrf})
        self.assertEqual(st, 200, out)

    def test_console_assets_are_public(self):
        st, _, out = http(self.server, "GET", "/console/")
        self.assertEqual(st, 200)
        self.assertIn("Pipewright console", out)


class _SessionServer:
    """A Server whose ok() sends the given session headers (for wait_execution)."""

    def __init__(self, server, headers):
        self._server = server
        self._headers = headers

    def ok(self, op, body=None, **kw):
        return self._server.ok(op, body, headers=self._headers, **kw)


class NoAuthTest(ServerTestCase):

    def test_console_session_says_no_auth(self):
        st, _, out = http(self.server, "GET", "/console/api/session")
        self.assertEqual((st, out), (200, {"authRequired": False}))
        st, out = self.server.call("ListPipelines", {})
        self.assertEqual(st, 200, out)


if __name__ == "__main__":
    unittest.main()
