"""Partial-convolution U-Net GAN, as in the project report "Image Inpainting using GANs with Partial
Convolutions": the partial-convolution U-Net of Liu et al. 2018 ("Image Inpainting for Irregular Holes
Using Partial Convolutions", ECCV 2018, Sec. 3.1-3.3) trained adversarially against global + local
discriminators in GLCIC's three phases (Iizuka et al. 2017, Sec. 3.4).

- Generator (the report's table, after Liu et al. Sec. 3.2): U-Net of
  :class:`~inpaintgan.nn.PartialConv2d`. Encoder: kernels 5/5/3/3/3, stride 2, 64/128/256/256/256
  filters, ReLU, BatchNorm on every layer but the first (as in Liu et al.). Decoder: nearest x2
  upsampling, concatenation with the skip features *and their masks* (multi-channel masks), a 3x3
  stride-1 partial convolution, BatchNorm, LeakyReLU(0.2); at full resolution Table 1's ending, a 3x3
  partial convolution (to image channels) + LeakyReLU, then a 1x1 partial convolution + sigmoid
  (``head="report"``; ``head="fused3x3"``: one 3x3 layer into the sigmoid, the layout before issue 16). ``width_mult`` multiplies the filter counts; ``depth`` = number of
  stride-2 layers (5 at 128 px; the image side must be a multiple of 2**depth).
- Discriminators: a global one on the whole image and two local ones on the left third and the right
  two thirds of the width (the report's two-hole mask puts one hole in each, see
  :func:`inpaintgan.masks.two_rect`); 5x5 stride-2 convolutions with 32/64/64/128(/128) filters, ReLU,
  each ending in its own fully connected layer with one logit, the three BCE terms averaged
  (``d_head="report"``, Table 2; ``d_head="fused"``: LeakyReLU stacks whose flattened features one
  fully connected unit combines into a single logit).
- Loss (``loss="report"``): L_MSE = (sum of squared errors over the hole + 1/6 of the sum over valid
  pixels) / the number of elements (``loss_norm="elements"``; ``"region"``: each sum by its own
  count, hole MSE + 1/6 valid MSE); BCE discriminator loss; generator loss L_MSE - (1/2000) log D(G(x)) (non-saturating BCE, weight
  ``adv_weight``; 0 = the report's "MSE only" ablation). ``loss="liu"``: Liu et al.'s loss (Sec. 3.3,
  "Loss Functions"): 1 L_valid + 6 L_hole + 0.05 L_perceptual + 120 (L_style_out + L_style_comp) + 0.1 L_tv,
  L1 terms, VGG16 pool1-pool3 features (defined here, no torchvision; ImageNet weights from a local
  torchvision-layout file), plus the same adversarial term.
- Schedule: generator alone on the reconstruction loss, discriminators alone, then both (the report:
  25k / 6k / 94k steps at batch 16).
- Ablations: ``local_discriminators=False`` (global discriminator only) and ``partial=False`` (the
  same U-Net with plain convolutions; the hole is filled with ``fill_value`` -- 127.5/255 as in Liu et
  al.'s Fig. 2(e) baseline -- and the hole mask is an extra input channel).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaintgan.config import renamed_fields
from inpaintgan.losses import hole_ssim_loss, masked_mse
from inpaintgan.methods.base import Phase
from inpaintgan.methods.completion_gan import CompletionGAN, completion_phases, residual_output, zero_layer_
from inpaintgan.nn.blocks import StridedConvDiscriminator
from inpaintgan.nn.partial_conv import PartialConv2d
from inpaintgan.postprocess import fill_hole
from inpaintgan.registry import register_method

#: the report's encoder (Liu et al.'s at 128 px, narrowed): filters and kernel sizes per stride-2 layer
ENCODER_FILTERS = (64, 128, 256, 256, 256)
ENCODER_KERNELS = (5, 5, 3, 3, 3)
#: the report's discriminator filters (5x5, stride 2); extended with 128 for deeper stacks
DISCRIMINATOR_FILTERS = (32, 64, 64, 128, 128)
LOSSES = ("report", "liu")
PREFILLS = ("none", "telea")
#: the U-Net's last layers. report: Table 1's 3x3 PConv + LeakyReLU, then 1x1 PConv + sigmoid;
#: fused3x3: one 3x3 layer straight into the sigmoid (every model file written before issue 16)
HEADS = ("report", "fused3x3")
#: the report loss's squared-error normalisation. elements: both sums divided by the total number of
#: elements (the report); region: by the hole and the valid element counts (before issue 16)
LOSS_NORMS = ("elements", "region")
#: the discriminators' ends. report: Table 2, ReLU, each stack ends in its own fully connected layer
#: with one logit, each judged by its own BCE; fused: LeakyReLU stacks whose flattened features one
#: linear layer fuses into a single logit (before issue 16)
D_HEADS = ("report", "fused")
#: what a model file's config without the issue-16 keys was built as (model files written before
#: the report layout became the default): the old layout, so they load and run unchanged
LEGACY_LAYOUT = {"head": "fused3x3", "loss_norm": "region", "d_head": "fused"}


@renamed_fields(width="width_mult", d_width="d_width_mult")  # a width is a channel count in the other methods
@dataclass
class PConvConfig:
    width_mult: float = 1.0  # multiplier of the U-Net's filter counts (1.0 = 64/128/256/256/256)
    depth: int = 5  # stride-2 encoder layers; image sides must be multiples of 2**depth
    d_width_mult: float = 1.0  # multiplier of the discriminators' filter counts (1.0 = 32/64/64/128/128)
    partial: bool = True  # False: the same U-Net with plain convolutions (ablation)
    local_discriminators: bool = True  # False: the global discriminator only (ablation)
    fill_value: float = 0.5  # partial=False only: value written into the hole (Liu et al. Fig. 2(e))
    # partial=False only. "telea": the hole is pre-filled by fast marching (OpenCV Telea, GLCIC's
    # post-processing step moved in front of the network) instead of fill_value
    prefill: str = "none"
    # the U-Net predicts a correction added to its input (zero-initialised last layer: training starts
    # from the pre-fill itself) instead of the image through a sigmoid
    residual: bool = False
    loss: str = "report"  # report: hole MSE + 1/6 valid MSE | liu: Liu et al. 2018 Sec. 3.3
    head: str = "report"  # report: 3x3 PConv + LeakyReLU, 1x1 PConv + sigmoid (Table 1) | fused3x3: one 3x3 layer
    loss_norm: str = "elements"  # report loss: squared errors / all elements (report) | region: / hole, valid counts
    d_head: str = "report"  # report: each discriminator its own FC + ReLU stacks (Table 2) | fused: one linear over all
    hole_weight: float = 1.0  # report loss: weight of the hole MSE
    valid_weight: float = 1 / 6  # report loss: weight of the valid-pixel MSE
    ssim_weight: float = 0.0  # report loss: + ssim_weight * (1 - hole SSIM of the composite)
    adv_weight: float = 1 / 2000  # weight of -log D(G(x)); 0 = "MSE only" (no discriminator training)
    # liu loss weights: valid, hole, perceptual, style (out + comp), total variation (Liu et al.'s L_total)
    liu_weights: tuple[float, float, float, float, float] = (1.0, 6.0, 0.05, 120.0, 0.1)
    vgg_weights: str = ""  # liu loss: torchvision VGG16 state_dict file (else $INPAINTGAN_VGG16, cache)
    steps_completion: int = 25000  # generator alone (report: 25k at batch 16)
    steps_discriminator: int = 6000  # discriminators alone (6k)
    steps_joint: int = 94000  # both (94k)


def _scaled(channels: int, mult: float) -> int:
    return max(1, int(round(channels * mult)))


def _filters(base: Sequence[int], n: int, mult: float) -> list[int]:
    """The first ``n`` of ``base`` (its last value repeated past its end), times ``mult``."""
    return [_scaled(base[min(i, len(base) - 1)], mult) for i in range(n)]


# ------------------------------------------------------------------------------------- generator


class _PlainConv2d(nn.Conv2d):
    """A plain convolution with PartialConv2d's call signature (the ablation; masks stay ``None``)."""

    def forward(self, x: Tensor, valid: Tensor | None = None) -> tuple[Tensor, None]:
        return super().forward(x), None


