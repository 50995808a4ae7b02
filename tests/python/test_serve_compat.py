"""test_serve_compat.py - `serve` against client code and models written for other containers.

The seeds' own client snippets run unchanged against `serve` in the matching response shape
(SERVE_RESPONSE_FORMAT, or format= in Accept); the seeds' Python-trained models, saved here by
torchvision / the seed's LeNet class with their preprocessing stated in environment variables
or a user-written metadata.json, give the probabilities their inference.py logic gives within
1e-4. Also: Accept q-values, NPY integer dtypes, JSON Lines as batch transform assembles it.
"""
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.dirname(__file__))
from reference_models import CifarVGG, WideLeNet  # noqa: E402
from test_serve import SERVE, Server, free_port, npy_bytes  # noqa: E402

CIFAR_CLASSES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def sharpen(net, layer, factor):
    """Random weights give near-uniform probabilities, where any preprocessing looks right;
    a larger last layer spreads them so that a wrong mean or resize shows."""
    with torch.no_grad():
        getattr(net, layer).weight.mul_(factor)
    return net.eval()


def smooth_image(w, h, seed):
    """A photo-like picture (gradients and blobs, not noise), so that resampling agrees."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, ph = rng.uniform(0.5, 3, 2).tolist() + [rng.uniform(0, 6)]
        img[..., c] = 127 + 90 * np.sin(fx * x / w * 6.28 + ph) * np.cos(fy * y / h * 6.28)
    for _ in range(4):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(10, h / 3)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def encoded(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


# ---- the CIFAR-10 seed: wide LeNet, Normalize(0.5, 0.5) at 32x32, raw pixels from its Lambda ----

@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    (root / "model").mkdir()
    torch.manual_seed(3)
    net = sharpen(WideLeNet(10), "fc3", 30)
    torch.save(net.state_dict(), root / "model/model.pth")
    # A user-written metadata.json with only the class names; the preprocessing comes from
    # the environment, as a user states it in Model(env=...).
    (root / "model/metadata.json").write_text(json.dumps({"class_names": CIFAR_CLASSES}))
    s = Server(root, env={"SM_MODEL_MEAN": "0.5,0.5,0.5", "SM_MODEL_STD": "0.5",
                          "SERVE_RESPONSE_FORMAT": "builtin"})
    rng = np.random.default_rng(5)
    px = np.stack([np.asarray(smooth_image(32, 32, seed)).transpose(2, 0, 1) for seed in range(4)])
    px = np.ascontiguousarray(px)
    px[3] = rng.integers(0, 256, (3, 32, 32))
    yield s, net, px
    assert s.stop() == 0


def cifar_reference(net, px, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)):
    """The seed's preprocessing: ToTensor + Normalize((0.5,)*3, (0.5,)*3), then the net."""
    m = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    sd = torch.tensor(std, dtype=torch.float32)[:, None, None]
    x = ((torch.tensor(px, dtype=torch.float32) / 255 - m) / sd).contiguous()
    with torch.no_grad():
        logits = net(x)
    return logits.numpy(), torch.softmax(logits, 1).numpy()


def serve_once(root, env, body, content_type):
    """One request to a fresh `serve` of root/model: the answer as an array, and serve's log."""
    s = Server(root, env=env)
    try:
        status, _, out = s.invoke(body, content_type)
        assert status == 200, out
        return np.asarray(json.loads(out)), s.output()
    finally:
        assert s.stop() == 0


