"""test_distributed.py - data-parallel training with real processes over real sockets.

- Equivalence: 2 worker processes with batch B end with the same weights as 1 process with
  batch 2B on the same samples (Gloo all-reduce inside backward, sharded loading).
- Faults: a worker killed mid-epoch ends the job non-zero, with a failure file naming its
  rank, and no process left behind; killing the launcher takes its workers with it.
- Stop: SIGTERM to the launcher checkpoints every host and a restart resumes and finishes.
- Two hosts for real: two network namespaces joined by a veth pair, named algo-1 and algo-2
  through hosts files this test writes (ip netns exec mounts /etc/netns/<ns>/hosts), each
  running `train` with its own resourceconfig.json. Skipped only where namespaces cannot be
  made (not root, no CAP_SYS_ADMIN).

Environment: TRAIN_BIN (the program).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
from serve_process import free_port  # noqa: E402
from test_train import dataset, make_opt_ml, run_train, sdk_style  # noqa: E402

TRAIN = os.environ.get("TRAIN_BIN", "build/bin/train")

LENET = {"model": "lenet", "epochs": 2, "lr": 0.05, "momentum": 0.9, "augment": False,
         "seed": 3, "num_workers": 1}



def job(root, hp, train_per_class=32, val_per_class=6):
    make_opt_ml(root, hp)
    dataset(root / "input" / "data" / "train", train_per_class, seed=11)
    dataset(root / "input" / "data" / "validation", val_per_class, seed=12)
    return root


def weights(opt_ml):
    return torch.load(opt_ml / "model" / "model.pth", weights_only=True)


def max_difference(a, b):
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def epoch_lines(stdout):
    return [line for line in stdout.splitlines() if line.startswith("epoch=")]


def metric(line, key):
    return float(line.split(f"{key}=")[1].split()[0])


def test_two_processes_equal_one_with_twice_the_batch(tmp_path):
    two = job(tmp_path / "two", dict(LENET, batch_size=8, num_processes=2, master_port=free_port()))
    one = job(tmp_path / "one", dict(LENET, batch_size=16))
    small = job(tmp_path / "small", dict(LENET, batch_size=8))
    runs = {name: run_train(root) for name, root in
            (("two", two), ("one", one), ("small", small))}
    for name, r in runs.items():
        assert r.returncode == 0, f"{name}: {r.stderr[-3000:]}"

    assert "data parallel: 2 processes on 1 host(s) over Gloo, global batch 16" in runs["two"].stderr
    # Only rank 0 reports: one metric line per epoch, not one per process.
    assert len(epoch_lines(runs["two"].stdout)) == LENET["epochs"]
    assert runs["two"].stdout.count("best_validation_accuracy") == 1

    diff = max_difference(weights(two), weights(one))
    assert diff < 1e-5, f"2 x batch 8 and 1 x batch 16 differ by {diff}"
    # The comparison can fail: batch 8 in one process takes twice the steps.
    assert max_difference(weights(small), weights(one)) > 1e-3

    # Metrics are global: train sums and the sharded validation are reduced across ranks.
    for a, b in zip(epoch_lines(runs["two"].stdout), epoch_lines(runs["one"].stdout)):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert abs(metric(a, key) - metric(b, key)) <= 2e-4, (key, a, b)


def test_frozen_backbone_sends_only_the_head(tmp_path):
    hp = {"model": "resnet18", "image_size": 32, "epochs": 1, "freeze_backbone": True,
          "augment": False, "seed": 5, "num_workers": 1}
    two = job(tmp_path / "two", dict(hp, batch_size=8, num_processes=2, master_port=free_port()),
              train_per_class=8, val_per_class=2)
    one = job(tmp_path / "one", dict(hp, batch_size=16), train_per_class=8, val_per_class=2)
    for root in (two, one):
        r = run_train(root)
        assert r.returncode == 0, r.stderr[-3000:]
    a, b = weights(two), weights(one)
    # The backbone never moved on either side; the heads trained alike (not bit for bit:
    # batch norm normalises each process's 8 images, not the 16 of the single process).
    assert torch.equal(a["conv1.weight"], b["conv1.weight"])
    assert torch.equal(a["layer4.1.conv2.weight"], b["layer4.1.conv2.weight"])
    assert (a["fc.weight"] - b["fc.weight"]).abs().max() < 0.05


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def rank_of(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
    return int(env[b"RANK"])


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def start_long_job(root):
    hp = {"model": "resnet18", "image_size": 32, "epochs": 200, "batch_size": 8,
          "num_processes": 2, "master_port": free_port(), "dist_timeout": 20, "num_workers": 1}
    job(root, hp, train_per_class=16, val_per_class=2)
    env = dict(os.environ, OPT_ML=str(root))
    env.pop("TRAINING_JOB_NAME", None)
    log = open(root / "train.log", "w+")
    proc = subprocess.Popen([TRAIN, "train"], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while "epoch=1/" not in (root / "train.log").read_text():
        assert proc.poll() is None, (root / "train.log").read_text()
        assert time.time() < deadline, "the job never finished its first epoch"
        time.sleep(0.2)
    time.sleep(0.5)  # into the second epoch
    workers = children(proc.pid)
    assert len(workers) == 2
    return proc, {rank_of(p): p for p in workers}


def test_killed_worker_fails_the_job_with_its_rank(tmp_path):
    proc, workers = start_long_job(tmp_path)
    t0 = time.time()
    os.kill(workers[1], signal.SIGKILL)
    rc = proc.wait(timeout=60)
    took = time.time() - t0
    assert rc == 1
    assert took < 20 + 10, f"the job took {took:.0f} s to notice (collective timeout 20 s)"
    failure = (tmp_path / "output" / "failure").read_text()
    assert "rank 1 (local rank 1 on host algo-1) failed" in failure
    assert "killed by signal 9" in failure
    assert failure.endswith("\nreason=killed\n"), failure  # chosen by value (launcher.c)
    assert not any(alive(p) for p in workers.values()), "a worker outlived the job"


def test_killed_launcher_takes_its_workers_with_it(tmp_path):
    proc, workers = start_long_job(tmp_path)
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.time() + 10
    while any(alive(p) for p in workers.values()) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in workers.values()), "orphaned workers"


def test_sigterm_checkpoints_every_rank_and_the_job_resumes(tmp_path):
    hp = dict(LENET, epochs=400, batch_size=4, num_processes=2, master_port=free_port())
    root = job(tmp_path, hp)
    env = dict(os.environ, OPT_ML=str(root))
    env.pop("TRAINING_JOB_NAME", None)
    proc = subprocess.Popen([TRAIN, "train"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-3000:]
    assert "all 2 training process(es) stopped after writing their checkpoints" in err
    assert not (root / "output" / "failure").exists()  # a stop with checkpoints is no failure
    state = json.loads((root / "checkpoints" / "algo-1" / "state.json").read_text())
    done = len(epoch_lines(out))
    assert done < 400

    (root / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps(sdk_style(dict(hp, epochs=done + 2))))
    r = run_train(root)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed from the checkpoint" in r.stderr
    lines = epoch_lines(r.stdout)
    resumed_from = state["next_epoch"] + 1
    assert [int(line.split("/")[0][6:]) for line in lines] == list(range(resumed_from, done + 3))


# ---- two hosts in two network namespaces ------------------------------------------------

def sh(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


@pytest.fixture
def two_namespaces():
    tag = uuid.uuid4().hex[:6]
    names = [f"smic-{tag}-1", f"smic-{tag}-2"]
    made = []
    try:
        for ns in names:
            sh("ip", "netns", "add", ns)
            made.append(ns)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns])
        pytest.skip(f"cannot create network namespaces here ({getattr(e, 'stderr', e)}); "
                    "the two-host test needs root with CAP_SYS_ADMIN and iproute2")
    try:
        sh("ip", "link", "add", f"v{tag}a", "netns", names[0], "type", "veth",
           "peer", "name", f"v{tag}b", "netns", names[1])
        hosts = "127.0.0.1 localhost\n10.213.0.1 algo-1\n10.213.0.2 algo-2\n"
        for i, (ns, dev) in enumerate(zip(names, (f"v{tag}a", f"v{tag}b"))):
            # Both ends are called eth0, as every SageMaker host's interface is.
            sh("ip", "-n", ns, "link", "set", dev, "name", "eth0")
            sh("ip", "-n", ns, "addr", "add", f"10.213.0.{i + 1}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            os.makedirs(f"/etc/netns/{ns}", exist_ok=True)
            with open(f"/etc/netns/{ns}/hosts", "w") as f:
                f.write(hosts)
        yield names
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)


def test_two_hosts_train_together(tmp_path, two_namespaces):
    hp = dict(LENET, batch_size=8, dist_timeout=60)
    roots = []
    for i, host in enumerate(("algo-1", "algo-2")):
        root = job(tmp_path / host, hp)
        (root / "input" / "config" / "resourceconfig.json").write_text(json.dumps(
            {"current_host": host, "current_instance_type": "ml.c5.xlarge",
             "current_group_name": "homogeneousCluster", "hosts": ["algo-2", "algo-1"],
             "instance_groups": [{"instance_group_name": "homogeneousCluster",
                                  "instance_type": "ml.c5.xlarge", "hosts": ["algo-2", "algo-1"]}],
             "network_interface_name": "eth0"}))
        roots.append(root)
    procs = []
    for ns, root in zip(two_namespaces, roots):
        env = dict(os.environ, OPT_ML=str(root), TRAINING_JOB_NAME="two-host-test")
        # The second host starts later, as SageMaker hosts do; the first waits for it.
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, TRAIN, "train"], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        time.sleep(1.0)
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    (out1, err1), (out2, err2) = outs

    assert "algo-1: started 1 training process(es), ranks 0 to 0 of 2; rendezvous at " \
           "10.213.0.1:7777 (algo-1)" in err1
    assert "algo-2: started 1 training process(es), ranks 1 to 1 of 2; rendezvous at " \
           "10.213.0.1:7777 (algo-1)" in err2
    assert "data parallel: 2 processes on 2 host(s) over Gloo, global batch 16" in err1
    assert "algo-2: all 1 training process(es) finished" in err2
    # One model, written by algo-1; algo-2 reports nothing of its own.
    assert (roots[0] / "model" / "model.pth").exists()
    assert not (roots[1] / "model" / "model.pth").exists()
    assert len(epoch_lines(out1)) == hp["epochs"] and epoch_lines(out2) == []
    # Each host checkpoints under its own name.
    assert (roots[0] / "checkpoints" / "algo-1" / "state.json").exists()
    assert (roots[1] / "checkpoints" / "algo-2" / "state.json").exists()

    # Together they trained exactly as one process with the global batch does.
    one = job(tmp_path / "one", dict(LENET, batch_size=16))
    r = run_train(one)
    assert r.returncode == 0, r.stderr[-3000:]
    diff = max_difference(weights(roots[0]), weights(one))
    assert diff < 1e-5, f"two hosts and one process differ by {diff}"


def resource_config(root, current, hosts):
    (root / "input" / "config" / "resourceconfig.json").write_text(json.dumps(
        {"current_host": current, "hosts": hosts, "network_interface_name": "eth0"}))


def test_a_peer_that_never_comes_fails_the_rendezvous_in_time(tmp_path):
    root = job(tmp_path, dict(LENET, batch_size=8, dist_timeout=5, master_port=free_port()))
    resource_config(root, "localhost", ["localhost", "peer-that-never-starts"])
    t0 = time.time()
    r = run_train(root, timeout=120)
    took = time.time() - t0
    assert r.returncode == 1
    failure = (root / "output" / "failure").read_text()
    assert "rank 0 (local rank 0 on host localhost) failed" in failure
    assert "could not join the job" in failure
    assert took < 5 + 20, f"the rendezvous took {took:.0f} s to give up (timeout 5 s)"


def test_a_first_host_that_never_resolves_fails_in_time(tmp_path):
    root = job(tmp_path, dict(LENET, batch_size=8, dist_timeout=3))
    resource_config(root, "zz-second", ["zz-second", "zz-first"])
    t0 = time.time()
    r = run_train(root, timeout=120)
    assert r.returncode == 1
    assert "host zz-first did not resolve within 3 s" in (root / "output" / "failure").read_text()
    assert time.time() - t0 < 3 + 20


def test_ranks_that_see_different_data_fail_at_once_naming_it(tmp_path):
    # Two workers started by hand, as a launcher on each of two hosts would start them, but
    # one host holds fewer images: the ranks' steps would part ways mid-epoch.
    port = free_port()
    procs, roots = [], []
    for rank, per_class in ((0, 32), (1, 20)):
        root = job(tmp_path / f"rank{rank}", dict(LENET, batch_size=8, dist_timeout=60),
                   train_per_class=per_class)
        env = dict(os.environ, OPT_ML=str(root), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK="0",
                   LOCAL_WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(subprocess.Popen([TRAIN, "train"], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
        roots.append(root)
    t0 = time.time()
    for p, root in zip(procs, roots):
        p.communicate(timeout=120)
        assert p.returncode == 1
        assert "the ranks disagree on the train images (from 60 to 96" in \
            (root / "output" / "failure").read_text()
    assert time.time() - t0 < 30, "the mismatch was found by a timeout, not by the check"
