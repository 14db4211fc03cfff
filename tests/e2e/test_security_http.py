"""The HTTP front as an attacker on the network sees it: slow and idle
sockets, byte-range amplification, huge unsigned uploads, a second server on
the same port, secrets that differ between processes, and TLS with the real
AWS CLI and boto3.

Each test here failed on the cpp-httplib front this replaced (8 dripping
sockets stopped the API; 2,700 ranges returned ×16,441 the request; a
250 MB unsigned PUT was read whole; a second server shared the port).
"""

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

from harness import AWS, PIPEWRIGHT, Server, _env

sys.path.insert(0, "/usr/lib/python3/dist-packages")


def host_port(server):
    hp = server.endpoint.split("://", 1)[1]
    host, port = hp.rsplit(":", 1)
    return host, int(port)


def timed_call(server, op="ListPipelines"):
    t0 = time.monotonic()
    status, out = server.call(op, {})
    return status, out, time.monotonic() - t0


def read_reply(sock, timeout=10):
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return head.decode(errors="replace"), rest
    except socket.timeout:
        return head_or_empty(data), b""


def head_or_empty(data):
    return data.partition(b"\r\n\r\n")[0].decode(errors="replace")


class SlowAndIdleClientsTest(unittest.TestCase):
    def setUp(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
        self.server = Server()
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        self.server.close()

    def open_socket(self):
        s = socket.create_connection(host_port(self.server), timeout=10)
        self.socks.append(s)
        return s

    def test_eight_dripping_sockets_do_not_stop_the_api(self):
        # Each sends one header byte at a time and never finishes.
        for s in (self.open_socket() for _ in range(8)):
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        for _ in range(20):
            for s in self.socks:
                s.sendall(b"a")
            status, _, took = timed_call(self.server)
            self.assertEqual(status, 200)
            self.assertLess(took, 1.0, "another client waited %.3f s" % took)

    def test_a_thousand_idle_sockets_do_not_time_others_out(self):
        for _ in range(1000):
            self.open_socket()
        worst = 0
        for _ in range(20):
            status, _, took = timed_call(self.server)
            self.assertEqual(status, 200)
            worst = max(worst, took)
        self.assertLess(worst, 1.0, "another client waited %.3f s" % worst)
        # The server keeps at most its per-client cap of them open.
        open_now = sum(1 for s in self.socks if not self.closed(s))
        self.assertLessEqual(open_now, 256 + 8)

    @staticmethod
    def closed(s):
        s.setblocking(False)
        try:
            return s.recv(1) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            s.setblocking(True)

    def test_many_byte_ranges_are_not_multiplied(self):
        s = self.open_socket()
        ranges = ",".join(["0-"] * 2700)
        s.sendall(("GET /console/console.js HTTP/1.1\r\nHost: x\r\nRange: bytes=%s\r\n"
                   "Connection: close\r\n\r\n" % ranges).encode())
        head, body = read_reply(s)
        self.assertIn(" 200 ", head.split("\r\n")[0])
        self.assertLess(len(body), 200_000, "reply of %d bytes for one file" % len(body))

    def test_huge_headers_are_refused(self):
        s = self.open_socket()
        s.sendall(b"GET /console/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        head, body = read_reply(s)
        self.assertIn("431", head.split("\r\n")[0])
        self.assertEqual(json.loads(body)["__type"], "RequestHeaderFieldsTooLarge")
        status, _, _ = timed_call(self.server)
        self.assertEqual(status, 200)


class StalledBodiesTest(unittest.TestCase):
    """Connections that send headers and the first byte of a large body, then nothing, used to
    hold every slot until their body deadline (30 s + length / 64 KiB/s: 45 s for 1 MB, 426 s
    for a 26 MB webhook body):
    new clients were reset all that time. Now a body that lags is evicted as an idle
    connection is, and one that stops ends after the stall timeout."""

    def setUp(self):
        self.server = Server(extra_args=("--max-connections", "40",
                                         "--max-connections-per-client", "10"))
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        self.server.close()

    def stall(self, source):
        s = socket.socket()
        self.socks.append(s)
        s.bind((source, 0))
        s.connect(host_port(self.server))
        # An API call just under the 1 MiB body limit, begun and never finished (this server
        # has no keys; with keys, a known key id is all the header phase checks).
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
                  b"X-Amz-Target: CodePipeline_20150709.ListPipelines\r\n"
                  b"Content-Length: 1000000\r\n\r\n{")

    def test_stalled_bodies_from_four_addresses_do_not_lock_others_out(self):
        sources = ["127.0.0.%d" % i for i in range(2, 6)]
        try:
            for src in sources:
                for _ in range(10):
                    self.stall(src)
        except OSError as e:
            self.skipTest("cannot connect from 127.0.0.2-5 here: %s" % e)
        t0 = time.monotonic()
        served = None
        while served is None and time.monotonic() - t0 < 20:
            try:
                status, _ = self.server.call("ListPipelines", {})
                if status == 200:
                    served = time.monotonic() - t0
            except OSError:
                time.sleep(0.05)  # Poll interval: the slots are evictable after a second.
        self.assertIsNotNone(served, "no client was served for 20 s")
        print("\nserved after %.2f s with 40 stalled bodies" % served, file=sys.stderr)
        closed = sum(1 for s in self.socks if SlowAndIdleClientsTest.closed(s))
        self.assertGreaterEqual(closed, 1)


class UnsignedUploadsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pw-sec-http-")
        self.keys = os.path.join(self.tmp, "keys")
        with open(self.keys, "w") as f:
            f.write("AKIDPIPEWRIGHT:pipewright-secret\n")
        self.server = Server(extra_args=("--auth-keys-file", self.keys))

    def tearDown(self):
        self.server.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def send_head_only(self, head):
        s = socket.create_connection(host_port(self.server), timeout=10)
        try:
            s.sendall(head)
            t0 = time.monotonic()
            reply_head, body = read_reply(s, timeout=5)
            return reply_head, body, time.monotonic() - t0
        finally:
            s.close()

    def test_unsigned_250_mb_put_is_refused_before_its_body_is_read(self):
        head, body, took = self.send_head_only(
            b"PUT /pipewright-artifacts/jobs/x/out.zip HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 250000000\r\nExpect: 100-continue\r\n\r\n")
        self.assertIn(" 403 ", head.split("\r\n")[0], head)
        self.assertIn(b"<Error>", body)
        self.assertLess(took, 2.0)
        # Uploads stream to <data dir>/buckets/.tmp: nothing was written there.
        uploads = os.path.join(self.server.data_dir, "buckets", ".tmp")
        leftovers = os.listdir(uploads) if os.path.isdir(uploads) else []
        self.assertEqual(leftovers, [])

    def test_unsigned_250_mb_api_call_is_refused_before_its_body_is_read(self):
        head, body, took = self.send_head_only(
            b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: CodePipeline_20150709.ListPipelines\r\n"
            b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 250000000\r\n\r\n")
        status_line = head.split("\r\n")[0]
        self.assertTrue(" 413 " in status_line or " 403 " in status_line, head)
        self.assertIn(json.loads(body)["__type"],
                      ("RequestEntityTooLargeException", "MissingAuthenticationToken"))
        self.assertLess(took, 2.0)

    def test_logs_need_credentials(self):
        head, body, _ = self.send_head_only(
            b"GET /logs/00000000-0000-4000-8000-000000000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(" 403 ", head.split("\r\n")[0], head)


class PortAndSecretsTest(unittest.TestCase):
    def test_second_server_on_the_same_port_exits_non_zero(self):
        first = Server()
        try:
            host, port = host_port(first)
            d = tempfile.mkdtemp(prefix="pw-e2e-")
            p = subprocess.run([PIPEWRIGHT, "serve", "--listen", "%s:%d" % (host, port),
                                "--data-dir", d, "--sandbox", "none"],
                               capture_output=True, text=True, timeout=30)
            shutil.rmtree(d, ignore_errors=True)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("already in use", p.stderr)
            status, _, _ = timed_call(first)
            self.assertEqual(status, 200)
        finally:
            first.close()

    def test_two_servers_started_together_draw_different_ids(self):
        a, b = Server(), Server()
        try:
            ids = []
            for srv in (a, b):
                for _ in range(50):
                    r = urllib.request.Request(srv.endpoint + "/", data=b"{}", method="POST",
                                               headers={"X-Amz-Target":
                                                        "CodePipeline_20150709.ListPipelines"})
                    with urllib.request.urlopen(r, timeout=10) as resp:
                        ids.append(resp.headers["x-amzn-RequestId"])
            self.assertEqual(len(set(ids)), len(ids))
        finally:
            a.close()
            b.close()


def make_cert(directory):
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


class TlsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pw-tls-")
        self.cert, self.key = make_cert(self.tmp)
        self.server = Server(extra_args=("--tls-cert", self.cert, "--tls-key", self.key))

    def tearDown(self):
        self.server.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_serves_https(self):
        self.assertTrue(self.server.endpoint.startswith("https://"), self.server.endpoint)

    def test_aws_cli_works_with_ca_bundle(self):
        p = subprocess.run([AWS, "--endpoint-url", self.server.endpoint, "--ca-bundle", self.cert,
                            "codepipeline", "list-pipelines"],
                           capture_output=True, text=True, env=_env(), timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["pipelines"], [])
        # Without the CA the certificate is refused by the client.
        p = subprocess.run([AWS, "--endpoint-url", self.server.endpoint, "codepipeline",
                            "list-pipelines"], capture_output=True, text=True, env=_env(),
                           timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("SSL", p.stderr)

    def test_pipewright_cli_works_with_ca_bundle(self):
        p = subprocess.run([PIPEWRIGHT, "list-pipelines", "--endpoint-url", self.server.endpoint,
                            "--ca-bundle", self.cert], capture_output=True, text=True, env=_env(),
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["pipelines"], [])
        p = subprocess.run([PIPEWRIGHT, "list-pipelines", "--endpoint-url", self.server.endpoint],
                           capture_output=True, text=True, env=_env(), timeout=60)
        self.assertNotEqual(p.returncode, 0)

    def test_boto3_works_with_verify(self):
        code = ("import boto3,sys\n"
                "c=boto3.client('codepipeline',endpoint_url=sys.argv[1],verify=sys.argv[2],"
                "region_name='us-east-1',aws_access_key_id='x',aws_secret_access_key='y')\n"
                "for i in range(3): print(len(c.list_pipelines()['pipelines']))\n")
        p = subprocess.run(["/usr/bin/python3", "-c", code, self.server.endpoint, self.cert],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split(), ["0", "0", "0"])

    def test_old_protocols_and_plain_http_are_refused(self):
        host, port = host_port(self.server)
        p = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (host, port),
                            "-tls1_1", "-brief"], input="", capture_output=True, text=True,
                           timeout=30)
        self.assertNotEqual(p.returncode, 0)
        s = socket.create_connection((host, port), timeout=10)
        try:
            s.sendall(b"GET /console/ HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(10)
            data = s.recv(100)
            self.assertFalse(data.startswith(b"HTTP/1.1 200"))
        except (ConnectionResetError, socket.timeout):
            pass
        finally:
            s.close()
        # The server still answers TLS clients afterwards.
        p = subprocess.run([AWS, "--endpoint-url", self.server.endpoint, "--ca-bundle", self.cert,
                            "codepipeline", "list-pipelines"],
                           capture_output=True, text=True, env=_env(), timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()
