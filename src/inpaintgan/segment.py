"""Object selection: a mask of the object inside a box, with OpenCV's GrabCut (no weights needed).

    from inpaintgan.segment import select_object
    mask = select_object("photo.jpg", box=(x0, y0, x1, y1))                   # bool (H, W), True = object
    mask = select_object(img, box, object_strokes=obj, background_strokes=bg)  # refine with strokes

GrabCut (Rother et al. 2004) models the object and the background as Gaussian mixtures of colours
and cuts the image along strong edges between them. Here it is seeded with a box (everything outside
is background, everything inside is "probably object") and, optionally, with strokes the user marked
as certainly object / certainly background. Large images are cut at a working resolution (the long
side at most ``max_side`` px; the box is enlarged by a margin so GrabCut sees background around the
object), and the mask is brought back to full size with the object's edges snapped on the image at
up to twice that scale (one more GrabCut pass in a band around the boundary).

The result is the largest connected part of the cut (or, with object strokes, the parts they touch),
small holes inside it filled: a removal mask should cover the whole object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

#: GrabCut runs at most at this long side (px); larger images are cut at this scale
MAX_SIDE = 512
#: the edges are snapped at most at this times MAX_SIDE (larger crops: upsampled from there)
REFINE_FACTOR = 1.5
#: GrabCut iterations
ITERATIONS = 5
#: context kept around the box, as a fraction of the box's size (and at least MIN_MARGIN px)
MARGIN = 0.5
MIN_MARGIN = 16
#: holes inside the selection smaller than this fraction of its area are filled
HOLE_FRACTION = 0.05

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1), end-exclusive, image pixels


class SegmentError(ValueError):
    """A selection that cannot be made (a box outside the image, too small, ...): a one-line message."""


def _as_rgb_uint8(image: Any) -> np.ndarray:
    """A PIL image, a path or a numpy array -> (H, W, 3) uint8 RGB."""
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        from inpaintgan.imageio import read_image

        image = read_image(image)
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            from inpaintgan.imageio import to_rgb

            image = to_rgb(image)
        return np.asarray(image)
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise SegmentError(f"expected an image (H, W), (H, W, 3) or (H, W, 4); got shape {a.shape}")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    a = a[:, :, :3]
    if a.dtype != np.uint8:
        f = a.astype(np.float32)
        if np.issubdtype(a.dtype, np.floating):
            f = f * 255.0
        elif a.dtype == np.uint16:
            f = f / 257.0
        a = np.clip(f + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a)


def _as_hint(m: Any, shape: tuple[int, int], name: str) -> np.ndarray | None:
    if m is None:
        return None
    if isinstance(m, Image.Image) or isinstance(m, (str, bytes)) or hasattr(m, "__fspath__"):
        from inpaintgan.imageio import read_mask

        m = read_mask(m)
    a = np.asarray(m)
    if a.ndim == 3:
        from inpaintgan.imageio import mask_from_array

        a = mask_from_array(a)
    a = a > (0.5 if np.issubdtype(a.dtype, np.floating) or a.dtype == bool else 127)
    if a.shape != shape:
        raise SegmentError(f"the {name} mask is {a.shape[1]}x{a.shape[0]} but the image is {shape[1]}x{shape[0]}")
    return a


def check_box(box: Any, width: int, height: int) -> Box:
    """(x0, y0, x1, y1) as ints, clipped to the image; a box with no area inside it is an error."""
    try:
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    except (TypeError, ValueError):
        raise SegmentError(f"box must be four numbers x0, y0, x1, y1 (image pixels), got {box!r}") from None
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise SegmentError(f"the box ({x0}, {y0}, {x1}, {y1}) has no area inside the {width}x{height} image "
                           "(it must be at least 2x2 px)")
    return x0, y0, x1, y1


def select_object(
    image: Any,
    box: Any = None,
    *,
    object_strokes: Any = None,
    background_strokes: Any = None,
    iterations: int = ITERATIONS,
    max_side: int = MAX_SIDE,
    keep_largest: bool = True,
) -> np.ndarray:
    """The object's mask, bool (H, W) (True = object), cut with GrabCut.

    ``box``: (x0, y0, x1, y1) around the object, image pixels (None: the whole image, then strokes
    are needed). ``object_strokes`` / ``background_strokes``: masks (bool / uint8 (H, W), PIL or a
    path) of pixels the user marked as certainly object / certainly background; they override the
    box; only strokes inside the box count. ``max_side``: the working resolution's long side. Raises :class:`SegmentError` for a
    box outside the image, or strokes and box that leave nothing to cut.
    """
    rgb, (x0, y0, x1, y1), fg, bg = _selection_inputs(image, box, object_strokes, background_strokes, iterations)
    h, w = rgb.shape[:2]
    region = _Region.around(rgb, (x0, y0, x1, y1), max_side)
    labels, fg_small = _grabcut_labels(region, (x0, y0, x1, y1), fg, bg)
    bgd_model, fgd_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(region.small[:, :, ::-1])
    cv2.setRNGSeed(0)  # GrabCut's k-means start draws from OpenCV's global RNG: the same input, the same cut
    cv2.grabCut(bgr, labels, None, bgd_model, fgd_model, int(iterations), cv2.GC_INIT_WITH_MASK)
    obj = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if keep_largest:
        obj = _clean(obj, fg_small)
    out = np.zeros((h, w), bool)
    cx0, cy0, cx1, cy1 = region.bounds
    out[cy0:cy1, cx0:cx1] = region.to_full(obj, max_side)
    out[:y0, :] = out[y1:, :] = False  # the box bounds the object
    out[:, :x0] = out[:, x1:] = False
    if fg is not None:
        out |= fg
    if bg is not None:
        out &= ~bg
    return out


def _selection_inputs(
    image: Any, box: Any, object_strokes: Any, background_strokes: Any, iterations: int
) -> tuple[np.ndarray, tuple[int, int, int, int], np.ndarray | None, np.ndarray | None]:
    """(RGB uint8 image, the checked box, object strokes, background strokes): strokes as bool masks of
    the image's size, kept only where they fall inside the box (None when none do)."""
    rgb = _as_rgb_uint8(image)
    h, w = rgb.shape[:2]
    fg = _as_hint(object_strokes, (h, w), "object strokes")
    bg = _as_hint(background_strokes, (h, w), "background strokes")
    if box is None:
        if fg is None:
            raise SegmentError("give a box around the object, or object strokes")
        box = (0, 0, w, h)
    x0, y0, x1, y1 = check_box(box, w, h)
    inbox = np.zeros((h, w), bool)
    inbox[y0:y1, x0:x1] = True
    # only strokes inside the box count (outside it everything is background anyway; an object
    # stroke there belongs to another selection)
    fg = fg & inbox if fg is not None and (fg & inbox).any() else None
    bg = bg & inbox if bg is not None and (bg & inbox).any() else None
    if iterations < 1:
        raise SegmentError(f"iterations must be >= 1, got {iterations}")
    return rgb, (x0, y0, x1, y1), fg, bg


