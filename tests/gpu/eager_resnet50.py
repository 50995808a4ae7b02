"""eager_resnet50.py - PyTorch eager's ResNet-50 training rate on this GPU, the figure the GPU
check puts beside ours: bf16 autocast, channels-last, SGD with momentum, batches copied from
pinned memory with non-blocking copies and normalised on the GPU.

  compute: uint8 batches already decoded (the GPU's own limit with this loop)
  pipeline: torchvision ImageFolder + DataLoader (RandomResizedCrop, flip; workers = cores,
            pin_memory) over the generated JPEGs, when torchvision is installed

usage: python eager_resnet50.py --data DIR/train --classes K --batch B [--steps 30]
Prints one JSON line.
"""
import argparse
import json
import os
import time

import torch
from torch import nn


class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + idt)


def resnet50(classes):
    """torchvision's resnet50 layout, written out so that torchvision is not needed."""
    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
              nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            layers.append(Bottleneck(cin, width, stride if i == 0 else 1))
            cin = width * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--classes", type=int, required=True)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--device", default="cuda", help="cpu: only to try the script")
    a = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    dev = torch.device(a.device)
    amp_dev = dev.type
    model = resnet50(a.classes).to(dev, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    lossf = nn.CrossEntropyLoss()
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1) * 255

    def step(x_u8, y):
        x = x_u8.to(dev, non_blocking=True).float().sub_(mean).div_(std)
        x = x.contiguous(memory_format=torch.channels_last)
        y = y.to(dev, non_blocking=True)
        with torch.autocast(amp_dev, dtype=torch.bfloat16):
            loss = lossf(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    gpu = dev.type == "cuda"
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    out = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0) if gpu else None,
           "batch": a.batch}
    xs = torch.randint(0, 256, (a.batch, 3, a.size, a.size), dtype=torch.uint8)
    ys = torch.randint(0, a.classes, (a.batch,))
    if gpu:
        xs, ys = xs.pin_memory(), ys.pin_memory()
    steps = a.steps if gpu else 2
    for _ in range(10 if gpu else 1):
        step(xs, ys)
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        step(xs, ys)
    sync()
    out["compute_images_per_s"] = round(steps * a.batch / (time.perf_counter() - t), 1)

    try:
        from torchvision import datasets, transforms
    except ImportError:
        out["pipeline_images_per_s"] = None
        out["pipeline_note"] = "torchvision not installed"
        print(json.dumps(out))
        return
    tf = transforms.Compose([transforms.RandomResizedCrop(a.size), transforms.RandomHorizontalFlip(),
                             transforms.PILToTensor()])
    ds = datasets.ImageFolder(a.data, tf)
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, drop_last=True,
                                     num_workers=os.cpu_count(), pin_memory=gpu,
                                     persistent_workers=True, prefetch_factor=4)
    for epoch in range(2):  # the first warms the workers up
        n, t = 0, time.perf_counter()
        for x, y in dl:
            step(x, y)
            n += x.shape[0]
        sync()
        rate = n / (time.perf_counter() - t)
    out["pipeline_images_per_s"] = round(rate, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
