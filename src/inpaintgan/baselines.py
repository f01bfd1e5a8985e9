"""Classical inpainting baselines, usable wherever a model name is (``inpaintgan eval --model telea``).

- ``telea``: fast marching (Telea 2004, "An Image Inpainting Technique Based on the Fast Marching
  Method"), OpenCV's ``cv2.INPAINT_TELEA``.
- ``ns``: Navier-Stokes (Bertalmio et al. 2001), OpenCV's ``cv2.INPAINT_NS``.
- ``patchmatch``: exemplar-based fill with PatchMatch (Barnes et al. 2009, "PatchMatch: A Randomized
  Correspondence Algorithm for Structural Image Editing"), through the maintained ``pypatchmatch``
  package (prebuilt wheels, multi-scale EM-style voting, 7x7 patches here = its ``patch_size=3``).
- ``mean``: every hole pixel gets the mean colour of the image's known pixels -- the floor.

Every baseline is an object with ``name`` and ``__call__(image (N, C, H, W), mask (N, 1, H, W)) ->
composited image`` in [0, 1], so it is interchangeable with a trained model's inpainter.
:func:`resolve_model` turns a name or a model file into such a callable.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from inpaintgan.registry import UnknownNameError
from inpaintgan.tensors import to_uint8


def _composite(pred: Tensor, image: Tensor, mask: Tensor) -> Tensor:
    return torch.where(mask > 0.5, pred.to(image.dtype), image)


class Baseline:
    """Base class: fills each image of a batch with :meth:`fill_one` and composites."""

    name = "?"

    def __call__(self, image: Tensor, mask: Tensor) -> Tensor:
        if image.dim() != 4 or mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != image.shape[0]:
            raise ValueError(f"expected image (N, C, H, W) and mask (N, 1, H, W); got {tuple(image.shape)}, {tuple(mask.shape)}")
        with torch.no_grad():
            pred = torch.stack([self.fill_one(image[i], mask[i, 0] > 0.5) for i in range(image.shape[0])])
        return _composite(pred.to(image.device), image, mask)

    def fill_one(self, image: Tensor, hole: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Fill one (C, H, W) image where the (H, W) boolean ``hole`` is True."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MeanFill(Baseline):
    """Mean colour of the known pixels (0.5 if the whole image is hole)."""

    name = "mean"

    def fill_one(self, image, hole):
        known = ~hole
        if not known.any():
            return torch.full_like(image, 0.5)
        mean = image[:, known].mean(1)  # (C,)
        return mean[:, None, None].expand_as(image).clone()


class OpenCVInpaint(Baseline):
    """OpenCV's Telea or Navier-Stokes inpainting on 8-bit images (radius ``radius`` px).

    Known pixels are returned exactly (compositing on the float input); the fill is quantised to
    8 bits, as OpenCV works on uint8 images.
    """

    def __init__(self, method: str = "telea", radius: int = 3):
        flags = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
        if method not in flags:
            raise ValueError(f"unknown OpenCV inpainting method {method!r}; known: telea, ns")
        self.name, self.flag, self.radius = method, flags[method], radius

    def fill_one(self, image, hole):
        img = to_uint8(image)
        m = hole.cpu().numpy().astype(np.uint8) * 255
        out = cv2.inpaint(np.ascontiguousarray(img), m, self.radius, self.flag)
        out = out.reshape(img.shape)  # OpenCV drops the channel axis of 1-channel images
        return torch.from_numpy(out).permute(2, 0, 1).float() / 255


class PatchMatchInpaint(Baseline):
    """PatchMatch inpainting through ``pypatchmatch`` (7x7 patches; seeded, so runs repeat).

    Grayscale images are replicated to three channels and averaged back.
    """

    name = "patchmatch"

    def __init__(self, patch_radius: int = 3, seed: int = 0):
        try:
            import patchmatch
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("baseline 'patchmatch' needs the pypatchmatch package: pip install pypatchmatch") from e
        if not patchmatch.patchmatch_available:  # pragma: no cover
            raise ImportError("pypatchmatch is installed but its native library failed to load")
        self._pm = patchmatch
        self.patch_radius, self.seed = patch_radius, seed

    def fill_array(self, img: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) and a boolean (H, W) hole -> the seeded PatchMatch fill, uint8 (H, W, 3)."""
        self._pm.set_random_seed(self.seed)
        m = np.asarray(hole).astype(np.uint8) * 255
        return np.asarray(self._pm.inpaint(np.ascontiguousarray(img), m, patch_size=self.patch_radius))

    def fill_one(self, image, hole):
        c = image.shape[0]
        img = to_uint8(image if c == 3 else image[:1].expand(3, -1, -1))
        out = self.fill_array(img, hole.cpu().numpy())
        out = torch.from_numpy(out).permute(2, 0, 1).float() / 255
        return out if c == 3 else out.mean(0, keepdim=True)


