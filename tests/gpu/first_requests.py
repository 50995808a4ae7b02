"""first_requests.py - the latency of the first request at each batch size, then of a second
one at the same size, against a freshly started `serve`: on a GPU cuDNN's benchmark mode
picks kernels per input shape on first sight, so a server warmed up at only one batch size
answers the first request of every other size late. One request is an NPY array of N images
[N,3,SIZE,SIZE] (uint8 pixels), which the server runs as one batch of N. Prints one JSON line:
{"sizes": [...], "first_ms": [...], "second_ms": [...]}. Standard library only.

usage: python first_requests.py PORT SIZE [N ...]   (default N: 1 2 4 8 16 32)
"""
import http.client
import json
import random
import struct
import sys
import time


def npy_uint8(shape):
    """An NPY version 1.0 file of random uint8 values of that shape."""
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (%s), }" % "".join(
        f"{d}, " for d in shape)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"  # total header a multiple of 64
    count = 1
    for d in shape:
        count *= d
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + \
        random.Random(7).randbytes(count)


def post(port, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t = time.perf_counter()
    conn.request("POST", "/invocations", body,
                 {"Content-Type": "application/x-npy", "Accept": "application/json"})
    r = conn.getresponse()
    r.read()
    ms = (time.perf_counter() - t) * 1000
    conn.close()
    if r.status != 200:
        raise SystemExit(f"status {r.status} for a batch of {len(body)} bytes")
    return round(ms, 1)


def main():
    port, size = int(sys.argv[1]), int(sys.argv[2])
    sizes = [int(a) for a in sys.argv[3:]] or [1, 2, 4, 8, 16, 32]
    first, second = [], []
    for n in sizes:
        body = npy_uint8((n, 3, size, size))
        first.append(post(port, body))
        second.append(post(port, body))
    print(json.dumps({"sizes": sizes, "first_ms": first, "second_ms": second}))


if __name__ == "__main__":
    main()
