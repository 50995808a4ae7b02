"""test_train.py - the `train` program end to end, as SageMaker runs it.

Each test writes a real /opt/ml tree (SDK-style string hyperparameters, real PNG/JPEG files
made by make_image_dataset.py), runs build/bin/train on it as a separate process, and checks
what a user would: the exit status, the log and metric lines, the failure file, and the
artifacts, which must load in Python (the seed's LeNet, torchvision's ResNet).

Environment: TRAIN_BIN (the program), README (for the metric definitions).
"""
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest
import torch
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
import cifar_python_batches  # noqa: E402
import make_image_dataset as images  # noqa: E402
from reference_models import make_model, metadata_eval_transform  # noqa: E402

TRAIN = os.environ.get("TRAIN_BIN", "build/bin/train")
README = os.environ.get("README", os.path.join(os.path.dirname(__file__), "../../README.md"))

LENET_FAST = {"model": "lenet", "epochs": 15, "batch_size": 16, "lr": 0.003,
              "optimizer": "adam", "lr_scheduler": "cosine", "min_crop_scale": 0.7}


def sdk_style(hp):
    """As the SageMaker Python SDK writes them: every value JSON-encoded into a string."""
    return {k: json.dumps(v) for k, v in hp.items()}


def make_opt_ml(root, hp, channels=None, input_config=None):
    cfg = root / "input" / "config"
    cfg.mkdir(parents=True)
    (cfg / "hyperparameters.json").write_text(json.dumps(sdk_style(hp)))
    (cfg / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}))
    if input_config is not None:
        (cfg / "inputdataconfig.json").write_text(json.dumps(input_config))
    for name in channels or []:
        (root / "input" / "data" / name).mkdir(parents=True, exist_ok=True)
    return root


def dataset(path, per_class, seed, fmt="folders", **kw):
    samples = images.generate(per_class, 32, seed)
    {"folders": images.write_folders, "cifar": images.write_cifar,
     "lst": lambda p, s: images.write_lst(p, s, kw.get("lst_dir"))}[fmt](str(path), samples)


def run_train(opt_ml, timeout=600, env_extra=None):
    env = dict(os.environ, OPT_ML=str(opt_ml))
    env.pop("TRAINING_JOB_NAME", None)
    env.update(env_extra or {})
    return subprocess.run([TRAIN, "train"], env=env, capture_output=True, text=True,
                          timeout=timeout)