@dataclass
class _Region:
    """The region GrabCut works on: the box plus a margin of context (``bounds`` in the image), and
    that crop scaled to at most ``max_side`` px long (``small``, at ``scale``)."""

    crop: np.ndarray
    bounds: tuple[int, int, int, int]
    scale: float
    small: np.ndarray

    @classmethod
    def around(cls, rgb: np.ndarray, box: tuple[int, int, int, int], max_side: int) -> _Region:
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = box
        bw, bh = x1 - x0, y1 - y0
        mx, my = max(MIN_MARGIN, int(MARGIN * bw)), max(MIN_MARGIN, int(MARGIN * bh))
        cx0, cy0, cx1, cy1 = max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)
        crop = rgb[cy0:cy1, cx0:cx1]
        ch, cw = crop.shape[:2]
        scale = min(1.0, max_side / max(ch, cw))
        sw, sh = max(1, round(cw * scale)), max(1, round(ch * scale))
        small = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA) if scale < 1 else crop
        return cls(crop, (cx0, cy0, cx1, cy1), scale, small)

    def to_small(self, a: np.ndarray) -> np.ndarray:
        """A full-size bool mask -> the region at the working scale."""
        cx0, cy0, cx1, cy1 = self.bounds
        sub = a[cy0:cy1, cx0:cx1].astype(np.uint8)
        sh, sw = self.small.shape[:2]
        return cv2.resize(sub, (sw, sh), interpolation=cv2.INTER_NEAREST) > 0 if self.scale < 1 else sub > 0

    def to_full(self, obj: np.ndarray, max_side: int) -> np.ndarray:
        """The cut at the working scale -> the crop's size: the soft mask upsampled and snapped on the
        edges at up to :data:`REFINE_FACTOR` times the working scale."""
        if self.scale >= 1:
            return obj
        ch, cw = self.crop.shape[:2]
        rscale = min(1.0, REFINE_FACTOR * max_side / max(ch, cw))
        rw, rh = max(1, round(cw * rscale)), max(1, round(ch * rscale))
        fine = cv2.resize(self.crop, (rw, rh), interpolation=cv2.INTER_AREA) if rscale < 1 else self.crop
        soft = cv2.resize(obj.astype(np.float32), (rw, rh), interpolation=cv2.INTER_LINEAR)
        obj = _refine_edges(fine, soft)
        if rscale < 1:
            obj = cv2.resize(obj.astype(np.float32), (cw, ch), interpolation=cv2.INTER_LINEAR) > 0.5
        return obj


