"""test_multi_model.py - `serve` as a SageMaker multi-model endpoint (SAGEMAKER_MULTI_MODEL=true):
the real server on a free loopback port, a real HTTP client, 100 LeNet state dicts saved by
Python that are made to disagree (model i answers class i whatever the image), loaded, listed
page by page, invoked concurrently, unloaded; the statuses of the contract (409, 404, 507, 400);
unloading under a small SERVE_MODEL_MEMORY_MB; a model deleted while requests to it are in
flight; a hostile archive refused while the loaded models keep answering.

Environment: SERVE_BIN, CUSTOM_HANDLER (the test handler library: model_fn takes 1 s longer).
"""
import io
import json
import os
import random
import re
import shutil
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
from reference_models import make_model  # noqa: E402
from serve_process import ServeProcess, free_port  # noqa: E402

CUSTOM = os.environ.get("CUSTOM_HANDLER", "build/tests/custom_handler.so")
N_MODELS = 100
CLASSES = 100


def npy_bytes(a):
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


IMAGE = npy_bytes(np.random.RandomState(0).randint(0, 256, (1, 3, 32, 32)).astype(np.uint8))


class MultiModelServer(ServeProcess):
    """serve in multi-model mode (one libtorch thread, so that tests can count models)."""

    def __init__(self, root, env=None):
        super().__init__(root, dict({"SAGEMAKER_MULTI_MODEL": "true", "SERVE_THREADS": "1"},
                                    **(env or {})), timeout=30)

    def json(self, method, path, body=None):
        status, _, out = self.request(method, path, body=None if body is None else json.dumps(body),
                                      headers={"Content-Type": "application/json"})
        return status, json.loads(out)

    def load(self, name, url):
        return self.json("POST", "/models", {"model_name": name, "url": str(url)})

    def invoke(self, name, body=IMAGE, content_type="application/x-npy", headers=None):
        h = {"Content-Type": content_type}
        h.update(headers or {})
        return self.request("POST", f"/models/{name}/invoke", body=body, headers=h)

    def answer(self, name, body=IMAGE):
        status, _, out = self.invoke(name, body)
        assert status == 200, (name, status, out)
        return int(json.loads(out)["predictions"][0]["predicted_label"])


def disagreeing_state_dict(base, cls):
    """The base LeNet's weights, except a head that answers cls for every input."""
    sd = {k: v.clone() for k, v in base.items()}
    sd["fc3.weight"].zero_()
    sd["fc3.bias"].zero_()
    sd["fc3.bias"][cls] = 10.0
    return sd


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """models/model_<i>/model: model.pth answering class i; model_003 ships as a model.tar.gz."""
    root = tmp_path_factory.mktemp("mme")
    torch.manual_seed(0)
    base = make_model("lenet", CLASSES).state_dict()
    dirs = []
    for i in range(N_MODELS):
        d = root / "models" / f"model_{i:03d}" / "model"
        d.mkdir(parents=True)
        torch.save(disagreeing_state_dict(base, i), d / "model.pth")
        dirs.append(d)
    with tarfile.open(dirs[3] / "model.tar.gz", "w:gz") as t:
        t.add(dirs[3] / "model.pth", arcname="model.pth")
    (dirs[3] / "model.pth").unlink()
    return root, dirs


