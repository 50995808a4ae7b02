"""torchserve_handler.py - the Python side of bench_serve.py and bench_resnet50.py: the seeds'
inference.py handlers (model_fn / input_fn / predict_fn / output_fn, PIL + torchvision
transforms) running on TorchServe, the model server SageMaker's PyTorch inference toolkit uses.
The architecture and preprocessing come from the model's metadata.json, as ours reads them.
"""
import io
import json
import os

import torch
from PIL import Image

from reference_models import make_model, metadata_eval_transform

_model = None
_meta = None


def model_fn(model_dir):
    global _meta
    with open(os.path.join(model_dir, "metadata.json")) as f:
        _meta = json.load(f)
    model = make_model(_meta["arch"], _meta["num_classes"])
    model.load_state_dict(torch.load(os.path.join(model_dir, "model.pth"), map_location="cpu"))
    model.eval()
    return model


def input_fn(body, content_type):
    tf = metadata_eval_transform(_meta)
    return tf(Image.open(io.BytesIO(body)).convert("RGB")).unsqueeze(0)


def predict_fn(data, model):
    with torch.no_grad():
        return torch.softmax(model(data), 1)


def output_fn(prediction, accept):
    probs = prediction[0].tolist()
    best = max(range(len(probs)), key=probs.__getitem__)
    return json.dumps({"probabilities": probs, "predicted_label": _meta["class_names"][best]})


def handle(data, context):
    global _model
    if _model is None:
        _model = model_fn(context.system_properties.get("model_dir"))
    if data is None:
        return None
    out = []
    for row in data:
        body = row.get("data") or row.get("body")
        out.append(output_fn(predict_fn(input_fn(bytes(body), "image/png"), _model), "application/json"))
    return out
