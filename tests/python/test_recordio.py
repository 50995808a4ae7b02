"""test_recordio.py - RecordIO channels end to end through the real `train`: im2rec-style .rec
files (written by tests/python/recordio_writer.py) train a model, and damaged ones are either
refused with a message naming the file, record and byte, or (a truncated tail) skipped with a
warning."""
import io
import json
import os
import re
import struct
import sys

sys.path.insert(0, os.path.dirname(__file__))
import make_image_dataset as images  # noqa: E402
import recordio_writer as rio  # noqa: E402
from test_train import failure_text, make_opt_ml, run_train  # noqa: E402

HP = {"model": "lenet", "epochs": 5, "batch_size": 16, "lr": 0.003, "optimizer": "adam",
      "seed": 2}
RECORDIO = {"ContentType": "application/x-recordio", "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}


def encoded(img, fmt):
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buf.getvalue()


def records(per_class, seed):
    return [(c, encoded(img, "PNG" if i % 2 else "JPEG"))
            for i, (c, img) in enumerate(images.generate(per_class, 32, seed))]


def opt_ml_with(tmp_path, channels, **hp):
    cfg = {name: RECORDIO for name in channels}
    root = make_opt_ml(tmp_path / "opt_ml", dict(HP, **hp), channels=list(channels),
                       input_config=cfg)
    for name, recs in channels.items():
        if isinstance(recs, bytes):
            (root / "input/data" / name / "data.rec").write_bytes(recs)
        else:
            rio.write_rec(str(root / "input/data" / name / "data.rec"), recs)
    return root


def test_recordio_training_end_to_end(tmp_path):
    train = records(50, seed=1)
    # A record whose data holds the magic number at a 4-byte boundary is written in parts
    # (continuation flags 1 and 3) and must come back whole: JPEG ignores bytes after its end.
    label, jpeg = train[0]
    padded = jpeg + b"\0" * (-len(jpeg) % 4)
    train[0] = (label, padded + rio.MAGIC_BYTES + b"tail")
    assert rio.frame(rio.pack(label, train[0][1])).count(rio.MAGIC_BYTES) == 2
    root = opt_ml_with(tmp_path, {"train": train, "validation": records(10, seed=2),
                                  "test": records(15, seed=3)})
    # im2rec leaves its .lst beside the .rec; the images it names are not there.
    (root / "input/data/train/data.lst").write_text("0\t0\tcircle/a.jpg\n")
    r = run_train(root)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "train channel: 150 images in 3 classes (RecordIO)" in r.stderr
    assert "skipped" not in r.stderr
    acc = float(re.search(r" test_acc=([0-9.]+)$", r.stdout, re.M).group(1))
    assert acc >= 0.8, r.stdout
    meta = json.loads((root / "model/metadata.json").read_text())
    assert meta["train_data"]["format"] == "RecordIO"


def test_recordio_with_float_label_list_and_no_idx(tmp_path):
    recs = [(0, img, [float(c)]) for c, img in records(20, seed=4)]
    root = make_opt_ml(tmp_path / "opt_ml", dict(HP, epochs=1), channels=["train"])
    rio.write_rec(str(root / "input/data/train/train.rec"), recs, idx=False)
    r = run_train(root)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "60 images in 3 classes (RecordIO)" in r.stderr


def good_blob(n=20):
    return b"".join(rio.frame(rio.pack(c, img, i)) for i, (c, img) in enumerate(records(n, seed=5)))


def one(label, image=b"\xff\xd8", labels=None):
    return rio.frame(rio.pack(label, image, 0, labels))


def test_truncated_tail_is_skipped_with_a_warning(tmp_path):
    blob = good_blob()
    root = opt_ml_with(tmp_path, {"train": blob[:-50]}, epochs=1)
    r = run_train(root)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"data\.rec: the file ends inside the record at byte \d+.*; the 59 records "
                     r"before it are used", r.stderr), r.stderr[-3000:]
    assert "59 images in 3 classes (RecordIO)" in r.stderr


def test_corrupt_image_in_a_record_is_skipped(tmp_path):
    blob = good_blob() + one(1, b"\xff\xd8\xff\xe0 not really a jpeg")
    root = opt_ml_with(tmp_path, {"train": blob, "validation": good_blob(3)}, epochs=1)
    r = run_train(root)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"skipped 1 unreadable image\(s\); first: \S+/train/data\.rec record 60: ",
                     r.stderr), r.stderr[-3000:]


BAD = [
    ("not_recordio", b"GIF89a" + b"\0" * 100, "data.rec record 0: no RecordIO magic number at byte 0"),
    ("lying_length", rio.MAGIC_BYTES + struct.pack("<I", 5000) + b"\0" * 64,
     "data.rec record 0: the file ends inside the record at byte 0 (it claims 5000 bytes)"),
    ("huge_length", good_blob(1) + rio.MAGIC_BYTES + struct.pack("<I", (1 << 29) - 1) + b"\0" * 8,
     "record 3: the record at byte"),
    ("bad_flag_order", good_blob(1) + rio.frame(b"x" * 8, cflag=2),
     "has continuation flag 2, which cannot follow a record's end"),
    ("label_count_lies", good_blob(1) + rio.MAGIC_BYTES + struct.pack("<I", 28) +
     struct.pack("<IfQQ", 1000, 0, 0, 0) + b"abcd",
     "the record's header says 1000 labels follow, but it holds only 28 bytes"),
    ("multi_label", good_blob(1) + one(0, labels=[0.0, 2.0, 1.0]),
     "the record holds 3 labels: multi-label records are not supported"),
    ("huge_label", good_blob(1) + one(1e30), "label 1e+30 is not a class index"),
    ("nan_label", good_blob(1) + one(float("nan")), "label nan is not a class index"),
    ("short_header", good_blob(1) + rio.frame(b"tiny"), "holds 4 bytes, less than its 24-byte header"),
]


def test_damaged_recordio_is_refused_clearly(tmp_path):
    for name, blob, message in BAD:
        root = opt_ml_with(tmp_path / name, {"train": blob}, epochs=1)
        r = run_train(root)
        assert r.returncode == 1, (name, r.stderr[-2000:])
        assert message in failure_text(root), (name, failure_text(root))
        assert "epoch=" not in r.stdout
