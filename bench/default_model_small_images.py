"""default_model_small_images.py - the measurement behind the default model for small images.

The built-in algorithm's users state image_shape "3,32,32" (or a small size) and no model or
num_layers (the cifar100 seed: image_shape, num_classes, num_training_samples, nothing else).
This trains `train` with exactly those hyperparameters on generated 32x32 glyphs (10 classes,
100 train / 20 validation / 50 test images a class) with each candidate model named, and on
64x64 textures (5 classes, same counts) at image_shape "3,64,64", and prints test accuracy and
wall time per model.

    python bench/default_model_small_images.py      (TRAIN_BIN: another train than build/bin/train)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "parity"))
import datasets  # noqa: E402

TRAIN = os.environ.get("TRAIN_BIN", "build/bin/train")
CASES = [("glyphs", "3,32,32", 10, ["resnet50", "vgg11_cifar", "resnet18"]),
         ("breeds", "3,64,64", 5, ["resnet50", "vgg11_cifar"])]


def run(work, name, shape, classes, model):
    root = os.path.join(work, f"{name}-{model}")
    dirs = datasets.write_dataset(os.path.join(root, "data"), name, (100, 20, 50), 1)
    os.makedirs(os.path.join(root, "opt", "input", "config"))
    hp = {"image_shape": shape, "num_classes": str(classes),
          "num_training_samples": str(100 * classes), "model": model}
    with open(os.path.join(root, "opt", "input", "config", "hyperparameters.json"), "w") as f:
        json.dump(hp, f)
    os.makedirs(os.path.join(root, "opt", "input", "data"))
    for channel in ("train", "validation", "test"):
        os.symlink(dirs[channel], os.path.join(root, "opt", "input", "data", channel))
    t0 = time.time()
    r = subprocess.run([TRAIN], env=dict(os.environ, OPT_ML=os.path.join(root, "opt")),
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    acc = json.load(open(os.path.join(root, "opt", "model", "metadata.json")))["metrics"]["test_acc"]
    shutil.rmtree(root)
    return acc, time.time() - t0


def main():
    work = tempfile.mkdtemp(prefix="bench-default-model-")
    print("the built-in's hyperparameters (image_shape, num_classes, num_training_samples; "
          "defaults otherwise: 10 epochs, sgd, lr 0.01)")
    print(f"{'data':>8} {'image_shape':>12} {'model':>12} {'test accuracy':>14} {'wall s':>7}")
    for name, shape, classes, models in CASES:
        for model in models:
            acc, secs = run(work, name, shape, classes, model)
            print(f"{name:>8} {shape:>12} {model:>12} {acc:14.4f} {secs:7.0f}", flush=True)


if __name__ == "__main__":
    main()
