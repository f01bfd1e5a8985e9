"""Small building blocks shared by several methods."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class ConvBNAct(nn.Sequential):
    """Conv2d (or ConvTranspose2d) -> optional BatchNorm -> activation, 'same'-style padding."""

    def __init__(
        self,
        cin: int,
        cout: int,
        k: int = 3,
        stride: int = 1,
        dilation: int = 1,
        bn: bool = True,
        act: str | None = "relu",
        transpose: bool = False,
    ):
        if transpose:  # 4x4 stride-2 deconvolution doubles the size exactly
            layers: list[nn.Module] = [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=not bn)]
        else:
            layers = [nn.Conv2d(cin, cout, k, stride, dilation * (k - 1) // 2, dilation=dilation, bias=not bn)]
        if bn:
            layers.append(nn.BatchNorm2d(cout))
        if act == "relu":
            layers.append(nn.ReLU(inplace=True))
        elif act == "lrelu":
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        elif act == "elu":
            layers.append(nn.ELU(inplace=True))
        elif act is not None:
            raise ValueError(f"unknown activation {act!r}")
        super().__init__(*layers)


class DownsamplingDiscriminator(nn.Module):
    """Stride-2 5x5 convs (BN + ReLU) down to a ``final``x``final`` map, then a fully connected layer.

    GLCIC's global (256 -> 4, six convs) and local (128 -> 4, five convs) discriminators are both this
    shape (Iizuka et al. 2017, Table 2); channels double from ``width`` up to ``8 * width``.
    """

    def __init__(self, in_ch: int, size: int, width: int = 64, out_features: int = 1024, final: int = 4, bn=True):
        super().__init__()
        n_down = max(1, int(round(math.log2(size / final))))
        layers, c = [], in_ch
        for i in range(n_down):
            cout = width * min(2**i, 8)
            layers.append(ConvBNAct(c, cout, 5, 2, bn=bn and i > 0, act="relu"))
            c = cout
        self.features = nn.Sequential(*layers)
        spatial = math.ceil(size / 2**n_down)
        self.fc = nn.Linear(c * spatial * spatial, out_features)
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            raise ValueError(f"discriminator expects {self.size}x{self.size} inputs, got {tuple(x.shape[-2:])}")
        return self.fc(torch.flatten(self.features(x), 1))


def init_gan_weights(module: nn.Module) -> None:
    """DCGAN's initialisation (Radford et al. 2016), also pix2pixHD's ``weights_init``: conv weights
    N(0, 0.02), BatchNorm scales N(1, 0.02), biases and shifts 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
