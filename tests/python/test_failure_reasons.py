"""test_failure_reasons.py - why `train` failed, as a value: the failure file's last line is
"reason=<name>" (README.md "What it writes"), and the launcher chooses which worker's failure
is the job's by that value, never by the wording of a message.

Every path the launcher takes, with real processes (2 worker processes on CPU, Gloo):
- a worker fails with a reason of its own (config, data, model, out_of_memory): the job's
  failure file names the rank and carries that reason;
- a worker is killed by a signal: reason=killed (test_distributed.py's kill test checks it too);
- a peer failure: rank 0 fails at the end of an epoch, rank 1 learns of it at its next
  agreement (reason peer_failed) and usually exits first; the job's failure is rank 0's own;
- SIGTERM to the launcher while training: 143, checkpoints, no failure file
  (test_distributed.py's SIGTERM test);
- SIGTERM while the workers are still setting up (indexing a large RecordIO channel): 143
  within seconds, reason=stopped; the same for a single process, and for the launcher itself
  while it waits for the first host's name (before any worker starts);
- paths too long for their buffers refused naming them (reason data / config).

Environment: TRAIN_BIN (the program).
"""
import os
import resource
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from recordio_writer import frame, pack  # noqa: E402
from test_distributed import LENET, children, free_port, job  # noqa: E402
from test_train import make_opt_ml, run_train  # noqa: E402

TRAIN = os.environ.get("TRAIN_BIN", "build/bin/train")


def failure(root):
    """(sentence, reason) of the job's failure file."""
    text = (root / "output" / "failure").read_text()
    assert text.endswith("\n"), repr(text[-200:])
    lines = text.rstrip("\n").split("\n")
    assert lines[-1].startswith("reason="), text
    assert not lines[0].startswith("reason="), text  # the sentence comes first
    return "\n".join(lines[:-1]), lines[-1][len("reason="):]


def two_workers(root, **hp):
    hp = dict(dict(LENET, batch_size=8, num_processes=2, master_port=free_port(),
                   dist_timeout=30), **hp)
    return job(root, hp, train_per_class=16, val_per_class=2)


def break_pretrained(root):
    channel = root / "input" / "data" / "pretrained"
    channel.mkdir(parents=True)
    (channel / "model.pth").write_bytes(b"PK\x03\x04 this is not a torch.save file")


