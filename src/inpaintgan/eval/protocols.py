"""Seeded evaluation mask protocols: the same holes for every method, reproducible anywhere.

The mask of image ``i`` depends only on (protocol, seed, i, height, width) -- never on the order in
which images are visited or on the other images -- because each mask is drawn from its own
``numpy.random.Generator`` seeded with ``(seed, i, protocol id)``. ``inpaintgan masks`` writes them as
PNGs so other tools can be scored on exactly the same holes.

Protocols (1 = hole):

- ``glcic``: one rectangle, sides uniform in 5-12 px at 32x32, scaled with the image (Iizuka et al.
  2017, "Globally and Locally Consistent Image Completion", Sec. 4 / the CIFAR-10 setting).
- ``center``: the centered square covering 25% of the image (Yeh et al. 2017, "Semantic Image
  Inpainting with Deep Generative Models", Sec. 4).
- ``two_rect``: two rectangles, one inside the left third of the width and one inside the right two
  thirds, sides uniform in 5-12 px at 32x32 scaled with the image (20-48 px at 128) -- the two-hole
  protocol of the "Image Inpainting using GANs with Partial Convolutions" report
  (:func:`inpaintgan.masks.two_rect`; sizes are that generator's defaults).
- ``thin`` / ``medium`` / ``thick``: LaMa's evaluation masks (Suvorov et al. 2022, "Resolution-robust
  Large Mask Inpainting with Fourier Convolutions", Sec. 4; configs ``random_{thin,medium,thick}_256``
  of advimman/lama, generator ``MixedMaskGenerator`` in saicinpainting/training/data/masks.py). At
  256 px:

  ====== ========================================================== ===================================
  name   strokes (min/max_times, max_width, max_len, max_angle)      boxes (proba, margin, size, times)
  ====== ========================================================== ===================================
  thin   4-50 strokes, width 5+U[0,10), length 10+U[0,40), 4          none
  medium 4-5 strokes, width 5+U[0,50), length 10+U[0,100), 4          p=0.3, 0, 10-50 px, 1-5 boxes
  thick  1-5 strokes, width 5+U[0,100), length 10+U[0,200), 4         p=0.3, 10, 30-150 px, 1-3 boxes
  ====== ========================================================== ===================================

  Each stroke has 1-5 segments with angle 0.01 + U{0..max_angle-1} radians (mirrored on every other
  stroke); the generator picks strokes or boxes with probability proportional to (1, box proba).
  Masks covering more than half of the image are redrawn (LaMa's ``max_tamper_area: 0.5``). Pixel
  sizes scale with min(H, W) / 256.
- ``irregular``: masks from a folder (e.g. NVIDIA's irregular mask test set), resized to the image
  (nearest) and binned by hole ratio into 1-10%, 10-20%, ..., 50-60% (Liu et al. 2018, "Image
  Inpainting for Irregular Holes Using Partial Convolutions", Sec. 4.2). Image ``i`` takes bin
  ``i mod (non-empty bins)`` and a seeded pick inside that bin, so the bins are filled evenly.
- ``freeform_buckets``: strokes and rectangles added one at a time until the hole ratio falls in the
  image's target bucket (0-10%, 10-20%, 20-30%, 30-40%; bucket ``i mod 4``), redrawing on overshoot,
  so every bucket holds the same number of images.
"""

from __future__ import annotations

import abc
import math
import zlib
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch

from inpaintgan.masks import IMAGE_EXTS, center_square, glcic_rect, lama_boxes, lama_strokes, two_rect
from inpaintgan.registry import UnknownNameError

Bucket = tuple[float, float]

#: default reporting buckets (hole ratio in [lo, hi)) for protocols without their own
DEFAULT_BUCKETS: tuple[Bucket, ...] = tuple((i / 10, (i + 1) / 10) for i in range(6)) + ((0.6, 1.0001),)
#: the partial-convolution paper's bins (Liu et al. 2018, Sec. 4.2)
PCONV_BUCKETS: tuple[Bucket, ...] = ((0.01, 0.1),) + tuple((i / 10, (i + 1) / 10) for i in range(1, 6))
FREEFORM_BUCKETS: tuple[Bucket, ...] = ((0.0, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4))


def bucket_label(bucket: Bucket) -> str:
    """``(0.1, 0.2)`` -> ``"10-20%"``."""
    lo, hi = bucket
    return f"{round(lo * 100):d}-{min(100, round(hi * 100)):d}%"


def find_bucket(ratio: float, buckets: tuple[Bucket, ...]) -> str:
    """Label of the bucket holding ``ratio`` (lo <= ratio < hi; a zero ratio goes to the first bucket
    that starts at 0), or ``"other"``."""
    for lo, hi in buckets:
        if lo <= ratio < hi:
            return bucket_label((lo, hi))
    return "other"