BASELINES = ("telea", "ns", "patchmatch", "mean")


def get_baseline(name: str) -> Baseline:
    """A baseline by name; unknown names list the known ones."""
    if name in ("telea", "ns"):
        return OpenCVInpaint(name)
    if name == "patchmatch":
        return PatchMatchInpaint()
    if name == "mean":
        return MeanFill()
    raise UnknownNameError(f"unknown baseline {name!r}; known baselines: {', '.join(BASELINES)}")


class MethodInpainter:
    """A method loaded from a ``.safetensors`` model file, as a baseline-like callable.

    Pads H, W up to ``method.size_multiple`` (reflect), or, for a method that is not fully
    convolutional, resizes to its training size and back; always composites.
    """

    def __init__(self, method, name: str):
        self.method, self.name = method, name

    @property
    def device(self) -> torch.device:
        try:
            return next(self.method.parameters()).device
        except StopIteration:  # pragma: no cover
            return torch.device("cpu")

    @torch.no_grad()
    def __call__(self, image: Tensor, mask: Tensor) -> Tensor:
        dev = self.device
        x, m = image.to(dev).float(), mask.to(dev).float()
        if x.shape[1] != self.method.channels:
            if self.method.channels == 1:
                x = x.mean(1, keepdim=True)
            elif x.shape[1] == 1:
                x = x.expand(-1, self.method.channels, -1, -1)
        h, w = x.shape[-2:]
        size = self.method.image_size
        if not getattr(self.method, "fully_convolutional", True) and (h, w) != (size, size):
            xi = F.interpolate(x, (size, size), mode="bilinear", align_corners=False, antialias=True)
            mi = (F.interpolate(m, (size, size), mode="bilinear", align_corners=False) > 0).float()
            out = F.interpolate(self.method.inpaint(xi, mi), (h, w), mode="bilinear", align_corners=False)
        else:
            k = max(1, int(getattr(self.method, "size_multiple", 1)))
            ph, pw = (-h) % k, (-w) % k
            if ph or pw:
                mode = "reflect" if ph < h and pw < w else "replicate"
                xp, mp = F.pad(x, (0, pw, 0, ph), mode=mode), F.pad(m, (0, pw, 0, ph))
                out = self.method.inpaint(xp, mp)[..., :h, :w]
            else:
                out = self.method.inpaint(x, m)
        if out.shape[1] != image.shape[1]:
            out = out.expand(-1, image.shape[1], -1, -1) if out.shape[1] == 1 else out.mean(1, keepdim=True)
        return _composite(out.clamp(0, 1).to(image.device), image, mask)


def resolve_model(name_or_path: str, device: str | torch.device = "cpu"):
    """A callable ``(image, mask) -> composited image`` with a ``name``: a baseline for a baseline
    name, else ``Inpainter.from_pretrained(name_or_path)`` (zoo names, model files), imported lazily.
    Without :mod:`inpaintgan.inpainter`, a ``.safetensors`` file is still loaded directly through
    :func:`inpaintgan.checkpoints.load_model` and wrapped in :class:`MethodInpainter`."""
    if name_or_path in BASELINES:
        return get_baseline(name_or_path)
    path = Path(name_or_path)
    try:
        from inpaintgan.inpainter import Inpainter
    except ImportError:
        if path.suffix == ".safetensors":
            from inpaintgan.checkpoints import load_model

            method, _meta = load_model(path, device=device)
            return MethodInpainter(method, path.stem)
        raise UnknownNameError(
            f"unknown model {name_or_path!r}: not a baseline ({', '.join(BASELINES)}) and not a .safetensors "
            "file (model-zoo names need inpaintgan.inpainter, which is not available)"
        ) from None
    try:
        return Inpainter.from_pretrained(name_or_path, device=device)
    except UnknownNameError as e:
        raise UnknownNameError(f"{e}; baselines: {', '.join(BASELINES)}") from None
