"""BTGMI: "Image Inpainting using Block-wise Procedural Training with Annealed Adversarial Counterpart"
(Yang, Song, Liu, Tang, Kuo, arXiv 1803.08943, 2018). The paper's training and annealing sections are
empty; where it is silent we follow its anchors, pix2pixHD (Wang et al. 2018, NVIDIA/pix2pixHD
``models/networks.py``) and progressive GANs (Karras et al. 2018), and say so (docs/methods.md).

- **Generator head** (pix2pixHD's GlobalGenerator): 7x7 conv, three stride-2 3x3 convs, residual blocks
  with dilation 2 (9 in the paper), three stride-2 3x3 transposed convs, 7x7 output conv with tanh
  (the network works in [-1, 1]; the method takes and returns [0, 1]). BatchNorm + ReLU after every
  layer but the output; reflection padding. Input: image (hole zeroed) + hole mask + guide mask.
  ``upsample=interp``: the paper's interpolated-convolution alternative, each transposed conv replaced
  by nearest-neighbour x2 up-sampling + a 3x3 conv with the same output channels, BatchNorm and ReLU
  (Odena et al. 2016's resize-convolution; nearest is the resize they report working best).
- **Block-wise procedural training**: phase ``head`` trains the head; phases ``block1`` ... insert one
  refinement residual block each, before the up-sampling, as ``x + alpha * F(x)`` with ``alpha``
  ramped linearly 0 -> 1 over ``fade_steps`` (progressive GANs' fade-in: ``(1 - alpha) x + alpha (x +
  F(x))``). At alpha 0 the block is skipped, so the output is exactly the previous network's. Every
  block exists from construction; the generator's buffers ``active_blocks`` / ``fade_alpha`` say
  which are in use, and are set from the global step by :func:`block_state` (a pure function of the
  step and the phases, so resuming mid-fade is exact) and exported with the weights.
- **Adversarial loss annealing (ALA)**: the generator's adversarial weight goes from ``adv_start`` to
  ``adv_end`` across the block-wise phases (``none`` | ``linear`` | ``exponential`` in the global step,
  :func:`ala_weight`).
- **Patch perceptual loss (PPL)**: features of a fixed network (LPIPS's AlexNet from local weights,
  or the discriminator's own intermediate features as in pix2pixHD's feature matching), unit-normalised
  over channels at every position, per-channel weighted, squared distance averaged over space and
  layers, on two crops: a square tight around the hole and one ``ppl_context`` times larger,
  both resized to ``ppl_size`` (:func:`patch_perceptual_loss`).
- **Improved multi-scale discriminator**: pix2pixHD's PatchGAN discriminators at ``num_d`` scales,
  LSGAN. Per-patch labels from the mask: a patch is fake iff its receptive-field window in the input
  image holds a hole pixel (:meth:`MultiscaleDiscriminator.patch_labels`), so known context is never
  called fake; ``mask_aware_d=False`` is the plain PatchGAN (the whole fake image is fake).
- **Harmonization and guided inpainting**: the same generator is trained on inpainting, on
  harmonization (a region re-toned by :func:`harmonization_sample`; input the perturbed image, with
  the region in the guide channel) and on guided inpainting (a patch of another image in the batch,
  colour-perturbed, pasted into the hole eroded by ``guide_gap`` px; :func:`guided_input`), mixed by
  ``task_probs``. :meth:`BTGMI.harmonize` and :meth:`BTGMI.guided_inpaint` serve them at inference.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaintgan.losses import masked_l1, masked_mse
from inpaintgan.masks import hole_bboxes
from inpaintgan.methods.base import InpaintMethod, Phase
from inpaintgan.nn.blocks import init_gan_weights
from inpaintgan.registry import register_method
from inpaintgan.tensors import frozen

OUTPUTS = ("tanh", "sigmoid")
ALA_KINDS = ("none", "linear", "exponential")
RECON_KINDS = ("ppl", "l1", "l2")
UPSAMPLES = ("transposed", "interp")
PPL_NETS = ("alexnet", "discriminator")
PPL_WEIGHTS = ("ones", "lpips")
D_NORMS = ("instance", "batch", "none")
TASKS = ("inpaint", "harmonize", "guided")
ALEXNET_MIN_SIZE = 32  # AlexNet's five layers need crops of at least this side


@dataclass
class BTGMIConfig:
    # generator: pix2pixHD GlobalGenerator with dilated residual blocks
    width: int = 64  # channels of the first layer (pix2pixHD's ngf); x2 per down-sampling
    n_down: int = 3  # stride-2 down-samplings (and as many x2 up-samplings); sides pad to 2**n_down
    upsample: str = "transposed"  # transposed: stride-2 3x3 transposed convs | interp: nearest x2 + 3x3 conv
    res_blocks: int = 9  # residual blocks of the head (the paper's 9)
    dilation: int = 2  # dilation of the residual blocks' 3x3 convs
    refine_blocks: int = 3  # refinement blocks inserted one per phase (ours: the paper gives no count)
    output: str = "tanh"  # tanh (pix2pixHD; the network works in [-1, 1]) | sigmoid
    # discriminator: pix2pixHD MultiscaleDiscriminator of PatchGANs
    d_width: int = 64  # first-layer channels (ndf)
    d_layers: int = 3  # stride-2 layers per discriminator (n_layers_D)
    num_d: int = 3  # image scales (pix2pixHD's num_D; 2-3)
    d_norm: str = "instance"  # instance (pix2pixHD) | batch | none
    mask_aware_d: bool = True  # patches not touching the hole are "real" (False: plain PatchGAN, an ablation)
    # reconstruction: pixel term + patch perceptual loss
    recon: str = "ppl"  # ppl: L1 + PPL | l1: L1 only | l2: MSE only (the "L2 instead of PPL" ablation)
    pixel_weight: float = 1.0  # weight of the pixel term (L1 or MSE) over the written region
    valid_weight: float = 0.0  # weight of the pixel term over the other pixels (outputs are composited)
    ppl_weight: float = 1.0
    ppl_net: str = "discriminator"  # discriminator (no download) | alexnet (LPIPS's trunk, local weights)
    ppl_weights: str = "ones"  # per-channel weights: ones | lpips (LPIPS v0.1 lin layers; alexnet only)
    ppl_alexnet: str = ""  # AlexNet weights file (else $INPAINTGAN_LPIPS_ALEXNET, the cache, torch hub)
    ppl_lpips: str = ""  # LPIPS v0.1 alex.pth lin file (else $INPAINTGAN_LPIPS_LIN, the cache, lpips package)
    ppl_size: int = 64  # both PPL crops are resized to this side
    ppl_context: float = 2.0  # the context crop's side / the tight crop's side (clamped to the image)
    # adversarial weight and its annealing (ALA)
    ala: str = "linear"  # none | linear | exponential, over the block-wise phases
    adv_start: float = 0.1  # generator's LSGAN weight during the head phase
    adv_end: float = 0.01  # ... at the end of the last block phase
    # tasks
    task_probs: tuple[float, float, float] = (0.8, 0.1, 0.1)  # inpaint, harmonize, guided
    guide_gap: int = 8  # px between the hole's border and the pasted guide (guided training samples)
    # schedule (ours: the paper's training section is empty)
    blockwise: bool = True  # False: every refinement block active from the start (ablation)
    steps_head: int = 100_000
    steps_block: int = 50_000  # per inserted block
    fade_steps: int = 25_000  # fade-in length of each block (<= steps_block)


# ----------------------------------------------------------------------------- schedule functions


def block_state(phases: Sequence[Phase], step: int) -> tuple[int, float]:
    """(refinement blocks in use, fade-in weight of the newest) at global ``step``.

    A phase whose ``info`` has ``("block", k)`` with k >= 1 inserts block k when it starts; its weight
    is ``min(1, (step - phase start) / fade_steps)`` (1 when ``fade_steps`` is 0). Earlier blocks have
    weight 1. Phases of 0 steps never start. Past the schedule's end: the last state."""
    active, alpha, start = 0, 1.0, 0
    for ph in phases:
        info = dict(ph.info)
        k = int(info.get("block", 0))
        if ph.steps > 0 and step >= start and k >= 1:
            fade = int(info.get("fade_steps", 0))
            active = k
            alpha = 1.0 if fade <= 0 else min(1.0, (step - start) / fade)
        start += ph.steps
    return active, alpha


