"""The DeepFill v1 project report's experiments (issue #6; Yu et al. 2018, "Generative Image Inpainting
with Contextual Attention"), run with any trained models and the classical baselines on held-out
images: contextual attention against the same network without it (``deepfill`` with
``attention: false``, the paper's baseline coarse-to-fine network), and anything else that inpaints
through the :class:`~inpaintgan.Inpainter` API (``--model NAME=PATH``, a zoo name, or a baseline name
``telea`` / ``ns`` / ``patchmatch`` / ``mean``).

Images: the first ``-n`` files under ``--data`` (recursive, sorted), centre-cropped to a square and
resized to ``--size`` (``inpaintgan eval``'s preparation). Metrics (:func:`inpaintgan.metrics.compute_all`,
as ``inpaintgan eval``): hole L1, hole L2 (MSE), hole PSNR, hole SSIM, and TV (total variation of the
whole output, DeepFill's Table 1 column).

- ``growth``: a square hole at a fixed place, the centre of the image, whose side grows through
  ``--fractions`` of the image side (default 0.1 ... 0.6).
- ``texture``: quality by the texture around the hole. Square holes of side ``--hole-fraction`` x
  size are placed on a grid (stride ``--stride``, whose phase is drawn per image from the seed); each
  position's *ring* (the known pixels in a band of ``--ring`` px around the hole) is scored by its
  **gradient energy**: the mean Sobel gradient magnitude (intensity per pixel) of the luma image
  after a Gaussian blur of sigma 1 (so pixel noise and fine grain count less than object edges).
  Thresholds are percentiles of the scores of all candidates of all images (``--percentiles``,
  default 25 and 75): a ring at or below the low one is ``uniform`` (sky, sea, bare rock), at or
  above the high one (and above the low one) ``junction`` (edges and junctions of objects). Per
  image the lowest-scoring position is kept as a ``uniform`` example and the highest-scoring one as
  a ``junction`` example, each only if it passes its threshold. The ring's Canny edge density
  (OpenCV, thresholds 50/150 on the 8-bit blurred luma) is recorded beside the score.
- ``replicated``: the image the hole's exact content exists elsewhere in. The prepared S x S image
  is placed twice side by side (an S x 2S image, no resizing, so the content keeps the scale the
  models were trained at; fully convolutional networks run on it whole, the others through the
  Inpainter's resize strategy); the hole (side ``--hole-fraction`` x S, seeded position inside one
  copy, seeded choice of copy) lies in one copy only, the other copy holds its content intact. The
  same hole on the original S x S image is scored as the reference (``original``). For models with
  contextual attention the figure shows the attention as the paper's colour-coded flow, and the
  table its *hit rate*: the fraction of hole pixels whose most attended background position is the
  same place in the other copy (offset (0, +-S), within one attention cell of 4 x rate px).

Run ``python -m inpaintgan.experiments.deepfill_report --help`` for the options and outputs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from inpaintgan.experiments.common import (
    Model,
    ReportError,
    batches,
    best_values,
    bold_cells,
    csv_text,
    fmt_value,
    json_num,
    load_models,
    machine,
    masked,
    md_head,
    portable_path,
    pyplot,
    run_cli,
    save_grid,
    save_plot,
    u8,
    write_text,
)
from inpaintgan.experiments.common import command_line as common_command_line
from inpaintgan.experiments.common import load_folder_images as load_images

PROG = "python -m inpaintgan.experiments.deepfill_report"
EXPERIMENTS = ("growth", "texture", "replicated")
DEFAULT_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
#: per-image metrics from :func:`inpaintgan.metrics.compute_all` (hole pixels only, except TV)
METRICS = ("l1_hole", "l2_hole", "psnr_hole", "ssim_hole", "tv")
UNIFORM, JUNCTION = "uniform", "junction"
REPLICATED, ORIGINAL = "replicated", "original"
BLUR_SIGMA = 1.0
CANNY_THRESHOLDS = (50, 150)
_LUMA = (0.299, 0.587, 0.114)

PER_IMAGE_COLUMNS = ["experiment", "setting", "model", "index", "file", "hole_top", "hole_left", "hole_side",
                     "copy", "ring_score", "edge_density", *METRICS, "attention_hit"]  # fmt: skip
TABLE_COLUMNS = ["experiment", "setting", "model", "count", "hole_fraction", "hole_side", *METRICS,
                 "psnr_gain", "attention_hit", "ring_score", "edge_density"]  # fmt: skip


# ------------------------------------------------------------------------------------- arguments


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "DeepFill v1 (Yu et al. 2018) project-report experiments with any trained models: contextual\n"
            "attention vs the same network without it, and any other model or baseline.\n\n"
            "  growth      a centred square hole whose side grows through --fractions of the image side\n"
            "  texture     holes whose surrounding ring is the most uniform / most structured of each\n"
            "              image (ring gradient energy: mean Sobel magnitude after a sigma-1 blur;\n"
            "              'uniform' <= the low percentile of all candidates, 'junction' >= the high one)\n"
            "  replicated  the image twice side by side (S x 2S), the hole in one copy: its exact content\n"
            "              exists in the other; the same hole on the original image is the reference;\n"
            "              models with contextual attention also show the attention map and hit rate\n\n"
            "Metrics (as 'inpaintgan eval'): hole L1, hole L2 (MSE), hole PSNR, hole SSIM, TV (whole output).\n\n"
            "Outputs in --out (each written to a temporary file, then renamed):\n"
            "  per_image.csv        one row per experiment x setting x model x image\n"
            "  results.csv / .md    means per experiment x setting x model (Markdown: one section per experiment)\n"
            "  results.json         settings (command line, portable paths), models, thresholds, machine,\n"
            "                       timing, the tables\n"
            "  growth_plot.png      hole PSNR and L1 against the hole side, one line per model\n"
            "  growth_strip.png     one image (--figure-image) at every hole size: input | models | original\n"
            "  texture_uniform.png, texture_junction.png   examples: input (ring outlined) | models | original\n"
            "  replicated.png       input | models | attention maps (attention models) | original\n\n"
            "Deterministic: the same arguments give the same files, but for timings in results.json."
        ),
        epilog=(
            "example:\n"
            f"  {PROG} --model deepfill=deepfill.safetensors \\\n"
            "    --model no-attention=deepfill_noatt.safetensors --model telea --model patchmatch \\\n"
            "    --data data/photos/test --size 128 -n 64 --out docs/eval/deepfill_report"
        ),
    )
    g = p.add_argument_group("models and data")
    g.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                   help="a model file (.safetensors / trainer .pt), a zoo name or a baseline (telea, ns, patchmatch, mean), "
                   "reported as NAME (without 'NAME=': the file stem or the name); repeatable, at least one")  # fmt: skip
    g.add_argument("--data", required=True, metavar="DIR", help="folder of held-out images (recursive)")
    g.add_argument("--size", type=int, default=128, help="working size: centre square crop resized to SIZE (default: 128)")
    g.add_argument("-n", "--n", type=int, default=64, help="the first N images, sorted by path (default: 64)")
    g.add_argument("--experiments", nargs="+", choices=EXPERIMENTS, default=list(EXPERIMENTS), metavar="E",
                   help=f"which experiments ({', '.join(EXPERIMENTS)}; default: all)")  # fmt: skip
    g.add_argument("--seed", type=int, default=0,
                   help="seed of the texture grid phase and the replicated hole's place and copy (default: 0)")  # fmt: skip

    g = p.add_argument_group("holes")
    g.add_argument("--fractions", nargs="+", type=float, default=list(DEFAULT_FRACTIONS), metavar="F",
                   help="growth: hole sides as fractions of the image side, each in (0, 1) (default: 0.1 ... 0.6)")  # fmt: skip
    g.add_argument("--hole-fraction", type=float, default=0.25, metavar="F",
                   help="texture and replicated: hole side / image side, in (0, 1) (default: 0.25)")  # fmt: skip
    g.add_argument("--ring", type=int, default=0, metavar="PX",
                   help="texture: width of the scored ring around the hole (default 0: max(2, side / 4))")  # fmt: skip
    g.add_argument("--stride", type=int, default=0, metavar="PX",
                   help="texture: stride of the candidate grid (default 0: max(1, side / 4))")  # fmt: skip
    g.add_argument("--percentiles", nargs=2, type=float, default=[25.0, 75.0], metavar=("LOW", "HIGH"),
                   help="texture: 'uniform' at or below the LOW percentile of all candidates' ring scores, "
                   "'junction' at or above the HIGH one (default: 25 75)")  # fmt: skip

    g = p.add_argument_group("run and outputs")
    g.add_argument("--out", required=True, metavar="DIR", help="output folder (created; files in it are replaced)")
    g.add_argument("--batch-size", type=int, default=16, metavar="N", help="images per model call (default: 16)")
    g.add_argument("--threads", type=int, default=1, metavar="N", help="torch CPU threads (default: 1)")
    g.add_argument("--figure-rows", type=int, default=4, metavar="N",
                   help="examples per texture category and replicated images in the figures (default: 4; 0: no figures)")  # fmt: skip
    g.add_argument("--figure-image", type=int, default=0, metavar="I",
                   help="growth: the image shown at every hole size (default: 0)")  # fmt: skip
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def command_line(argv: list[str]) -> str:
    return common_command_line(argv, PROG)


def hole_side(fraction: float, size: int, what: str = "hole fraction") -> int:
    """Side in pixels of a square hole that is ``fraction`` of the image side; ReportError unless the
    fraction is in (0, 1) and the hole has at least one pixel and leaves some known pixels."""
    if not (isinstance(fraction, (int, float)) and math.isfinite(fraction) and 0 < fraction < 1):
        raise ReportError(f"{what} {fraction!r} is not in (0, 1) (a fraction of the image side)")
    side = int(round(fraction * size))
    if not 1 <= side < size:
        raise ReportError(f"{what} {fraction:g} gives a {side} px hole at --size {size}; choose a fraction in (0, 1) "
                          "that leaves at least one pixel of hole and of context")  # fmt: skip
    return side


# ----------------------------------------------------------------------------------------- inputs


def run_model(model: Model, images: Tensor, masks: Tensor) -> Tensor:
    """The model's composited output (N, C, H, W) on the CPU, in float."""
    with torch.no_grad():
        y = model.fn(images, masks)
    if not isinstance(y, Tensor):
        raise ReportError(f"model {model.label!r} returned {type(y).__name__}, expected a tensor")
    y = y.detach().float().cpu()
    if y.shape != images.shape:
        raise ReportError(f"model {model.label!r} returned shape {tuple(y.shape)}, expected {tuple(images.shape)}")
    return y


