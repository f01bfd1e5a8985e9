"""Mask generators and hole geometry. Convention everywhere: float masks, **1 = hole**, 0 = known.

Every generator takes a ``numpy.random.Generator`` so that a seed fully determines the masks.

- :func:`glcic_rect` -- one axis-aligned hole, height and width independently uniform in [lo, hi]
  (Iizuka et al. 2017; 5-12 px at 32x32 in the CIFAR-10 report), random position.
- :func:`two_rect` -- one rectangle in the left third and one in the right two thirds (the
  partial-convolution GAN report's protocol).
- :func:`center_square` -- the centered square of 25% area (Yeh et al. 2017).
- :func:`free_form_strokes` -- brush strokes as in DeepFill v2 (Yu et al. 2019) / LaMa (Suvorov et al.
  2022): random walks of thick lines with round joints.
- :class:`FolderMasks` -- irregular masks from a folder of PNGs (e.g. the NVIDIA irregular mask set),
  with random flip, rotation and dilation.
- :func:`hole_bboxes` (batched) / :func:`hole_bbox` / :func:`local_crop_boxes` -- the hole's bounding box and the fixed-size crop
  centred on it that local discriminators look at.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

MaskFn = Callable[[np.random.Generator, int, int], np.ndarray]

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def _side_range(lo: float, hi: float, side: int) -> tuple[int, int]:
    """Fractions of a side -> integer pixel range [a, b], at least 1 px, at most the side."""
    a = max(1, int(round(lo * side)))
    b = max(a, min(side, int(round(hi * side))))
    return a, b


def glcic_rect(rng: np.random.Generator, h: int, w: int, lo: float = 5 / 32, hi: float = 12 / 32) -> np.ndarray:
    """One rectangular hole; height and width independently uniform in [lo, hi] * side (inclusive)."""
    ha, hb = _side_range(lo, hi, h)
    wa, wb = _side_range(lo, hi, w)
    hh = int(rng.integers(ha, hb + 1))
    ww = int(rng.integers(wa, wb + 1))
    y = int(rng.integers(0, h - hh + 1))
    x = int(rng.integers(0, w - ww + 1))
    m = np.zeros((h, w), np.float32)
    m[y : y + hh, x : x + ww] = 1.0
    return m


def two_rect(rng: np.random.Generator, h: int, w: int, lo: float = 5 / 32, hi: float = 12 / 32) -> np.ndarray:
    """Two rectangles: one inside the left third of the width, one inside the right two thirds.

    The right one starts at least one column after the left third ends, so the two holes never
    touch and always form two separate components.
    """
    third = w // 3
    gap = 1 if third > 0 and w - third > 1 else 0
    m = np.zeros((h, w), np.float32)
    for x0, x1 in ((0, third), (third + gap, w)):
        region_w = x1 - x0
        ha, hb = _side_range(lo, hi, h)
        wa, wb = _side_range(lo, hi, w)
        wb = min(wb, region_w)
        wa = min(wa, wb)
        hh = int(rng.integers(ha, hb + 1))
        ww = int(rng.integers(wa, wb + 1))
        y = int(rng.integers(0, h - hh + 1))
        x = x0 + int(rng.integers(0, region_w - ww + 1))
        m[y : y + hh, x : x + ww] = 1.0
    return m


def center_square(h: int, w: int, area: float = 0.25) -> np.ndarray:
    """Centered square hole covering ``area`` of the image (side = sqrt(area) * side)."""
    sh = int(round(math.sqrt(area) * h))
    sw = int(round(math.sqrt(area) * w))
    y, x = (h - sh) // 2, (w - sw) // 2
    m = np.zeros((h, w), np.float32)
    m[y : y + sh, x : x + sw] = 1.0
    return m


def free_form_strokes(
    rng: np.random.Generator,
    h: int,
    w: int,
    max_strokes: int = 4,
    max_vertices: int = 8,
    max_width: float = 0.1,
    max_length: float = 0.3,
    min_strokes: int = 1,
) -> np.ndarray:
    """Free-form brush strokes (DeepFill v2 / LaMa style).

    Each stroke starts at a random point and makes ``1..max_vertices`` segments of random angle and
    length up to ``max_length * side``, drawn as lines of random width up to ``max_width * side`` with
    round caps (circles at the vertices), so joints have no gaps.
    """
    side = min(h, w)
    m = np.zeros((h, w), np.uint8)
    n_strokes = int(rng.integers(min_strokes, max_strokes + 1))
    for _ in range(n_strokes):
        x, y = float(rng.integers(0, w)), float(rng.integers(0, h))
        width = int(rng.integers(max(1, int(0.02 * side)), max(2, int(max_width * side)) + 1))
        for _ in range(int(rng.integers(1, max_vertices + 1))):
            angle = rng.uniform(0, 2 * math.pi)
            length = rng.uniform(0.05, 1.0) * max_length * side
            nx = float(np.clip(x + length * math.cos(angle), 0, w - 1))
            ny = float(np.clip(y + length * math.sin(angle), 0, h - 1))
            cv2.line(m, (int(x), int(y)), (int(nx), int(ny)), 1, width)
            cv2.circle(m, (int(nx), int(ny)), max(1, width // 2), 1, -1)
            x, y = nx, ny
    return m.astype(np.float32)


class FolderMasks:
    """Irregular masks from a folder of images (white = hole unless ``invert``).

    Each draw picks a file, applies a random horizontal/vertical flip, a rotation by a random angle
    and a random dilation (0..``max_dilate`` px), then resizes (nearest) to the requested size.
    """

    def __init__(self, folder: str | Path, invert: bool = False, max_rotate: float = 45.0, max_dilate: int = 3):
        if not str(folder):
            raise ValueError("mask folder is empty: set masks.folder to a folder of mask images")
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"mask folder not found: {self.folder}")
        self.files = sorted(p for p in self.folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
        if not self.files:
            raise ValueError(f"mask folder {self.folder} holds no mask images ({', '.join(IMAGE_EXTS)})")
        self.invert, self.max_rotate, self.max_dilate = invert, max_rotate, max_dilate

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> np.ndarray:
        """The raw mask ``index`` as float32 (1 = hole), no augmentation."""
        img = cv2.imread(str(self.files[index]), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f"cannot read mask image {self.files[index]}")
        m = (img > 127).astype(np.float32)
        return 1.0 - m if self.invert else m

    def __call__(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        m = self.load(int(rng.integers(0, len(self.files))))
        if rng.random() < 0.5:
            m = m[:, ::-1]
        if rng.random() < 0.5:
            m = m[::-1, :]
        m = np.ascontiguousarray(m)
        if self.max_rotate > 0:
            angle = rng.uniform(-self.max_rotate, self.max_rotate)
            mh, mw = m.shape
            rot = cv2.getRotationMatrix2D((mw / 2, mh / 2), angle, 1.0)
            m = cv2.warpAffine(m, rot, (mw, mh), flags=cv2.INTER_NEAREST, borderValue=0)
        d = int(rng.integers(0, self.max_dilate + 1)) if self.max_dilate > 0 else 0
        if d > 0:
            m = cv2.dilate(m, np.ones((2 * d + 1, 2 * d + 1), np.uint8))
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)
        return (m > 0.5).astype(np.float32)


def lama_strokes(rng, h, w, min_times, max_times, max_width, max_angle, max_len, scale: float = 1.0) -> np.ndarray:
    """LaMa's irregular (stroke) mask; pixel sizes multiplied by ``scale`` (= side / 256)."""
    m = np.zeros((h, w), np.uint8)
    for i in range(int(rng.integers(min_times, max_times + 1))):
        x, y = int(rng.integers(w)), int(rng.integers(h))
        for _ in range(1 + int(rng.integers(5))):
            angle = 0.01 + int(rng.integers(max_angle))
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            length = (10 + int(rng.integers(max_len))) * scale
            width = max(1, int(round((5 + int(rng.integers(max_width))) * scale)))
            nx = int(np.clip(x + length * math.sin(angle), 0, w))
            ny = int(np.clip(y + length * math.cos(angle), 0, h))
            cv2.line(m, (x, y), (nx, ny), 1, width)
            x, y = nx, ny
    return m.astype(np.float32)


