"""Test-only PyTorch DAD-3DNet with the official module names (`FlameRegression` layout).

Written from ../shared/specs/dad3dnet.md §3-4, not from the official code: its state_dict has
the 465 keys of `dad3dnet_state_dict.json`, in order, so the interop tests can load exported
weights with strict=True, build Lightning-style checkpoints and trace a TorchScript file the
way the released `.trcd` was made. Its forward pass is checked against the golden outputs.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


class ConvBlock(nn.Module):
    def __init__(
        self, c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0, activate: bool = True
    ):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x) if self.activate else x


class Body(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        mid = c_out // 4
        self.conv1 = ConvBlock(c_in, mid, 1, stride)
        self.conv2 = ConvBlock(mid, mid, 3, 1, 1)
        self.conv3 = ConvBlock(mid, c_out, 1, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.conv2(self.conv1(x)))


class Unit(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = Body(c_in, c_out, stride)
        self.resize = c_in != c_out or stride != 1
        if self.resize:
            self.identity_conv = ConvBlock(c_in, c_out, 1, stride, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.identity_conv(x) if self.resize else x
        return F.relu(self.body(x) + identity)


class InitBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = ConvBlock(3, 64, 7, 2, 3)
        self.pool = nn.MaxPool2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(x))


class Features(nn.Module):
    def __init__(self):
        super().__init__()
        self.init_block = InitBlock()
        c_in = 64
        for s, (depth, c_out) in enumerate(zip((3, 4, 6, 3), (256, 512, 1024, 2048), strict=True), start=1):
            units = OrderedDict()
            for u in range(1, depth + 1):
                units[f"unit{u}"] = Unit(c_in, c_out, 2 if (u == 1 and s > 1) else 1)
                c_in = c_out
            setattr(self, f"stage{s}", nn.Sequential(units))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = Features()


class SeparableUnit(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.depthwise = nn.Conv2d(c, c, 1, groups=c, bias=False)
        self.pointwise = nn.Conv2d(c, c, 1, bias=False)
        self.bn = nn.BatchNorm2d(c, eps=4e-5, momentum=0.9997)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.pointwise(self.depthwise(x))))


class P7Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 2, 1)
        self.bn = nn.BatchNorm2d(c, eps=4e-5, momentum=0.9997)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


NODES = ("p3_td", "p4_td", "p5_td", "p6_td", "p4_out", "p5_out", "p6_out", "p7_out")


class BiFPNBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.w1 = nn.Parameter(torch.ones(2, 4))
        self.w2 = nn.Parameter(torch.ones(3, 4))
        for name in NODES:
            setattr(self, name, SeparableUnit(c))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        p3, p4, p5, p6, p7 = feats
        a = F.relu(self.w1)
        a = a / a.sum(0) + 1e-4
        b = F.relu(self.w2)
        b = b / b.sum(0) + 1e-4

        def up(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, size=ref.shape[2:])

        t6 = self.p6_td(a[0, 0] * p6 + a[1, 0] * up(p7, p6))
        t5 = self.p5_td(a[0, 1] * p5 + a[1, 1] * up(t6, p5))
        t4 = self.p4_td(a[0, 2] * p4 + a[1, 2] * up(t5, p4))
        o3 = self.p3_td(a[0, 3] * p3 + a[1, 3] * up(t4, p3))
        o4 = self.p4_out(b[0, 0] * p4 + b[1, 0] * t4 + b[2, 0] * up(o3, p4))
        o5 = self.p5_out(b[0, 1] * p5 + b[1, 1] * t5 + b[2, 1] * up(o4, p5))
        o6 = self.p6_out(b[0, 2] * p6 + b[1, 2] * t6 + b[2, 2] * up(o5, p6))
        o7 = self.p7_out(b[0, 3] * p7 + b[1, 3] * p7 + b[2, 3] * up(o6, p7))
        return [o3, o4, o5, o6, o7]


class BiFPN(nn.Module):
    def __init__(self, c: int = 256):
        super().__init__()
        self.p3 = nn.Conv2d(256, c, 1)
        self.p4 = nn.Conv2d(512, c, 1)
        self.p5 = nn.Conv2d(1024, c, 1)
        self.p6 = nn.Conv2d(1024, c, 3, 2, 1)
        self.p7 = P7Block(c)
        self.bifpn = nn.Sequential(BiFPNBlock(c), BiFPNBlock(c))

    def forward(self, c2: torch.Tensor, c3: torch.Tensor, c4: torch.Tensor) -> list[torch.Tensor]:
        p6 = self.p6(c4)
        feats = [self.p3(c2), self.p4(c3), self.p5(c4), p6, self.p7(p6)]
        for block in self.bifpn:
            feats = block(feats)
        return feats


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.heatmap = nn.Conv2d(256, 68, 3, padding=1)


class Fusion(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1x1 = nn.Conv2d(1024 + 68 + 256, 1024, 1)


class MLPHead(nn.Module):
    def __init__(self, n_out: int):
        super().__init__()
        self.logit_image = nn.Sequential(
            nn.Linear(2048, 512), nn.ReLU(), nn.Dropout(0.3), nn.Linear(512, n_out)
        )


class ReferenceDAD3DNet(nn.Module):
    """Returns (heatmap logits NCHW, params_3dmm (B, 413), landmarks (B, 68, 2))."""

    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.bifpn = BiFPN()
        self.head = Head()
        self.fusion_layer = Fusion()
        self.shape = MLPHead(403)
        self.pose = MLPHead(10)
        self.landmarks = MLPHead(136)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = self.encoder.model
        s1 = m.stage1(m.init_block(x))
        s2 = m.stage2(s1)
        s3 = m.stage3(s2)
        p3, _, p5, _, _ = self.bifpn(s1, s2, s3)
        logits = self.head.heatmap(p3)
        heat = torch.sigmoid(F.interpolate(logits, size=s3.shape[2:], mode="bilinear", align_corners=True))
        fused = self.fusion_layer.conv1x1(torch.cat([s3, heat, p5], 1)) * s3
        pooled = m.stage4(fused).mean((2, 3))
        shape = torch.tanh(self.shape.logit_image(pooled)) * 3.0
        pose = self.pose.logit_image(pooled)
        lmk = F.relu(self.landmarks.logit_image(pooled).reshape(-1, 68, 2))
        return logits, torch.cat([shape, pose], 1), lmk
