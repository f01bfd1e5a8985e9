"""Small tensor and module helpers, one of each, used across the package: the float -> 8-bit image
conversion, an eval-mode block that restores every submodule's own flag, and a no-gradient block that
restores every parameter's own ``requires_grad``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["eval_mode", "frozen", "quantize_uint8", "to_uint8"]


def to_uint8(img: Tensor) -> np.ndarray:
    """Float image(s) in [0, 1], channels first, ``(..., C, H, W)`` -> uint8 ``(..., H, W, C)``
    (clamped, rounded half up: ``floor(255 x + 0.5)``), on the CPU."""
    t = img.detach().float().clamp(0, 1).movedim(-3, -1).cpu()
    return (t.numpy() * 255 + 0.5).astype(np.uint8)


def quantize_uint8(img: Tensor) -> Tensor:
    """Float values in [0, 1] -> a uint8 tensor of the same shape and layout, ``round(255 x)`` with
    torch's rounding (half to even): the 8-bit image a classical algorithm (OpenCV, PatchMatch) is
    given, or a cache key that must match it. :func:`to_uint8` is the converter for saving images
    (channels last, rounded half up)."""
    return (img.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[nn.Module | tuple[nn.Module, ...]]:
    """Eval mode inside the block; every submodule's own train/eval flag restored after it (a plain
    ``module.train()`` would switch frozen networks back to train mode and move their BatchNorm
    statistics). Yields the module (the tuple of modules when given several)."""
    saved = [(m, m.training) for mod in modules for m in mod.modules()]
    for mod in modules:
        mod.eval()
    try:
        yield modules[0] if len(modules) == 1 else modules
    finally:
        for m, flag in saved:
            m.training = flag


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """No gradients into ``module``'s parameters inside the block; each parameter's own
    ``requires_grad`` is restored after it (a parameter frozen before stays frozen)."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, f in flags:
            p.requires_grad_(f)
