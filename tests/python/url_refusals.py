"""url_refusals.py - run by test_serve_urls.py INSIDE a network namespace of its own holding
only `lo` (unshare -n), so that nothing can leave the machine even if serve's address check
were broken. Starts image servers on 0.0.0.0 and ::, starts serve allowing http and 127.0.0.1
only, asks it for the URLs that must be refused, and prints one JSON object:
{case: [status, error message, seconds]}.

usage: url_refusals.py SERVE_BIN OPT_ML IMAGE_PNG
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from image_server import ImageServer  # noqa: E402
from test_serve import Server  # noqa: E402


def main():
    serve_bin, opt_ml, image = sys.argv[1], sys.argv[2], sys.argv[3]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    v4 = ImageServer(open(image, "rb").read(), "0.0.0.0")  # also answers 127.0.0.2
    v6 = ImageServer(open(image, "rb").read(), "::")
    os.environ["SERVE_BIN"] = serve_bin
    import test_serve
    test_serve.SERVE = serve_bin
    s = Server(opt_ml, env={"SERVE_URL_ALLOW_HTTP": "1", "SERVE_URL_ALLOW_PRIVATE": "127.0.0.1/32",
                            "SERVE_URL_TIMEOUT_S": "1.5", "SERVE_URL_CONNECT_TIMEOUT_S": "1",
                            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"})
    p, p6 = v4.port, v6.port
    cap = 1 << 20
    urls = {
        "allowed": f"http://127.0.0.1:{p}/img.png",
        "metadata": "http://169.254.169.254/latest/meta-data/",
        "private": "http://10.0.0.1/",
        "ipv6_loopback": f"http://[::1]:{p6}/img.png",
        "loopback_other": f"http://127.0.0.2:{p}/img.png",
        "redirect_private": f"http://127.0.0.1:{p}/redirect?to=http://127.0.0.2:{p}/img.png",
        "redirect_metadata": f"http://127.0.0.1:{p}/redirect?to=http://169.254.169.254/",
        "redirect_loop": f"http://127.0.0.1:{p}/loop",
        "too_big": f"http://127.0.0.1:{p}/big?n={cap + 1}",
        "too_big_stream": f"http://127.0.0.1:{p}/bigstream?n={cap * 3}",
        "stall": f"http://127.0.0.1:{p}/stall",
        "not_found": f"http://127.0.0.1:{p}/missing",
        "mapped_v6": f"http://[::ffff:10.0.0.1]:{p}/",
        "in_instances": None,
    }
    out = {}
    for name, url in urls.items():
        body = {"url": url} if url else {"instances": [{"url": urls["allowed"]}, {"url": urls["metadata"]}]}
        t0 = time.time()
        status, _, reply = s.invoke(json.dumps(body), "application/json")
        data = json.loads(reply)
        out[name] = [status, data.get("error", ""), round(time.time() - t0, 2)]
    out["ping_after"] = [s.request("GET", "/ping")[0], "", 0]
    s.stop()
    v4.close()
    v6.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
