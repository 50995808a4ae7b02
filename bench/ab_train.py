"""ab_train.py - two builds of `train` side by side on the same job: a change's CPU cost.

Runs build A and build B in alternating rounds (A, B, A, B, ...) on one generated folder
dataset, so that a neighbour's load falls on both alike, and prints for each run the CPU
seconds (user + system), page faults, the largest process's peak RSS, every epoch's images/s
and the model's md5; then the medians and the ratio B/A. Equal md5s mean the change did not
alter what is trained.

usage: python bench/ab_train.py OLD/build/bin/train build/bin/train [--processes 2]
       [--model resnet18] [--size 64] [--batch 16] [--epochs 2] [--per-class 100] [--rounds 3]
Build A is usually a worktree of the commit before the change:
    git worktree add --detach /tmp/base HEAD~1 && (cd /tmp/base && ./build.sh)
Extra environment for both sides: --env NAME=VALUE (repeatable); for B alone: --env-b
NAME=VALUE (one build with and without a setting: pass the same binary twice).
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "python"))
import make_image_dataset as images  # noqa: E402
from serve_process import free_port  # noqa: E402


def one_run(binary, data, args, env_extra):
    """Runs `train` once on a fresh /opt/ml tree; returns its measurements."""
    root = tempfile.mkdtemp(prefix="ab_train_")
    try:
        os.makedirs(os.path.join(root, "input", "config"))
        os.makedirs(os.path.join(root, "input", "data"))
        os.symlink(data, os.path.join(root, "input", "data", "train"))
        hp = {"model": args.model, "epochs": args.epochs, "batch_size": args.batch,
              "image_size": args.size, "training_report": False, "num_workers": 1}
        if args.processes > 1:
            hp.update(num_processes=args.processes, master_port=free_port())
        with open(os.path.join(root, "input", "config", "hyperparameters.json"), "w") as f:
            json.dump({k: str(v).lower() if isinstance(v, bool) else str(v)
                       for k, v in hp.items()}, f)
        env = dict(os.environ, OPT_ML=root, **env_extra)
        out_path, err_path = os.path.join(root, "stdout"), os.path.join(root, "stderr")
        with open(out_path, "w") as out, open(err_path, "w") as err:
            start = time.monotonic()
            p = subprocess.Popen([binary, "train"], env=env, stdout=out, stderr=err)
            # wait4's usage is this run's alone: train's and its reaped workers'.
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            wall = time.monotonic() - start
        with open(out_path) as f:
            stdout = f.read()
        if p.returncode != 0:
            with open(err_path) as f:
                sys.exit(f"{binary} failed ({p.returncode}):\n{f.read()[-2000:]}")
        with open(os.path.join(root, "model", "model.pth"), "rb") as f:
            md5 = hashlib.md5(f.read()).hexdigest()[:8]
        return {"cpu_s": usage.ru_utime + usage.ru_stime, "sys_s": usage.ru_stime,
                "faults": usage.ru_minflt, "peak_mb": usage.ru_maxrss / 1024, "wall_s": wall,
                "rates": [float(x) for x in re.findall(r"images_per_sec=([0-9.]+)", stdout)],
                "md5": md5}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--env-b", action="append", default=[])
    args = ap.parse_args()
    env_a = dict(e.split("=", 1) for e in args.env)
    env_b = dict(env_a, **dict(e.split("=", 1) for e in args.env_b))

    data = tempfile.mkdtemp(prefix="ab_train_data_")
    try:
        images.write_folders(data, images.generate(args.per_class, args.size, 3))
        runs = {"A": [], "B": []}
        for rnd in range(1, args.rounds + 1):
            for side, binary, env in (("A", args.a, env_a), ("B", args.b, env_b)):
                m = one_run(binary, data, args, env)
                runs[side].append(m)
                print(f"round {rnd} {side}: cpu {m['cpu_s']:.2f} s (sys {m['sys_s']:.2f}), "
                      f"faults {m['faults']}, peak {m['peak_mb']:.0f} MB, wall {m['wall_s']:.1f} s, images/s "
                      f"{' '.join(f'{x:.1f}' for x in m['rates'])}, model {m['md5']}", flush=True)
        med = {s: statistics.median(m["cpu_s"] for m in runs[s]) for s in runs}
        flt = {s: statistics.median(m["faults"] for m in runs[s]) for s in runs}
        print(f"median cpu s: A {med['A']:.2f}, B {med['B']:.2f}, B/A {med['B'] / med['A']:.3f}")
        print(f"median faults: A {flt['A']:.0f}, B {flt['B']:.0f}")
        peak = {s: statistics.median(m["peak_mb"] for m in runs[s]) for s in runs}
        print(f"median peak RSS of the largest process: A {peak['A']:.0f} MB, B {peak['B']:.0f} MB")
        same = {m["md5"] for m in runs["A"] + runs["B"]}
        print("models: identical" if len(same) == 1 else f"models: differ {sorted(same)}")
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
