"""Model files: safetensors weights + JSON metadata (method, resolved config, training data, steps,
metrics). Nothing pickled is ever loaded: safetensors holds tensors only, and training-state files
are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT_VERSION = "1"


class CheckpointError(ValueError):
    """A model or training-state file that cannot be used (missing, corrupt, unsafe, wrong method)."""


def atomic_write(path: str | Path, write_fn) -> Path:
    """Call ``write_fn(tmp_path)`` then rename onto ``path``: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_model(method, path: str | Path, metadata: dict[str, Any] | None = None, half: bool = False) -> Path:
    """Export the networks a method needs at inference (``method.inference_modules``) to safetensors.

    ``metadata`` (JSON-serialisable) is stored in the safetensors header under ``inpaintgan``,
    together with the method name, its config, image size and channels.
    """
    from inpaintgan.config import to_dict

    tensors: dict[str, torch.Tensor] = {}
    for name in method.inference_modules:
        for key, t in getattr(method, name).state_dict().items():
            t = t.detach().cpu()
            if half and t.is_floating_point():
                t = t.half()
            tensors[f"{name}.{key}"] = t.contiguous()
    for key, t in method.named_buffers():
        if "." not in key:  # top-level buffers (e.g. GLCIC's fill value)
            tensors[key] = t.detach().cpu().contiguous()
    meta = {
        "format": FORMAT_VERSION,
        "method": method.name,
        "config": to_dict(method.cfg),
        "image_size": method.image_size,
        "channels": method.channels,
        **(metadata or {}),
    }
    header = {"inpaintgan": json.dumps(meta)}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a model file, without loading weights."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a valid safetensors model file: {e}") from None
    if "inpaintgan" not in meta:
        raise CheckpointError(f"{path} has no inpaintgan metadata (not exported by inpaintgan?)")
    return json.loads(meta["inpaintgan"])


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """Build the method recorded in a model file and load its inference weights.

    Returns ``(method, metadata)``; the method is in eval mode, in float32, on ``device``.
    """
    from inpaintgan.config import from_dict
    from inpaintgan.registry import get_method

    meta = read_metadata(path)
    cls = get_method(meta["method"])
    cfg = from_dict(cls.Config, meta.get("config") or {}, "config")
    method = cls(cfg, image_size=int(meta["image_size"]), channels=int(meta["channels"]))
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"cannot read weights from {path}: {e}") from None
    for name in method.inference_modules:
        prefix = f"{name}."
        sub = {k[len(prefix) :]: v.float() if v.is_floating_point() else v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            getattr(method, name).load_state_dict(sub, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"weights in {path} do not fit method {meta['method']!r}: {e}") from None
    for key, t in tensors.items():
        if "." not in key and hasattr(method, key):
            getattr(method, key).copy_(t.float())
    return method.to(device).eval(), meta


def load_training_state(path: str | Path, map_location="cpu") -> dict[str, Any]:
    """Read a trainer checkpoint safely (tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # the unpickler raises many types; all mean "refused or corrupt"
        raise CheckpointError(f"cannot load checkpoint {path} (corrupt, or holds pickled objects): {e}") from None