def _grabcut_labels(
    region: _Region, box: tuple[int, int, int, int], fg: np.ndarray | None, bg: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """GrabCut's start labels at the working scale (the box probably object, strokes certain) and the
    object strokes there; a :class:`SegmentError` when nothing is background or nothing is left."""
    x0, y0, x1, y1 = box
    cx0, cy0 = region.bounds[:2]
    scale = region.scale
    sh, sw = region.small.shape[:2]
    labels = np.full((sh, sw), cv2.GC_BGD, np.uint8)
    bx0, by0 = int((x0 - cx0) * scale), int((y0 - cy0) * scale)
    bx1, by1 = max(bx0 + 1, int(np.ceil((x1 - cx0) * scale))), max(by0 + 1, int(np.ceil((y1 - cy0) * scale)))
    labels[by0:by1, bx0:bx1] = cv2.GC_PR_FGD
    if bg is not None:
        labels[region.to_small(bg)] = cv2.GC_BGD
    fg_small = region.to_small(fg) if fg is not None else None
    if fg_small is not None:
        labels[fg_small] = cv2.GC_FGD
    if not ((labels == cv2.GC_BGD).any() and (labels != cv2.GC_BGD).any()):
        if not (labels == cv2.GC_BGD).any():
            raise SegmentError("nothing is marked as background: draw a box smaller than the image, or background strokes")
        raise SegmentError("nothing is left to select: the background strokes cover the whole box")
    return labels, fg_small


def _clean(obj: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """The parts touching ``keep`` (object strokes), else the largest part; small holes filled (a
    hole of less than HOLE_FRACTION of the object's area; a ring keeps its middle)."""
    if not obj.any():
        return obj
    n, lab, stats, _ = cv2.connectedComponentsWithStats(obj.astype(np.uint8), connectivity=8)
    if n > 2:
        touched = {int(v) for v in np.unique(lab[keep & obj])} - {0} if keep is not None else set()
        wanted = touched or {1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))}
        obj = np.isin(lab, sorted(wanted))
    # fill holes: background pixels not connected to the border
    inv = (~obj).astype(np.uint8)
    n, lab = cv2.connectedComponents(inv, connectivity=4)
    border = set(np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))) - {0}
    inner = [i for i in range(1, n) if i not in border]
    if inner:
        areas = np.bincount(lab.ravel(), minlength=n)
        small = [i for i in inner if areas[i] < HOLE_FRACTION * obj.sum()]
        obj = obj | np.isin(lab, small)
    return obj


