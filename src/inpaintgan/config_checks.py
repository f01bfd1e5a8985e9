"""Range checks for the shared config sections (data, masks, train), run when a config is built:
a value outside its valid range is a :class:`~inpaintgan.config.ConfigError` that names the key,
the value and the range, rather than a traceback later or a value silently clamped.

The methods' own sections (``model.*``) are typed by their dataclasses (and floats must be finite);
the image size is checked against the method's network once it is built (see
:func:`check_image_size`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

#: (section, key) -> (test, the valid range in words)
Check = tuple[Callable[[Any], bool], str]


def _at_least(lo: float) -> Check:
    return (lambda v: v >= lo), f">= {lo:g}"


def _above(lo: float) -> Check:
    return (lambda v: v > lo), f"> {lo:g}"


def _between(lo: float, hi: float, hi_open: bool = False) -> Check:
    if hi_open:
        return (lambda v: lo <= v < hi), f"in [{lo:g}, {hi:g})"
    return (lambda v: lo <= v <= hi), f"in [{lo:g}, {hi:g}]"


def _fraction_open() -> Check:
    return (lambda v: 0 < v <= 1), "in (0, 1]"


def _one_of(*names: str) -> Check:
    return (lambda v: v in names), "one of " + ", ".join(names)


_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")

CHECKS: dict[str, dict[str, Check]] = {
    "data": {
        "dataset": _one_of("folder", "cifar10", "fashion_mnist"),
        "image_size": _at_least(8),
        "resize": _one_of("crop", "resize"),
        "crop_scale": ((lambda v: 0 < v[0] <= v[1]), "two numbers a, b with 0 < a <= b"),
        "val_fraction": _between(0, 1, hi_open=True),
        "test_fraction": _between(0, 1, hi_open=True),
        "limit": _at_least(0),
        "num_workers": _at_least(0),
        "repeat_epochs": _at_least(0),
    },
    "masks": {
        "kind": _one_of("glcic_rect", "two_rect", "center", "strokes", "folder", "mixed", "lama_wide"),
        "rect_min": _fraction_open(),
        "rect_max": _fraction_open(),
        "center_area": ((lambda v: 0 < v < 1), "in (0, 1)"),
        "stroke_max_vertices": _at_least(1),
        "stroke_max_width": _fraction_open(),
        "stroke_max_length": _fraction_open(),
        "stroke_max_strokes": _at_least(1),
        "mixed_rect_prob": _between(0, 1),
    },
    "train": {
        "batch_size": _at_least(1),
        "optimizer": _one_of("adam", "adadelta"),
        "lr": _above(0),
        "lr_d": _at_least(0),
        "betas": ((lambda v: all(0 <= b < 1 for b in v)), "two numbers in [0, 1)"),
        "grad_clip": _at_least(0),
        "lr_schedule": _one_of("constant", "cosine", "linear"),
        "lr_min_factor": _between(0, 1),
        "device": ((lambda v: bool(_DEVICE_RE.match(v))), "auto, cpu, cuda, cuda:N or mps"),
        "amp": _one_of("none", "bf16", "fp16"),
        "out_dir": ((lambda v: bool(v.strip())), "a folder name (not empty)"),
        "log_every": _at_least(1),
        "sample_every": _at_least(0),
        "ckpt_every": _at_least(0),
        "keep_last": _at_least(0),
        "val_every": _at_least(0),
        "val_batches": _at_least(0),
        "threads": _at_least(0),
        "max_steps": _at_least(0),
        "time_limit_min": _at_least(0),
    },
}


def check_run_config(cfg: Any) -> None:
    """Raise ConfigError for the first value of ``cfg.data / masks / train`` outside its range."""
    from inpaintgan.config import ConfigError

    for section, checks in CHECKS.items():
        sub = getattr(cfg, section)
        for key, (ok, valid) in checks.items():
            value = getattr(sub, key)
            if not ok(value):
                raise ConfigError(f"{section}.{key}={value!r} is out of range: valid is {valid}")
    if cfg.masks.rect_min > cfg.masks.rect_max:
        raise ConfigError(f"masks.rect_min={cfg.masks.rect_min:g} is above masks.rect_max={cfg.masks.rect_max:g}")
    if cfg.data.val_fraction + cfg.data.test_fraction >= 1:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction = {cfg.data.val_fraction + cfg.data.test_fraction:g} "
            "leaves no training images: valid is a sum below 1"
        )


def check_image_size(image_size: int, method: Any) -> None:
    """``data.image_size`` must be a multiple of the network's ``size_multiple`` (its downsampling)."""
    from inpaintgan.config import ConfigError

    mult = int(getattr(method, "size_multiple", 1) or 1)
    if image_size % mult:
        lo = (image_size // mult) * mult
        near = f"{lo} or {lo + mult}" if lo >= 8 else f"{lo + mult}"
        raise ConfigError(
            f"data.image_size={image_size} does not fit method {getattr(method, 'name', '?')!r}: valid is a multiple "
            f"of {mult} (its network downsamples by {mult}), e.g. {near}"
        )
