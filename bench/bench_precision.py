"""bench_precision.py - what SERVE_PRECISION=bfloat16 changes, measured: a ResNet-18 trained by
`train` on generated shapes (3 classes, 96 px images, 6 epochs), then served twice, in float32
and under bf16 autocast, on the same held-out test images: test accuracy of each, how often
the two predict the same class, the largest probability difference, and CPU milliseconds per
request of the serve process (one thread). On a CPU without bf16 instructions (this one: AVX2,
no AVX-512) bf16 is emulated and slower; the setting is for GPUs and CPUs with AMX or
AVX512-BF16, and this run says what it costs in accuracy.

usage: python bench/bench_precision.py
"""
import http.client
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
import bench_serve as bs  # noqa: E402
import make_image_dataset as images  # noqa: E402
from bench_resnet50_cpu import process_cpu_s  # noqa: E402


def train(work):
    opt_ml = os.path.join(work, "opt_ml")
    os.makedirs(os.path.join(opt_ml, "input", "config"))
    with open(os.path.join(opt_ml, "input", "config", "hyperparameters.json"), "w") as f:
        json.dump({"model": "resnet18", "epochs": "6", "batch_size": "32", "lr": "0.05",
                   "image_size": "96", "seed": "3", "training_report": "false"}, f)
    images.write_folders(os.path.join(opt_ml, "input", "data", "train"),
                         images.generate(120, 96, seed=1))
    subprocess.run([os.path.join(ROOT, "build/bin/train")], env=dict(os.environ, OPT_ML=opt_ml),
                   check=True, capture_output=True)
    test = os.path.join(work, "test")
    images.write_folders(test, images.generate(60, 96, seed=2))
    files = sorted((os.path.join(test, c, f), c) for c in os.listdir(test)
                   for f in os.listdir(os.path.join(test, c)))
    return os.path.join(opt_ml, "model"), files


def serve_all(model_dir, files, precision):
    p, base = bs.start_ours(model_dir, {"SERVE_THREADS": "1", "SERVE_PRECISION": precision})
    port = int(base.rsplit(":", 1)[1])
    try:
        bs.wait_until(lambda: bs.http_ok(base + "/ping"))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        out, c0 = [], process_cpu_s(p.pid)
        for path, _cls in files:
            body = open(path, "rb").read()
            ctype = "image/png" if path.endswith(".png") else "image/jpeg"
            conn.request("POST", "/invocations", body, {"Content-Type": ctype})
            r = conn.getresponse()
            assert r.status == 200, r.read()
            out.append(json.loads(r.read())["predictions"][0])
        return out, (process_cpu_s(p.pid) - c0) / len(files)
    finally:
        bs.stop_ours(p)


def main():
    work = tempfile.mkdtemp(prefix="bench-precision-")
    model_dir, files = train(work)
    fp32, cpu32 = serve_all(model_dir, files, "float32")
    bf16, cpu16 = serve_all(model_dir, files, "bfloat16")
    acc = lambda preds: sum(p["predicted_label"] == c for p, (_f, c) in zip(preds, files)) / len(files)  # noqa: E731
    same = sum(a["predicted_index"] == b["predicted_index"] for a, b in zip(fp32, bf16)) / len(files)
    diff = max(abs(x - y) for a, b in zip(fp32, bf16)
               for x, y in zip(a["probabilities"], b["probabilities"]))
    print(f"ResNet-18 trained by train (3 classes, 96 px), {len(files)} held-out images, serve with 1 thread")
    print(f"{'':28}{'float32':>12}{'bfloat16':>12}")
    print(f"{'test accuracy':28}{acc(fp32):12.4f}{acc(bf16):12.4f}")
    print(f"{'CPU ms per request':28}{cpu32 * 1e3:12.1f}{cpu16 * 1e3:12.1f}")
    print(f"same predicted class: {same:.2%}; largest probability difference: {diff:.4f}")


if __name__ == "__main__":
    main()
