"""test_serve_urls.py - images named by URL ({"url": ...}, also inside "instances"), as two
seeds' inference.py accept them: fetched from an HTTP server the test starts on 127.0.0.1
(explicitly allowed), and refused - loopback, private, link-local/metadata addresses, redirects
to them, bodies over the cap, stalling servers - inside a network namespace the test creates
with only `lo`, so that nothing can leave the machine even if the check were broken.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
from image_server import ImageServer  # noqa: E402
from reference_models import WideLeNet  # noqa: E402
from test_serve import SERVE, Server  # noqa: E402
from test_serve_compat import encoded, smooth_image  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("urls")
    (root / "model").mkdir()
    torch.manual_seed(7)
    torch.save(WideLeNet(4).state_dict(), root / "model/model.pth")
    png = root / "img.png"
    png.write_bytes(encoded(smooth_image(48, 40, 1), "PNG"))
    return root, png


def test_url_fetched_like_the_image_itself(model):
    root, png = model
    img = ImageServer(png.read_bytes())
    s = Server(root, env={"SERVE_URL_ALLOW_HTTP": "1", "SERVE_URL_ALLOW_PRIVATE": "127.0.0.1"})
    try:
        status, _, direct = s.invoke(png.read_bytes(), "image/png")
        assert status == 200
        want = json.loads(direct)["predictions"][0]["probabilities"]
        url = f"http://127.0.0.1:{img.port}/img.png"
        status, _, out = s.invoke(json.dumps({"url": url}), "application/json")  # the seeds' request
        assert status == 200, out
        np.testing.assert_allclose(json.loads(out)["predictions"][0]["probabilities"], want, atol=1e-6)
        status, _, out = s.invoke(json.dumps({"instances": [{"url": url}, {"url": url}]}), "application/json")
        assert status == 200 and len(json.loads(out)["predictions"]) == 2
        status, _, out = s.invoke(json.dumps({"url": url}) + "\n" + json.dumps({"url": url}),
                                  "application/jsonlines", accept="application/jsonlines")
        assert status == 200 and len(out.split(b"\n")) == 2
        for body, code, text in [
            ({"url": f"http://127.0.0.1:{img.port}/missing"}, 502, "answered HTTP 404"),
            ({"url": "ftp://127.0.0.1/x.png"}, 400, "http or https"),
            ({"url": "http//bad"}, 400, "http or https"),
            ({"url": 42}, 400, "must be a string"),
            ({"instances": [{"url": url}] * 17}, 400, "at most 16"),
        ]:
            status, headers, out = s.invoke(json.dumps(body), "application/json")
            assert status == code and headers["Content-Type"] == "application/json", (body, out)
            assert text in json.loads(out)["error"], out
    finally:
        s.stop()
        img.close()
    # By default only https is fetched, and fetching can be turned off.
    s = Server(root, env={"SERVE_URL_ALLOW_PRIVATE": "127.0.0.1"})
    try:
        status, _, out = s.invoke(json.dumps({"url": url}), "application/json")
        assert status == 400 and "SERVE_URL_ALLOW_HTTP" in json.loads(out)["error"]
    finally:
        s.stop()
    s = Server(root, env={"SERVE_URL_FETCH": "0"})
    try:
        status, _, out = s.invoke(json.dumps({"url": "https://example.com/x.png"}), "application/json")
        assert status == 400 and "turned off" in json.loads(out)["error"]
    finally:
        s.stop()


def namespace_unavailable():
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "unshare or ip (iproute2) is not installed"
    r = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    return None if r.returncode == 0 else "cannot create a network namespace here: " + r.stderr.strip()


def test_refusals_inside_a_private_network_namespace(model):
    why = namespace_unavailable()
    if why:
        pytest.skip(why)
    root, png = model
    r = subprocess.run(["unshare", "-n", sys.executable, os.path.join(HERE, "url_refusals.py"),
                        os.path.abspath(SERVE), str(root), str(png)],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    print(json.dumps(got, indent=1))

    def check(name, status, *texts):
        st, msg, _ = got[name]
        assert st == status, (name, got[name])
        for t in texts:
            assert t in msg, (name, msg)

    assert got["allowed"][0] == 200, got["allowed"]
    check("metadata", 400, "169.254.169.254, which is link-local", "SERVE_URL_ALLOW_PRIVATE")
    check("private", 400, "10.0.0.1, which is private")
    check("ipv6_loopback", 400, "::1, which is loopback")
    check("loopback_other", 400, "127.0.0.2, which is loopback")
    check("redirect_private", 400, "127.0.0.2, which is loopback")
    check("redirect_metadata", 400, "169.254.169.254, which is link-local")
    check("mapped_v6", 400, "private")
    check("redirect_loop", 502, "more than 3")
    check("too_big", 502, "larger than the 1 MB")
    check("too_big_stream", 502, "larger than the 1 MB")
    check("stall", 504, "did not arrive")
    assert got["stall"][2] < 5, got["stall"]
    check("not_found", 502, "HTTP 404")
    check("in_instances", 400, "169.254.169.254")
    assert got["ping_after"][0] == 200
