"""Latency of ``fill`` (the Inpainter's any-size inference) on a small and a large photo, against
OpenCV's Telea fast marching in the same run.

    python benchmarks/bench_fill.py                            # the embedded default model
    python benchmarks/bench_fill.py --model runs/x/model.safetensors --repeats 5
    python benchmarks/bench_fill.py --untrained configs/default_photos128.yaml   # before a model exists

One 128x128 hole in the middle of a 512x512 and of a 3000x2000 photo (the bundled ``mountain.jpg``
resized, bicubic). Measured: ``inpainter(image_uint8, mask)`` with ``strategy=auto`` (array in,
array out: no file I/O), median of ``--repeats`` runs after one warm-up, and ``cv2.inpaint`` (Telea,
radius 3) and PatchMatch (``pypatchmatch``, the whole image) on the same arrays. The crop strategy should keep the 3000x2000 / 512x512 ratio within 3x:
the network sees one working-size crop around the hole in both cases; the rest is per-pixel copying.
``--untrained CONFIG`` builds the preset's architecture with random weights: latency does not depend
on the weights. Results are printed as Markdown and appended to ``docs/benchmarks.md`` with the
machine (``--output ''`` to skip). Not part of the tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from machine import machine_info  # benchmarks/machine.py (scripts run from benchmarks/)
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIZES = ((512, 512), (3000, 2000))  # (width, height)
HOLE = 128


def _time(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def photo(width: int, height: int) -> np.ndarray:
    """The bundled example photo resized to ``width`` x ``height`` (uint8 RGB)."""
    from inpaintgan.inference_cli import ASSETS_DIR

    img = Image.open(ASSETS_DIR / "mountain.jpg").convert("RGB")
    return np.asarray(img.resize((width, height), Image.BICUBIC))


def center_hole(width: int, height: int, side: int = HOLE) -> np.ndarray:
    m = np.zeros((height, width), bool)
    y, x = (height - side) // 2, (width - side) // 2
    m[y : y + side, x : x + side] = True
    return m


def load_inpainter(args):
    from inpaintgan.inpainter import Inpainter

    if args.untrained:
        from inpaintgan.config import load_config
        from inpaintgan.registry import get_method

        cfg = load_config(args.untrained)
        torch.manual_seed(0)
        method = get_method(cfg.method)(cfg.model, image_size=cfg.data.image_size)
        return Inpainter(method, {"model": f"untrained {Path(args.untrained).stem}"}, device=args.device), "untrained weights"
    inp = Inpainter.from_pretrained(args.model, device=args.device)
    path = Path(inp.metadata.get("path", args.model))
    try:  # repository-relative in the published table, never this machine's absolute path
        path = path.resolve().relative_to(ROOT)
    except ValueError:
        path = Path(path.name)
    return inp, str(path)


def run(args) -> tuple[list[dict], dict, str]:
    inp, source = load_inpainter(args)
    rows = []
    for w, h in SIZES:
        img, hole = photo(w, h), center_hole(w, h)
        calls: list[tuple[int, ...]] = []
        original = inp.method.inpaint

        def counted(x, m, original=original, calls=calls):
            calls.append(tuple(x.shape[-2:]))
            return original(x, m)

        inp.method.inpaint = counted
        inp(img, hole)
        inp.method.inpaint = original
        print(f"[{w}x{h}] model", file=sys.stderr, flush=True)
        model_s = _time(lambda img=img, hole=hole: inp(img, hole), args.repeats)
        print(f"[{w}x{h}] telea", file=sys.stderr, flush=True)
        hole_u8 = hole.astype(np.uint8) * 255
        telea_s = _time(lambda img=img, hole_u8=hole_u8: cv2.inpaint(img, hole_u8, 3, cv2.INPAINT_TELEA), args.repeats)
        print(f"[{w}x{h}] patchmatch", file=sys.stderr, flush=True)
        import patchmatch

        pm_s = _time(lambda img=img, hole_u8=hole_u8: patchmatch.inpaint(img, hole_u8, patch_size=3), max(1, min(args.repeats, 2)))
        rows.append({
            "size": f"{w}x{h}",
            "strategy": inp.choose_strategy(h, w),
            "net_input": ", ".join(f"{cw}x{ch}" for ch, cw in calls),
            "model_ms": model_s * 1e3,
            "telea_ms": telea_s * 1e3,
            "patchmatch_ms": pm_s * 1e3,
        })
    info = machine_info(str(inp.device))
    info["model"] = f"{inp.name} ({inp.method.name}, working size {inp.working_size}px; {source})"
    return rows, info, inp.name


def to_markdown(rows: list[dict], info: dict, argv: list[str]) -> str:
    ratio = rows[1]["model_ms"] / rows[0]["model_ms"]
    lines = [f"## fill latency -- {info['date']} -- {info['cpu']}, {info['cores']} cores, {info['device']}", ""]
    lines.append("Machine: " + ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("date", "model")) + "  ")
    lines.append(f"Model: {info['model']}  ")
    lines.append(f"Command: `python benchmarks/bench_fill.py {' '.join(argv)}`".rstrip() + "  ")
    lines.append(f"One {HOLE}x{HOLE} hole in the middle of the photo; uint8 array in and out (no file I/O); "
                 "median after a warm-up. Telea: `cv2.inpaint(..., 3, INPAINT_TELEA)`; PatchMatch: `patchmatch.inpaint(..., "
                 "patch_size=3)` on the whole array (median of at most 2 runs).")  # fmt: skip
    lines += ["", "| photo | strategy | network input | model ms | Telea ms | PatchMatch ms |", "|---|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['size']} | {r['strategy']} | {r['net_input']} | {r['model_ms']:.1f} | {r['telea_ms']:.1f} | "
                     f"{r['patchmatch_ms']:.1f} |")  # fmt: skip
    verdict = "within" if ratio <= 3 else "ABOVE"
    lines += ["", f"3000x2000 / 512x512 model latency: **{ratio:.2f}x** ({verdict} the 3x target)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="default", help="zoo name or model file (default: the embedded default model)")
    p.add_argument("--untrained", metavar="CONFIG", help="time this preset's architecture with random weights instead")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median; plus one warm-up)")
    p.add_argument("--device", default="cpu", help="cpu | cuda (default: cpu)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"), help="Markdown file to append to ('' = none)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        rows, info, _ = run(args)
    except (ValueError, OSError, KeyError) as e:
        print(f"bench_fill: error: {e}", file=sys.stderr)
        return 2
    text = to_markdown(rows, info, argv)
    print(text)
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        existed = out.is_file() and out.stat().st_size > 0
        with open(out, "a") as f:
            f.write("\n" + text if existed else "# Benchmarks\n\n" + text)
        print(f"appended to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