def test_hundred_models_load_list_invoke_unload(models):
    root, dirs = models
    s = MultiModelServer(root, {"SERVE_MODEL_MEMORY_MB": "4096"})
    names = [f"model_{i:03d}" for i in range(N_MODELS)]
    t0 = time.time()
    with ThreadPoolExecutor(8) as pool:
        loads = list(pool.map(lambda i: s.load(names[i], dirs[i]), range(N_MODELS)))
    load_s = time.time() - t0
    assert all(st == 200 for st, _ in loads), [x for x in loads if x[0] != 200][:3]
    assert (dirs[3] / "model.pth").exists()  # extracted from its model.tar.gz

    status, out = s.load("model_000", dirs[0])
    assert status == 409 and "already loaded" in out["error"]

    # Paging: 30 at a time, in name order, a token until the last page.
    listed, token, pages = [], None, 0
    while True:
        path = "/models?limit=30" + (f"&next_page_token={token}" if token else "")
        status, out = s.json("GET", path)
        assert status == 200
        pages += 1
        listed += out["models"]
        token = out.get("nextPageToken")
        if not token:
            break
        assert len(out["models"]) == 30
    assert pages == 4
    assert [m["modelName"] for m in listed] == names
    assert all(m["modelUrl"] == str(dirs[int(m["modelName"][6:])]) for m in listed)
    status, out = s.json("GET", "/models")  # the default page holds all 100
    assert status == 200 and len(out["models"]) == 100 and "nextPageToken" not in out
    assert s.json("GET", "/models/model_042") == (200, {"modelName": "model_042",
                                                         "modelUrl": str(dirs[42])})

    # Every model answers its own class, also when all are asked at once in random order.
    order = [i for i in range(N_MODELS) for _ in range(3)]
    random.Random(1).shuffle(order)
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda i: s.answer(names[i]), order))
    assert got == order

    # Everything /invocations accepts: Accept, custom attributes, JSON input, Target-Model.
    status, headers, out = s.invoke("model_007", headers={
        "Accept": "application/x-npy", "X-Amzn-SageMaker-Custom-Attributes": "top_k=1"})
    assert status == 200 and headers["Content-Type"] == "application/x-npy"
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "top_k=1"
    assert np.load(io.BytesIO(out)).argmax() == 7
    px = np.load(io.BytesIO(IMAGE))
    status, _, out = s.invoke("model_011", body=json.dumps(px.tolist()), content_type="application/json")
    assert status == 200 and json.loads(out)["predictions"][0]["predicted_label"] == "11"
    status, _, out = s.invoke("model_011", headers={"Accept": "text/html"})
    assert status == 406
    status, _, out = s.invoke("model_011", body=b"not an image", content_type="image/jpeg")
    assert status == 400, out
    status, _, out = s.request("POST", "/invocations", body=IMAGE, headers={
        "Content-Type": "application/x-npy", "X-Amzn-SageMaker-Target-Model": "model_055"})
    assert status == 200 and json.loads(out)["predictions"][0]["predicted_label"] == "55"

    with ThreadPoolExecutor(8) as pool:
        unloads = list(pool.map(lambda n: s.json("DELETE", f"/models/{n}"), names))
    assert all(st == 200 for st, _ in unloads)
    assert s.json("GET", "/models") == (200, {"models": []})
    status, _, out = s.invoke("model_001")
    assert status == 404 and "not loaded" in json.loads(out)["error"]
    assert s.json("DELETE", "/models/model_001")[0] == 404
    assert s.json("GET", "/models/model_001")[0] == 404
    assert s.request("GET", "/ping")[0] == 200
    assert s.stop() == 0
    print(f"100 models loaded in {load_s:.2f} s")


def test_bad_requests(models):
    root, dirs = models
    s = MultiModelServer(root, {"SERVE_MODEL_MEMORY_MB": "64"})
    empty = root / "spare" / "empty"
    empty.mkdir(parents=True, exist_ok=True)
    cases = [
        (s.request("POST", "/models", body=b"{not json"), 400, "JSON object"),
        (s.request("POST", "/models", body=json.dumps({"model_name": "a"})), 400, "JSON object"),
        (s.request("POST", "/models", body=json.dumps({"model_name": "../a", "url": str(dirs[0])})),
         400, "model_name"),
        (s.request("POST", "/models", body=json.dumps({"model_name": "a", "url": "relative/x"})),
         400, "absolute path"),
        (s.request("POST", "/models", body=json.dumps({"model_name": "a", "url": str(dirs[0]) + "/../model"})),
         400, ".."),
        (s.request("POST", "/models", body=json.dumps({"model_name": "a", "url": str(root / "nowhere")})),
         400, "not a directory"),
        (s.request("POST", "/models", body=json.dumps({"model_name": "a", "url": str(empty)})),
         500, "no model.pth"),
        (s.request("GET", "/models?limit=0"), 400, "limit"),
        (s.request("GET", "/models?next_page_token=%2F"), 400, "next_page_token"),
        (s.request("GET", "/models/nope"), 404, "not loaded"),
        (s.request("DELETE", "/models/nope"), 404, "not loaded"),
        (s.request("POST", "/models/nope/invoke", body=IMAGE), 404, "not loaded"),
        (s.request("POST", "/models/a%20b/invoke", body=IMAGE), 400, "model name"),
        (s.request("PUT", "/models"), 405, "not allowed"),
        (s.request("GET", "/models/nope/invoke"), 405, "not allowed"),
        (s.request("GET", "/models/nope/other"), 404, "no route"),
        (s.request("POST", "/invocations", body=IMAGE), 400, "multi-model endpoint"),
    ]
    for (status, headers, body), want, text in cases:
        assert status == want and headers["Content-Type"] == "application/json", (want, status, body)
        out = json.loads(body)
        assert text in out["error"] and out["status"] == want, (text, out)
    assert s.json("GET", "/models") == (200, {"models": []})  # a failed load leaves nothing
    assert s.load("a", dirs[0])[0] == 200 and s.answer("a") == 0  # nor reserves the name
    assert s.stop() == 0