class _ConvBlock(nn.Module):
    """(Partial) convolution -> optional BatchNorm -> optional activation; passes the mask along."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, partial: bool, bn: bool, act: str | None):
        super().__init__()
        conv_cls = PartialConv2d if partial else _PlainConv2d
        self.conv = conv_cls(cin, cout, k, stride, k // 2, bias=not bn)
        self.bn = nn.BatchNorm2d(cout) if bn else nn.Identity()
        if act == "relu":
            self.act: nn.Module = nn.ReLU(inplace=True)
        elif act == "lrelu":
            self.act = nn.LeakyReLU(0.2, inplace=True)
        else:
            self.act = nn.Identity()

    def forward(self, x: Tensor, valid: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """``valid``: PartialConv2d's 1 = valid mask (internal to the U-Net), passed along updated."""
        y, valid = self.conv(x, valid)
        return self.act(self.bn(y)), valid


class PConvUNet(nn.Module):
    """Liu et al.'s partial-convolution U-Net with the report's filters (see the module docstring).

    ``forward(x, valid)``: ``x`` (N, in_channels, H, W) and ``valid`` (N, 1, H, W), **1 = valid**, the
    inverse of the method's hole mask (an internal network: :meth:`PConvGAN.complete`, which takes
    1 = hole, inverts once; ``None`` for plain convolutions) -> (N, out_channels, H, W) in [0, 1]; H, W multiples of 2**depth.
    ``residual=True``: the raw last layer (zero at initialisation), a correction for the caller to add.

    ``head="report"`` (Table 1): the full-resolution decoder layer is a 3x3 (partial) convolution to
    ``out_channels`` with LeakyReLU(0.2) (``head3x3``, no BatchNorm, as Liu et al.'s last layer), then a
    1x1 (partial) convolution (``output``) into the sigmoid. ``head="fused3x3"``: ``output`` is that
    3x3 convolution, straight into the sigmoid (``head3x3`` is None).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width_mult: float = 1.0,
        depth: int = 5,
        partial: bool = True,
        residual: bool = False,
        head: str = "report",
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"U-Net depth must be >= 1, got {depth}")
        if head not in HEADS:
            raise ValueError(f"unknown pconv head {head!r}; known: {', '.join(HEADS)}")
        self.depth, self.partial, self.residual, self.head = depth, partial, residual, head
        ch = [in_channels] + _filters(ENCODER_FILTERS, depth, width_mult)  # ch[i] = channels of encoder level i
        kernels = [ENCODER_KERNELS[min(i, len(ENCODER_KERNELS) - 1)] for i in range(depth)]
        self.encoder = nn.ModuleList(
            _ConvBlock(ch[i], ch[i + 1], kernels[i], 2, partial, bn=i > 0, act="relu") for i in range(depth)
        )
        # decoder[i - 1] makes level i (ch[i] channels) from the upsampled level i+1 and the skip of level i
        self.decoder = nn.ModuleList(
            _ConvBlock(ch[i + 1] + ch[i], ch[i], 3, 1, partial, bn=True, act="lrelu") for i in range(1, depth)
        )
        if head == "report":
            self.head3x3: _ConvBlock | None = _ConvBlock(ch[1] + in_channels, out_channels, 3, 1, partial, bn=False, act="lrelu")
            self.output = _ConvBlock(out_channels, out_channels, 1, 1, partial, bn=False, act=None)
        else:
            self.head3x3 = None
            self.output = _ConvBlock(ch[1] + in_channels, out_channels, 3, 1, partial, bn=False, act=None)
        if residual:  # the correction starts at exactly zero
            zero_layer_(self.output.conv)

    @staticmethod
    def _cat_masks(up: Tensor | None, c_up: int, skip: Tensor | None, c_skip: int) -> Tensor | None:
        """Single-channel masks of the upsampled and skip features -> the (N, c_up + c_skip, H, W)
        multi-channel mask of their concatenation."""
        if up is None or skip is None:
            return None
        return torch.cat([up.expand(-1, c_up, -1, -1), skip.expand(-1, c_skip, -1, -1)], dim=1)

    def forward(self, x: Tensor, valid: Tensor | None = None) -> Tensor:
        h, w = x.shape[-2:]
        mult = 2**self.depth
        if h % mult or w % mult:
            raise ValueError(f"PConvUNet of depth {self.depth} needs sides that are multiples of {mult}, got {h}x{w}")
        if self.partial and valid is None:
            raise ValueError("the partial-convolution U-Net needs the valid-pixel mask (1 = valid)")
        feats, masks = [x], [valid]  # level 0 = the input
        for block in self.encoder:
            y, m = block(feats[-1], masks[-1])  # (N, ch[i+1], H / 2^(i+1), W / 2^(i+1))
            feats.append(y)
            masks.append(None if m is None else m[:, :1])
        y, m = feats[-1], masks[-1]
        for level in range(self.depth - 1, -1, -1):
            if level > 0:
                block = self.decoder[level - 1]
            else:
                block = self.output if self.head3x3 is None else self.head3x3
            y = F.interpolate(y, scale_factor=2.0, mode="nearest")  # (N, c, 2h, 2w)
            m = None if m is None else F.interpolate(m, scale_factor=2.0, mode="nearest")
            skip, skip_mask = feats[level], masks[level]
            m = self._cat_masks(m, y.shape[1], skip_mask, skip.shape[1])
            y, m = block(torch.cat([y, skip], dim=1), m)
            m = None if m is None else m[:, :1]
        if self.head3x3 is not None:  # Table 1's last layer: 1x1 PConv on the 3x3 layer's activations
            y, _ = self.output(y, m)
        return y if self.residual else torch.sigmoid(y)


# -------------------------------------------------------------------------------- discriminators


class RegionDiscriminator(StridedConvDiscriminator):
    """One region's discriminator, the family's configuration from the report: 5x5 stride-2
    convolutions (BatchNorm after the first); layers under ``net``. ``head="report"`` (Table 2): ReLU,
    and the stack ends in its own fully connected layer ``fc`` with one logit (N, 1).
    ``head="fused"``: LeakyReLU 0.2, flattened features (N, C*H*W), no ``fc`` (the three regions'
    features are fused by :class:`TwoRegionDiscriminator`)."""

    def __init__(self, in_channels: int, filters: Sequence[int], height: int, width: int, head: str = "report"):
        if head not in D_HEADS:
            raise ValueError(f"unknown pconv d_head {head!r}; known: {', '.join(D_HEADS)}")
        report = head == "report"
        super().__init__(
            in_channels, filters, (height, width), act="relu" if report else "lrelu", bn_from=1,
            out_features=1 if report else None, stack="net",
        )  # fmt: skip


class TwoRegionDiscriminator(nn.Module):
    """Global discriminator on the whole image plus local ones on the left third and the right two
    thirds of the width.

    ``head="report"``: each ends in its own fully connected layer; ``forward`` returns their logits
    side by side, (N, 3) (global, left, right; (N, 1) without the local ones), so the BCE losses,
    means over all elements, average the three discriminators' own BCE terms. ``head="fused"``: one
    fully connected unit ``fuse`` over the three flattened feature stacks, one logit (N, 1)."""

    def __init__(self, channels: int, image_size: int, width_mult: float = 1.0, local: bool = True, head: str = "report"):
        super().__init__()
        self.head = head  # checked by RegionDiscriminator
        n_global = max(1, int(round(math.log2(image_size / 4))))  # down to ~4x4 (5 layers at 128 px)
        filters = _filters(DISCRIMINATOR_FILTERS, n_global, width_mult)
        self.third = image_size // 3  # the same split as masks.two_rect
        self.global_d = RegionDiscriminator(channels, filters, image_size, image_size, head)
        self.local = local
        n_feat = self.global_d.out_features
        if local:
            local_filters = filters[: max(1, n_global - 1)]  # one layer fewer: the regions are smaller
            self.left_d = RegionDiscriminator(channels, local_filters, image_size, self.third, head)
            self.right_d = RegionDiscriminator(channels, local_filters, image_size, image_size - self.third, head)
            n_feat += self.left_d.out_features + self.right_d.out_features
        self.fuse = nn.Linear(n_feat, 1) if head == "fused" else None

    def forward(self, image: Tensor) -> Tensor:  # (N, C, S, S) -> (N, 3 or 1) logits (report) | (N, 1) (fused)
        parts = [self.global_d(image)]
        if self.local:
            parts += [self.left_d(image[..., : self.third]), self.right_d(image[..., self.third :])]
        out = torch.cat(parts, dim=1)
        return out if self.fuse is None else self.fuse(out)


# ------------------------------------------------------------------------ Liu et al.'s loss terms

VGG16_FILE = "vgg16-397923af.pth"  # torchvision's ImageNet VGG16 weights
VGG16_ENV = "INPAINTGAN_VGG16"


class VGG16Features(nn.Module):
    """VGG16 (Simonyan & Zisserman 2015) up to pool3, with torchvision's ``features`` indices so its
    ImageNet state_dict loads as is. ``forward`` takes [0, 1] images (1 or 3 channels) and returns the
    pool1, pool2, pool3 maps Liu et al. use (Sec. 3.3). Frozen."""

    LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M")
    TAPS = (4, 9, 16)  # pool1, pool2, pool3

    def __init__(self, state_dict: dict[str, Tensor] | None = None, source: str = "state_dict"):
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in self.LAYERS:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, int(v), 3, 1, 1), nn.ReLU()]
                c = int(v)
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        if state_dict is not None:
            wanted = {f"features.{k}": k for k in self.features.state_dict()}
            missing = [k for k in wanted if k not in state_dict]
            if missing:
                raise ValueError(f"{source} is not a torchvision VGG16 state_dict: it lacks {', '.join(missing)}")
            try:
                self.features.load_state_dict({k: state_dict[full] for full, k in wanted.items()})
            except RuntimeError as e:
                raise ValueError(f"{source} does not fit VGG16's first ten layers: {e}") from None
        self.requires_grad_(False).eval()

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        taps = []
        for i, layer in enumerate(self.features[: self.TAPS[-1] + 1]):
            x = layer(x)
            if i in self.TAPS:
                taps.append(x)  # (N, 64, H/2, W/2), (N, 128, H/4, W/4), (N, 256, H/8, W/8)
        return taps


def find_vgg16_weights(path: str = "") -> Path:
    """The VGG16 weights file: ``path`` if given, else ``$INPAINTGAN_VGG16``, else
    ``<cache>/vgg16-397923af.pth`` (``$INPAINTGAN_CACHE`` or ``~/.cache/inpaintgan``), else torch
    hub's checkpoint folder. Never downloads; raises ``FileNotFoundError`` saying where to put it."""
    from inpaintgan.download import cache_dir

    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"model.vgg_weights: VGG16 weights file not found: {p}")
        return p
    candidates = [os.environ.get(VGG16_ENV, "").strip(), cache_dir() / VGG16_FILE]
    try:
        candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE)
    except Exception:  # pragma: no cover - the hub folder is best effort
        pass
    for c in candidates:
        if c and Path(c).expanduser().is_file():
            return Path(c).expanduser()
    raise FileNotFoundError(
        f"loss='liu' needs torchvision's ImageNet VGG16 weights ({VGG16_FILE}) for its perceptual and style "
        f"terms, and none was found: set model.vgg_weights=PATH or {VGG16_ENV}=PATH, or put the file at "
        f"{cache_dir() / VGG16_FILE} (nothing is downloaded)"
    )


