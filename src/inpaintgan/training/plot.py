"""``inpaintgan plot``: training curves of one or more runs from their ``metrics.csv``.

One panel per metric (validation metrics, logged once per validation, are drawn as points joined by
lines; training losses, logged every ``log_every`` steps, can be smoothed with a moving average), one
line per run, and the run's phase boundaries (from the run folder's ``config.yaml`` and the method's
``phases()``) as dotted vertical lines, so a jump at the start of the adversarial phase is read as
what it is.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np


def _csv_path(run: str | Path) -> Path:
    p = Path(run)
    csv_path = p / "metrics.csv" if p.is_dir() else p
    if not csv_path.is_file():
        raise FileNotFoundError(f"no metrics.csv at {run} (give a run folder or a metrics.csv file)")
    return csv_path


def read_metrics(run: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{column: (steps, values)}`` for every numeric column of a run's metrics.csv (empty cells skipped)."""
    path = _csv_path(run)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "step" not in rows[0]:
        raise ValueError(f"{path} holds no logged steps (no 'step' column or no rows)")
    out: dict[str, tuple[list[float], list[float]]] = {}
    for r in rows:
        try:
            step = float(r["step"])
        except (TypeError, ValueError):
            continue
        for k, v in r.items():
            if k == "step" or v in ("", None):
                continue
            try:
                x = float(v)
            except ValueError:
                continue
            if math.isfinite(x):
                out.setdefault(k, ([], []))
                out[k][0].append(step)
                out[k][1].append(x)
    return {k: (np.asarray(s), np.asarray(v)) for k, (s, v) in out.items()}


def phase_starts(run: str | Path) -> list[tuple[int, str]]:
    """(first step, name) of every phase after the first, from the run folder's config.yaml; [] when
    there is none or the method cannot be built from it."""
    cfg_path = _csv_path(run).parent / "config.yaml"
    if not cfg_path.is_file():
        return []
    try:
        from inpaintgan.config import load_config
        from inpaintgan.registry import get_method

        cfg = load_config(cfg_path)
        method = get_method(cfg.method)(cfg.model, image_size=cfg.data.image_size, channels=1 if cfg.data.grayscale else 3)
        starts, step = [], 0
        for ph in method.phases():
            if step:
                starts.append((step, ph.name))
            step += ph.steps
        return starts
    except Exception:  # an old or foreign config: curves without phase lines
        return []


def moving_average(v: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(v) < 2:
        return v
    w = min(window, len(v))
    c = np.cumsum(np.insert(v.astype(np.float64), 0, 0.0))
    head = c[1:w] / np.arange(1, w)  # the first points average what there is so far
    return np.concatenate([head, (c[w:] - c[:-w]) / w])


def default_metrics(curves: list[dict]) -> list[str]:
    """Every validation column, then the first training loss, in the order first seen."""
    names = list(dict.fromkeys(k for c in curves for k in c))
    val = [k for k in names if k.startswith("val/")]
    loss = [k for k in names if k.startswith("train/loss")]
    return val + loss[:1] or names[:4]


def plot_runs(runs: list[str], out: str | Path, metrics: list[str] | None = None, labels: list[str] | None = None,
              smooth: int = 1, log_y: bool = False) -> Path:  # fmt: skip
    """Draw the curves of ``runs`` into the PNG ``out`` (written atomically); returns its path."""
    if not runs:
        raise ValueError("no runs: give at least one run folder or metrics.csv")
    if labels and len(labels) != len(runs):
        raise ValueError(f"--label was given {len(labels)} time(s) for {len(runs)} run(s); give one per run or none")
    curves = [read_metrics(r) for r in runs]
    names = labels or [(_csv_path(r).parent.name if _csv_path(r).name == "metrics.csv" else Path(r).stem) for r in runs]
    metrics = metrics or default_metrics(curves)
    known = sorted({k for c in curves for k in c})
    missing = [m for m in metrics if not any(m in c for c in curves)]
    if missing:
        raise ValueError(f"unknown metric(s) {', '.join(missing)}; the runs log: {', '.join(known)}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from inpaintgan.checkpoints import atomic_write

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        marked: set[tuple[int, str]] = set()  # a boundary shared by several runs is labelled once
        for run, curve, name in zip(runs, curves, names):
            if m not in curve:
                continue
            steps, vals = curve[m]
            is_val = m.startswith("val/")
            ys = vals if is_val else moving_average(vals, smooth)
            (line,) = ax.plot(steps, ys, marker="o" if is_val and len(steps) <= 40 else None, ms=3, lw=1.3, label=name)
            for s, ph in phase_starts(run):
                if (s, ph) in marked:
                    continue
                marked.add((s, ph))
                ax.axvline(s, color="0.4", ls=":", lw=0.9)
                ax.annotate(ph, (s, 1), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right",
                            fontsize=7, color="0.3")  # fmt: skip
        ax.set_title(m + ("" if m.startswith("val/") or smooth <= 1 else f" (moving average of {smooth})"), fontsize=9)
        ax.set_xlabel("step")
        if log_y and not any(t in m.lower() for t in ("psnr", "ssim")):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path = Path(out)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def cmd_plot(args) -> int:
    path = plot_runs(args.runs, args.output, args.metric or None, args.label or None, args.smooth, args.log)
    print(f"wrote {path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "plot",
        help="plot training curves of runs (metrics.csv) into a PNG",
        description="Plot the training curves of one or more runs from their metrics.csv: one panel per metric "
        "(default: every validation metric and the first training loss), one line per run, phase boundaries as "
        "dotted lines (from the run folder's config.yaml).",
    )
    p.add_argument("runs", nargs="+", help="run folders (or metrics.csv files)")
    p.add_argument("-o", "--output", default="curves.png", help="PNG to write (default: curves.png)")
    p.add_argument("--metric", action="append", default=[], help="a metrics.csv column, repeatable (e.g. val/psnr)")
    p.add_argument("--label", action="append", default=[], help="a legend name per run, in order (default: folder names)")
    p.add_argument("--smooth", type=int, default=1, help="moving-average window for training losses (default: 1 = raw)")
    p.add_argument("--log", action="store_true", help="logarithmic y axes for losses and errors (not PSNR / SSIM)")
    p.set_defaults(func=cmd_plot)