def square_masks(n: int, h: int, w: int, boxes: list[tuple[int, int, int]]) -> Tensor:
    """(n, 1, h, w) masks, 1 = hole, one square ``(top, left, side)`` per image."""
    m = torch.zeros(n, 1, h, w)
    for i, (top, left, side) in enumerate(boxes):
        m[i, :, top : top + side, left : left + side] = 1
    return m


# ------------------------------------------------------------------------------------------ texture


def luma(image: Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> float32 (H, W) luma (ITU-R BT.601; one channel: itself)."""
    x = image.detach().float().cpu()
    if x.shape[0] >= 3:
        x = _LUMA[0] * x[0] + _LUMA[1] * x[1] + _LUMA[2] * x[2]
    else:
        x = x[0]
    return np.ascontiguousarray(x.numpy(), dtype=np.float32)


def gradient_energy(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gradient magnitude, Canny edges) of a float (H, W) image in [0, 1]: the Sobel magnitude
    (3x3, divided by 8: intensity per pixel) after a Gaussian blur of sigma ``BLUR_SIGMA``, and
    OpenCV's Canny edges (``CANNY_THRESHOLDS``, L2 gradient) of the same blurred image in 8 bits, as
    float 0/1."""
    blur = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), BLUR_SIGMA, borderType=cv2.BORDER_REFLECT)
    gx = cv2.Sobel(blur, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(blur, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    mag = np.sqrt(gx * gx + gy * gy) / 8.0
    u8 = np.clip(np.rint(blur * 255), 0, 255).astype(np.uint8)
    edges = (cv2.Canny(u8, *CANNY_THRESHOLDS, L2gradient=True) > 0).astype(np.float32)
    return mag, edges


def _integral(a: np.ndarray) -> np.ndarray:
    ii = np.zeros((a.shape[0] + 1, a.shape[1] + 1), np.float64)
    ii[1:, 1:] = a.astype(np.float64).cumsum(0).cumsum(1)
    return ii


def _box_sum(ii: np.ndarray, top: np.ndarray, left: np.ndarray, side: int) -> np.ndarray:
    return ii[top + side, left + side] - ii[top, left + side] - ii[top + side, left] + ii[top, left]


def ring_means(maps: list[np.ndarray], tops: np.ndarray, lefts: np.ndarray, side: int, ring: int) -> list[np.ndarray]:
    """Mean of each map over the ring of width ``ring`` around each square hole (top, left, side)."""
    area = (side + 2 * ring) ** 2 - side * side
    out = []
    for a in maps:
        ii = _integral(a)
        outer = _box_sum(ii, tops - ring, lefts - ring, side + 2 * ring)
        out.append((outer - _box_sum(ii, tops, lefts, side)) / area)
    return out


def texture_candidates(gray: np.ndarray, side: int, ring: int, stride: int, phase: tuple[int, int] = (0, 0)) -> dict[str, np.ndarray]:
    """Candidate holes on a grid (the hole and its ring inside the image; grid shifted by ``phase``):
    arrays ``top``, ``left``, ``score`` (ring gradient energy), ``edge_density`` (ring Canny density)."""
    h, w = gray.shape
    if side + 2 * ring > min(h, w):
        raise ReportError(f"a {side} px hole with a {ring} px ring does not fit a {w}x{h} image")
    ys = np.arange(ring + phase[0] % stride, h - side - ring + 1, stride)
    xs = np.arange(ring + phase[1] % stride, w - side - ring + 1, stride)
    if len(ys) == 0:
        ys = np.array([ring])
    if len(xs) == 0:
        xs = np.array([ring])
    tops, lefts = (a.ravel() for a in np.meshgrid(ys, xs, indexing="ij"))  # raster order
    mag, edges = gradient_energy(gray)
    score, density = ring_means([mag, edges], tops, lefts, side, ring)
    return {"top": tops, "left": lefts, "score": score, "edge_density": density}


def classify(score: float, low: float, high: float) -> str:
    """``uniform`` at or below the low threshold, ``junction`` at or above the high one (and strictly
    above the low one, so a featureless set never yields a junction), else ``neither``."""
    if score <= low:
        return UNIFORM
    if score >= high and score > low:
        return JUNCTION
    return "neither"


def pick_texture_holes(grays: list[np.ndarray], side: int, ring: int, stride: int, percentiles: tuple[float, float],
                       seed: int = 0) -> tuple[list[dict], dict]:  # fmt: skip
    """Per image, the most uniform and the most structured candidate position, kept if they pass the
    thresholds (percentiles of all candidates' scores). Returns (picks, info): picks are dicts with
    index, category, top, left, score, edge_density (images in order, uniform before junction);
    info holds the thresholds and candidate counts."""
    cands = []
    for i, g in enumerate(grays):
        rng = np.random.default_rng([seed, 1, i])
        phase = (int(rng.integers(0, stride)), int(rng.integers(0, stride)))
        cands.append(texture_candidates(g, side, ring, stride, phase))
    scores = np.concatenate([c["score"] for c in cands])
    low, high = (float(v) for v in np.percentile(scores, percentiles))
    picks = []
    for i, c in enumerate(cands):
        lo_j, hi_j = int(np.argmin(c["score"])), int(np.argmax(c["score"]))
        for j, want in ((lo_j, UNIFORM), (hi_j, JUNCTION)):
            if classify(float(c["score"][j]), low, high) == want and not (want == JUNCTION and j == lo_j):
                picks.append({"index": i, "category": want, "top": int(c["top"][j]), "left": int(c["left"][j]),
                              "score": float(c["score"][j]), "edge_density": float(c["edge_density"][j])})  # fmt: skip
    info = {
        "score": "mean Sobel gradient magnitude (intensity / px) over the ring, luma blurred with sigma 1",
        "percentiles": list(percentiles),
        "uniform_max": low,
        "junction_min": high,
        "candidates": int(scores.size),
        "picked": {k: sum(p["category"] == k for p in picks) for k in (UNIFORM, JUNCTION)},
    }
    return picks, info


# --------------------------------------------------------------------------------------- replicated


def replicate(images: Tensor, side: int, seed: int = 0) -> tuple[Tensor, Tensor, Tensor, list[dict]]:
    """Each (C, S, S) image twice side by side -> (n, C, S, 2S), with a square hole of ``side`` px in
    one copy (seeded copy and position, a margin of S/16 from the copy's edges where it fits).
    Returns (replicated images, their masks (n, 1, S, 2S), the same holes on the originals (n, 1, S, S),
    boxes: dicts with copy (0 left, 1 right), top, left (in the copy))."""
    n, _, s, s2 = images.shape
    if s != s2:
        raise ValueError(f"replicate expects square images, got {s}x{s2}")
    margin = max(1, s // 16)
    lo, hi = margin, s - side - margin
    if hi < lo:
        lo = hi = (s - side) // 2
    boxes = []
    for i in range(n):
        rng = np.random.default_rng([seed, 2, i])
        copy = int(rng.integers(0, 2))
        top, left = (int(rng.integers(lo, hi + 1)) for _ in range(2))
        boxes.append({"copy": copy, "top": top, "left": left})
    rep = torch.cat([images, images], dim=-1)
    rep_masks = square_masks(n, s, 2 * s, [(b["top"], b["left"] + b["copy"] * s, side) for b in boxes])
    orig_masks = square_masks(n, s, s, [(b["top"], b["left"], side) for b in boxes])
    return rep, rep_masks, orig_masks, boxes


@torch.no_grad()
def attention_maps(method, images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor | None]:
    """(colour-coded attention (N, 3, H, W) in [0, 1], flow (N, 2, H, W) in pixels or None) of a model
    with contextual attention; the flow (for the hit rate) where the method exposes DeepFill's
    ``run_generator`` and ``cfg.rate``. The method runs in eval mode, at the images' own size."""
    from inpaintgan.nn.contextual_attention import attention_to_flow, flow_to_color

    dev = next(iter(method.parameters())).device
    x, m = _to_channels(images, int(getattr(method, "channels", images.shape[1]))).to(dev), masks.to(dev)
    was_training = method.training
    method.eval()
    try:
        rate = getattr(getattr(method, "cfg", None), "rate", None)
        if callable(getattr(method, "run_generator", None)) and rate:
            att = method.run_generator(x, m)[4]
            flow = attention_to_flow(att, cell=4 * int(rate), out_size=tuple(x.shape[-2:])).cpu()
            color = torch.from_numpy(flow_to_color(flow)).permute(0, 3, 1, 2).float() / 255
            return color, flow
        return method.inpaint_with_attention(x, m)[1].float().cpu(), None
    finally:
        method.train(was_training)


def _to_channels(x: Tensor, c: int) -> Tensor:
    if x.shape[1] == c:
        return x
    if c == 1:
        w = torch.tensor(_LUMA, dtype=x.dtype).view(1, 3, 1, 1)
        return (x[:, :3] * w).sum(1, keepdim=True)
    return x[:, :1].expand(-1, c, -1, -1)


def attention_hit(flow: Tensor, masks: Tensor, boxes: list[dict], shift: int, tol: float) -> list[float]:
    """Per image: the fraction of hole pixels whose flow points at the same place in the other copy,
    offset (0, +shift) from the left copy or (0, -shift) from the right one, within ``tol`` px."""
    out = []
    for i, b in enumerate(boxes):
        hole = masks[i, 0] > 0.5
        dy, dx = flow[i, 0][hole], flow[i, 1][hole]
        target = shift if b["copy"] == 0 else -shift
        ok = (dy.abs() <= tol) & ((dx - target).abs() <= tol)
        out.append(float(ok.float().mean()) if hole.any() else math.nan)
    return out


# -------------------------------------------------------------------------------------- aggregation


def summarize(rows: list[dict], labels: list[str]) -> list[dict]:
    """Means per (experiment, setting, model), in the order rows were produced (settings) and of
    ``labels``; replicated rows get ``psnr_gain`` = replicated - original hole PSNR."""
    keys = list(dict.fromkeys((r["experiment"], r["setting"]) for r in rows))
    table = []
    for exp, setting in keys:
        for label in labels:
            sel = [r for r in rows if r["experiment"] == exp and r["setting"] == setting and r["model"] == label]
            if not sel:
                continue
            e: dict[str, Any] = {"experiment": exp, "setting": setting, "model": label, "count": len(sel)}
            e["hole_fraction"] = sel[0].get("hole_fraction")
            e["hole_side"] = sel[0]["hole_side"]
            for name in (*METRICS, "attention_hit", "ring_score", "edge_density"):
                vals = [float(r[name]) for r in sel if r.get(name) is not None and not math.isnan(float(r[name]))]
                e[name] = float(np.mean(vals)) if vals else None
            e["psnr_gain"] = None
            table.append(e)
    for e in table:
        if e["experiment"] == "replicated" and e["setting"] == REPLICATED:
            ref = next((o for o in table if o["experiment"] == "replicated" and o["setting"] == ORIGINAL
                        and o["model"] == e["model"]), None)  # fmt: skip
            if ref is not None:
                e["psnr_gain"] = e["psnr_hole"] - ref["psnr_hole"]
    return table


#: Markdown columns: key, header, format, better (None: not ranked)
MD_COLUMNS = [
    ("l1_hole", "L1 hole ↓", "{:.4f}", min),
    ("l2_hole", "L2 hole ↓", "{:.5f}", min),
    ("psnr_hole", "PSNR hole ↑", "{:.2f}", max),
    ("ssim_hole", "SSIM hole ↑", "{:.4f}", max),
    ("tv", "TV", "{:.4f}", None),
]
EXTRA_MD = {
    "texture": [("ring_score", "ring score", "{:.4f}", None), ("edge_density", "edge density", "{:.3f}", None)],
    "replicated": [("psnr_gain", "PSNR gain ↑", "{:+.2f}", max), ("attention_hit", "attention hit ↑", "{:.3f}", max)],
}
SETTING_HEAD = {"growth": "hole side", "texture": "ring", "replicated": "image"}


def markdown_table(entries: list[dict], exp: str) -> list[str]:
    cols = MD_COLUMNS + EXTRA_MD.get(exp, [])
    heads = [SETTING_HEAD[exp], "model", "n", *(c[1] for c in cols)]
    lines = md_head(heads)
    for setting in dict.fromkeys(e["setting"] for e in entries):
        group = [e for e in entries if e["setting"] == setting]
        best = best_values(group, cols)
        for e in group:
            name = setting
            if exp == "growth":
                name = f"{float(e['hole_fraction']):.0%} ({e['hole_side']} px)"
            cells = [name, e["model"], str(e["count"]), *bold_cells(e, cols, best)]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def growth_pivot(entries: list[dict], labels: list[str]) -> list[str]:
    """Hole PSNR, one row per model, one column per hole size."""
    settings = list(dict.fromkeys(e["setting"] for e in entries))
    sides = {e["setting"]: f"{float(e['hole_fraction']):.0%}" for e in entries}
    lines = ["| hole PSNR (dB) | " + " | ".join(sides[s] for s in settings) + " |",
             "|---|" + "---:|" * len(settings)]  # fmt: skip
    for label in labels:
        vals = {e["setting"]: e["psnr_hole"] for e in entries if e["model"] == label}
        if vals:
            lines.append(f"| {label} | " + " | ".join(fmt_value(vals.get(s), "{:.2f}") for s in settings) + " |")
    return lines


# ------------------------------------------------------------------------------------------ figures


def _outline(arr: np.ndarray, top: int, left: int, side: int, ring: int, colour=(255, 0, 0)) -> np.ndarray:
    """Draw the outer border of the scored ring (1 px) on a uint8 (H, W, 3) image."""
    out = arr.copy()
    y0, x0, y1, x1 = top - ring, left - ring, top + side + ring - 1, left + side + ring - 1
    out[y0, x0 : x1 + 1] = out[y1, x0 : x1 + 1] = colour
    out[y0 : y1 + 1, x0] = out[y0 : y1 + 1, x1] = colour
    return out


def growth_plot(path: Path, table: list[dict], labels: list[str]) -> Path:
    plt = pyplot()
    entries = [e for e in table if e["experiment"] == "growth"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, name in zip(axes, ("psnr_hole", "l1_hole"), ("hole PSNR (dB)", "hole L1")):
        for label in labels:
            pts = sorted((float(e["hole_fraction"]), e[key]) for e in entries if e["model"] == label)
            if pts:
                xs, ys = zip(*pts)
                ax.plot(np.array(xs) * 100, ys, marker="o", label=label)
        ax.set_xlabel("hole side (% of the image side), centred")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Quality as the hole grows")
    fig.tight_layout()
    return save_plot(fig, path, dpi=110)


# ------------------------------------------------------------------------------------------- runner


@dataclass
class Report:
    """What a run produced (also written to ``out_dir``)."""

    out_dir: Path
    rows: list[dict]
    table: list[dict]
    results: dict
    figures: dict[str, list[str] | None]  # file name -> its column headers (None: a plot)


def _check_args(args: argparse.Namespace) -> None:
    for name, lo in (("n", 1), ("batch_size", 1), ("threads", 1), ("figure_rows", 0), ("figure_image", 0),
                     ("ring", 0), ("stride", 0), ("size", 16)):  # fmt: skip
        if getattr(args, name) < lo:
            raise ReportError(f"--{name.replace('_', '-')} must be >= {lo}, got {getattr(args, name)}")
    lo, hi = args.percentiles
    if not 0 <= lo < hi <= 100:
        raise ReportError(f"--percentiles needs 0 <= LOW < HIGH <= 100, got {lo:g} {hi:g}")
    if not args.fractions:
        raise ReportError("--fractions needs at least one value")
    for f in args.fractions:
        hole_side(f, args.size, "--fractions: hole fraction")
    hole_side(args.hole_fraction, args.size, "--hole-fraction")


def _rows_for(exp: str, setting: str, label: str, idx: list[int], files: list[str], scored: dict[str, Tensor],
              boxes: list[tuple[int, int, int]], extra: list[dict] | None = None, fraction: float | None = None) -> list[dict]:  # fmt: skip
    rows = []
    for j, i in enumerate(idx):
        top, left, side = boxes[j]
        r = {"experiment": exp, "setting": setting, "model": label, "index": i, "file": files[i], "hole_top": top,
             "hole_left": left, "hole_side": side, "hole_fraction": fraction, "copy": None, "ring_score": None,
             "edge_density": None, "attention_hit": None}  # fmt: skip
        r.update({m: float(scored[m][j]) for m in METRICS})
        if extra is not None:
            r.update(extra[j])
        rows.append(r)
    return rows


@dataclass
class Run:
    """One run's inputs and settings (:func:`build_run`) and what its experiments add as they go."""

    args: argparse.Namespace
    models: list[Model]
    images: Tensor  # (n, 3, S, S) in [0, 1]
    files: list[str]
    experiments: list[str]
    side: int  # texture and replicated: the hole's side in px
    ring: int
    stride: int
    out_dir: Path
    k_fig: int  # examples per figure
    rows: list[dict] = field(default_factory=list)  # per_image.csv
    figures: dict[str, list[str] | None] = field(default_factory=dict)  # file -> column headers (None: a plot)
    timing: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # experiment -> model -> totals
    picks: list[dict] = field(default_factory=list)  # texture: the chosen holes
    tex_info: dict = field(default_factory=dict)  # texture: thresholds and counts

    @property
    def labels(self) -> list[str]:
        return [m.label for m in self.models]

    @property
    def batches(self) -> list[list[int]]:
        return batches(self.images.shape[0], self.args.batch_size)

    def timed(self, exp: str, model: Model, x: Tensor, m: Tensor) -> Tensor:
        """:func:`run_model`, its wall-clock time added to ``timing[exp][model]``."""
        t0 = time.perf_counter()
        y = run_model(model, x, m)
        t = self.timing.setdefault(exp, {}).setdefault(model.label, {"seconds": 0.0, "images": 0})
        t["seconds"] += time.perf_counter() - t0
        t["images"] += x.shape[0]
        return y


def build_run(args: argparse.Namespace) -> Run:
    """Check the arguments, load the models and the images, and derive the hole, ring and grid sizes."""
    _check_args(args)
    torch.set_num_threads(int(args.threads))
    models = load_models(args.model)
    images, files = load_images(args.data, args.n, args.size)
    n, size = images.shape[0], args.size
    if args.figure_image >= n:
        raise ReportError(f"--figure-image {args.figure_image} is past the {n} image(s) loaded")
    experiments = list(dict.fromkeys(args.experiments))
    side = hole_side(args.hole_fraction, size, "--hole-fraction")
    ring = args.ring or max(2, side // 4)
    stride = args.stride or max(1, side // 4)
    if "texture" in experiments and side + 2 * ring > size:
        raise ReportError(f"texture: a {side} px hole with a {ring} px ring does not fit {size} px images "
                          "(smaller --hole-fraction or --ring)")  # fmt: skip
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    return Run(args, models, images, files, experiments, side, ring, stride, out_dir, min(args.figure_rows, n))


def run_growth(run: Run, bar) -> None:
    """A centred square hole through every ``--fractions``; the strip of ``--figure-image``."""
    from inpaintgan import metrics as M

    args, images, size, labels = run.args, run.images, run.args.size, run.labels
    strip: list[list[np.ndarray]] = []
    fi = args.figure_image
    for frac in args.fractions:
        s = hole_side(frac, size)
        top = left = (size - s) // 2
        setting = f"{frac:g}"
        fig_row: dict[str, np.ndarray] = {}
        for idx in run.batches:
            x = images[idx]
            m = square_masks(len(idx), size, size, [(top, left, s)] * len(idx))
            for model in run.models:
                y = run.timed("growth", model, x, m)
                scored = M.compute_all(y, x, m)
                run.rows += _rows_for("growth", setting, model.label, idx, run.files, scored, [(top, left, s)] * len(idx),
                                      fraction=float(frac))  # fmt: skip
                if fi in idx:
                    fig_row[model.label] = u8(y[idx.index(fi)])
                    fig_row["input"] = masked(x[idx.index(fi)], m[idx.index(fi)])
            bar.update(1)
        strip.append([fig_row["input"], *(fig_row[label] for label in labels), u8(images[fi])])
    if run.k_fig > 0:
        run.figures["growth_strip.png"] = heads = ["input", *labels, "original"]
        save_grid(run.out_dir / "growth_strip.png", strip, heads)


def run_texture(run: Run, bar) -> None:
    """The picked uniform / junction holes (:func:`pick_texture_holes`); their example figures."""
    from inpaintgan import metrics as M

    size, side, labels, rows = run.args.size, run.side, run.labels, run.rows
    fig_rows: dict[str, list[list[np.ndarray]]] = {UNIFORM: [], JUNCTION: []}
    for pidx in batches(len(run.picks), run.args.batch_size):
        ps = [run.picks[j] for j in pidx]
        idx = [p["index"] for p in ps]
        boxes = [(p["top"], p["left"], side) for p in ps]
        x = run.images[idx]
        m = square_masks(len(idx), size, size, boxes)
        outs = {}
        for model in run.models:
            outs[model.label] = y = run.timed("texture", model, x, m)
            scored = M.compute_all(y, x, m)
            for p, r in zip(ps, _rows_for("texture", "", model.label, idx, run.files, scored, boxes, fraction=run.args.hole_fraction)):
                r.update(setting=p["category"], ring_score=p["score"], edge_density=p["edge_density"])
                rows.append(r)
        for j, p in enumerate(ps):
            if len(fig_rows[p["category"]]) < run.k_fig:
                inp = _outline(masked(x[j], m[j]), p["top"], p["left"], side, run.ring)
                fig_rows[p["category"]].append([inp, *(u8(outs[label][j]) for label in labels), u8(x[j])])
        bar.update(1)
    # table order: uniform first
    tex = [r for r in rows if r["experiment"] == "texture"]
    rows[:] = [r for r in rows if r["experiment"] != "texture"] + sorted(tex, key=lambda r: r["setting"] != UNIFORM)
    for cat, fr in fig_rows.items():
        if fr:
            run.figures[f"texture_{cat}.png"] = heads = ["input + ring", *labels, "original"]
            save_grid(run.out_dir / f"texture_{cat}.png", fr, heads)


def run_replicated(run: Run, bar) -> None:
    """The image twice side by side with the hole in one copy, and the same hole on the original;
    attention maps and hit rates of the attention models; the figure."""
    from inpaintgan import metrics as M

    size, side, labels = run.args.size, run.side, run.labels
    rep, rep_masks, orig_masks, rboxes = replicate(run.images, side, run.args.seed)
    att_models = [mo for mo in run.models if mo.has_attention]
    fig_rep: list[list[np.ndarray]] = []
    for setting, xs, ms in ((REPLICATED, rep, rep_masks), (ORIGINAL, run.images, orig_masks)):
        for idx in run.batches:
            x, m = xs[idx], ms[idx]
            bxs = [(rboxes[i]["top"], rboxes[i]["left"] + (size * rboxes[i]["copy"] if setting == REPLICATED else 0), side)
                   for i in idx]  # fmt: skip
            outs, colors = {}, {}
            for model in run.models:
                outs[model.label] = y = run.timed(f"replicated/{setting}", model, x, m)
                scored = M.compute_all(y, x, m)
                extra = [{"copy": rboxes[i]["copy"]} for i in idx]
                if setting == REPLICATED and model.has_attention:
                    colors[model.label], flow = attention_maps(model.method, x, m)
                    if flow is not None:
                        tol = 4 * int(model.method.cfg.rate)
                        for e, hit in zip(extra, attention_hit(flow, m, [rboxes[i] for i in idx], size, tol)):
                            e["attention_hit"] = hit
                run.rows += _rows_for("replicated", setting, model.label, idx, run.files, scored, bxs, extra,
                                      fraction=run.args.hole_fraction)  # fmt: skip
            if setting == REPLICATED:
                for j, i in enumerate(idx):
                    if i < run.k_fig:
                        fig_rep.append([masked(x[j], m[j]), *(u8(outs[label][j]) for label in labels),
                                        *(u8(colors[mo.label][j]) for mo in att_models), u8(x[j])])  # fmt: skip
            bar.update(1)
    if fig_rep:
        heads = ["input", *labels, *(f"{mo.label}: attention" for mo in att_models), "original"]
        save_grid(run.out_dir / "replicated.png", fig_rep, heads)
        run.figures["replicated.png"] = heads


RUNNERS = {"growth": run_growth, "texture": run_texture, "replicated": run_replicated}


def run_experiments(run: Run) -> float:
    """The chosen experiments in order (texture's holes picked first, untimed); wall-clock seconds."""
    from tqdm.auto import tqdm

    args, n = run.args, run.images.shape[0]
    if "texture" in run.experiments:
        run.picks, run.tex_info = pick_texture_holes([luma(run.images[i]) for i in range(n)], run.side, run.ring,
                                                     run.stride, tuple(args.percentiles), args.seed)  # fmt: skip
        run.tex_info.update(hole_side=run.side, ring=run.ring, stride=run.stride)
    units = {
        "growth": len(args.fractions) * len(run.batches),
        "texture": len(batches(len(run.picks), args.batch_size)),
        "replicated": 2 * len(run.batches),
    }
    bar = tqdm(total=sum(units[e] for e in run.experiments), desc="deepfill_report", unit="batch",
               disable=args.no_progress)  # fmt: skip
    t_run = time.perf_counter()
    try:
        for exp in EXPERIMENTS:  # growth, texture, replicated: the table's order
            if exp in run.experiments:
                bar.set_postfix(experiment=exp, refresh=False)
                RUNNERS[exp](run, bar)
    finally:
        bar.close()
    return time.perf_counter() - t_run


def run_report(args: argparse.Namespace, argv: list[str] | None = None) -> Report:
    """Run the experiments described by parsed ``args`` (``argv``: the command line to record): build
    the run, run each experiment, summarise, write the files."""
    run = build_run(args)
    wall = run_experiments(run)
    table = summarize(run.rows, run.labels)
    if "growth" in run.experiments and run.k_fig > 0:
        growth_plot(run.out_dir / "growth_plot.png", table, run.labels)
        run.figures = {"growth_plot.png": None, **run.figures}
    results = write_report(run, table, argv, wall)
    return Report(run.out_dir, run.rows, table, results, run.figures)


def settings_json(run: Run, argv: list[str] | None) -> dict:
    """results.json's ``settings``: the command line, the data and each experiment's settings."""
    args, size, side = run.args, run.args.size, run.side
    return {
        "command": command_line(list(argv)) if argv is not None else None,
        "data": {"root": portable_path(args.data), "n": run.images.shape[0], "image_size": size,
                 "preparation": "centre square crop, resized (area down / cubic up), RGB"},  # fmt: skip
        "experiments": run.experiments,
        "seed": args.seed,
        "growth": {"fractions": [float(f) for f in args.fractions], "hole_sides": [hole_side(f, size) for f in args.fractions],
                   "place": "centre", "figure_image": args.figure_image},  # fmt: skip
        "texture": {"hole_fraction": args.hole_fraction, "hole_side": side, "ring": run.ring, "stride": run.stride,
                    "percentiles": list(args.percentiles), "blur_sigma": BLUR_SIGMA,
                    "canny_thresholds": list(CANNY_THRESHOLDS)},  # fmt: skip
        "replicated": {"hole_fraction": args.hole_fraction, "hole_side": side,
                       "layout": "the S x S image twice side by side (S x 2S), hole in one copy; reference: the same "
                       "hole on the S x S original"},  # fmt: skip
        "batch_size": args.batch_size,
        "threads": int(args.threads),
        "out": portable_path(run.out_dir),
    }


def write_report(run: Run, table: list[dict], argv: list[str] | None, wall: float) -> dict:
    """per_image.csv, results.csv, results.json and results.md; the Markdown printed. Returns results.json's content."""
    out_dir = run.out_dir
    write_text(out_dir / "per_image.csv", csv_text(run.rows, PER_IMAGE_COLUMNS))
    write_text(out_dir / "results.csv", csv_text(table, TABLE_COLUMNS))
    info = machine()
    settings = settings_json(run, argv)
    timing_out = {exp: {label: {"sec_per_image": t["seconds"] / max(1, t["images"]), "images": t["images"]}
                        for label, t in tv.items()} for exp, tv in run.timing.items()}  # fmt: skip
    clean = [{k: json_num(v) for k, v in e.items()} for e in table]
    results = {
        "experiment": "deepfill_report (issue #6)",
        "settings": settings,
        "models": [m.describe() for m in run.models],
        "texture": run.tex_info or None,
        "machine": info,
        "timing": {"note": "wall clock per image, batch time / batch size", "wall_seconds": wall, **timing_out},
        "figures": run.figures,
        "experiments": {exp: [e for e in clean if e["experiment"] == exp] for exp in run.experiments},
        "results": clean,
    }
    write_text(out_dir / "results.json", json.dumps(results, indent=2) + "\n")
    md = format_markdown(table, run.labels, run.experiments, settings, run.tex_info, run.figures, info,
                         run.images.shape[0])  # fmt: skip
    write_text(out_dir / "results.md", md)
    print(md)
    print(f"\nwrote per_image.csv, results.csv, results.md, results.json and {len(run.figures)} figure(s) to {out_dir}",
          file=sys.stderr)  # fmt: skip
    return results


def format_markdown(table: list[dict], labels: list[str], experiments: list[str], settings: dict, tex: dict,
                    figures: dict[str, list[str] | None], info: dict, n: int) -> str:  # fmt: skip
    size = settings["data"]["image_size"]
    lines = [
        f"# DeepFill v1 report experiments: {n} images, {size}x{size}",
        "",
        f"Models: {', '.join(labels)}. Metrics over hole pixels only (TV: the whole output, DeepFill's Table 1 "
        f"column); bold: the best of each group. Seed {settings['seed']}; {settings['threads']} thread(s) on "
        f"{info.get('cpu', '?')}.",
        "",
        f"Command: `{settings['command'] or '(API call)'}`",
        "",
    ]
    for exp in experiments:
        entries = [e for e in table if e["experiment"] == exp]
        lines += [f"## {exp}", ""]
        if exp == "growth":
            lines += ["A square hole at the centre of the image, growing. The strip shows image "
                      f"{settings['growth']['figure_image']}, one row per hole size (smallest at the top).", "",
                      *growth_pivot(entries, labels), ""]  # fmt: skip
        elif exp == "texture":
            lines += [
                f"Holes of {tex['hole_side']} px; ring of {tex['ring']} px scored by its gradient energy (mean Sobel "
                f"magnitude after a sigma-{BLUR_SIGMA:g} blur) over {tex['candidates']} candidates (grid stride "
                f"{tex['stride']} px): uniform <= {tex['uniform_max']:.4f} (P{tex['percentiles'][0]:g}), junction >= "
                f"{tex['junction_min']:.4f} (P{tex['percentiles'][1]:g}); per image the most uniform and the most "
                f"structured position, if they pass: {tex['picked'][UNIFORM]} uniform, {tex['picked'][JUNCTION]} junction.",
                "",
            ]
        else:
            lines += [
                f"The image twice side by side ({size}x{2 * size}), a {settings['replicated']['hole_side']} px hole in "
                "one copy; 'original': the same hole on the single image. PSNR gain = replicated - original. "
                "Attention hit: the fraction of hole pixels whose most attended background position is the same "
                "place in the other copy (models with contextual attention).",
                "",
            ]
        lines += markdown_table(entries, exp) if entries else ["(no holes passed the thresholds)"]
        lines.append("")
        for f, cols in figures.items():
            if f.startswith(exp):
                lines += [f"![{f}]({f})" + (f" (columns: {' | '.join(cols)})" if cols else ""), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (2: a one-line error, no traceback)."""
    return run_cli("deepfill_report", parse_args, run_report, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
