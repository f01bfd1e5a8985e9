"""Images and masks as the library's edges see them, on top of the one reader and writer
(:mod:`inpaintgan.imagefile`: every path -- CLI, Python API, server, eval -- reads and writes through it,
with the same size/pixel limits, decompression-bomb guard and one-line errors naming the file).

Images: :func:`read_image` gives an upright RGB PIL image (any Pillow mode converted: 16-bit grayscale
scaled, alpha dropped), EXIF kept in ``info`` without its orientation.

Masks (1 = hole): any mode (1, L, I;16, RGB, RGBA, P), from a file, its bytes or a PIL image
(:func:`read_mask`, :func:`mask_from_image`). RGBA/LA masks whose colour is uniform but whose alpha
varies (a brush layer exported from an image editor) use the alpha channel; otherwise the brightest
colour channel, times the alpha, is thresholded at 50% of full scale, so white, red or any bright
stroke on black marks the hole. ``dilate`` grows the hole with an elliptical kernel.

Writing (:func:`write_image`, for PIL images and arrays) is atomic (temp file + rename,
:func:`inpaintgan.checkpoints.atomic_write`) by the one writer; the format comes from the extension,
JPEG and WebP use quality 95, EXIF is kept without its orientation tag (the pixels are already upright
after reading), and a PIL image's ICC profile and DPI are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

# the one reader and writer live in imagefile; these names stay importable from here
from inpaintgan.imagefile import (  # noqa: F401 - re-exported
    DEFAULT_MAX_PIXELS,
    FORMATS,
    IMAGE_EXTS,
    ImageFile,
    ImageReadError,
    ReadRules,
    encode_image_file,
    format_for,
    from_pil,
    open_image,
)


class MaskError(ValueError):
    """A mask that does not fit its image (other size, covers everything, ...)."""


# ------------------------------------------------------------------------------------------ reading


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB. 16/32-bit grayscale is scaled (not clipped) to 8 bits; alpha is dropped
    (the colour under transparent pixels is kept as stored)."""
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I") or img.mode == "F":
        return Image.fromarray(gray_to_uint8(np.asarray(img)), "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def gray_to_uint8(a: np.ndarray) -> np.ndarray:
    """High-bit-depth grayscale -> uint8 by full-scale division (16-bit data: /257; floats in [0, 1]: x 255);
    the one such rule of every reader (``imagefile`` keeps 16-bit data and scales it with the same /257)."""
    x = a.astype(np.float64)
    if not np.isfinite(x).all():
        raise ImageReadError("the image holds NaN/Inf values; float images must be finite")
    hi = float(x.max()) if x.size else 0.0
    if a.dtype.kind == "f" and hi <= 1.0:
        x = x * 255.0
    elif hi > 255:
        x = x / 257.0
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def read_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read an image file as an upright RGB PIL image (EXIF kept in ``info``, orientation removed)."""
    img = open_image(path, max_pixels)
    exif = img.info.get("exif")
    out = to_rgb(img)
    if exif is not None:
        out.info["exif"] = exif
    return out


def mask_from_array(a: np.ndarray) -> np.ndarray:
    """A mask array in any common layout -> bool (H, W), True = hole.

    Accepts (H, W) or (H, W, C) with C = 1 (gray), 2 (gray + alpha), 3 (RGB), 4 (RGBA); bool, unsigned
    integer (50% of full scale: >= 128 for uint8, >= 32768 for uint16) or float (> 0.5) values.
    With an alpha channel: if the colour is uniform and the alpha varies, the alpha is the mask;
    otherwise colour x alpha (transparent = known).
    """
    a = np.asarray(a)
    if a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
        raise MaskError(f"the mask holds {int((~np.isfinite(a)).sum())} NaN/Inf value(s); a float mask must be finite (1 = hole)")
    if a.dtype.kind not in "biuf":
        raise MaskError(f"unsupported mask dtype {a.dtype} (bool, unsigned integers or float)")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        return _threshold(a)
    if a.ndim != 3 or a.shape[2] not in (2, 3, 4):
        raise MaskError(f"a mask must be (H, W) or (H, W, 1|2|3|4); got shape {tuple(a.shape)}")
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if a.dtype == np.uint8 and a.shape[2] == 3:  # the common RGB mask, without float copies
        return a.max(axis=2) > 127
    full = _full_scale(a)
    x = a.astype(np.float32) / full
    if a.shape[2] in (2, 4):
        color, alpha = x[:, :, :-1], x[:, :, -1]
        uniform_color = bool(np.all(color == color[:1, :1, :]))
        if uniform_color and alpha.min() != alpha.max():
            return alpha > 0.5
        value = color.max(axis=2) * alpha
    else:
        value = x.max(axis=2)
    return value > 0.5


def _full_scale(a: np.ndarray) -> float:
    """Full-scale value of an array's dtype as used for masks (1 for floats and 0/1 integers)."""
    if a.dtype.kind == "f":
        return 1.0
    if a.dtype == np.uint8:
        return 255.0
    if a.dtype == np.uint16:
        return 65535.0
    if a.dtype.kind in "iu":  # e.g. Pillow's 'I' mode, or 0/1 / 0/255 int arrays from users
        hi = int(a.max()) if a.size else 0
        return 1.0 if hi <= 1 else 255.0 if hi <= 255 else 65535.0
    raise MaskError(f"unsupported mask dtype {a.dtype}")


def _threshold(a: np.ndarray) -> np.ndarray:
    if a.dtype == bool:
        return a.copy()
    if a.dtype in (np.uint8, np.uint16):  # the same test in integers: v / full > 0.5 <=> v > full // 2
        return a > int(_full_scale(a)) // 2
    return a.astype(np.float32) / _full_scale(a) > 0.5


def mask_from_image(img: Image.Image) -> np.ndarray:
    """A decoded PIL mask in any mode -> bool (H, W), True = hole: the one conversion every path uses
    (files, uploads, stroke masks, PIL masks given to the Python API; see :func:`mask_from_array`)."""
    if img.mode == "P":
        img = img.convert("RGBA")
    elif img.mode not in ("1", "L", "LA", "RGB", "RGBA") and not img.mode.startswith("I") and img.mode != "F":
        img = img.convert("RGB")
    return mask_from_array(np.asarray(img))


def read_mask(
    source: str | Path | bytes, max_pixels: int | None = DEFAULT_MAX_PIXELS, *, what: str = "mask",
    rules: ReadRules | None = None,
) -> np.ndarray:
    """Read a mask (a file, or its bytes; PNG/JPG/..., any mode) by the one reader as bool (H, W),
    True = hole (see :func:`mask_from_image`)."""
    img = open_image(source, max_pixels, what=what, rules=rules)
    try:
        return mask_from_image(img)
    except MaskError as e:
        name = f"the {what}" if isinstance(source, (bytes, bytearray, memoryview)) else str(source)
        raise MaskError(f"{name}: {e}") from None


def dilate_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow the hole by ``pixels`` with an elliptical (disc-like) kernel of diameter 2*pixels+1."""
    if pixels < 0:
        raise ValueError(f"dilate must be >= 0 pixels, got {pixels}")
    if pixels == 0:
        return mask
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.astype(np.uint8), k) > 0


def fit_mask(
    mask: np.ndarray,
    size: tuple[int, int],
    resize: bool = False,
    mask_name: str = "mask",
    image_name: str = "image",
) -> np.ndarray:
    """Check a bool (H, W) mask against an image ``size`` = (width, height).

    Another size is an error naming both sizes, unless ``resize`` (nearest-neighbour resize).
    """
    w, h = size
    mh, mw = mask.shape
    if (mw, mh) == (w, h):
        return mask
    if not resize:
        raise MaskError(
            f"{mask_name} is {mw}x{mh} but {image_name} is {w}x{h} (width x height); "
            "pass resize_mask=True (--resize-mask) to resize the mask"
        )
    return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0


# ------------------------------------------------------------------------------------------ writing


def write_image(
    image: Image.Image | np.ndarray,
    path: str | Path,
    format: str | None = None,
    quality: int = 95,
    exif: Image.Exif | bytes | None = None,
) -> Path:
    """Write a PIL image or an array atomically by the one writer
    (:func:`~inpaintgan.imagefile.encode_image_file`); the format comes from ``format`` or the extension.
    ``exif`` (e.g. the source's ``info['exif']``) is kept without its orientation tag; a PIL image's
    own ICC profile and DPI are kept."""
    from inpaintgan.checkpoints import atomic_write

    fmt = format_for(path, format)
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    info: dict[str, Any] = {k: img.info[k] for k in ("icc_profile", "dpi") if img.info.get(k)}
    if exif is not None:
        info["exif"] = exif
    f = from_pil(img, None, info)
    data = encode_image_file(f.pixels, fmt, like=f, quality=quality)
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


_gray_to_uint8 = gray_to_uint8  # the old private name
