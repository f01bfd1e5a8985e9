"""The methods, one file per paper. Importing this package registers them all."""

from inpaintgan.methods import btgmi, deepfill, glcic, lama, pconv, semantic  # noqa: F401
from inpaintgan.methods.base import InpaintMethod, Phase, phase_at

__all__ = ["InpaintMethod", "Phase", "phase_at"]
