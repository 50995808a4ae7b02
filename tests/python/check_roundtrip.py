"""check_roundtrip.py DIR - the Python half of the round trip (see test_roundtrip_save.c).

Loads each <arch>.model.pth that our C code saved with plain torch.load (weights_only, the
default) into torchvision's model with strict key checking, and requires the same eval-mode
logits as C computed, within a normalised error of 1e-6. Exits non-zero on any mismatch."""
import sys

import torch

from reference_models import make_model

CASES = [("resnet18", 3), ("lenet", 6), ("vgg11_cifar", 4)]


def main(d):
    failures = 0
    for arch, classes in CASES:
        sd = torch.load(f"{d}/{arch}.model.pth", weights_only=True)
        expected = torch.load(f"{d}/{arch}.expected.pth", weights_only=True)
        model = make_model(arch, classes)
        model.load_state_dict(sd, strict=True)
        model.eval()
        with torch.no_grad():
            logits = model(expected["input"])
        err = ((logits - expected["logits"]).norm() / expected["logits"].norm()).item()
        ok = err <= 1e-6
        tracked = [k for k in sd if k.endswith("num_batches_tracked")]
        if tracked and any(int(sd[k]) != 1 for k in tracked):
            print(f"FAIL {arch}: num_batches_tracked should be 1 after one training step")
            ok = False
        print(f"{'ok  ' if ok else 'FAIL'} {arch}: {len(sd)} tensors loaded strictly, "
              f"logits normalised error {err:.3g}")
        failures += not ok
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main(sys.argv[1])