def test_builtin_algorithm_client_snippet_unchanged(cifar):
    s, net, px = cifar
    _, want = cifar_reference(net, px)
    _, imagenet = cifar_reference(net, px, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert np.abs(want - imagenet).max() > 1e-2  # the wrong preprocessing would show
    for i in range(len(px)):
        body = encoded(Image.fromarray(px[i].transpose(1, 2, 0)), "PNG")
        status, headers, out = s.invoke(body, "image/png")  # as the seed's Lambda sends it
        assert status == 200, out
        # The cifar100 seed's Step Functions filter, verbatim:
        inferences = json.loads(out.decode("utf-8"))
        confident = any(x > 0.93 for x in inferences)
        assert confident == bool((want[i] > 0.93).any())
        assert len(inferences) == 10
        np.testing.assert_allclose(inferences, want[i], atol=1e-4)
    # The seed's Lambda: str(list) of uint8 pixels [1,3,32,32] as application/json.
    status, _, out = s.invoke(str(px[:1].tolist()), "application/json")
    np.testing.assert_allclose(json.loads(out), want[0], atol=1e-4)
    # Several images: one list per image.
    status, _, out = s.invoke(npy_bytes(px), "application/x-npy", accept="application/json")
    np.testing.assert_allclose(json.loads(out), want, atol=1e-4)


def test_builtin_jsonlines_and_verbose(cifar):
    s, net, px = cifar
    _, want = cifar_reference(net, px)
    body = "\n".join(json.dumps(p.tolist()) for p in px[:2])
    status, headers, out = s.invoke(body, "application/jsonlines", accept="application/jsonlines")
    assert status == 200 and headers["Content-Type"] == "application/jsonlines"
    lines = [json.loads(line) for line in out.decode().split("\n")]
    assert [sorted(line) for line in lines] == [["prediction"]] * 2
    np.testing.assert_allclose([line["prediction"] for line in lines], want[:2], atol=1e-4)
    status, _, out = s.invoke(body, "application/jsonlines", accept="application/jsonlines; verbose=true")
    lines = [json.loads(line) for line in out.decode().split("\n")]
    for line, p in zip(lines, want):
        assert line["labels"] == CIFAR_CLASSES
        assert line["predicted_label"] == CIFAR_CLASSES[int(np.argmax(p))]
        np.testing.assert_allclose(line["prediction"], p, atol=1e-4)


def test_shape_per_request_and_q_values(cifar):
    s, net, px = cifar
    logits, want = cifar_reference(net, px)
    one = npy_bytes(px[:1])
    status, _, out = s.invoke(one, "application/x-npy", accept="application/json; format=default")
    assert status == 200
    pred = json.loads(out)["predictions"][0]
    assert pred["predicted_label"] == CIFAR_CLASSES[int(np.argmax(want[0]))]
    status, _, out = s.invoke(one, "application/x-npy", accept="application/json;format=pytorch")
    np.testing.assert_allclose(json.loads(out), logits[:1], rtol=1e-4, atol=1e-4)
    status, _, out = s.invoke(one, "application/x-npy", accept='application/x-npy; format="pytorch"')
    np.testing.assert_allclose(np.load(io.BytesIO(out)), logits[:1], rtol=1e-4, atol=1e-4)
    # q-values weigh (issue 12 item 6): JSON is preferred here although NPY comes first.
    status, headers, out = s.invoke(one, "application/x-npy",
                                    accept="application/x-npy;q=0.1, application/json;q=0.9")
    assert status == 200 and headers["Content-Type"] == "application/json", headers
    np.testing.assert_allclose(json.loads(out), want[0], atol=1e-4)
    status, headers, _ = s.invoke(one, "application/x-npy", accept="application/json;q=0.5, application/x-npy")
    assert headers["Content-Type"] == "application/x-npy"
    for refused in ["application/json;q=0", "application/x-npy; q=0, application/json;q=0",
                    "application/json;format=tensorflow", "application/json;q=2"]:
        status, _, out = s.invoke(one, "application/x-npy", accept=refused)
        assert status == 406, (refused, out)
        assert "unsupported Accept" in json.loads(out)["error"]
    status, headers, _ = s.invoke(one, "application/x-npy", accept="application/json;q=0, */*;q=0.2")
    assert status == 200


def test_npy_any_integer_dtype_and_whole_sentences(cifar):
    s, net, px = cifar
    status, _, base = s.invoke(npy_bytes(px), "application/x-npy", accept="application/x-npy")
    assert status == 200
    # NumpySerializer turns a Python list into int64; other integer types are as good.
    dtypes = ["<i8", ">i8", "<i4", ">i4", "<i2", "<u2", ">u2", "<u4", "<u8", "|u1"]
    for dt in dtypes:
        status, _, out = s.invoke(npy_bytes(px.astype(dt)), "application/x-npy", accept="application/x-npy")
        assert status == 200, (dt, out)
        assert out == base, dt
    small = (px // 2).astype(np.int8)  # int8 holds 0..127
    status, _, out = s.invoke(npy_bytes(small), "application/x-npy", accept="application/x-npy")
    status2, _, out2 = s.invoke(npy_bytes(small.astype(np.uint8)), "application/x-npy", accept="application/x-npy")
    assert status == status2 == 200 and out == out2
    bad = px.astype(np.int16)
    bad[0, 0, 0, 1] = 300
    neg = px.astype(np.int64)
    neg[1, 2, 3, 4] = -1
    cases = [(npy_bytes(bad), "integer 300"), (npy_bytes(neg), "integer -1"),
             (npy_bytes(px.astype(np.float16)), "'<f2' is not accepted"),
             (npy_bytes(px.astype(np.complex64)), "'<c8' is not accepted")]
    for body, text in cases:
        status, _, out = s.invoke(body, "application/x-npy")
        msg = json.loads(out)["error"]
        assert status == 400 and text in msg, msg
        assert msg.endswith("."), msg  # a whole sentence, not cut off


def test_npy_huge_shape_refused_before_multiplying(cifar):
    """Issue 12 item 7: the shape's product overflowed int64 before it was checked."""
    s = cifar[0]
    for shape in ["(16777216, 3, 16777216, 16777216)", "(4194304, 3, 4194304, 4194304)",
                  "(9223372036854775807, 3, 2, 2)", "(1, 3, 4097, 4096)"]:
        header = "{'descr': '|u1', 'fortran_order': False, 'shape': %s, }" % shape
        header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
        body = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 12
        status, _, out = s.invoke(body, "application/x-npy")
        msg = json.loads(out)["error"]
        assert status == 400 and ("impossible" in msg or "shaped" in msg), (shape, msg)
    assert s.request("GET", "/ping")[0] == 200


def test_jsonlines_assembled_as_batch_transform_does(cifar):
    """AssembleWith=Line: SageMaker (and the SDK's local mode) writes each answer followed by a
    newline; our answers must not end with one, or blank lines appear."""
    s, net, px = cifar
    records = [json.dumps(p.tolist()) for p in px]
    for accept in ["application/jsonlines", "application/jsonlines;format=default",
                   "application/jsonlines;format=pytorch"]:
        single = b""  # SingleRecord: one request per line
        for r in records:
            status, _, out = s.invoke(r, "application/jsonlines", accept=accept)
            assert status == 200
            single += out + b"\n"
        status, _, multi = s.invoke("\n".join(records) + "\n", "application/jsonlines", accept=accept)
        multi += b"\n"  # MultiRecord: the mini-batch's lines in one request
        for assembled in (single, multi):
            lines = assembled.decode().split("\n")
            assert lines[-1] == "" and "" not in lines[:-1], (accept, assembled[:200])
            assert len(lines) - 1 == len(records)
        # One forward pass for the batch or one per line: the same answers within float noise.
        parse = [[json.loads(line) for line in a.decode().split("\n")[:-1]] for a in (single, multi)]

        def numbers(line):
            if isinstance(line, dict):
                return line.get("probabilities", line.get("prediction"))
            return line
        for a, b in zip(*parse):
            assert type(a) is type(b) and (not isinstance(a, dict) or sorted(a) == sorted(b))
            np.testing.assert_allclose(numbers(a), numbers(b), rtol=1e-4, atol=1e-5)


# ---- the binimages seed: ResNet, Resize((224, 224)), mean 0 / std 1; PyTorch container's output ----

@pytest.fixture(scope="module")
def binimages(tmp_path_factory):
    root = tmp_path_factory.mktemp("binimages")
    (root / "model").mkdir()
    torch.manual_seed(4)
    # resnet18 rather than the seed's resnet50 keeps the test quick; the preprocessing and the
    # answer's shape are what is under test here (test_parity covers the architectures).
    net = sharpen(torchvision.models.resnet18(num_classes=5), "fc", 8)
    torch.save(net.state_dict(), root / "model/model.pth")
    (root / "model/metadata.json").write_text(json.dumps(
        {"image_size": 224, "resize_mode": "squash", "mean": [0, 0, 0], "std": [1, 1, 1]}))
    s = Server(root, env={"SERVE_RESPONSE_FORMAT": "pytorch"})
    yield s, net
    assert s.stop() == 0


def binimages_reference(net, images, resize=transforms.Resize((224, 224)), mean=(0, 0, 0), std=(1, 1, 1)):
    """The seed's predict_fn: Resize((224, 224)), ToTensor, Normalize(0, 1), model(x)."""
    tf = transforms.Compose([resize, transforms.ToTensor(), transforms.Normalize(mean, std)])
    x = torch.stack([tf(img.convert("RGB")) for img in images])
    with torch.no_grad():
        return net(x).numpy()


def test_pytorch_container_client_snippet_unchanged(binimages):
    s, net = binimages
    images = [smooth_image(320, 240, 10), smooth_image(250, 300, 11)]
    want = binimages_reference(net, images)
    wrong = binimages_reference(net, images, transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)]),
                                (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert np.abs(torch.softmax(torch.tensor(want), 1).numpy() -
                  torch.softmax(torch.tensor(wrong), 1).numpy()).max() > 1e-2
    jpeg_diffs = []
    for img, w in zip(images, want):
        for body, ctype in [(encoded(img, "PNG"), "image/png"), (encoded(img, "JPEG", quality=95), "image/jpeg")]:
            status, _, out = s.invoke(body, ctype)
            assert status == 200, out
            # What PyTorch-container clients do with the default output_fn's answer:
            response = json.loads(out)
            label = np.argmax(response, 1)
            first = response[0]
            ref = w if ctype == "image/png" else binimages_reference(net, [Image.open(io.BytesIO(body))])[0]
            assert label.tolist() == [int(np.argmax(ref))]
            got_p = torch.softmax(torch.tensor(response), 1)[0].numpy()
            want_p = torch.softmax(torch.tensor(ref), 0).numpy()
            if ctype == "image/png":  # the same pixels: the same answer
                np.testing.assert_allclose(first, ref, rtol=1e-4, atol=1e-4)
                np.testing.assert_allclose(got_p, want_p, atol=1e-4)
            else:  # Debian's libjpeg-turbo and Pillow's own build round some pixels apart
                jpeg_diffs.append(float(np.abs(got_p - want_p).max()))
                np.testing.assert_allclose(got_p, want_p, atol=2e-3)
    print("JPEG: largest probability difference from Pillow's decode:", max(jpeg_diffs))
    # The SDK's NumpyDeserializer: the same logits as .npy.
    status, headers, out = s.invoke(encoded(images[0], "PNG"), "image/png", accept="application/x-npy")
    arr = np.load(io.BytesIO(out))
    assert arr.shape == (1, 5) and arr.dtype == np.float32
    np.testing.assert_allclose(arr[0], want[0], rtol=1e-4, atol=1e-4)


# The binimages seed's inference.py (model_fn, input_fn, predict_fn with its Compose), kept once
# as the python_transforms fuzz target's seed.
BINIMAGES_INFERENCE_PY = open(os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus",
                                           "python_transforms", "binimages_inference.py")).read()


