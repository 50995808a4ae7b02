"""bench_train.py - our training side against the Python one the seeds use, in one run, on the
same generated data and the same machine.

(a) data pipeline: build/bin/bench_loader (C: libjpeg-turbo/libpng decode, random resized crop,
    flip, normalise, THREADS threads) against torchvision ImageFolder + DataLoader with the
    same transforms and THREADS worker processes;
(b) full training: build/bin/train (resnet18) against the same PyTorch loop in Python
    (same model, optimizer, transforms, batch size and worker count).
Each side runs a warm-up epoch first; the figure is the second epoch's images/s.

usage: python bench/bench_train.py [--images-per-class 200] [--size 400] [--crop 224]
       [--train-crop 112] [--threads 2] [--batch 32] [--ext jpg|png|mixed]
Run it with the project's Python environment (~/.cache/sagemaker-ic-c/venv/bin/python).
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

import torch
import torchvision
from torchvision import transforms

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
import make_image_dataset as images  # noqa: E402

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def train_transform(size):
    return transforms.Compose([transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(),
                               transforms.ToTensor(), transforms.Normalize(MEAN, STD)])


def cpu_seconds():
    """CPU time of this process and its finished children (the DataLoader's workers)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def python_loader_rate(data, crop, threads, batch):
    """(images/s, images per CPU-second) of the second epoch. The workers are not persistent,
    so they have exited, and their CPU time is counted, when an epoch's iterator ends."""
    ds = torchvision.datasets.ImageFolder(data, transform=train_transform(crop))
    dl = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=threads)
    for _ in range(2):
        t0, c0, n = time.time(), cpu_seconds(), 0
        for x, _y in dl:
            n += x.shape[0]
        rate, cpu_rate = n / (time.time() - t0), n / (cpu_seconds() - c0)
    return rate, cpu_rate


def eager_rate(model, loader, channels_last=False, epochs=2):
    """PyTorch eager training of `model` over `loader` (SGD, momentum 0.9, weight decay 1e-4,
    cross-entropy) for `epochs` epochs: the last epoch's images/s. Shared with
    bench_train224.py."""
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    rate = 0.0
    for _ in range(epochs):
        model.train()
        t0, n = time.time(), 0
        for x, y in loader:
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
            n += x.shape[0]
        rate = n / (time.time() - t0)
    return rate


def python_train_rate(data, crop, threads, batch):
    ds = torchvision.datasets.ImageFolder(data, transform=train_transform(crop))
    dl = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=threads,
                                     persistent_workers=True, drop_last=True)
    return eager_rate(torchvision.models.resnet18(num_classes=len(ds.classes)), dl)


def our_loader_rate(data, crop, threads, batch):
    out = subprocess.run([os.path.join(ROOT, "build/bin/bench_loader"), data, str(crop),
                          str(threads), str(batch), "2"], capture_output=True, text=True, check=True)
    return (float(re.search(r"images_per_sec=([0-9.]+)", out.stdout).group(1)),
            float(re.search(r"images_per_cpu_sec=([0-9.]+)", out.stdout).group(1)))


def our_train_rate(data, crop, threads, batch, workdir, extra_hp=None, name="opt_ml"):
    """build/bin/train on `data` (resnet18, 2 epochs): the last epoch's images/s."""
    opt_ml = os.path.join(workdir, name)
    cfg = os.path.join(opt_ml, "input", "config")
    os.makedirs(cfg, exist_ok=True)
    os.makedirs(os.path.join(opt_ml, "input", "data"), exist_ok=True)
    link = os.path.join(opt_ml, "input", "data", "train")
    if not os.path.exists(link):
        os.symlink(data, link)
    hp = {"model": "resnet18", "epochs": "2", "batch_size": str(batch), "image_size": str(crop),
          "lr": "0.01", "num_workers": str(threads), "min_crop_scale": "0.08",
          **(extra_hp or {})}
    with open(os.path.join(cfg, "hyperparameters.json"), "w") as f:
        json.dump(hp, f)
    env = dict(os.environ, OPT_ML=opt_ml)
    out = subprocess.run([os.path.join(ROOT, "build/bin/train")], env=env, capture_output=True,
                         text=True, check=True)
    return float(re.findall(r"images_per_sec=([0-9.]+)", out.stdout)[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--images-per-class", type=int, default=200)
    p.add_argument("--size", type=int, default=400)
    p.add_argument("--crop", type=int, default=224)
    p.add_argument("--train-crop", type=int, default=112)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--ext", choices=["jpg", "png", "mixed"], default="jpg",
                   help="file type of the generated images (the seeds' datasets are JPEG)")
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench-train-")
    data = os.path.join(work, "images")
    images.write_folders(data, images.generate(a.images_per_class, a.size, seed=11),
                         None if a.ext == "mixed" else a.ext)
    n = 3 * a.images_per_class
    print(f"data: {n} {a.ext} images of {a.size}x{a.size} in {data}; "
          f"{a.threads} loader threads/workers; torch threads {torch.get_num_threads()}")

    rows = []
    (ours, ours_cpu), (theirs, theirs_cpu) = our_loader_rate(data, a.crop, a.threads, a.batch), \
        python_loader_rate(data, a.crop, a.threads, a.batch)
    rows.append((f"data pipeline -> {a.crop}px batches", ours, theirs))
    rows.append(("  the same, per CPU-second (per core)", ours_cpu, theirs_cpu))
    ours, theirs = our_train_rate(data, a.train_crop, a.threads, a.batch, work), \
        python_train_rate(data, a.train_crop, a.threads, a.batch)
    rows.append((f"resnet18 training at {a.train_crop}px", ours, theirs))

    print(f"{'':34} {'ours img/s':>11} {'python img/s':>13} {'ratio':>7}")
    for name, o, t in rows:
        print(f"{name:34} {o:11.1f} {t:13.1f} {o / t:6.2f}x")


if __name__ == "__main__":
    main()
