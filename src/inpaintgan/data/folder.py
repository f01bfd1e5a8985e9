"""Image sources. A source maps an index to a uint8 ``(H, W, C)`` array (C = 3, or 1 for grayscale)
and knows nothing of training; :class:`~inpaintgan.data.inpainting.InpaintingDataset` adds crops,
flips and masks."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
# What a corrupt, truncated or hostile image file raises inside Pillow (a decompression bomb is not an
# OSError; a truncated GIF gives EOFError; some broken headers surface as struct/zlib errors).
READ_ERRORS = (
    OSError,
    UnidentifiedImageError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)


class ImageSource:
    """Base class: ``len(source)`` images, ``source.load(i)`` -> uint8 (H, W, C) or None if unreadable."""

    grayscale: bool = False

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self, index: int) -> np.ndarray | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self, index: int) -> str:
        return f"{type(self).__name__}[{index}]"


def list_images(root: str | Path) -> list[Path]:
    """All image files under ``root`` (recursive, sorted, by extension)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"data folder not found: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"data path is not a folder: {root}")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def _to_8bit_gray(im: Image.Image) -> Image.Image:
    """Single-channel 16/32-bit integer or float image -> "L". Pillow's own ``convert`` clips such
    values at 255 (a 16-bit PNG turns almost white), so scale instead, by the one rule of the image
    readers (:func:`inpaintgan.imageio.gray_to_uint8`: 16-bit by 1/257, floats in [0, 1] by 255; NaN/Inf
    refused, so the dataset skips such a file as unreadable)."""
    from inpaintgan.imageio import gray_to_uint8

    return Image.fromarray(gray_to_uint8(np.asarray(im)), "L")


def read_image_array(path: str | Path, grayscale: bool = False) -> np.ndarray:
    """Read an image file as uint8 (H, W, C): EXIF orientation applied, any mode -> RGB (or L).
    Transparent pixels are composited onto white; 16-bit and float images are scaled to 8 bits."""
    from inpaintgan.imagefile import open_image  # the one reader (upright; no pixel limit of ours here)

    with open_image(path, None) as im:
        if im.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
            im = _to_8bit_gray(im)
        if im.mode in ("RGBA", "RGBa", "LA", "La", "PA") or (im.mode in ("P", "L", "RGB") and "transparency" in im.info):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        im = im.convert("L" if grayscale else "RGB")
        arr = np.array(im, dtype=np.uint8)  # a writable copy
    return arr[:, :, None] if arr.ndim == 2 else arr


class ImageFolder(ImageSource):
    """Every image under a folder (recursive; jpg/png/webp/bmp/tiff). Unreadable files give ``None``
    from :meth:`load` with a warning, and are counted in :attr:`bad_files`."""

    def __init__(self, root: str | Path, grayscale: bool = False, files: list[Path] | None = None):
        self.root = Path(root)
        self.files = list(files) if files is not None else list_images(self.root)
        if not self.files:
            raise ValueError(f"data folder {self.root} holds no images ({', '.join(IMAGE_EXTS)})")
        self.grayscale = grayscale
        self.bad_files: set[str] = set()

    def __len__(self) -> int:
        return len(self.files)

    def describe(self, index: int) -> str:
        return str(self.files[index])

    def load(self, index: int) -> np.ndarray | None:
        path = self.files[index]
        try:
            return read_image_array(path, self.grayscale)
        except READ_ERRORS as e:
            if str(path) not in self.bad_files:
                self.bad_files.add(str(path))
                warnings.warn(f"skipping unreadable image {path}: {e}", stacklevel=2)
            return None
