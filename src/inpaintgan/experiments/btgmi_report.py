"""BTGMI's two other tasks, measured with trained models (issue 8):

* **harmonization**: a region of a real photo is re-toned with the perturbation BTGMI trains on
  (:func:`inpaintgan.methods.btgmi.harmonization_sample`: gamma, per-channel gain and bias,
  saturation), and the model must restore it. Scored against the original photo over the region
  (MSE, PSNR), next to leaving the region as it is (``identity``) and to Reinhard et al.'s colour
  transfer (the region's per-channel mean and standard deviation in CIELAB matched to those of a ring
  of known pixels around it: the classical answer).
* **guided inpainting**: a patch of *another* photo is pasted into the hole, eroded by a gap that the
  model must fill while it blends the patch in. There is no ground truth, so two measures (ours) are
  reported: ``seam``, |log| of the mean Sobel gradient magnitude on a 2-px band across the patch's
  border over that of the photo's known pixels (0 = the border as busy as the rest of the photo; a
  visible edge scores high, and so does a border smeared flatter than the photo),
  and ``detail``, how much of the patch's own high-frequency content (image minus a sigma-2 blur)
  survives, as a PSNR against the pasted patch (higher = more of the guide kept). The classical
  references: the patch pasted and the gap filled by fast marching (``paste``), and the same with the
  patch Poisson-blended into the fast-marching fill (``poisson``, OpenCV's seamless cloning; its clone
  mask is the patch grown by the 3 px that OpenCV erodes, so the patch keeps its own edges).

    python -m inpaintgan.experiments.btgmi_report --model btgmi=MODEL.safetensors [--model ...] \\
        --data ../shared/data/photos/val -n 64 --size 128 --out docs/eval/btgmi_photos128/tasks

Writes ``results.json`` (settings, machine, command, per-image and mean values), ``tables.md`` and
the figures ``harmonize.png`` / ``guided.png``. Every file is written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from inpaintgan.eval.runner import to_tensor
from inpaintgan.experiments.common import (
    Model,
    ReportError,
    command_line,
    json_num,
    load_folder_images,
    load_models,
    machine,
    portable_path,
    run_cli,
    save_grid,
    u8,
    write_text,
)

PROG = "python -m inpaintgan.experiments.btgmi_report"
RING = 6  # px of known pixels around a harmonised region whose colour statistics Reinhard matches
SEAM_BAND = 2  # px on each side of the guide patch's border scored by ``seam``
DETAIL_SIGMA = 2.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n    python")[0],
    )
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                   help="a model that can harmonize and do guided inpainting (btgmi), repeatable")  # fmt: skip
    p.add_argument("--data", required=True, help="folder of photos (the first -n, sorted, are used)")
    p.add_argument("-n", type=int, default=64, help="number of photos (default 64)")
    p.add_argument("--size", type=int, default=128, help="square working size, px (default 128)")
    p.add_argument("--seed", type=int, default=0, help="seed of the regions, holes and perturbations")
    p.add_argument("--region", type=float, nargs=2, default=(0.25, 0.5), metavar=("LO", "HI"),
                   help="side of the harmonised region / guided hole as a fraction of the image (default 0.25 0.5)")  # fmt: skip
    p.add_argument("--gap", type=int, default=6, help="gap between the guide patch and the known pixels, px (default 6)")
    p.add_argument("--rows", type=int, default=6, help="photos shown in each figure (default 6)")
    p.add_argument("--out", required=True, help="output folder")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _check_args(args: argparse.Namespace) -> None:
    if not args.model:
        raise ReportError("no models: give at least one --model NAME=PATH of a model that can harmonize (btgmi)")
    if args.n < 2:
        raise ReportError(f"-n must be at least 2 (guided inpainting takes its patch from another photo), got {args.n}")
    if args.size < 16 or args.size % 8:
        raise ReportError(f"--size must be a multiple of 8 and at least 16, got {args.size}")
    lo, hi = args.region
    if not 0 < lo <= hi < 1:
        raise ReportError(f"--region needs 0 < LO <= HI < 1, got {lo} {hi}")
    if args.gap < 1 or 2 * args.gap + 2 > lo * args.size:
        raise ReportError(f"--gap {args.gap} px leaves no guide patch inside a {lo * args.size:.0f}-px region")
    if args.rows < 1:
        raise ReportError(f"--rows must be at least 1, got {args.rows}")


def task_models(models: list[Model]) -> list[Model]:
    for m in models:
        if m.method is None or not all(callable(getattr(m.method, f, None)) for f in ("harmonize", "guided_inpaint")):
            kind = "a baseline" if m.method is None else f"a {getattr(m.method, 'name', type(m.method).__name__)} model"
            raise ReportError(f"--model {m.label}: {kind} cannot harmonize or do guided inpainting (btgmi models can)")
        if getattr(m.method, "channels", 3) != 3:
            raise ReportError(f"--model {m.label}: a {m.method.channels}-channel model; this report works on colour photos")
    return models


def rect_masks(n: int, size: int, lo: float, hi: float, seed: int) -> Tensor:
    """(n, 1, size, size) rectangles, sides uniform in [lo, hi] x size, at seeded positions."""
    from inpaintgan.masks import glcic_rect

    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.stack([glcic_rect(rng, size, size, lo, hi) for _ in range(n)])[:, None].astype(np.float32))


def ring_of(region: np.ndarray, px: int) -> np.ndarray:
    """Known pixels within ``px`` of a binary (H, W) region."""
    r = region.astype(np.uint8)
    return (cv2.dilate(r, np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0) & (r == 0)


def reinhard(image: np.ndarray, region: np.ndarray, ring_px: int = RING) -> np.ndarray:
    """Reinhard et al. (2001) colour transfer inside ``region`` of a uint8 RGB image: per CIELAB channel,
    the region's mean and standard deviation become those of the surrounding ring of known pixels."""
    reg = region.astype(bool)
    ring = ring_of(reg, ring_px)
    if not reg.any() or not ring.any():
        return image.copy()
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    src, ref = lab[reg], lab[ring]
    scale = ref.std(0) / np.maximum(src.std(0), 1e-3)
    lab[reg] = (src - src.mean(0)) * scale + ref.mean(0)
    out = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    return np.where(reg[..., None], out, image)


