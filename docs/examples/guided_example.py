"""The guided-inpainting example of docs/results.md (issue 8), end to end through the command line.

Takes the lion's head of one validation photo as the guide, positions it over the rock on the right
of another, writes the hole / guide masks, runs ``inpaintgan fill --guide ... --guide-mask ...``
with the BTGMI model, and writes a panel: input with the hole | the guide in place | BTGMI |
the same guide pasted, gap filled by fast marching. Run from the repository root:

    python docs/examples/guided_example.py [--model MODEL] [--data ../shared/data/photos/val] [--out docs/images]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

TARGET, SOURCE = "bsds500_val_103070.jpg", "bsds500_val_105025.jpg"  # both 384 x 256
HOLE = (236, 84, 356, 204)  # left, top, right, bottom in the target
SOURCE_BOX = (160, 64, 280, 184)  # the lion's head in the source, same size as the hole
GAP = 8  # px between the guide and the known pixels, left for the model to fill


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="docs/eval/btgmi_photos128/models/btgmi.safetensors")
    p.add_argument("--data", default="../shared/data/photos/val")
    p.add_argument("--out", default="docs/images")
    a = p.parse_args()
    target = Image.open(Path(a.data) / TARGET).convert("RGB")
    source = Image.open(Path(a.data) / SOURCE).convert("RGB")
    w, h = target.size
    hole = Image.new("L", (w, h), 0)
    ImageDraw.Draw(hole).rectangle([HOLE[0], HOLE[1], HOLE[2] - 1, HOLE[3] - 1], fill=255)
    gmask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(gmask).rectangle([HOLE[0] + GAP, HOLE[1] + GAP, HOLE[2] - 1 - GAP, HOLE[3] - 1 - GAP], fill=255)
    guide = target.copy()
    guide.paste(source.crop(SOURCE_BOX), HOLE[:2])
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        hole.save(t / "hole.png")
        gmask.save(t / "guide_mask.png")
        guide.save(t / "guide.png")
        result = t / "btgmi.png"
        cmd = [sys.executable, "-m", "inpaintgan", "fill", str(Path(a.data) / TARGET), "--mask", str(t / "hole.png"),
               "--guide", str(t / "guide.png"), "--guide-mask", str(t / "guide_mask.png"), "--model", a.model,
               "-o", str(result), "--quiet"]  # fmt: skip
        print(" ".join(cmd[1:]))
        subprocess.run(cmd, check=True)
        filled = np.asarray(Image.open(result).convert("RGB"))
    import cv2

    tgt = np.asarray(target)
    hole_np, g_np = np.asarray(hole) > 0, np.asarray(gmask) > 0
    pasted = np.where(g_np[..., None], np.asarray(guide), tgt)
    baseline = cv2.inpaint(np.ascontiguousarray(pasted), ((hole_np & ~g_np) * 255).astype(np.uint8), 3, cv2.INPAINT_TELEA)
    shown_input = tgt.copy()
    shown_input[hole_np] = 255
    shown_guide = np.where(g_np[..., None], np.asarray(guide), shown_input)
    panels = [shown_input, shown_guide, filled, baseline]
    titles = ["input, hole white", "guide in place (gap white)", "BTGMI (inpaintgan fill --guide)", "paste + Telea gap fill"]
    pad = 24
    sheet = Image.new("RGB", (len(panels) * (w + 8) - 8, h + pad), "white")
    d = ImageDraw.Draw(sheet)
    for i, (panel, title) in enumerate(zip(panels, titles)):
        sheet.paste(Image.fromarray(panel), (i * (w + 8), pad))
        d.text((i * (w + 8) + 4, 6), title, fill="black")
    path = out / "guided_example.png"
    sheet.save(path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
