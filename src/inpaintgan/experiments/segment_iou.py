"""How well box selection (GrabCut, :mod:`inpaintgan.segment`) finds objects: IoU against known masks.

    python -m inpaintgan.experiments.segment_iou                       # synthetic scenes only
    python -m inpaintgan.experiments.segment_iou --photos ../shared/data/photos/val \\
        --gt docs/segment/photos_gt.json --out docs/segment            # + hand-drawn photo masks

- Synthetic: every scene of :data:`inpaintgan.segment.SCENES` (an object of known shape on a
  textured background) for ``--seeds`` seeds at each ``--sizes``; the box is the object's bounding
  box with a little slack.
- Photos: ``--gt`` lists, per photo, the file (under ``--photos``), the box a user would drag, and
  the object's outline as hand-drawn polygons (image pixels); the ground truth is the filled
  polygons. The photos are not part of the repository; the polygons are.

Prints a Markdown table (also the box itself as a mask, the floor any selection must beat) and
writes ``OUT/segment_iou.json`` and, for photos, ``OUT/<name>.png`` (photo | ground truth | selection).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from inpaintgan.segment import SCENES, iou, select_object, synthetic_scene


def box_mask(shape: tuple[int, int], box) -> np.ndarray:
    m = np.zeros(shape, bool)
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    m[max(0, y0) : y1, max(0, x0) : x1] = True
    return m


def polygon_mask(size: tuple[int, int], polygons) -> np.ndarray:
    img = Image.new("L", size, 0)
    d = ImageDraw.Draw(img)
    for poly in polygons:
        d.polygon([tuple(p) for p in poly], fill=255)
    return np.asarray(img) > 0


def run_synthetic(sizes: list[int], seeds: int) -> list[dict]:
    rows = []
    for size in sizes:
        for kind in SCENES:
            for seed in range(seeds):
                img, obj, box = synthetic_scene(kind, size=size, seed=seed)
                t = time.perf_counter()
                sel = select_object(img, box)
                rows.append(dict(scene=kind, size=size, seed=seed, iou=iou(sel, obj), box_iou=iou(box_mask(obj.shape, box), obj),
                                 seconds=time.perf_counter() - t))
    return rows


def run_photos(photos: Path, gt_file: Path, out: Path | None) -> list[dict]:
    gt = json.loads(gt_file.read_text())
    rows = []
    for name, e in gt.items():
        path = photos / e["file"]
        if not path.is_file():
            print(f"warning: {path} not found; skipped", file=sys.stderr)
            continue
        img = np.asarray(Image.open(path).convert("RGB"))
        truth = polygon_mask((img.shape[1], img.shape[0]), e["polygons"])
        t = time.perf_counter()
        sel = select_object(img, e["box"])
        seconds = time.perf_counter() - t
        rows.append(dict(photo=name, file=e["file"], size=f"{img.shape[1]}x{img.shape[0]}", iou=iou(sel, truth),
                         box_iou=iou(box_mask(truth.shape, e["box"]), truth), seconds=seconds))
        if out is not None:
            pink = (0.45 * img + 0.55 * np.array([255, 40, 200])).astype(np.uint8)
            tints = [np.where(m[..., None], pink, img) for m in (truth, sel)]
            Image.fromarray(np.concatenate([img, *tints], 1)).save(out / f"{name}.png")
    return rows


def summarize(rows: list[dict], key: str) -> str:
    lines = [f"| {key} | n | IoU mean | IoU min | box-as-mask IoU | s / selection |", "|---|---|---|---|---|---|"]
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(str(r[key]), []).append(r)
    for g, rs in groups.items():
        ious = [r["iou"] for r in rs]
        lines.append(f"| {g} | {len(rs)} | {np.mean(ious):.3f} | {min(ious):.3f} | {np.mean([r['box_iou'] for r in rs]):.3f} | "
                     f"{np.mean([r['seconds'] for r in rs]):.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="160,640", help="synthetic scene sides, comma-separated (default 160,640)")
    p.add_argument("--seeds", type=int, default=10, help="synthetic scenes per kind and size (default 10)")
    p.add_argument("--photos", type=Path, help="folder of the photos named in --gt")
    p.add_argument("--gt", type=Path, default=Path("docs/segment/photos_gt.json"), help="hand-drawn ground truth (JSON)")
    p.add_argument("--out", type=Path, help="write segment_iou.json and the photos' comparison images here")
    args = p.parse_args(argv)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    synth = run_synthetic([int(s) for s in args.sizes.split(",") if s], args.seeds)
    by_size = [{**r, "kind": f"{r['scene']} @ {r['size']}px"} for r in synth]
    print("Synthetic scenes (box = bounding box + slack):\n")
    print(summarize(by_size, "kind"))
    result = {"synthetic": synth}
    if args.photos:
        if not args.gt.is_file():
            print(f"error: ground truth file {args.gt} not found", file=sys.stderr)
            return 2
        photo_rows = run_photos(args.photos, args.gt, args.out)
        print("\nPhotos (hand-drawn polygon ground truth):\n")
        print(summarize(photo_rows, "photo"))
        if photo_rows:
            print(f"\nmean photo IoU {np.mean([r['iou'] for r in photo_rows]):.3f} over {len(photo_rows)} photos")
        result["photos"] = photo_rows
    if args.out:
        (args.out / "segment_iou.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