def lama_boxes(rng, h, w, margin, bbox_min_size, bbox_max_size, min_times, max_times, scale: float = 1.0) -> np.ndarray:
    """LaMa's rectangle mask; pixel sizes multiplied by ``scale``."""
    margin = int(round(margin * scale))
    lo = max(1, int(round(bbox_min_size * scale)))
    hi = min(int(round(bbox_max_size * scale)), h - 2 * margin, w - 2 * margin)
    hi = max(hi, lo + 1)
    m = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(min_times, max_times + 1))):
        bw, bh = int(rng.integers(lo, hi)), int(rng.integers(lo, hi))
        x = int(rng.integers(margin, max(margin, w - margin - bw) + 1))
        y = int(rng.integers(margin, max(margin, h - margin - bh) + 1))
        m[y : y + bh, x : x + bw] = 1
    return m



# LaMa's training masks (Suvorov et al. 2022; big-lama's ``mask_generator_kind: mixed``): thick
# polygonal strokes (1-5 strokes, width 5 + U[0, 100), length 10 + U[0, 200), angle 4) or 1-4 boxes of
# 30-150 px with a 10 px margin, half and half, at 256 px; pixel sizes scale with min(H, W) / 256.
# Masks over ``LAMA_MAX_AREA`` of the image are redrawn (LaMa excludes them from its test sets).
LAMA_TRAIN_STROKES = dict(min_times=1, max_times=5, max_width=100, max_angle=4, max_len=200)
LAMA_TRAIN_BOXES = dict(margin=10, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=4)
LAMA_MAX_AREA = 0.6


