"""Non-finite numbers (NaN, +-Inf) are stopped at every boundary: weights when a model or checkpoint
is loaded, input images and masks, network outputs, and training losses. A NaN that got through would
come out as a black or NaN fill with a success exit code."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch


class NonFiniteError(FloatingPointError):
    """A network produced NaN or infinite values (an output, or a training loss)."""


class NonFiniteInputError(ValueError):
    """An input image holds NaN or infinite values."""


#: buffers where +inf is a documented "not set yet" value, by their last name component (never NaN):
#: semantic's ``d_real_median`` is +inf until calibrated (its sampler then refuses to run, naming it)
INF_SENTINELS = frozenset({"d_real_median"})


def first_non_finite(named: Iterable[tuple[str, torch.Tensor]]) -> tuple[str, int] | None:
    """(name, count of NaN/Inf values) of the first floating-point tensor that is not all finite
    (+inf in an :data:`INF_SENTINELS` buffer is allowed)."""
    for name, t in named:
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            if name.rsplit(".", 1)[-1] in INF_SENTINELS:
                bad = int((torch.isnan(t) | torch.isneginf(t)).sum())
            else:
                bad = int((~torch.isfinite(t)).sum())
            if bad:
                return name, bad
    return None


def check_finite_weights(named: Iterable[tuple[str, torch.Tensor]], source: object) -> None:
    """Refuse weights holding NaN/Inf (a :class:`~inpaintgan.checkpoints.CheckpointError` naming the tensor)."""
    from inpaintgan.checkpoints import CheckpointError

    hit = first_non_finite(named)
    if hit is not None:
        raise CheckpointError(f"{source}: tensor {hit[0]} holds {hit[1]} NaN/Inf value(s); refusing non-finite weights")


def array_is_finite(a: np.ndarray) -> bool:
    return a.dtype.kind != "f" or bool(np.isfinite(a).all())


def check_finite_output(y: torch.Tensor, what: str = "the network") -> torch.Tensor:
    """``y`` unchanged, or :class:`NonFiniteError`: a non-finite fill is never returned or written."""
    if y.is_floating_point() and not bool(torch.isfinite(y).all()):
        bad = int((~torch.isfinite(y)).sum())
        raise NonFiniteError(f"{what} produced {bad} NaN/Inf value(s); nothing was written (a damaged model, or an input it cannot handle)")
    return y