def test_handler_transforms_feed_the_model_as_the_script_did(tmp_path):
    """PyTorchModel(model_data=..., entry_point="inference.py") with the binimages seed's
    handler: no metadata.json, no setting but SAGEMAKER_PROGRAM. The Compose in its predict_fn
    (Resize((224, 224)), ToTensor, Normalize(0, 1)) is read off the script, so the logits equal
    the handler's, where the defaults (Resize(256) + CenterCrop(224), ImageNet statistics) would
    be off by more than 1e-2. A pipeline serve cannot follow is named in a warning."""
    (tmp_path / "model/code").mkdir(parents=True)
    torch.manual_seed(4)
    net = sharpen(torchvision.models.resnet18(num_classes=5), "fc", 8)
    torch.save(net.state_dict(), tmp_path / "model/model.pth")
    (tmp_path / "model/code/inference.py").write_text(BINIMAGES_INFERENCE_PY)
    img = smooth_image(320, 240, 12)
    want = binimages_reference(net, [img])
    wrong = binimages_reference(net, [img], transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)]),
                                (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert np.abs(want - wrong).max() > 1e-2
    got, log = serve_once(tmp_path, {"SAGEMAKER_PROGRAM": "inference.py"}, encoded(img, "PNG"), "image/png")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert "preprocessing from code/inference.py" in log
    assert "Resize((224, 224)), ToTensor, Normalize(mean=(0, 0, 0), std=(1, 1, 1))" in log
    (tmp_path / "model/code/inference.py").write_text(BINIMAGES_INFERENCE_PY.replace(
        "transforms.ToTensor(),", "transforms.Grayscale(3), transforms.ToTensor(),"))
    got, log = serve_once(tmp_path, {"SAGEMAKER_PROGRAM": "inference.py"}, encoded(img, "PNG"), "image/png")
    np.testing.assert_allclose(got, wrong, rtol=1e-4, atol=1e-4)
    assert "its preprocessing is not taken (a Compose with transforms.Grayscale(...)" in log


def test_bad_settings_stop_the_endpoint_at_start(tmp_path):
    (tmp_path / "model").mkdir()
    torch.save(WideLeNet(3).state_dict(), tmp_path / "model/model.pth")
    env = dict(os.environ, OPT_ML=str(tmp_path), SAGEMAKER_BIND_TO_PORT=str(free_port()))
    for extra, text in [({"SERVE_RESPONSE_FORMAT": "mxnet"}, "SERVE_RESPONSE_FORMAT"),
                        ({"SM_MODEL_MEAN": "0.5,0.5"}, "SM_MODEL_MEAN"),
                        ({"SM_MODEL_STD": "0"}, "SM_MODEL_STD"),
                        ({"SM_MODEL_RESIZE_MODE": "stretch"}, "resize_mode"),
                        ({"SM_MODEL_IMAGE_SIZE": "64", "SM_MODEL_RESIZE_SIZE": "48"}, "smaller than"),
                        ({"SERVE_URL_ALLOW_PRIVATE": "10.0.0.0/99"}, "SERVE_URL_ALLOW_PRIVATE"),
                        ({"SERVE_URL_TIMEOUT_S": "soon"}, "SERVE_URL_TIMEOUT_S")]:
        r = subprocess.run([SERVE, "serve"], env=dict(env, **extra), capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, (extra, r.stderr)
        assert text in r.stderr + r.stdout, (extra, r.stderr)


def test_pytorch_model_deployment_answers_logits_without_settings(tmp_path):
    """PyTorchModel(entry_point="inference.py").deploy() sets SAGEMAKER_PROGRAM and puts the
    script under code/; the seeds' clients (JSONDeserializer, json.loads, np.argmax(r, 1))
    parse the PyTorch container's default output_fn: the logits, with no setting of ours.
    SERVE_RESPONSE_FORMAT still chooses."""
    (tmp_path / "model/code").mkdir(parents=True)
    torch.manual_seed(6)
    net = sharpen(WideLeNet(4), "fc3", 10)
    torch.save(net.state_dict(), tmp_path / "model/model.pth")
    (tmp_path / "model/code/inference.py").write_text("def model_fn(model_dir):\n    pass\n")
    env = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
           "SAGEMAKER_REGION": "us-east-1", "SM_MODEL_MEAN": "0.5", "SM_MODEL_STD": "0.5"}
    px = np.asarray(smooth_image(32, 32, 7)).transpose(2, 0, 1)[None].copy()
    want, _ = cifar_reference(net, px)
    body = encoded(Image.fromarray(px[0].transpose(1, 2, 0)), "PNG")
    s = Server(tmp_path, env=env)
    try:
        status, _, out = s.invoke(body, "image/png", accept="application/json")
        assert status == 200, out
        response = json.loads(out)
        assert np.argmax(response, 1).tolist() == [int(np.argmax(want[0]))]
        np.testing.assert_allclose(response, want, rtol=1e-4, atol=1e-4)
        assert "SAGEMAKER_PROGRAM=inference.py" in s.output()
    finally:
        assert s.stop() == 0
    s = Server(tmp_path, env=dict(env, SERVE_RESPONSE_FORMAT="default"))
    try:
        status, _, out = s.invoke(body, "image/png")
        assert status == 200 and "predictions" in json.loads(out), out
    finally:
        assert s.stop() == 0


def test_dataparallel_state_dict_is_served(tmp_path):
    """The CIFAR-10 seed's script saves torch.save(model.cpu().state_dict()) of an
    nn.DataParallel(Net()) on a multi-GPU host: every key starts with "module."; its Lambda
    posts str(list) of uint8 pixels [1,3,32,32] as application/json."""
    (tmp_path / "model").mkdir()
    torch.manual_seed(8)
    net = sharpen(WideLeNet(10), "fc3", 10)
    torch.save(torch.nn.DataParallel(net).state_dict(), tmp_path / "model/model.pth")
    px = np.asarray(smooth_image(32, 32, 9)).transpose(2, 0, 1)[None].copy()
    want, _ = cifar_reference(net, px)
    got, log = serve_once(tmp_path, {"SM_MODEL_MEAN": "0.5", "SM_MODEL_STD": "0.5",
                                     "SERVE_RESPONSE_FORMAT": "pytorch"},
                          px.tolist().__str__(), "application/json")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert "nn.DataParallel" in log


def test_cifar_vgg_state_dict_is_served_with_no_settings(tmp_path):
    """The CIFAR-10 seed deploys its VGG('VGG11') (conv-bn-relu features, one Linear(512, 10)
    named classifier) with PyTorchModel(entry_point=...): the SDK sets SAGEMAKER_PROGRAM and
    nothing else. The architecture is read off the keys, and its defaults are the seed's
    training transform (32 px, Normalize 0.5/0.5): the logits equal PyTorch's."""
    (tmp_path / "model").mkdir()
    torch.manual_seed(9)
    net = CifarVGG("VGG11", 10)
    with torch.no_grad():  # trained batch-norm statistics, so that eval mode tests something
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)
    net = sharpen(net.eval(), "classifier", 10)
    torch.save(net.state_dict(), tmp_path / "model/model.pth")
    px = np.asarray(smooth_image(32, 32, 4)).transpose(2, 0, 1)[None].copy()
    want, _ = cifar_reference(net, px)
    got, log = serve_once(tmp_path, {"SAGEMAKER_PROGRAM": "pytorch_cifar.py"},
                          px.tolist().__str__(), "application/json")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert "vgg11_cifar" in log


