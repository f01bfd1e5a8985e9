"""Safe image and mask reading and writing, at the edge of the library (the core works on tensors).

Images: EXIF orientation applied, any Pillow mode (RGBA, P, L, I;16, CMYK, ...) converted to RGB,
a pixel-count limit checked from the header before decoding (default 50 MP), Pillow's
decompression-bomb guard turned into a clear error, and every failure names the file.

Masks (1 = hole): any mode (1, L, I;16, RGB, RGBA, P). RGBA/LA masks whose colour is uniform but
whose alpha varies (a brush layer exported from an image editor) use the alpha channel; otherwise
the brightest colour channel, times the alpha, is thresholded at 50% of full scale, so white, red or
any bright stroke on black marks the hole. ``dilate`` grows the hole with an elliptical kernel.

Writing is atomic (temp file + rename, :func:`inpaintgan.checkpoints.atomic_write`), the format
comes from the extension, JPEG and WebP use quality 95, and EXIF is kept without its orientation tag
(the pixels are already upright after reading).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: default pixel limit for images and masks (about 50 megapixels)
DEFAULT_MAX_PIXELS = 50_000_000

#: file extension -> Pillow format name
FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
IMAGE_EXTS = tuple(FORMATS)
_EXIF_ORIENTATION = 0x0112


class ImageReadError(ValueError):
    """An image or mask file that cannot be used (missing, unreadable, corrupt, too large)."""


class MaskError(ValueError):
    """A mask that does not fit its image (other size, covers everything, ...)."""


# ------------------------------------------------------------------------------------------ reading


def open_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open and fully decode an image file, EXIF orientation applied, mode unchanged.

    Raises :class:`ImageReadError` naming the file when it is missing, not an image, truncated, or
    larger than ``max_pixels`` (checked from the header, before decoding; ``None`` = no limit of
    ours, Pillow's decompression-bomb limit still applies).
    """
    path = Path(path)
    if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 0):
        raise ValueError(f"max_pixels must be an integer >= 0 (0 or None: no limit of ours), got {max_pixels!r}")
    if not path.exists():
        raise ImageReadError(f"image file not found: {path}")
    if path.is_dir():
        raise ImageReadError(f"{path} is a folder, not an image file")
    try:
        img = Image.open(path)
    except Image.DecompressionBombError as e:
        raise ImageReadError(f"{path}: refused as a possible decompression bomb ({e})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, struct.error) as e:
        raise ImageReadError(f"cannot read image {path}: not a readable image file ({e})") from None
    with img:
        w, h = img.size
        if max_pixels and w * h > max_pixels:
            raise ImageReadError(
                f"{path} is {w}x{h} = {w * h / 1e6:.1f} MP, above the limit of {max_pixels / 1e6:.0f} MP "
                "(raise max_pixels / --max-pixels to allow it)"
            )
        try:
            img.load()
            out = ImageOps.exif_transpose(img)
        except Image.DecompressionBombError as e:
            raise ImageReadError(f"{path}: refused as a possible decompression bomb ({e})") from None
        except (OSError, ValueError, SyntaxError, struct.error) as e:
            raise ImageReadError(f"cannot read image {path}: corrupt or truncated ({e})") from None
    return out


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB. 16/32-bit grayscale is scaled (not clipped) to 8 bits; alpha is dropped
    (the colour under transparent pixels is kept as stored)."""
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I") or img.mode == "F":
        return Image.fromarray(_gray_to_uint8(np.asarray(img)), "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def _gray_to_uint8(a: np.ndarray) -> np.ndarray:
    """High-bit-depth grayscale -> uint8 by full-scale division (16-bit data: /257)."""
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


def read_mask(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a mask file (PNG/JPG/..., any mode) as bool (H, W), True = hole (see :func:`mask_from_array`)."""
    img = open_image(path, max_pixels)
    if img.mode == "P":
        img = img.convert("RGBA")
    elif img.mode not in ("1", "L", "LA", "RGB", "RGBA") and not img.mode.startswith("I") and img.mode != "F":
        img = img.convert("RGB")
    try:
        return mask_from_array(np.asarray(img))
    except MaskError as e:
        raise MaskError(f"{path}: {e}") from None


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


def format_for(path: str | Path, format: str | None = None) -> str:
    """Pillow format name from ``format`` ('png', 'jpg', ...) or else from the file extension."""
    key = ("." + format.lower().lstrip(".")) if format else Path(path).suffix.lower()
    if key not in FORMATS:
        what = f"format {format!r}" if format else f"extension {Path(path).suffix or '(none)'!r} of {path}"
        raise ValueError(f"cannot write images with {what}; known: {', '.join(e[1:] for e in IMAGE_EXTS)}")
    return FORMATS[key]


def write_image(
    image: Image.Image | np.ndarray,
    path: str | Path,
    format: str | None = None,
    quality: int = 95,
    exif: Image.Exif | bytes | None = None,
) -> Path:
    """Write an image atomically (temp file + rename); the format comes from ``format`` or the
    extension. ``exif`` (e.g. the source's ``info['exif']``) is kept without its orientation tag."""
    from inpaintgan.checkpoints import atomic_write

    fmt = format_for(path, format)
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    if fmt == "JPEG" and img.mode not in ("RGB", "L", "CMYK"):
        img = img.convert("RGB" if img.mode != "LA" else "L")
    elif fmt == "BMP" and img.mode not in ("RGB", "L", "1", "P", "RGBA"):
        img = img.convert("RGB")
    params: dict[str, Any] = {}
    if fmt in ("JPEG", "WEBP"):
        params["quality"] = quality
    if exif is not None and fmt in ("JPEG", "WEBP", "PNG", "TIFF"):
        ex = exif if isinstance(exif, Image.Exif) else _parse_exif(exif)
        if ex is not None:
            ex.pop(_EXIF_ORIENTATION, None)
            params["exif"] = ex.tobytes()
    return atomic_write(path, lambda tmp: img.save(tmp, format=fmt, **params))


def _parse_exif(data: bytes) -> Image.Exif | None:
    ex = Image.Exif()
    try:
        ex.load(data)
    except Exception:  # malformed EXIF in the source: write without it
        return None
    return ex
