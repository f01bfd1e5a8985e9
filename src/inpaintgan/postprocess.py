"""GLCIC's post-processing (Iizuka, Simo-Serra, Ishikawa, SIGGRAPH 2017, Sec. 3.5): "we employ the
fast marching method [Telea 2004], followed by Poisson image blending [Perez et al. 2003]" to remove
subtle colour inconsistencies between the generated region and its surroundings.

- :func:`prefill_telea` -- OpenCV's fast-marching inpainting (``cv2.INPAINT_TELEA``) of the hole.
  Used as the Poisson destination (OpenCV erodes the clone mask, so the destination's content just
  inside the hole leaks into the solution: it must be plausible, not the object being removed), and
  optionally as the network's input (``prefill=True``) for methods that read hole pixels.
- :func:`poisson_blend` -- ``cv2.seamlessClone`` (NORMAL_CLONE) of the fill into the image, one
  connected hole region at a time, on the region's bounding box plus a margin. Regions at the image
  border are handled by reflect-padding the crop, so the clone never touches the crop's edge.

Both work on uint8 (H, W, 3) or (H, W) arrays with a bool (H, W) mask (True = hole) and return
arrays whose known pixels are exactly the input's.
"""

from __future__ import annotations

import cv2
import numpy as np

BLEND_MODES = ("none", "poisson")


def _as_u8_hole(mask: np.ndarray) -> np.ndarray:
    return (np.asarray(mask) > 0.5).astype(np.uint8) * 255


def prefill_telea(image: np.ndarray, mask: np.ndarray, radius: int = 3) -> np.ndarray:
    """Fast-marching (Telea 2004) fill of the hole; known pixels unchanged. uint8 (H, W[, 3])."""
    if image.dtype != np.uint8:
        raise ValueError(f"prefill_telea needs a uint8 image, got {image.dtype}")
    hole = np.asarray(mask) > 0.5
    if not hole.any():
        return image.copy()
    out = cv2.inpaint(np.ascontiguousarray(image), _as_u8_hole(hole), radius, cv2.INPAINT_TELEA)
    out = out.reshape(image.shape)
    return np.where(hole[..., None] if image.ndim == 3 else hole, out, image)


def _crop_padded(a: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """``a[y0:y1, x0:x1]`` where the box may extend past the image: the outside is mirrored."""
    h, w = a.shape[:2]
    cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    crop = a[cy0:cy1, cx0:cx1]
    pads = [(cy0 - y0, y1 - cy1), (cx0 - x0, x1 - cx1)] + [(0, 0)] * (a.ndim - 2)
    if not any(p for pair in pads for p in pair):
        return crop.copy()
    fits = all(b <= crop.shape[i] for i, pair in enumerate(pads[:2]) for b in pair)
    return np.pad(crop, pads, mode="symmetric" if fits else "edge")


def poisson_blend(original: np.ndarray, filled: np.ndarray, mask: np.ndarray, margin: int = 8) -> np.ndarray:
    """Poisson-blend the hole of ``filled`` into ``original`` (OpenCV NORMAL_CLONE).

    ``original`` and ``filled``: uint8 (H, W, 3) or (H, W); ``mask``: (H, W), True/1 = hole. The clone
    mask is the hole itself: OpenCV erodes it by 3 px, so the hole's outer band takes the gradients of
    the fast-marching destination and the seam between known pixels and fill is not carried into the
    solution (a mask grown by 3 px or more would carry it). Each connected region is solved on its
    bounding box plus ``margin`` px (mirrored past the image border). Only hole pixels change.
    """
    if original.shape != filled.shape or original.dtype != np.uint8 or filled.dtype != np.uint8:
        raise ValueError(
            f"poisson_blend needs two uint8 images of one shape; got {original.dtype}{original.shape} "
            f"and {filled.dtype}{filled.shape}"
        )
    hole = np.asarray(mask) > 0.5
    if hole.shape != original.shape[:2]:
        raise ValueError(f"mask is {hole.shape[1]}x{hole.shape[0]} but the image is {original.shape[1]}x{original.shape[0]}")
    gray = original.ndim == 2
    src3 = np.repeat(filled[..., None], 3, 2) if gray else filled
    dst3 = prefill_telea(np.repeat(original[..., None], 3, 2) if gray else original, hole)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hole.astype(np.uint8), connectivity=8)
    out = filled.copy()
    pad = margin + 2
    for i in range(1, n):
        x, y, w, h = (int(v) for v in stats[i, :4])
        y0, y1, x0, x1 = y - pad, y + h + pad, x - pad, x + w + pad
        src = _crop_padded(src3, y0, y1, x0, x1)
        dst = _crop_padded(dst3, y0, y1, x0, x1)
        region = (_crop_padded(labels, y0, y1, x0, x1) == i).astype(np.uint8) * 255
        region[:pad, :] = region[-pad:, :] = 0  # mirrored copies of the region are not ours
        region[:, :pad] = region[:, -pad:] = 0
        bx, by, bw, bh = cv2.boundingRect(region)
        # seamlessClone places the mask's bounding box at p - size // 2: this p keeps it in place
        blended = cv2.seamlessClone(src, dst, region, (bx + bw // 2, by + bh // 2), cv2.NORMAL_CLONE)
        if gray:
            blended = blended.mean(axis=2).round().astype(np.uint8)
        # paste back the part inside the image, hole pixels only
        cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, original.shape[0]), max(x0, 0), min(x1, original.shape[1])
        part = blended[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        sel = hole[cy0:cy1, cx0:cx1] & (labels[cy0:cy1, cx0:cx1] == i)
        view = out[cy0:cy1, cx0:cx1]
        view[sel] = part[sel]
    out[~hole] = original[~hole]
    return out