def load_vgg16(path: str | Path) -> VGG16Features:
    """:class:`VGG16Features` from a torchvision-layout state_dict file (.pth or .safetensors)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd = load_file(str(path))
    else:
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # corrupt or pickled objects: refused either way
            raise ValueError(f"cannot read VGG16 weights from {path}: {e}") from None
    if not isinstance(sd, dict):
        raise ValueError(f"{path} does not hold a state_dict (got {type(sd).__name__})")
    return VGG16Features(sd, source=str(path))


def gram_matrix(feat: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, C, C) Gram matrices normalised by C*H*W (Liu et al.'s K_p)."""
    n, c, h, w = feat.shape
    f = feat.reshape(n, c, h * w).float()
    return f @ f.transpose(1, 2) / (c * h * w)


def perceptual_loss(feats: Sequence[Tensor], target: Sequence[Tensor]) -> Tensor:
    """sum_p mean |psi_p(x) - psi_p(gt)| (one half of Liu et al.'s L_perceptual)."""
    return sum((a.float() - b.float()).abs().mean() for a, b in zip(feats, target))


def style_loss(feats: Sequence[Tensor], target: Sequence[Tensor]) -> Tensor:
    """sum_p mean over the C_p x C_p entries of |Gram(psi_p(x)) - Gram(psi_p(gt))| (Liu et al.'s L_style_out / L_style_comp)."""
    return sum((gram_matrix(a) - gram_matrix(b)).abs().mean() for a, b in zip(feats, target))


