"""augmentation_defaults.py - the measurement behind the default training augmentation.

The issue-10 experiment: a new user's SDK hyperparameters for the CIFAR LeNet
({"model": "lenet", "epochs": "4", "batch_size": "64", "lr": "0.01", "momentum": "0.9",
"image_size": "32", "seed": "7"}) on 10 classes of 32x32 glyphs (3,000 train, 600
validation, 600 test; a horizontal flip changes the class of several), trained with each
augmentation `train` offers. Prints test accuracy per setting.

    python bench/augmentation_defaults.py [--seeds 1]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "parity"))
import datasets  # noqa: E402

TRAIN = os.environ.get("TRAIN_BIN", "build/bin/train")
BASE = {"model": "lenet", "epochs": 4, "batch_size": 64, "lr": 0.01, "momentum": 0.9,
        "image_size": 32}
SETTINGS = {
    "default (none)": {},
    "augment=true (RandomResizedCrop 0.08 + flip)": {"augment": True},
    "augment=true, min_crop_scale=0.7": {"augment": True, "min_crop_scale": 0.7},
    "augmentation_type=crop": {"augmentation_type": "crop"},
    "augmentation_type=crop_color_transform": {"augmentation_type": "crop_color_transform"},
}


def train(root, dirs, hp):
    cfg = os.path.join(root, "input", "config")
    os.makedirs(cfg)
    with open(os.path.join(cfg, "hyperparameters.json"), "w") as f:
        json.dump({k: json.dumps(v) for k, v in hp.items()}, f)
    os.makedirs(os.path.join(root, "input", "data"))
    for name, d in dirs.items():
        os.symlink(d, os.path.join(root, "input", "data", name))
    env = dict(os.environ, OPT_ML=root)
    env.pop("TRAINING_JOB_NAME", None)
    p = subprocess.run([TRAIN, "train"], env=env, capture_output=True, text=True)
    m = re.search(r"test_acc=([0-9.]+)", p.stdout)
    if not m:
        sys.exit(p.stdout[-2000:] + p.stderr[-2000:])
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        acc = {k: [] for k in SETTINGS}
        for seed in range(7, 7 + args.seeds):
            dirs = datasets.write_dataset(os.path.join(tmp, f"data{seed}"), "glyphs",
                                          (300, 60, 60), seed)
            for i, (name, extra) in enumerate(SETTINGS.items()):
                acc[name].append(train(os.path.join(tmp, f"run{seed}-{i}"), dirs,
                                       dict(BASE, seed=seed, **extra)))
                print(f"seed {seed} {name}: test_acc {acc[name][-1]:.4f}", flush=True)
        print("\n| training augmentation | test accuracy |\n|---|---|")
        for name, v in acc.items():
            print(f"| {name} | {sum(v) / len(v):.3f} |")


if __name__ == "__main__":
    main()