def metric_definitions():
    """The list README.md gives users, exactly as written there."""
    text = open(README).read()
    block = text.split("<!-- metric-definitions -->", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    return json.loads(block)


def failure_text(opt_ml):
    return (opt_ml / "output" / "failure").read_text()


def no_temporaries(root):
    return [str(p) for p in root.rglob("*") if ".tmp" in p.name]


def python_eval(model, metadata, folder):
    """Accuracy of `model` on an ImageFolder with the metadata's eval transform, in PyTorch."""
    tf = metadata_eval_transform(metadata)
    ds = torchvision.datasets.ImageFolder(str(folder), transform=tf)
    assert ds.classes == metadata["class_names"]
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(ds, batch_size=64):
            correct += (model(x).argmax(1) == y).sum().item()
    return correct / len(ds)


def test_end_to_end_class_folders(tmp_path):
    hp = dict(LENET_FAST, sagemaker_program="train.py", sagemaker_region="us-east-1",
              _tuning_objective_metric="validation:accuracy", foo="bar")
    root = make_opt_ml(tmp_path / "opt_ml", hp)
    dataset(root / "input/data/train", 100, seed=1)
    dataset(root / "input/data/test", 30, seed=2)
    r = run_train(root)
    assert r.returncode == 0, r.stderr
    assert "unknown hyperparameter foo=\"bar\" ignored" in r.stderr
    assert "held out of train (no validation channel)" in r.stderr

    # Every metric definition in the README matches the real output.
    found = {}
    for m in metric_definitions():
        values = re.findall(m["Regex"], r.stdout)
        assert values, f"{m['Name']}: {m['Regex']} matched nothing in:\n{r.stdout}"
        found[m["Name"]] = [float(v) for v in values]
    assert len(found["validation:accuracy"]) == 15
    assert max(found["validation:accuracy"]) >= 0.9, found["validation:accuracy"]
    test_acc = found["test:accuracy"][-1]
    assert test_acc >= 0.85
    # The seeds' own regex (binimages HPO project) works too.
    assert re.findall(r"Testing Loss: ([0-9\.]+)", r.stdout)

    model_dir = root / "model"
    meta = json.loads((model_dir / "metadata.json").read_text())
    assert meta["arch"] == "lenet" and meta["class_names"] == images.CLASSES
    # Adam without weight_decay given: none, as torch.optim.Adam and the built-in algorithm.
    assert "weight_decay 0 for optimizer=adam (not given" in r.stderr
    assert meta["hyperparameters"]["weight_decay"] == 0
    assert meta["image_size"] == 32 and meta["metrics"]["test_acc"] == pytest.approx(test_acc, abs=1e-4)
    metrics = json.loads((root / "output/data/metrics.json").read_text())
    assert len(metrics["epochs"]) == 15
    assert len(metrics["test"]["confusion_matrix"]) == 3
    assert sum(map(sum, metrics["test"]["confusion_matrix"])) == 90
    with tarfile.open(root / "output/model.tar.gz") as t:
        assert sorted(t.getnames()) == ["metadata.json", "model.pth"]
    assert not no_temporaries(root)

    # The model loads into the seed's LeNet in plain PyTorch and reproduces the test accuracy.
    net = make_model("lenet", 3)
    net.load_state_dict(torch.load(model_dir / "model.pth", weights_only=True))
    py_acc = python_eval(net, meta, root / "input/data/test")
    assert abs(py_acc - test_acc) <= 2 / 90, (py_acc, test_acc)


def test_lst_manifests_in_their_own_channels(tmp_path):
    hp = dict(LENET_FAST, epochs=10)
    channels = {n: {"ContentType": "application/x-image", "TrainingInputMode": "File"}
                for n in ["train", "train_lst", "validation", "validation_lst"]}
    root = make_opt_ml(tmp_path / "opt_ml", hp, input_config=channels)
    data = root / "input/data"
    dataset(data / "train", 60, seed=3, fmt="lst", lst_dir=str(data / "train_lst"))
    dataset(data / "validation", 20, seed=4, fmt="lst", lst_dir=str(data / "validation_lst"))
    r = run_train(root)
    assert r.returncode == 0, r.stderr
    assert "180 images in 3 classes (.lst manifest)" in r.stderr
    assert "60 images from the validation channel" in r.stderr
    acc = [float(v) for v in re.findall(r"val_acc=([0-9.]+)", r.stdout)]
    assert max(acc) >= 0.8, acc
    assert json.loads((root / "model/metadata.json").read_text())["class_names"] == ["0", "1", "2"]


def test_cifar_download_folder_and_bad_labels(tmp_path):
    """The standard CIFAR-10 folder holds data_batch_* and test_batch.bin: train on the former."""
    root = make_opt_ml(tmp_path / "opt_ml", dict(LENET_FAST, epochs=1), channels=[])
    train = root / "input/data/train"
    dataset(train, 20, seed=5, fmt="cifar")
    (train / "data_batch_1.bin").rename(train / "data_batch_2.bin")
    dataset(train, 10, seed=6, fmt="cifar")  # data_batch_1.bin again, now 30 records
    (train / "data_batch_1.bin").rename(train / "test_batch.bin")
    r = run_train(root)
    assert r.returncode == 0, r.stderr
    assert "60 images in 10 classes (CIFAR-10 binary)" in r.stderr  # test_batch.bin left out

    bad = make_opt_ml(tmp_path / "bad", dict(LENET_FAST, epochs=1), channels=[])
    dataset(bad / "input/data/train", 5, seed=7, fmt="cifar")
    batch = bytearray((bad / "input/data/train/data_batch_1.bin").read_bytes())
    batch[0] = 200  # a label byte no CIFAR-10 class has
    (bad / "input/data/train/data_batch_1.bin").write_bytes(bytes(batch))
    assert run_train(bad).returncode == 1
    assert "has label 200" in failure_text(bad)


def test_hostile_pretrained_file_is_refused(tmp_path):
    """A .pth whose pickle nests a tuple a million deep, or holds a dict inside itself."""
    import zipfile
    for name, pickle in [("deep", b"\x80\x02N" + b"\x85" * 1000000 + b"."),
                         ("cycle", b"\x80\x02}q\x00(X\n\x00\x00\x00state_dicth\x00X\x01\x00\x00\x00xNu.")]:
        root = make_opt_ml(tmp_path / name, dict(LENET_FAST, epochs=1), channels=["pretrained"])
        dataset(root / "input/data/train", 5, seed=1)
        with zipfile.ZipFile(root / "input/data/pretrained/model.pth", "w") as z:
            z.writestr("archive/data.pkl", pickle)
            z.writestr("archive/byteorder", "little")
            z.writestr("archive/version", "3\n")
        r = run_train(root, timeout=60)
        assert r.returncode == 1, r.stderr
        text = failure_text(root)
        assert "pretrained channel" in text and ("deeper than 64" in text or "inside itself" in text), text


def test_cifar_binary_batches(tmp_path):
    root = make_opt_ml(tmp_path / "opt_ml", dict(LENET_FAST, epochs=10), channels=[])
    dataset(root / "input/data/training", 80, seed=5, fmt="cifar")
    r = run_train(root)
    assert r.returncode == 0, r.stderr
    assert "240 images in 10 classes (CIFAR-10 binary)" in r.stderr
    meta = json.loads((root / "model/metadata.json").read_text())
    assert meta["class_names"][:3] == images.CLASSES and meta["num_classes"] == 10
    acc = [float(v) for v in re.findall(r"val_acc=([0-9.]+)", r.stdout)]
    assert max(acc) >= 0.7, acc


def test_frozen_backbone_from_torchvision_weights(tmp_path):
    hp = {"model": "resnet18", "epochs": 1, "batch_size": 30, "image_size": 32, "lr": 0.05,
          "freeze_backbone": "True"}
    root = make_opt_ml(tmp_path / "opt_ml", hp, channels=["pretrained"])
    dataset(root / "input/data/train", 20, seed=6)
    torch.manual_seed(0)
    pretrained = torchvision.models.resnet18(num_classes=1000).state_dict()  # as ImageNet's
    torch.save(pretrained, root / "input/data/pretrained/resnet18-imagenet.pth")
    r = run_train(root)
    assert r.returncode == 0, r.stderr
    assert "classifier head re-initialised (class count differs)" in r.stderr
    assert "11178051 parameters (1539 trainable)" in r.stderr
    trained = torch.load(root / "model/model.pth", weights_only=True)
    assert trained["fc.weight"].shape == (3, 512)
    params = dict(torchvision.models.resnet18(num_classes=3).named_parameters())
    backbone = [k for k in params if not k.startswith("fc.")]
    assert all(torch.equal(trained[k], pretrained[k]) for k in backbone)
    model = torchvision.models.resnet18(num_classes=3)
    model.load_state_dict(trained)  # strict: the names and shapes are torchvision's


def test_early_stopping(tmp_path):
    hp = dict(LENET_FAST, epochs=40, early_stopping_patience=2, lr_scheduler="none")
    root = make_opt_ml(tmp_path / "opt_ml", hp)
    dataset(root / "input/data/train", 60, seed=9)
    r = run_train(root)
    assert r.returncode == 0, r.stderr
    assert re.search(r"early stopping at epoch \d+: no better validation accuracy for 2 epochs",
                     r.stderr)
    epochs = re.findall(r"^epoch=(\d+)/40", r.stdout, re.M)
    assert 3 <= len(epochs) < 40, epochs
    meta = json.loads((root / "model/metadata.json").read_text())
    assert meta["metrics"]["best_epoch"] == len(epochs) - 2


@pytest.mark.parametrize("key,value,message", [
    ("lr", "-1", "hyperparameter lr=\"-1\" is not valid: a number in (0, 10] expected"),
    ("model", "resnet19", "hyperparameter model=\"resnet19\" is not a model this image has"),
    ("batch_size", "abc", "hyperparameter batch_size=\"abc\" is not valid: an integer from 1"),
    ("epochs", "0", "hyperparameter epochs=\"0\" is not valid"),
    ("optimizer", "adagrad", "hyperparameter optimizer=\"adagrad\" is not valid: sgd, nag, adam, adamw or rmsprop"),
    # The built-in algorithm's hyperparameters: each honoured, or refused naming the difference.
    ("multi_label", "1", "multi-label training (several labels per image, sigmoid outputs) is not supported"),
    ("num_layers", "20", "the built-in algorithm's ResNet-20 is not one this image has"),
    ("augmentation_type", "flip", "hyperparameter augmentation_type=\"flip\" is not valid: crop, crop_color or crop_color_transform"),
    ("lr_scheduler_step", "20,10", "hyperparameter lr_scheduler_step=\"20,10\" is not valid: epochs separated by commas, ascending"),
    ("precision_dtype", "float64", "hyperparameter precision_dtype=\"float64\" is not valid: float32 or float16"),
    ("kv_store", "nccl", "hyperparameter kv_store=\"nccl\" is not valid: dist_sync or dist_async"),
    ("mean", "0.5,0.5", "hyperparameter mean=\"0.5,0.5\" is not valid: one number or three"),
    ("std", "0", "hyperparameter std=\"0\" is not valid"),
    ("eval_resize", "stretch", "hyperparameter eval_resize=\"stretch\" is not valid: auto, crop (shorter side + centre crop) or squash"),
    ("top_k", "1", "hyperparameter top_k=\"1\" is not valid: an integer >= 2"),
    ("top_k", "5", "hyperparameter top_k=5 is more than the 3 classes"),
    ("resize", "20", "hyperparameter resize=20 is smaller than the 32x32 input"),
    ("use_pretrained_model", "1", "use_pretrained_model=1: this image downloads nothing. Save torchvision's weights"),
    ("augment", "true\", \"augmentation_type\": \"crop", "augment and augmentation_type are both given"),
    ("precision_dtype", "float16\", \"amp\": \"false", "precision_dtype=float16 and amp=false contradict"),
    ("lr_scheduler_step", "2\", \"lr_scheduler\": \"cosine", "lr_scheduler=cosine and lr_scheduler_step are both given"),
    ("image_shape", "3,32,48", "hyperparameter image_shape=\"3,32,48\" is not valid"),
    ("freeze_backbone", "maybe", "hyperparameter freeze_backbone=\"maybe\" is not valid: true or false"),
])
def test_bad_hyperparameter_fails_before_any_work(tmp_path, key, value, message):
    hp = dict(LENET_FAST, **{key: value})
    if '", "' in value:  # a second key rides along: 'v1", "key2": "v2'
        first, rest = value.split('", "', 1)
        key2, value2 = rest.split('": "', 1)
        hp = dict(LENET_FAST, **{key: first, key2: value2})
    root = make_opt_ml(tmp_path / "opt_ml", hp)
    dataset(root / "input/data/train", 5, seed=1)
    r = run_train(root)
    assert r.returncode == 1
    assert message in failure_text(root)
    assert "epoch=" not in r.stdout


def test_builtin_algorithm_hyperparameters_are_followed(tmp_path):
    """The built-in image-classification algorithm's names and meanings, each visibly used."""
    hp = {"model": "lenet", "epochs": 8, "mini_batch_size": 16, "learning_rate": 0.05,
          "optimizer": "nag", "momentum": 0.9, "lr_scheduler_step": "2,3",
          "lr_scheduler_factor": 0.5, "early_stopping": True, "early_stopping_min_epochs": 4,
          "early_stopping_patience": 1, "early_stopping_tolerance": 1.0,
          "augmentation_type": "crop", "top_k": 2, "use_weighted_loss": 1,
          "num_training_samples": 999, "kv_store": "dist_sync", "precision_dtype": "float32",
          "checkpoint_frequency": 2, "resize": 40, "image_shape": "3,32,32",
          "mean": "0.4,0.45,0.5", "std": "0.25", "eval_resize": "squash",
          "use_pretrained_model": 0, "multi_label": 0, "seed": 3}
    root = make_opt_ml(tmp_path / "opt_ml", hp)
    dataset(root / "input/data/train", 40, seed=4)
    dataset(root / "input/data/test", 10, seed=5)
    r = run_train(root)
    assert r.returncode == 0, r.stderr[-3000:]
    log = r.stderr
    # lr_scheduler_step "2,3" with factor 0.5: epochs 1-2 at 0.05, 3 at 0.025, 4 on at 0.0125.
    lrs = {int(e): float(v) for e, v in re.findall(r"^epoch=(\d+)/8 .* lr=([0-9.e-]+)", r.stdout, re.M)}
    want = {1: 0.05, 2: 0.05, 3: 0.025, 4: 0.0125, 5: 0.0125}
    assert all(abs(lrs[e] - want[e]) < 1e-9 for e in lrs), lrs
    # early stopping: a doubling is needed to count as better, so it stops once epoch 4 is
    # reached and an epoch fails to double the best (at epoch 4 or 5).
    stop = re.search(r"early stopping at epoch (\d+)", log)
    assert stop and int(stop.group(1)) in (4, 5), log[-2000:]
    assert len(lrs) == int(stop.group(1))
    assert "lr schedule: lr x 0.5 after each of epochs 2, 3" in log
    assert "training: 8 epochs, batch 16, nag lr 0.05" in log
    assert "augmentation crop (random crop + horizontal flip) (augmentation_type)" in log
    assert "use_weighted_loss: cross entropy weighted by inverse class frequency" in log
    assert "num_training_samples=999, but the train channel holds 120 images" in log
    assert "kv_store=dist_sync has no meaning here" in log
    assert "checkpoints every 2 epochs" in log
    assert re.search(r"^epoch=1/8 val_top_2_acc=[0-9.]+$", r.stdout, re.M)
    assert re.search(r"^test_top_2_acc=[0-9.]+$", r.stdout, re.M)
    # The built-in's own epoch lines (MXNet's, 0-based), equal to ours, for copied regexes.
    ours = [float(v) for v in re.findall(r"^epoch=\d+/8 .* val_acc=([0-9.]+)", r.stdout, re.M)]
    builtin = [float(v) for v in re.findall(r"Epoch\[\d+\] Validation-accuracy=(\S+)", r.stdout)]
    assert len(builtin) == len(ours) and builtin == pytest.approx(ours, abs=1e-4), (builtin, ours)
    assert [int(e) for e in re.findall(r"Epoch\[(\d+)\] Train-accuracy=[0-9.]+", r.stdout)] == \
        list(range(len(ours)))
    assert re.search(r"^Epoch\[0\] Validation-top_k_accuracy_2=[0-9.]+$", r.stdout, re.M)
    meta = json.loads((root / "model/metadata.json").read_text())
    assert meta["resize_mode"] == "squash" and meta["resize_size"] == 40
    assert meta["mean"] == pytest.approx([0.4, 0.45, 0.5]) and meta["std"] == pytest.approx([0.25] * 3)


def test_missing_and_empty_channels(tmp_path):
    root = make_opt_ml(tmp_path / "a", LENET_FAST, channels=["validation"])
    r = run_train(root)
    assert r.returncode == 1
    assert "no train channel" in failure_text(root)

    root = make_opt_ml(tmp_path / "b", LENET_FAST, channels=["train/circle", "train/square"])
    r = run_train(root)
    assert r.returncode == 1
    assert "has no images (looked for .jpg/.jpeg/.png under 2 class folders" in failure_text(root)

    pipe = {"train": {"TrainingInputMode": "Pipe"}}
    root = make_opt_ml(tmp_path / "c", LENET_FAST, channels=["train"], input_config=pipe)
    assert run_train(root).returncode == 1
    assert "Pipe input mode" in failure_text(root)


def huge_png_header():
    """A valid PNG signature and IHDR claiming 100000 x 100000 pixels, and nothing else."""
    import struct
    import zlib
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk +
            struct.pack(">I", zlib.crc32(chunk)))


