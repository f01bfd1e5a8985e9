"""GLCIC's post-processing (Iizuka, Simo-Serra, Ishikawa, SIGGRAPH 2017, Sec. 3.5): "we employ the
fast marching method [Telea 2004], followed by Poisson image blending [Perez et al. 2003]" to remove
subtle colour inconsistencies between the generated region and its surroundings.

- :func:`prefill_telea` -- OpenCV's fast-marching inpainting (``cv2.INPAINT_TELEA``) of the hole.
  Used as the Poisson destination (OpenCV erodes the clone mask, so the destination's content just
  inside the hole leaks into the solution: it must be plausible, not the object being removed), and
  optionally as the network's input (``prefill=True``) for methods that read hole pixels.
- :func:`prefill_telea_tensor` -- the same on a batch of (N, C, H, W) tensors: the input of models
  trained on fast-marching-filled holes (pconv's ``prefill: telea``, the default model).
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


def prefill_array(image: np.ndarray, mask: np.ndarray, prefill: str) -> np.ndarray:
    """A classical pre-fill of one uint8 (H, W[, C]) image: ``telea`` (fast marching) or
    ``patchmatch`` (seeded PatchMatch, as the ``patchmatch`` baseline); known pixels unchanged. The
    training dataset computes it per sample in its worker processes, so it overlaps the network."""
    if prefill == "telea":
        return prefill_telea(image, mask)
    if prefill == "patchmatch":
        from inpaintgan.baselines import get_baseline

        hole = np.asarray(mask) > 0.5
        rgb = image if image.ndim == 3 and image.shape[2] == 3 else np.repeat(image.reshape(*image.shape[:2], 1), 3, 2)
        filled = get_baseline("patchmatch").fill_array(rgb, hole)
        if rgb is not image:  # grayscale: the channels' mean, as the baseline does
            filled = (filled.astype(np.float32).mean(2) + 0.5).astype(np.uint8).reshape(image.shape)
        return np.where(hole.reshape(*hole.shape, *([1] * (image.ndim - 2))), filled, image)
    raise ValueError(f"unknown pre-fill {prefill!r}; known: telea, patchmatch")


def prefill_telea_tensor(image, mask, radius: int = 3):
    """:func:`prefill_telea` on a batch of tensors: ``image`` (N, C, H, W) in [0, 1], ``mask`` (N, 1, H, W)
    with 1 = hole -> (N, C, H, W) on the image's device and dtype, hole pixels fast-marching-filled (from
    the 8-bit image), known pixels exactly the input's. No gradient flows through the fill."""
    import torch

    if image.dim() != 4 or mask.dim() != 4 or mask.shape[1] != 1 or image.shape[-2:] != mask.shape[-2:]:
        raise ValueError(f"need image (N, C, H, W) and mask (N, 1, H, W); got {tuple(image.shape)} and {tuple(mask.shape)}")
    hole = (mask.detach() > 0.5).cpu().numpy()[:, 0]  # (N, H, W)
    from inpaintgan.tensors import quantize_uint8

    u8 = quantize_uint8(image).cpu().numpy()  # (N, C, H, W)
    filled = np.empty_like(u8)
    for i in range(u8.shape[0]):
        img = u8[i, 0] if u8.shape[1] == 1 else u8[i].transpose(1, 2, 0)
        out = prefill_telea(np.ascontiguousarray(img), hole[i], radius)
        filled[i] = out[None] if out.ndim == 2 else out.transpose(2, 0, 1)
    fill = torch.from_numpy(filled).to(device=image.device, dtype=image.dtype) / 255
    return torch.where(mask > 0.5, fill, image)


def fill_hole(image, mask, prefill: str, fill):
    """A network's input: ``image`` (N, C, H, W) with the hole (``mask`` 1) holding ``fill`` (a value
    or a broadcastable tensor) for ``prefill="mean"``/``"none"``, the fast-marching fill for
    ``"telea"`` (:func:`prefill_telea_tensor`) or the PatchMatch fill for ``"patchmatch"``. Shared by the methods with a ``prefill`` option."""
    if prefill == "telea":
        return prefill_telea_tensor(image, mask)
    if prefill == "patchmatch":
        return prefill_patchmatch_tensor(image, mask)
    return image * (1 - mask) + fill * mask


def prefill_patchmatch_tensor(image, mask):
    """PatchMatch (Barnes et al. 2009, through ``pypatchmatch``, seeded) fill of a batch: the input of
    models that refine an exemplar-based fill (the ``lama`` method's ``prefill: patchmatch``). Same
    shapes and guarantees as :func:`prefill_telea_tensor`; runs on the CPU, one image at a time."""
    from inpaintgan.baselines import get_baseline

    return get_baseline("patchmatch")(image.detach(), mask.detach()).to(image.dtype)


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
