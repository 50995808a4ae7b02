#!/usr/bin/env python3
"""tests/notebooks/check_notebooks.py - checks of the notebooks that need no execution:

    check_notebooks.py --readme README.md --local notebooks/local_train_serve.ipynb \
                       --sagemaker notebooks/sagemaker_byoc.ipynb

Every notebook: valid for nbformat (nbformat.validate), stored without outputs, and every code
cell is Python once IPython has turned its `!shell` lines into calls (so a typo fails here, not
in a user's AWS account). The SageMaker notebook, which CI cannot run (it needs AWS), also: its
metric definitions are exactly the README's <!-- metric-definitions --> block; it imports only
from the SDK's public modules and touches no _private name; and it has every step the README
promises (ECR push, Estimator.fit, HyperparameterTuner, deploy, JPEG/PNG/NumPy predictions,
batch transform, clean-up). Exits non-zero naming each problem.
"""
import argparse
import ast
import json
import re
import sys

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

PUBLIC_MODULES = {"sagemaker", "sagemaker.deserializers", "sagemaker.estimator", "sagemaker.inputs",
                  "sagemaker.predictor", "sagemaker.s3", "sagemaker.serializers", "sagemaker.tuner"}
STEPS = {
    "image push to ECR": r"docker push ",
    "Estimator(image_uri=...)": r"\bEstimator\(\s*image_uri=",
    "fit with train/validation/test": r"for channel in \(\"train\", \"validation\", \"test\"\)",
    "HyperparameterTuner on lr and batch_size": r"HyperparameterTuner\((?s:.*)\"lr\"(?s:.*)\"batch_size\"",
    "deploy": r"\.deploy\(",
    "JPEG payload": r"content_type=\"image/jpeg\"",
    "PNG payload": r"content_type=\"image/png\"",
    "NumPy payload": r"NumpySerializer\(",
    "batch transform": r"\.transformer\((?s:.*)\.transform\(",
    "clean-up": r"\.delete_endpoint\(\)",
}


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def check_common(path, problems):
    nb = nbformat.read(path, as_version=4)
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as e:
        problems.append(f"{path}: not a valid notebook: {e.message}")
    transform = TransformerManager().transform_cell
    for cell in code_cells(nb):
        if cell.get("outputs") or cell.get("execution_count") is not None:
            problems.append(f"{path}: cell {cell.get('id')} is stored with outputs; clear them")
        try:
            compile(transform(cell.source), f"{path}:{cell.get('id')}", "exec")
        except SyntaxError as e:
            problems.append(f"{path}: cell {cell.get('id')}: {e}")
    return nb


def readme_metric_definitions(readme):
    text = open(readme).read()
    m = re.search(r"<!-- metric-definitions -->\s*```json\n(.*?)```", text, re.S)
    if not m:
        sys.exit(f"{readme} has no <!-- metric-definitions --> JSON block")
    return json.loads(m.group(1))


def notebook_metric_definitions(trees):
    for node in (n for tree in trees for n in ast.walk(tree)):
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "metric_definitions" for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def check_sagemaker(path, nb, readme, problems):
    transform = TransformerManager().transform_cell
    sources = [transform(c.source) for c in code_cells(nb)]
    source = "\n".join(sources)
    trees = []
    for cell_source in sources:
        try:
            trees.append(ast.parse(cell_source))
        except SyntaxError:
            pass  # check_common named it
    ours = notebook_metric_definitions(trees)
    if ours != readme_metric_definitions(readme):
        problems.append(f"{path}: metric_definitions differ from {readme}'s block: {ours}")
    for node in (n for tree in trees for n in ast.walk(tree)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sagemaker":
            if node.module not in PUBLIC_MODULES:
                problems.append(f"{path}: imports from {node.module}, not one of {sorted(PUBLIC_MODULES)}")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not (
                node.attr.startswith("__") and node.attr.endswith("__")):
            problems.append(f"{path}: uses the private name .{node.attr} (line {node.lineno})")
    for step, pattern in STEPS.items():
        if not re.search(pattern, source):
            problems.append(f"{path}: no {step} (looked for /{pattern}/)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", required=True)
    ap.add_argument("--local", required=True)
    ap.add_argument("--sagemaker", required=True)
    args = ap.parse_args()
    problems = []
    check_common(args.local, problems)
    check_sagemaker(args.sagemaker, check_common(args.sagemaker, problems), args.readme, problems)
    for p in problems:
        print(f"check_notebooks.py: FAIL: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"check_notebooks.py: {args.local} and {args.sagemaker} are valid, clean and compile; "
          "the SageMaker notebook uses the README's metric definitions and public SDK modules only")


if __name__ == "__main__":
    main()