def test_memory_budget_unloads_least_recently_used_and_507(models):
    """Each LeNet counts about 2 MiB (1 MiB of weights + 1 MiB overhead): 7 MiB holds three."""
    root, dirs = models
    s = MultiModelServer(root, {"SERVE_MODEL_MEMORY_MB": "7"})
    for i in (10, 11, 12):
        assert s.load(f"m{i}", dirs[i])[0] == 200
    assert s.answer("m10") == 10  # m11 is now the least recently used
    status, out = s.load("m13", dirs[13])
    assert status == 200, out
    assert [m["modelName"] for m in s.json("GET", "/models")[1]["models"]] == ["m10", "m12", "m13"]
    assert "unloading model m11 (least recently used, idle) to make room for m13" in s.output()
    assert s.answer("m10") == 10 and s.answer("m12") == 12 and s.answer("m13") == 13
    assert s.invoke("m11")[0] == 404

    # Larger than the whole budget: 507, and nothing was unloaded for it.
    big = root / "spare" / "big" / "model"
    big.mkdir(parents=True)
    torch.save({"fc3.weight": torch.zeros(84, 100), "fc3.bias": torch.zeros(100),
                "conv2.weight": torch.zeros(64, 32, 5, 5), "pad": torch.zeros(3 << 20)},
               big / "model.pth")
    status, out = s.load("big", big)
    assert status == 507 and "budget" in out["error"], out
    assert len(s.json("GET", "/models")[1]["models"]) == 3

    # A model still loading cannot be unloaded to make room: with a budget of one model, a
    # second load while the first (a slow custom model_fn) runs is answered 507.
    s.stop()
    slow = root / "spare" / "slow" / "model"
    shutil.copytree(dirs[20], slow)
    (slow / "code").mkdir()
    shutil.copy(CUSTOM, slow / "code" / "handlers.so")
    s = MultiModelServer(root, {"SERVE_MODEL_MEMORY_MB": "3"})
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(s.load, "slow", slow)
        time.sleep(0.4)
        status, out = s.load("m21", dirs[21])
        assert status == 507 and "in use" in out["error"], out
        assert pending.result()[0] == 200
    assert s.answer("slow") == 20
    # Idle now: loading another unloads it.
    assert s.load("m21", dirs[21])[0] == 200 and s.answer("m21") == 21
    assert s.invoke("slow")[0] == 404
    assert s.stop() == 0


def test_loading_does_not_block_other_models(models):
    root, dirs = models
    slow = root / "spare" / "slow2" / "model"
    shutil.copytree(dirs[30], slow)
    (slow / "code").mkdir()
    shutil.copy(CUSTOM, slow / "code" / "handlers.so")
    s = MultiModelServer(root, {"SERVE_MODEL_MEMORY_MB": "64"})
    assert s.load("fast", dirs[31])[0] == 200
    done = []
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(s.load, "slow", slow)  # model_fn sleeps 1 s
        time.sleep(0.1)
        while not pending.done():
            t = time.time()
            assert s.answer("fast") == 31
            done.append(time.time() - t)
        assert pending.result()[0] == 200
    assert len(done) >= 5, done  # answered while the other model loaded
    assert s.answer("slow") == 30
    status, headers, out = s.invoke("slow", headers={"Accept": "text/plain"})  # its own output_fn
    assert status == 200 and out.decode().strip() == "30"
    assert s.stop() == 0