def empty_train_channel(root):
    train = root / "input" / "data" / "train"
    for p in sorted(train.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    (train / "cat").mkdir()


# ---- one process: the failure file carries the reason too ----

@pytest.mark.parametrize("reason,spoil,words", [
    ("config", lambda root: (root / "input/config/hyperparameters.json").write_text(
        '{"epochs": "0"}'), "hyperparameter epochs"),
    ("data", empty_train_channel, "has no images"),
    ("model", break_pretrained, "pretrained channel"),
])
def test_one_process_failure_names_its_reason(tmp_path, reason, spoil, words):
    root = job(tmp_path, dict(LENET, batch_size=8), train_per_class=4, val_per_class=2)
    spoil(root)
    r = run_train(root, timeout=120)
    assert r.returncode == 1, r.stderr[-3000:]
    sentence, got = failure(root)
    assert got == reason, sentence
    assert words in sentence


# ---- the launcher: a worker's own reason becomes the job's ----

def address_sanitized(binary):
    """True for a build with AddressSanitizer, which reserves terabytes of shadow memory at
    start and so cannot run under an address-space limit."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def limit_address_space():
    # Whatever the machine's overcommit policy, an allocation of hundreds of GB fails here
    # instead of being granted and then filled.
    resource.setrlimit(resource.RLIMIT_AS, (64 << 30, 64 << 30))


@pytest.mark.parametrize("reason,spoil,hp,words", [
    ("data", empty_train_channel, {}, "has no images"),
    ("model", break_pretrained, {}, "pretrained channel"),
    ("config", None, {"top_k": 5}, "top_k=5 is more than the 3 classes"),
    # (threads + 2) batches of 65536 images of 1024x1024: 824 GB each.
    ("out_of_memory", None, {"model": "resnet18", "image_size": 1024, "batch_size": 65536},
     "out of memory for"),
])
def test_a_workers_reason_is_the_jobs(tmp_path, reason, spoil, hp, words):
    if reason == "out_of_memory" and address_sanitized(TRAIN):
        pytest.skip("the address-space limit that makes the allocation fail stops ASan itself")
    root = two_workers(tmp_path, **hp)
    if spoil:
        spoil(root)
    env = dict(os.environ, OPT_ML=str(root))
    env.pop("TRAINING_JOB_NAME", None)
    r = subprocess.run([TRAIN, "train"], env=env, capture_output=True, text=True, timeout=240,
                       preexec_fn=limit_address_space if reason == "out_of_memory" else None)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "started 2 training process(es)" in r.stderr  # the workers failed, not the launcher
    sentence, got = failure(root)
    assert got == reason, sentence
    assert sentence.startswith("rank ") and "on host algo-1) failed: " in sentence, sentence
    assert words in sentence, sentence


def test_a_peers_failure_gives_way_to_the_failing_rank(tmp_path):
    """/opt/ml/model is a file: rank 0 cannot save the best model after epoch 1. It tells rank 1
    at the epoch's last agreement; rank 1 stops with "stopped because rank 0 failed" (reason
    peer_failed) and is usually reaped first, since rank 0 still writes its report. The job's
    failure is rank 0's, chosen by reason."""
    root = two_workers(tmp_path, epochs=3)
    (root / "model").write_text("not a folder")
    t0 = time.time()
    r = run_train(root, timeout=240)
    assert r.returncode == 1, r.stderr[-3000:]
    sentence, got = failure(root)
    assert got == "io", sentence
    assert sentence.startswith("rank 0 (local rank 0 on host algo-1) failed: saving the best "
                               "model"), sentence
    assert "[rank 1] stopped because rank 0 failed" in r.stderr, r.stderr[-3000:]
    assert time.time() - t0 < 30 + 60, "rank 1 waited for a collective timeout"


# ---- SIGTERM during set-up ----

