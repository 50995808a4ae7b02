"""bench_resnet50.py - serving ResNet-50 at 224 px, the size the dog-breeds seeds deploy: our
`serve` against TorchServe running the seeds' inference.py-style handler
(bench/torchserve_handler.py: PIL decode, Resize(256) + CenterCrop(224), Normalize, softmax), in
one run on this machine, with the same weights (torchvision's resnet50 with 133 classes, seeded
initialisation; nothing is downloaded) and one 500x375 JPEG per request.

For each side: start to healthy /ping and to the first answer, requests/s with p50 and p99 at 1
and 8 clients (ApacheBench, keep-alive), resident memory of the process tree, and the
throughput as a fraction of this machine's ceiling: a 2048x2048 fp32 matrix product through
PyTorch on the same threads gives GFLOP/s, and a ResNet-50 forward at 224 costs 8.2 GFLOP (4.1
G multiply-adds), so ceiling images/s = GFLOP/s / 8.2. TorchServe runs with 1 and with 2
workers (threads split between them); the better is the one compared. Then the ratios.

usage: python bench/bench_resnet50.py [--requests 96]
Needs what bench_serve.py needs (ab, Java, torchserve, torch-model-archiver).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench_serve as bs  # noqa: E402

FORWARD_GFLOP = 8.2
CLASSES = 133


def make_model_dir(work):
    """resnet50 with 133 classes, seeded, as `train` would write it (model.pth + metadata.json)."""
    d = os.path.join(work, "model")
    os.makedirs(d)
    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None, num_classes=CLASSES)
    torch.save(net.state_dict(), os.path.join(d, "model.pth"))
    meta = {"arch": "resnet50", "num_classes": CLASSES,
            "class_names": [f"breed_{i:03d}" for i in range(CLASSES)], "image_size": 224,
            "resize_size": 256, "resize_mode": "crop", "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225]}
    with open(os.path.join(d, "metadata.json"), "w") as f:
        json.dump(meta, f)
    return d


def make_jpeg(work):
    """A 500x375 photo-like JPEG (smooth colour fields plus grain), quality 90."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:375, 0:500].astype(np.float32)
    rgb = np.stack([120 + 80 * np.sin(x / 37 + c) * np.cos(y / 53 - c) for c in range(3)], -1)
    rgb += rng.normal(0, 12, rgb.shape)
    path = os.path.join(work, "request.jpg")
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def matmul_gflops(threads):
    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(3):
        a @ b
    t0, n = time.perf_counter(), 10
    for _ in range(n):
        a @ b
    return 2 * 2048 ** 3 * n / (time.perf_counter() - t0) / 1e9


