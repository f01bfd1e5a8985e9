"""The methods, one file per paper. Importing this package registers them all."""

from inpaintgan.methods import glcic  # noqa: F401
from inpaintgan.methods.base import InpaintMethod, Phase, phase_at

__all__ = ["InpaintMethod", "Phase", "phase_at"]
