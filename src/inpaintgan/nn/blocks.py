"""Small building blocks shared by several methods."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


class DilatedConv2d(nn.Conv2d):
    """A dilated 3x3 'same' convolution that skips the taps that can only read padding: when the
    dilation is at least the input's height and width, every off-centre tap of every output pixel
    falls outside the image (zero padding), so the result is the 1x1 convolution with the centre
    weights: equal up to float summation order, gradients included (the off-centre weights get zero
    gradient either way). GLCIC's dilations 8 and 16 on the 8x8 maps of 32-px training crops are such
    layers. The shortcut is skipped while tracing or exporting, where a shape-dependent branch would be
    frozen into the graph."""

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        d = self.dilation[0]
        if (
            self.kernel_size == (3, 3) and self.dilation[0] == self.dilation[1] and self.stride == (1, 1)
            and self.padding == (d, d) and self.groups == 1 and d >= h and d >= w
            and not torch.jit.is_tracing() and not torch.jit.is_scripting() and not torch.onnx.is_in_onnx_export()
            and not torch.compiler.is_compiling()
        ):  # fmt: skip
            return nn.functional.conv2d(x, self.weight[:, :, 1:2, 1:2], self.bias)
        return super().forward(x)


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
            conv = DilatedConv2d if dilation > 1 and k == 3 and stride == 1 else nn.Conv2d
            layers = [conv(cin, cout, k, stride, dilation * (k - 1) // 2, dilation=dilation, bias=not bn)]
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


class StridedConvDiscriminator(nn.Module):
    """The strided-convolution discriminator family that GLCIC, the partial-convolution GAN and
    DeepFill configure: ``len(filters)`` ``kernel`` x ``kernel`` stride-2 convolutions ('same' padding
    ``kernel // 2``, so each halves the side, rounding up), each followed by BatchNorm (on layers
    ``i >= bn_from``; ``None``: none) and an activation (``relu`` | ``lrelu``, slope 0.2); then the
    features are flattened and, with ``out_features``, go through one fully connected layer ``fc``.
    ``size`` is the fixed input side (int) or ``(height, width)``, checked in ``forward``, which
    returns (N, ``self.out_features``).

    Configurations: :class:`DownsamplingDiscriminator` (GLCIC's global and local ones: ReLU, BN from
    the second layer, 1024 outputs), ``methods.pconv.RegionDiscriminator`` (the three regions of ``TwoRegionDiscriminator``:
    LeakyReLU, BN from the second layer, no ``fc``: the caller fuses them) and
    ``methods.deepfill.WGANCritic`` (LeakyReLU, no BN, one output).

    State-dict names stay those of the model files each configuration has written: the layers live in
    attribute ``stack`` ("features", or "net" for pconv's); ``grouped=True`` wraps each conv / BN /
    activation in a :class:`ConvBNAct` (``features.<i>.0.weight``), ``grouped=False`` lists them flat
    (``features.<2i>.weight``, DeepFill's critics).
    """

    def __init__(
        self,
        in_ch: int,
        filters: Sequence[int],
        size: int | tuple[int, int],
        *,
        kernel: int = 5,
        act: str = "lrelu",
        bn_from: int | None = 1,
        out_features: int | None = None,
        grouped: bool = True,
        stack: str = "features",
        what: str = "discriminator",
    ):
        super().__init__()
        self.height, self.width = (size, size) if isinstance(size, int) else tuple(size)
        self.size = self.height if self.height == self.width else (self.height, self.width)
        self.what, self.stack_name = what, stack
        layers: list[nn.Module] = []
        c, oh, ow = in_ch, self.height, self.width
        for i, cout in enumerate(filters):
            bn = bn_from is not None and i >= bn_from
            if grouped:
                layers.append(ConvBNAct(c, cout, kernel, 2, bn=bn, act=act))
            else:
                layers.append(nn.Conv2d(c, cout, kernel, 2, kernel // 2, bias=not bn))
                layers += [nn.BatchNorm2d(cout)] if bn else []
                layers.append(nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2))
            c, oh, ow = cout, math.ceil(oh / 2), math.ceil(ow / 2)
        self.add_module(stack, nn.Sequential(*layers))
        n_feat = c * oh * ow
        self.fc = nn.Linear(n_feat, out_features) if out_features is not None else None
        self.out_features = n_feat if out_features is None else out_features

    def forward(self, x: Tensor) -> Tensor:  # (N, C, height, width) -> (N, out_features)
        if x.shape[-2] != self.height or x.shape[-1] != self.width:
            raise ValueError(f"{self.what} expects {self.height}x{self.width} inputs, got {tuple(x.shape[-2:])}")
        y = torch.flatten(getattr(self, self.stack_name)(x), 1)
        return self.fc(y) if self.fc is not None else y


class DownsamplingDiscriminator(StridedConvDiscriminator):
    """GLCIC's configuration: stride-2 5x5 convs (BN + ReLU) down to a ``final``x``final`` map, then a
    fully connected layer. The global (256 -> 4, six convs) and local (128 -> 4, five convs)
    discriminators are both this shape (Iizuka et al. 2017, Table 2); channels double from ``width``
    up to ``8 * width``."""

    def __init__(self, in_ch: int, size: int, width: int = 64, out_features: int = 1024, final: int = 4, bn=True):
        n_down = max(1, int(round(math.log2(size / final))))
        filters = [width * min(2**i, 8) for i in range(n_down)]
        super().__init__(in_ch, filters, size, act="relu", bn_from=1 if bn else None, out_features=out_features)


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
