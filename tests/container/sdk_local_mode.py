#!/usr/bin/env python3
"""tests/container/sdk_local_mode.py - the SageMaker Python SDK v2's local mode against the image
itself, through the SDK's own code: Estimator(image_uri=IMAGE, instance_type="local").fit with
train, validation and test channels, deploy, predict with IdentitySerializer("image/jpeg"),
NumpySerializer and JSONSerializer, and Transformer.transform with SplitType=Line and
AssembleWith=Line. Run by tests/container/smoke.sh in a venv of its own (pip install
"sagemaker<3" podman-compose), with `docker` and `docker-compose` on PATH (podman and
podman-compose where there is no Docker). Exits non-zero with the reason at the first wrong
answer; prints each step it ran.

    sdk_local_mode.py --image IMAGE --data opt_ml_layout/input/data --work DIR --port PORT
"""
import argparse
import glob
import json
import os
import sys
import time

import numpy as np


def step(msg):
    print(f"[sdk] {msg}", flush=True)


def fail(msg):
    print(f"[sdk] FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    work = os.path.abspath(args.work)
    os.makedirs(os.path.join(work, "containers"), exist_ok=True)
    # No telemetry: the SDK would otherwise report each call to an AWS address (nothing may
    # leave the machine during the tests).
    config = os.path.join(work, "sagemaker-config.yaml")
    with open(config, "w") as f:
        f.write("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = config
    os.environ["SAGEMAKER_SUPPRESS_V2_WARNING"] = "1"

    from PIL import Image
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.estimator import Estimator
    from sagemaker.local import LocalSession
    from sagemaker.serializers import IdentitySerializer, JSONSerializer, NumpySerializer

    session = LocalSession()
    session.config = {"local": {"local_code": True, "serving_port": args.port,
                                "container_root": os.path.join(work, "containers")}}
    data = os.path.abspath(args.data)
    classes = sorted(os.listdir(os.path.join(data, "train")))
    role = "arn:aws:iam::111111111111:role/local-mode"  # local mode never assumes it

    t = time.time()
    step(f"Estimator(image_uri={args.image}, instance_type='local').fit(train, validation, test)")
    # The hyperparameters of the sample job (opt_ml_layout/), as a notebook would pass them.
    layout = os.path.join(os.path.dirname(data), "config", "hyperparameters.json")
    hyperparameters = {k: json.loads(v) if v.startswith('"') else v
                       for k, v in json.load(open(layout)).items()}
    est = Estimator(image_uri=args.image, role=role, instance_count=1, instance_type="local",
                    sagemaker_session=session, output_path=f"file://{work}/output",
                    hyperparameters=hyperparameters)
    est.fit({c: f"file://{data}/{c}" for c in ("train", "validation", "test")})
    artifacts = est.model_data
    step(f"fit done in {time.time() - t:.0f} s; model data {artifacts}")
    if not glob.glob(os.path.join(work, "output", "**", "model.tar.gz"), recursive=True):
        fail(f"no model.tar.gz under {work}/output")

    t = time.time()
    step("deploy(instance_type='local')")
    predictor = est.deploy(initial_instance_count=1, instance_type="local",
                           serializer=IdentitySerializer("image/jpeg"), deserializer=JSONDeserializer())
    try:
        step(f"endpoint up in {time.time() - t:.0f} s")
        test_images = [p for c in classes for p in sorted(glob.glob(os.path.join(data, "test", c, "*.jpg")))[:3]]
        if len(test_images) < 2 * len(classes):
            fail("too few test JPEGs")
        right = 0
        for path in test_images:
            with open(path, "rb") as f:
                answer = predictor.predict(f.read())
            pred = answer["predictions"][0]
            if pred["predicted_label"] not in classes or abs(sum(pred["probabilities"]) - 1) > 1e-4:
                fail(f"a malformed answer for {path}: {answer}")
            right += pred["predicted_label"] == os.path.basename(os.path.dirname(path))
        step(f"IdentitySerializer('image/jpeg'): {right}/{len(test_images)} right")
        if right < len(test_images) // 2:
            fail("the model trained through the SDK gets most test images wrong")

        pixels = np.asarray(Image.open(test_images[0]).convert("RGB")).transpose(2, 0, 1)
        predictor.serializer = NumpySerializer()  # a Python list: sent as an int64 array
        a = predictor.predict(pixels[None].tolist())
        predictor.serializer = JSONSerializer()
        b = predictor.predict(pixels[None].tolist())
        pa, pb = a["predictions"][0]["probabilities"], b["predictions"][0]["probabilities"]
        if len(pa) != len(classes) or np.abs(np.array(pa) - np.array(pb)).max() > 1e-6:
            fail(f"NumpySerializer and JSONSerializer disagree: {pa} vs {pb}")
        step(f"NumpySerializer (int64) and JSONSerializer: the same {len(pa)} probabilities")
    finally:
        predictor.delete_endpoint()

    t = time.time()
    step("Transformer.transform(SplitType=Line, AssembleWith=Line, MultiRecord)")
    lines_dir = os.path.join(work, "transform-input")
    os.makedirs(lines_dir, exist_ok=True)
    records = []
    for path in test_images:
        px = np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1)
        records.append(json.dumps(px.tolist()))
    with open(os.path.join(lines_dir, "images.jsonl"), "w") as f:
        f.write("\n".join(records) + "\n")
    transformer = est.transformer(instance_count=1, instance_type="local", strategy="MultiRecord",
                                  assemble_with="Line", accept="application/jsonlines",
                                  output_path=f"file://{work}/transform-output")
    # Local mode runs the job within transform(); logs=True would ask CloudWatch for them.
    transformer.transform(f"file://{lines_dir}", content_type="application/jsonlines", split_type="Line",
                          wait=False)
    transformer.wait(logs=False)
    out_path = os.path.join(work, "transform-output", "images.jsonl.out")
    if not os.path.exists(out_path):
        fail(f"the transform wrote no {out_path}")
    text = open(out_path).read()
    lines = text.split("\n")
    if lines[-1] == "":
        lines = lines[:-1]
    if len(lines) != len(records) or any(not line.strip() for line in lines):
        fail(f"the transform output has {len(lines)} lines (blank ones included) for {len(records)} "
             f"records: {text[:300]!r}")
    labels = [json.loads(line)["predicted_label"] for line in lines]
    step(f"transform done in {time.time() - t:.0f} s: {len(lines)} lines, no blank ones: {labels}")
    step("PASS")


if __name__ == "__main__":
    main()
