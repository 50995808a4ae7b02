"""run_parity.py - our `train` against the seeds' own Python scripts, same data, same
hyperparameters, test accuracies side by side.

    python tests/parity/run_parity.py --seeds 3            # the full report (README numbers)
    python tests/parity/run_parity.py --quick              # 1 seed, small data (ctest)

For every dataset and seed: generate the data (tests/parity/datasets.py), run the reference
script (tests/parity/reference.py) and `train` with the same hyperparameters as the SageMaker
SDK passes them (JSON-encoded strings) and nothing else, read its test_acc line. Exits 1 when
ours is below theirs by more than --bar points averaged over the seeds on any dataset.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import datasets  # noqa: E402
import reference  # noqa: E402

TRAIN = os.environ.get("TRAIN_BIN", "build/bin/train")

# name: (dataset, images per class (train, validation, test), the user's hyperparameters,
#        reference script)
# The sizes are large enough that both sides learn the task: at 60 images a class (the first
# version of this table) LeNet is still on its initial plateau after 8 epochs of 6 steps, and
# single seeds swung by 12 points either way on which side left it first (README).
FULL = {
    "glyphs-lenet": ("glyphs", (200, 40, 100),
                     {"model": "lenet", "epochs": 8, "batch_size": 32, "lr": 0.01,
                      "momentum": 0.9}, "lenet_sgd"),
    "shapes-lenet": ("shapes", (300, 60, 300),
                     {"model": "lenet", "epochs": 8, "batch_size": 32, "lr": 0.01,
                      "momentum": 0.9}, "lenet_sgd"),
    "glyphs-vgg-cifar": ("glyphs", (100, 20, 100),
                         {"model": "vgg11_cifar", "epochs": 4, "batch_size": 32, "lr": 0.001,
                          "optimizer": "adam"}, "vgg_adam"),
    "breeds-resnet18-frozen": ("breeds", (100, 20, 100),
                               {"model": "resnet18", "epochs": 3, "batch_size": 32, "lr": 0.003,
                                "optimizer": "adam", "freeze_backbone": True, "image_size": 64},
                               "resnet18_frozen"),
}
# The ctest version: the flip-sensitive glyphs only, smaller (about 30 s on 2 cores).
QUICK = {
    "glyphs-lenet": ("glyphs", (80, 20, 40), FULL["glyphs-lenet"][2], "lenet_sgd"),
}


def run_ours(root, dirs, hp, pretrained):
    cfg = os.path.join(root, "input", "config")
    os.makedirs(cfg)
    with open(os.path.join(cfg, "hyperparameters.json"), "w") as f:
        json.dump({k: json.dumps(v) for k, v in hp.items()}, f)
    data = os.path.join(root, "input", "data")
    os.makedirs(data)
    for name, d in dirs.items():
        os.symlink(d, os.path.join(data, name))
    if pretrained:
        os.makedirs(os.path.join(data, "pretrained"))
        os.symlink(pretrained, os.path.join(data, "pretrained", "model.pth"))
    env = dict(os.environ, OPT_ML=root)
    env.pop("TRAINING_JOB_NAME", None)
    p = subprocess.run([TRAIN, "train"], env=env, capture_output=True, text=True, timeout=1800)
    m = re.search(r"test_acc=([0-9.]+)", p.stdout + p.stderr)
    if p.returncode != 0 or not m:
        sys.exit(f"train failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 seed, small data (the ctest version)")
    ap.add_argument("--bar", type=float, default=1.0,
                    help="points ours may be below theirs, averaged over the seeds")
    ap.add_argument("--only", default="", help="comma-separated dataset names")
    ap.add_argument("--json", default="", help="write the results here too")
    ap.add_argument("--hp", default="{}",
                    help="JSON object of hyperparameters added to ours only, such as "
                         "'{\"resize_mode\": \"crop\"}' (the transform before resize_mode auto)")
    args = ap.parse_args()
    table = QUICK if args.quick else FULL
    extra_hp = json.loads(args.hp)
    seeds = 1 if args.quick else args.seeds
    names = [n for n in table if not args.only or n in args.only.split(",")]
    torch_threads = os.environ.get("PARITY_THREADS")
    if torch_threads:
        reference.torch.set_num_threads(int(torch_threads))
    results, failed = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        pretrained = os.path.join(tmp, "resnet18_seeded.pth")
        reference.save_pretrained(pretrained)
        for name in names:
            kind, per_class, hp, script = table[name]
            ours, theirs = [], []
            for seed in range(1, seeds + 1):
                root = os.path.join(tmp, f"{name}-{seed}")
                dirs = datasets.write_dataset(os.path.join(root, "data"), kind, per_class, seed)
                hp_seed = dict(hp, seed=seed)
                ours_hp = dict(hp_seed, **extra_hp)
                t0 = time.time()
                if script in ("lenet_sgd", "vgg_adam"):
                    theirs.append(getattr(reference, script)(dirs, hp_seed, seed))
                    ours.append(run_ours(os.path.join(root, "opt_ml"), dirs, ours_hp, None))
                else:
                    theirs.append(reference.resnet18_frozen(dirs, hp_seed, seed, pretrained))
                    ours.append(run_ours(os.path.join(root, "opt_ml"), dirs, ours_hp, pretrained))
                print(f"{name} seed {seed}: theirs {theirs[-1]:.4f} ours {ours[-1]:.4f} "
                      f"({time.time() - t0:.0f} s)", flush=True)
            mo, mt = sum(ours) / len(ours), sum(theirs) / len(theirs)
            results[name] = {"ours": ours, "theirs": theirs, "ours_mean": mo, "theirs_mean": mt}
            if mo < mt - args.bar / 100:
                failed.append(name)
    print(f"\n| dataset | seeds | their script (test acc) | our train (test acc) | difference |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {len(r['ours'])} | {r['theirs_mean']:.4f} | {r['ours_mean']:.4f} | "
              f"{(r['ours_mean'] - r['theirs_mean']) * 100:+.1f} points |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if failed:
        sys.exit(f"below theirs by more than {args.bar} points: {', '.join(failed)}")


if __name__ == "__main__":
    main()
