"""What gets exported for each method: one network pass from (image, mask) to the composited fill.

Every exported graph takes

- ``image``: float32 (N, C, H, W) in [0, 1]. For a method whose hole is pre-filled by a classical
  algorithm (``prefill: telea`` or ``patchmatch``: an OpenCV / PatchMatch search, not a network), the
  image **with that pre-fill already in the hole**; otherwise the plain image (hole pixels are ignored).
- ``mask``: float32 (N, 1, H, W), 1 = hole.
- BTGMI only, ``guide``: float32 (N, 1, H, W), 1 = given content to harmonise (zeros for plain
  inpainting; the mask then zero for harmonisation).

and returns ``output``: float32 (N, C, H, W) in [0, 1], ``where(mask > 0.5, fill, image)`` (BTGMI:
``mask`` or ``guide``), so known pixels come back exactly. H and W must be multiples of the method's
``size_multiple`` (the Inpainter pads); N, H and W are dynamic axes.

The adapters below repeat each method's ``inpaint`` line for line with the classical pre-fill taken
out; the parity tests hold them to the method's own output.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from inpaintgan.postprocess import fill_hole

#: pre-fills computed outside the exported graph (they are searches, not networks)
CLASSICAL_PREFILLS = ("telea", "patchmatch")


class ExportError(ValueError):
    """A method (or configuration) that cannot be exported to the asked format; the message is one line."""


def unexportable_reason(method: nn.Module, fmt: str = "onnx") -> str | None:
    """Why ``method`` cannot be exported as one network pass in format ``fmt``, or None if it can."""
    name = getattr(method, "name", type(method).__name__)
    if name == "semantic":
        return (
            "semantic: inference is a search (back-propagation through the generator to optimise a latent "
            "code per image, then blending), not one network pass; there is nothing to export"
        )
    if name not in ADAPTERS:
        return f"{name}: no export adapter for this method (exportable: {', '.join(sorted(ADAPTERS))})"
    return None


def fixed_batch(method: nn.Module) -> bool:
    """True if the graph is exported for batch 1 (the runtime then runs a batch one image at a time):
    DeepFill's contextual attention convolves each image with its own background patches, a
    convolution whose ``groups`` is the batch size, which ONNX's Conv takes only as a constant."""
    return getattr(method, "name", "") == "deepfill" and bool(getattr(method, "has_attention", False))


def classical_prefill(method: nn.Module) -> str:
    """The classical pre-fill a method's input needs before the exported graph ("none" if none)."""
    p = str(getattr(getattr(method, "cfg", None), "prefill", "none") or "none")
    return p if p in CLASSICAL_PREFILLS else "none"


class _Graph(nn.Module):
    inputs = ("image", "mask")

    def __init__(self, method: nn.Module):
        super().__init__()
        self.method = method
        self.external = classical_prefill(method) != "none"


class GLCICGraph(_Graph):
    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        m, cfg = self.method, self.method.cfg
        x = image if self.external else fill_hole(image, mask, cfg.prefill, m.fill_value)
        y = m.generator(torch.cat([x, mask], dim=1))
        pred = x + y if cfg.output == "residual" else y
        return torch.where(mask > 0.5, pred.clamp(0, 1), image)


class PConvGraph(_Graph):
    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        m, cfg = self.method, self.method.cfg
        if cfg.partial:
            pred = m.generator(image, 1 - mask)
        else:
            x = image if self.external else fill_hole(image, mask, cfg.prefill, cfg.fill_value)
            y = m.generator(torch.cat([x, mask], dim=1), None)
            pred = x + y if cfg.residual else y
        return torch.where(mask > 0.5, pred.clamp(0, 1), image)


class LaMaGraph(_Graph):
    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        m = self.method
        pre = image if self.external else fill_hole(image, mask, m.cfg.prefill, 0.0)
        y = m.generator_ema(torch.cat([pre * 2 - 1, mask], 1))
        return torch.where(mask > 0.5, m.to_image(pre, y).clamp(0, 1), image)


class DeepFillGraph(_Graph):
    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        return self.method.inpaint(image, mask)


class BTGMIGraph(_Graph):
    inputs = ("image", "mask", "guide")

    def forward(self, image: Tensor, mask: Tensor, guide: Tensor) -> Tensor:
        pred = self.method.complete(image, mask, guide)
        return torch.where((mask > 0.5) | (guide > 0.5), pred, image)


ADAPTERS: dict[str, type[_Graph]] = {
    "glcic": GLCICGraph,
    "pconv": PConvGraph,
    "lama": LaMaGraph,
    "deepfill": DeepFillGraph,
    "btgmi": BTGMIGraph,
}


def export_graph(method: nn.Module, fmt: str = "onnx") -> _Graph:
    """The exportable module of ``method`` (eval mode), or :class:`ExportError` with the reason."""
    reason = unexportable_reason(method, fmt)
    if reason:
        raise ExportError(reason)
    return ADAPTERS[method.name](method.eval()).eval()


__all__ = ["ExportError", "unexportable_reason", "classical_prefill", "export_graph", "fixed_batch", "ADAPTERS", "CLASSICAL_PREFILLS"]
