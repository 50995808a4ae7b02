"""bench_resnet50_cpu.py - CPU time per ResNet-50 request, the measure that stays meaningful on a
shared machine (wall-clock rates there follow the neighbours' load; CPU seconds per request
hardly do). One thread each, one 500x375 JPEG, the model of bench_resnet50.py:

  ours          build/bin/serve with SERVE_THREADS=1, per request from the serve process's
                own utime + stime over 24 sequential requests (HTTP, decoding, transform,
                forward, JSON), for each of: batch norms folded or not (SERVE_FOLD_BATCHNORM),
                channels-last or not (SERVE_CHANNELS_LAST)
  theirs        the seeds' inference.py steps in-process (PIL decode, Resize(256) +
                CenterCrop(224) + ToTensor + Normalize, eager resnet50 under no_grad, softmax),
                torch.set_num_threads(1), no server at all: a lower bound for TorchServe

Best of 3 rounds each. usage: python bench/bench_resnet50_cpu.py
"""
import io
import json
import os
import sys
import tempfile
import time

import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "python"))
import bench_resnet50 as br  # noqa: E402
import bench_serve as bs  # noqa: E402
from reference_models import make_model, metadata_eval_transform  # noqa: E402

REQUESTS = 24
VARIANTS = {
    "ours, unfolded, NCHW": {"SERVE_FOLD_BATCHNORM": "false", "SERVE_CHANNELS_LAST": "false"},
    "ours, folded, NCHW": {"SERVE_FOLD_BATCHNORM": "true", "SERVE_CHANNELS_LAST": "false"},
    "ours, unfolded, channels-last": {"SERVE_FOLD_BATCHNORM": "false", "SERVE_CHANNELS_LAST": "true"},
    "ours, default (folded, channels-last)": {},
}


def process_cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def ours(model_dir, body, env):
    p, base = bs.start_ours(model_dir, dict(env, SERVE_THREADS="1"))
    try:
        bs.wait_until(lambda: bs.http_ok(base + "/ping"))
        for _ in range(3):
            bs.http_ok(base + "/invocations", body, "image/jpeg")
        c0 = process_cpu_s(p.pid)
        for _ in range(REQUESTS):
            bs.http_ok(base + "/invocations", body, "image/jpeg")
        return (process_cpu_s(p.pid) - c0) / REQUESTS
    finally:
        bs.stop_ours(p)


def theirs(model_dir, body):
    torch.set_num_threads(1)
    meta = json.load(open(os.path.join(model_dir, "metadata.json")))
    net = make_model(meta["arch"], meta["num_classes"])
    net.load_state_dict(torch.load(os.path.join(model_dir, "model.pth"), weights_only=True))
    net.eval()
    tf = metadata_eval_transform(meta)

    def one():
        x = tf(Image.open(io.BytesIO(body)).convert("RGB")).unsqueeze(0)
        with torch.no_grad():
            return torch.softmax(net(x), 1)
    for _ in range(3):
        one()
    t0 = time.process_time()
    for _ in range(REQUESTS):
        one()
    return (time.process_time() - t0) / REQUESTS


def main():
    work = tempfile.mkdtemp(prefix="bench-r50cpu-")
    model_dir, jpeg = br.make_model_dir(work), br.make_jpeg(work)
    body = open(jpeg, "rb").read()
    best = {name: float("inf") for name in list(VARIANTS) + ["theirs: seed handler in-process"]}
    for _ in range(3):
        for name, env in VARIANTS.items():
            best[name] = min(best[name], ours(model_dir, body, env))
        best["theirs: seed handler in-process"] = min(best["theirs: seed handler in-process"],
                                                      theirs(model_dir, body))
    ref = best["theirs: seed handler in-process"]
    print(f"ResNet-50 (133 classes), one 500x375 JPEG a request, 1 thread; CPU ms per request, "
          f"best of 3 rounds of {REQUESTS}")
    for name, v in best.items():
        print(f"{name:40s} {v * 1e3:7.1f} ms   {ref / v:5.2f}x the seed handler's throughput per core")


if __name__ == "__main__":
    main()
