"""Contextual attention (Yu, Lin, Yang, Shen, Lu, Huang, "Generative Image Inpainting with Contextual
Attention", CVPR 2018, Sec. 4.1 and Fig. 3), re-implemented in PyTorch after the authors' TensorFlow
code (github.com/JiahuiYu/generative_inpainting, v1 branch, ``inpaint_ops.contextual_attention``).

Foreground features (the whole map; the hole is what matters) are matched against background patches
(positions outside the hole), and each foreground position is rebuilt as an attention-weighted
average of raw background patches:

1. **Memory savers** (paper Sec. 4.1 "Attention propagation" and the code's ``rate``): both maps are
   downscaled by ``rate`` (2) before matching, so background patches are effectively taken with a
   stride of ``rate`` and the score matrix shrinks by ``rate**4``; the attention is brought back to
   full resolution by the transposed convolution of step 5.
2. **Matching**: ``ksize`` x ``ksize`` (3x3) background patches, each divided by its L2 norm, are
   used as convolution kernels over the foreground (Eq. 1: a normalised inner product). One grouped
   convolution does the whole batch; every sample has its own kernels, because every sample has its
   own hole.
3. **Propagation** (Sec. 4.1): scores are summed along diagonals of a ``k`` x ``k`` identity kernel,
   first left-right (x of foreground and background shifted together), then top-down, which favours
   coherent shifts. ``k`` = 1 is no propagation.
4. **Scaled softmax** over background positions (scale 10), with background positions whose patch
   touches the hole removed before the softmax (the official code zeroes their scores instead,
   so they still count in the normaliser; we use -inf, and zero them again after the softmax).
5. **Reconstruction**: the attention is deconvolved with the *raw* (full-resolution) background
   patches, ``rate + 2 * ceil(rate / 2)`` pixels square at stride ``rate`` (4x4 at rate 2, as in the
   paper and code), and divided by how many patches cover each pixel (the code divides by 4
   everywhere, which darkens the image border; in the interior the two agree).

Our additions: any feature-map size (maps are padded by replication to a multiple of ``rate`` and
cropped back; the mask is padded the same way, so padding never turns a hole into background),
per-sample masks, downscaling by average pooling for the features and max pooling for the mask
(the code uses nearest neighbour, which can call a block background while it holds hole pixels),
and propagation without the wrap-around at row ends of the code's flattened implementation.

:func:`attention_to_flow` and :func:`flow_to_color` render the attention as the paper's colour-coded
flow (Fig. 5): the offset to each position's most attended background position, in the Middlebury
colour wheel (Baker et al. 2011).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ContextualAttention", "propagate_scores", "attention_to_flow", "flow_to_color"]


def _pad_to_multiple(x: Tensor, m: int) -> Tensor:
    """Replicate-pad the bottom/right of (N, C, H, W) so H and W are multiples of ``m``."""
    ph, pw = (-x.shape[-2]) % m, (-x.shape[-1]) % m
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="replicate")


def _mask_like(mask: Tensor | None, n: int, size: tuple[int, int], ref: Tensor) -> Tensor:
    """A hole mask (N or 1, 1, h, w), 1 = hole, at ``size``: max pooling when larger (a feature pixel
    that any hole pixel falls into is hole), nearest neighbour when smaller. None -> no hole."""
    if mask is None:
        return ref.new_zeros((n, 1) + tuple(size))
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be (N, 1, H, W), got {tuple(mask.shape)}")
    if mask.shape[0] not in (1, n):
        raise ValueError(f"mask batch {mask.shape[0]} does not match the features' batch {n}")
    m = mask.to(dtype=ref.dtype, device=ref.device)
    if tuple(m.shape[-2:]) != tuple(size):
        if m.shape[-2] >= size[0] and m.shape[-1] >= size[1]:
            m = F.adaptive_max_pool2d(m, size)
        else:
            m = F.interpolate(m, size=size, mode="nearest")
    m = (m > 0.5).to(ref.dtype)
    return m.expand(n, 1, *size) if m.shape[0] != n else m


def propagate_scores(scores: Tensor, k: int) -> Tensor:
    """Attention propagation (Yu et al. 2018, Sec. 4.1) on scores (N, hb, wb, hf, wf).

    Left-right: s'(yf, xf, yb, xb) = sum_{d=-k//2..k//2} s(yf, xf + d, yb, xb + d), then the same
    top-down on y (zero outside the map). This is the code's convolution with a k x k identity kernel
    over the flattened score matrix, without its wrap-around at row ends. ``k`` = 1 returns ``scores``.
    """
    if k < 1 or k % 2 == 0:
        raise ValueError(f"propagation kernel size must be odd and >= 1, got {k}")
    if k == 1:
        return scores
    r = k // 2
    _, hb, wb, hf, wf = scores.shape
    p = F.pad(scores, (r, r, 0, 0, r, r))  # pad wf and wb: (N, hb, wb + 2r, hf, wf + 2r)
    scores = sum(p[:, :, j : j + wb, :, j : j + wf] for j in range(k))
    p = F.pad(scores, (0, 0, r, r, 0, 0, r, r))  # pad hf and hb: (N, hb + 2r, wb, hf + 2r, wf)
    return sum(p[:, j : j + hb, :, j : j + hf, :] for j in range(k))


class ContextualAttention(nn.Module):
    """Contextual attention layer (no parameters).

    ``forward(f, b=None, mask=None)``: foreground ``f`` (N, C, H, W), background ``b`` (N, C, Hb, Wb)
    (default: ``f``, self-attention as in DeepFill), ``mask`` (N or 1, 1, h, w), 1 = hole, at any
    resolution (resized to ``b``'s). Returns ``(y, attention)``: ``y`` (N, C, H, W) and ``attention``
    (N, hb * wb, hf, wf), the softmax weights over background positions (row-major) at each foreground
    position of the ``rate``-downscaled grids (hf = ceil(H / rate), ...); weights of hole background
    positions are exactly 0, and a position with no background at all gets all zeros (and y = 0).
    """

    def __init__(self, ksize: int = 3, rate: int = 2, scale: float = 10.0, propagation_k: int = 3, eps: float = 1e-4):
        super().__init__()
        if ksize < 1 or ksize % 2 == 0:
            raise ValueError(f"matching patch size must be odd and >= 1, got {ksize}")
        if rate < 1:
            raise ValueError(f"rate must be >= 1, got {rate}")
        if propagation_k < 1 or propagation_k % 2 == 0:
            raise ValueError(f"propagation kernel size must be odd and >= 1, got {propagation_k}")
        self.ksize, self.rate, self.scale, self.propagation_k, self.eps = ksize, rate, float(scale), propagation_k, eps
        self.raw_pad = (rate + 1) // 2  # raw patch = rate + 2 * raw_pad: 3 at rate 1, 4 at rate 2
        self.raw_size = rate + 2 * self.raw_pad

    def extra_repr(self) -> str:
        return f"ksize={self.ksize}, rate={self.rate}, scale={self.scale}, propagation_k={self.propagation_k}"

    def forward(self, f: Tensor, b: Tensor | None = None, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        b = f if b is None else b
        if f.dim() != 4 or b.dim() != 4:
            raise ValueError(f"features must be (N, C, H, W); got {tuple(f.shape)} and {tuple(b.shape)}")
        if f.shape[:2] != b.shape[:2]:
            raise ValueError(f"foreground {tuple(f.shape)} and background {tuple(b.shape)} differ in batch or channels")
        n, c, h, w = f.shape
        r, k, dtype = self.rate, self.ksize, f.dtype
        m = _mask_like(mask, n, (b.shape[-2], b.shape[-1]), b)  # (N, 1, Hb, Wb)
        fp, bp, mp = _pad_to_multiple(f, r), _pad_to_multiple(b, r), _pad_to_multiple(m, r)
        # 1. downscale: (N, C, H', W') -> (N, C, H'/r, W'/r)
        fd = F.avg_pool2d(fp, r) if r > 1 else fp
        bd = F.avg_pool2d(bp, r) if r > 1 else bp
        md = F.max_pool2d(mp, r) if r > 1 else mp
        hf, wf = fd.shape[-2:]
        hb, wb = bd.shape[-2:]
        nb = hb * wb
        # 2. matching: normalised background patches as kernels, one group per sample
        wpat = F.unfold(bd, k, padding=k // 2).transpose(1, 2)  # (N, C*k*k, L) -> (N, L, C*k*k)
        wpat = wpat / wpat.norm(dim=2, keepdim=True).clamp_min(self.eps)
        wpat = wpat.reshape(n * nb, c, k, k)
        scores = F.conv2d(fd.reshape(1, n * c, hf, wf), wpat, padding=k // 2, groups=n)  # (1, N*L, hf, wf)
        # 3. propagation over (N, hb, wb, hf, wf)
        scores = propagate_scores(scores.reshape(n, hb, wb, hf, wf).float(), self.propagation_k).reshape(n, nb, hf, wf)
        # 4. masked, scaled softmax over background positions (float32, also under autocast)
        valid = F.max_pool2d(md.float(), k, stride=1, padding=k // 2) < 0.5  # (N, 1, hb, wb): patch has no hole
        valid = valid.reshape(n, nb, 1, 1)
        logits = (scores * self.scale).masked_fill(~valid, torch.finfo(torch.float32).min)
        attention = torch.softmax(logits, dim=1) * valid  # (N, L, hf, wf)
        # 5. reconstruction: transposed convolution with raw background patches
        ks, pr = self.raw_size, self.raw_pad
        raw = F.unfold(bp, ks, stride=r, padding=pr).transpose(1, 2)  # (N, L, C*ks*ks)
        raw = raw.reshape(n * nb, c, ks, ks)
        y = F.conv_transpose2d(attention.to(dtype).reshape(1, n * nb, hf, wf), raw, stride=r, padding=pr, groups=n)
        cover = F.conv_transpose2d(
            y.new_ones((1, 1, hf, wf)), y.new_ones((1, 1, ks, ks)), stride=r, padding=pr
        )  # (1, 1, hf*r, wf*r): patches covering each pixel
        y = (y.reshape(n, c, hf * r, wf * r) / cover)[:, :, :h, :w]
        return y, attention


# ------------------------------------------------------------------------------- visualisation


@torch.no_grad()
def attention_to_flow(
    attention: Tensor,
    background_size: tuple[int, int] | None = None,
    cell: int = 1,
    out_size: tuple[int, int] | None = None,
) -> Tensor:
    """Per-position offset (dy, dx) to the most attended background position: (N, 2, h, w) float.

    ``attention`` (N, hb * wb, hf, wf) from :class:`ContextualAttention`; ``background_size`` = (hb, wb),
    default (hf, wf) (self-attention). ``cell``: output pixels per attention-grid cell (``rate`` for the
    layer's own input, ``4 * rate`` for DeepFill's image); offsets are scaled by it and every cell is
    repeated ``cell`` x ``cell`` times (nearest, as the code's flow image), then cropped (or edge-padded)
    to ``out_size``. Positions with no background (all weights 0) get offset 0.
    """
    n, nb, hf, wf = attention.shape
    hb, wb = background_size or (hf, wf)
    if hb * wb != nb:
        raise ValueError(f"attention has {nb} background positions, not {hb}x{wb}; pass background_size")
    idx = attention.argmax(dim=1)  # (N, hf, wf)
    dev = attention.device
    dy = (idx // wb) - torch.arange(hf, device=dev).view(1, hf, 1)
    dx = (idx % wb) - torch.arange(wf, device=dev).view(1, 1, wf)
    none = attention.amax(dim=1) <= 0
    flow = torch.stack([dy, dx], dim=1).float() * (~none).unsqueeze(1) * cell  # (N, 2, hf, wf)
    if cell > 1:
        flow = flow.repeat_interleave(cell, dim=2).repeat_interleave(cell, dim=3)  # (N, 2, hf*cell, wf*cell)
    if out_size is not None:
        h, w = out_size
        flow = flow[:, :, :h, :w]
        ph, pw = h - flow.shape[2], w - flow.shape[3]
        if ph > 0 or pw > 0:
            flow = F.pad(flow, (0, pw, 0, ph), mode="replicate")
    return flow


def _color_wheel() -> np.ndarray:
    """The Middlebury colour wheel: (55, 3) in [0, 255], red -> yellow -> green -> cyan -> blue ->
    magenta -> red in 15, 6, 4, 11, 13, 6 steps (Baker et al., IJCV 2011)."""
    keys = [(255, 0, 0), (255, 255, 0), (0, 255, 0), (0, 255, 255), (0, 0, 255), (255, 0, 255), (255, 0, 0)]
    steps = (15, 6, 4, 11, 13, 6)
    rows = []
    for (c0, c1, n) in zip(keys[:-1], keys[1:], steps):
        ramp = np.floor(255 * np.arange(n) / n) / 255  # (n,)
        rows.append(np.asarray(c0, np.float64) + ramp[:, None] * (np.asarray(c1, np.float64) - np.asarray(c0, np.float64)))
    return np.concatenate(rows, axis=0)


def flow_to_color(flow: np.ndarray | Tensor, max_radius: float | None = None) -> np.ndarray:
    """Colour-code a flow (..., 2, H, W) with channels (dy, dx) as uint8 (..., H, W, 3).

    Hue = direction (Middlebury wheel, u = dx, v = dy), saturation = length relative to ``max_radius``
    (default: each image's longest vector); zero motion is white, vectors beyond the radius are
    dimmed to 75 %.
    """
    a = flow.detach().cpu().numpy() if isinstance(flow, Tensor) else np.asarray(flow)
    if a.ndim < 3 or a.shape[-3] != 2:
        raise ValueError(f"flow must be (..., 2, H, W), got shape {a.shape}")
    lead = a.shape[:-3]
    a = a.reshape((-1,) + a.shape[-3:]).astype(np.float64)  # (B, 2, H, W)
    wheel = _color_wheel() / 255.0
    ncols = len(wheel)
    out = np.empty(a.shape[:1] + a.shape[2:] + (3,), np.uint8)
    for i, (v, u) in enumerate(a):
        v, u = np.nan_to_num(v), np.nan_to_num(u)
        rad = np.sqrt(u**2 + v**2)
        norm = max_radius if max_radius is not None else float(rad.max())
        norm = norm if norm > 0 else 1.0
        u, v, rad = u / norm, v / norm, rad / norm
        angle = np.arctan2(-v, -u) / math.pi  # [-1, 1]
        fk = (angle + 1) / 2 * (ncols - 1)
        k0 = np.floor(fk).astype(int) % ncols
        k1 = (k0 + 1) % ncols
        frac = (fk - np.floor(fk))[..., None]
        col = (1 - frac) * wheel[k0] + frac * wheel[k1]  # (H, W, 3)
        inside = (rad <= 1)[..., None]
        col = np.where(inside, 1 - rad[..., None] * (1 - col), col * 0.75)
        out[i] = np.floor(255 * np.clip(col, 0, 1)).astype(np.uint8)
    return out.reshape(lead + out.shape[1:])
