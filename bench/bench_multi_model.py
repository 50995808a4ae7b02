"""bench_multi_model.py - `serve` as a multi-model endpoint (SAGEMAKER_MULTI_MODEL=true).

1. Load and first answer: N LeNet classifiers (state dicts saved by Python, each made to
   answer its own class) are loaded one after the other with POST /models, each followed at
   once by its first invocation; reports the time per load, per first answer, and in all.
2. Swapping: a memory budget (SERVE_MODEL_MEMORY_MB) that holds only a quarter of the models,
   and C clients invoking models picked at random; a client that gets 404 loads the model
   (POST /models, as SageMaker does on a miss; the server unloads the least recently used idle
   ones to make room), retries on 507 and 409, then invokes. Reports invocations/s, latency,
   how many needed a load, and the server's resident memory. Every answer is checked.

usage: python bench/bench_multi_model.py [--models 200] [--clients 8] [--seconds 10]
Uses build/bin/serve (SERVE_BIN) and the project's venv (torch, numpy).
"""
import argparse
import http.client
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
from serve_process import free_port  # noqa: E402
from reference_models import make_model  # noqa: E402

SERVE = os.environ.get("SERVE_BIN", os.path.join(ROOT, "build", "bin", "serve"))



def make_models(work, n, classes):
    torch.manual_seed(0)
    base = make_model("lenet", classes).state_dict()
    dirs = []
    for i in range(n):
        sd = {k: v.clone() for k, v in base.items()}
        sd["fc3.weight"].zero_()
        sd["fc3.bias"].zero_()
        sd["fc3.bias"][i % classes] = 10.0
        d = os.path.join(work, "models", f"m{i:04d}", "model")
        os.makedirs(d)
        torch.save(sd, os.path.join(d, "model.pth"))
        dirs.append(d)
    return dirs


class Client:
    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def start_server(work, env):
    port = free_port()
    e = dict(os.environ, OPT_ML=work, SAGEMAKER_BIND_TO_PORT=str(port), SAGEMAKER_MULTI_MODEL="true")
    e.update(env)
    log = open(os.path.join(work, f"serve-{port}.log"), "w")
    proc = subprocess.Popen([SERVE, "serve"], env=e, stdout=log, stderr=subprocess.STDOUT)
    c = Client(port)
    for _ in range(3000):
        try:
            if c.request("GET", "/ping")[0] == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.01)
    raise SystemExit("serve never became healthy")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def run_clients(port, names, dirs, image, headers, classes, clients, seconds):
    """clients threads invoking random models for seconds; a 404 loads the model first."""
    stop = time.perf_counter() + seconds
    lock = threading.Lock()
    stats = {"ok": 0, "missed": 0, "507": 0, "wrong": 0, "lat": []}

    def client(seed):
        rnd = random.Random(seed)
        cl = Client(port)
        while time.perf_counter() < stop:
            i = rnd.randrange(len(names))
            t0 = time.perf_counter()
            missed = full = 0
            while True:
                status, out = cl.request("POST", f"/models/{names[i]}/invoke", image, headers)
                if status != 404:
                    break
                missed = 1
                status, body = cl.request("POST", "/models",
                                          json.dumps({"model_name": names[i], "url": dirs[i]}),
                                          {"Content-Type": "application/json"})
                if status == 507:
                    full += 1
                    time.sleep(0.001)
                elif status not in (200, 409):
                    raise AssertionError(body)
            lat = (time.perf_counter() - t0) * 1e3
            good = status == 200 and json.loads(out)["predictions"][0]["predicted_label"] == str(i % classes)
            with lock:
                stats["ok"] += good
                stats["wrong"] += not good
                stats["missed"] += missed
                stats["507"] += full
                stats["lat"].append(lat)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats["elapsed"] = time.perf_counter() - t0
    return stats


