"""Training logs: CSV scalars (always), TensorBoard scalars (when installed), sample grids."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from inpaintgan.tensors import to_uint8


def make_grid(rows: list[Tensor], pad: int = 2, pad_value: float = 1.0) -> Tensor:
    """Columns side by side: ``rows`` is a list of (N, C, H, W) batches (e.g. [masked input, output,
    ground truth]); row i of the grid shows sample i of every batch. Returns (C, H', W') in [0, 1]."""
    n, c, h, w = rows[0].shape
    cols = len(rows)
    grid = torch.full((c, n * (h + pad) + pad, cols * (w + pad) + pad), pad_value)
    for j, batch in enumerate(rows):
        batch = batch.detach().float().cpu().clamp(0, 1)
        if batch.shape[1] != c:
            batch = batch.expand(-1, c, -1, -1)
        for i in range(n):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[:, y : y + h, x : x + w] = batch[i]
    return grid


def masked_input_view(image: Tensor, mask: Tensor) -> Tensor:
    """The image with its hole painted white, the way a person sees the task."""
    return torch.where(mask > 0.5, torch.ones_like(image), image)


def save_image(t: Tensor, path: str | Path, upscale: int = 1) -> Path:
    """(C, H, W) in [0, 1] -> PNG, optionally enlarged (nearest) so tiny images stay visible."""
    arr = to_uint8(t)  # (H, W, C)
    im = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    if upscale > 1:
        im = im.resize((im.width * upscale, im.height * upscale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path


class MetricLogger:
    """Appends scalars to ``metrics.csv`` (one row per log call; columns grow as keys appear) and to
    TensorBoard when available."""

    def __init__(self, out_dir: str | Path, tensorboard: bool = True):
        self.path = Path(out_dir) / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = []
        if self.path.exists():
            with open(self.path, newline="") as f:
                self.rows = list(csv.DictReader(f))
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(Path(out_dir) / "tb"))
            except Exception:  # tensorboard missing or broken: CSV still works
                self.tb = None

    def truncate_after(self, step: int) -> None:
        """On resume, drop rows logged after the checkpoint's step (they will be logged again)."""
        keep = [r for r in self.rows if int(float(r.get("step", 0))) <= step]
        if len(keep) != len(self.rows):
            self.rows = keep
            self._rewrite()

    def _rewrite(self) -> None:
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=keys)
            wr.writeheader()
            wr.writerows(self.rows)
        tmp.replace(self.path)

    def log(self, step: int, values: dict[str, float], prefix: str = "") -> None:
        row = {"step": step, **{f"{prefix}{k}": v for k, v in values.items() if v is not None}}
        new_keys = self.rows and any(k not in self.rows[0] for k in row)
        self.rows.append(row)
        if new_keys or not self.path.exists():
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=list(self.rows[0].keys()), extrasaction="ignore").writerow(row)
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()


def format_postfix(values: dict[str, float]) -> dict[str, str]:
    return {k.replace("loss_", ""): f"{v:.4g}" for k, v in values.items() if isinstance(v, (int, float, np.floating))}