def lama_wide(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """One of LaMa's wide training masks (thick strokes or boxes, half and half), (H, W) float32."""
    scale = min(h, w) / 256
    for _ in range(100):
        if rng.random() < 0.5:
            m = lama_boxes(rng, h, w, scale=scale, **LAMA_TRAIN_BOXES)
        else:
            m = lama_strokes(rng, h, w, scale=scale, **LAMA_TRAIN_STROKES)
        if 0 < m.mean() <= LAMA_MAX_AREA:
            return m
    return m  # pragma: no cover - 100 draws over the limit do not happen at sane sizes


def build_mask_generator(cfg) -> MaskFn:
    """A ``(rng, h, w) -> mask`` function from a :class:`~inpaintgan.config.MaskConfig`."""
    kind = cfg.kind

    def strokes(rng, h, w):
        return free_form_strokes(
            rng, h, w, cfg.stroke_max_strokes, cfg.stroke_max_vertices, cfg.stroke_max_width, cfg.stroke_max_length
        )

    if kind == "glcic_rect":
        return lambda rng, h, w: glcic_rect(rng, h, w, cfg.rect_min, cfg.rect_max)
    if kind == "two_rect":
        return lambda rng, h, w: two_rect(rng, h, w, cfg.rect_min, cfg.rect_max)
    if kind == "center":
        return lambda rng, h, w: center_square(h, w, cfg.center_area)
    if kind == "strokes":
        return strokes
    if kind == "folder":
        return FolderMasks(cfg.folder)
    if kind == "mixed":

        def mixed(rng, h, w):
            if rng.random() < cfg.mixed_rect_prob:
                return glcic_rect(rng, h, w, cfg.rect_min, cfg.rect_max)
            return strokes(rng, h, w)

        return mixed
    if kind == "lama_wide":
        return lama_wide
    raise ValueError(f"unknown mask kind {kind!r}; known: glcic_rect, two_rect, center, strokes, folder, mixed, lama_wide")


# ------------------------------------------------------------------------------------ hole geometry


def hole_bboxes(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounding boxes of the holes (> 0.5) of a batch of masks (N, 1, H, W): ``boxes`` (N, 4) int64
    ``(y0, x0, y1, x1)``, end-exclusive, and ``nonempty`` (N,) bool; a mask without a hole gets the
    empty box ``(0, 0, 0, 0)``. The one hole-box computation: :func:`hole_bbox`,
    :func:`local_crop_boxes` and BTGMI's PPL crops start from it."""
    _, _, h, w = masks.shape
    hole = masks[:, 0] > 0.5  # (N, H, W)
    rows, cols = hole.any(dim=2), hole.any(dim=1)  # (N, H), (N, W)
    ar_h = torch.arange(h, device=masks.device)
    ar_w = torch.arange(w, device=masks.device)
    big = max(h, w) + 1
    y0 = torch.where(rows, ar_h, big).amin(1)
    y1 = torch.where(rows, ar_h, -1).amax(1) + 1
    x0 = torch.where(cols, ar_w, big).amin(1)
    x1 = torch.where(cols, ar_w, -1).amax(1) + 1
    nonempty = rows.any(1)
    boxes = torch.stack([y0, x0, y1, x1], dim=1)
    return torch.where(nonempty[:, None], boxes, torch.zeros_like(boxes)), nonempty


def hole_bbox(mask: np.ndarray | torch.Tensor) -> tuple[int, int, int, int]:
    """Bounding box ``(y0, x0, y1, x1)`` (end-exclusive) of the hole in one (H, W) mask.

    An empty mask gives an empty box ``(0, 0, 0, 0)``.
    """
    m = mask.detach().cpu() if isinstance(mask, torch.Tensor) else torch.from_numpy((np.asarray(mask) > 0.5).astype(np.float32))
    m = m.reshape(1, 1, m.shape[-2], m.shape[-1])
    boxes, _ = hole_bboxes(m)
    return tuple(int(v) for v in boxes[0])


def local_crop_boxes(masks: torch.Tensor, size: int) -> torch.Tensor:
    """Top-left corners (N, 2) of ``size``x``size`` crops centred on each mask's hole bounding box,
    clamped to stay inside the image (GLCIC's local discriminator input). Masks: (N, 1, H, W)."""
    n, _, h, w = masks.shape
    if size > h or size > w:
        raise ValueError(f"local crop {size} is larger than the image {h}x{w}")
    boxes, nonempty = hole_bboxes(masks)
    y0, x0, y1, x1 = boxes.unbind(1)
    empty = ~nonempty
    cy = torch.where(empty, torch.full_like(y0, h // 2), (y0 + y1) // 2)
    cx = torch.where(empty, torch.full_like(x0, w // 2), (x0 + x1) // 2)
    top = (cy - size // 2).clamp(0, h - size)
    left = (cx - size // 2).clamp(0, w - size)
    return torch.stack([top, left], dim=1)


def crop_patches(images: torch.Tensor, corners: torch.Tensor, size: int) -> torch.Tensor:
    """Batched crop: (N, C, H, W) and (N, 2) corners -> (N, C, size, size), differentiable."""
    n, c, _, _ = images.shape
    ar = torch.arange(size, device=images.device)
    ys = (corners[:, 0:1] + ar)[:, :, None].expand(n, size, size)  # (N, s, s)
    xs = (corners[:, 1:2] + ar)[:, None, :].expand(n, size, size)
    bidx = torch.arange(n, device=images.device)[:, None, None].expand(n, size, size)
    return images[bidx, :, ys, xs].permute(0, 3, 1, 2)  # (N, s, s, C) -> (N, C, s, s)


def hole_ratio(mask: np.ndarray | torch.Tensor) -> float:
    """Fraction of pixels that are hole."""
    if isinstance(mask, torch.Tensor):
        return float((mask > 0.5).float().mean())
    return float((np.asarray(mask) > 0.5).mean())
