"""Which ``grow`` (mask dilation) removes a selected object best: the page's default.

    python -m inpaintgan.experiments.grow_sweep --models telea,default --grows 0,2,4,8,16

Scenes from :func:`inpaintgan.segment.synthetic_scene` rendered at 4x and downsampled (edges blend
into the background over a pixel, as in a photo) and blurred a little (a camera's softness, ``--blur``); the
object is selected with GrabCut from its box (as the page's Select does), grown by N px and removed.
The truth is the background without the object, so the error is measured exactly: mean absolute
error (0-255) over the object and a 6-px ring around it (where halos live), and separately over
that ring alone.
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np

from inpaintgan.imageio import dilate_mask
from inpaintgan.segment import SCENES, select_object, synthetic_scene


def soft_scene(kind: str, size: int, seed: int, blur: float = 0.7) -> tuple[np.ndarray, np.ndarray, tuple, np.ndarray]:
    img4, obj4, box4, bg4 = synthetic_scene(kind, size=4 * size, seed=seed, background=True)

    def down(a: np.ndarray) -> np.ndarray:
        small = cv2.resize(a.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(small, (0, 0), blur) if blur > 0 else small

    img = np.clip(down(img4) + 0.5, 0, 255).astype(np.uint8)
    bg = np.clip(down(bg4) + 0.5, 0, 255).astype(np.uint8)
    obj = cv2.resize(obj4.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) > 0.5
    box = tuple(int(round(v / 4)) for v in box4)
    return img, obj, box, bg


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="telea,default", help="fills to try, comma-separated (default telea,default)")
    p.add_argument("--grows", default="0,2,4,8,16", help="dilations in px (default 0,2,4,8,16)")
    p.add_argument("--size", type=int, default=128, help="scene side (default 128)")
    p.add_argument("--seeds", type=int, default=4, help="scenes per kind (default 4)")
    p.add_argument("--blur", type=float, default=0.7, help="Gaussian blur sigma of the scene, px (default 0.7)")
    args = p.parse_args(argv)
    from inpaintgan.inpainter import Inpainter

    grows = [int(g) for g in args.grows.split(",")]
    scenes = [soft_scene(k, args.size, s, args.blur) for k in SCENES for s in range(args.seeds)]
    sels = [select_object(img, box) for img, _, box, _ in scenes]
    print(f"{len(scenes)} scenes ({', '.join(SCENES)} x {args.seeds} seeds, {args.size} px, blur {args.blur} px); "
          "MAE (0-255) against the true background\n")
    print("| model | " + " | ".join(f"grow {g}: object+ring / ring" for g in grows) + " | s / fill |")
    print("|---|" + "---|" * (len(grows) + 1))
    for name in args.models.split(","):
        inp = Inpainter.from_pretrained(name, device="cpu")
        cells, t0, n = [], time.perf_counter(), 0
        for g in grows:
            all_err, ring_err = [], []
            for (img, obj, _box, bg), sel in zip(scenes, sels):
                region = dilate_mask(obj, 6)
                ring = region & ~obj
                out = np.asarray(inp(img, sel, dilate=g)).astype(np.int32)
                n += 1
                diff = np.abs(out - bg.astype(np.int32)).mean(-1)
                all_err.append(diff[region].mean())
                ring_err.append(diff[ring].mean())
            cells.append(f"{np.mean(all_err):.2f} / {np.mean(ring_err):.2f}")
        print(f"| {name} | " + " | ".join(cells) + f" | {(time.perf_counter() - t0) / n:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
