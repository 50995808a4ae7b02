"""bench_train224.py - training at the size users run: ResNet-50 at 224 px on 500x375 JPEGs,
ours against PyTorch eager with torchvision, in one run on this machine.

(a) the data pipeline per CPU-second (one thread each, so the figure is per core and does not
    depend on what else the machine runs):
      bare decoding   build/bin/bench_loader ... decode: each JPEG read and decoded by
                      libjpeg-turbo at the DCT scale the resize needs, nothing else - the
                      limit any decoding pipeline can reach
      ours            build/bin/bench_loader: decode, transform, normalise into float batches,
                      for the evaluation transform (what training without augmentation uses,
                      the default) and for RandomResizedCrop + flip (augment=true)
      torchvision     ImageFolder + PIL + the same transforms, iterated in-process
                      (DataLoader with num_workers=0)
(b) ResNet-50 training steps at 224 (batch 8, 2 threads, SGD with momentum, fp32, the same
    memory format on both sides): build/bin/train's images/s of its second epoch against the
    same loop in PyTorch eager (torchvision's resnet50) on the same images, second epoch, with
    a DataLoader of 2 workers. Both NCHW (train's CPU default) and channels-last.

usage: python bench/bench_train224.py [--images 48] [--skip-training]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
sys.path.insert(0, HERE)
from bench_train import eager_rate  # noqa: E402


def write_photos(root, n, seed=5):
    """n photo-like 500x375 JPEGs (smooth colour fields, edges, grain) in 3 class folders."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:375, 0:500].astype(np.float32)
    for i in range(n):
        cls = os.path.join(root, f"class{i % 3}")
        os.makedirs(cls, exist_ok=True)
        f = rng.uniform(20, 60, 3)
        rgb = np.stack([120 + 90 * np.sin(x / f[c] + i) * np.cos(y / f[(c + 1) % 3] - c)
                        for c in range(3)], -1)
        rgb += rng.normal(0, 10, rgb.shape)
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(
            os.path.join(cls, f"{i:04d}.jpg"), quality=90)


def ours_pipeline(data, mode, epochs=3):
    out = subprocess.run([os.path.join(ROOT, "build/bin/bench_loader"), data, "224", "1", "8",
                          str(epochs), mode], capture_output=True, text=True, check=True)
    return float(re.search(r"images_per_cpu_sec=([0-9.]+)", out.stdout).group(1))


def torchvision_pipeline(data, augment, epochs=3):
    torch.set_num_threads(1)
    tf = (transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                              transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
          if augment else
          transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224),
                              transforms.ToTensor(), transforms.Normalize(MEAN, STD)]))
    ds = torchvision.datasets.ImageFolder(data, transform=tf)
    dl = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True, num_workers=0)
    best = 0.0
    for _ in range(epochs):
        t0, n = time.process_time(), 0
        for x, _y in dl:
            n += x.shape[0]
        best = max(best, n / (time.process_time() - t0))
    return best


def ours_training(data, work, channels_last):
    opt_ml = os.path.join(work, f"opt_ml_{int(channels_last)}")
    os.makedirs(os.path.join(opt_ml, "input", "config"), exist_ok=True)
    os.makedirs(os.path.join(opt_ml, "input", "data"), exist_ok=True)
    link = os.path.join(opt_ml, "input", "data", "train")
    if not os.path.exists(link):
        os.symlink(data, link)
    hp = {"model": "resnet50", "epochs": "2", "batch_size": "8", "image_size": "224", "lr": "0.01",
          "momentum": "0.9", "num_workers": "2", "channels_last": str(channels_last).lower(),
          "validation_fraction": "0.05", "training_report": "false"}
    with open(os.path.join(opt_ml, "input", "config", "hyperparameters.json"), "w") as f:
        json.dump(hp, f)
    out = subprocess.run([os.path.join(ROOT, "build/bin/train")], capture_output=True, text=True,
                         check=True, env=dict(os.environ, OPT_ML=opt_ml))
    return float(re.findall(r"images_per_sec=([0-9.]+)", out.stdout)[-1])


def eager_training(data, channels_last):
    torch.set_num_threads(2)
    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224),
                             transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    ds = torchvision.datasets.ImageFolder(data, transform=tf)
    dl = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True, num_workers=2,
                                     persistent_workers=True, drop_last=True)
    torch.manual_seed(0)
    return eager_rate(torchvision.models.resnet50(num_classes=len(ds.classes)), dl, channels_last)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=48, help="JPEGs generated (3 classes)")
    p.add_argument("--skip-training", action="store_true", help="the data pipeline only")
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench-train224-")
    data = os.path.join(work, "images")
    write_photos(data, a.images)
    print(f"{a.images} JPEGs of 500x375, 3 classes; best of 3 epochs for the pipeline")
    decode = ours_pipeline(data, "decode")
    rows = [("bare libjpeg-turbo decode at the DCT scale", decode, None)]
    for mode, augment in (("eval", False), ("augment", True)):
        o, t = ours_pipeline(data, mode), torchvision_pipeline(data, augment)
        what = "Resize(256)+CenterCrop(224)" if not augment else "RandomResizedCrop(224)+flip"
        rows.append((f"pipeline, {what}: ours", o, t))
    print(f"\n(a) images per CPU-second, one thread{'':22}{'ours':>10}{'torchvision':>13}{'ratio':>8}"
          f"{'of bare decode':>16}")
    for name, o, t in rows:
        ratio = f"{o / t:7.2f}x" if t else ""
        tv = f"{t:13.1f}" if t else f"{'':13}"
        print(f"{name:60}{o:10.1f}{tv}{ratio:>8}{o / decode:15.0%}")
    if a.skip_training:
        return
    print(f"\n(b) ResNet-50 training at 224, batch 8, 2 threads: images/s of the second epoch")
    for cl in (False, True):
        o, t = ours_training(data, work, cl), eager_training(data, cl)
        fmt = "channels-last" if cl else "NCHW"
        print(f"{fmt:60}{o:10.2f}{t:13.2f}{o / t:7.2f}x")


if __name__ == "__main__":
    main()
