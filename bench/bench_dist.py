"""bench_dist.py - data-parallel training on this machine, ours and PyTorch DDP side by side.

(a) gradient all-reduce per step for resnet18 and resnet50 gradient sizes: build/bin/
    bench_allreduce (our tc_grad_sync: DDP's Reducer, 25 MiB buckets, Gloo) against
    torch.nn.parallel.DistributedDataParallel over the torchvision model, both with a loss
    that is the sum of the parameters, so that the step is the all-reduce; 1 rank (no
    synchronisation) against 2 ranks, the difference being the all-reduce's cost;
(b) training throughput with 1 and 2 worker processes: build/bin/train (num_processes) against
    a DDP training loop in Python (torchvision ImageFolder + DataLoader, same model, batch and
    transforms), second epoch's images/s over the whole job.

The scaling efficiency is throughput(2 workers) / throughput(1 worker). Both workers share the
same cores the single worker had, so 1.00 is the ideal here (a host with twice the cores would
make it 2.00): what falls short of it is the cost of synchronising.

usage: python bench/bench_dist.py [--steps 20] [--images-per-class 100] [--size 32]
       [--batch 32] [--skip-train] [--skip-allreduce]
Run it with the project's Python environment (~/.cache/sagemaker-ic-c/venv/bin/python).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torchvision
from torchvision import transforms

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
import make_image_dataset as images  # noqa: E402

sys.path.insert(0, HERE)
from serve_process import free_port  # noqa: E402
import bench_train  # noqa: E402

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]



def run_ranks(commands):
    """Starts one process per command, waits for all; returns rank 0's stdout."""
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    outs = [p.communicate(timeout=1800) for p in procs]
    for p, (out, err) in zip(procs, outs):
        if p.returncode != 0:
            raise SystemExit(f"{p.args}: exit {p.returncode}\n{err[-2000:]}")
    return outs[0][0]


# ---- (a) all-reduce --------------------------------------------------------------------

def our_step_ms(arch, world, steps):
    port = str(free_port())
    out = run_ranks([[os.path.join(ROOT, "build/bin/bench_allreduce"), arch, str(r), str(world),
                      port, str(steps)] for r in range(world)])
    return float(re.search(r"step_ms_median=([0-9.]+)", out).group(1))


