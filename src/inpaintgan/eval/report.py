"""Figures of an evaluation: a comparison grid (input | each model | ground truth, one row per image)
drawn with Pillow, and PSNR / SSIM against hole ratio drawn with matplotlib's Agg backend (as in
the partial-convolution paper's per-bucket comparison, Liu et al. 2018, Table 1)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HOLE_COLOUR = (255, 255, 255)


def masked_input(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 (H, W, C) with the hole painted white, as papers show inputs."""
    out = image.copy()
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    out[mask > 0.5] = HOLE_COLOUR
    return out


def comparison_figure(
    rows: list[list[np.ndarray]], headers: list[str], path: str | Path, scale: int = 0, pad: int = 4
) -> Path:
    """Save a grid: ``rows[r][c]`` uint8 (H, W, C) images, ``headers[c]`` column titles.

    Small images are enlarged (nearest) to at least 96 px so a 32x32 comparison stays readable.
    """
    if not rows:
        raise ValueError("comparison figure needs at least one row")
    h, w = rows[0][0].shape[:2]
    scale = scale or max(1, math.ceil(96 / max(h, w)))
    cell_h, cell_w = h * scale, w * scale
    title_h = 16
    col_w = max(cell_w, 8 * max(len(t) for t in headers) // 1)
    width = len(headers) * (col_w + pad) + pad
    height = title_h + len(rows) * (cell_h + pad) + pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(headers):
        draw.text((pad + c * (col_w + pad), 2), title, fill=(0, 0, 0))
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            if img.shape[2] == 1:
                img = np.repeat(img, 3, axis=2)
            tile = Image.fromarray(img).resize((cell_w, cell_h), Image.NEAREST)
            canvas.paste(tile, (pad + c * (col_w + pad), title_h + pad + r * (cell_h + pad)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def ratio_plot(table: list[dict], path: str | Path, metrics: tuple[str, ...] = ("psnr", "ssim")) -> Path:
    """PSNR and SSIM (whole image) per model against the mean hole ratio of each bucket."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6))
    axes = np.atleast_1d(axes)
    models = list(dict.fromkeys(e["model"] for e in table))
    for ax, m in zip(axes, metrics):
        for model in models:
            pts = sorted((e["hole_ratio"], e[m]) for e in table if e["model"] == model and e["bucket"] != "all")
            if pts:
                xs, ys = zip(*pts)
                ax.plot(np.array(xs) * 100, ys, marker="o", label=model)
        ax.set_xlabel("hole ratio (%)")
        ax.set_ylabel(m.upper())
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