def test_delete_while_requests_in_flight(models):
    root, dirs = models
    s = MultiModelServer(root, {"SERVE_MODEL_MEMORY_MB": "64"})
    assert s.load("busy", dirs[40])[0] == 200
    heavy = npy_bytes(np.random.RandomState(1).randint(0, 256, (256, 3, 32, 32)).astype(np.uint8))
    results = []
    lock = threading.Lock()
    stop = threading.Event()

    def client():
        while not stop.is_set():
            t0 = time.time()
            status, _, out = s.invoke("busy", body=heavy)
            with lock:
                results.append((t0, time.time(), status, out))
            if status == 404:
                return

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    sent = time.time()
    status, out = s.json("DELETE", "/models/busy")
    returned = time.time()
    assert status == 200, out
    stop.set()
    for t in threads:
        t.join(60)
    assert {st for _, _, st, _ in results} <= {200, 404}, [r for r in results if r[2] not in (200, 404)][:2]
    for _, _, st, out in results:
        if st == 200:
            labels = {p["predicted_label"] for p in json.loads(out)["predictions"]}
            assert labels == {"40"}
    # A request that ends with 200 after the DELETE returned held the model while it was
    # unloaded (once out of the table, the model is never handed out again).
    assert any(r[0] < sent and r[1] > returned and r[2] == 200 for r in results), \
        [(round(a - sent, 3), round(b - returned, 3), st) for a, b, st, _ in results]
    log = s.output()
    assert re.search(r"unloading model busy once its \d+ request\(s\) in flight finish", log), log[-2000:]
    assert "model busy freed after its last request" in log
    assert s.invoke("busy")[0] == 404
    assert s.load("busy", dirs[41])[0] == 200 and s.answer("busy") == 41  # the name is free again
    assert s.stop() == 0


def test_hostile_archive_refused_loaded_models_unharmed(models, tmp_path):
    root, dirs = models
    s = MultiModelServer(root, {"SERVE_MODEL_MEMORY_MB": "64"})
    for i in (50, 51):
        assert s.load(f"m{i}", dirs[i])[0] == 200
    evil = tmp_path / "evil" / "model"
    evil.mkdir(parents=True)
    payload = b"owned"
    with tarfile.open(evil / "model.tar.gz", "w:gz") as t:
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = len(payload)
        t.addfile(info, io.BytesIO(payload))
        t.add(dirs[52] / "model.pth", arcname="model.pth")
    status, out = s.load("evil", evil)
    assert status == 500 and "would leave the model directory" in out["error"], out
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "evil" / "escaped.txt").exists()
    assert [m["modelName"] for m in s.json("GET", "/models")[1]["models"]] == ["m50", "m51"]
    assert s.answer("m50") == 50 and s.answer("m51") == 51
    assert s.stop() == 0


def test_default_budget_and_single_model_mode_unchanged(models, tmp_path):
    root, dirs = models
    # No SERVE_MODEL_MEMORY_MB (and a bad one): the budget comes from the cgroup or the machine.
    for env in ({"SERVE_MODEL_MEMORY_MB": None}, {"SERVE_MODEL_MEMORY_MB": "lots"}):
        s = MultiModelServer(root, env)
        m = re.search(r"model memory budget (\d+) MiB \((3/4 of the (cgroup limit|physical memory)[^)]*)", s.output())
        assert m, s.output()
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 20
        assert 0 < int(m.group(1)) < physical
        if env["SERVE_MODEL_MEMORY_MB"]:
            assert 'SERVE_MODEL_MEMORY_MB="lots" is not a number' in s.output()
        assert s.load("m60", dirs[60])[0] == 200 and s.answer("m60") == 60
        assert s.stop() == 0
    # Without SAGEMAKER_MULTI_MODEL the server serves $OPT_ML/model as before: no /models.
    opt_ml = tmp_path / "single"
    shutil.copytree(dirs[61], opt_ml / "model")
    s = MultiModelServer(opt_ml, {"SAGEMAKER_MULTI_MODEL": "false"})
    status, _, out = s.request("POST", "/invocations", body=IMAGE, headers={"Content-Type": "application/x-npy"})
    assert status == 200 and json.loads(out)["predictions"][0]["predicted_label"] == "61"
    assert s.request("GET", "/models")[0] == 404
    assert s.request("POST", "/models", body=json.dumps({"model_name": "a", "url": str(dirs[0])}))[0] == 404
    assert s.stop() == 0