def _refine_edges(rgb: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """Snap an upsampled mask to the full-resolution image: one GrabCut pass in a thin band around
    the boundary (certain inside / outside elsewhere)."""
    band = max(2, int(round(max(rgb.shape[:2]) / MAX_SIDE * 2)))
    inner = soft > 0.5
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    sure_fg = cv2.erode(inner.astype(np.uint8), k) > 0
    maybe = cv2.dilate(inner.astype(np.uint8), k) > 0
    if not sure_fg.any() or maybe.all():
        return inner
    labels = np.where(sure_fg, cv2.GC_FGD, np.where(maybe, np.where(inner, cv2.GC_PR_FGD, cv2.GC_PR_BGD), cv2.GC_BGD)).astype(np.uint8)
    try:
        cv2.setRNGSeed(0)
        cv2.grabCut(np.ascontiguousarray(rgb[:, :, ::-1]), labels, None, np.zeros((1, 65)), np.zeros((1, 65)), 1,
                    cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # degenerate colour statistics in the band: keep the upsampled mask
        return inner
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def synthetic_scene(kind: str, size: int = 160, seed: int = 0, background: bool = False) -> tuple:
    """A test scene: an object of known shape (``disc``, ``square``, ``triangle``, ``ring``, ``blob``)
    on a textured background. Returns (RGB uint8 (H, W, 3), the object's mask, a box around it with
    a few pixels of slack), and with ``background=True`` also the background without the object
    (uint8), the ground truth of removing it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    # background: two colours in a random stripe / checker texture plus noise
    c1, c2 = rng.uniform(60, 200, 3), rng.uniform(60, 200, 3)
    period = rng.uniform(6, 14)
    angle = rng.uniform(0, np.pi)
    t = 0.5 + 0.5 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    t = t * (0.5 + 0.5 * (((xx // 9 + yy // 9) % 2) > 0))
    bgimg = c1 * t[..., None] + c2 * (1 - t[..., None]) + rng.normal(0, 12, (size, size, 3))
    # the object: a colour far from both background colours, with its own shading and noise
    for _ in range(100):
        co = rng.uniform(0, 255, 3)
        if min(np.abs(co - c1).sum(), np.abs(co - c2).sum()) > 90:
            break
    cy, cx = size / 2 + rng.uniform(-size / 10, size / 10, 2)
    r = size * rng.uniform(0.2, 0.28)
    if kind == "disc":
        obj = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    elif kind == "square":
        obj = (np.abs(yy - cy) <= r * 0.9) & (np.abs(xx - cx) <= r * 0.9)
    elif kind == "triangle":
        obj = (yy <= cy + r * 0.8) & (yy - (cy - r) >= 1.8 * np.abs(xx - cx))
    elif kind == "ring":
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        obj = (d2 <= r**2) & (d2 >= (0.45 * r) ** 2)
    elif kind == "blob":
        ang = np.arctan2(yy - cy, xx - cx)
        rr = r * (1 + 0.25 * np.sin(3 * ang + rng.uniform(0, 6)) + 0.1 * np.cos(5 * ang))
        obj = (yy - cy) ** 2 + (xx - cx) ** 2 <= rr**2
    else:
        raise ValueError(f"unknown scene {kind!r}; known: disc, square, triangle, ring, blob")
    # the object's own texture: shading and fine stripes of another tone
    shade = 1 + 0.25 * (xx - cx) / size
    stripes = 0.12 * np.sin((xx + yy) * 2 * np.pi / rng.uniform(4, 9))
    objimg = co * (shade + stripes)[..., None] + rng.normal(0, 12, (size, size, 3))
    img = np.where(obj[..., None], objimg, bgimg)
    img = np.clip(img, 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(obj)
    slack = max(3, size // 16)
    box = (int(xs.min()) - slack, int(ys.min()) - slack, int(xs.max()) + 1 + slack, int(ys.max()) + 1 + slack)
    if background:
        return img, obj, box, np.clip(bgimg, 0, 255).astype(np.uint8)
    return img, obj, box


SCENES = ("disc", "square", "triangle", "ring", "blob")

__all__ = ["select_object", "check_box", "iou", "synthetic_scene", "SegmentError", "SCENES"]