def hole_tv_loss(comp: Tensor, hole: Tensor) -> Tensor:
    """Total variation of the composite over P, the hole dilated by one pixel (Liu et al.'s L_tv):
    L1 of horizontal and vertical neighbour differences with both pixels in P, divided by the number
    of elements of the composite. ``hole`` (N, 1, H, W), 1 = hole."""
    region = F.max_pool2d(hole.float(), 3, 1, 1)  # (N, 1, H, W): 1-pixel dilation
    dx = (comp[..., :, 1:] - comp[..., :, :-1]).abs() * (region[..., :, 1:] * region[..., :, :-1])
    dy = (comp[..., 1:, :] - comp[..., :-1, :]).abs() * (region[..., 1:, :] * region[..., :-1, :])
    return (dx.sum() + dy.sum()) / comp.numel()


def liu_loss(
    pred: Tensor, image: Tensor, hole: Tensor, vgg: VGG16Features, weights: Sequence[float] = (1.0, 6.0, 0.05, 120.0, 0.1)
) -> tuple[Tensor, dict[str, Tensor]]:
    """Liu et al.'s L_total (Sec. 3.3) on raw output ``pred``, ground truth ``image`` and ``hole`` (1 = hole).

    Returns the weighted total and its terms (valid, hole, perceptual, style, tv)."""
    w_valid, w_hole, w_perc, w_style, w_tv = weights
    err = (pred - image).abs()  # (N, C, H, W)
    hole_e = hole.expand_as(err)
    l_hole = (err * hole_e).mean()  # L_hole: normalised by all elements of I_gt, as in the paper
    l_valid = (err * (1 - hole_e)).mean()
    comp = hole_e * pred + (1 - hole_e) * image
    n = pred.shape[0]
    f_out_comp = vgg(torch.cat([pred, comp], dim=0))  # one VGG pass for I_out and I_comp
    f_out, f_comp = [f[:n] for f in f_out_comp], [f[n:] for f in f_out_comp]
    with torch.no_grad():
        f_gt = vgg(image)
    l_perc = perceptual_loss(f_out, f_gt) + perceptual_loss(f_comp, f_gt)
    l_style = style_loss(f_out, f_gt) + style_loss(f_comp, f_gt)
    l_tv = hole_tv_loss(comp, hole)
    total = w_valid * l_valid + w_hole * l_hole + w_perc * l_perc + w_style * l_style + w_tv * l_tv
    return total, {"valid": l_valid, "hole": l_hole, "perceptual": l_perc, "style": l_style, "tv": l_tv}


