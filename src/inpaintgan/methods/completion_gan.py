"""What GLCIC (``methods/glcic.py``) and the partial-convolution GAN (``methods/pconv.py``) share,
written once: a completion network trained against discriminators in GLCIC's three phases (Iizuka et
al. 2017, Sec. 3.4), optionally predicting a residual correction to its pre-filled input.

- **Schedule** (:func:`completion_phases`): the completion network alone on its reconstruction loss
  (``completion``), the discriminators alone with the network frozen (``discriminator``), then both
  (``joint``), the generator's loss gaining ``adv_weight`` x the adversarial term.
- **Residual output** (:func:`residual_output`, :func:`zero_layer_`): the network's last layer starts
  at exactly zero and its output is added to the input, so an untrained model is its pre-fill; a warm
  start from a model that was not residual re-zeroes that layer (:meth:`CompletionGAN.after_warm_start`).
- **The training step** (:meth:`CompletionGAN.train_step`): each method supplies its network
  (:meth:`~CompletionGAN.complete`), its reconstruction loss, its discriminator's extra inputs and its
  adversarial loss and weight.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import Tensor, nn

from inpaintgan.losses import d_loss, g_loss
from inpaintgan.methods.base import InpaintMethod, Phase


def completion_phases(steps_completion: int, steps_discriminator: int, steps_joint: int, adversarial: bool = True) -> list[Phase]:
    """GLCIC's three phases. ``adversarial=False`` (no adversarial term at all): the discriminator
    phase has no steps and the joint phase trains the completion network alone."""
    if not adversarial:
        return [
            Phase("completion", steps_completion, {"generator"}),
            Phase("discriminator", 0, {"discriminator"}),
            Phase("joint", steps_joint, {"generator"}),
        ]
    return [
        Phase("completion", steps_completion, {"generator"}),
        Phase("discriminator", steps_discriminator, {"discriminator"}),
        Phase("joint", steps_joint, {"generator", "discriminator"}),
    ]


def residual_output(x: Tensor, y: Tensor, residual: bool) -> Tensor:
    """The network's result from its input ``x`` and raw output ``y``: ``x + y`` when it predicts a
    correction (may leave [0, 1]; ``inpaint`` clamps), else ``y``."""
    return x + y if residual else y


def zero_layer_(layer: nn.Module) -> nn.Module:
    """Zero ``layer``'s weight and bias in place (a residual network's last layer: its correction
    starts at exactly zero)."""
    with torch.no_grad():
        layer.weight.zero_()
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


class CompletionGAN(InpaintMethod):
    """Base of GLCIC and the partial-convolution GAN (see the module docstring).

    Subclasses build ``generator`` and ``discriminator`` and provide :meth:`complete`,
    :meth:`reconstruction_loss`, :meth:`residual_layer` and the properties below;
    :meth:`discriminator_inputs` defaults to none beyond the image.
    """

    @property
    @abc.abstractmethod
    def adv_weight(self) -> float:
        """Weight of the adversarial term in the joint phase (0: none)."""

    @property
    @abc.abstractmethod
    def adv_loss(self) -> str:
        """The adversarial loss (``inpaintgan.losses.ADV_LOSSES``)."""

    @property
    @abc.abstractmethod
    def residual(self) -> bool:
        """True if the network predicts a correction added to its input."""

    @abc.abstractmethod
    def complete(self, image: Tensor, mask: Tensor) -> Tensor:
        """Raw network output (N, C, H, W), not composited, for ``mask`` (N, 1, H, W), 1 = hole."""

    @abc.abstractmethod
    def reconstruction_loss(self, pred: Tensor, image: Tensor, mask: Tensor) -> tuple[Tensor, dict[str, float]]:
        """The reconstruction loss of ``pred`` and its logged terms."""

    @abc.abstractmethod
    def residual_layer(self) -> tuple[nn.Module, str]:
        """The network's last layer (zeroed for a residual start) and how to name it in a note."""

    @abc.abstractmethod
    def source_was_residual(self, config: dict[str, Any]) -> bool:
        """Whether a model file's ``config`` describes a residual network."""

    def discriminator_inputs(self, mask: Tensor) -> tuple:
        """Extra arguments of the discriminator after the image (e.g. GLCIC's local crop corners),
        computed once per step from the mask: fakes and reals are judged at the same places."""
        return ()

    @torch.no_grad()
    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        return self.composite(self.complete(image, mask).clamp(0, 1), image, mask)

    def after_warm_start(self, meta: dict) -> list[str]:
        """A residual network warm-started from one that was not: the old last layer predicts the
        image, not a correction; it restarts at zero so training starts from the pre-fill."""
        if self.residual and not self.source_was_residual(meta.get("config", {})):
            layer, note = self.residual_layer()
            zero_layer_(layer)
            return [note]
        return []

    def train_step(self, batch, phase: Phase, step: int, ctx) -> dict[str, float]:
        image, mask = batch["image"], batch["mask"]
        logs: dict[str, float] = {}
        train_g, train_d = "generator" in phase.trains, "discriminator" in phase.trains
        extra = self.discriminator_inputs(mask)
        with ctx.autocast():
            pred = self.complete(image, mask) if train_g else None
        if train_d:
            with torch.no_grad(), ctx.autocast():
                fake = self.composite(pred if pred is not None else self.complete(image, mask), image, mask)
            # Real images are judged at the same places as the fakes (GLCIC's code: the holes' crops).
            with ctx.autocast():
                loss_d = d_loss(self.discriminator(image, *extra), self.discriminator(fake.detach(), *extra), self.adv_loss)
            ctx.backward_step(loss_d, "discriminator")
            logs["loss_d"] = loss_d.item()
        if train_g:
            with ctx.autocast():
                loss_g, rec_logs = self.reconstruction_loss(pred, image, mask)
                if phase.name == "joint" and self.adv_weight > 0:
                    ctx.freeze(self.discriminator)
                    adv = g_loss(self.discriminator(self.composite(pred, image, mask), *extra), self.adv_loss)
                    ctx.unfreeze(self.discriminator)
                    loss_g = loss_g + self.adv_weight * adv
                    logs["loss_adv"] = adv.item()
            ctx.backward_step(loss_g, "generator")
            logs.update(rec_logs)
        return logs
