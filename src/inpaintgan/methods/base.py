"""The method contract. A method is one ``nn.Module`` that owns its networks, its optimizers and its
training step; the shared trainer (``inpaintgan.training``) knows nothing else about it.

The method owns the generator/discriminator alternation because the papers differ exactly there
(GLCIC's three phases, DeepFill's n critic steps, BTGMI's block growth, the DCGAN's z-search), the
way StyleGAN2-ADA's ``Loss.accumulate_gradients(phase)`` and LaMa's training modules do.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Phase:
    """One stage of a method's schedule: ``steps`` optimisation steps that update ``trains`` (names of
    the optimizers from :meth:`InpaintMethod.configure_optimizers`); every other network is frozen."""

    name: str
    steps: int
    trains: frozenset[str] = field(default_factory=frozenset)
    info: tuple[tuple[str, Any], ...] = ()  # method-specific data (e.g. which block fades in)

    def __post_init__(self):
        object.__setattr__(self, "trains", frozenset(self.trains))
        if self.steps < 0:
            raise ValueError(f"phase {self.name!r} has a negative length")


def phase_at(phases: list[Phase], step: int) -> tuple[int, Phase, int]:
    """(phase index, phase, step inside the phase) for a global step; past the end -> the last phase."""
    start = 0
    for i, ph in enumerate(phases):
        if step < start + ph.steps:
            return i, ph, step - start
        start += ph.steps
    return len(phases) - 1, phases[-1], phases[-1].steps


class InpaintMethod(nn.Module, abc.ABC):
    """Base class of every method.

    Subclasses set ``Config`` (a dataclass with the paper's defaults), build their networks in
    ``__init__`` and implement the four abstract methods. Conventions: images (N, C, H, W) in [0, 1],
    masks (N, 1, H, W) with 1 = hole; outputs are composited (known pixels returned unchanged).
    """

    Config: ClassVar[type]
    name: ClassVar[str] = "?"
    #: networks needed at inference time, saved in exported model files
    inference_modules: ClassVar[tuple[str, ...]] = ("generator",)
    #: spatial sizes fed to :meth:`inpaint` must be multiples of this (the Inpainter pads)
    size_multiple: ClassVar[int] = 1
    #: True if the generator is fully convolutional (any size works after padding)
    fully_convolutional: ClassVar[bool] = True

    @classmethod
    def upgrade_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """A stored method config (model-file metadata, a training checkpoint's model section) as the
        current code reads it: a method whose defaults changed fills in what files written before the
        change meant (e.g. pconv's layout keys). Presets and ``--set`` are not passed through here."""
        return config

    def __init__(self, cfg: Any, image_size: int = 256, channels: int = 3):
        super().__init__()
        self.cfg = cfg
        self.image_size = image_size
        self.channels = channels

    @abc.abstractmethod
    def configure_optimizers(self, train_cfg) -> dict[str, torch.optim.Optimizer]:
        """Optimizers by name ("generator", "discriminator", ...)."""

    @abc.abstractmethod
    def phases(self) -> list[Phase]:
        """The training schedule, as data."""

    @abc.abstractmethod
    def train_step(self, batch: dict[str, Tensor], phase: Phase, step: int, ctx) -> dict[str, float]:
        """One optimisation step of ``phase`` (``step`` = global step). Uses ``ctx.backward_step``."""

    @abc.abstractmethod
    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        """Fill the hole of ``image`` (N, C, H, W) where ``mask`` (N, 1, H, W) is 1; composited."""

    def preview_inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        """The fill shown in training runs' validation metrics and sample grids (run every epoch):
        :meth:`inpaint` unless a method with costly inference overrides it with cheaper settings.
        Inference never goes through it, so it does not depend on whether training was set up."""
        return self.inpaint(image, mask)

    # ------------------------------------------------------------------ helpers shared by methods

    @staticmethod
    def composite(pred: Tensor, image: Tensor, mask: Tensor) -> Tensor:
        """Known pixels from ``image``, hole pixels from ``pred`` (exactly, no arithmetic on known ones)."""
        return torch.where(mask > 0.5, pred, image)

    def adam_optimizers(self, train_cfg, names: tuple[str, ...] = ("generator", "discriminator")) -> dict:
        """One Adam per network: ``train.lr`` for the generator, ``train.lr_d`` (or ``lr``) for the
        others, ``train.betas`` for all; the usual ``configure_optimizers`` of a GAN method."""
        betas = tuple(train_cfg.betas)
        return {
            n: torch.optim.Adam(
                getattr(self, n).parameters(), lr=train_cfg.lr if n == "generator" else (train_cfg.lr_d or train_cfg.lr), betas=betas
            )
            for n in names
        }

    @classmethod
    def dataset_prefill(cls, cfg: Any) -> str:
        """A classical pre-fill ("telea", "patchmatch") the training dataset should add to each sample
        as ``batch["prefill"]`` (computed in the data loader's workers, overlapping the network), or
        "none". ``train_step`` must give the same result with or without it."""
        return "none"

    def after_warm_start(self, meta: dict[str, Any]) -> list[str]:
        """Called after weights from a model file with metadata ``meta`` were loaded (its config may
        differ from ours on a warm start): re-initialise what must not keep the old values; returns
        their names."""
        return []

    def extra_state_for_export(self) -> dict[str, Any]:
        """Metadata stored beside exported weights (override to add e.g. normalisation constants)."""
        return {}
