"""bench_serve.py - our `serve` against the Python stack SageMaker users run today, in one run
on this machine: the same model (the seeds' LeNet, trained here by `train`) behind
(a) build/bin/serve and (b) TorchServe with inference.py-style handlers (PIL + torchvision
transforms, bench/torchserve_handler.py). For each: time from start to the first healthy /ping
and to the first answered prediction, requests/s with p50 and p99 latency at 1 and 16
concurrent clients (ApacheBench with keep-alive, one PNG per request), and resident memory of the whole
process tree after the load. Then the ratios.

usage: python bench/bench_serve.py [--requests 2000]
Needs: apache2-utils (ab), Java, and `pip install torchserve==0.12.0 torch-model-archiver==0.12.0 pyyaml`
in the project's venv; the script says what is missing.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYDIR = os.path.join(ROOT, "tests", "python")
sys.path.insert(0, PYDIR)
from serve_process import free_port  # noqa: E402
import make_image_dataset as images  # noqa: E402



def train_model(work):
    opt_ml = os.path.join(work, "opt_ml")
    os.makedirs(os.path.join(opt_ml, "input", "config"))
    with open(os.path.join(opt_ml, "input", "config", "hyperparameters.json"), "w") as f:
        json.dump({"model": "lenet", "epochs": "10", "batch_size": "16", "lr": "0.003",
                   "optimizer": "adam", "min_crop_scale": "0.7"}, f)
    images.write_folders(os.path.join(opt_ml, "input", "data", "train"), images.generate(80, 32, seed=1))
    subprocess.run([os.path.join(ROOT, "build/bin/train")], env=dict(os.environ, OPT_ML=opt_ml),
                   check=True, capture_output=True)
    png = os.path.join(work, "request.png")
    images.save(images.generate(1, 32, seed=5)[0][1], png)
    return os.path.join(opt_ml, "model"), png


def wait_until(fn, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if fn():
                return time.time() - t0
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError("timed out")


def http_ok(url, data=None, ctype=None):
    req = urllib.request.Request(url, data=data, headers={"Content-Type": ctype} if ctype else {})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status == 200


def tree_rss_mib(pid):
    """Resident memory of pid and all its descendants."""
    children = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                ppid = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(p))
            except OSError:
                pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def ab(url, png, concurrency, requests, ctype="image/png"):
    out = subprocess.run(["ab", "-k", "-q", "-n", str(requests), "-c", str(concurrency), "-p", png,
                          "-T", ctype, url], capture_output=True, text=True, check=True).stdout
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    # ab counts an answer whose length differs from the first one's as failed; probabilities
    # computed in differently sized batches differ in their last digits, so lengths vary.
    length = re.search(r"Receive: \d+, Length: (\d+),", out)
    failed -= int(length.group(1)) if length else 0
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    rps = float(re.search(r"Requests per second:\s+([0-9.]+)", out).group(1))
    p50 = float(re.search(r"\n\s+50%\s+(\d+)", out).group(1))
    p99 = float(re.search(r"\n\s+99%\s+(\d+)", out).group(1))
    if failed or non2xx:
        raise RuntimeError(f"{url}: {failed} failed, {non2xx.group(1) if non2xx else 0} non-2xx")
    return rps, p50, p99


def start_ours(model_dir, env=None, binary=None):
    """build/bin/serve (or binary) on a free port with a copy of model_dir: (process, base URL)."""
    port = free_port()
    opt_ml = tempfile.mkdtemp(prefix="bench-serve-ours-")
    shutil.copytree(model_dir, os.path.join(opt_ml, "model"))
    p = subprocess.Popen([binary or os.path.join(ROOT, "build/bin/serve")], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL,
                         env=dict(os.environ, OPT_ML=opt_ml, SAGEMAKER_BIND_TO_PORT=str(port),
                                  **(env or {})))
    p.opt_ml = opt_ml
    return p, f"http://127.0.0.1:{port}"


def stop_ours(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    shutil.rmtree(p.opt_ml, ignore_errors=True)


def run_ours(model_dir, png, requests):
    p, base = start_ours(model_dir)
    try:
        healthy = wait_until(lambda: http_ok(base + "/ping"))
        first = wait_until(lambda: http_ok(base + "/invocations", open(png, "rb").read(), "image/png"))
        return measure(p.pid, base + "/invocations", png, requests, healthy, healthy + first)
    finally:
        stop_ours(p)


def start_torchserve(model_dir, work, name, workers, env=None):
    """TorchServe serving model_dir (model.pth + metadata.json) under `name` with the seeds'
    handler (torchserve_handler.py) and `workers` workers: (process, base URL)."""
    store = os.path.join(work, "model_store")
    os.makedirs(store, exist_ok=True)
    subprocess.run(["torch-model-archiver", "--model-name", name, "--version", "1.0",
                    "--serialized-file", os.path.join(model_dir, "model.pth"),
                    "--handler", os.path.join(HERE, "torchserve_handler.py"),
                    "--extra-files", f"{os.path.join(model_dir, 'metadata.json')},"
                                     f"{os.path.join(PYDIR, 'reference_models.py')}",
                    "--export-path", store, "--force"], check=True)
    port, mport, metrics = free_port(), free_port(), free_port()
    cfg = os.path.join(work, f"config-{name}-{workers}.properties")
    with open(cfg, "w") as f:
        f.write(f"inference_address=http://127.0.0.1:{port}\nmanagement_address=http://127.0.0.1:{mport}\n"
                f"metrics_address=http://127.0.0.1:{metrics}\ndefault_workers_per_model={workers}\n"
                f"disable_system_metrics=true\n")
    p = subprocess.Popen(["torchserve", "--start", "--foreground", "--ncs", "--disable-token-auth",
                          "--model-store", store, "--models", f"{name}={name}.mar", "--ts-config", cfg],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work,
                         env=dict(os.environ, **(env or {})))
    return p, f"http://127.0.0.1:{port}"


def stop_torchserve(p):
    subprocess.run(["torchserve", "--stop"], capture_output=True)
    p.terminate()
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()


def run_torchserve(model_dir, png, requests, work):
    p, base = start_torchserve(model_dir, work, "lenet", os.cpu_count())
    try:
        healthy = wait_until(lambda: http_ok(base + "/ping"))
        first = wait_until(lambda: http_ok(base + "/predictions/lenet", open(png, "rb").read(), "image/png"))
        return measure(p.pid, base + "/predictions/lenet", png, requests, healthy, healthy + first)
    finally:
        stop_torchserve(p)


def measure(pid, url, png, requests, healthy, first):
    ab(url, png, 4, 200)  # warm every worker
    r1 = ab(url, png, 1, requests // 4)
    r16 = ab(url, png, 16, requests)
    return {"healthy_s": healthy, "first_s": first, "c1": r1, "c16": r16, "rss_mib": tree_rss_mib(pid)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=2000)
    a = p.parse_args()
    for tool in ("ab", "java", "torchserve", "torch-model-archiver"):
        if not shutil.which(tool):
            sys.exit(f"missing {tool}: apt-get install apache2-utils openjdk-17-jre-headless; "
                     f"pip install torchserve==0.12.0 torch-model-archiver==0.12.0 pyyaml")
    work = tempfile.mkdtemp(prefix="bench-serve-")
    model_dir, png = train_model(work)
    ours = run_ours(model_dir, png, a.requests)
    theirs = run_torchserve(model_dir, png, a.requests, work)
    print(f"LeNet (the CIFAR-10 seed's), one 32x32 PNG per request, {os.cpu_count()} cores, "
          f"{a.requests} requests at 16 clients")
    print(f"{'':28} {'ours':>10} {'torchserve':>11} {'ratio':>9}")
    rows = [("start to healthy /ping (s)", ours["healthy_s"], theirs["healthy_s"], False),
            ("start to first answer (s)", ours["first_s"], theirs["first_s"], False)]
    for c in ("c1", "c16"):
        n = c[1:]
        rows += [(f"{n} client(s): requests/s", ours[c][0], theirs[c][0], True),
                 (f"{n} client(s): p50 ms", ours[c][1], theirs[c][1], False),
                 (f"{n} client(s): p99 ms", ours[c][2], theirs[c][2], False)]
    rows.append(("resident memory (MiB)", ours["rss_mib"], theirs["rss_mib"], False))
    for name, o, t, higher_better in rows:
        # ab reports latencies in whole milliseconds: 0 means under 1 ms, counted as 0.5.
        o_r, t_r = (max(o, 0.5), max(t, 0.5)) if name.endswith("ms") else (o, t)
        ratio = o_r / t_r if higher_better else t_r / max(o_r, 1e-9)
        shown = "<1" if name.endswith("ms") and o == 0 else f"{o:.2f}"
        print(f"{name:28} {shown:>10} {t:11.2f} {ratio:8.1f}x{'' if higher_better else ' better'}")


if __name__ == "__main__":
    main()
