"""bench_report_overhead.py - what the training report (step timers, gradient-norm samples,
/proc reads, report.html, TensorBoard scalars) costs a training step.

Two measures on the same generated data:
(a) A/B: build/bin/train with training_report=false and =true, alternating, ROUNDS times
    each; the figure is the median images/s of the last epoch (the report is written after
    each epoch, so its writing is inside the next epoch's wall time only through the
    checkpoint phase; the epoch time printed in the metric line includes it);
    with --one-thread (OMP_NUM_THREADS=1, num_workers=1) the CPU seconds of each whole run
    (getrusage of the child) are compared too: on a shared machine they move much less than
    wall time;
(b) the profiler's own accounting: every report states, per epoch, the time spent inside its
    hooks (gradient sampling, device-event reads, /proc, laps x calibrated clock cost) as a
    share of the training loop.

usage: python bench/bench_report_overhead.py [--model resnet18] [--size 32] [--per-class 100]
       [--epochs 3] [--rounds 3] [--grad-every 50] [--one-thread]
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests/python"))
import make_image_dataset as images  # noqa: E402

TRAIN = os.environ.get("TRAIN_BIN", os.path.join(ROOT, "build/bin/train"))


def opt_ml(root, hp, per_class, size):
    cfg = os.path.join(root, "input/config")
    os.makedirs(cfg)
    with open(os.path.join(cfg, "hyperparameters.json"), "w") as f:
        json.dump({k: str(v) for k, v in hp.items()}, f)
    samples = images.generate(per_class, size, 1)
    images.write_folders(os.path.join(root, "input/data/train"), samples)
    images.write_folders(os.path.join(root, "input/data/validation"),
                         images.generate(max(per_class // 5, 2), size, 2))


def run(root, one_thread):
    env = dict(os.environ, OPT_ML=root)
    env.pop("TRAINING_JOB_NAME", None)
    if one_thread:
        env["OMP_NUM_THREADS"] = "1"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([TRAIN, "train"], env=env, capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rates = [float(x) for x in re.findall(r"images_per_sec=([0-9.]+)", r.stdout)]
    return rates[-1], cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--grad-every", type=int, default=50)
    ap.add_argument("--one-thread", action="store_true")
    a = ap.parse_args()
    rates = {False: [], True: []}
    cpus = {False: [], True: []}
    overheads = []
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(a.rounds):
            for on in (False, True):
                root = os.path.join(tmp, f"r{rnd}-{on}")
                hp = {"model": a.model, "epochs": a.epochs, "batch_size": 32, "lr": 0.01,
                      "image_size": a.size, "training_report": str(on).lower(),
                      "gradient_norm_interval": a.grad_every}
                if a.one_thread:
                    hp["num_workers"] = 1
                opt_ml(root, hp, a.per_class, a.size)
                rate, cpu = run(root, a.one_thread)
                rates[on].append(rate)
                cpus[on].append(cpu)
                if on:
                    html = open(os.path.join(root, "output/data/report.html")).read()
                    overheads += [float(x) for x in re.findall(r'data-key="overhead">([0-9.]+)%', html)]
                print(f"round {rnd + 1}: report {'on ' if on else 'off'} {rates[on][-1]:.1f} images/s, "
                      f"{cpus[on][-1]:.2f} CPU s",
                      flush=True)
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"median images/s: report off {off:.1f}, on {on:.1f}: {100 * (off - on) / off:+.2f}% cost")
    c_off, c_on = statistics.median(cpus[False]), statistics.median(cpus[True])
    print(f"median CPU seconds per run: report off {c_off:.2f}, on {c_on:.2f}: "
          f"{100 * (c_on - c_off) / c_off:+.2f}% cost")
    print(f"profiler's own accounting: {statistics.mean(overheads):.3f}% of the training loop "
          f"(max {max(overheads):.3f}%, over {len(overheads)} epochs)")


if __name__ == "__main__":
    main()
