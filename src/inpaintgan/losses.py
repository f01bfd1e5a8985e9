"""Losses shared by the methods: reconstruction over the hole, and adversarial objectives.

Adversarial losses take raw discriminator outputs (logits / critic scores) and return scalars:
- ``bce``: the original GAN loss (Goodfellow et al. 2014), non-saturating for the generator;
- ``lsgan``: least squares (Mao et al. 2017), as in the GLCIC CIFAR-10 report;
- ``hinge``: hinge loss (Lim & Ye 2017; used by SN-PatchGAN);
- ``wgan``: Wasserstein critic loss (Arjovsky et al. 2017), with :func:`gradient_penalty` (WGAN-GP).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

ADV_LOSSES = ("bce", "lsgan", "hinge", "wgan")


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """Mean squared error over hole pixels only (mask 1 = hole), averaged over channels."""
    w = mask.expand_as(pred)
    return ((pred - target) ** 2 * w).sum() / (w.sum() + eps)


def masked_l1(pred: Tensor, target: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """Mean absolute error over the pixels where ``mask`` is 1."""
    w = mask.expand_as(pred)
    return ((pred - target).abs() * w).sum() / (w.sum() + eps)


def _check(kind: str) -> None:
    if kind not in ADV_LOSSES:
        raise ValueError(f"unknown adversarial loss {kind!r}; known: {', '.join(ADV_LOSSES)}")


def d_loss(real: Tensor, fake: Tensor, kind: str = "bce") -> Tensor:
    """Discriminator / critic loss on logits for real and (detached) fake samples."""
    _check(kind)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake)
        )
    if kind == "lsgan":
        return 0.5 * (((real - 1) ** 2).mean() + (fake**2).mean())
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return fake.mean() - real.mean()  # wgan: the critic maximises real - fake


def g_loss(fake: Tensor, kind: str = "bce") -> Tensor:
    """Generator's adversarial loss on the discriminator's output for its samples."""
    _check(kind)
    if kind == "bce":  # non-saturating: -log D(G(z))
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind == "lsgan":
        return 0.5 * ((fake - 1) ** 2).mean()
    return -fake.mean()  # hinge and wgan generators both maximise the critic's score


def gradient_penalty(critic, real: Tensor, fake: Tensor, mask: Tensor | None = None, generator=None) -> Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017): (||grad_x D(x_hat)|| - 1)^2 at random interpolates.

    With ``mask`` (N, 1, H, W), the gradient is taken only over hole pixels (DeepFill v1, Yu et al.
    2018, Sec. 3.2): known pixels are identical in real and fake images, so their gradient says
    nothing about the inpainted content.
    """
    n = real.shape[0]
    alpha = torch.rand((n, 1, 1, 1), device=real.device, dtype=real.dtype, generator=generator)
    x_hat = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    if mask is not None:
        grad = grad * mask
    norm = grad.flatten(1).norm(2, dim=1)
    return ((norm - 1) ** 2).mean()


def spatial_discount(mask: Tensor, gamma: float = 0.99) -> Tensor:
    """Spatially discounted reconstruction weights (DeepFill v1, Yu et al. 2018, Sec. 3.1): gamma ** l
    at hole pixels, l = the exact Euclidean distance (in pixels) to the nearest known pixel, and 0 at
    known pixels. ``mask`` (N, 1, H, W), 1 = hole; returns (N, 1, H, W) on its device.

    The paper defines l as the distance to the nearest known pixel; the official code, written for
    one rectangular hole, uses gamma ** (distance to the nearest side of the hole's box), the same
    for a rectangle up to one pixel (the code gives the box's outermost pixels weight 1, we give them
    gamma). Masks here are free-form, so the distance is computed per sample with an exact Euclidean
    distance transform (``cv2.distanceTransform``, DIST_L2, DIST_MASK_PRECISE); for a rectangle it
    equals the L1 and chessboard distances. A sample without any known pixel gets weight 1 in the hole.
    """
    import cv2
    import numpy as np

    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be (N, 1, H, W), got {tuple(mask.shape)}")
    hole = (mask.detach() > 0.5).cpu().numpy()[:, 0]  # (N, H, W) bool
    out = np.zeros(hole.shape, np.float32)
    for i, h in enumerate(hole):
        if not h.any():
            continue
        if h.all():
            out[i] = 1.0
            continue
        dist = cv2.distanceTransform(h.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)  # (H, W) float32
        out[i] = np.where(h, np.power(np.float64(gamma), dist), 0.0)
    return torch.from_numpy(out)[:, None].to(device=mask.device, dtype=mask.dtype if mask.is_floating_point() else torch.float32)


def hole_ssim_loss(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """1 - SSIM averaged over the hole pixels (mask 1 = hole) of the composite of ``pred`` into
    ``target``: the evaluation's hole SSIM (:func:`inpaintgan.metrics.ssim`, same 11x11 Gaussian
    window) as a differentiable float32 loss. Only hole pixels of ``pred`` receive gradient."""
    from inpaintgan.metrics import ssim_map

    comp = torch.where(mask > 0.5, pred, target)
    s = ssim_map(comp, target, dtype=torch.float32)  # (N, C, H, W)
    w = (mask > 0.5).to(s.dtype).expand_as(s)
    return 1 - (s * w).sum() / w.sum().clamp_min(1)