def measure(pid, url, jpeg, requests, healthy, first):
    bs.ab(url, jpeg, 2, 8, ctype="image/jpeg")  # warm every worker
    r1 = bs.ab(url, jpeg, 1, max(requests // 4, 8), ctype="image/jpeg")
    r8 = bs.ab(url, jpeg, 8, requests, ctype="image/jpeg")
    return {"healthy_s": healthy, "first_s": first, "c1": r1, "c8": r8,
            "rss_mib": bs.tree_rss_mib(pid)}


def run_ours(model_dir, jpeg, requests):
    p, base = bs.start_ours(model_dir)
    body = open(jpeg, "rb").read()
    try:
        healthy = bs.wait_until(lambda: bs.http_ok(base + "/ping"))
        first = bs.wait_until(lambda: bs.http_ok(base + "/invocations", body, "image/jpeg"))
        return measure(p.pid, base + "/invocations", jpeg, requests, healthy, healthy + first)
    finally:
        bs.stop_ours(p)


def run_torchserve(model_dir, jpeg, requests, work, workers):
    threads = max(1, (os.cpu_count() or 1) // workers)
    p, base = bs.start_torchserve(model_dir, work, "resnet50", workers,
                                  env={"OMP_NUM_THREADS": str(threads)})
    body = open(jpeg, "rb").read()
    try:
        healthy = bs.wait_until(lambda: bs.http_ok(base + "/ping"), timeout=300)
        first = bs.wait_until(lambda: bs.http_ok(base + "/predictions/resnet50", body, "image/jpeg"),
                              timeout=300)
        return measure(p.pid, base + "/predictions/resnet50", jpeg, requests, healthy,
                       healthy + first)
    finally:
        bs.stop_torchserve(p)


def alternate_one_client(model_dir, jpeg, work, rounds):
    """Ours and TorchServe (1 worker, its better 1-client setting) both running, measured in
    turn at 1 client, `rounds` times: on a machine whose speed drifts, the alternation gives
    each side the same conditions. Returns {side: [(req/s, p50, p99), ...]}."""
    ours, ours_base = bs.start_ours(model_dir)
    ts, ts_base = bs.start_torchserve(model_dir, work, "resnet50", 1,
                                      env={"OMP_NUM_THREADS": str(os.cpu_count() or 1)})
    urls = {"ours": ours_base + "/invocations",
            "torchserve 1w": ts_base + "/predictions/resnet50"}
    body = open(jpeg, "rb").read()
    out = {side: [] for side in urls}
    try:
        for url in urls.values():
            bs.wait_until(lambda: bs.http_ok(url, body, "image/jpeg"), timeout=300)
        for _ in range(rounds):
            for side, url in urls.items():
                out[side].append(bs.ab(url, jpeg, 1, 32, ctype="image/jpeg"))
    finally:
        bs.stop_ours(ours)
        bs.stop_torchserve(ts)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=96, help="requests at 8 clients (a quarter at 1)")
    p.add_argument("--skip-torchserve", action="store_true", help="ours and the ceiling only")
    p.add_argument("--alternate", type=int, default=0, metavar="ROUNDS",
                   help="then ROUNDS rounds of 32 requests at 1 client, ours and TorchServe in turn")
    a = p.parse_args()
    tools = ("ab",) if a.skip_torchserve else ("ab", "java", "torchserve", "torch-model-archiver")
    for tool in tools:
        if not shutil.which(tool):
            sys.exit(f"missing {tool}: apt-get install apache2-utils openjdk-17-jre-headless; "
                     f"pip install torchserve==0.12.0 torch-model-archiver==0.12.0 pyyaml")
    cores = os.cpu_count() or 1
    gflops = matmul_gflops(cores)
    ceiling = gflops / FORWARD_GFLOP
    work = tempfile.mkdtemp(prefix="bench-r50-")
    model_dir, jpeg = make_model_dir(work), make_jpeg(work)
    ours = run_ours(model_dir, jpeg, a.requests)
    sides = {"ours": ours}
    if not a.skip_torchserve:
        ts = {w: run_torchserve(model_dir, jpeg, a.requests, work, w) for w in (1, 2)}
        sides.update({f"torchserve {w}w": ts[w] for w in ts})
    print(f"ResNet-50, {CLASSES} classes, one 500x375 JPEG per request, {cores} cores; "
          f"{a.requests} requests at 8 clients, {max(a.requests // 4, 8)} at 1")
    print(f"ceiling: 2048x2048 fp32 matmul {gflops:.1f} GFLOP/s -> {ceiling:.2f} ResNet-50 "
          f"forwards/s")
    names = list(sides)
    print(f"{'':30}" + "".join(f"{n:>16}" for n in names))
    rows = [("start to healthy /ping (s)", "healthy_s", None), ("start to first answer (s)", "first_s", None)]
    for c in ("c1", "c8"):
        rows += [(f"{c[1:]} client(s): requests/s", c, 0), (f"{c[1:]} client(s): p50 ms", c, 1),
                 (f"{c[1:]} client(s): p99 ms", c, 2)]
    rows.append(("resident memory (MiB)", "rss_mib", None))
    for label, key, idx in rows:
        vals = [sides[n][key] if idx is None else sides[n][key][idx] for n in names]
        print(f"{label:30}" + "".join(f"{v:16.2f}" for v in vals))
    print(f"{'8 clients: share of ceiling':30}" +
          "".join(f"{sides[n]['c8'][0] / ceiling:16.0%}" for n in names))
    if not a.skip_torchserve:
        # Each figure against TorchServe's better setting for that figure.
        hi = lambda key, i: max(ts[w][key][i] for w in ts)  # noqa: E731
        lo = lambda f: min(f(ts[w]) for w in ts)  # noqa: E731
        print(f"\nours against TorchServe's better setting for each figure: requests/s at 1 client "
              f"{ours['c1'][0] / hi('c1', 0):.2f}x, at 8 clients {ours['c8'][0] / hi('c8', 0):.2f}x; "
              f"p99 at 8 clients {lo(lambda t: t['c8'][2]) / ours['c8'][2]:.2f}x lower; first "
              f"answer {lo(lambda t: t['first_s']) / ours['first_s']:.1f}x sooner; memory "
              f"{lo(lambda t: t['rss_mib']) / ours['rss_mib']:.1f}x less")
    if a.alternate and not a.skip_torchserve:
        alt = alternate_one_client(model_dir, jpeg, work, a.alternate)
        print(f"\n1 client, {a.alternate} alternating rounds of 32 requests (req/s, p50 ms):")
        for side, runs in alt.items():
            print(f"{side:16}" + "  ".join(f"{r[0]:6.2f} ({r[1]:.0f})" for r in runs))


if __name__ == "__main__":
    main()