def big_recordio_channel(root, records=3_000_000):
    """A train channel whose indexing takes seconds: millions of tiny records (each a valid
    frame; the scan reads every one of them before any image is decoded)."""
    channel = root / "input" / "data" / "train"
    for p in sorted(channel.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    one = frame(pack(0, b"\xff\xd8\xff\xd9"))
    (channel / "big.rec").write_bytes(one * records)
    return channel / "big.rec"


def wait_until_open(pids, path, proc, timeout=60):
    """Until one of pids holds `path` open (the channel is being indexed)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "train ended before the signal"
        for pid in pids():
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except FileNotFoundError:
                continue
            for fd in fds:
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                        return
                except FileNotFoundError:
                    pass
        time.sleep(0.005)
    pytest.fail(f"{path} was never opened")


def start(root):
    env = dict(os.environ, OPT_ML=str(root))
    env.pop("TRAINING_JOB_NAME", None)
    log = open(root / "train.log", "w+")
    return subprocess.Popen([TRAIN, "train"], env=env, stdout=log, stderr=subprocess.STDOUT)


def check_stopped_in_setup(root, proc, t0):
    rc = proc.wait(timeout=60)
    took = time.time() - t0
    log = (root / "train.log").read_text()
    print(f"SIGTERM to exit: {took:.2f} s")  # README's figure (pytest -s)
    assert rc == 143, log[-3000:]
    assert took < 10, f"{took:.1f} s from SIGTERM to exit"
    assert "train channel:" not in log, "the signal came after the indexing"  # set-up was cut
    sentence, reason = failure(root)
    assert reason == "stopped", sentence
    assert "stopped by a signal during set-up" in sentence
    assert not (root / "model" / "model.pth").exists()
    assert not (root / "checkpoints").exists()


def test_sigterm_during_setup_stops_one_process_promptly(tmp_path):
    root = job(tmp_path, dict(LENET, batch_size=8), train_per_class=2, val_per_class=2)
    rec = big_recordio_channel(root)
    proc = start(root)
    wait_until_open(lambda: [proc.pid], rec, proc)
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    check_stopped_in_setup(root, proc, t0)


def test_sigterm_during_the_workers_setup_stops_the_job_promptly(tmp_path):
    root = two_workers(tmp_path)
    rec = big_recordio_channel(root)
    proc = start(root)
    wait_until_open(lambda: children(proc.pid), rec, proc)
    workers = children(proc.pid)
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    check_stopped_in_setup(root, proc, t0)
    assert not any(os.path.exists(f"/proc/{p}") and
                   open(f"/proc/{p}/stat").read().split(") ")[1][0] != "Z" for p in workers)


def test_sigterm_while_the_launcher_waits_for_the_first_host(tmp_path):
    """The launcher itself, before any worker: resolving a first host that never comes up."""
    root = job(tmp_path, dict(LENET, batch_size=8, dist_timeout=120), train_per_class=2,
               val_per_class=2)
    (root / "input/config/resourceconfig.json").write_text(
        '{"current_host": "zz-second", "hosts": ["zz-second", "zz-first"]}')
    proc = start(root)
    time.sleep(2)  # libtorch loaded, the name being retried (a signal before that waits too)
    assert proc.poll() is None, (root / "train.log").read_text()[-3000:]
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    took = time.time() - t0
    assert rc == 143, (root / "train.log").read_text()[-3000:]
    assert took < 10, f"{took:.1f} s from SIGTERM to exit"
    sentence, reason = failure(root)
    assert reason == "stopped", sentence
    assert "stopped by a signal during set-up" in sentence


def test_the_failure_file_reads_back_without_its_reason_line(tmp_path):
    """SageMaker shows the file's first 1024 characters: the sentence, whole, comes first."""
    root = job(tmp_path, dict(LENET, batch_size=8), train_per_class=4, val_per_class=2)
    (root / "input/config/hyperparameters.json").write_text('{"optimizer": "lamb"}')
    r = run_train(root, timeout=120)
    assert r.returncode == 1
    text = (root / "output" / "failure").read_text()
    assert text == ('hyperparameter optimizer="lamb" is not valid: sgd, nag, adam, adamw or '
                    'rmsprop expected\nreason=config\n'), text


# ---- paths that do not fit are refused by name, never shortened into another file's ----

def test_a_too_long_lst_path_is_refused_naming_it(tmp_path):
    root = make_opt_ml(tmp_path / "opt_ml", dict(LENET, batch_size=8), ["train"])
    long_name = "d" * 200 + "/" + "/".join(["x" * 200] * 20) + "/image.png"  # 4,210 characters
    (root / "input/data/train/train.lst").write_text(f"0\t0\t{long_name}\n")
    r = run_train(root, timeout=120)
    assert r.returncode == 1, r.stderr[-3000:]
    sentence, reason = failure(root)
    assert reason == "data", sentence
    whole = str(root / "input/data/train") + "/" + long_name
    assert f"train.lst line 1: path too long ({len(whole)} characters, at most 4095): " \
        f"{whole[:300]} ... {whole[-300:]} (its first and last 300 characters)" in sentence, sentence


def test_a_too_long_checkpoint_path_is_refused_naming_it(tmp_path):
    root = job(tmp_path, dict(LENET, batch_size=8), train_per_class=4, val_per_class=2)
    local = "/tmp/" + "c" * 1100
    (root / "input/config/checkpointconfig.json").write_text(
        '{"LocalPath": "%s", "S3Uri": "s3://bucket/checkpoints"}' % local)
    r = run_train(root, timeout=120)
    assert r.returncode == 1, r.stderr[-3000:]
    sentence, reason = failure(root)
    assert reason == "config", sentence
    assert "checkpointconfig.json, LocalPath: path too long (1105 characters, at most 1023): " \
        f"{local[:300]} ... {local[-300:]} (its first and last 300 characters)" in sentence, sentence