def _grad_mag(rgb: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3))


def seam_score(output: np.ndarray, guide_region: np.ndarray, known: np.ndarray, band: int = SEAM_BAND) -> float:
    """|log| of (mean gradient magnitude on a band of ``band`` px on both sides of the guide region's
    border / mean gradient magnitude of the known pixels): 0 when the border is as busy as the photo,
    higher for a visible edge and for a smeared one (uint8 RGB ``output``; binary masks)."""
    g = guide_region.astype(np.uint8)
    k = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    border = (cv2.dilate(g, k) > 0) & (cv2.erode(g, k) == 0)
    mag = _grad_mag(output)
    ref = float(mag[known.astype(bool)].mean()) if known.any() else 0.0
    return float(abs(np.log(max(float(mag[border].mean()), 1e-6) / max(ref, 1e-6))))


def detail_psnr(output: np.ndarray, guide: np.ndarray, guide_region: np.ndarray, sigma: float = DETAIL_SIGMA) -> float:
    """PSNR (dB) between the high-pass parts (image - Gaussian blur) of ``output`` and ``guide`` over
    the guide region: how much of the pasted patch's detail is kept (uint8 RGB images)."""

    def high(a: np.ndarray) -> np.ndarray:
        f = a.astype(np.float32) / 255.0
        return f - cv2.GaussianBlur(f, (0, 0), sigma)

    reg = guide_region.astype(bool)
    err = float(((high(output) - high(guide))[reg] ** 2).mean()) if reg.any() else 0.0
    return float(10 * np.log10(1.0 / max(err, 1e-10)))


