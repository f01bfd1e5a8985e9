"""The classical fills (``telea``, ``ns``, ``patchmatch``) as methods an :class:`~inpaintgan.Inpainter`
can wrap, so they work wherever a model name does: ``Inpainter.from_pretrained("patchmatch")``,
``inpaintgan fill --model patchmatch``, ``inpaintgan serve --model telea`` and the REST API's
``model`` option.

A classical fill has no weights and no training size; it works on the image at its own resolution.
Its "working size" (the scale the ``crop`` strategy brings a context window to) is
:data:`WORKING_SIZE`: images whose short side is at most twice that are filled whole, larger ones
window by window around each hole, like the networks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from inpaintgan.baselines import get_baseline

#: the classical fills an Inpainter can wrap (``mean`` stays an evaluation floor)
CLASSICAL = ("telea", "ns", "patchmatch")
#: the working scale of a classical fill (px): whole images up to twice this, windows beyond
WORKING_SIZE = 512

DESCRIPTIONS = {
    "telea": "classical: OpenCV fast-marching fill (Telea 2004); smooth, instant, no weights",
    "ns": "classical: OpenCV Navier-Stokes fill (Bertalmio et al. 2001); smooth, instant, no weights",
    "patchmatch": "classical: exemplar-based PatchMatch fill (Barnes et al. 2009); copies texture, no weights",
}


class ClassicalMethod(nn.Module):
    """A classical fill with the inference side of the method contract (``inpaint``, ``name``,
    ``image_size``, ``channels``, ``size_multiple``, ``fully_convolutional``)."""

    fully_convolutional = True
    size_multiple = 1

    def __init__(self, name: str):
        super().__init__()
        if name not in CLASSICAL:
            raise ValueError(f"unknown classical fill {name!r}; known: {', '.join(CLASSICAL)}")
        self.name = name
        self.baseline = get_baseline(name)
        self.image_size = WORKING_SIZE
        self.channels = 3

    @torch.no_grad()
    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        return self.baseline(image.float().cpu(), mask.float().cpu()).to(image.device)


def classical_metadata(name: str) -> dict:
    return {"model": name, "method": name, "image_size": WORKING_SIZE, "description": DESCRIPTIONS[name],
            "classical": True}


__all__ = ["ClassicalMethod", "CLASSICAL", "WORKING_SIZE", "DESCRIPTIONS", "classical_metadata"]
