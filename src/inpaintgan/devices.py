"""Whether a requested torch device exists here, as a one-line error instead of a traceback from
deep inside torch (``--device cuda`` on a CPU-only build of torch, ``cuda:3`` on a one-GPU machine)."""

from __future__ import annotations

import torch


def check_device_available(dev: torch.device) -> torch.device:
    """``dev`` if this machine and this torch build can use it, else ValueError naming the choices."""
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"device {str(dev)!r} was requested but {why}; use --device cpu (or auto)")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"device {str(dev)!r} was requested but this machine has {n} CUDA GPU(s): cuda:0..cuda:{n - 1}")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device {str(dev)!r} was requested but Apple MPS is not available here; use --device cpu (or auto)")
    elif dev.type != "cpu":
        raise ValueError(f"unsupported device {str(dev)!r}; use auto, cpu, cuda, cuda:N or mps")
    return dev
