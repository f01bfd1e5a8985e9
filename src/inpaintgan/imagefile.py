"""THE reader and writer of image files, used by every path (CLI, Python API, server, eval): they keep
what the file holds (issue 19, item 8; issue 20).

:func:`decode` opens a file or its bytes under :class:`ReadRules` (pixel limit and decoded size from
the header before decoding, allowed formats, Pillow's decompression-bomb guard) and raises one-line
:class:`ImageReadError` s whose ``kind`` says what went wrong. :func:`read_image_file` returns an :class:`ImageFile`: the pixels as a numpy array in the file's own
layout and depth -- L (H, W), LA (H, W, 2), RGB (H, W, 3), RGBA (H, W, 4) or CMYK (H, W, 4); uint8,
or uint16 for 16-bit grayscale and 16-bit colour PNG/TIFF -- upright (EXIF orientation applied), with
the ICC profile, DPI, EXIF (without its orientation tag) and, for JPEG, the quantisation tables kept
in ``info``. Palette images become RGB, or RGBA when they have a transparent colour; 1-bit images
become L. :func:`write_image_file` writes an array back in the same mode and depth with that
metadata, where the target format can hold it:

========  =====================================  ============================================
format    modes kept                             known pixels
========  =====================================  ============================================
PNG       L, LA, RGB, RGBA; 8 and 16 bit         bit for bit
TIFF      L, LA, RGB, RGBA, CMYK; 8 and 16 bit   bit for bit
WebP      RGB, RGBA (L as RGB)                   bit for bit with ``quality="keep"`` (lossless)
JPEG      L, RGB, CMYK (alpha dropped)           changed by re-encoding; ``quality="keep"`` reuses
                                                 the source's quantisation tables and subsampling
BMP       L, RGB, RGBA (8 bit)                   bit for bit
========  =====================================  ============================================

16-bit data written to an 8-bit-only format is scaled to 8 bits (/257, rounded). The inference
itself works on these arrays directly (:class:`~inpaintgan.inpainter.Inpainter` takes uint8 and
uint16 arrays with an optional alpha channel and returns them with known pixels unchanged); CMYK is
filled in RGB and composited back into the CMYK pixels (:meth:`ImageFile.merge`), so its known
pixels stay exact too.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

_EXIF_ORIENTATION = 0x0112
#: the modes an ImageFile holds
MODES = ("L", "LA", "RGB", "RGBA", "CMYK")
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


class ImageReadError(ValueError):
    """An image or mask that cannot be used (missing, unreadable, corrupt, too large). ``kind`` says
    which, for callers that answer by kind (the server's status codes): ``not_an_image``,
    ``corrupt_image``, ``too_many_pixels`` or ``missing``."""

    def __init__(self, message: str, kind: str = "not_an_image"):
        super().__init__(message)
        self.kind = kind

    def __reduce__(self):  # keep ``kind`` through pickling (worker processes)
        return type(self), (str(self), self.kind)


@dataclass(frozen=True)
class ReadRules:
    """What the one reader accepts, and how its messages name the limit. The default is the rule of the
    CLI and the Python API; the server passes its own (:func:`inpaintgan.server.app.read_rules`)."""

    #: largest width x height, checked from the header before decoding (None or 0: no limit of ours;
    #: Pillow's decompression-bomb limit still applies)
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    #: Pillow formats that may be opened (None: any Pillow opens)
    formats: tuple[str, ...] | None = None
    #: largest decoded size in bytes, from the header's size and mode (None: no limit)
    decode_budget: int | None = None
    #: Pillow's DecompressionBombWarning (an image over Pillow's own limit) refuses the image too
    strict_bomb: bool = False
    #: how messages name the limits, and what they suggest
    limit_name: str = "the limit"
    limit_hint: str = " (raise max_pixels / --max-pixels to allow it)"
    budget_name: str = "the budget"

    def __post_init__(self) -> None:
        m = self.max_pixels
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 0):
            raise ValueError(f"max_pixels must be an integer >= 0 (0 or None: no limit of ours), got {m!r}")


@dataclass
class ImageFile:
    """Pixels in the file's own layout and depth, plus what a writer needs to keep (see the module)."""

    pixels: np.ndarray
    mode: str  # one of MODES
    format: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), like PIL."""
        return self.pixels.shape[1], self.pixels.shape[0]

    @property
    def bits(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    def model_input(self) -> np.ndarray:
        """What :class:`~inpaintgan.inpainter.Inpainter` fills: the pixels, except CMYK, which is given
        as RGB (8 bit) -- see :meth:`merge`."""
        if self.mode == "CMYK":
            return np.asarray(_pil(self.pixels, "CMYK").convert("RGB"))
        return self.pixels

    def merge(self, filled: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """The pixels with ``filled`` (the Inpainter's result for :meth:`model_input`) at ``hole``; the
        known pixels are this file's, exactly (CMYK too)."""
        if self.mode != "CMYK":
            return filled
        cmyk = np.asarray(_pil(filled, "RGB").convert("CMYK"))
        out = self.pixels.copy()
        out[hole] = cmyk[hole]
        return out

    def to_pil_rgb(self) -> Image.Image:
        """An 8-bit RGB view (for previews and attention maps)."""
        a = _to8(self.pixels)
        mode = self.mode
        return _pil(a[:, :, 0] if a.ndim == 3 and mode == "L" else a, mode).convert("RGB")


# ------------------------------------------------------------------------------------------ reading


def _rawmode(img: Image.Image) -> str:
    try:
        args = img.tile[0][3] if img.tile else ""
    except (IndexError, TypeError):
        return ""
    return args[0] if isinstance(args, tuple) and args else args if isinstance(args, str) else ""


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (as Pillow's exif_transpose does) to an (H, W[, C]) array."""
    t = lambda x: np.swapaxes(x, 0, 1)  # noqa: E731 - transpose of the two image axes
    ops = {
        2: lambda x: x[:, ::-1], 3: lambda x: x[::-1, ::-1], 4: lambda x: x[::-1],
        5: t, 6: lambda x: np.rot90(x, -1), 7: lambda x: t(x)[::-1, ::-1], 8: lambda x: np.rot90(x, 1),
    }
    return np.ascontiguousarray(ops[orientation](a)) if orientation in ops else a


def _info_of(img: Image.Image) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for key in ("icc_profile", "dpi", "exif", "compression"):
        if img.info.get(key):
            info[key] = img.info[key]
    if img.format == "JPEG":
        try:
            from PIL import JpegImagePlugin

            info["qtables"] = img.quantization
            info["subsampling"] = JpegImagePlugin.get_sampling(img)
        except (AttributeError, ValueError):
            pass
    return info


def header_facts(img: Image.Image) -> dict[str, Any]:
    """What an opened, not yet loaded image's header says beyond its PIL mode: the raw layout (16-bit
    colour shows only here), the format, metadata to keep and the EXIF orientation."""
    facts = {"rawmode": _rawmode(img), "format": img.format, "info": _info_of(img)}  # before getexif: it may load
    try:
        facts["orientation"] = int(img.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:  # noqa: BLE001 - malformed EXIF: no orientation
        facts["orientation"] = 1
    return facts


def from_decoded(img: Image.Image, facts: dict[str, Any], data: bytes | None) -> ImageFile:
    """An :class:`ImageFile` from a decoded, upright PIL image, its :func:`header_facts` and the file's
    bytes (needed for 16-bit colour, which PIL decodes to 8 bits: OpenCV reads it from ``data``)."""
    info = dict(facts.get("info") or {})
    if "exif" in img.info:
        info["exif"] = img.info["exif"]
    fmt, orientation = facts.get("format"), facts.get("orientation", 1)
    if data is not None and img.mode in ("RGB", "RGBA") and ";16" in facts.get("rawmode", "") and fmt in ("PNG", "TIFF"):
        a = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if a is not None and a.dtype == np.uint16 and a.ndim == 3 and a.shape[2] in (3, 4):
            a = _orient(cv2.cvtColor(a, cv2.COLOR_BGR2RGB if a.shape[2] == 3 else cv2.COLOR_BGRA2RGBA), orientation)
            if a.shape[:2] == (img.height, img.width):
                return ImageFile(a, "RGB" if a.shape[2] == 3 else "RGBA", fmt, info)
    return from_pil(img, fmt, info)


def read_image_file(
    source: str | Path | bytes, max_pixels: int | None = DEFAULT_MAX_PIXELS, *, what: str = "image",
    rules: ReadRules | None = None,
) -> ImageFile:
    """THE reader: an image file (a path, or its bytes) keeping its mode, bit depth, alpha and metadata
    (see the module). ``rules`` (default: ``max_pixels`` and the CLI's rules) bound what is opened;
    errors are one-line :class:`ImageReadError` naming the file (or "the {what}" for bytes)."""
    img, facts, data = decode(source, what, rules or ReadRules(max_pixels=max_pixels))
    if data is None and ";16" in facts.get("rawmode", ""):  # 16-bit colour: OpenCV reads the file's bytes
        data = Path(source).read_bytes()  # type: ignore[arg-type]
    return from_decoded(img, facts, data)


def open_image(
    source: str | Path | bytes, max_pixels: int | None = DEFAULT_MAX_PIXELS, *, what: str = "image",
    rules: ReadRules | None = None,
) -> Image.Image:
    """The one reader's decoded, upright PIL image (mode unchanged), for callers that want PIL."""
    return decode(source, what, rules or ReadRules(max_pixels=max_pixels))[0]


def decode(
    source: str | Path | bytes, what: str = "image", rules: ReadRules | None = None
) -> tuple[Image.Image, dict[str, Any], bytes | None]:
    """(decoded upright PIL image, :func:`header_facts`, the bytes if ``source`` was bytes).

    Every check happens before the pixels are decoded, from the header: the format (``rules.formats``),
    the pixel count (``rules.max_pixels``), the decoded size (``rules.decode_budget``); Pillow's
    decompression-bomb guard becomes an :class:`ImageReadError` of kind ``too_many_pixels``."""
    rules = rules or ReadRules()
    data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else None
    name = f"the {what}" if data is not None else str(source)
    if data is None:
        path = Path(source)  # type: ignore[arg-type]
        if not path.exists():
            raise ImageReadError(f"{what} file not found: {path}", "missing")
        if path.is_dir():
            raise ImageReadError(f"{path} is a folder, not an {what} file", "not_an_image")
        if path.stat().st_size == 0:
            raise ImageReadError(f"{name} is empty (0 bytes)", "not_an_image")
    elif not data:
        raise ImageReadError(f"{name} is empty (0 bytes)", "not_an_image")
    with _bomb_guard(rules, name, opening=True):
        img = Image.open(io.BytesIO(data) if data is not None else Path(source), formats=rules.formats)  # type: ignore[arg-type]
    with img:
        _check_header(img, name, rules)
        with _bomb_guard(rules, name, opening=False):
            facts = header_facts(img)  # after the size checks: reading EXIF may decode
            img.load()
            out = ImageOps.exif_transpose(img)
    return out, facts, data


def _limit(rules: ReadRules) -> str:
    return f"{rules.limit_name} of {rules.max_pixels / 1e6:g} MP" if rules.max_pixels else "Pillow's limit"


class _bomb_guard:
    """Turn what Pillow raises while opening (``opening``) or decoding into one-line ImageReadErrors."""

    def __init__(self, rules: ReadRules, name: str, opening: bool):
        self.rules, self.name, self.opening = rules, name, opening
        self._warnings = warnings.catch_warnings()

    def __enter__(self) -> None:
        self._warnings.__enter__()
        if self.rules.strict_bomb:
            warnings.simplefilter("error", Image.DecompressionBombWarning)

    def __exit__(self, kind: Any, e: Any, _tb: Any) -> bool:
        self._warnings.__exit__(None, None, None)
        if e is None or not isinstance(e, Exception) or isinstance(e, ImageReadError):
            return False
        name, rules = self.name, self.rules
        if isinstance(e, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
            if self.opening:
                msg = f"{name} is refused: its header claims far more pixels than {_limit(rules)} (a possible decompression bomb: {e})"
            else:
                msg = f"{name} is refused as a possible decompression bomb ({e})"
            raise ImageReadError(msg, "too_many_pixels") from None
        if isinstance(e, (UnidentifiedImageError, OSError, ValueError, SyntaxError, struct.error, EOFError, zlib.error)):
            if self.opening:
                raise ImageReadError(f"{name} is not a readable image{_supported(rules)}: {e}", "not_an_image") from None
            raise ImageReadError(f"{name} could not be decoded: truncated or corrupt ({e})", "corrupt_image") from None
        return False


def _supported(rules: ReadRules) -> str:
    if not rules.formats:
        return ""
    return " (supported: " + ", ".join({"WEBP": "WebP"}.get(f, f) for f in rules.formats) + ")"


def _check_header(img: Image.Image, name: str, rules: ReadRules) -> None:
    """The pixel count, the size and the decoded size, from an opened image's header."""
    w, h = img.size
    if rules.max_pixels and w * h > rules.max_pixels:
        raise ImageReadError(f"{name} is {w}x{h} = {w * h / 1e6:.1f} MP, above {_limit(rules)}{rules.limit_hint}",
                             "too_many_pixels")
    if w < 1 or h < 1:
        raise ImageReadError(f"{name} has no pixels ({w}x{h})", "not_an_image")
    decoded = w * h * bytes_per_pixel(img.mode)
    if rules.decode_budget is not None and decoded > rules.decode_budget:
        raise ImageReadError(
            f"{name} ({w}x{h}, mode {img.mode}) would take {human_bytes(decoded)} decoded, above {rules.budget_name} of "
            f"{human_bytes(rules.decode_budget)} per image (the pixel limit at 4 bytes a pixel)", "too_many_pixels")


#: decoded bytes per pixel of the Pillow modes (others count as 8)
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "LA": 2, "La": 2, "PA": 2, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2,
                    "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3, "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4, "I": 4, "F": 4}


def bytes_per_pixel(mode: str) -> int:
    return _BYTES_PER_PIXEL.get(mode, 8)


def human_bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB" if n >= 1024 else f"{n} bytes"


def from_pil(img: Image.Image, fmt: str | None, info: dict[str, Any]) -> ImageFile:
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return ImageFile(np.asarray(img).astype(np.uint16), "L", fmt, info)
    if mode == "I":
        a = np.asarray(img)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ImageReadError(f"32-bit integer image with values outside 0..65535 ({a.min()}..{a.max()}) is not supported")
        return ImageFile(a.astype(np.uint16), "L", fmt, info)
    if mode == "F":
        a = np.asarray(img, np.float64)
        if not np.isfinite(a).all():
            raise ImageReadError("the image holds NaN/Inf values; float images must be finite")
        hi = float(a.max()) if a.size else 0.0
        scale = 65535.0 if hi <= 1.0 else 1.0
        return ImageFile(np.clip(np.rint(a * scale), 0, 65535).astype(np.uint16), "L", fmt, info)
    if mode == "1":
        img, mode = img.convert("L"), "L"
    elif mode in ("P", "PA"):
        mode = "RGBA" if mode == "PA" or "transparency" in img.info else "RGB"
        img = img.convert(mode)
    elif mode in ("La",):
        img, mode = img.convert("LA"), "LA"
    elif mode in ("RGBa", "RGBX"):
        mode = "RGBA" if mode == "RGBa" else "RGB"
        img = img.convert(mode)
    elif mode not in MODES:
        img, mode = img.convert("RGB"), "RGB"
    return ImageFile(np.array(img), mode, fmt, info)


# ------------------------------------------------------------------------------------------ writing


def format_for(path: str | Path, format: str | None = None) -> str:
    """Pillow format name from ``format`` ('png', 'jpg', ...) or else from the file extension."""
    key = ("." + format.lower().lstrip(".")) if format else Path(path).suffix.lower()
    if key not in FORMATS:
        what = f"format {format!r}" if format else f"extension {Path(path).suffix or '(none)'!r} of {path}"
        raise ValueError(f"cannot write images with {what}; known: {', '.join(e[1:] for e in IMAGE_EXTS)}")
    return FORMATS[key]


def _parse_exif(data: bytes) -> Image.Exif | None:
    ex = Image.Exif()
    try:
        ex.load(data)
    except Exception:  # malformed EXIF in the source: write without it
        return None
    return ex


def _pil(a: np.ndarray, mode: str) -> Image.Image:
    """uint8 (H, W[, C]) in ``mode``, or uint16 (H, W) as I;16, as a PIL image."""
    a = np.ascontiguousarray(a)
    if a.dtype == np.uint16:
        return Image.fromarray(a.astype("<u2"))  # I;16
    if mode == "CMYK":
        return Image.frombytes("CMYK", (a.shape[1], a.shape[0]), a.tobytes())
    return Image.fromarray(a)


def _mode_for(a: np.ndarray, like_mode: str | None) -> str:
    c = 1 if a.ndim == 2 else a.shape[2]
    if c == 4 and like_mode == "CMYK":
        return "CMYK"
    return {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c]


def _to8(a: np.ndarray) -> np.ndarray:
    return a if a.dtype == np.uint8 else np.clip(np.rint(a.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)


def write_image_file(
    path: str | Path,
    pixels: np.ndarray,
    like: ImageFile | None = None,
    format: str | None = None,
    quality: int | str = 95,
) -> Path:
    """Write ``pixels`` ((H, W) or (H, W, 1-4), uint8 or uint16) atomically, in the mode, depth and
    metadata of ``like`` where the format allows (see the module; the format comes from ``format`` or
    the extension). ``quality``: 1..100, or "keep" (JPEG: the source's tables; WebP: lossless)."""
    from inpaintgan.checkpoints import atomic_write

    data = encode_image_file(pixels, format_for(path, format), like, quality)
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def encode_image_file(
    pixels: np.ndarray, fmt: str, like: ImageFile | None = None, quality: int | str = 95, compress_level: int = 6
) -> bytes:
    """The bytes of an image file in Pillow format ``fmt`` (PNG, JPEG, WEBP, BMP, TIFF); see
    :func:`write_image_file`. ``compress_level``: PNG's zlib level (pixels are the same at any)."""
    a = np.asarray(pixels)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"write_image_file takes uint8 or uint16 pixels, got {a.dtype}")
    if quality != "keep" and not (isinstance(quality, int) and 1 <= quality <= 100):
        raise ValueError(f"quality must be 1..100 or 'keep', got {quality!r}")
    mode = _mode_for(a, like.mode if like else None)
    info = dict(like.info) if like else {}
    if fmt == "JPEG" and mode in ("LA", "RGBA"):  # JPEG has no alpha
        a, mode = a[:, :, :-1], "L" if mode == "LA" else "RGB"
        a = a[:, :, 0] if mode == "L" else a
    if fmt in ("WEBP",) and mode in ("L", "LA"):
        a = np.repeat(a[:, :, None], 3, axis=2) if mode == "L" else np.concatenate([np.repeat(a[:, :, :1], 3, axis=2), a[:, :, 1:]], axis=2)
        mode = "RGB" if mode == "L" else "RGBA"
    if fmt == "BMP" and mode == "LA":
        a, mode = a[:, :, 0], "L"
    if fmt not in ("JPEG", "TIFF") and mode == "CMYK":
        a, mode = np.asarray(_pil(_to8(a), "CMYK").convert("RGB")), "RGB"
    if a.dtype == np.uint16 and not (fmt == "PNG" or (fmt == "TIFF" and mode in ("L", "RGB", "RGBA"))):
        a = _to8(a)
    if fmt == "PNG" and a.dtype == np.uint16 and mode != "L":
        return _png16(a, info, compress_level)
    if fmt == "TIFF" and a.dtype == np.uint16 and mode != "L":
        ok, buf = cv2.imencode(".tiff", cv2.cvtColor(a, cv2.COLOR_RGB2BGR if mode == "RGB" else cv2.COLOR_RGBA2BGRA))
        if not ok:  # pragma: no cover
            raise OSError("could not encode a 16-bit TIFF")
        return buf.tobytes()
    img = _pil(a, mode)
    params: dict[str, Any] = {}
    if info.get("icc_profile") and fmt in ("PNG", "JPEG", "WEBP", "TIFF") and (mode == "CMYK") == (like is not None and like.mode == "CMYK"):
        params["icc_profile"] = info["icc_profile"]
    if info.get("dpi") and fmt in ("PNG", "JPEG", "TIFF", "BMP"):
        params["dpi"] = tuple(float(d) for d in info["dpi"])
    if info.get("exif") and fmt in ("JPEG", "WEBP", "PNG", "TIFF"):
        ex = _parse_exif(info["exif"]) if not isinstance(info["exif"], Image.Exif) else info["exif"]
        if ex is not None:
            ex.pop(_EXIF_ORIENTATION, None)
            params["exif"] = ex.tobytes()
    if fmt == "JPEG":
        if quality == "keep" and info.get("qtables"):
            params["qtables"] = info["qtables"]
            if info.get("subsampling") is not None and info["subsampling"] >= 0:
                params["subsampling"] = info["subsampling"]
        else:
            params["quality"] = 95 if quality == "keep" else quality
    elif fmt == "WEBP":
        if quality == "keep":
            params["lossless"] = True
        else:
            params["quality"] = quality
    elif fmt == "TIFF" and info.get("compression") in ("tiff_lzw", "tiff_adobe_deflate", "packbits", "raw"):
        params["compression"] = info["compression"]
    if fmt == "PNG":
        params["compress_level"] = compress_level
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def _png16(a: np.ndarray, info: dict[str, Any], compress_level: int = 6) -> bytes:
    """A 16-bit RGB / RGBA PNG (Pillow cannot write these) with the ICC profile, DPI and EXIF."""
    h, w = a.shape[:2]
    c = a.shape[2]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    out = io.BytesIO()
    out.write(b"\x89PNG\r\n\x1a\n")
    out.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2 if c == 3 else 6, 0, 0, 0)))
    if info.get("icc_profile"):
        out.write(chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(info["icc_profile"])))
    if info.get("dpi"):
        ppm = [max(1, round(float(d) / 0.0254)) for d in info["dpi"]]
        out.write(chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if info.get("exif"):
        ex = _parse_exif(info["exif"])
        if ex is not None:
            ex.pop(_EXIF_ORIENTATION, None)
            data = ex.tobytes()
            out.write(chunk(b"eXIf", data[6:] if data.startswith(b"Exif\x00\x00") else data))
    rows = a.astype(">u2").reshape(h, w * c).view(np.uint8).reshape(h, w * c * 2)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()
    out.write(chunk(b"IDAT", zlib.compress(raw, compress_level)))
    out.write(chunk(b"IEND", b""))
    return out.getvalue()


def pil_image(f: ImageFile) -> Image.Image:
    """An ImageFile as a PIL image (16-bit colour scaled to 8 bits: PIL has no such mode)."""
    a = f.pixels
    if a.dtype == np.uint16 and a.ndim == 3:
        a = _to8(a)
    return _pil(a, f.mode)


__all__ = ["ImageFile", "ImageReadError", "ReadRules", "read_image_file", "open_image", "decode", "write_image_file",
           "encode_image_file", "from_decoded", "from_pil", "header_facts", "pil_image", "format_for", "MODES",
           "FORMATS", "IMAGE_EXTS", "DEFAULT_MAX_PIXELS"]
