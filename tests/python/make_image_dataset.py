"""make_image_dataset.py - small, real image datasets for the train tests and the demo.

Three classes of shapes (circle, square, triangle) drawn at random sizes, places and colours
on noisy backgrounds, saved as real PNG and JPEG files (alternating), in one of the layouts
`train` reads:

  folders  DIR/<class>/img_00001.png ...           (torchvision ImageFolder layout)
  lst      DIR/images/... + DIR/data.lst            (SageMaker image-classification .lst)
  cifar    DIR/data_batch_1.bin + batches.meta.txt  (CIFAR-10 binary records)

usage: make_image_dataset.py DIR --format folders --per-class 100 --seed 1 [--size 32]
"""
import argparse
import os
import random

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ["circle", "square", "triangle"]


def draw(shape, size, rng):
    noise = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
    img = Image.fromarray(noise, "RGB")
    d = ImageDraw.Draw(img)
    r = int(size * rng.uniform(0.25, 0.4))
    cx = int(rng.uniform(r, size - r))
    cy = int(rng.uniform(r, size - r))
    colour = tuple(int(c) for c in rng.integers(120, 256, 3))
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    return img


def generate(per_class, size, seed):
    """[(class index, PIL image)] in a fixed order for a given seed."""
    rng = np.random.default_rng(seed)
    return [(c, draw(name, size, rng)) for c, name in enumerate(CLASSES) for _ in range(per_class)]


def save(img, path):
    if path.endswith(".jpg"):
        img.save(path, quality=92)
    else:
        img.save(path)


def write_folders(root, samples, ext=None):
    """ext: "jpg" or "png" for every file; None alternates them."""
    for i, (c, img) in enumerate(samples):
        d = os.path.join(root, CLASSES[c])
        os.makedirs(d, exist_ok=True)
        save(img, os.path.join(d, f"img_{i:05d}.{ext or ('png' if i % 2 else 'jpg')}"))


def write_lst(root, samples, lst_dir=None):
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    lines = []
    for i, (c, img) in enumerate(samples):
        rel = f"images/img_{i:05d}.{'png' if i % 2 else 'jpg'}"
        save(img, os.path.join(root, rel))
        lines.append(f"{i}\t{c}.000000\t{rel}\n")
    lst_dir = lst_dir or root
    os.makedirs(lst_dir, exist_ok=True)
    with open(os.path.join(lst_dir, "data.lst"), "w") as f:
        f.writelines(lines)


def write_cifar(root, samples):
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "data_batch_1.bin"), "wb") as f:
        for c, img in samples:
            planes = np.asarray(img.resize((32, 32)), dtype=np.uint8).transpose(2, 0, 1)
            f.write(bytes([c]) + planes.tobytes())
    with open(os.path.join(root, "batches.meta.txt"), "w") as f:
        f.write("\n".join(CLASSES + [f"unused{i}" for i in range(7)]) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--format", choices=["folders", "lst", "cifar"], default="folders")
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--lst-dir", help="lst format: put data.lst in this directory instead")
    a = p.parse_args()
    samples = generate(a.per_class, a.size, a.seed)
    random.Random(a.seed).shuffle(samples)
    {"folders": write_folders, "lst": lambda r, s: write_lst(r, s, a.lst_dir),
     "cifar": write_cifar}[a.format](a.dir, samples)


if __name__ == "__main__":
    main()
