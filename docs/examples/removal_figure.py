"""Object removal on real photos, side by side: the objects outlined by hand in
``docs/segment/photos_gt.json`` (4 validation photos) are removed by Telea, PatchMatch, the previous
default (``smooth``) and the default model, through the same ``Inpainter`` a user calls.

    python docs/examples/removal_figure.py --photos ../shared/data/photos/val -o docs/images/removal_comparison.png

There is no ground truth behind a removed object: the last column is the original photo.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

MODELS = (("telea", "Telea"), ("patchmatch", "PatchMatch"), ("smooth", "smooth (previous default)"),
          ("default", "default"))  # fmt: skip


def object_mask(size: tuple[int, int], polygons, grow: int) -> np.ndarray:
    from inpaintgan.experiments.segment_iou import polygon_mask

    m = polygon_mask(size, polygons).astype(np.uint8)
    if grow > 0:  # object edges are soft: cover the halo around the outline
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return m > 0


def fit(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Resize to height ``h`` and centre-pad / crop to width ``w`` (white padding)."""
    scale = h / img.shape[0]
    img = np.asarray(Image.fromarray(img).resize((max(1, round(img.shape[1] * scale)), h), Image.BICUBIC))
    if img.shape[1] >= w:
        x0 = (img.shape[1] - w) // 2
        return img[:, x0 : x0 + w]
    out = np.full((h, w, 3), 255, np.uint8)
    x0 = (w - img.shape[1]) // 2
    out[:, x0 : x0 + img.shape[1]] = img
    return out


def main(argv=None) -> int:
    from inpaintgan import Inpainter
    from inpaintgan.eval.report import comparison_figure, masked_input

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", required=True, help="the validation photo folder (searched recursively)")
    p.add_argument("--gt", default="docs/segment/photos_gt.json")
    p.add_argument("--grow", type=int, default=3, help="pixels added around each outline")
    p.add_argument("-o", "--out", default="docs/images/removal_comparison.png")
    a = p.parse_args(argv)

    entries = json.loads(Path(a.gt).read_text())
    fills = {name: Inpainter.from_pretrained(name, device="cpu") for name, _ in MODELS}
    rows = []
    for key, e in entries.items():
        path = next(Path(a.photos).rglob(e["file"]))
        img = np.asarray(Image.open(path).convert("RGB"))
        hole = object_mask((img.shape[1], img.shape[0]), e["polygons"], a.grow)
        row = [masked_input(img, hole.astype(np.float32))]
        for name, _ in MODELS:
            out = fills[name](Image.fromarray(img), Image.fromarray(hole.astype(np.uint8) * 255))
            row.append(np.asarray(out.convert("RGB")))
        row.append(img)
        rows.append([fit(r, 256, 384) for r in row])
        print(f"{key}: {path.name}, hole {hole.mean():.1%}", flush=True)
    comparison_figure(rows, ["input (object marked)", *[t for _, t in MODELS], "original"], a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