def test_broken_images_are_skipped_and_reported(tmp_path):
    root = make_opt_ml(tmp_path / "opt_ml", dict(LENET_FAST, epochs=2, validation_fraction=0.2))
    train = root / "input/data/train"
    dataset(train, 20, seed=7)
    good = sorted((train / "circle").glob("*.jpg"))[0].read_bytes()
    (train / "circle" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (train / "square" / "huge.png").write_bytes(huge_png_header())
    r = run_train(root)
    assert r.returncode == 0, r.stderr
    assert "skipped" in r.stderr and "unreadable image" in r.stderr
    assert "100000x100000" in r.stderr  # the limit, named

    bad = make_opt_ml(tmp_path / "bad", LENET_FAST)
    for c in images.CLASSES:
        (bad / "input/data/train" / c).mkdir(parents=True)
        for i in range(4):
            (bad / "input/data/train" / c / f"{i}.jpg").write_bytes(b"\xff\xd8\xff garbage")
    r = run_train(bad)
    assert r.returncode == 1
    assert "could be read" in failure_text(bad)


@pytest.mark.parametrize("device_prefetch", [False, True])
def test_sigterm_checkpoint_and_resume(tmp_path, device_prefetch):
    # device_prefetch: stopped with a batch copied ahead in flight (the GPU's input path)
    hp = {"model": "resnet18", "epochs": 4, "batch_size": 16, "image_size": 64, "lr": 0.01,
          "num_workers": 1, "device_prefetch": device_prefetch}
    root = make_opt_ml(tmp_path / "opt_ml", hp)
    dataset(root / "input/data/train", 100, seed=8)
    env = dict(os.environ, OPT_ML=str(root))
    env.pop("TRAINING_JOB_NAME", None)
    p = subprocess.Popen([TRAIN], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()  # the epoch 1 line: epoch 2 has begun
    assert first.startswith("epoch=1/4"), first
    time.sleep(1.5)  # into epoch 2 (at 64x64 about 5 s long on 2 cores)
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    stop_seconds = time.time() - t0
    assert p.returncode == 143, err
    assert stop_seconds < 30, stop_seconds
    state = json.loads((root / "checkpoints/algo-1/state.json").read_text())
    assert state["next_epoch"] == 1 and state["next_batch"] > 0, state  # mid-epoch 2
    assert not no_temporaries(root)

    r = run_train(root)
    assert r.returncode == 0, r.stderr
    assert "resumed from the checkpoint" in r.stderr
    epochs = re.findall(r"^epoch=(\d)/4", first + out + r.stdout, re.M)
    assert epochs == ["1", "2", "3", "4"], epochs
    metrics = json.loads((root / "output/data/metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2, 3, 4]
    assert (root / "model/model.pth").exists() and not no_temporaries(root)


def metric_lines(stdout):
    """The metric lines without the timing fields, which differ run to run."""
    return [re.sub(r" (images_per_sec|epoch_time_s)=\S+", "", line)
            for line in stdout.splitlines() if re.match(r"(epoch|test)", line)]


@pytest.mark.parametrize("extra", [
    {"model": "lenet"},
    {"model": "resnet18", "image_size": 32, "augment": True, "channels_last": True},
    {"model": "lenet", "augmentation_type": "crop_color_transform", "resize": 36},
])
def test_device_prefetch_gives_the_same_results(tmp_path, extra):
    """The GPU's input path (bytes batches copied ahead, normalised on the device by a table
    lookup), run on the CPU, trains exactly the model the loader's float batches train."""
    runs = {}
    for prefetch in (False, True):
        hp = dict(LENET_FAST, epochs=2, top_k=2, device_prefetch=prefetch, **extra)
        root = make_opt_ml(tmp_path / f"prefetch_{prefetch}", hp)
        dataset(root / "input/data/train", 24, seed=12)
        dataset(root / "input/data/test", 8, seed=13)
        r = run_train(root)
        assert r.returncode == 0, r.stderr
        assert ("byte batches prefetched" in r.stderr) == prefetch, r.stderr
        runs[prefetch] = (metric_lines(r.stdout), (root / "model/model.pth").read_bytes())
    lines = runs[True][0]
    assert len([m for m in lines if m.startswith("epoch=")]) == 4, lines  # 2 epochs, top-k
    assert any(m.startswith("test_loss=") for m in lines), lines
    assert runs[True][0] == runs[False][0]
    assert runs[True][1] == runs[False][1], "the saved weights differ"


def test_skipped_images_leave_the_same_batches_whatever_the_threads(tmp_path):
    """The loader cuts each batch into chunks that its threads fill together, then closes the
    gaps unreadable images leave: 1 and 3 threads, and the GPU's byte batches, train the same
    model from a folder with broken files."""
    runs = []
    for workers, prefetch in ((1, False), (3, False), (3, True)):
        hp = dict(LENET_FAST, epochs=2, batch_size=10, augment=True, num_workers=workers,
                  device_prefetch=prefetch)
        root = make_opt_ml(tmp_path / f"w{workers}_{prefetch}", hp)
        train = root / "input/data/train"
        dataset(train, 20, seed=7)
        for c in images.CLASSES:
            for j in range(2):
                (train / c / f"broken_{j}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * j)
        r = run_train(root)
        assert r.returncode == 0, r.stderr
        assert "unreadable image" in r.stderr
        runs.append((metric_lines(r.stdout), (root / "model/model.pth").read_bytes()))
    assert len(runs[0][0]) == 2, runs[0][0]
    for lines, weights in runs[1:]:
        assert lines == runs[0][0]
        assert weights == runs[0][1], "the saved weights differ"


def test_train_valid_test_folders_in_one_channel(tmp_path):
    """The dog-breed and bin-image seeds upload one prefix holding train/, valid/ and test/
    (each of class folders) and fit({"training": prefix}); their scripts read
    SM_CHANNEL_TRAINING/train, /valid and /test. The classes are the breeds, not the splits,
    and the test split gives the "Testing Loss" their tuning jobs minimise."""
    hp = dict(LENET_FAST, model="resnet18", image_size=32, epochs=1, sagemaker_program="hpo.py")
    root = make_opt_ml(tmp_path / "opt_ml", hp, channels=["training"])
    for split, n, seed in [("train", 20, 1), ("valid", 5, 2), ("test", 4, 3)]:
        dataset(root / "input/data/training" / split, n, seed=seed)
    r = run_train(root)
    assert r.returncode == 0, r.stderr
    assert "60 images in 3 classes (class folders)" in r.stderr
    assert "15 images from the validation channel" in r.stderr
    assert "test channel: 12 images" in r.stderr
    meta = json.loads((root / "model/metadata.json").read_text())
    assert meta["class_names"] == images.CLASSES
    assert len(re.findall(r"Testing Loss: ([0-9\.]+)", r.stdout)) == 1
    test_set = re.findall(r"Test set: Average loss: ([0-9\.]+), Accuracy: (\d+)/12 ", r.stdout)
    assert len(test_set) == 1 and float(test_set[0][0]) == float(
        re.search(r"Testing Loss: ([0-9\.]+)", r.stdout).group(1)), r.stdout
    # Their scripts' models.resnet50(pretrained=True) is not in their hyperparameters: said.
    assert "model resnet18 starts from random weights (no pretrained channel)" in r.stderr
    # A test channel of its own wins over the test/ folder (and the log says so).
    (root / "input/data/testing/circle").mkdir(parents=True)
    dataset(root / "input/data/testing", 2, seed=4)
    r = run_train(root)
    assert r.returncode == 0, r.stderr
    assert "test channel: 6 images" in r.stderr and "is not used for test" in r.stderr
    # A folder beside the splits (a leftover, __MACOSX): read as classes, and the log says why.
    (root / "input/data/training/__MACOSX/x").mkdir(parents=True)
    r = run_train(root)
    assert "has folders named train and valid beside others" in r.stderr, r.stderr


def test_cifar_data_without_hyperparameters_train_the_cifar_vgg(tmp_path):
    """The CIFAR-10 seed's estimator gives no hyperparameters (only the SDK's own keys): its
    CIFAR data train the CIFAR VGG at 32 px, not ResNet-50 at 224, and the model loads into
    the seed's VGG('VGG11') class. Folders do too when a size from 32 to 64 px is stated without
    a model (the built-in algorithm's image_shape "3,32,32")."""
    sdk_only = {"sagemaker_program": "pytorch_cifar.py", "sagemaker_region": "us-east-1",
                "sagemaker_submit_directory": "s3://b/source/sourcedir.tar.gz",
                "sagemaker_container_log_level": 20, "sagemaker_job_name": "pytorch-cifar"}
    root = make_opt_ml(tmp_path / "opt_ml", sdk_only, channels=["training"])
    images.write_cifar(str(root / "input/data/training"), images.generate(8, 32, 8))
    cfg = root / "input/config/hyperparameters.json"
    cfg.write_text(json.dumps(dict(json.loads(cfg.read_text()), epochs='"1"')))
    r = run_train(root)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "model: vgg11_cifar, the default for CIFAR data" in r.stderr
    meta = json.loads((root / "model/metadata.json").read_text())
    assert meta["arch"] == "vgg11_cifar" and meta["image_size"] == 32
    net = make_model("vgg11_cifar", meta["num_classes"])
    net.load_state_dict(torch.load(root / "model/model.pth", weights_only=True))
    # Folders with a small image size stated and no model (the built-in algorithm's users give
    # image_shape "3,32,32" and no num_layers) get the CIFAR VGG too; without one, resnet50.
    for hp, model, said in [({"image_shape": "3,32,32", "num_training_samples": 6}, "vgg11_cifar",
                             "model: vgg11_cifar, the default for images of 32 px"),
                            ({"image_size": 64}, "vgg11_cifar", "the default for images of 64 px"),
                            ({"image_size": 96}, "resnet50", "model resnet50:"),
                            ({}, "resnet50", "model resnet50:")]:
        folders = make_opt_ml(tmp_path / f"folders{len(os.listdir(tmp_path))}", dict(hp, epochs=1),
                              channels=[])
        dataset(folders / "input/data/train", 2, seed=1)
        r = run_train(folders)
        assert r.returncode == 0 and said in r.stderr, (hp, r.stderr[-2000:])
        assert json.loads((folders / "model/metadata.json").read_text())["arch"] == model


def test_cifar_python_version_as_torchvision_downloads_it(tmp_path):
    """The CIFAR-10 seed uploads what torchvision.datasets.CIFAR10(download=True) left:
    cifar-10-python.tar.gz and cifar-10-batches-py/ (pickles). The same images as binary
    batches train to the same metrics: pixels and labels read alike. Python 3 pickles (a user's
    own subset, as the CIFAR-100 seed makes) read too; a damaged pickle fails naming the file."""
    import pickle
    samples = images.generate(30, 32, 8)
    labels = [c for c, _ in samples]
    pixels = np.stack([np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).reshape(-1) for _, img in samples])
    names = [n.encode() for n in images.CLASSES] + [b"unused%d" % i for i in range(7)]
    hp = dict(LENET_FAST, epochs=2)
    binary = make_opt_ml(tmp_path / "binary", hp, channels=["training"])
    images.write_cifar(str(binary / "input/data/training"), samples)
    python = make_opt_ml(tmp_path / "python", hp, channels=["training"])
    py = python / "input/data/training/cifar-10-batches-py"
    py.mkdir()
    (py / "data_batch_1").write_bytes(cifar_python_batches.batch_pickle(pixels, labels))
    (py / "test_batch").write_bytes(cifar_python_batches.batch_pickle(pixels[:5], labels[:5]))
    (py / "batches.meta").write_bytes(cifar_python_batches.meta_pickle(names))
    with tarfile.open(python / "input/data/training/cifar-10-python.tar.gz", "w:gz") as t:
        t.add(py, arcname="cifar-10-batches-py")
    runs = [run_train(binary), run_train(python)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    assert "90 images in 10 classes (CIFAR-10 python)" in runs[1].stderr  # test_batch left out
    assert metric_lines(runs[0].stdout) == metric_lines(runs[1].stdout)
    meta = json.loads((python / "model/metadata.json").read_text())
    assert meta["class_names"][:3] == images.CLASSES and meta["num_classes"] == 10

    ours = make_opt_ml(tmp_path / "py3", dict(hp, epochs=1), channels=["train"])
    c100 = ours / "input/data/train"
    for name, n, protocol in [("train", 90, 2), ("test", 10, 4)]:  # 2: bytes as _codecs.encode
        pickle.dump({b"data": pixels[:n], b"fine_labels": labels[:n], b"coarse_labels": labels[:n]},
                    open(c100 / name, "wb"), protocol=protocol)
    pickle.dump({b"fine_label_names": [f"class{i}" for i in range(100)]}, open(c100 / "meta", "wb"), protocol=4)
    r = run_train(ours)
    assert r.returncode == 0, r.stderr
    assert "90 images in 100 classes (CIFAR-100 python)" in r.stderr
    assert json.loads((ours / "model/metadata.json").read_text())["class_names"][:2] == ["class0", "class1"]

    (py / "data_batch_1").write_bytes(cifar_python_batches.batch_pickle(pixels, labels)[:5000])
    r = run_train(python)
    assert r.returncode == 1
    assert "data_batch_1 is not a CIFAR python batch" in failure_text(python), failure_text(python)


def test_images_imagefolder_reads_and_we_do_not_are_named(tmp_path):
    """torchvision's ImageFolder also reads .bmp/.gif/.tif/.webp/.ppm/.pgm: a Python user's
    folders may hold some. They are left out with a warning naming one (not silently), and a
    channel holding only such files fails saying so."""
    from PIL import Image
    root = make_opt_ml(tmp_path / "opt_ml", dict(LENET_FAST, epochs=1), channels=[])
    dataset(root / "input/data/train", 10, seed=1)
    Image.new("RGB", (32, 32)).save(root / "input/data/train/circle/scan.BMP")
    Image.new("RGB", (32, 32)).save(root / "input/data/train/square/photo.webp")
    r = run_train(root)
    assert r.returncode == 0, r.stderr
    assert "train channel: 30 images in 3 classes" in r.stderr
    assert re.search(r"train channel: 2 image file\(s\) in formats this image does not read "
                     r".* such as \S+/circle/scan\.BMP", r.stderr), r.stderr

    only = make_opt_ml(tmp_path / "only", dict(LENET_FAST, epochs=1), channels=["train/a"])
    Image.new("RGB", (32, 32)).save(only / "input/data/train/a/x.tiff")
    r = run_train(only)
    assert r.returncode == 1
    assert "such as" in failure_text(only) and "x.tiff" in failure_text(only), failure_text(only)
