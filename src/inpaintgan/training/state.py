"""Training checkpoints: state_dicts + method name + resolved config + optimizer / step / data
position / RNG states (never pickled modules), written atomically, the last N kept."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import torch

from inpaintgan.checkpoints import CheckpointError, atomic_write, load_training_state

CKPT_RE = re.compile(r"^step_(\d+)\.pt$")


def checkpoint_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / "checkpoints"


def checkpoint_step(path: str | Path) -> int | None:
    """The step in a checkpoint's file name (``step_<step>.pt``), or None for other names."""
    m = CKPT_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


def list_checkpoints(out_dir: str | Path) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    d = checkpoint_dir(out_dir)
    if not d.is_dir():
        return []
    found = [(step, p) for p in d.iterdir() if (step := checkpoint_step(p)) is not None]
    return [p for _, p in sorted(found)]


def save_checkpoint(out_dir: str | Path, step: int, payload: dict[str, Any], keep_last: int = 3) -> Path:
    """Write ``step_<step>.pt`` atomically, then delete all but the newest ``keep_last``."""
    path = checkpoint_dir(out_dir) / f"step_{step:08d}.pt"
    atomic_write(path, lambda tmp: torch.save(payload, tmp))
    if keep_last > 0:
        for old in list_checkpoints(out_dir)[:-keep_last]:
            old.unlink(missing_ok=True)
    return path


def find_resume(out_dir: str | Path, resume: str) -> Path | None:
    """``resume`` = "auto" (newest loadable checkpoint of the run, or None), or a checkpoint path."""
    if resume in ("", "none", None):
        return None
    if resume != "auto":
        p = Path(resume)
        if not p.is_file():
            raise CheckpointError(f"resume checkpoint not found: {p}")
        return p
    for p in reversed(list_checkpoints(out_dir)):
        try:
            load_training_state(p)
            return p
        except CheckpointError as e:  # e.g. a file damaged on disk: fall back to the previous one
            warnings.warn(f"skipping unusable checkpoint: {e}", stacklevel=2)
            continue
    return None
