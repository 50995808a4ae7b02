"""serve_process.py - one real `serve` process for the end-to-end tests: started on a free port
with the environment given, waited for until /ping answers 200, spoken to over HTTP, stopped
with SIGTERM. Shared by the single-model tests (test_serve.py, test_serve_compat.py,
test_serve_urls.py), the multi-model ones (test_multi_model.py) and test_hostile.py.

Environment: SERVE_BIN (the program, default build/bin/serve).
"""
import http.client
import os
import signal
import socket
import subprocess
import time

SERVE = os.environ.get("SERVE_BIN", "build/bin/serve")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """`serve` on OPT_ML=opt_ml. env adds to (a value of None removes from) this process's
    environment; wait: block until /ping answers 200 (else the caller checks the exit)."""

    def __init__(self, opt_ml, env=None, wait=True, timeout=60):
        self.port = free_port()
        e = dict(os.environ, OPT_ML=str(opt_ml), SAGEMAKER_BIND_TO_PORT=str(self.port))
        e.update(env or {})
        e = {k: v for k, v in e.items() if v is not None}
        # One log per server: a test may run several on the same tree.
        self.log_path = os.path.join(str(opt_ml), f"serve-{self.port}.log")
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen([SERVE, "serve"], env=e, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.pings = []  # the /ping answers seen while waiting
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout=60):
        """Seconds until /ping answered 200; fails with the log if serve exits or never does."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}: {self.output()}")
            try:
                status, _, _ = self.request("GET", "/ping", timeout=2)
                self.pings.append(status)
                if status == 200:
                    return time.time() - t0
            except OSError:
                pass
            time.sleep(0.01)
        raise AssertionError("serve never became healthy: " + self.output())

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers, body) of one request on a fresh connection."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def invoke(self, body, content_type, accept=None, extra=None):
        h = {"Content-Type": content_type}
        if accept:
            h["Accept"] = accept
        h.update(extra or {})
        return self.request("POST", "/invocations", body, h)

    def output(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def exit_status(self, timeout=60):
        """The exit status of a serve expected to stop by itself (a refused setting); one
        still running after `timeout` is killed, and the wait's TimeoutExpired fails the test."""
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def stop(self):
        """SIGTERM if still running; the exit status. One that is not 0 prints the log's end,
        so that a rare failure at shutdown (seen once under ASan: SIGABRT) shows its cause."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        rc = self.proc.returncode
        if rc != 0:
            print(f"serve exited {rc}; its log ends:\n{self.output()[-4000:]}")
        return rc