def test_model_trained_with_builtin_hyperparameters_answers_as_the_builtin(tmp_path):
    """The CIFAR-100 seed trains with the built-in algorithm's hyperparameters (a plain
    Estimator: str values, num_training_samples required) and deploys with Model(image_uri,
    model_data).deploy(): no environment. Its Lambda runs json.loads on the answer and then
    any(x > 0.93 for x in inferences): a flat list of probabilities, with no setting."""
    sys.path.insert(0, os.path.dirname(__file__))
    import make_image_dataset as images
    from test_train import run_train
    cfg = tmp_path / "input/config"
    cfg.mkdir(parents=True)
    hp = {"model": "lenet", "epochs": "1", "image_shape": "3,32,32", "num_classes": "3",
          "num_training_samples": "45"}
    (cfg / "hyperparameters.json").write_text(json.dumps(hp))
    images.write_folders(str(tmp_path / "input/data/train"), images.generate(15, 32, 2))
    r = run_train(tmp_path)
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "model/metadata.json").read_text())
    assert meta["response_format"] == "builtin"
    png = next((tmp_path / "input/data/train/circle").glob("*.png")).read_bytes()
    s = Server(tmp_path)
    try:
        for accept in [None, "*/*"]:  # boto3's invoke_endpoint; the SDK's IdentitySerializer
            status, _, out = s.invoke(png, "image/png", accept=accept)
            assert status == 200, out
            inferences = json.loads(out.decode("utf-8"))
            assert isinstance(inferences, list) and len(inferences) == 3
            any(x > 0.93 for x in inferences)  # the seed's filter, verbatim: no TypeError
            assert abs(sum(inferences) - 1) < 1e-4
        status, _, out = s.invoke(png, "image/png", accept="application/json; format=default")
        assert "predictions" in json.loads(out)
        assert "built-in image-classification algorithm's shape" in s.output()
    finally:
        assert s.stop() == 0
    s = Server(tmp_path, env={"SERVE_RESPONSE_FORMAT": "default"})
    try:
        assert "predictions" in json.loads(s.invoke(png, "image/png")[2])
    finally:
        assert s.stop() == 0


