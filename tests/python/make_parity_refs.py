"""make_parity_refs.py OUTDIR - writes what the C parity test compares against.

For each architecture: OUTDIR/<arch>.weights.pth is torch.save(model.state_dict()) of a
randomly initialised model (an OrderedDict, as Python users save it), and OUTDIR/<arch>.ref.pth
holds the input, the eval-mode logits, then - after torch.manual_seed(TRAIN_SEED) - the
train-mode logits, the cross-entropy loss, the gradient of every parameter and the batch-norm
running statistics after that train-mode pass.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from reference_models import make_model

TRAIN_SEED = 123
# arch, classes, input shape, parameters whose gradients are left out (VGG's 100M-weight
# hidden layers would make the file huge without testing anything new)
CASES = [
    ("resnet18", 10, (2, 3, 64, 64), ()),
    ("resnet50", 7, (2, 3, 64, 64), ()),
    ("vgg11_bn", 5, (2, 3, 32, 32), ("classifier.0.weight", "classifier.3.weight")),
    ("lenet", 10, (4, 3, 32, 32), ()),
    ("vgg11_cifar", 10, (2, 3, 32, 32), ()),
]


def randomise_batch_norm(model):
    """Non-trivial statistics and affine parameters, so that eval mode tests something."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    for arch, classes, shape, skip_grads in CASES:
        torch.manual_seed(0)
        model = make_model(arch, classes)
        randomise_batch_norm(model)
        torch.save(model.state_dict(), os.path.join(outdir, arch + ".weights.pth"))

        x = torch.randn(*shape)
        y = torch.randint(0, classes, (shape[0],))
        ref = {"input": x, "target": y}
        model.eval()
        with torch.no_grad():
            ref["logits_eval"] = model(x)
        model.train()
        torch.manual_seed(TRAIN_SEED)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        ref["logits_train"] = logits.detach()
        ref["loss"] = loss.detach()
        for name, p in model.named_parameters():
            if name not in skip_grads:
                ref["grad." + name] = p.grad
        for name, b in model.named_buffers():
            ref["after_train." + name] = b
        torch.save(ref, os.path.join(outdir, arch + ".ref.pth"))
        print(f"{arch}: wrote weights and reference ({len(ref)} tensors)")


if __name__ == "__main__":
    main(sys.argv[1])
