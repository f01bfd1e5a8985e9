"""The Python API: a trained model -> any-size inference on user images.

    from inpaintgan import Inpainter
    inpainter = Inpainter.from_pretrained("default")        # a zoo name, or a .safetensors path
    result = inpainter("photo.jpg", "mask.png")              # PIL image, same size as the photo

Inputs may be PIL images, numpy arrays ((H, W) / (H, W, 3) / (N, H, W, 3); uint8, uint16 or float in
[0, 1]), torch tensors ((C, H, W) / (N, C, H, W); float in [0, 1] or uint8), file paths, or lists of
these; the result has the kind the input had (a path gives a PIL image). Known pixels come back
exactly, bit for bit: the fill is pasted into a copy of the input, in its own dtype, at hole pixels
only. An alpha channel is kept aside and returned unchanged.

Any size (``strategy``):

- ``full``: the whole image through a fully convolutional network, reflect-padded to the network's
  ``size_multiple`` and cropped back.
- ``resize``: the whole image downscaled so its short side is the working size (exactly
  ``image_size`` x ``image_size`` for networks that are not fully convolutional), the fill upscaled back.
- ``crop``: for each hole region a square context window around it, of side
  ``max(L + 2 * max(L, min_context), working_size)`` where L is the longer side of the region's
  bounding box and ``min_context`` = 64 px: the hole takes at most a third of the window's side,
  about the hole/context ratio inpainting models are trained on, and a small hole still sees a full
  working-size window at native resolution. Windows are shifted to stay inside the image. Regions
  whose windows overlap are merged (their union box gets one window), repeatedly, until no two
  windows overlap, so each window holds only its own holes and windows are filled independently.
  Each window is resized so its short side is the working scale if larger, filled, and only its hole pixels are
  pasted back: a 4000x3000 photo with a small hole costs about what a 256x256 image costs.
- ``auto`` (default): ``full`` when the image's short side is at most 2x the working size (and its
  long side at most 4x), else
  ``crop``; for networks that are not fully convolutional, ``resize`` then ``crop``.

Downscaling uses area averaging; the working-scale mask marks every pixel that any hole pixel
contributes to, so no content of the hole (the object being removed) leaks into the network's
"known" input. The fill is brought back with bilinear interpolation.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from inpaintgan.checkpoints import is_model_path, load_any, resolve_model
from inpaintgan.checkpoints import list_models as _list_models
from inpaintgan.errors import project_errors
from inpaintgan.export.exporter import EXPORT_SUFFIXES
from inpaintgan.finite import NonFiniteInputError, array_is_finite, check_finite_output
from inpaintgan.imageio import (
    DEFAULT_MAX_PIXELS,
    MaskError,
    dilate_mask,
    fit_mask,
    mask_from_array,
    mask_from_image,
    read_mask,
    to_rgb,
)
from inpaintgan.postprocess import BLEND_MODES, poisson_blend, prefill_telea

STRATEGIES = ("auto", "full", "crop", "resize")
#: smallest context margin around a hole in the crop strategy (pixels of the input image)
MIN_CONTEXT = 64
#: ``auto`` runs the whole image when its short side is at most this times the working size (and its
#: long side at most twice that): models trained on crops of photos rescaled to a short side of 1-2x
#: the crop size (``data.crop_scale``) see such images at a scale they were trained on
AUTO_FULL_FACTOR = 2.0
#: above this many hole regions, regions closer than ``min_context`` are grouped first (speckled masks)
_MAX_REGIONS = 256

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1), end-exclusive


def list_models() -> list[dict[str, Any]]:
    """The named models (zoo): name, method, image_size, installed, path, url, description."""
    return _list_models()


def is_exported_path(p: str | Path) -> bool:
    """True for an exported ``.onnx`` / ``.torchscript`` model file."""
    return str(p).lower().endswith(EXPORT_SUFFIXES)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` -> CUDA if available, else Apple MPS, else CPU."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"unknown device {device!r} (auto, cpu, cuda, cuda:N, mps): {e}") from None
    from inpaintgan.devices import check_device_available

    check_device_available(dev)
    return dev


# ----------------------------------------------------------------------------------- crop planning


def hole_regions(hole: np.ndarray, group_distance: int = 0) -> list[Box]:
    """Bounding boxes of the connected hole regions (8-connectivity) of a bool (H, W) mask.

    With ``group_distance`` > 0, regions at most ``2 * group_distance`` pixels apart (chessboard
    distance) count as one: their context windows, which reach at least ``min_context`` px past a
    hole on every side, would overlap anyway.
    """
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    if len(rows) == 0:
        return []
    # label only the holes' bounding box (plus room for the grouping dilation): a small hole in a
    # large photo costs little; boxes are shifted back to image coordinates at the end
    pad = group_distance
    oy, ox = max(int(rows[0]) - pad, 0), max(int(cols[0]) - pad, 0)
    ey, ex = min(int(rows[-1]) + 1 + pad, hole.shape[0]), min(int(cols[-1]) + 1 + pad, hole.shape[1])
    boxes = _regions_in(hole[oy:ey, ox:ex].astype(np.uint8), group_distance)
    return [(y0 + oy, x0 + ox, y1 + oy, x1 + ox) for y0, x0, y1, x1 in boxes]


def _regions_in(m: np.ndarray, group_distance: int) -> list[Box]:
    if group_distance > 0:
        k = np.ones((2 * group_distance + 1, 2 * group_distance + 1), np.uint8)
        n, labels = cv2.connectedComponents(cv2.dilate(m, k), connectivity=8)
        ys, xs = np.nonzero(m)
        lab = labels[ys, xs]
        y0 = np.full(n, np.iinfo(np.int64).max)
        x0 = y0.copy()
        y1 = np.full(n, -1)
        x1 = y1.copy()
        np.minimum.at(y0, lab, ys)
        np.minimum.at(x0, lab, xs)
        np.maximum.at(y1, lab, ys)
        np.maximum.at(x1, lab, xs)
        return [(int(y0[i]), int(x0[i]), int(y1[i]) + 1, int(x1[i]) + 1) for i in range(1, n) if y1[i] >= 0]
    n, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    return [(int(y), int(x), int(y + h), int(x + w)) for x, y, w, h in (stats[i, :4] for i in range(1, n))]


def context_window(box: Box, height: int, width: int, working_size: int, min_context: int = MIN_CONTEXT) -> Box:
    """The square context window of a hole box: side ``max(L + 2 * max(L, min_context), working_size)``
    (L = the box's longer side), centred on the box, clipped to the image size and shifted inside it."""
    y0, x0, y1, x1 = box
    side_l = max(y1 - y0, x1 - x0)
    side = max(side_l + 2 * max(side_l, min_context), working_size)
    sh, sw = min(side, height), min(side, width)
    top = min(max((y0 + y1 - sh) // 2, 0), height - sh)
    left = min(max((x0 + x1 - sw) // 2, 0), width - sw)
    return (top, left, top + sh, left + sw)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def plan_crops(hole: np.ndarray, working_size: int, min_context: int = MIN_CONTEXT) -> list[tuple[Box, Box]]:
    """Crop windows for a bool (H, W) hole mask: a list of ``(window, hole_box)``.

    One window per hole region (:func:`context_window`); regions whose windows overlap are merged
    into one (the union of their boxes) until no two windows overlap.
    """
    h, w = hole.shape
    boxes = hole_regions(hole)
    if len(boxes) > _MAX_REGIONS:  # speckles: group close ones first (their windows would overlap anyway)
        boxes = hole_regions(hole, group_distance=min_context)
    while True:
        windows = [context_window(b, h, w, working_size, min_context) for b in boxes]
        merged = _merge_overlapping(boxes, windows)
        if len(merged) == len(boxes):
            return list(zip(windows, boxes))
        boxes = merged


def _merge_overlapping(boxes: list[Box], windows: list[Box]) -> list[Box]:
    """Union boxes whose windows overlap (transitively: union-find over the overlap graph)."""
    parent = list(range(len(boxes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if _overlap(windows[i], windows[j]):
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[rj] = ri
    groups: dict[int, Box] = {}
    for i, b in enumerate(boxes):
        r = find(i)
        g = groups.get(r)
        groups[r] = b if g is None else (min(g[0], b[0]), min(g[1], b[1]), max(g[2], b[2]), max(g[3], b[3]))
    return list(groups.values())


# ------------------------------------------------------------------------------ input / output kinds


@dataclass
class _Item:
    """One image in its own dtype: colour channels (H, W, 1|3) and an optional alpha kept aside."""

    data: np.ndarray
    alpha: np.ndarray | None
    name: str
    rebuild: Callable[[np.ndarray], Any]

    @property
    def size(self) -> tuple[int, int]:  # (width, height)
        return self.data.shape[1], self.data.shape[0]


def _pre(name: str) -> str:
    """Message prefix naming an input ("image 2: ", "photo.jpg: "), empty for a single in-memory image."""
    return f"{name}: " if name else ""


_NUMPY_DTYPES = (np.uint8, np.uint16, np.float16, np.float32, np.float64)


def _check_array(a: np.ndarray, name: str) -> np.ndarray:
    if a.dtype.type not in _NUMPY_DTYPES:
        raise ValueError(f"{_pre(name)}unsupported dtype {a.dtype} (uint8, uint16, or float in [0, 1])")
    if a.dtype.kind == "f" and a.size:
        if not array_is_finite(a):
            bad = int((~np.isfinite(a)).sum())
            raise NonFiniteInputError(f"{_pre(name)}the image holds {bad} NaN/Inf value(s); float images must be finite, in [0, 1]")
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(f"{_pre(name)}float images must be in [0, 1], got values in [{lo:g}, {hi:g}] (uint8 data / 255?)")
    if min(a.shape[:2]) < 1:
        raise ValueError(f"{_pre(name)}empty image of shape {tuple(a.shape)}")
    return a


def _split_hwc(a: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W) / (H, W, 1|2|3|4) -> colour (H, W, 1|3) and alpha (H, W, 1) or None."""
    if a.ndim == 2:
        return a[:, :, None], None
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"{_pre(name)}an image must be (H, W) or (H, W, 1|2|3|4), got shape {tuple(a.shape)}")
    c = a.shape[2]
    if c in (2, 4):
        return a[:, :, : c - 1], a[:, :, c - 1 :]
    return a, None


def _join(data: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    return data if alpha is None else np.concatenate([data, alpha], axis=2)


def _item_from_numpy(a: np.ndarray, name: str, squeeze: bool) -> _Item:
    a = _check_array(a, name)
    data, alpha = _split_hwc(a, name)
    return _Item(data, alpha, name, lambda out, sq=squeeze: out[:, :, 0] if sq else out)


def _item_from_pil(img: Image.Image, name: str) -> _Item:
    if img.mode in ("L", "RGB", "RGBA", "LA"):
        mode = img.mode
        a = np.asarray(img)
    else:
        mode = "RGB"
        a = np.asarray(to_rgb(img))
    data, alpha = _split_hwc(a, name)
    return _Item(data, alpha, name, lambda out, mode=mode: Image.fromarray(out[:, :, 0] if mode == "L" else out, mode))


def _item_from_file(path: str | Path, max_pixels: int | None) -> _Item:
    """A file read by the one reader (:func:`~inpaintgan.imagefile.read_image_file`: mode, 16-bit
    depth and alpha kept); the result is a PIL image of the file's mode (16-bit colour: 8-bit, as
    PIL has no such mode; read the file with ``read_image_file`` and pass the array to keep it)."""
    from inpaintgan.imagefile import ImageFile, pil_image, read_image_file

    f = read_image_file(path, max_pixels)
    mode = f.mode
    if mode == "CMYK":
        data, mode = f.model_input(), "RGB"
    else:
        data = f.pixels
    item = _item_from_numpy(data, str(path), data.ndim == 2)
    item.rebuild = lambda out, mode=mode: pil_image(ImageFile(out[:, :, 0] if out.ndim == 3 and out.shape[2] == 1 else out, mode))
    return item


def _item_from_tensor(t: Tensor, name: str) -> _Item:
    """(H, W) or (C, H, W) tensor, C in 1..4 -> item; the result goes back to the same dtype/device/shape."""
    if t.dim() == 2:
        t3 = t[None]
    elif t.dim() == 3 and t.shape[0] in (1, 2, 3, 4):
        t3 = t
    else:
        raise ValueError(f"{_pre(name)}a tensor image must be (C, H, W) with C in 1..4 or (H, W); got {tuple(t.shape)}")
    dtype, device, dim = t.dtype, t.device, t.dim()
    if dtype == torch.uint8:
        a = t3.detach().cpu().permute(1, 2, 0).numpy()
    elif dtype.is_floating_point:
        tt = t3.detach().cpu()
        if tt.dtype not in (torch.float16, torch.float32, torch.float64):  # bfloat16: float32 is exact
            tt = tt.float()
        a = tt.permute(1, 2, 0).numpy()
    else:
        raise ValueError(f"{_pre(name)}unsupported tensor dtype {dtype} (float in [0, 1] or uint8)")
    a = _check_array(a, name)
    data, alpha = _split_hwc(a, name)

    def rebuild(out: np.ndarray) -> Tensor:
        r = torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).to(device=device, dtype=dtype)
        return r[0] if dim == 2 else r

    return _Item(data, alpha, name, rebuild)


def _unpack_images(image: Any, max_pixels: int | None) -> tuple[list[_Item], Callable[[list[Any]], Any], bool]:
    """Any supported input -> (items, combine outputs, is_batch)."""
    if isinstance(image, (list, tuple)):
        if not image:
            raise ValueError("empty list of images")
        items = [_unpack_one(im, f"image {i}", max_pixels) for i, im in enumerate(image)]
        return items, list, True
    if isinstance(image, np.ndarray) and image.ndim == 4:
        items = [_item_from_numpy(image[i], f"image {i}", False) for i in range(image.shape[0])]
        return items, lambda outs: np.stack(outs) if outs else image.copy(), True
    if isinstance(image, Tensor) and image.dim() == 4:
        items = [_item_from_tensor(image[i], f"image {i}") for i in range(image.shape[0])]
        return items, lambda outs: torch.stack(outs) if outs else image.clone(), True
    return [_unpack_one(image, "", max_pixels)], lambda outs: outs[0], False


def _unpack_one(image: Any, name: str, max_pixels: int | None) -> _Item:
    if isinstance(image, (str, Path)):
        return _item_from_file(image, max_pixels)
    if isinstance(image, Image.Image):
        return _item_from_pil(image, name)
    if isinstance(image, np.ndarray):
        return _item_from_numpy(image, name, image.ndim == 2)
    if isinstance(image, Tensor):
        return _item_from_tensor(image, name)
    raise TypeError(f"{_pre(name)}unsupported image type {type(image).__name__} (PIL image, numpy array, tensor, path)")


def _one_mask(mask: Any, name: str, max_pixels: int | None) -> np.ndarray:
    if isinstance(mask, (str, Path)):
        return read_mask(mask, max_pixels)
    if isinstance(mask, Image.Image):
        return mask_from_image(mask)  # the conversion of mask files and uploads
    if isinstance(mask, Tensor):
        t = mask.detach().cpu()
        t = t.float() if t.dtype in (torch.bfloat16,) else t
        if t.dim() == 3 and t.shape[0] == 1:
            t = t[0]
        if t.dim() != 2:
            raise MaskError(f"{_pre(name)}a tensor mask must be (H, W) or (1, H, W); got {tuple(mask.shape)}")
        return mask_from_array(t.numpy())
    if isinstance(mask, np.ndarray):
        return mask_from_array(mask)
    raise TypeError(f"{_pre(name)}unsupported mask type {type(mask).__name__} (PIL image, numpy array, tensor, path)")


def _unpack_masks(mask: Any, items: list[_Item], batch: bool, max_pixels: int | None) -> list[np.ndarray]:
    n = len(items)
    per_item: list[Any] | None = None
    if isinstance(mask, (list, tuple)):
        per_item = list(mask)
    elif batch and isinstance(mask, Tensor) and mask.dim() == 4:
        per_item = [mask[i] for i in range(mask.shape[0])]
    elif batch and isinstance(mask, Tensor) and mask.dim() == 3 and mask.shape[0] == n and n > 1:
        per_item = [mask[i] for i in range(n)]
    elif batch and isinstance(mask, np.ndarray) and mask.ndim == 4:
        per_item = [mask[i] for i in range(mask.shape[0])]
    elif (
        batch and isinstance(mask, np.ndarray) and mask.ndim == 3 and n > 1 and mask.shape[0] == n
        and mask.shape[1:] == items[0].data.shape[:2]
    ):
        per_item = [mask[i] for i in range(n)]
    elif not batch and isinstance(mask, Tensor) and mask.dim() == 4 and mask.shape[0] == 1:
        mask = mask[0]
    if per_item is None:  # one mask for every image
        m = _one_mask(mask, "mask", max_pixels)
        return [m] * n
    if len(per_item) == 1:
        return [_one_mask(per_item[0], "mask", max_pixels)] * n
    if len(per_item) != n:
        raise MaskError(f"got {len(per_item)} masks for {n} images")
    return [_one_mask(m, f"mask {i}", max_pixels) for i, m in enumerate(per_item)]


def _to_float(a: np.ndarray) -> np.ndarray:
    """Native (H, W, C) -> float32 in [0, 1]."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    return np.clip(a.astype(np.float32), 0.0, 1.0)


def _from_float(f: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float32 in [0, 1] -> the native dtype (rounded for integers). Works in one float32 buffer (a
    window of a large photo is hundreds of MB as float32; temporaries per step would multiply that)."""
    if dtype in (np.uint8, np.uint16):
        full = 255.0 if dtype == np.uint8 else 65535.0
        x = np.multiply(f, np.float32(full), dtype=np.float32)  # the one new buffer
        np.rint(x, out=x)
        np.clip(x, 0, full, out=x)
        return x.astype(dtype)
    return np.clip(f, 0.0, 1.0).astype(dtype)


def _to_uint8(a: np.ndarray) -> np.ndarray:
    return a if a.dtype == np.uint8 else _from_float(_to_float(a), np.dtype(np.uint8))


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


# ------------------------------------------------------------------------------------------ Inpainter


class Inpainter:
    """Fill holes in images of any size with a trained method (see the module docstring).

    ``Inpainter(method)`` wraps an in-memory method; :meth:`from_pretrained` loads a zoo model or a
    model file. ``working_size`` (default: the size the model was trained at) is the scale the
    ``crop`` and ``resize`` strategies bring the network's input to.
    """

    def __init__(
        self,
        method: Any,
        metadata: dict[str, Any] | None = None,
        device: str | torch.device | None = None,
        working_size: int | None = None,
        min_context: int = MIN_CONTEXT,
    ):
        self.method = method  # put in eval mode only for the duration of each network call
        self.metadata = dict(metadata or {})
        if device is not None:
            self.device = resolve_device(device)
            self.method.to(self.device)
        else:
            p = next(iter(method.parameters()), None)
            self.device = p.device if p is not None else torch.device("cpu")
        p = next(iter(method.parameters()), None)
        #: the network's floating dtype (bfloat16 / float16 after ``from_pretrained(dtype=...)``): inputs are cast to it
        self.dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
        self.image_size = int(self.metadata.get("image_size") or method.image_size)
        self.working_size = int(working_size or self.image_size)
        #: ``auto`` runs whole images up to this times the working size (a model file may lower it: a
        #: model with a costly pre-fill, or trained at the working scale only, fills windows instead)
        self.auto_full_factor = float(self.metadata.get("auto_full_factor") or AUTO_FULL_FACTOR)
        self._check_working_size(self.working_size)
        self.min_context = int(min_context)
        #: a label for tables and messages: the zoo name or model file stem, else the method's name
        self.name = str(self.metadata.get("model") or getattr(method, "name", type(method).__name__))

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "default", device: str | torch.device = "auto", **kwargs: Any) -> Inpainter:
        """Load a model by zoo name (``list_models()``) or from a ``.safetensors`` file (a trainer
        ``.pt`` checkpoint is read with ``torch.load(weights_only=True)``; pickled objects are refused),
        or an exported ``.onnx`` (run with onnxruntime) / ``.torchscript`` file (``inpaintgan export
        --format``). The classical fills ``telea``, ``ns`` and ``patchmatch`` are names too (no weights).
        ``optimize=True``: BatchNorm folded into the convolutions and channels_last weights
        for faster CPU inference (same fills within float rounding); ``dtype="bfloat16"`` (CPUs with bf16
        instructions) or ``"float16"`` (GPUs): the network in that precision (``docs/benchmarks.md``
        gives the accuracy cost)."""
        from inpaintgan.classical import CLASSICAL

        if isinstance(name_or_path, str) and name_or_path in CLASSICAL:
            from inpaintgan.classical import ClassicalMethod, classical_metadata

            return cls(ClassicalMethod(name_or_path), classical_metadata(name_or_path), device=device, **kwargs)
        optimize = bool(kwargs.pop("optimize", False))
        dtype = kwargs.pop("dtype", None)
        if is_exported_path(name_or_path):  # .onnx (onnxruntime) / .torchscript: the same pre/post-processing
            from inpaintgan.export.runtime import load_exported

            method, meta = load_exported(Path(name_or_path).expanduser(), resolve_device(device))
            return cls(method, {**meta, "path": str(name_or_path), "model": Path(str(name_or_path)).stem}, **kwargs)
        path = resolve_model(name_or_path)
        method, meta = load_any(path, "cpu")
        if optimize:  # BatchNorm folded into the convolutions, channels_last weights (inference only)
            from inpaintgan.export.fold import optimize_for_inference

            method = optimize_for_inference(method)
        if dtype is not None:  # e.g. torch.bfloat16 on CPUs with bf16 instructions, torch.float16 on GPUs
            method = method.to(getattr(torch, dtype) if isinstance(dtype, str) else dtype)
        label = Path(str(name_or_path)).stem if is_model_path(name_or_path) else str(name_or_path)
        meta = {**meta, "path": str(path), "model": label}
        return cls(method, meta, device=device, **kwargs)

    @property
    def fully_convolutional(self) -> bool:
        return bool(getattr(self.method, "fully_convolutional", True))

    @property
    def channels(self) -> int:
        return int(getattr(self.method, "channels", 3))

    def __repr__(self) -> str:
        return (
            f"Inpainter(method={getattr(self.method, 'name', type(self.method).__name__)!r}, "
            f"image_size={self.image_size}, working_size={self.working_size}, device={str(self.device)!r})"
        )

    def _check_working_size(self, ws: int) -> None:
        if ws < 1:
            raise ValueError(f"working_size must be positive, got {ws}")
        if not self.fully_convolutional and ws != self.image_size:
            raise ValueError(
                f"method {self.method.name!r} is not fully convolutional: it works at exactly "
                f"{self.image_size}x{self.image_size}; working_size cannot be {ws}"
            )

    # ---------------------------------------------------------------------------------- public call

    @project_errors
    def __call__(
        self,
        image: Any,
        mask: Any,
        *,
        strategy: str = "auto",
        working_size: int | None = None,
        dilate: int = 0,
        resize_mask: bool = False,
        blend: str | None = None,
        prefill: bool = False,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> Any:
        """Inpaint ``image`` where ``mask`` is set (1 / white = hole); returns the input's kind.

        ``mask``: one mask for every image, or one per image (a list, or a batch like the images).
        Options: ``strategy`` (auto | full | crop | resize), ``working_size`` (px), ``dilate`` (grow
        the hole by N px), ``resize_mask`` (else a mask of another size is an error), ``blend``
        ("poisson": Poisson blending of the fill), ``prefill`` (fast-marching pre-fill of the hole
        before the network; it matters only to methods that read the hole's pixels -- GLCIC replaces
        them with its mean fill), ``max_pixels`` (limit for images read from files).
        """
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
        blend = blend or "none"
        if blend not in BLEND_MODES:
            raise ValueError(f"unknown blend mode {blend!r}; known: {', '.join(BLEND_MODES)}")
        ws = int(working_size or self.working_size)
        self._check_working_size(ws)
        items, combine, batch = _unpack_images(image, max_pixels)
        masks = _unpack_masks(mask, items, batch, max_pixels)
        holes: list[np.ndarray | None] = []
        for item, m in zip(items, masks):
            prefix = f"{item.name}: " if item.name else ""
            hole = fit_mask(m, item.size, resize_mask, mask_name=f"the mask of {item.name}" if batch else "the mask", image_name=f"{item.name or 'the image'}")
            hole = dilate_mask(hole, dilate)
            if not hole.any():
                warnings.warn(f"{prefix}the mask is empty (no hole); returning the input unchanged", UserWarning, stacklevel=2)
                hole = None
            elif hole.all():
                raise MaskError(f"{prefix}the mask covers the whole image; there is nothing to inpaint from")
            holes.append(hole)
        filled = self._fill_batched(items, holes, strategy, ws) if blend == "none" and not prefill else {}
        outs = []
        for i, (item, hole) in enumerate(zip(items, holes)):
            if hole is None:
                out = item.data.copy()
            elif i in filled:
                out = filled[i]
            else:
                out = self.fill_array(item.data, hole, strategy=strategy, working_size=ws, blend=blend, prefill=prefill)
            outs.append(item.rebuild(_join(out, item.alpha)))
        return combine(outs)

    # ---------------------------------------------------------------------------------- the core

    def _fill_batched(self, items, holes, strategy: str, ws: int, chunk: int = 64) -> dict[int, np.ndarray]:
        """Images of one size whose strategy is ``full`` go through the network together, ``chunk`` at
        a time (evaluation on thousands of small images); returns {item index: filled array}."""
        groups: dict[tuple, list[int]] = {}
        for i, (item, hole) in enumerate(zip(items, holes)):
            if hole is None or len(items) == 1:
                continue
            h, w = hole.shape
            if self.choose_strategy(h, w, strategy, ws) == "full":
                groups.setdefault((h, w, item.data.shape[2], item.data.dtype.str), []).append(i)
        done: dict[int, np.ndarray] = {}
        for idx in groups.values():
            for k in range(0, len(idx), chunk):
                part = idx[k : k + chunk]
                x = torch.from_numpy(np.stack([self._to_model_channels(_to_float(items[i].data)) for i in part])).permute(0, 3, 1, 2)
                m = torch.from_numpy(np.stack([holes[i] for i in part]).astype(np.float32))[:, None]
                y = self._run(x, m).permute(0, 2, 3, 1).numpy()  # (n, h, w, C_model)
                for j, i in enumerate(part):
                    data = items[i].data
                    fill = _from_float(self._from_model_channels(y[j], data.shape[2]), data.dtype)
                    out = data.copy()
                    out[holes[i]] = fill[holes[i]]
                    done[i] = out
        return done

    def choose_strategy(self, height: int, width: int, strategy: str = "auto", working_size: int | None = None) -> str:
        """The strategy ``auto`` resolves to for an image of this size (or check an explicit one)."""
        ws = int(working_size or self.working_size)
        s = self.image_size
        if strategy == "auto":
            if self.fully_convolutional:
                f = self.auto_full_factor
                small = min(height, width) <= f * ws and max(height, width) <= 2 * f * ws
                return "full" if small else "crop"
            if (height, width) == (s, s):
                return "full"
            return "resize" if max(height, width) <= AUTO_FULL_FACTOR * s else "crop"
        if strategy == "full" and not self.fully_convolutional and (height, width) != (s, s):
            raise ValueError(
                f"method {self.method.name!r} is not fully convolutional: strategy 'full' needs a "
                f"{s}x{s} image, got {width}x{height}; use 'resize' or 'crop'"
            )
        return strategy

    @project_errors
    def fill_array(
        self,
        data: np.ndarray,
        hole: np.ndarray,
        strategy: str = "auto",
        working_size: int | None = None,
        blend: str = "none",
        prefill: bool = False,
    ) -> np.ndarray:
        """Fill ``hole`` (bool (H, W)) in ``data`` ((H, W, 1|3), uint8/uint16/float); a new array whose
        non-hole pixels are ``data``'s exactly."""
        h, w = hole.shape
        ws = int(working_size or self.working_size)
        strategy = self.choose_strategy(h, w, strategy, ws)
        if strategy == "crop":
            windows = [win for win, _ in plan_crops(hole, ws, self.min_context)]
        else:
            windows = [(0, 0, h, w)]
        out = data.copy()
        for y0, x0, y1, x1 in windows:
            sub, sub_hole = data[y0:y1, x0:x1], hole[y0:y1, x0:x1]
            if not sub_hole.any():
                continue
            net_in = prefill_telea(_to_uint8(sub), sub_hole) if prefill else sub
            x = torch.from_numpy(self._to_model_channels(_to_float(net_in))).permute(2, 0, 1)[None]  # (1, C, h, w)
            m = torch.from_numpy(sub_hole.astype(np.float32))[None, None]  # (1, 1, h, w)
            target = None if strategy == "full" else self._target_size(y1 - y0, x1 - x0, ws)
            y = self._network_fill(x, m, target)[0].permute(1, 2, 0).numpy()  # (h, w, C_model) float32
            fill = _from_float(self._from_model_channels(y, data.shape[2]), data.dtype)
            if blend == "poisson":
                blended = poisson_blend(_to_uint8(sub), _to_uint8(fill), sub_hole)
                fill = blended if data.dtype == np.uint8 else _from_float(blended.astype(np.float32) / 255.0, data.dtype)
            view = out[y0:y1, x0:x1]
            view[sub_hole] = fill[sub_hole]
        return out

    def _to_model_channels(self, f: np.ndarray) -> np.ndarray:
        c, mc = f.shape[2], self.channels
        if c == mc:
            return np.ascontiguousarray(f)
        if c == 1:
            return np.repeat(f, mc, axis=2)
        if mc == 1:
            return (f[:, :, :3] @ _LUMA)[:, :, None].astype(np.float32)
        raise ValueError(f"cannot feed a {c}-channel image to a {mc}-channel model")

    def _from_model_channels(self, f: np.ndarray, c: int) -> np.ndarray:
        mc = f.shape[2]
        if c == mc:
            return f
        if c == 1:
            return (f[:, :, :3] @ _LUMA)[:, :, None].astype(np.float32)
        return np.repeat(f, c, axis=2)

    def _target_size(self, h: int, w: int, ws: int) -> tuple[int, int] | None:
        """Working-scale size of an (h, w) region, or None to run it at its own size."""
        if not self.fully_convolutional:
            s = self.image_size
            return None if (h, w) == (s, s) else (s, s)
        # Scale by the short side: the network then sees the region at the scale it was trained on
        # (a 384x256 window becomes 192x128, not 128x85, which is smaller than any training crop).
        if min(h, w) <= ws:
            return None
        scale = ws / min(h, w)
        return max(1, round(h * scale)), max(1, round(w * scale))

    def _network_fill(self, x: Tensor, m: Tensor, target: tuple[int, int] | None) -> Tensor:
        """Fill an (1, C, h, w) image at ``target`` size (None: as is); returns (1, C, h, w) on the CPU."""
        h, w = x.shape[-2:]
        if target is None or tuple(target) == (h, w):
            return self._run(x, m)
        down = target[0] <= h and target[1] <= w
        xs = F.interpolate(x, size=target, mode="area") if down else F.interpolate(x, size=target, mode="bilinear", antialias=True)
        # a working pixel that any hole pixel contributes to is hole: no hole content leaks into the input
        ms = (F.interpolate(m, size=target, mode="area") > 0).float()
        ys = self._run(xs, ms)
        return F.interpolate(ys, size=(h, w), mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)

    def _run(self, x: Tensor, m: Tensor) -> Tensor:
        """One network call; fully convolutional methods get reflect-padding to ``size_multiple``."""
        h, w = x.shape[-2:]
        if not self.fully_convolutional and (h, w) != (self.image_size, self.image_size):
            raise ValueError(f"method {self.method.name!r} needs {self.image_size}x{self.image_size} input, got {w}x{h}")
        mult = int(getattr(self.method, "size_multiple", 1) or 1)
        ph, pw = (-h) % mult, (-w) % mult
        pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)  # left, right, top, bottom
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x, m = F.pad(x, pad, mode=mode), F.pad(m, pad, mode=mode)
        was_training = self.method.training
        self.method.eval()
        try:
            with torch.inference_mode():
                y = self.method.inpaint(x.to(self.device, self.dtype), m.to(self.device, self.dtype))
        finally:
            self.method.train(was_training)
        y = check_finite_output(y.float().cpu(), f"model {self.name}")
        return y[:, :, pad[2] : pad[2] + h, pad[0] : pad[0] + w]

    # ------------------------------------------------------- harmonization and guided inpainting

    @project_errors
    def harmonize(self, image: Any, region: Any, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Any:
        """Re-tone ``region`` (white / 1 = harmonise) of one image to fit the rest, for methods that
        have ``harmonize`` (e.g. btgmi). The whole image goes through the network at its own size
        (strategy ``full``); pixels outside the region come back exactly. Returns the input's kind."""
        return self._task("harmonize", image, region, None, None, max_pixels)

    @project_errors
    def guided(self, image: Any, mask: Any, guide: Any, guide_mask: Any, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Any:
        """Guided inpainting for methods that have ``guided_inpaint`` (e.g. btgmi): ``guide`` (an image of
        the same size, already positioned) is used where ``guide_mask`` is set and harmonised, the rest
        of ``mask`` is filled around it. Strategy ``full``; pixels in neither mask come back exactly."""
        return self._task("guided_inpaint", image, mask, guide, guide_mask, max_pixels)

    def _task(self, fn_name: str, image: Any, mask: Any, guide: Any, guide_mask: Any, max_pixels: int | None) -> Any:
        fn = getattr(self.method, fn_name, None)
        if not callable(fn):
            name = getattr(self.method, "name", type(self.method).__name__)
            raise ValueError(f"method {name!r} has no {fn_name}(); use a model that has one (e.g. method btgmi)")
        item = _unpack_one(image, "", max_pixels)
        hole = fit_mask(_one_mask(mask, "mask", max_pixels), item.size)
        tensors = [self._tensor(item.data), torch.from_numpy(hole.astype(np.float32))[None, None]]
        written = hole
        if guide is not None:
            g = _unpack_one(guide, "guide", max_pixels)
            if g.size != item.size:
                raise ValueError(f"the guide image is {g.size[0]}x{g.size[1]} but the image is {item.size[0]}x{item.size[1]}")
            gm = fit_mask(_one_mask(guide_mask, "guide mask", max_pixels), item.size, mask_name="the guide mask")
            tensors += [self._tensor(g.data), torch.from_numpy(gm.astype(np.float32))[None, None]]
            written = hole | gm
        if not written.any():
            warnings.warn("the mask is empty; returning the input unchanged", UserWarning, stacklevel=3)
            return item.rebuild(_join(item.data.copy(), item.alpha))
        y = self._run_padded(fn, tensors)[0].permute(1, 2, 0).numpy()  # (H, W, C_model)
        fill = _from_float(self._from_model_channels(y, item.data.shape[2]), item.data.dtype)
        out = item.data.copy()
        out[written] = fill[written]
        return item.rebuild(_join(out, item.alpha))

    def _tensor(self, data: np.ndarray) -> Tensor:
        return torch.from_numpy(self._to_model_channels(_to_float(data))).permute(2, 0, 1)[None]  # (1, C, H, W)

    def _run_padded(self, fn: Callable[..., Tensor], tensors: list[Tensor]) -> Tensor:
        """``fn(*tensors)`` with every tensor reflect-padded to ``size_multiple``, cropped back, on the CPU."""
        h, w = tensors[0].shape[-2:]
        mult = int(getattr(self.method, "size_multiple", 1) or 1)
        ph, pw = (-h) % mult, (-w) % mult
        pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            tensors = [F.pad(t, pad, mode=mode) for t in tensors]
        was_training = self.method.training
        self.method.eval()
        try:
            with torch.inference_mode():
                y = fn(*[t.to(self.device, self.dtype) for t in tensors])
        finally:
            self.method.train(was_training)
        return check_finite_output(y.float().cpu(), f"model {self.name}")[:, :, pad[2] : pad[2] + h, pad[0] : pad[0] + w]


__all__ = [
    "Inpainter",
    "list_models",
    "plan_crops",
    "context_window",
    "hole_regions",
    "resolve_device",
    "STRATEGIES",
    "MIN_CONTEXT",
]
