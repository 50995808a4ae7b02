"""reference_models.py - the Python side of the parity tests: torchvision's networks, the
CIFAR-10 seed's wide LeNet and VGG (as the seed defines them, with the class count as a
parameter) and the evaluation transform a metadata.json describes, as a PyTorch user would
write it."""
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


CIFAR_VGG_CONFIGS = {
    "VGG11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "VGG13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "VGG16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "VGG19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


class CifarVGG(nn.Module):
    """The seed's `VGG(vgg_name)`: conv-bn-relu blocks and max pools, AvgPool2d(1, 1), then one
    Linear(512, N) named classifier on the flattened 1x1x512 (32x32 input)."""

    def __init__(self, vgg_name="VGG11", num_classes=10):
        super().__init__()
        layers, in_channels = [], 3
        for x in CIFAR_VGG_CONFIGS[vgg_name]:
            if x == "M":
                layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
            else:
                layers += [nn.Conv2d(in_channels, x, kernel_size=3, padding=1),
                           nn.BatchNorm2d(x), nn.ReLU(inplace=True)]
                in_channels = x
        layers += [nn.AvgPool2d(kernel_size=1, stride=1)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        out = self.features(x)
        out = out.view(out.size(0), -1)
        return self.classifier(out)


def make_model(arch, num_classes):
    if arch == "lenet":
        return WideLeNet(num_classes)
    if arch.endswith("_cifar"):
        return CifarVGG(arch.split("_")[0].upper(), num_classes)
    return getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
