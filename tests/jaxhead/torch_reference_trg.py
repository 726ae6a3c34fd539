"""Test-only PyTorch module tree with the official TRG parameter names and shapes.

It mirrors the module *structure* of the official `TRG` (TRG-Release, models/trg_model) so
that `load_state_dict(strict=True)` checks an export the way the official model would: same
keys, same order of registration, same shapes, buffers and BatchNorm counters included.
It has no forward pass; numerical agreement is checked against the stored goldens.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)
            )


class Trunk(nn.Module):
    """torchvision ResNet-18 without avgpool/fc (the official `PoseResNet` in global mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        widths = (64, 128, 256, 512)
        in_ch = 64
        for i, w in enumerate(widths, start=1):
            stride = 1 if i == 1 else 2
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(in_ch, w, stride), BasicBlock(w, w, 1)))
            in_ch = w


class PointMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv1d(256, 128, 1)
        self.conv1 = nn.Conv1d(128 + 256, 64, 1)
        self.conv2 = nn.Conv1d(64 + 256, 5, 1)


class Regressor(nn.Module):
    def __init__(self, feat_dim: int):
        super().__init__()
        self.register_buffer("init_face", torch.zeros(1, 1220, 3))
        self.register_buffer("init_head_pose", torch.zeros(1, 9))
        self.fc1 = nn.Linear(feat_dim + 305 * 3 + 9 + 3, 1024)
        self.drop1 = nn.Dropout()
        self.fc2 = nn.Linear(1024, 1024)
        self.drop2 = nn.Dropout()
        self.decshape = nn.Linear(1024, 1220 * 3)
        self.decpose = nn.Linear(1024, 9)


class TRGReference(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.feature_extractor = Trunk()
        layers: list[nn.Module] = []
        in_ch = 512
        for _ in range(3):
            layers += [nn.ConvTranspose2d(in_ch, 256, 4, 2, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU()]
            in_ch = 256
        self.deconv_layers = nn.Sequential(*layers)
        self.laf_extractor = nn.ModuleList([PointMLP() for _ in range(3)])
        self.register_buffer("points_grid", torch.zeros(1, 2, 324))
        self.regressor = nn.ModuleList([Regressor(324 * 5), Regressor(305 * 5), Regressor(305 * 5)])
        self.predict_68_lmk = nn.Sequential(nn.Conv2d(256, 68, 1))
