"""Partial convolution (Liu, Reda, Shih, Wang, Tao, Catanzaro, "Image Inpainting for Irregular Holes
Using Partial Convolutions", ECCV 2018, Sec. 3.1, eq. 1-2).

**Mask convention inside this module: 1 = valid (known) pixel, 0 = hole** -- the paper's ``M``, named
``valid`` at the layer's signature. Every public boundary of inpaintgan (methods, Inpainter, CLI, API)
takes 1 = hole; this internal layer inverts, and a network built from it converts once, at its entry
(``PConvGAN.complete`` passes ``1 - mask``).

For a window with input ``X``, mask ``M``, weights ``W`` and bias ``b``::

    x' = W^T (X * M) * sum(1) / sum(M) + b    if sum(M) > 0
    x' = 0                                     otherwise
    m' = 1 if sum(M) > 0 else 0                (the updated mask, eq. 2)

``sum(1)`` is the window size: ``k_h * k_w`` for a single-channel mask (N, 1, H, W) shared by every
input channel, ``k_h * k_w * C`` for a multi-channel mask (N, C, H, W) (NVIDIA's ``multi_channel``
mode; a U-Net decoder that concatenates skip features with their masks needs it). Zero padding counts
as hole, as in NVIDIA's reference code (and their "partial convolution based padding", Liu et al.
2018b): with an all-ones mask the layer equals a plain convolution wherever its window lies inside
the image, and re-weights border windows by ``window size / number of in-image pixels``.

Unlike NVIDIA's ``partialconv2d.py`` the layer is stateless between calls (nothing cached by input
size; the all-ones kernel is a registered, non-persistent buffer that follows ``.to()``), and the
mask count runs in float32 outside autocast, so counts up to ``k*k*C`` stay exact under bf16/fp16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PartialConv2d(nn.Conv2d):
    """A ``nn.Conv2d`` that convolves valid pixels only and returns the updated mask.

    ``forward(x, valid)`` takes ``x`` (N, C_in, H, W) and ``valid`` (N, 1, H, W) or (N, C_in, H, W)
    with **1 = valid**, 0 = hole (the inverse of inpaintgan's public hole masks) (``None`` = everything valid), and returns ``(out, new_mask)``:
    ``out`` (N, C_out, H', W'), zero where the window saw no valid pixel; ``new_mask`` 1 where it saw
    one, shaped (N, 1, H', W') for a single-channel mask and (N, C_out, H', W') (an expanded view, all
    channels equal) for a multi-channel one, so layers chain in either mode.

    Masks are meant to be binary; soft masks work (inputs are weighted by them) with the count
    clamped at 1 so a window with a tiny mask sum is not blown up. Supports any stride, dilation and
    padding (ints, tuples, ``"same"``/``"valid"``) with ``padding_mode="zeros"``; ``groups > 1`` only
    with single-channel masks. Weights and bias are the usual ``weight`` / ``bias``, so a plain
    ``nn.Conv2d`` state_dict loads into it and back.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
    ):
        if padding_mode != "zeros":
            raise ValueError(
                f"PartialConv2d supports padding_mode='zeros' only (padded pixels count as holes), got {padding_mode!r}"
            )
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        kh, kw = self.kernel_size
        # Sums the mask over each window (one extra, output-channel-free convolution). Not persistent:
        # state_dicts stay identical to nn.Conv2d's.
        self.register_buffer("mask_kernel", torch.ones(1, in_channels, kh, kw), persistent=False)

    def forward(self, x: Tensor, valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``valid``: 1 = valid pixel, 0 = hole (not inpaintgan's 1 = hole); see the class docstring."""
        mask = valid
        n, c, h, w = x.shape
        if mask is None:
            mask = x.new_ones(n, 1, h, w)
        if mask.dim() != 4 or mask.shape[0] not in (1, n) or tuple(mask.shape[2:]) != (h, w):
            raise ValueError(f"mask must be (N, 1 or {c}, {h}, {w}) for input {tuple(x.shape)}, got {tuple(mask.shape)}")
        cm = mask.shape[1]
        if cm not in (1, c):
            raise ValueError(f"mask has {cm} channels; expected 1 (shared) or {c} (one per input channel)")
        if cm > 1 and self.groups != 1:
            raise ValueError("PartialConv2d: multi-channel masks need groups=1")
        kh, kw = self.kernel_size
        window = float(kh * kw * cm)
        with torch.no_grad(), torch.autocast(mask.device.type, enabled=False):
            m = mask.float()
            count = F.conv2d(m, self.mask_kernel[:, :cm].float(), None, self.stride, self.padding, self.dilation)  # (N, 1, H', W')
            update = (count > 0).float()  # the new mask: 1 where any valid pixel was seen
            ratio = window / count.clamp_min(1.0) * update  # sum(1) / sum(M); 0 where nothing was seen
        raw = self._conv_forward(x * mask.to(x.dtype), self.weight, None)  # (N, C_out, H', W'), bias-free
        out = raw * ratio.to(raw.dtype)
        if self.bias is not None:
            out = out + (self.bias.view(1, -1, 1, 1) * update).to(out.dtype)  # bias after re-scaling, not in holes
        new_mask = update.to(mask.dtype)
        if cm > 1:
            new_mask = new_mask.expand(-1, self.out_channels, -1, -1)  # (N, C_out, H', W')
        return out, new_mask
