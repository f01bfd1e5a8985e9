"""OpenCV-contrib's exemplar-based inpainting (``cv2.xphoto.inpaint``: SHIFTMAP, He & Sun 2012, on Lab;
FSR_FAST, Seiler et al., on RGB) beside PatchMatch on a few development photos, by eye. Run in its own
environment (``pip install numpy pillow opencv-contrib-python-headless``), on the file written by
``posthoc_fills.py --dump 3 pairs.npz``::

    python xphoto_fills.py pairs.npz xphoto_by_eye.jpg   # input | PatchMatch | SHIFTMAP | FSR_FAST | original
"""

import sys
import time

import cv2
import numpy as np
from PIL import Image


def xphoto(img: np.ndarray, hole: np.ndarray, algo: str) -> np.ndarray:
    lab = algo == "shiftmap"
    src = cv2.cvtColor(img, cv2.COLOR_RGB2Lab) if lab else img.copy()
    flag = cv2.xphoto.INPAINT_SHIFTMAP if lab else cv2.xphoto.INPAINT_FSR_FAST
    dst = np.zeros_like(src)
    cv2.xphoto.inpaint(src, (~hole).astype(np.uint8) * 255, dst, flag)  # non-zero = known pixels
    dst = cv2.cvtColor(dst, cv2.COLOR_Lab2RGB) if lab else dst
    return np.where(hole[..., None], dst, img)


z = np.load(sys.argv[1])
rows = []
for img, hole, pm in zip(z["images"], z["masks"], z["patchmatch"]):
    t = time.time()
    fills = [xphoto(img, hole, a) for a in ("shiftmap", "fsr_fast")]
    print(f"{time.time() - t:.1f} s for both")
    shown = img.copy()
    shown[hole] = 255
    rows.append(np.concatenate([shown, pm, *fills, img], 1))
Image.fromarray(np.concatenate(rows, 0)).save(sys.argv[2], quality=85)
