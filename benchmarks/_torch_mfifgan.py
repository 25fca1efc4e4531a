"""An independent PyTorch re-implementation of MFIF-GAN's G and D, written from the spec (mfif_gan.md §2–§3)
with the original module *structure* so that its ``state_dict`` keys are the original's.  Used only by
``verify_mfifgan_torch.py`` and ``bench_mfifgan.py``; torch is not a dependency of fusion_tf.
"""

from __future__ import annotations

import torch
from torch import nn


def _bn(c):
    return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)


class _SE(nn.Module):
    def __init__(self, c, r=16):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(c, c // r, bias=False), nn.ReLU(inplace=True),
                                nn.Linear(c // r, c, bias=False), nn.Sigmoid())

    def forward(self, x):
        n, c = x.shape[:2]
        return x * self.fc(self.avgpool(x).view(n, c)).view(n, c, 1, 1)


class _SEBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn1 = _bn(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = _bn(c)
        self.se = _SE(c)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.se(self.bn2(self.conv2(y)))
        return self.relu(y + x)


class _Line(nn.Module):
    def __init__(self):
        super().__init__()
        mods = [nn.Conv2d(1, 64, 7, 1, 3, bias=False), _bn(64), nn.ReLU(inplace=True)]
        for cin in (64, 128):
            mods += [nn.Conv2d(cin, 2 * cin, 3, 2, 1, bias=False), _bn(2 * cin), nn.ReLU(inplace=True)]
        mods += [_SEBlock(256) for _ in range(9)]
        self.line = nn.Sequential(*mods)

    def forward(self, x):
        return self.line(x)


class TorchGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.line1 = nn.Sequential(_Line())
        self.decode = nn.Sequential(
            nn.ConvTranspose2d(512, 256, 4, 2, 1, bias=False), _bn(256), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), _bn(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 1, 7, 1, 3, bias=False), nn.Sigmoid())

    def forward(self, a, b):
        fa = sum(self.line1(p) for p in torch.chunk(a, 3, dim=1)) / 3
        fb = sum(self.line1(p) for p in torch.chunk(b, 3, dim=1)) / 3
        return self.decode(torch.cat([fa, fb], dim=1))


class TorchDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        mods = [nn.Conv2d(7, 64, 4, 2, 2), nn.LeakyReLU(0.01)]
        for cin in (64, 128):
            mods += [nn.Conv2d(cin, 2 * cin, 4, 2, 1), _bn(2 * cin), nn.LeakyReLU(0.01)]
        for _ in range(3):
            mods += [nn.Conv2d(256, 256, 4, 2, 2, bias=False), _bn(256), nn.ReLU(inplace=True)]
        mods += [nn.Conv2d(256, 1, 4, 1, 2), nn.Sigmoid()]
        self.main = nn.Sequential(*mods)

    def forward(self, a, b, focus_map):
        return self.main(torch.cat([a, b, focus_map], dim=1))


def load(module: nn.Module, state: dict) -> nn.Module:
    """Strict load of a NumPy state dict (every key must match the original's module paths)."""
    module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()}, strict=True)
    return module
