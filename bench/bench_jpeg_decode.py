"""bench_jpeg_decode.py - what SERVE_JPEG_DCT_SCALING trades, measured on photos of three sizes
(500x375, 1600x1200 and a 12 MP phone photo, 4032x3024; smooth generated scenes, JPEG quality
90) served by a ResNet-18 (ImageNet preprocessing: Resize(256) + CenterCrop(224)): for each
setting, CPU milliseconds per request of the serve process (one thread) and the largest
probability difference from the Python handler's answer (PIL's Image.open, torchvision's
transform, the same weights), beside that handler's own CPU time in-process.

Off (the default), a JPEG is decoded at full size as Pillow decodes it, so the answer is the
handler's to float precision; on, a large JPEG is decoded at the smallest DCT scale the resize
allows (1/2 to 1/8 of the pixels' work), which is faster and a little off Pillow's pixels.

usage: python bench/bench_jpeg_decode.py     (SERVE_BIN: another serve than build/bin/serve)
"""
import io
import json
import os
import sys
import tempfile
import time
import urllib.request

import numpy as np
import torch
import torchvision
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "python"))
import bench_serve as bs  # noqa: E402
from bench_resnet50_cpu import process_cpu_s  # noqa: E402
from reference_models import metadata_eval_transform  # noqa: E402

SIZES = [(500, 375), (1600, 1200), (4032, 3024)]
REQUESTS = 8
META = {"arch": "resnet18", "num_classes": 5, "image_size": 224, "resize_size": 256,
        "resize_mode": "crop", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def photo(w, h, seed):
    """A smooth scene with some texture at every scale: what a JPEG of a photo holds."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        for _ in range(4):
            fx, fy, ph = rng.uniform(0.5, 12, 2).tolist() + [rng.uniform(0, 6.28)]
            img[..., c] += np.sin(x / w * fx * 6.28 + ph) * np.cos(y / h * fy * 6.28)
    img = (img - img.min()) / (img.max() - img.min()) * 255
    buf = io.BytesIO()
    Image.fromarray(img.astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def invoke(base, body):
    req = urllib.request.Request(base + "/invocations", data=body, headers={"Content-Type": "image/jpeg"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def ours(model_dir, body, dct):
    p, base = bs.start_ours(model_dir, {"SERVE_THREADS": "1", "SERVE_JPEG_DCT_SCALING": dct},
                            binary=os.environ.get("SERVE_BIN"))
    try:
        bs.wait_until(lambda: bs.http_ok(base + "/ping"))
        answer = invoke(base, body)
        c0 = process_cpu_s(p.pid)
        for _ in range(REQUESTS):
            invoke(base, body)
        return (process_cpu_s(p.pid) - c0) / REQUESTS, answer["predictions"][0]["probabilities"]
    finally:
        bs.stop_ours(p)


def theirs(net, body):
    tf = metadata_eval_transform(META)

    def one():
        x = tf(Image.open(io.BytesIO(body)).convert("RGB")).unsqueeze(0)
        with torch.no_grad():
            return torch.softmax(net(x), 1)[0].numpy()
    probs = one()
    t0 = time.process_time()
    for _ in range(REQUESTS):
        one()
    return (time.process_time() - t0) / REQUESTS, probs


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=5).eval()
    with torch.no_grad():  # spread the logits, so that a changed pixel shows in the answer
        net.fc.weight.mul_(8)
    model_dir = tempfile.mkdtemp(prefix="bench-jpeg-")
    torch.save(net.state_dict(), os.path.join(model_dir, "model.pth"))
    with open(os.path.join(model_dir, "metadata.json"), "w") as f:
        json.dump(META, f)
    print(f"ResNet-18, 1 thread, CPU ms per request (mean of {REQUESTS}); 'diff': the largest "
          "probability difference from the Python handler's answer")
    print(f"{'photo':>10} {'theirs (PIL, in-process)':>26} {'ours, full size (default)':>30} "
          f"{'ours, SERVE_JPEG_DCT_SCALING=true':>36}")
    for i, (w, h) in enumerate(SIZES):
        body = photo(w, h, i)
        t_ms, t_probs = theirs(net, body)
        row = [f"{w}x{h}", f"{t_ms * 1e3:8.1f} ms"]
        for dct in ("false", "true"):
            o_ms, o_probs = ours(model_dir, body, dct)
            diff = float(np.abs(np.array(o_probs) - t_probs).max())
            row.append(f"{o_ms * 1e3:8.1f} ms, diff {diff:.1e}")
        print(f"{row[0]:>10} {row[1]:>26} {row[2]:>30} {row[3]:>36}")


if __name__ == "__main__":
    main()