def _protocol_key(name: str) -> int:
    return zlib.crc32(name.encode())


class Protocol(abc.ABC):
    """A deterministic map (index, H, W) -> mask. Subclasses implement :meth:`draw`."""

    name: str = "?"
    buckets: tuple[Bucket, ...] = DEFAULT_BUCKETS

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def rng(self, index: int) -> np.random.Generator:
        """The generator of image ``index``: seeded by (seed, index, protocol name) only."""
        if index < 0:
            raise ValueError(f"image index must be >= 0, got {index}")
        return np.random.default_rng([self.seed & 0xFFFFFFFF, int(index), _protocol_key(self.name)])

    @abc.abstractmethod
    def draw(self, rng: np.random.Generator, index: int, h: int, w: int) -> np.ndarray:
        """One (H, W) float32 mask, 1 = hole."""

    def mask(self, index: int, h: int, w: int | None = None) -> np.ndarray:
        """The mask of image ``index`` at (h, w): float32 (H, W), 1 = hole."""
        w = h if w is None else w
        if h < 1 or w < 1:
            raise ValueError(f"mask size must be positive, got {h}x{w}")
        m = self.draw(self.rng(index), index, h, w)
        return np.ascontiguousarray((m > 0.5).astype(np.float32))

    def masks(self, indices, h: int, w: int | None = None) -> torch.Tensor:
        """Masks of several images as a (N, 1, H, W) float tensor."""
        return torch.from_numpy(np.stack([self.mask(int(i), h, w) for i in indices]))[:, None]

    def bucket(self, ratio: float) -> str:
        """The reporting bucket of a hole ratio."""
        return find_bucket(ratio, self.buckets)

    def describe(self) -> dict:
        return {"protocol": self.name, "seed": self.seed, "buckets": [bucket_label(b) for b in self.buckets]}


class GLCICProtocol(Protocol):
    name = "glcic"

    def draw(self, rng, index, h, w):
        return glcic_rect(rng, h, w, 5 / 32, 12 / 32)


class CenterProtocol(Protocol):
    name = "center"

    def draw(self, rng, index, h, w):
        return center_square(h, w, 0.25)


class TwoRectProtocol(Protocol):
    """One hole in the left third, one in the right two thirds (the partial-convolution GAN report)."""

    name = "two_rect"

    def draw(self, rng, index, h, w):
        return two_rect(rng, h, w, 5 / 32, 12 / 32)


# LaMa's generator settings at 256 px (configs/data_gen/random_*_256.yaml)
LAMA_SETTINGS: dict[str, dict] = {
    "thin": {"strokes": dict(min_times=4, max_times=50, max_width=10, max_angle=4, max_len=40), "box_proba": 0.0},
    "medium": {
        "strokes": dict(min_times=4, max_times=5, max_width=50, max_angle=4, max_len=100),
        "box_proba": 0.3,
        "boxes": dict(margin=0, bbox_min_size=10, bbox_max_size=50, min_times=1, max_times=5),
    },
    "thick": {
        "strokes": dict(min_times=1, max_times=5, max_width=100, max_angle=4, max_len=200),
        "box_proba": 0.3,
        "boxes": dict(margin=10, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=3),
    },
}


class LaMaProtocol(Protocol):
    """LaMa's thin / medium / thick evaluation masks (see the module docstring)."""

    max_area = 0.5

    def __init__(self, kind: str, seed: int = 0):
        super().__init__(seed)
        self.name = kind
        self.settings = LAMA_SETTINGS[kind]

    def draw(self, rng, index, h, w):
        scale = min(h, w) / 256
        p_box = self.settings["box_proba"] / (1 + self.settings["box_proba"])
        for _ in range(1000):
            if rng.random() < p_box:
                m = lama_boxes(rng, h, w, scale=scale, **self.settings["boxes"])
            else:
                m = lama_strokes(rng, h, w, scale=scale, **self.settings["strokes"])
            if 0 < m.mean() <= self.max_area:
                return m
        raise RuntimeError(f"{self.name}: no mask with hole ratio in (0, {self.max_area}] after 1000 draws at {h}x{w}")


