"""reference.py - the seeds' own PyTorch training scripts, rewritten for the parity harness.

  lenet_sgd        the CIFAR-10 seed (cifar10-lenet-vgg-lambda): its wide LeNet, ToTensor +
                   Normalize((0.5,)*3, (0.5,)*3), no augmentation, SGD with momentum,
                   CrossEntropyLoss, shuffled batches; test accuracy after the last epoch.
  vgg_adam         the same seed's deployed model: its VGG('VGG11') with Adam (the seed's
                   optimizer), the same transform and loop.
  resnet18_frozen  the dog-breeds seeds: torchvision's resnet18 loaded from the `pretrained`
                   weights file, every parameter frozen, a new Linear head trained with Adam;
                   Resize(size * 8/7) + CenterCrop(size) + ImageNet Normalize.
Both read the same class folders `train` reads (torchvision's ImageFolder).
"""
import os
import sys

import torch
import torch.nn as nn
import torchvision
from torchvision import transforms

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
from reference_models import CifarVGG, WideLeNet  # noqa: E402


def _accuracy(model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    return correct / total


def _loaders(dirs, tf, batch_size, seed):
    train = torchvision.datasets.ImageFolder(dirs["train"], tf)
    test = torchvision.datasets.ImageFolder(dirs["test"], tf)
    g = torch.Generator().manual_seed(seed)
    return (torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True, generator=g),
            torch.utils.data.DataLoader(test, batch_size=256), len(train.classes))


def _fit(model, opt, train, epochs):
    """The seeds' loop: shuffled batches, zero_grad, CrossEntropyLoss, backward, step."""
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        for x, y in train:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()


def lenet_sgd(dirs, hp, seed):
    torch.manual_seed(seed)
    tf = transforms.Compose([transforms.ToTensor(),
                             transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    train, test, classes = _loaders(dirs, tf, hp["batch_size"], seed)
    model = WideLeNet(classes)
    opt = torch.optim.SGD(model.parameters(), lr=hp["lr"], momentum=hp["momentum"])
    _fit(model, opt, train, hp["epochs"])
    return _accuracy(model, test)


def vgg_adam(dirs, hp, seed):
    torch.manual_seed(seed)
    tf = transforms.Compose([transforms.ToTensor(),
                             transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    train, test, classes = _loaders(dirs, tf, hp["batch_size"], seed)
    model = CifarVGG("VGG11", classes)
    opt = torch.optim.Adam(model.parameters(), lr=hp["lr"])
    _fit(model, opt, train, hp["epochs"])
    return _accuracy(model, test)


def resnet18_frozen(dirs, hp, seed, pretrained):
    torch.manual_seed(seed)
    size = hp["image_size"]
    tf = transforms.Compose([transforms.Resize(round(size * 8 / 7)), transforms.CenterCrop(size),
                             transforms.ToTensor(),
                             transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    train, test, classes = _loaders(dirs, tf, hp["batch_size"], seed)
    model = torchvision.models.resnet18(weights=None)
    model.load_state_dict(torch.load(pretrained, weights_only=True))
    for p in model.parameters():
        p.requires_grad = False
    model.fc = nn.Linear(model.fc.in_features, classes)
    opt = torch.optim.Adam(model.fc.parameters(), lr=hp["lr"])
    _fit(model, opt, train, hp["epochs"])
    return _accuracy(model, test)


def save_pretrained(path, seed=1234):
    """The `pretrained` channel's weights: torchvision's resnet18 as initialised with a fixed
    seed (nothing is downloaded), its batch-norm statistics calibrated on a few batches of
    generated images (as pretraining would leave them), saved as a state_dict the way users
    save theirs."""
    import datasets
    import numpy as np
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(weights=None)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # a cumulative average over the calibration batches
    tf = transforms.Compose([transforms.ToTensor(),
                             transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    rng = np.random.default_rng(seed)
    model.train()
    with torch.no_grad():
        for _ in range(4):
            x = torch.stack([tf(datasets.coat(int(rng.integers(0, 5)), rng)) for _ in range(32)])
            model(x)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
    torch.save(model.state_dict(), path)
