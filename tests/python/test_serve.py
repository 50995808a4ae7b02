"""test_serve.py - `serve` as SageMaker runs it: the real server on a free loopback port, real
HTTP clients, models that `train` wrote or that Python saved.

Environment: TRAIN_BIN, SERVE_BIN, CUSTOM_HANDLER (the test handler library).
"""
import base64
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.dirname(__file__))
import make_image_dataset as images  # noqa: E402
from reference_models import make_model, metadata_eval_transform  # noqa: E402
from serve_process import SERVE, free_port  # noqa: E402,F401 (test_serve_compat imports them here)
from serve_process import ServeProcess as Server  # noqa: E402

TRAIN = os.environ.get("TRAIN_BIN", "build/bin/train")
CUSTOM = os.environ.get("CUSTOM_HANDLER", "build/tests/custom_handler.so")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A LeNet trained by `train` on the shapes data; returns (opt_ml root, test image dir)."""
    root = tmp_path_factory.mktemp("trained")
    cfg = root / "input/config"
    cfg.mkdir(parents=True)
    (cfg / "hyperparameters.json").write_text(json.dumps({
        "model": "lenet", "epochs": "12", "batch_size": "16", "lr": "0.003", "optimizer": "adam",
        "min_crop_scale": "0.7"}))
    images.write_folders(str(root / "input/data/train"), images.generate(80, 32, seed=1))
    test_dir = root / "test_images"
    images.write_folders(str(test_dir), images.generate(10, 32, seed=2))
    r = subprocess.run([TRAIN], env=dict(os.environ, OPT_ML=str(root)), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return root, test_dir


@pytest.fixture(scope="module")
def server(trained):
    s = Server(trained[0])
    yield s
    assert s.stop() == 0


def reference_probs(root, files):
    """What plain PyTorch gives for these files with the model and metadata train wrote."""
    meta = json.loads((root / "model/metadata.json").read_text())
    net = make_model("lenet", meta["num_classes"])
    net.load_state_dict(torch.load(root / "model/model.pth", weights_only=True))
    net.eval()
    tf = metadata_eval_transform(meta)
    x = torch.stack([tf(Image.open(f).convert("RGB")) for f in files])
    with torch.no_grad():
        return torch.softmax(net(x), 1).numpy(), meta


def test_ping_then_images_match_pytorch(server, trained):
    root, test_dir = trained
    assert server.request("GET", "/ping")[0] == 200
    files = sorted(test_dir.rglob("*.png"))[:4] + sorted(test_dir.rglob("*.jpg"))[:4]
    expected, meta = reference_probs(root, files)
    for f, want in zip(files, expected):
        ctype = {"png": "image/png", "jpg": "image/jpeg"}[f.suffix[1:]]
        for content_type in (ctype, "application/x-image"):
            status, headers, body = server.invoke(f.read_bytes(), content_type)
            assert status == 200, body
            assert headers["Content-Type"] == "application/json"
            pred = json.loads(body)["predictions"][0]
            np.testing.assert_allclose(pred["probabilities"], want, atol=2e-4)
            assert pred["predicted_label"] == meta["class_names"][int(want.argmax())]
            assert pred["top_k"][0]["label"] == pred["predicted_label"]


def test_large_photos_open_as_pil_opens_them(server, trained, tmp_path):
    """A handler's Image.open takes photos up to PIL's MAX_IMAGE_PIXELS (89.5 MP) without a
    word: a 48 MP phone JPEG and a 49 MP PNG, both decoded at full size as Pillow decodes them,
    are answered as PyTorch answers them, not refused (the cap was 40 MP before);
    SERVE_JPEG_DCT_SCALING=true decodes the JPEG at a reduced scale, close to the same answer,
    as is a 108 MP JPEG (which Pillow opens with a warning). A PNG over the limit is a 400
    naming it."""
    root, test_dir = trained
    small = Image.open(sorted(test_dir.rglob("*.png"))[0]).convert("RGB")
    cases = [("photo.jpg", (8000, 6000), "image/jpeg", dict(quality=90)),
             ("scan.png", (7000, 7000), "image/png", dict(compress_level=1))]
    for name, size, ctype, opts in cases:
        f = tmp_path / name
        small.resize(size, Image.NEAREST).save(f, **opts)
        assert f.stat().st_size < 6 << 20, f.stat().st_size
        want, meta = reference_probs(root, [f])
        status, _, body = server.invoke(f.read_bytes(), ctype)
        assert status == 200, body
        pred = json.loads(body)["predictions"][0]
        np.testing.assert_allclose(pred["probabilities"], want[0], atol=1e-4)
        assert pred["predicted_index"] == int(want[0].argmax())
    assert "JPEGs decoded at full size, as Pillow decodes them" in server.output()
    # SERVE_JPEG_DCT_SCALING=true: the photo decoded at a reduced scale, close to the same answer.
    opt_ml = tmp_path / "dct"
    shutil.copytree(root / "model", opt_ml / "model")
    fast = Server(opt_ml, env={"SERVE_JPEG_DCT_SCALING": "true"})
    try:
        want, _ = reference_probs(root, [tmp_path / "photo.jpg"])
        status, _, body = fast.invoke((tmp_path / "photo.jpg").read_bytes(), "image/jpeg")
        assert status == 200, body
        np.testing.assert_allclose(json.loads(body)["predictions"][0]["probabilities"], want[0], atol=0.02)
        assert "JPEGs decoded at the smallest DCT scale the resize allows" in fast.output()
    finally:
        assert fast.stop() == 0
    # A 108 MP photo: over the 89.5 MP Pillow opens without a warning, but it opens it; here a
    # JPEG that size is decoded at a reduced scale rather than refused.
    huge = tmp_path / "huge.jpg"
    small.resize((12000, 9000), Image.NEAREST).save(huge, quality=90)
    want, _ = reference_probs(root, [huge])
    status, _, body = server.invoke(huge.read_bytes(), "image/jpeg")
    assert status == 200, body
    np.testing.assert_allclose(json.loads(body)["predictions"][0]["probabilities"], want[0], atol=0.02)
    over = io.BytesIO()
    Image.new("RGB", (10000, 8948)).save(over, "PNG", compress_level=1)
    status, _, body = server.invoke(over.getvalue(), "image/png")
    assert status == 400 and "89478485 pixels" in json.loads(body)["error"], body


def test_16bit_gray_png_as_pil_reads_it(server, trained, tmp_path):
    """PIL opens a 16-bit gray PNG as mode I;16 and convert("RGB") clips it at 255: that is
    what a Python user's model saw and what their handler feeds it. Ours matches PyTorch's
    probabilities for such a file (keeping the high byte gave a different, darker image)."""
    root, _ = trained
    rng = np.random.default_rng(3)
    f = tmp_path / "depth16.png"
    Image.fromarray(rng.integers(0, 600, (32, 32)).astype(np.uint16)).save(f)
    assert Image.open(f).mode == "I;16"
    want, _ = reference_probs(root, [f])
    status, _, body = server.invoke(f.read_bytes(), "image/png")
    assert status == 200, body
    np.testing.assert_allclose(json.loads(body)["predictions"][0]["probabilities"], want[0], atol=2e-4)


def pixels(files):
    return np.stack([np.asarray(Image.open(f).convert("RGB")).transpose(2, 0, 1) for f in files])


def run_clients(client, n, timeout=120):
    """client(k) for k in 0..n-1, each on a thread of its own, all at once; returns when all
    have ended (or timed out)."""
    threads = [threading.Thread(target=client, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)


def npy_bytes(a):
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def test_arrays_json_and_output_types(server, trained, tmp_path):
    root, test_dir = trained
    files = sorted(test_dir.rglob("*.png"))[:3]
    expected, _ = reference_probs(root, files)
    px = pixels(files)  # [3,3,32,32] uint8
    cases = [
        (npy_bytes(px), "application/x-npy"),
        (npy_bytes(px.astype(np.float32)), "application/x-npy"),
        (npy_bytes(px.astype(np.float32) / 255.0), "application/x-npy"),  # 0..1 floats
        (str(px.tolist()), "application/json"),  # the seeds' Lambda: str(list) of [N,3,H,W]
        (json.dumps({"instances": [base64.b64encode(f.read_bytes()).decode() for f in files]}),
         "application/json"),
        (json.dumps({"instances": [{"b64": base64.b64encode(f.read_bytes()).decode()} for f in files]}),
         "application/json"),
        (json.dumps({"inputs": [base64.b64encode(f.read_bytes()).decode() for f in files]}),
         "application/json"),  # Hugging Face's form
        ("\n".join(json.dumps(p.tolist()) for p in px) + "\n", "application/jsonlines"),
        # channels last, as np.asarray(Image.open(f)) gives them
        (npy_bytes(px.transpose(0, 2, 3, 1).copy()), "application/x-npy"),
        (json.dumps({"instances": [p.transpose(1, 2, 0).tolist() for p in px]}), "application/json"),
    ]
    for body, ctype in cases:
        status, _, out = server.invoke(body, ctype)
        assert status == 200, (ctype, out)
        got = [p["probabilities"] for p in json.loads(out)["predictions"]]
        np.testing.assert_allclose(got, expected, atol=2e-3, err_msg=ctype)
    # A gray image as an array ([H,W,1], [1,H,W]) is what PIL's convert("RGB") makes of it.
    gray_file = tmp_path / "gray.png"
    Image.open(files[0]).convert("L").save(gray_file)
    want_gray, _ = reference_probs(root, [gray_file])
    g = np.asarray(Image.open(gray_file), np.uint8)
    for body in (npy_bytes(g[:, :, None]), npy_bytes(g[None]), npy_bytes(g[None, None])):
        status, _, out = server.invoke(body, "application/x-npy")
        assert status == 200, out
        np.testing.assert_allclose(json.loads(out)["predictions"][0]["probabilities"], want_gray[0], atol=2e-3)
    one = npy_bytes(px[0])  # [3,H,W]
    status, _, out = server.invoke(one, "application/x-npy", accept="application/x-npy")
    assert status == 200
    arr = np.load(io.BytesIO(out))
    assert arr.shape == (1, 3) and arr.dtype == np.float32
    np.testing.assert_allclose(arr[0], expected[0], atol=2e-3)
    status, headers, out = server.invoke(npy_bytes(px), "application/x-npy", accept="application/jsonlines")
    assert status == 200 and headers["Content-Type"] == "application/jsonlines"
    assert len(out.decode().strip().split("\n")) == 3
    # Batch transform joins output line i with input line i: a line holding two instances
    # is answered by one line with both predictions, a line with one by its prediction.
    body = (json.dumps({"instances": [px[0].tolist(), px[1].tolist()]}) + "\n\n" +
            json.dumps(px[2].tolist()) + "\n")
    status, headers, out = server.invoke(body, "application/jsonlines", accept="application/jsonlines")
    assert status == 200 and headers["Content-Type"] == "application/jsonlines"
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert len(lines) == 2
    np.testing.assert_allclose([p["probabilities"] for p in lines[0]["predictions"]],
                               expected[:2], atol=2e-3)
    np.testing.assert_allclose(lines[1]["probabilities"], expected[2], atol=2e-3)
    status, _, out = server.invoke(json.dumps({"instances": []}) + "\n", "application/jsonlines")
    assert status == 400 and "holds no image" in json.loads(out)["error"]
    status, _, out = server.invoke(one, "application/x-npy", accept="text/html, */*")
    assert status == 200 and json.loads(out)["predictions"]


def test_custom_attributes(server, trained):
    f = sorted(trained[1].rglob("*.png"))[0]
    attrs = "top_k=1,threshold=0.9999999"
    status, headers, out = server.invoke(f.read_bytes(), "image/png",
                                         extra={"X-Amzn-SageMaker-Custom-Attributes": attrs})
    assert status == 200
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == attrs
    pred = json.loads(out)["predictions"][0]
    assert len(pred["top_k"]) == 1 and pred["below_threshold"] is True


def chunked_post(port, path, chunks, content_type):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.putrequest("POST", path)
    c.putheader("Content-Type", content_type)
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    try:
        for chunk in chunks:
            c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        c.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server may answer and close before taking everything
    r = c.getresponse()
    return r.status, r.read()


def test_errors_have_status_and_json_body(server, trained):
    good = sorted(trained[1].rglob("*.jpg"))[0].read_bytes()
    cases = [
        (server.invoke(good[: len(good) // 2], "image/jpeg"), 400, "cannot be decoded"),
        (server.invoke(b"not an image", "application/x-image"), 400, "not a JPEG or PNG"),
        (server.invoke(b"{\"instances\": [", "application/json"), 400, "not valid JSON"),
        (server.invoke("[[[1, 2], [3]]]", "application/json"), 400, "[N,3,H,W]"),
        (server.invoke("[[[[1, 2]], [[3]], [[4, 5]]]]", "application/json"), 400, "ragged"),
        (server.invoke(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<i2'", "application/x-npy"), 400, "truncated"),
        (server.invoke(npy_bytes(np.zeros((2, 3), np.float32)), "application/x-npy"), 400, "[N,3,H,W]"),
        (server.invoke(b"", "image/png"), 400, "empty"),
        # amplification: a tiny body may not ask for a huge model input
        (server.invoke(npy_bytes(np.zeros((1025, 3, 1, 1), np.uint8)), "application/x-npy"), 400,
         "at most"),
        (server.invoke(json.dumps([[[[0] * 1000] * 1000, [[0]], [[0]]]] + [[[[0]], [[0]], [[0]]]] * 999),
                       "application/json"), 400, "promise"),
        (server.invoke(b"a,b", "text/csv"), 415, "unsupported Content-Type"),
        (server.invoke(good, "image/jpeg", accept="text/html"), 406, "unsupported Accept"),
        (server.request("GET", "/nowhere"), 404, "no route"),
        (server.request("GET", "/invocations"), 405, "not allowed"),
        (server.request("POST", "/ping", b"x"), 405, "not allowed"),
    ]
    for (status, headers, body), want, text in cases:
        assert status == want, (want, body)
        assert headers["Content-Type"] == "application/json"
        assert text in json.loads(body)["error"], body
    # Over the limit by Content-Length: answered before the body is sent at all.
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                     b"Content-Length: %d\r\n\r\n" % (6 * 1024 * 1024 + 1))
        reply = sock.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 413"), reply
    assert "over the 6291456-byte limit" in reply
    # Over the limit in a chunked body with no Content-Length: discarded as it arrives.
    status, body = chunked_post(server.port, "/invocations", [b"\0" * (1 << 20)] * 8, "image/png")
    assert status == 413, body
    assert server.request("GET", "/ping")[0] == 200  # still alive


def test_normalised_tensors_go_to_the_model_as_they_are(server, trained):
    """PyTorch notebooks send what their eval transform made: predictor.predict(x.numpy()) with
    x = Normalize(ToTensor(img)), through PyTorchPredictor's NumpySerializer (or as JSON); the
    PyTorch container's default input_fn hands it to the model unchanged. Values below 0 cannot
    be pixels, so such an array is fed as it is: PyTorch's own probabilities, to float
    precision (read as pixels they were clipped to 0 and normalised a second time). Of another
    size it is a 400 saying why; integer pixels over 255 are a 400 too."""
    root, test_dir = trained
    files = sorted(test_dir.rglob("*.png"))[:3]
    expected, meta = reference_probs(root, files)
    tf = metadata_eval_transform(meta)
    x = torch.stack([tf(Image.open(f).convert("RGB")) for f in files]).numpy()
    assert x.min() < 0
    for body, ctype in [(npy_bytes(x), "application/x-npy"), (npy_bytes(x.astype(np.float64)), "application/x-npy"),
                        (json.dumps(x.tolist()), "application/json"),
                        (json.dumps({"instances": [x[0].tolist()]}), "application/json")]:
        status, _, out = server.invoke(body, ctype)
        assert status == 200, out
        got = [p["probabilities"] for p in json.loads(out)["predictions"]]
        np.testing.assert_allclose(got, expected[:len(got)], atol=1e-5, err_msg=ctype)
    # 0..1 pixels a float resize left a little below 0 are still pixels (clipped), not a tensor.
    px = np.asarray(Image.open(files[0]).convert("RGB"), np.float32).transpose(2, 0, 1)[None] / 255
    overshoot = px.copy()
    overshoot[0, 0, 0, 0] = -0.001
    clean = px.copy()
    clean[0, 0, 0, 0] = 0
    answers = [json.loads(server.invoke(npy_bytes(a), "application/x-npy")[2])["predictions"][0]
               for a in (overshoot, clean)]
    assert answers[0] == answers[1]
    black = np.full((1, 3, 32, 32), -1.0, np.float32)  # a black image under 0.5/0.5: all whole
    status, _, out = server.invoke(json.dumps(black.tolist()), "application/json")
    assert status == 200, out
    status, _, out = server.invoke(npy_bytes(np.full((1, 3, 40, 40), -0.5, np.float32)), "application/x-npy")
    assert status == 400 and "already normalised, which must be 32x32" in json.loads(out)["error"], out
    status, _, out = server.invoke(json.dumps([[[[300] * 4] * 4] * 3]), "application/json")
    assert status == 400 and "integer pixels must lie in 0 to 255" in json.loads(out)["error"], out


def test_untyped_and_base64_image_bodies_are_read(server, trained):
    """Bodies that name no type of their own are told by their bytes: the SDK's plain
    Predictor(endpoint) sends application/octet-stream (IdentitySerializer), DataSerializer
    file-path/raw-bytes, invoke_endpoint may leave ContentType out; TorchTensorSerializer's
    tensor/pt is .npy bytes. An image sent as base64 text (the AWS CLI with raw-in-base64-out, a
    Lambda forwarding the string it got; a data: URL) is decoded. Each answer is the one the
    typed, raw request gets; a body that is none of them is a 415 saying what is read."""
    jpg = sorted(trained[1].rglob("*.jpg"))[0].read_bytes()
    want = server.invoke(jpg, "image/jpeg")
    assert want[0] == 200
    b64 = base64.b64encode(jpg)
    pixels = np.asarray(Image.open(io.BytesIO(jpg)).convert("RGB"), np.uint8).transpose(2, 0, 1)[None]
    npy_want = server.invoke(npy_bytes(pixels), "application/x-npy")
    assert npy_want[0] == 200
    same = [
        (server.invoke(jpg, "application/octet-stream"), want),
        (server.invoke(jpg, "binary/octet-stream"), want),
        (server.invoke(jpg, "file-path/raw-bytes"), want),  # the SDK's DataSerializer()
        (server.request("POST", "/invocations", jpg, {}), want),  # no Content-Type at all
        (server.invoke(b64, "image/jpeg"), want),
        (server.invoke(b"\"" + b64 + b"\"\n", "application/x-image"), want),
        (server.invoke(b64, "application/octet-stream"), want),
        (server.invoke(b"data:image/jpeg;base64," + b64, "image/jpeg"), want),
        (server.invoke(json.dumps({"instances": [{"b64": "data:image/jpeg;base64," + b64.decode()}]}),
                       "application/json"), want),
        (server.invoke(npy_bytes(pixels), "application/octet-stream"), npy_want),
        (server.invoke(npy_bytes(pixels), "tensor/pt"), npy_want),  # TorchTensorSerializer
        (server.invoke(json.dumps(pixels.tolist()), "application/octet-stream"), npy_want),
    ]
    for (status, _, body), (_, _, expected) in same:
        assert status == 200, body
        assert json.loads(body) == json.loads(expected)
    # TorchTensorDeserializer asks for tensor/pt: .npy bytes, which it reads with np.load.
    status, _, body = server.invoke(npy_bytes(pixels), "tensor/pt", accept="tensor/pt")
    assert status == 200
    probs = np.load(io.BytesIO(body))
    np.testing.assert_allclose(probs[0], json.loads(npy_want[2])["predictions"][0]["probabilities"],
                               atol=1e-6)
    # JSON Lines sent as octet-stream or as application/json (batch transform's MultiRecord
    # with SplitType=Line joins application/json records by line): one answer per record.
    lines = "".join(json.dumps(p.tolist()) + "\n" for p in [pixels[0]] * 3).encode()
    for ctype in ("application/octet-stream", "application/json"):
        status, _, body = server.invoke(lines, ctype)
        assert status == 200 and len(json.loads(body)["predictions"]) == 3, (ctype, body[:300])
    status, _, body = server.invoke(b"[1] 2", "application/jsonlines")
    assert status == 400 and "more than one JSON document" in json.loads(body)["error"], body
    # A byte order mark (PowerShell's UTF-8 files), and base64 as a JSON string with escapes.
    status, _, body = server.invoke(b"\xef\xbb\xbf" + json.dumps(pixels.tolist()).encode(),
                                    "application/octet-stream")
    assert status == 200 and json.loads(body) == json.loads(npy_want[2]), body[:300]
    escaped = json.dumps(b64.decode()).replace("/", "\\/").encode()
    assert b"\\/" in escaped
    status, _, body = server.invoke(escaped, "image/jpeg")
    assert status == 200 and json.loads(body) == json.loads(want[2]), body[:300]
    status, headers, body = server.invoke(b"plain words", "application/octet-stream")
    assert status == 415 and "not a JPEG or PNG image, a .npy array or JSON" in json.loads(body)["error"]
    status, _, body = server.request("POST", "/invocations", b"\x00\x01", {})
    assert status == 415 and "no Content-Type" in json.loads(body)["error"], body
    # base64 of something that is not an image stays the error it was.
    not_image = base64.b64encode(b"GIF89a, not an image")
    status, _, body = server.invoke(not_image, "image/png")
    assert status == 400 and "not a JPEG or PNG" in json.loads(body)["error"], body
    assert f"({len(not_image)} bytes" in json.loads(body)["error"], body  # the body's, as sent


def test_execution_parameters(trained, tmp_path):
    opt_ml = tmp_path / "opt_ml"
    shutil.copytree(trained[0] / "model", opt_ml / "model")
    s = Server(opt_ml, env={"SAGEMAKER_MAX_PAYLOAD_IN_MB": "20", "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD",
                            "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "4"})
    status, _, body = s.request("GET", "/execution-parameters")
    assert status == 200
    assert json.loads(body) == {"MaxConcurrentTransforms": 4, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 20}
    f = sorted(trained[1].rglob("*.png"))[0]
    status, _, _ = s.invoke(f.read_bytes() + b"\0" * (7 << 20), "image/png")
    assert status == 200  # 7 MiB is within this job's 20 MB
    assert s.stop() == 0


def test_inference_settings_bf16_and_refusals(trained, tmp_path):
    """SERVE_PRECISION=bfloat16 serves the same classes with probabilities close to float32's,
    and says so in the log; an invalid value of each inference setting stops serve at start
    with a message naming the variable."""
    root, test_dir = trained
    files = sorted(test_dir.rglob("*.png"))[:6]
    answers = {}
    for precision in ("float32", "bfloat16"):
        opt_ml = tmp_path / precision
        shutil.copytree(root / "model", opt_ml / "model")
        s = Server(opt_ml, env={"SERVE_PRECISION": precision})
        try:
            answers[precision] = [json.loads(s.invoke(f.read_bytes(), "image/png")[2])["predictions"][0]
                                  for f in files]
        finally:
            assert s.stop() == 0
        assert ("bfloat16 autocast" if precision == "bfloat16" else "float32") in s.output()
    for a, b in zip(answers["float32"], answers["bfloat16"]):
        assert a["predicted_index"] == b["predicted_index"]
        np.testing.assert_allclose(a["probabilities"], b["probabilities"], atol=0.05)
    assert any(a["probabilities"] != b["probabilities"]
               for a, b in zip(answers["float32"], answers["bfloat16"]))  # bf16 really ran
    for name, value in (("SERVE_PRECISION", "int4"), ("SERVE_FOLD_BATCHNORM", "maybe"),
                        ("SERVE_CHANNELS_LAST", "sideways"), ("SERVE_JPEG_DCT_SCALING", "fast")):
        opt_ml = tmp_path / f"bad-{name}"
        shutil.copytree(root / "model", opt_ml / "model")
        bad = Server(opt_ml, env={name: value}, wait=False)
        assert bad.exit_status() != 0
        assert f'{name}="{value}"' in bad.output(), bad.output()


def test_metadata_resize_mode_and_normalisation_are_honoured(trained, tmp_path):
    """metadata.json's resize_mode, mean and std (train's eval_resize, mean and std
    hyperparameters) are what serve applies: squash to the square, as the binimages seed's
    Resize((224, 224)) does."""
    opt_ml = tmp_path / "opt_ml"
    shutil.copytree(trained[0] / "model", opt_ml / "model")
    meta_path = opt_ml / "model/metadata.json"
    meta = json.loads(meta_path.read_text())
    assert meta["resize_mode"] == "auto"  # what train wrote by default
    meta.update(resize_mode="squash", mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0])
    meta_path.write_text(json.dumps(meta))
    img = Image.fromarray(np.random.default_rng(3).integers(0, 256, (30, 70, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    s = Server(opt_ml)
    try:
        status, _, body = s.invoke(buf.getvalue(), "image/png")
    finally:
        assert s.stop() == 0
    assert status == 200, body
    net = make_model("lenet", meta["num_classes"])
    net.load_state_dict(torch.load(opt_ml / "model/model.pth", weights_only=True))
    net.eval()
    tf = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])
    crop = transforms.Compose([transforms.Resize(meta["resize_size"]), transforms.CenterCrop(32),
                               transforms.ToTensor()])
    with torch.no_grad():
        want = torch.softmax(net(tf(img)[None]), 1)[0].numpy()
        other = torch.softmax(net(crop(img)[None]), 1)[0].numpy()
    got = json.loads(body)["predictions"][0]["probabilities"]
    # Relative: a trained LeNet's softmax is saturated, the small probabilities tell apart.
    np.testing.assert_allclose(got, want, rtol=0.03, atol=1e-12)
    assert (np.abs(other - want) / np.maximum(want, 1e-30)).max() > 0.1  # the modes differ here
    meta_path.write_text(json.dumps(dict(meta, resize_mode="stretch")))
    bad = Server(opt_ml, wait=False)
    assert bad.exit_status() != 0
    assert 'resize_mode is "stretch"; it must be "crop"' in bad.output()
    assert '"auto"' in bad.output()


def test_python_saved_torchvision_state_dict(tmp_path):
    opt_ml = tmp_path / "opt_ml"
    (opt_ml / "model").mkdir(parents=True)
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=4)
    torch.save(net.state_dict(), opt_ml / "model/model.pth")  # a Python user's artifact, no metadata
    s = Server(opt_ml)
    assert "serving resnet18 with 4 classes" in s.output()
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 260, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    status, _, body = s.invoke(buf.getvalue(), "image/png")
    assert status == 200, body
    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    net.eval()
    with torch.no_grad():
        want = torch.softmax(net(tf(img)[None]), 1)[0].numpy()
    np.testing.assert_allclose(json.loads(body)["predictions"][0]["probabilities"], want, atol=2e-3)
    assert s.stop() == 0


def test_model_tarball_extracted_and_traversal_refused(trained, tmp_path):
    good = tmp_path / "good"
    (good / "model").mkdir(parents=True)
    with tarfile.open(good / "model/model.tar.gz", "w:gz") as t:
        for name in ("model.pth", "metadata.json"):
            t.add(trained[0] / "model" / name, arcname=name)
    s = Server(good)
    assert (good / "model/model.pth").exists()
    assert s.stop() == 0

    bad = tmp_path / "bad"
    (bad / "model").mkdir(parents=True)
    with tarfile.open(bad / "model/model.tar.gz", "w:gz") as t:
        t.add(trained[0] / "model/model.pth", arcname="../escaped.pth")
    s = Server(bad, wait=False)
    assert s.proc.wait(timeout=30) == 1
    assert "would leave the model directory" in s.output()
    assert not (tmp_path / "escaped.pth").exists()

    # An entry whose name is longer than any path the extraction makes (a pax header allows
    # that): refused as such, never extracted under a silently shortened name.
    long = tmp_path / "long"
    (long / "model").mkdir(parents=True)
    long_name = "/".join(["d" * 200] * 25) + "/model.pth"  # 5,034 characters
    with tarfile.open(long / "model/model.tar.gz", "w:gz", format=tarfile.PAX_FORMAT) as t:
        t.add(trained[0] / "model/model.pth", arcname=long_name)
    s = Server(long, wait=False)
    assert s.proc.wait(timeout=30) == 1
    assert "does not fit" in s.output() or "too long" in s.output(), s.output()[-2000:]
    assert not any(p.name == "model.pth" for p in (long / "model").rglob("*"))

    # A hard link whose target lies outside: refused, and the target untouched.
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    linked = tmp_path / "linked"
    (linked / "model").mkdir(parents=True)
    with tarfile.open(linked / "model/model.tar.gz", "w:gz") as t:
        info = tarfile.TarInfo("model.pth")
        info.type = tarfile.LNKTYPE
        info.linkname = str(victim)
        t.addfile(info)
    s = Server(linked, wait=False)
    assert s.proc.wait(timeout=30) == 1
    assert "would leave the model directory" in s.output()
    assert victim.read_text() == "keep me"


def test_custom_handler_and_ping_before_ready(trained, tmp_path):
    opt_ml = tmp_path / "opt_ml"
    shutil.copytree(trained[0] / "model", opt_ml / "model")
    (opt_ml / "model/code").mkdir()
    shutil.copy(CUSTOM, opt_ml / "model/code/handlers.so")
    s = Server(opt_ml)
    assert 503 in s.pings and s.pings[-1] == 200  # 503 while model_fn ran, then 200
    assert "custom handlers loaded" in s.output()
    f = sorted(trained[1].rglob("*.png"))[0]
    status, headers, body = s.invoke(f.read_bytes(), "image/png", accept="text/plain")
    assert status == 200 and headers["Content-Type"] == "text/plain"
    assert body.decode().strip() in images.CLASSES
    status, _, body = s.invoke(f.read_bytes(), "image/png")  # the default output_fn still works
    assert status == 200 and json.loads(body)["predictions"]
    assert s.stop() == 0


def test_sigterm_drains_requests_in_flight(trained, tmp_path):
    opt_ml = tmp_path / "opt_ml"
    shutil.copytree(trained[0] / "model", opt_ml / "model")
    s = Server(opt_ml)
    px = pixels(sorted(trained[1].rglob("*.png"))[:1])
    body = str(np.repeat(px, 300, axis=0).tolist())  # 300 images: a slow request
    result = {}
    t = threading.Thread(target=lambda: result.update(r=s.invoke(body, "application/json")))
    t.start()
    time.sleep(0.3)
    t0 = time.time()
    s.proc.send_signal(signal.SIGTERM)
    t.join(timeout=60)
    assert s.proc.wait(timeout=30) == 0
    assert time.time() - t0 < 10
    assert result["r"][0] == 200 and len(json.loads(result["r"][2])["predictions"]) == 300


def test_replicas_share_the_load_and_agree(server, trained, tmp_path):
    """SERVE_REPLICAS=2 on the CPU: two copies of the model, each with its own batcher; under
    concurrent clients both serve requests (their counts are in the log at shutdown), the
    answers are those of one replica, the cores are shared among them, and a bad value stops
    serve at start with a message naming the variable."""
    files = sorted(trained[1].rglob("*.png"))[:8]
    single = {f: json.loads(server.invoke(f.read_bytes(), "image/png")[2])["predictions"][0]
              for f in files}
    opt_ml = tmp_path / "opt_ml"
    shutil.copytree(trained[0] / "model", opt_ml / "model")
    s = Server(opt_ml, env={"SERVE_REPLICAS": "2"})
    answers, failures = [], []

    def client(k):
        for i in range(6):
            f = files[(k + i) % len(files)]
            status, _, out = s.invoke(f.read_bytes(), "image/png")
            if status != 200:
                failures.append((status, out[:200]))
            else:
                answers.append((f, json.loads(out)["predictions"][0]))

    try:
        run_clients(client, 16)
    finally:
        assert s.stop() == 0
    assert not failures, failures[:3]
    assert len(answers) == 16 * 6
    for f, a in answers:
        assert a["predicted_label"] == single[f]["predicted_label"]
        np.testing.assert_allclose(a["probabilities"], single[f]["probabilities"], atol=1e-5)
    log = s.output()
    assert "2 replicas on cpu, cpu" in log, log
    served = [int(n) for n in re.findall(r"replica \d on cpu served (\d+) requests", log)]
    assert len(served) == 2 and min(served) > 0 and sum(served) == 16 * 6, (served, log[-2000:])
    threads_of = lambda text: int(re.search(r"\((\d+) libtorch threads? per forward", text).group(1))
    one = threads_of(server.output())
    assert threads_of(log) == max(1, one // 2), (one, threads_of(log))

    for value in ("0", "two", "65"):
        bad_dir = tmp_path / f"bad-{value}"
        shutil.copytree(trained[0] / "model", bad_dir / "model")
        bad = Server(bad_dir, env={"SERVE_REPLICAS": value}, wait=False)
        assert bad.exit_status() != 0
        assert f'SERVE_REPLICAS="{value}"' in bad.output(), bad.output()

    # PyTorchModel(model_server_workers=2) sets SAGEMAKER_MODEL_SERVER_WORKERS: two copies here
    # too; SERVE_REPLICAS wins over it; a value that is not a count is warned about and left out.
    for env, replicas, said in [({"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}, 2, "worker count"),
                                ({"SAGEMAKER_MODEL_SERVER_WORKERS": "3", "SERVE_REPLICAS": "1"}, 1, None),
                                ({"SAGEMAKER_MODEL_SERVER_WORKERS": "lots"}, 1, '"lots" ignored')]:
        opt_ml = tmp_path / f"workers-{len(os.listdir(tmp_path))}"
        shutil.copytree(trained[0] / "model", opt_ml / "model")
        s = Server(opt_ml, env=env)
        try:
            assert s.invoke(files[0].read_bytes(), "image/png")[0] == 200
        finally:
            assert s.stop() == 0
        log = s.output()
        assert (f"{replicas} replicas on cpu" in log) == (replicas > 1), (env, log[-1500:])
        assert said is None or said in log, (env, log[-1500:])


def test_pytorch_container_batching_settings(trained, tmp_path):
    """PyTorchModel(env={"SAGEMAKER_TS_BATCH_SIZE": "3", "SAGEMAKER_TS_MAX_BATCH_DELAY": ...}),
    the PyTorch container's batching knobs, stand for SERVE_MAX_BATCH / SERVE_BATCH_DELAY_MS:
    under 12 concurrent clients no batch holds more than 3 images; the delay is capped at 1 s
    and said so."""
    files = sorted(trained[1].rglob("*.png"))[:4]
    opt_ml = tmp_path / "opt_ml"
    shutil.copytree(trained[0] / "model", opt_ml / "model")
    s = Server(opt_ml, env={"SAGEMAKER_TS_BATCH_SIZE": "3", "SAGEMAKER_TS_MAX_BATCH_DELAY": "100000"})
    statuses = []

    def client(k):
        for i in range(4):
            statuses.append(s.invoke(files[(k + i) % len(files)].read_bytes(), "image/png")[0])

    try:
        run_clients(client, 12)
    finally:
        assert s.stop() == 0
    log = s.output()
    assert statuses == [200] * 48, statuses
    assert "SAGEMAKER_TS_BATCH_SIZE (the PyTorch container's): up to 3 images a batch" in log, log
    assert "waits up to 1000 ms for requests already being decoded" in log, log
    images, batches = map(int, re.search(r"served 48 requests \((\d+) images in (\d+) batches\)", log).groups())
    assert images == 48 and batches * 3 >= images, (images, batches)


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_64_concurrent_clients(trained, tmp_path):
    opt_ml = tmp_path / "opt_ml"
    shutil.copytree(trained[0] / "model", opt_ml / "model")
    s = Server(opt_ml)
    files = sorted(trained[1].rglob("*.png"))[:8]
    expected, meta = reference_probs(trained[0], files)
    labels = [meta["class_names"][int(p.argmax())] for p in expected]
    payloads = [(f.read_bytes(), "image/png", labels[i]) for i, f in enumerate(files)]
    bad = [(b"garbage", "image/png", 400), (b"x", "text/csv", 415), (b"[1,2", "application/json", 400)]
    rss_before = rss_kib(s.proc.pid)
    failures = []

    def client(k):
        for i in range(12):
            if (k + i) % 4 == 0:
                body, ctype, want = bad[(k + i) % 3]
                status = s.invoke(body, ctype)[0]
                if status != want:
                    failures.append(("invalid", ctype, status))
            else:
                body, ctype, label = payloads[(k * 7 + i) % len(payloads)]
                status, _, out = s.invoke(body, ctype)
                if status != 200 or json.loads(out)["predictions"][0]["predicted_label"] != label:
                    failures.append(("valid", status, out[:200]))

    run_clients(client, 64, timeout=300)
    assert not failures, failures[:5]
    assert s.request("GET", "/ping")[0] == 200
    growth = rss_kib(s.proc.pid) - rss_before
    assert growth < 200 * 1024, f"resident memory grew by {growth} KiB"
    assert s.stop() == 0