class ParameterSum(torch.nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.net = getattr(torchvision.models, arch)(num_classes=1000)

    def forward(self):
        return sum(p.sum() for p in self.net.parameters())


def peer_allreduce_worker(arch, rank, world, port, steps):
    torch.set_num_threads(max(1, os.cpu_count() // world))
    model = ParameterSum(arch)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world)
        model = torch.nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)
    times = []
    for step in range(3 + steps):
        loss = model()
        t0 = time.perf_counter()
        loss.backward()
        if step >= 3:
            times.append((time.perf_counter() - t0) * 1e3)
    if rank == 0:
        print(f"step_ms_median={statistics.median(times):.2f}")
    if world > 1:
        dist.destroy_process_group()


def peer_step_ms(arch, world, steps):
    port = str(free_port())
    out = run_ranks([[sys.executable, __file__, "--peer-allreduce-worker", arch, str(r),
                      str(world), port, str(steps)] for r in range(world)])
    return float(re.search(r"step_ms_median=([0-9.]+)", out).group(1))


# ---- (b) training throughput -----------------------------------------------------------

def our_train_rate(data, size, batch, world, work):
    threads = max(1, os.cpu_count() // world)
    return bench_train.our_train_rate(
        data, size, threads, batch // world, work, name=f"opt_ml_{world}",
        extra_hp={"num_processes": str(world), "master_port": str(free_port())})


def peer_train_worker(data, size, batch, rank, world, port):
    """The DDP loop a Python user runs under torchrun, one process per rank."""
    torch.set_num_threads(max(1, os.cpu_count() // world))
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world)
    tf = transforms.Compose([transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    ds = torchvision.datasets.ImageFolder(data, transform=tf)
    sampler = torch.utils.data.DistributedSampler(ds, world, rank) if world > 1 else None
    dl = torch.utils.data.DataLoader(ds, batch_size=batch // world, sampler=sampler,
                                     shuffle=sampler is None,
                                     num_workers=max(1, os.cpu_count() // world),
                                     persistent_workers=True)
    model = torchvision.models.resnet18(num_classes=len(ds.classes))
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(2):
        if sampler:
            sampler.set_epoch(epoch)
        t0, n = time.time(), 0
        for x, y in dl:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
            n += x.shape[0]
        rate = n * world / (time.time() - t0)
    if rank == 0:
        print(f"images_per_sec={rate:.1f}")
    if world > 1:
        dist.destroy_process_group()


def peer_train_rate(data, size, batch, world):
    port = str(free_port())
    out = run_ranks([[sys.executable, __file__, "--peer-train-worker", data, str(size),
                      str(batch), str(r), str(world), port] for r in range(world)])
    return float(re.search(r"images_per_sec=([0-9.]+)", out).group(1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--images-per-class", type=int, default=100)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=32, help="global batch (split over the workers)")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-allreduce", action="store_true")
    p.add_argument("--peer-allreduce-worker", nargs=5)
    p.add_argument("--peer-train-worker", nargs=6)
    a = p.parse_args()
    if a.peer_allreduce_worker:
        arch, rank, world, port, steps = a.peer_allreduce_worker
        return peer_allreduce_worker(arch, int(rank), int(world), port, int(steps))
    if a.peer_train_worker:
        data, size, batch, rank, world, port = a.peer_train_worker
        return peer_train_worker(data, int(size), int(batch), int(rank), int(world), port)

    print(f"{os.cpu_count()} cores; Gloo over loopback; torch {torch.__version__}")
    if not a.skip_allreduce:
        print(f"\n(a) gradient all-reduce per step (median of {a.steps}), ms")
        print(f"{'model':10} {'grad MB':>8} {'side':>6} {'1 rank':>8} {'2 ranks':>8} "
              f"{'all-reduce':>11}")
        for arch, mb in (("resnet18", 44.6), ("resnet50", 97.5)):
            cost = {}
            for side, fn in (("ours", our_step_ms), ("DDP", peer_step_ms)):
                one, two = fn(arch, 1, a.steps), fn(arch, 2, a.steps)
                cost[side] = two - one
                print(f"{arch:10} {mb:8.1f} {side:>6} {one:8.1f} {two:8.1f} {two - one:11.1f}")
            print(f"{'':10} {'':8} {'ratio':>6} {'':8} {'':8} "
                  f"{cost['DDP'] / cost['ours']:10.2f}x (DDP's time / ours)")
    if not a.skip_train:
        work = tempfile.mkdtemp(prefix="bench-dist-")
        data = os.path.join(work, "images")
        images.write_folders(data, images.generate(a.images_per_class, a.size, seed=11), "jpg")
        print(f"\n(b) resnet18 training, {3 * a.images_per_class} JPEGs of {a.size}px, global "
              f"batch {a.batch}, images/s (second epoch)")
        print(f"{'side':6} {'1 worker':>9} {'2 workers':>10} {'efficiency':>11}")
        rates = {}
        for side, fn in (("ours", lambda w: our_train_rate(data, a.size, a.batch, w, work)),
                         ("DDP", lambda w: peer_train_rate(data, a.size, a.batch, w))):
            one, two = fn(1), fn(2)
            rates[side] = (one, two)
            print(f"{side:6} {one:9.1f} {two:10.1f} {two / one:11.2f}")
        print(f"{'ratio':6} {rates['ours'][0] / rates['DDP'][0]:8.2f}x "
              f"{rates['ours'][1] / rates['DDP'][1]:9.2f}x   (ours / DDP)")


if __name__ == "__main__":
    main()
