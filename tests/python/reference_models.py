"""reference_models.py - the Python side of the parity tests: torchvision's networks, the
CIFAR-10 seed's wide LeNet (as the seed defines it, with the class count as a parameter) and
the evaluation transform a metadata.json describes, as a PyTorch user would write it."""
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision import transforms
from torchvision.transforms import functional as TF


def metadata_eval_transform(meta):
    """metadata.json's resize_mode as torchvision transforms (README.md "Resizing"):
    crop = Resize(resize_size) + CenterCrop(image_size); squash = Resize((s, s)); auto = crop,
    except that an image already image_size on its shorter side is only centre-cropped."""
    size, mode = meta["image_size"], meta.get("resize_mode", "crop")
    if mode == "squash":
        resize = transforms.Resize((size, size))
    else:
        def resize(img):
            if mode == "auto" and min(img.size) == size:
                return img
            return TF.resize(img, meta["resize_size"])
    return transforms.Compose([resize, transforms.CenterCrop(size), transforms.ToTensor(),
                               transforms.Normalize(meta["mean"], meta["std"])])


class WideLeNet(nn.Module):
    """The seed's `Net`: conv 3->32 5x5, pool, conv 32->64 5x5, pool, fc 1600->120->84->N."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(32, 64, 5)
        self.fc1 = nn.Linear(64 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(-1, 64 * 5 * 5)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def make_model(arch, num_classes):
    if arch == "lenet":
        return WideLeNet(num_classes)
    return getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
