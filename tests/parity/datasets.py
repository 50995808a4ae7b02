"""datasets.py - the generated datasets the parity harness trains both sides on.

  glyphs  10 classes of characters drawn at 32x32 with a random position, size, slant,
          stroke colour and noisy background. The classes include mirror pairs (b/d, p/q,
          2/5-like shapes...): a horizontal flip changes the class, as with digits and letters.
  shapes  3 classes of filled shapes (circle, square, triangle) at 32x32, colours vary.
  breeds  5 classes of 64x64 textured "coats" (stripe orientation and frequency, spot
          patterns, colour casts), for the ResNet-18 transfer with a frozen backbone.

Each is written as class folders (PNG and JPEG alternating) for train, validation and test:
    write_dataset(root, name, per_class, seed) -> {"train": dir, "validation": dir, "test": dir}
"""
import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

GLYPHS = ["b", "d", "p", "q", "2", "5", "7", "L", "J", "Z"]
SHAPES = ["circle", "square", "triangle"]
BREEDS = ["stripes", "diagonal", "spots", "checks", "plain"]


def _noise(size, rng, hi=70):
    return Image.fromarray(rng.integers(0, hi, (size, size, 3), dtype=np.uint8), "RGB")


def glyph(c, rng, size=32):
    img = _noise(size * 2, rng)
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=int(rng.uniform(44, 58)))
    colour = tuple(int(v) for v in rng.integers(140, 256, 3))
    d.text((size + rng.uniform(-8, 8), size + rng.uniform(-8, 8)), GLYPHS[c], fill=colour,
           font=font, anchor="mm", stroke_width=int(rng.integers(1, 3)), stroke_fill=colour)
    shear = rng.uniform(-0.2, 0.2)
    img = img.transform(img.size, Image.AFFINE, (1, shear, -shear * size, 0, 1, 0),
                        resample=Image.BILINEAR, fillcolor=(20, 20, 20))
    return img.resize((size, size), Image.BILINEAR)


def shape(c, rng, size=32):
    img = _noise(size, rng, 80)
    d = ImageDraw.Draw(img)
    r = int(size * rng.uniform(0.25, 0.4))
    cx, cy = int(rng.uniform(r, size - r)), int(rng.uniform(r, size - r))
    colour = tuple(int(v) for v in rng.integers(120, 256, 3))
    if SHAPES[c] == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif SHAPES[c] == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    return img


def coat(c, rng, size=64):
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    f = rng.uniform(0.25, 0.45)
    phase = rng.uniform(0, 2 * math.pi)
    kind = BREEDS[c]
    if kind == "stripes":
        v = np.sin(x * f + phase)
    elif kind == "diagonal":
        v = np.sin((x + y) * f * 0.7 + phase)
    elif kind == "spots":
        v = np.sin(x * f + phase) * np.sin(y * f + phase)
    elif kind == "checks":
        v = np.sign(np.sin(x * f * 0.6 + phase) * np.sin(y * f * 0.6 + phase))
    else:
        v = np.zeros_like(x)
    base = rng.uniform(60, 200, 3)
    amp = rng.uniform(30, 60)
    rgb = base[None, None, :] + amp * v[..., None] + rng.normal(0, 25, (size, size, 3))
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


KINDS = {"glyphs": (GLYPHS, glyph), "shapes": (SHAPES, shape), "breeds": (BREEDS, coat)}


def write_split(root, name, per_class, seed):
    classes, draw = KINDS[name]
    rng = np.random.default_rng(seed)
    i = 0
    for c, cname in enumerate(classes):
        d = os.path.join(root, cname)
        os.makedirs(d, exist_ok=True)
        for _ in range(per_class):
            img = draw(c, rng)
            path = os.path.join(d, f"img_{i:05d}.{'png' if i % 2 else 'jpg'}")
            img.save(path, quality=92) if path.endswith(".jpg") else img.save(path)
            i += 1


def write_dataset(root, name, per_class, seed):
    """per_class: (train, validation, test) images per class."""
    out = {}
    for k, (split, n) in enumerate(zip(("train", "validation", "test"), per_class)):
        out[split] = os.path.join(root, split)
        write_split(out[split], name, n, seed * 100 + k)
    return out
