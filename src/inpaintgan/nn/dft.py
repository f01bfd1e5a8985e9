"""The 2-D real FFT pair as real matrix multiplications, for exported graphs.

``rfft2_matmul(x)`` equals ``torch.fft.rfft2(x, norm="ortho")`` (returned as the real and the imaginary
part) and ``irfft2_matmul(re, im, (h, w))`` equals ``torch.fft.irfft2(complex(re, im), s=(h, w),
norm="ortho")``, within float32 rounding. The DFT matrices are built from the input's own height and
width at run time (``arange``, an outer product, ``cos`` / ``sin``; in ONNX: Range, Mul, Mod, Cos, Sin),
so an exported graph keeps dynamic height and width. The products ``j * k`` are reduced modulo the
length in integers before they become angles, so the angle is exact whatever the size.

Why: onnxruntime's CPU ``DFT`` operator is slow (a 2-D real FFT there costs several times PyTorch's
pocketfft), while the same transform as matrix products of a few dozen rows runs in its GEMM kernels;
for the feature maps of an FFC network (tens of pixels a side at the bottleneck) the O(n^2) products are
cheap. Eager PyTorch keeps ``torch.fft`` (measured in ``docs/benchmarks.md``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _cos_sin(rows: int, cols: int, length: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """cos and sin of 2*pi*(j*k mod length)/length for j < rows, k < cols: two (rows, cols) float32 tensors."""
    j = torch.arange(rows, device=device)
    k = torch.arange(cols, device=device)
    n = torch.full((), length, dtype=torch.int64, device=device)  # a tensor: ONNX's Mod takes no symbolic scalar
    angle = torch.remainder(j[:, None] * k[None, :], n)  # integers: exact before the conversion
    angle = angle.to(torch.float32) * (2 * math.pi) / n.to(torch.float32)
    return torch.cos(angle), torch.sin(angle)


def _column_transform(cos: Tensor, sin: Tensor, sign: float) -> Tensor:
    """The (2n, 2n) real matrix of the complex (n, n) DFT ``cos + sign*i*sin`` acting on [real; imag]
    stacked along the rows."""
    return torch.cat([torch.cat([cos, -sign * sin], 1), torch.cat([sign * sin, cos], 1)], 0)


def rfft2_matmul(x: Tensor) -> tuple[Tensor, Tensor]:
    """(real, imag) of ``torch.fft.rfft2(x, norm="ortho")`` for a float32 (..., H, W) tensor: each
    (..., H, W // 2 + 1)."""
    h, w = x.shape[-2], x.shape[-1]
    k = w // 2 + 1
    cw, sw = _cos_sin(w, k, w, x.device)  # (W, K)
    row = x @ torch.cat([cw, -sw], 1)  # (..., H, 2K): the real FFT of each row, [real | imag]
    stacked = torch.cat([row[..., :k], row[..., k:]], -2)  # (..., 2H, K): [real; imag]
    ch, sh = _cos_sin(h, h, h, x.device)
    out = _column_transform(ch, sh, -1.0) @ stacked  # (..., 2H, K): the complex FFT of each column
    out = out * torch.rsqrt(torch.full((), h * w, dtype=torch.float32, device=x.device))
    return out[..., :h, :], out[..., h:, :]


def irfft2_matmul(re: Tensor, im: Tensor, size: tuple[int, int]) -> Tensor:
    """``torch.fft.irfft2(torch.complex(re, im), s=size, norm="ortho")`` for float32 (..., H, W // 2 + 1)
    halves of a spectrum: (..., H, W). As ``torch.fft.irfft2``, the imaginary parts of the bins that a
    real signal has real (frequency 0 and, for even W, W / 2 along the last axis) are ignored."""
    h, w = size
    k = re.shape[-1]
    ch, sh = _cos_sin(h, h, h, re.device)
    cols = _column_transform(ch, sh, 1.0) @ torch.cat([re, im], -2)  # (..., 2H, K): inverse FFT of each column
    cw, sw = _cos_sin(k, w, w, re.device)  # (K, W)
    kk = torch.arange(k, device=re.device)
    # Hermitian weights: bins 1 .. ceil(W/2)-1 stand for themselves and their mirror image
    weight = 2.0 - (kk == 0).to(torch.float32) - (2 * kk == w).to(torch.float32)
    basis = torch.cat([cw * weight[:, None], -sw * weight[:, None]], 0)  # (2K, W)
    out = torch.cat([cols[..., :h, :], cols[..., h:, :]], -1) @ basis  # (..., H, W)
    return out * torch.rsqrt(torch.full((), h * w, dtype=torch.float32, device=re.device))


__all__ = ["rfft2_matmul", "irfft2_matmul"]