def _region_np(mask: Tensor) -> np.ndarray:
    return mask[0].numpy() > 0.5


def run_harmonization(models: list[Model], images: Tensor, regions: Tensor, seed: int) -> tuple[dict, dict]:
    """Per-image region MSE / PSNR for identity, reinhard and each model; and the outputs (figures)."""
    from inpaintgan import metrics
    from inpaintgan.methods.btgmi import harmonization_sample

    perturbed, regions = harmonization_sample(images, regions, torch.Generator().manual_seed(seed))
    outs = {"identity": perturbed}
    outs["reinhard"] = torch.stack([
        to_tensor(reinhard(u8(p), _region_np(r)))
        for p, r in zip(perturbed, regions)
    ])  # fmt: skip
    for m in models:
        with torch.no_grad():
            outs[m.label] = m.method.harmonize(perturbed, regions).float().clamp(0, 1)
    scores = {
        label: {"mse": metrics.mse(y, images, regions).tolist(), "psnr": metrics.psnr(y, images, regions).tolist()}
        for label, y in outs.items()
    }
    return scores, {"perturbed": perturbed, "regions": regions, **outs}


def run_guided(models: list[Model], images: Tensor, holes: Tensor, gap: int) -> tuple[dict, dict]:
    """Guided inpainting with the next photo's pixels as the patch; seam / detail per image."""
    from inpaintgan.methods.btgmi import guided_input
    from inpaintgan.postprocess import poisson_blend, prefill_telea

    guides = torch.roll(images, shifts=-1, dims=0)
    x, gap_mask, guide_mask = guided_input(images, holes, guides, gap)
    outs: dict[str, Tensor] = {}
    paste, poisson = [], []
    for img, hole, g, gm in zip(images, holes, guides, guide_mask):
        h, gr = _region_np(hole), _region_np(gm)
        base = prefill_telea(u8(img), h)  # the hole filled by fast marching from the known pixels
        pasted = np.where(gr[..., None], u8(g), base)
        gap_only = h & ~gr
        filled = prefill_telea(pasted, gap_only)  # the gap filled around the pasted patch
        paste.append(filled)
        # poisson_blend's clone mask is eroded by OpenCV by 3 px: grow it so the patch keeps its edges
        grown = cv2.dilate(gr.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        poisson.append(poisson_blend(base, np.where(grown[..., None], pasted, base), grown & h))
    outs["paste"] = torch.stack([to_tensor(a) for a in paste])
    outs["poisson"] = torch.stack([to_tensor(a) for a in poisson])
    for m in models:
        with torch.no_grad():
            outs[m.label] = m.method.guided_inpaint(images, holes, guides, guide_mask).float().clamp(0, 1)
    scores: dict[str, dict[str, list[float]]] = {}
    for label, y in outs.items():
        seam, detail = [], []
        for out, g, gm, hole in zip(y, guides, guide_mask, holes):
            o = u8(out)
            known = ~_region_np(hole)
            seam.append(seam_score(o, _region_np(gm), known))
            detail.append(detail_psnr(o, u8(g), _region_np(gm)))
        scores[label] = {"seam": seam, "detail": detail}
    return scores, {"input": x, "gap": gap_mask, "guide_mask": guide_mask, **outs}


def _mean(v: list[float]) -> float:
    return float(np.mean(v)) if v else float("nan")


def tables(harm: dict, guided: dict, n: int) -> str:
    lines = [f"Harmonization ({n} photos; region MSE / PSNR against the original photo):", "",
             "| model | region MSE ↓ | region PSNR ↑ |", "|---|---:|---:|"]  # fmt: skip
    for label, s in harm.items():
        lines.append(f"| {label} | {_mean(s['mse']):.5f} | {_mean(s['psnr']):.2f} |")
    lines += ["", f"Guided inpainting ({n} photos; seam: |log(border gradient / photo gradient)|, 0 = as busy as the "
              "photo; detail: PSNR of the patch's high-pass part kept):", "",
              "| model | seam ↓ | detail (dB) ↑ |", "|---|---:|---:|"]  # fmt: skip
    for label, s in guided.items():
        lines.append(f"| {label} | {_mean(s['seam']):.3f} | {_mean(s['detail']):.2f} |")
    return "\n".join(lines) + "\n"


def _outlined(img: Tensor, mask: Tensor, colour=(255, 0, 0)) -> np.ndarray:
    a = u8(img)
    m = _region_np(mask).astype(np.uint8)
    edge = (m > 0) & (cv2.erode(m, np.ones((3, 3), np.uint8)) == 0)
    a[edge] = colour
    return a


def write_figures(out: Path, harm_out: dict, guided_out: dict, images: Tensor, labels: list[str], rows: int) -> list[Path]:
    k = min(rows, images.shape[0])
    h_cols = ["identity", "reinhard", *labels]
    h_rows = [[_outlined(harm_out["perturbed"][i], harm_out["regions"][i])]
              + [u8(harm_out[c][i]) for c in h_cols[1:]] + [u8(images[i])] for i in range(k)]  # fmt: skip
    g_rows = []
    for i in range(k):
        inp = u8(guided_out["input"][i])
        inp[_region_np(guided_out["gap"][i])] = (255, 255, 255)
        g_rows.append([inp] + [u8(guided_out[c][i]) for c in ["paste", "poisson", *labels]])
    return [
        save_grid(out / "harmonize.png", h_rows, ["input (region outlined)", "Reinhard", *labels, "original"]),
        save_grid(out / "guided.png", g_rows, ["input (gap white)", "paste + Telea", "Poisson", *labels]),
    ]


def run_report(args: argparse.Namespace, argv: list[str] | None = None) -> dict:
    _check_args(args)
    models = task_models(load_models(args.model))
    images, files = load_folder_images(args.data, args.n, args.size)
    if images.shape[0] < 2:
        raise ReportError(f"{args.data} holds {images.shape[0]} readable photo; guided inpainting needs 2 or more")
    n = images.shape[0]
    lo, hi = args.region
    harm, harm_out = run_harmonization(models, images, rect_masks(n, args.size, lo, hi, args.seed), args.seed)
    guided, guided_out = run_guided(models, images, rect_masks(n, args.size, lo, hi, args.seed + 1), args.gap)
    out = Path(args.out)
    figures = write_figures(out, harm_out, guided_out, images, [m.label for m in models], args.rows)
    result = {
        "command": command_line(argv if argv is not None else sys.argv[1:], PROG),
        "machine": machine(),
        "settings": {"data": portable_path(args.data), "n": n, "size": args.size, "seed": args.seed,
                     "region": [lo, hi], "gap": args.gap, "ring_px": RING, "seam_band_px": SEAM_BAND,
                     "detail_sigma": DETAIL_SIGMA},  # fmt: skip
        "models": [m.describe() for m in models],
        "files": files,
        "harmonization": {k: {"mean_mse": _mean(v["mse"]), "mean_psnr": _mean(v["psnr"]), **v} for k, v in harm.items()},
        "guided": {k: {"mean_seam": _mean(v["seam"]), "mean_detail": _mean(v["detail"]), **v} for k, v in guided.items()},
    }
    text = tables(harm, guided, n)
    write_text(out / "results.json", json.dumps(json_num(result), indent=2) + "\n")
    write_text(out / "tables.md", text)
    print(text)
    print("wrote " + ", ".join(str(p) for p in [out / "results.json", out / "tables.md", *figures]))
    return result


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (2: a one-line error, no traceback)."""
    return run_cli("btgmi_report", parse_args, run_report, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