def test_resnet_with_a_sequential_head_is_served_as_pytorch_computes_it(tmp_path):
    """The dog-breed scripts replace resnet50's fc with nn.Sequential(Linear, ReLU, Linear)
    (here with a Dropout too) and deploy with PyTorchModel(entry_point=...): the head is read
    off fc.0 / fc.3 and the logits equal PyTorch's."""
    (tmp_path / "model").mkdir()
    torch.manual_seed(5)
    net = torchvision.models.resnet18()
    net.fc = torch.nn.Sequential(torch.nn.Linear(512, 16), torch.nn.ReLU(inplace=True),
                                 torch.nn.Dropout(0.5), torch.nn.Linear(16, 7))
    with torch.no_grad():
        net.fc[3].weight.mul_(20)  # spread the logits so that a missing ReLU would show
    net.eval()
    torch.save(net.state_dict(), tmp_path / "model/model.pth")
    img = smooth_image(64, 64, 3)
    x = transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))(transforms.ToTensor()(img))
    with torch.no_grad():
        want = net(x[None]).numpy()
        no_relu = net.fc[3](net.fc[0](torch.flatten(torch.nn.Sequential(*list(net.children())[:-1])(x[None]), 1))).numpy()
    assert np.abs(want - no_relu).max() > 1e-2  # the check below can fail
    got, log = serve_once(tmp_path, {"SAGEMAKER_PROGRAM": "inference.py", "SM_MODEL_IMAGE_SIZE": "64",
                                     "SM_MODEL_RESIZE_MODE": "auto"}, encoded(img, "PNG"), "image/png")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert "fc = nn.Sequential of fc.0 Linear(16), ReLU, fc.3 Linear(7)" in log

    # Adjacent linear layers (fc.0, fc.1) follow each other with nothing between; and a
    # user's metadata.json naming arch and class_names does not hide the head.
    net.fc = torch.nn.Sequential(torch.nn.Linear(512, 16), torch.nn.Linear(16, 7))
    with torch.no_grad():
        net.fc[1].weight.mul_(20)
        want = net(x[None]).numpy()
        relu = net.fc[1](torch.relu(net.fc[0](torch.flatten(torch.nn.Sequential(*list(net.children())[:-1])(x[None]), 1)))).numpy()
    assert np.abs(want - relu).max() > 1e-2
    torch.save(net.state_dict(), tmp_path / "model/model.pth")
    (tmp_path / "model/metadata.json").write_text(json.dumps(
        {"arch": "resnet18", "class_names": [f"c{i}" for i in range(7)], "image_size": 64,
         "resize_mode": "auto"}))
    got, log = serve_once(tmp_path, {"SAGEMAKER_PROGRAM": "inference.py"}, encoded(img, "PNG"), "image/png")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert "fc = nn.Sequential of fc.0 Linear(16), fc.1 Linear(7)" in log


def test_torchvision_backbone_with_another_head_is_refused_saying_why(tmp_path):
    """A head with a layer that is not linear (here a BatchNorm1d in the Sequential): serve
    stops at start naming that layer, and does not send the user to SM_MODEL_ARCH."""
    (tmp_path / "model").mkdir()
    net = torchvision.models.resnet18()
    net.fc = torch.nn.Sequential(torch.nn.Linear(512, 16), torch.nn.BatchNorm1d(16),
                                 torch.nn.ReLU(), torch.nn.Linear(16, 7))
    torch.save(net.state_dict(), tmp_path / "model/model.pth")
    env = dict(os.environ, OPT_ML=str(tmp_path), SAGEMAKER_BIND_TO_PORT=str(free_port()))
    r = subprocess.run([SERVE, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    out = r.stderr + r.stdout
    assert "a layer other than nn.Linear (fc.1.weight)" in out, out
    assert "SM_MODEL_ARCH" not in out, out
