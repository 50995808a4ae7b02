"""bench_serve_replicas.py - serve on the CPU with one replica (the default) and with several
(SERVE_REPLICAS), and optionally another build of serve (--base, e.g. main's) for the same
load: what the replicas and the batch staging cost or gain where there is no GPU.

The model is a seeded ResNet-18 (1000 classes, written as `train` would), the request one
500x375 JPEG. For each configuration, in alternating rounds (so that the neighbours' load on a
shared machine falls on all alike): requests/s and the serve process's CPU time per request
(utime + stime from /proc, the measure that stays meaningful when other jobs share the cores)
with 1 client (sequential requests) and with 8 (ApacheBench, keep-alive). Medians of the rounds.

usage: python bench/bench_serve_replicas.py [--base /path/to/other/serve] [--rounds 3]
                                            [--replicas 2] [--requests 48]
Needs: apache2-utils (ab).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_resnet50 as br  # noqa: E402
import bench_serve as bs  # noqa: E402


def make_model_dir(work):
    d = os.path.join(work, "model")
    os.makedirs(d)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), os.path.join(d, "model.pth"))
    with open(os.path.join(d, "metadata.json"), "w") as f:
        json.dump({"arch": "resnet18", "image_size": 224, "resize_size": 256,
                   "resize_mode": "crop"}, f)
    return d


def process_cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def run(model_dir, jpeg, binary, env, requests):
    """{clients: (requests/s, CPU ms per request)} for 1 and 8 clients."""
    p, base = bs.start_ours(model_dir, env, binary)
    url = base + "/invocations"
    try:
        bs.wait_until(lambda: bs.http_ok(base + "/ping"))
        bs.ab(url, jpeg, 4, 16, ctype="image/jpeg")  # warm every replica
        out = {}
        for clients, n in ((1, max(requests // 4, 8)), (8, requests)):
            c0 = process_cpu_s(p.pid)
            rps = bs.ab(url, jpeg, clients, n, ctype="image/jpeg")[0]
            out[clients] = (rps, (process_cpu_s(p.pid) - c0) / n * 1e3)
        return out
    finally:
        bs.stop_ours(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", help="another serve binary to measure alongside (e.g. main's)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--requests", type=int, default=48)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-serve-replicas-")
    model_dir, jpeg = make_model_dir(work), br.make_jpeg(work)
    configs = {}
    if a.base:
        configs["--base build, default"] = (a.base, {})
    configs["this build, 1 replica (default)"] = (None, {})
    configs[f"this build, {a.replicas} replicas"] = (None, {"SERVE_REPLICAS": str(a.replicas)})
    results = {name: [] for name in configs}
    for _ in range(a.rounds):
        for name, (binary, env) in configs.items():
            results[name].append(run(model_dir, jpeg, binary, env, a.requests))
    print(f"ResNet-18, one 500x375 JPEG per request, {os.cpu_count()} cores, medians of "
          f"{a.rounds} alternating rounds")
    print(f"{'':34} {'1 client':>8} {'CPU ms/req':>10} {'8 clients':>10} {'CPU ms/req':>10}")
    for name, rounds in results.items():
        cells = []
        for clients in (1, 8):
            cells.append(statistics.median(r[clients][0] for r in rounds))
            cells.append(statistics.median(r[clients][1] for r in rounds))
        print(f"{name:34} {cells[0]:8.1f} {cells[1]:10.1f} {cells[2]:10.1f} {cells[3]:10.1f}")


if __name__ == "__main__":
    main()