def ala_weight(kind: str, start: float, end: float, t: float) -> float:
    """Adversarial weight at progress ``t`` in [0, 1] (clamped) of the annealing span."""
    t = min(max(float(t), 0.0), 1.0)
    if kind == "none":
        return float(start)
    if kind == "linear":
        return float(start + (end - start) * t)
    if kind == "exponential":
        return float(start * (end / start) ** t)
    raise ValueError(f"unknown ala {kind!r}; known: {', '.join(ALA_KINDS)}")


# --------------------------------------------------------------------------------- data for tasks


def _rand(n: int, rng: torch.Generator | None, device, lo: float, hi: float, *shape: int) -> Tensor:
    dev = rng.device if rng is not None else device
    return (torch.rand((n, *shape), generator=rng, device=dev) * (hi - lo) + lo).to(device)


def harmonization_sample(image: Tensor, region: Tensor, rng: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """A harmonization training input: ``image`` (N, C, H, W) in [0, 1] with its colour and tone
    perturbed inside ``region`` (N, 1, H, W), 1 = perturbed. Per sample: gamma exp(U(-0.4, 0.4)), per
    channel gain U(0.7, 1.3) and bias U(-0.1, 0.1), saturation x U(0.5, 1.5) (3 channels), clipped to
    [0, 1]. Returns (perturbed, binary region); pixels outside the region are bit-identical."""
    n, c = image.shape[:2]
    region = (region > 0.5).to(image.dtype)
    gamma = torch.exp(_rand(n, rng, image.device, -0.4, 0.4, 1, 1, 1))
    gain = _rand(n, rng, image.device, 0.7, 1.3, c, 1, 1)
    bias = _rand(n, rng, image.device, -0.1, 0.1, c, 1, 1)
    sat = _rand(n, rng, image.device, 0.5, 1.5, 1, 1, 1)
    x = image.clamp(0, 1).pow(gamma) * gain + bias
    if c == 3:
        luma = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        x = luma + (x - luma) * sat
    return torch.where(region > 0.5, x.clamp(0, 1), image), region


def erode(mask: Tensor, px: int) -> Tensor:
    """Binary erosion of (N, 1, H, W) masks by a (2 px + 1)^2 square; the image border does not erode."""
    m = (mask > 0.5).to(mask.dtype if mask.is_floating_point() else torch.float32)
    if px <= 0:
        return m
    return -F.max_pool2d(-m, 2 * px + 1, 1, px)


def guided_input(image: Tensor, hole: Tensor, guide_image: Tensor, gap: int) -> tuple[Tensor, Tensor, Tensor]:
    """A guided-inpainting input: ``guide_image`` pasted into ``hole`` eroded by ``gap`` px.

    Returns (image with the guide in the guide region and zeros in the gap, hole channel = the gap
    (hole minus guide region), guide channel = the guide region). Known pixels are ``image``'s."""
    hole = (hole > 0.5).to(image.dtype)
    guide = erode(hole, gap).to(image.dtype)
    x = torch.where(guide > 0.5, guide_image, image * (1 - hole))
    return x, hole - guide, guide


# ----------------------------------------------------------------------------------------- networks


def _pad(x: Tensor, p: int) -> Tensor:
    """Reflection padding (pix2pixHD), zeros where a map is too small to reflect."""
    if p == 0:
        return x
    return F.pad(x, (p, p, p, p), mode="reflect" if p < min(x.shape[-2:]) else "constant")


class _PadConv(nn.Conv2d):
    """Stride-1 conv with reflection padding to keep the size."""

    def __init__(self, cin: int, cout: int, k: int, dilation: int = 1, bias: bool = True):
        super().__init__(cin, cout, k, 1, 0, dilation=dilation, bias=bias)
        self.p = dilation * (k - 1) // 2

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(_pad(x, self.p))


class ResBlock(nn.Module):
    """pix2pixHD's ResnetBlock with dilated convs: ``x + F(x)``, F = conv-BN-ReLU-conv-BN."""

    def __init__(self, dim: int, dilation: int = 2):
        super().__init__()
        self.body = nn.Sequential(
            _PadConv(dim, dim, 3, dilation, bias=False), nn.BatchNorm2d(dim), nn.ReLU(True),
            _PadConv(dim, dim, 3, dilation, bias=False), nn.BatchNorm2d(dim),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def up_layer(cin: int, cout: int, kind: str) -> list[nn.Module]:
    """One x2 up-sampling of the back end, without its norm and activation: a stride-2 3x3 transposed
    conv (output padding 1; pix2pixHD) or, for ``interp``, nearest x2 then a reflection-padded 3x3 conv."""
    if kind == "transposed":
        return [nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1, bias=False)]
    if kind == "interp":
        return [nn.Upsample(scale_factor=2, mode="nearest"), _PadConv(cin, cout, 3, bias=False)]
    raise ValueError(f"unknown btgmi upsample {kind!r}; known: {', '.join(UPSAMPLES)}")


class BTGMIGenerator(nn.Module):
    """Head (front end, residual blocks, back end) + refinement blocks inserted before the back end.

    ``forward(x)``: (N, C + 2, H, W) -> (N, C, H, W) raw output (tanh: [-1, 1]; sigmoid: [0, 1]); H, W
    multiples of 2**n_down. Refinement block i (0-based) is used iff i < ``active_blocks``, with weight
    ``fade_alpha`` for the newest and 1 for the others; weight 0 skips it (exact identity)."""

    def __init__(self, in_ch: int, out_ch: int, width: int = 64, n_down: int = 3, res_blocks: int = 9,
                 dilation: int = 2, refine_blocks: int = 3, output: str = "tanh", upsample: str = "transposed"):
        super().__init__()
        layers: list[nn.Module] = [_PadConv(in_ch, width, 7, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
        for i in range(n_down):
            c = width * 2**i
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.ReLU(True)]
        self.front = nn.Sequential(*layers)
        dim = width * 2**n_down
        self.blocks = nn.Sequential(*[ResBlock(dim, dilation) for _ in range(res_blocks)])
        self.refine = nn.ModuleList(ResBlock(dim, dilation) for _ in range(refine_blocks))
        layers = []
        for i in range(n_down):
            c = dim // 2**i
            layers += [*up_layer(c, c // 2, upsample), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
        self.back = nn.Sequential(*layers)
        self.out = _PadConv(width, out_ch, 7)
        self.output = output
        self.register_buffer("active_blocks", torch.zeros((), dtype=torch.long))
        self.register_buffer("fade_alpha", torch.ones(()))

    def set_blocks(self, active: int, alpha: float) -> None:
        if not 0 <= active <= len(self.refine):
            raise ValueError(f"active blocks must be in 0..{len(self.refine)}, got {active}")
        self.active_blocks.fill_(int(active))
        self.fade_alpha.fill_(float(alpha))

    def block_weights(self) -> list[float]:
        """The weight of every refinement block (0 = bypassed)."""
        n, a = int(self.active_blocks), float(self.fade_alpha)
        return [0.0 if i >= n else (a if i == n - 1 else 1.0) for i in range(len(self.refine))]

    def forward(self, x: Tensor) -> Tensor:
        h = self.blocks(self.front(x))
        for block, w in zip(self.refine, self.block_weights()):
            if w <= 0:
                continue  # not inserted yet (or at fade-in 0): skipped, so neither used nor trained
            r = block.body(h)
            h = h + r if w >= 1 else h + w * r
        y = self.out(self.back(h))
        return torch.tanh(y) if self.output == "tanh" else torch.sigmoid(y)


def _norm(kind: str, c: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(c, affine=False)  # pix2pixHD's default
    if kind == "batch":
        return nn.BatchNorm2d(c)
    return nn.Identity()


def receptive_geometry(layers: Sequence[tuple[int, int, int]]) -> tuple[int, int, int]:
    """(jump, offset, size) of a stack of (kernel, stride, padding) layers: output index j sees input
    indices ``[jump * j + offset, jump * j + offset + size - 1]`` (before clipping to the image)."""
    jump, offset, size = 1, 0, 1
    for k, s, p in layers:
        offset -= p * jump
        size += (k - 1) * jump
        jump *= s
    return jump, offset, size


def _out_size(n: int, layers: Sequence[tuple[int, int, int]]) -> int:
    for k, s, p in layers:
        n = (n + 2 * p - k) // s + 1
    return n


class PatchDiscriminator(nn.Module):
    """pix2pixHD's NLayerDiscriminator: 4x4 convs (padding 2), ``n_layers`` of stride 2 then two of
    stride 1, LeakyReLU 0.2, a norm on all but the first and last; -> (N, 1, h, w) patch scores.
    ``forward`` returns every layer's output (the last is the score map)."""

    def __init__(self, in_ch: int, width: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        nf = width
        layers = [nn.Sequential(nn.Conv2d(in_ch, nf, 4, 2, 2), nn.LeakyReLU(0.2))]
        for _ in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 512)
            layers.append(nn.Sequential(nn.Conv2d(prev, nf, 4, 2, 2), _norm(norm, nf), nn.LeakyReLU(0.2)))
        prev, nf = nf, min(nf * 2, 512)
        layers.append(nn.Sequential(nn.Conv2d(prev, nf, 4, 1, 2), _norm(norm, nf), nn.LeakyReLU(0.2)))
        layers.append(nn.Sequential(nn.Conv2d(nf, 1, 4, 1, 2)))
        self.layers = nn.ModuleList(layers)
        self.geometry = [(4, 2, 2)] * n_layers + [(4, 1, 2), (4, 1, 2)]

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs on the image and its 2x, 4x ... average-pooled versions (pix2pixHD).

    ``forward(x)`` (x in [-1, 1]) -> one list of layer outputs per scale, finest first; the last of
    each list is that scale's (N, 1, h, w) score map."""

    DOWN = (3, 2, 1)  # AvgPool2d(3, stride 2, padding 1, count_include_pad=False) between scales

    def __init__(self, in_ch: int, width: int = 64, n_layers: int = 3, num_d: int = 3, norm: str = "instance"):
        super().__init__()
        self.nets = nn.ModuleList(PatchDiscriminator(in_ch, width, n_layers, norm) for _ in range(num_d))

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        out = []
        for i, net in enumerate(self.nets):
            if i:
                x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
            out.append(net(x))
        return out

    def scale_layers(self, i: int) -> list[tuple[int, int, int]]:
        """(kernel, stride, padding) of everything between the input image and scale ``i``'s scores."""
        return [self.DOWN] * i + list(self.nets[i].geometry)

    def output_sizes(self, h: int, w: int) -> list[tuple[int, int]]:
        return [(_out_size(h, self.scale_layers(i)), _out_size(w, self.scale_layers(i))) for i in range(len(self.nets))]

    def patch_labels(self, mask: Tensor) -> list[Tensor]:
        """Per scale, (N, 1, h, w) with 1 where the patch is fake: its receptive-field window in the
        input image (clipped to the image) holds at least one hole pixel of ``mask`` (N, 1, H, W).
        Computed exactly by max-pooling the zero-padded mask with each scale's receptive-field
        geometry (window size and jump)."""
        m = (mask > 0.5).float()
        h, w = m.shape[-2:]
        labels = []
        for i, (oh, ow) in enumerate(self.output_sizes(h, w)):
            jump, offset, size = receptive_geometry(self.scale_layers(i))
            lo = -offset  # >= 0: every layer pads
            pad_b = max(0, (oh - 1) * jump + offset + size - h)
            pad_r = max(0, (ow - 1) * jump + offset + size - w)
            padded = F.pad(m, (lo, pad_r, lo, pad_b))
            labels.append(F.max_pool2d(padded, size, jump)[..., :oh, :ow].to(mask.dtype))
        return labels


# ---------------------------------------------------------------------------- patch perceptual loss


def ppl_boxes(region: Tensor, context: float = 2.0, min_side: float = 4.0) -> tuple[Tensor, Tensor, Tensor]:
    """Square crop boxes (N, 4) as float (y0, x0, y1, x1), end-exclusive pixel edges, for the two PPL
    scales: ``tight`` (side = the hole bounding box's longer side, at least ``min_side``, centred on
    it) and ``wide`` (``context`` x that side); both clamped to the image side and shifted inside it.
    Also (N,) bool: the sample has a hole."""
    n, _, h, w = region.shape
    boxes, nonempty = hole_bboxes(region)
    y0, x0, y1, x1 = boxes.to(torch.float32).unbind(1)
    y0, y1 = torch.where(nonempty, y0, 0.0), torch.where(nonempty, y1, float(h))
    x0, x1 = torch.where(nonempty, x0, 0.0), torch.where(nonempty, x1, float(w))
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    side = torch.maximum(y1 - y0, x1 - x0).clamp_min(min_side)

    def square(s: Tensor) -> Tensor:
        s = s.clamp_max(float(min(h, w)))
        top = (cy - s / 2).clamp_min(0.0).minimum(h - s)
        left = (cx - s / 2).clamp_min(0.0).minimum(w - s)
        return torch.stack([top, left, top + s, left + s], dim=1)

    return square(side), square(side * context), nonempty


def crop_resize(images: Tensor, boxes: Tensor, size: int) -> Tensor:
    """Bilinear crops (N, C, size, size) of float boxes (N, 4) (y0, x0, y1, x1); differentiable."""
    n, c, h, w = images.shape
    b = boxes.to(images.dtype)
    theta = torch.zeros(n, 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0] = (b[:, 3] - b[:, 1]) / w
    theta[:, 0, 2] = (b[:, 1] + b[:, 3]) / w - 1
    theta[:, 1, 1] = (b[:, 2] - b[:, 0]) / h
    theta[:, 1, 2] = (b[:, 0] + b[:, 2]) / h - 1
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


FeatureFn = Callable[[Tensor], list[Tensor]]


def _unit(f: Tensor, eps: float = 1e-10) -> Tensor:
    """Unit length over channels at every position (LPIPS's normalize_tensor; rsqrt keeps the
    gradient finite at all-zero positions)."""
    return f * torch.rsqrt(f.pow(2).sum(1, keepdim=True) + eps)


def feature_distance(fa: Sequence[Tensor], fb: Sequence[Tensor], weights: Sequence[Tensor | None] | None = None) -> Tensor:
    """(M,) mean over layers of the spatial mean of sum_c w_c (unit(a) - unit(b))_c^2."""
    total = 0
    for i, (a, b) in enumerate(zip(fa, fb)):
        d = (_unit(a.float()) - _unit(b.float())).pow(2)
        wt = weights[i] if weights is not None else None
        if wt is not None:
            d = d * wt.to(d).view(1, -1, 1, 1)
        total = total + d.sum(1).mean(dim=(1, 2))
    return total / max(1, len(fa))


def patch_perceptual_loss(pred: Tensor, target: Tensor, region: Tensor, features: FeatureFn, size: int = 64,
                          context: float = 2.0, weights: Sequence[Tensor | None] | None = None) -> Tensor:
    """PPL of ``pred`` against ``target`` (N, C, H, W) in [0, 1] around ``region`` (N, 1, H, W):
    :func:`feature_distance` of ``features`` on a tight and a ``context`` x wider square crop around
    the region's bounding box (both resized to ``size``), averaged over the two scales and over the
    samples that have a region (0 if none). Gradients reach ``pred`` only; the target's features are
    computed without a graph. ``features`` must not be trained through this loss (freeze it)."""
    tight, wide, nonempty = ppl_boxes(region, context)
    n = pred.shape[0]
    boxes = torch.cat([tight, wide], 0)  # (2N, 4)
    fa = features(crop_resize(torch.cat([pred, pred], 0), boxes, size))
    with torch.no_grad():
        fb = features(crop_resize(torch.cat([target, target], 0), boxes, size))
    d = feature_distance(fa, fb, weights)  # (2N,)
    per_sample = (d[:n] + d[n:]) / 2
    keep = nonempty.to(per_sample.dtype)
    return (per_sample * keep).sum() / keep.sum().clamp_min(1.0)


def _weights_file(path: str, which: int, key: str, what: str, missing_hint: str) -> Path:
    """``path`` if given (it must exist), else the file LPIPS would use
    (:func:`inpaintgan.metrics._find_lpips_weights` slot ``which``). Never downloads."""
    from inpaintgan import metrics

    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"model.{key}: {what} file not found: {p}")
        return p
    found = metrics._find_lpips_weights()[which]
    if found is None:
        raise FileNotFoundError(missing_hint)
    return found


def find_alexnet_weights(path: str = "") -> Path:
    """The AlexNet weights for ``ppl_net=alexnet``: ``path``, else what LPIPS uses
    ($INPAINTGAN_LPIPS_ALEXNET, the metrics cache, torch hub's checkpoints). Never downloads;
    FileNotFoundError says where to put it."""
    from inpaintgan import metrics

    return _weights_file(
        path, 0, "ppl_alexnet", "AlexNet weights",
        f"btgmi with ppl_net=alexnet needs torchvision's ImageNet AlexNet weights ({metrics.ALEXNET_FILE}) for "
        f"its patch perceptual loss, and none was found: set model.ppl_alexnet=PATH or INPAINTGAN_LPIPS_ALEXNET=PATH, "
        f"or put the file at {metrics.cache_dir() / metrics.ALEXNET_FILE} (nothing is downloaded); "
        "model.ppl_net=discriminator needs no weights",
    )


def find_lpips_lin(path: str = "") -> Path:
    """LPIPS v0.1 AlexNet linear-layer file for ``ppl_weights=lpips`` (``path``, else what LPIPS uses)."""
    from inpaintgan import metrics

    return _weights_file(
        path, 1, "ppl_lpips", "LPIPS linear-layer",
        f"ppl_weights=lpips needs LPIPS v0.1's linear layers ({metrics.LPIPS_LIN_FILE}): set model.ppl_lpips=PATH "
        f"or INPAINTGAN_LPIPS_LIN=PATH, or put it at {metrics.cache_dir() / 'lpips_alex_v0.1.pth'}; or use ppl_weights=ones",
    )


def load_alexnet_ppl(alexnet_path: str | Path, lin_path: str | Path | None = None):
    """:class:`inpaintgan.metrics.LPIPS` (its AlexNet definition, torchvision layout) with LPIPS's
    linear weights from ``lin_path``, or all-ones channel weights when it is None. Frozen, eval."""
    from inpaintgan.metrics import LPIPS

    if lin_path is None:
        buf = io.BytesIO()
        torch.save({f"lin{k}.model.1.weight": torch.ones(1, c, 1, 1) for k, c in enumerate(LPIPS.CHANNELS)}, buf)
        buf.seek(0)
        lin_src: Any = buf
    else:
        lin_src = lin_path
    try:
        return LPIPS(alexnet_path, lin_src)
    except (RuntimeError, KeyError, ValueError) as e:
        raise ValueError(f"{alexnet_path} is not a torchvision AlexNet state_dict usable for PPL: {e}") from None


# ------------------------------------------------------------------------------------------- method


@register_method("btgmi")
class BTGMI(InpaintMethod):
    """Block-wise procedurally trained pix2pixHD-style generator (see the module docstring)."""

    Config = BTGMIConfig
    size_multiple = 8  # per instance: 2**cfg.n_down

    def __init__(self, cfg: BTGMIConfig | None = None, image_size: int = 128, channels: int = 3):
        cfg = cfg or BTGMIConfig()
        super().__init__(cfg, image_size, channels)
        self._check(cfg)
        self.size_multiple = 2**cfg.n_down
        self.generator = BTGMIGenerator(channels + 2, channels, cfg.width, cfg.n_down, cfg.res_blocks,
                                        cfg.dilation, cfg.refine_blocks, cfg.output, cfg.upsample)
        self.discriminator = MultiscaleDiscriminator(channels, cfg.d_width, cfg.d_layers, cfg.num_d, cfg.d_norm)
        init_gan_weights(self)
        if not cfg.blockwise:
            self.generator.set_blocks(cfg.refine_blocks, 1.0)
        # LPIPS's AlexNet (ppl_net=alexnet) lives outside the module tree: not trained, not saved, not
        # needed at inference. Loaded by configure_optimizers / on first use.
        self._frozen: dict[str, nn.Module] = {}

    @staticmethod
    def _check(c: BTGMIConfig) -> None:
        for name, value, known in (("output", c.output, OUTPUTS), ("ala", c.ala, ALA_KINDS), ("recon", c.recon, RECON_KINDS),
                                   ("upsample", c.upsample, UPSAMPLES),
                                   ("ppl_net", c.ppl_net, PPL_NETS), ("ppl_weights", c.ppl_weights, PPL_WEIGHTS),
                                   ("d_norm", c.d_norm, D_NORMS)):
            if value not in known:
                raise ValueError(f"unknown btgmi {name} {value!r}; known: {', '.join(known)}")
        if c.width < 1 or c.d_width < 1 or c.n_down < 1 or c.d_layers < 1 or c.num_d < 1:
            raise ValueError("btgmi width, d_width, n_down, d_layers and num_d must be >= 1")
        if c.res_blocks < 0 or c.refine_blocks < 0:
            raise ValueError("btgmi res_blocks and refine_blocks must be >= 0")
        if c.ppl_weights == "lpips" and c.ppl_net != "alexnet":
            raise ValueError("ppl_weights=lpips are LPIPS's AlexNet channel weights: they need ppl_net=alexnet")
        if c.recon == "ppl" and c.ppl_net == "alexnet" and c.ppl_size < ALEXNET_MIN_SIZE:
            raise ValueError(f"ppl_net=alexnet needs ppl_size >= {ALEXNET_MIN_SIZE}, got {c.ppl_size}")
        if c.ppl_size < 4 or c.ppl_context < 1:
            raise ValueError("ppl_size must be >= 4 and ppl_context >= 1")
        if c.ala == "exponential" and (c.adv_start <= 0 or c.adv_end <= 0):
            raise ValueError("ala=exponential needs adv_start > 0 and adv_end > 0")
        if len(c.task_probs) != 3 or min(c.task_probs) < 0 or sum(c.task_probs) <= 0:
            raise ValueError(f"task_probs needs 3 non-negative weights (inpaint, harmonize, guided), got {c.task_probs}")
        if c.guide_gap < 0:
            raise ValueError("guide_gap must be >= 0")
        if c.steps_head < 0 or c.steps_block < 0 or c.fade_steps < 0:
            raise ValueError("btgmi step counts must be >= 0")
        if c.blockwise and c.refine_blocks > 0:
            if c.steps_block < 1:
                raise ValueError("block-wise training with refine_blocks > 0 needs steps_block >= 1")
            if c.fade_steps > c.steps_block:
                raise ValueError(f"fade_steps ({c.fade_steps}) must not exceed steps_block ({c.steps_block})")

    # ------------------------------------------------------------------ schedule

    def phases(self) -> list[Phase]:
        c = self.cfg
        both = {"generator", "discriminator"}
        if not c.blockwise:  # ablation: the full network from the first step, same number of steps
            total = c.steps_head + c.refine_blocks * c.steps_block
            return [Phase("full", total, both, info=(("block", c.refine_blocks), ("fade_steps", 0)))]
        phases = [Phase("head", c.steps_head, both, info=(("block", 0), ("fade_steps", 0)))]
        for k in range(1, c.refine_blocks + 1):
            phases.append(Phase(f"block{k}", c.steps_block, both, info=(("block", k), ("fade_steps", c.fade_steps))))
        return phases

    def adv_weight_at(self, step: int) -> float:
        """ALA: ``adv_start`` up to the end of the head phase, annealed to ``adv_end`` at the end of the
        last block phase (the same step range with ``blockwise=False``), constant after."""
        c = self.cfg
        begin, end = c.steps_head, c.steps_head + c.refine_blocks * c.steps_block
        t = (step - begin) / (end - begin) if end > begin else 0.0
        return ala_weight(c.ala, c.adv_start, c.adv_end, t)

    def set_schedule(self, step: int) -> tuple[int, float]:
        """Put the generator in the state of global ``step`` (active blocks, fade-in weight)."""
        active, alpha = block_state(self.phases(), step)
        self.generator.set_blocks(active, alpha)
        return active, alpha

    # ------------------------------------------------------------------ training setup

    def alexnet(self, device: torch.device | None = None) -> nn.Module:
        """The PPL's AlexNet (metrics.LPIPS), loaded on first use from local files."""
        if "alexnet" not in self._frozen:
            lin = find_lpips_lin(self.cfg.ppl_lpips) if self.cfg.ppl_weights == "lpips" else None
            self._frozen["alexnet"] = load_alexnet_ppl(find_alexnet_weights(self.cfg.ppl_alexnet), lin)
        net = self._frozen["alexnet"]
        if device is not None and net.shift.device != device:
            net = self._frozen["alexnet"] = net.to(device)
        return net

    def configure_optimizers(self, train_cfg) -> dict[str, torch.optim.Optimizer]:
        if self.cfg.recon == "ppl" and self.cfg.ppl_net == "alexnet":
            self.alexnet()  # a missing weights file stops here, before the first step
        if train_cfg.optimizer != "adam":
            raise ValueError(f"btgmi trains with adam (pix2pixHD's optimizer), not {train_cfg.optimizer!r}")
        # one optimizer for the whole generator: blocks not inserted yet are skipped in the forward pass,
        # so they get no gradient and Adam leaves them (and their moments) untouched
        return self.adam_optimizers(train_cfg)

    # ------------------------------------------------------------------ forward

    def complete(self, image: Tensor, hole: Tensor, guide: Tensor | None = None) -> Tensor:
        """Raw generator output in [0, 1] (not composited). ``image`` (N, C, H, W) in [0, 1] holds the
        known pixels and, where ``guide`` is 1, given content to harmonise; ``hole`` (N, 1, H, W) marks
        pixels without content (zeroed). Sizes that are not multiples of ``size_multiple`` are
        edge-padded and cropped back."""
        hole = (hole > 0.5).to(image.dtype)
        guide = torch.zeros_like(hole) if guide is None else (guide > 0.5).to(image.dtype)
        x = torch.cat([(image * 2 - 1) * (1 - hole), hole, guide], dim=1)
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.size_multiple, (-w) % self.size_multiple
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        y = self.generator(x)[..., :h, :w]
        return (y + 1) / 2 if self.cfg.output == "tanh" else y

    @torch.no_grad()
    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        return self.composite(self.complete(image, mask), image, mask)

    @torch.no_grad()
    def harmonize(self, image: Tensor, region: Tensor) -> Tensor:
        """Re-tone the pixels of ``image`` where ``region`` (N, 1, H, W) is 1 to fit the rest; composited."""
        return self.composite(self.complete(image, torch.zeros_like(region), region), image, region)

    @torch.no_grad()
    def guided_inpaint(self, image: Tensor, mask: Tensor, guide_image: Tensor, guide_mask: Tensor) -> Tensor:
        """Guided inpainting: ``guide_image`` (same size as ``image``) is used where ``guide_mask`` is 1
        (harmonised), the rest of ``mask`` is filled around it. Writes ``mask`` or ``guide_mask``
        pixels; the others come back unchanged."""
        g = guide_mask > 0.5
        region = ((mask > 0.5) | g).to(image.dtype)
        x = torch.where(g, guide_image, image)
        pred = self.complete(x, region * (~g).to(image.dtype), g.to(image.dtype))
        return self.composite(pred, image, region)

    # ------------------------------------------------------------------ training

    def sample_tasks(self, image: Tensor, mask: Tensor, rng: torch.Generator | None = None) -> dict[str, Tensor]:
        """Per sample, one task drawn with ``task_probs``; returns the generator's inputs (x, hole, guide),
        the written ``region`` (= the mask for all three tasks), the ``target`` and ``task`` (N,) in
        0/1/2 = inpaint/harmonize/guided. The same random numbers are drawn whatever the mix."""
        c = self.cfg
        n = image.shape[0]
        mask = (mask > 0.5).to(image.dtype)
        probs = torch.tensor(c.task_probs, dtype=torch.float64)
        edges = (probs.cumsum(0) / probs.sum())[:2].to(image.device, torch.float32)
        u = _rand(n, rng, image.device, 0.0, 1.0)
        task = torch.bucketize(u, edges, right=True).clamp_max(2)  # (N,)
        harm, _ = harmonization_sample(image, mask, rng)
        guide_src = image.roll(1, dims=0)  # the guide comes from another image of the batch
        guide_pert, _ = harmonization_sample(guide_src, torch.ones_like(mask), rng)
        g_x, g_hole, g_guide = guided_input(image, mask, guide_pert, c.guide_gap)
        t = task.view(n, 1, 1, 1)
        zero = torch.zeros_like(mask)
        return {
            "x": torch.where(t == 1, harm, torch.where(t == 2, g_x, image)),
            "hole": torch.where(t == 0, mask, torch.where(t == 1, zero, g_hole)),
            "guide": torch.where(t == 0, zero, torch.where(t == 1, mask, g_guide)),
            "region": mask,
            "target": torch.where((t == 2) & (g_guide > 0.5), guide_src, image),
            "task": task,
        }

    def ppl_features(self, x: Tensor) -> list[Tensor]:
        """The PPL network's feature maps of [0, 1] images: LPIPS's five AlexNet ReLUs, or every
        intermediate layer of every discriminator scale (pix2pixHD's feature matching layers)."""
        if self.cfg.ppl_net == "alexnet":
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            return self.alexnet(x.device)._taps(x.float())
        return [f for scale in self.discriminator(x * 2 - 1) for f in scale[:-1]]

    def ppl_loss(self, pred: Tensor, target: Tensor, region: Tensor) -> Tensor:
        """:func:`patch_perceptual_loss` with this method's network; its parameters get no gradient."""
        c = self.cfg
        weights = None
        if c.ppl_net == "alexnet" and c.ppl_weights == "lpips":
            weights = [lin.weight.flatten() for lin in self.alexnet(pred.device).lins]
        net = self.alexnet(pred.device) if c.ppl_net == "alexnet" else self.discriminator
        with frozen(net):
            return patch_perceptual_loss(pred, target, region, self.ppl_features, c.ppl_size, c.ppl_context, weights)

    def reconstruction_loss(self, pred: Tensor, comp: Tensor, target: Tensor, region: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Pixel term (L1, or MSE for ``recon=l2``) over the region (+ ``valid_weight`` x elsewhere) on the
        raw output, plus ``ppl_weight`` x PPL on the composite for ``recon=ppl``."""
        c = self.cfg
        pix_fn = masked_mse if c.recon == "l2" else masked_l1
        pix = pix_fn(pred, target, region)
        if c.valid_weight > 0:
            pix = pix + c.valid_weight * pix_fn(pred, target, 1 - region)
        loss = c.pixel_weight * pix
        logs = {"loss_l2" if c.recon == "l2" else "loss_l1": pix.item()}
        if c.recon == "ppl" and c.ppl_weight > 0:
            ppl = self.ppl_loss(comp, target, region)
            loss = loss + c.ppl_weight * ppl
            logs["loss_ppl"] = ppl.item()
        return loss, logs

    def adversarial_terms(self, outputs: list[list[Tensor]], labels: list[Tensor] | None, real: bool) -> Tensor:
        """LSGAN (pix2pixHD), summed over scales. ``real``: every patch's target is 1. Else, for the
        discriminator, patch targets are 1 - label (label 1 = fake; all fake when ``labels`` is None)."""
        total = 0
        for i, scale in enumerate(outputs):
            score = scale[-1].float()
            if real:
                total = total + ((score - 1) ** 2).mean()
            else:
                target = torch.zeros_like(score) if labels is None else 1 - labels[i].to(score)
                total = total + ((score - target) ** 2).mean()
        return total

    def generator_adversarial(self, outputs: list[list[Tensor]], labels: list[Tensor] | None) -> Tensor:
        """LSGAN generator term summed over scales: (D - 1)^2 averaged over the fake patches (all patches
        without mask-aware labels)."""
        total = 0
        for i, scale in enumerate(outputs):
            err = (scale[-1].float() - 1) ** 2
            if labels is None:
                total = total + err.mean()
            else:
                lab = labels[i].to(err)
                total = total + (err * lab).sum() / lab.sum().clamp_min(1.0)
        return total

    def train_step(self, batch, phase: Phase, step: int, ctx) -> dict[str, float]:
        c = self.cfg
        image = batch["image"]
        active, alpha = self.set_schedule(step)
        t = self.sample_tasks(image, batch["mask"], ctx.generator)
        train_g, train_d = "generator" in phase.trains, "discriminator" in phase.trains
        logs: dict[str, float] = {"blocks": float(active), "alpha": alpha}
        with ctx.autocast():
            pred = self.complete(t["x"], t["hole"], t["guide"])
        comp = self.composite(pred, t["target"], t["region"])
        labels = self.discriminator.patch_labels(t["region"]) if c.mask_aware_d else None
        if train_d:
            with ctx.autocast():
                loss_d = 0.5 * (self.adversarial_terms(self.discriminator(image * 2 - 1), None, True)
                                + self.adversarial_terms(self.discriminator(comp.detach() * 2 - 1), labels, False))
            ctx.backward_step(loss_d, "discriminator")
            logs["loss_d"] = loss_d.item()
        if train_g:
            w_adv = self.adv_weight_at(step)
            with ctx.autocast():
                loss_g, rec_logs = self.reconstruction_loss(pred, comp, t["target"], t["region"])
                if w_adv > 0:
                    with frozen(self.discriminator):
                        adv = self.generator_adversarial(self.discriminator(comp * 2 - 1), labels)
                    loss_g = loss_g + w_adv * adv
                    logs["loss_adv"] = adv.item()
            ctx.backward_step(loss_g, "generator")
            logs.update(rec_logs, loss_g=loss_g.item(), adv_weight=w_adv)
        return logs

    def extra_state_for_export(self) -> dict[str, Any]:
        c = self.cfg
        return {
            "ppl_net": c.ppl_net if c.recon == "ppl" else None,
            "ppl_weights": c.ppl_weights if c.recon == "ppl" else None,
            "active_blocks": int(self.generator.active_blocks),
            "fade_alpha": float(self.generator.fade_alpha),
            "tasks": list(TASKS),
        }