# ---------------------------------------------------------------------------------------- method


@register_method("pconv")
class PConvGAN(CompletionGAN):
    """Partial-convolution U-Net generator + global/two-local discriminators (see the module docstring)."""

    Config = PConvConfig
    size_multiple = 2**5  # per instance: 2**cfg.depth

    def __init__(self, cfg: PConvConfig | None = None, image_size: int = 128, channels: int = 3):
        cfg = cfg or PConvConfig()
        super().__init__(cfg, image_size, channels)
        if cfg.loss not in LOSSES:
            raise ValueError(f"unknown pconv loss {cfg.loss!r}; known: {', '.join(LOSSES)}")
        if cfg.prefill not in PREFILLS:
            raise ValueError(f"unknown pconv prefill {cfg.prefill!r}; known: {', '.join(PREFILLS)}")
        if cfg.partial and (cfg.prefill != "none" or cfg.residual):
            raise ValueError(
                "model.prefill and model.residual need model.partial=false: partial convolutions never read hole pixels"
            )
        for key, known in (("head", HEADS), ("loss_norm", LOSS_NORMS), ("d_head", D_HEADS)):
            if getattr(cfg, key) not in known:
                raise ValueError(f"unknown pconv {key} {getattr(cfg, key)!r}; known: {', '.join(known)}")
        if len(cfg.liu_weights) != 5:
            raise ValueError("model.liu_weights needs 5 values: valid, hole, perceptual, style, tv")
        self.size_multiple = 2**cfg.depth
        if image_size % self.size_multiple:
            raise ValueError(
                f"pconv with depth {cfg.depth} needs an image size that is a multiple of {self.size_multiple}, "
                f"got {image_size} (change data.image_size or model.depth)"
            )
        in_ch = channels if cfg.partial else channels + 1  # plain convolutions also see the hole mask
        self.generator = PConvUNet(in_ch, channels, cfg.width_mult, cfg.depth, cfg.partial, cfg.residual, cfg.head)
        self.discriminator = TwoRegionDiscriminator(
            channels, image_size, cfg.d_width_mult, cfg.local_discriminators, cfg.d_head
        )
        # The VGG16 of the liu loss lives outside the module tree: not trained, not saved in checkpoints
        # or model files, not needed at inference. Loaded by configure_optimizers (training only).
        self._frozen: dict[str, nn.Module] = {}

    @classmethod
    def upgrade_config(cls, config: dict) -> dict:
        """A stored config (model-file metadata, a training checkpoint's model section) without the
        issue-16 layout keys was written when the old layout was the only one: it keeps it
        (:data:`LEGACY_LAYOUT`), so those files load and run unchanged. Presets are not upgraded:
        a preset without the keys gets the report's layout."""
        if any(k in config for k in LEGACY_LAYOUT):
            return config
        return {**config, **LEGACY_LAYOUT}

    # ------------------------------------------------------------------ training setup

    def perceptual_network(self, device: torch.device | None = None) -> VGG16Features:
        """The liu loss's VGG16 (loaded on first use from :func:`find_vgg16_weights`)."""
        if "vgg" not in self._frozen:
            self._frozen["vgg"] = load_vgg16(find_vgg16_weights(self.cfg.vgg_weights))
        vgg = self._frozen["vgg"]
        if device is not None and vgg.mean.device != device:
            vgg = self._frozen["vgg"] = vgg.to(device)
        return vgg

    def configure_optimizers(self, train_cfg) -> dict[str, torch.optim.Optimizer]:
        if self.cfg.loss == "liu":  # fail before the first step if the VGG16 file is missing
            self.perceptual_network()
        if train_cfg.optimizer != "adam":
            raise ValueError(f"pconv supports optimizer 'adam' only, got {train_cfg.optimizer!r}")
        return self.adam_optimizers(train_cfg)

    def phases(self) -> list[Phase]:
        c = self.cfg
        # adv_weight 0, "MSE only": no discriminator to train; the generator gets the same steps
        return completion_phases(c.steps_completion, c.steps_discriminator, c.steps_joint, adversarial=c.adv_weight != 0)

    # the parts of the shared training step (methods.completion_gan)
    adv_loss = "bce"  # -log D(G(x)) for the generator
    adv_weight = property(lambda self: self.cfg.adv_weight)
    residual = property(lambda self: self.cfg.residual)

    def residual_layer(self) -> tuple[nn.Module, str]:
        """The U-Net's last convolution: a non-residual source's predicts the image (through a
        sigmoid), not a correction."""
        return self.generator.output.conv, "generator.output.conv (re-zeroed: the source model was not residual)"

    def source_was_residual(self, config: dict) -> bool:
        return bool(config.get("residual", False))

    # ------------------------------------------------------------------ networks and losses

    def complete(self, image: Tensor, mask: Tensor) -> Tensor:
        """Raw generator output (N, C, H, W) for ``image`` with holes where ``mask`` (N, 1, H, W) is 1."""
        if self.cfg.partial:
            return self.generator(image, 1 - mask)  # PartialConv2d masks: 1 = valid; hole values are never read
        x = fill_hole(image, mask, self.cfg.prefill, self.cfg.fill_value)
        return residual_output(x, self.generator(torch.cat([x, mask], dim=1), None), self.cfg.residual)

    def reconstruction_loss(self, pred: Tensor, image: Tensor, mask: Tensor) -> tuple[Tensor, dict[str, float]]:
        """The configured reconstruction loss and its logged terms."""
        if self.cfg.loss == "liu":
            total, terms = liu_loss(pred, image, mask, self.perceptual_network(image.device), self.cfg.liu_weights)
            return total, {"loss_liu": total.item(), **{f"loss_{k}": v.item() for k, v in terms.items()}}
        if self.cfg.loss_norm == "elements":  # the report: both sums of squared errors / all elements
            se = (pred - image) ** 2  # (N, C, H, W)
            hole_e = mask.expand_as(se)
            hole, valid = (se * hole_e).sum() / se.numel(), (se * (1 - hole_e)).sum() / se.numel()
        else:  # region: each sum / its own element count
            hole = masked_mse(pred, image, mask)
            valid = masked_mse(pred, image, 1 - mask)
        total = self.cfg.hole_weight * hole + self.cfg.valid_weight * valid
        logs = {"loss_mse": total.item(), "loss_hole_mse": hole.item(), "loss_valid_mse": valid.item()}
        if self.cfg.ssim_weight > 0:  # logged apart: loss_mse stays the report's L_MSE
            l_ssim = hole_ssim_loss(pred, image, mask)
            total = total + self.cfg.ssim_weight * l_ssim
            logs["loss_ssim"] = l_ssim.item()
        return total, logs

