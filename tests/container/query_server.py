#!/usr/bin/env python3
"""tests/container/query_server.py - the outside half of the image's smoke test: talk to a
running `serve` over HTTP as SageMaker's front end would, and exit non-zero with the reason at
the first answer that is wrong.

    query_server.py --url http://127.0.0.1:8080 --images DIR [--pid PID] [--timeout 180]

Waits for GET /ping to say 200 (503 while the model loads; connection refused before the
server listens; PID, when given, is the process whose death means the server is gone), then
POSTs every JPEG under DIR/<class>/ to /invocations and checks each answer: 200, JSON, one
prediction whose label is one of DIR's classes, probabilities that sum to 1, top_k led by the
predicted label. The model must get at least --min-accuracy of them right (trained on the
same sample, it gets about 0.95). Also checks that an unsupported Content-Type gets a JSON 415.
Standard library only: it runs with the host's python3.
"""
import argparse
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request


def fail(msg):
    print(f"query_server.py: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def request(url, data=None, headers=None, timeout=30):
    """(status, headers, body) for one request; HTTP error statuses are answers, not raised."""
    req = urllib.request.Request(url, data=data, headers=headers or {},
                                 method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def wait_healthy(base, pid, timeout):
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if pid is not None:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                fail(f"the server process {pid} exited before /ping said 200 (last: {last})")
        try:
            status, _, _ = request(base + "/ping", timeout=2)
            if status == 200:
                return
            last = f"/ping answered {status}"
        except OSError as e:
            last = f"/ping: {e}"
        time.sleep(0.2)
    fail(f"/ping did not answer 200 within {timeout} s (last: {last})")


def check_prediction(name, status, headers, body, classes):
    if status != 200:
        fail(f"{name}: status {status}, body {body[:300]!r}")
    ctype = headers.get("Content-Type", "")
    if not ctype.startswith("application/json"):
        fail(f"{name}: Content-Type {ctype!r}, expected application/json")
    try:
        answer = json.loads(body)
    except ValueError as e:
        fail(f"{name}: body is not JSON ({e}): {body[:300]!r}")
    preds = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(preds, list) or len(preds) != 1:
        fail(f"{name}: expected {{\"predictions\": [one]}}, got {body[:300]!r}")
    p = preds[0]
    label, probs, top = p.get("predicted_label"), p.get("probabilities"), p.get("top_k")
    if label not in classes:
        fail(f"{name}: predicted_label {label!r} is not one of {classes}")
    if not isinstance(probs, list) or len(probs) != len(classes) or not all(
            isinstance(x, (int, float)) and 0 <= x <= 1 for x in probs):
        fail(f"{name}: probabilities {probs!r} are not {len(classes)} numbers in [0, 1]")
    if not math.isclose(sum(probs), 1.0, abs_tol=2e-3):
        fail(f"{name}: probabilities sum to {sum(probs)}, not 1")
    if not isinstance(top, list) or not top or top[0].get("label") != label:
        fail(f"{name}: top_k {top!r} does not start with the predicted label {label!r}")
    return label


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--images", required=True, help="folder of <class>/*.jpg")
    ap.add_argument("--pid", type=int)
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--min-accuracy", type=float, default=0.7)
    args = ap.parse_args()
    base = args.url.rstrip("/")

    classes = sorted(d for d in os.listdir(args.images)
                     if os.path.isdir(os.path.join(args.images, d)))
    jpegs = [(c, os.path.join(args.images, c, f)) for c in classes
             for f in sorted(os.listdir(os.path.join(args.images, c)))
             if f.lower().endswith((".jpg", ".jpeg"))]
    if not jpegs:
        fail(f"no JPEG under {args.images}/<class>/")

    t0 = time.monotonic()
    wait_healthy(base, args.pid, args.timeout)
    print(f"query_server.py: /ping 200 after {time.monotonic() - t0:.1f} s")

    right = 0
    for truth, path in jpegs:
        with open(path, "rb") as f:
            body = f.read()
        status, headers, answer = request(base + "/invocations", body,
                                          {"Content-Type": "image/jpeg",
                                           "Accept": "application/json"})
        right += check_prediction(path, status, headers, answer, classes) == truth
    accuracy = right / len(jpegs)
    print(f"query_server.py: {len(jpegs)} JPEGs answered 200, {right} right ({accuracy:.3f})")
    if accuracy < args.min_accuracy:
        fail(f"accuracy {accuracy:.3f} is below {args.min_accuracy}: the model is not working")

    status, headers, body = request(base + "/invocations", b"hello",
                                    {"Content-Type": "text/plain"})
    if status != 415 or not headers.get("Content-Type", "").startswith("application/json"):
        fail(f"text/plain body: expected a JSON 415, got {status} {body[:200]!r}")
    print("query_server.py: unsupported Content-Type answered 415")


if __name__ == "__main__":
    main()
