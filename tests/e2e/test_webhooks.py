"""Webhooks end to end: PutWebhook with GITHUB_HMAC on a Git source; a push payload signed
with the secret starts the pipeline at the pushed commit; a wrong signature gets 401 and
starts nothing; a push to another branch is filtered out; every delivery is listed; IP
authentication; DeleteWebhook makes the url answer 404. The secret never comes back."""

import hashlib
import hmac
import json
import os
import shutil
import tempfile
import unittest
import urllib.error
import urllib.request

import harness
from harness import action, commands, pipeline, wait_for
from test_triggers import Repo

SECRET = "webhook-secret-for-tests"


def sign(body, secret=SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(url, payload, headers=None):
    body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    h = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
    h.update(headers or {})
    req = urllib.request.Request(url, data=body, headers=h, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


def signed(payload, secret=SECRET):
    body = json.dumps(payload).encode()
    return body, {"X-Hub-Signature-256": sign(body, secret)}


class WebhooksTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pw-e2e-webhooks-")
        self.repo = Repo(self.tmp)
        self.first = self.repo.commit({"README": "one\n"}, "first")
        self.server = harness.Server()
        self.server.ok("CreatePipeline", {"pipeline": pipeline("hooked", [
            ("Source", [action("Src", "Source", "Git", config={
                "RepositoryPath": "file://" + self.repo.bare, "BranchName": "main",
                "PollForSourceChanges": "false"}, outputs=["Code"])]),
            ("Build", [commands("Check", ["test -f README"], inputs=["Code"])])])})
        first = wait_for(lambda: self.executions(), what="the first execution")[0]
        harness.wait_execution(self.server, "hooked", first["pipelineExecutionId"])

    def tearDown(self):
        self.server.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def executions(self):
        return self.server.ok("ListPipelineExecutions",
                              {"pipelineName": "hooked"})["pipelineExecutionSummaries"]

    def put_webhook(self, name, authentication, configuration):
        return self.server.ok("PutWebhook", {"webhook": {
            "name": name, "targetPipeline": "hooked", "targetAction": "Src",
            "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{BranchName}"}],
            "authentication": authentication,
            "authenticationConfiguration": configuration},
            "tags": [{"key": "team", "value": "build"}]})["webhook"]

    def deliveries(self, name):
        return self.server.ok("ListWebhookDeliveries", {"name": name},
                              target_prefix="Pipewright_20261125.")["deliveries"]

    def test_github_hmac_webhook(self):
        hook = self.put_webhook("github", "GITHUB_HMAC", {"SecretToken": SECRET})
        url = hook["url"]
        self.assertIn("/_webhooks/", url)
        self.assertTrue(url.startswith(self.server.endpoint), url)
        self.assertEqual(hook["definition"]["authenticationConfiguration"]["SecretToken"], "****")
        self.assertEqual(hook["arn"],
                         "arn:aws:codepipeline:us-east-1:123456789012:webhook:github")
        self.assertEqual(hook["tags"], [{"key": "team", "value": "build"}])

        second = self.repo.commit({"README": "two\n"}, "second")
        push = {"ref": "refs/heads/main", "before": self.first, "after": second,
                "repository": {"full_name": "octo/app"}}
        status, out = post(url, *signed(push))
        self.assertEqual(status, 200, out)
        execution = out["pipelineExecutionId"]
        self.assertEqual(harness.wait_execution(self.server, "hooked", execution), "Succeeded")
        got = self.server.ok("GetPipelineExecution", {"pipelineName": "hooked",
                                                      "pipelineExecutionId": execution})
        self.assertEqual(got["pipelineExecution"]["trigger"]["triggerType"], "Webhook")
        self.assertIn(hook["arn"], got["pipelineExecution"]["trigger"]["triggerDetail"])
        self.assertEqual(got["pipelineExecution"]["artifactRevisions"][0]["revisionId"], second)
        count = len(self.executions())

        # A wrong signature (another secret) and no signature: 401, nothing starts.
        # Every refusal is a JSON error with a type, as the API's (before: message only).
        status, out = post(url, *signed(push, "not-the-secret"))
        self.assertEqual((status, out.get("__type")), (401, "AccessDeniedException"), out)
        status, out = post(url, json.dumps(push).encode())
        self.assertEqual((status, out.get("__type")), (401, "AccessDeniedException"), out)
        # A push to another branch, correctly signed: filtered out.
        status, out = post(url, *signed(dict(push, ref="refs/heads/dev")))
        self.assertEqual(status, 200, out)
        self.assertIn("filtered out", out["message"])
        self.assertNotIn("pipelineExecutionId", out)
        self.assertEqual(len(self.executions()), count)

        listed = self.deliveries("github")
        self.assertEqual([d["status"] for d in listed], [200, 401, 401, 200])
        self.assertEqual(listed[-1]["pipelineExecutionId"], execution)
        self.assertEqual(listed[-1]["commit"], second)
        hooks = self.server.ok("ListWebhooks")["webhooks"]
        self.assertEqual([h["definition"]["name"] for h in hooks], ["github"])
        self.assertIn("lastTriggered", hooks[0])
        everything = json.dumps([hooks, listed])
        self.assertNotIn(SECRET, everything)
        with open(os.path.join(self.server.data_dir, "server.log")) as log:
            self.assertNotIn(SECRET, log.read())
        # The real AWS CLI reads ListWebhooks.
        cli = harness.aws(self.server, "list-webhooks")
        self.assertEqual(cli.code, 0, cli.stderr)
        self.assertEqual(cli.json()["webhooks"][0]["url"], url)

        # Deleted: the url is gone and nothing starts.
        self.server.ok("DeleteWebhook", {"name": "github"})
        status, out = post(url, *signed(push))
        self.assertEqual((status, out.get("__type")), (404, "WebhookNotFoundException"), out)
        self.assertEqual(len(self.executions()), count)
        self.assertEqual(self.server.ok("ListWebhooks")["webhooks"], [])
        self.server.ok("DeleteWebhook", {"name": "github"})  # Again: still fine, as AWS.

    def test_ip_and_unauthenticated_webhooks(self):
        hook = self.put_webhook("ip", "IP", {"AllowedIPRange": "10.0.0.0/8"})
        second = self.repo.commit({"README": "two\n"}, "second")
        push = {"ref": "refs/heads/main", "before": self.first, "after": second}
        status, out = post(hook["url"], push)
        self.assertEqual((status, out.get("__type")), (403, "AccessDeniedException"), out)
        hook = self.put_webhook("ip", "IP", {"AllowedIPRange": "127.0.0.0/8"})
        status, out = post(hook["url"], push)
        self.assertEqual(status, 200, out)
        self.assertIn("pipelineExecutionId", out)
        open_hook = self.put_webhook("open", "UNAUTHENTICATED", {})
        status, out = post(open_hook["url"], {"ref": "refs/heads/main", "after": "0" * 40})
        self.assertEqual((status, out["message"]), (200, "ignored: refs/heads/main was deleted."))

    def test_a_deeply_nested_payload_is_refused_before_parsing(self):
        # Before: no nesting bound (25 MiB of '[' kept a handler thread busy ~11 s).
        hook = self.put_webhook("deep", "GITHUB_HMAC", {"SecretToken": SECRET})
        before = len(self.executions())
        body = b'{"ref":"refs/heads/main","x":' + b"[" * 100000 + b"]" * 100000 + b"}"
        status, out = post(hook["url"], body, {"X-Hub-Signature-256": sign(body)})
        self.assertEqual((status, out.get("__type")), (400, "ValidationException"), out)
        self.assertIn("deeper than 64 levels", out["message"])
        # 64 levels are fine (the push itself is then looked at as usual).
        second = self.repo.commit({"README": "two\n"}, "second")
        body = json.dumps({"ref": "refs/heads/main", "before": self.first, "after": second,
                           "x": json.loads("[" * 62 + "]" * 62)}).encode()
        status, out = post(hook["url"], body, {"X-Hub-Signature-256": sign(body)})
        self.assertEqual(status, 200, out)
        self.assertEqual(len(self.executions()), before + 1)

    def test_bodies_are_not_held_in_memory_and_unknown_urls_are_refused_unread(self):
        # Before: the body was read into memory first, whatever the url: 20 connections that
        # sent 25 MiB each to made-up urls and stalled took the server from 24 to 536 MB.
        import socket
        host, port = self.server.endpoint.split("://", 1)[1].rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"POST /_webhooks/" + b"0" * 32 + b" HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 26000000\r\n\r\n")
        reply = s.recv(65536).decode(errors="replace")
        s.close()
        self.assertTrue(reply.startswith("HTTP/1.1 404"), reply)
        self.assertIn("No webhook has this url", reply)
        # A known url: bodies go to disk while they arrive, not to the server's memory.
        hook = self.put_webhook("big", "GITHUB_HMAC", {"SecretToken": SECRET})
        path = hook["url"].split("://", 1)[1].split("/", 1)[1]

        def rss_kib():
            with open("/proc/%d/status" % self.server.proc.pid) as f:
                return int([line for line in f if line.startswith("VmRSS:")][0].split()[1])
        before = rss_kib()
        socks = []
        chunk = b"[" + b" " * (1 << 20)
        for _ in range(8):
            c = socket.create_connection((host, int(port)), timeout=10)
            socks.append(c)
            c.sendall(("POST /%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 26000000\r\n\r\n" % path).encode())
            for _ in range(4):
                c.sendall(chunk)
        uploads = os.path.join(self.server.data_dir, "buckets", ".tmp")
        wait_for(lambda: sum(os.path.getsize(os.path.join(uploads, f))
                             for f in os.listdir(uploads)) >= 8 * 4 * len(chunk) - (1 << 20),
                 what="the bodies to reach the upload directory")
        grown = rss_kib() - before
        for c in socks:
            c.close()
        self.assertLess(grown, 12 * 1024, "the server grew %d KiB for 32 MiB of bodies" % grown)

    def test_put_webhook_refusals(self):
        def refused(webhook, error):
            body = {"name": "bad", "targetPipeline": "hooked", "targetAction": "Src",
                    "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{BranchName}"}],
                    "authentication": "GITHUB_HMAC",
                    "authenticationConfiguration": {"SecretToken": "x"}}
            body.update(webhook)
            status, out = self.server.call("PutWebhook", {"webhook": body})
            self.assertEqual((status, out["__type"]), (400, error), out)
            return out["message"]

        self.assertIn("$.commits[*]", refused({"filters": [{"jsonPath": "$.commits[*].id"}]},
                                             "InvalidWebhookFilterPatternException"))
        self.assertIn("{Branch}", refused(
            {"filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}]},
            "InvalidWebhookFilterPatternException"))
        refused({"authenticationConfiguration": {}},
                "InvalidWebhookAuthenticationParametersException")
        refused({"authentication": "IP", "authenticationConfiguration": {"AllowedIPRange": "x"}},
                "InvalidWebhookAuthenticationParametersException")
        refused({"targetPipeline": "missing"}, "PipelineNotFoundException")
        refused({"targetAction": "Check"}, "ValidationException")
        status, out = self.server.call("RegisterWebhookWithThirdParty", {"webhookName": "nope"})
        self.assertEqual(out["__type"], "WebhookNotFoundException")
        self.put_webhook("github", "GITHUB_HMAC", {"SecretToken": SECRET})
        self.server.ok("RegisterWebhookWithThirdParty", {"webhookName": "github"})
        self.server.ok("DeregisterWebhookWithThirdParty", {"webhookName": "github"})


if __name__ == "__main__":
    unittest.main()