@lru_cache(maxsize=8)
def _folder_bins(folder: str, h: int, w: int, invert: bool) -> tuple[tuple[str, ...], ...]:
    """Files of a mask folder grouped into the PCONV_BUCKETS by their hole ratio at (h, w)."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise ValueError(f"mask folder {folder} holds no mask images ({', '.join(IMAGE_EXTS)})")
    bins: list[list[str]] = [[] for _ in PCONV_BUCKETS]
    for p in files:
        m = _load_folder_mask(str(p), h, w, invert)
        r = float(m.mean())
        for k, (lo, hi) in enumerate(PCONV_BUCKETS):
            if lo <= r < hi:
                bins[k].append(str(p))
    return tuple(tuple(b) for b in bins)


def _load_folder_mask(path: str, h: int, w: int, invert: bool) -> np.ndarray:
    from inpaintgan.imageio import read_mask  # the one mask reader (errors name the file)

    m = read_mask(path, None).astype(np.float32)
    if invert:
        m = 1 - m
    return cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)


class IrregularFolderProtocol(Protocol):
    """Irregular masks from a folder, binned by hole ratio (partial-convolution protocol).

    White (> 127) is hole unless ``invert`` (NVIDIA's set marks holes black: use ``invert=True``).
    """

    name = "irregular"
    buckets = PCONV_BUCKETS

    def __init__(self, folder: str | Path, seed: int = 0, invert: bool = False):
        super().__init__(seed)
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"mask folder not found: {self.folder}")
        self.invert = invert

    def draw(self, rng, index, h, w):
        bins = [b for b in _folder_bins(str(self.folder.resolve()), h, w, self.invert) if b]
        if not bins:
            raise ValueError(f"no mask in {self.folder} has a hole ratio in 1-60% at {h}x{w}")
        files = bins[index % len(bins)]
        # a seeded permutation per bin (not per image), so images of one bin see distinct masks
        bin_rng = np.random.default_rng([self.seed & 0xFFFFFFFF, index % len(bins), _protocol_key(self.name)])
        perm = bin_rng.permutation(len(files))
        return _load_folder_mask(files[perm[(index // len(bins)) % len(files)]], h, w, self.invert)

    def describe(self) -> dict:
        return {**super().describe(), "folder": str(self.folder), "invert": self.invert}


class FreeformBucketsProtocol(Protocol):
    """Stroke + rectangle masks drawn until the hole ratio lands in bucket ``index mod 4``."""

    name = "freeform_buckets"
    buckets = FREEFORM_BUCKETS

    def _component(self, rng, h, w) -> np.ndarray:
        side = min(h, w)
        m = np.zeros((h, w), np.uint8)
        if rng.random() < 0.3:
            bh = int(rng.integers(max(1, side // 16), max(2, side // 3) + 1))
            bw = int(rng.integers(max(1, side // 16), max(2, side // 3) + 1))
            y, x = int(rng.integers(0, h - min(bh, h) + 1)), int(rng.integers(0, w - min(bw, w) + 1))
            m[y : y + bh, x : x + bw] = 1
            return m
        x, y = int(rng.integers(w)), int(rng.integers(h))
        width = max(1, int(round(rng.uniform(0.02, 0.12) * side)))
        for _ in range(1 + int(rng.integers(4))):
            angle = rng.uniform(0, 2 * math.pi)
            length = rng.uniform(0.1, 0.4) * side
            nx = int(np.clip(x + length * math.cos(angle), 0, w - 1))
            ny = int(np.clip(y + length * math.sin(angle), 0, h - 1))
            cv2.line(m, (x, y), (nx, ny), 1, width)
            cv2.circle(m, (nx, ny), max(1, width // 2), 1, -1)
            x, y = nx, ny
        return m

    def draw(self, rng, index, h, w):
        lo, hi = self.buckets[index % len(self.buckets)]
        for _ in range(200):
            m = np.zeros((h, w), np.uint8)
            for _ in range(200):
                m |= self._component(rng, h, w)
                r = float(m.mean())
                if r >= hi:
                    break  # overshoot: start again
                if r >= lo and r > 0:
                    return m.astype(np.float32)
        raise RuntimeError(f"freeform_buckets: could not hit hole ratio [{lo}, {hi}) at {h}x{w}")


PROTOCOLS = ("glcic", "center", "two_rect", "thin", "medium", "thick", "irregular", "freeform_buckets")


def get_protocol(name: str, seed: int = 0, mask_dir: str | Path | None = None, invert: bool = False) -> Protocol:
    """A protocol by name; ``irregular`` needs ``mask_dir``. Unknown names list the known ones."""
    if name == "glcic":
        return GLCICProtocol(seed)
    if name == "center":
        return CenterProtocol(seed)
    if name == "two_rect":
        return TwoRectProtocol(seed)
    if name in LAMA_SETTINGS:
        return LaMaProtocol(name, seed)
    if name == "freeform_buckets":
        return FreeformBucketsProtocol(seed)
    if name == "irregular":
        if not mask_dir:
            raise ValueError("protocol 'irregular' needs a folder of mask images (--mask-dir)")
        return IrregularFolderProtocol(mask_dir, seed, invert)
    raise UnknownNameError(f"unknown mask protocol {name!r}; known protocols: {', '.join(PROTOCOLS)}")