def report(title, stats):
    n = stats["ok"] + stats["wrong"]
    elapsed = stats["elapsed"]
    print(f"{title} for {elapsed:.1f} s:")
    print(f"   {n / elapsed:.0f} invocations/s, {stats['missed'] / elapsed:.0f} model loads/s "
          f"({100 * stats['missed'] / max(n, 1):.0f}% of invocations found their model unloaded)")
    print(f"   latency p50 {pct(stats['lat'], 0.5):.1f} ms, p99 {pct(stats['lat'], 0.99):.1f} ms; "
          f"{stats['507']} loads answered 507 and retried; wrong or failed answers: {stats['wrong']}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    classes = 100
    work = tempfile.mkdtemp(prefix="bench_mme_")
    image = io.BytesIO()
    np.save(image, np.random.RandomState(0).randint(0, 256, (1, 3, 32, 32)).astype(np.uint8))
    image = image.getvalue()
    headers = {"Content-Type": "application/x-npy"}
    try:
        dirs = make_models(work, args.models, classes)
        names = [os.path.basename(os.path.dirname(d)) for d in dirs]

        # 1. Load and first answer, one model after the other.
        proc, port = start_server(work, {"SERVE_MODEL_MEMORY_MB": "100000"})
        c = Client(port)
        rss0 = rss_mib(proc.pid)
        loads, firsts = [], []
        t_all = time.perf_counter()
        for i, (name, d) in enumerate(zip(names, dirs)):
            t0 = time.perf_counter()
            status, out = c.request("POST", "/models", json.dumps({"model_name": name, "url": d}),
                                    {"Content-Type": "application/json"})
            t1 = time.perf_counter()
            assert status == 200, out
            status, out = c.request("POST", f"/models/{name}/invoke", image, headers)
            t2 = time.perf_counter()
            assert status == 200 and json.loads(out)["predictions"][0]["predicted_label"] == str(i % classes)
            loads.append((t1 - t0) * 1e3)
            firsts.append((t2 - t1) * 1e3)
        total = time.perf_counter() - t_all
        rss1 = rss_mib(proc.pid)
        hot = run_clients(port, names, dirs, image, headers, classes, args.clients, args.seconds / 2)
        proc.terminate()
        proc.wait()
        print(f"1. {args.models} LeNets (100 classes, {os.path.getsize(os.path.join(dirs[0], 'model.pth')) / 2**20:.2f} MiB "
              f"each on disk) loaded one after the other, each answered at once:")
        print(f"   POST /models          median {statistics.median(loads):6.1f} ms   p90 {pct(loads, 0.9):6.1f} ms")
        print(f"   first answer          median {statistics.median(firsts):6.1f} ms   p90 {pct(firsts, 0.9):6.1f} ms")
        print(f"   all {args.models} loaded and answered in {total:.2f} s; resident memory {rss0:.0f} -> {rss1:.0f} MiB "
              f"({(rss1 - rss0) / args.models:.2f} MiB per model)")
        report(f"   all loaded, {args.clients} clients invoking models at random", hot)

        # 2. A budget for a quarter of them; clients invoke models at random.
        per_model = os.path.getsize(os.path.join(dirs[0], "model.pth")) + (1 << 20)
        budget_mb = max(1, int(per_model * (args.models // 4) / 2**20))
        proc, port = start_server(work, {"SERVE_MODEL_MEMORY_MB": str(budget_mb)})
        samples = []
        sampler_stop = threading.Event()

        def sample():
            while not sampler_stop.wait(args.seconds / 4):
                samples.append(rss_mib(proc.pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        stats = run_clients(port, names, dirs, image, headers, classes, args.clients, args.seconds)
        sampler_stop.set()
        sampler.join()
        rss = rss_mib(proc.pid)
        proc.terminate()
        proc.wait()
        report(f"2. budget SERVE_MODEL_MEMORY_MB={budget_mb} (about {args.models // 4} of the {args.models} "
               f"models), {args.clients} clients invoking models at random", stats)
        print(f"   resident memory while swapping: {' -> '.join(f'{x:.0f}' for x in samples + [rss])} MiB")
        if stats["wrong"] or hot["wrong"]:
            raise SystemExit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
