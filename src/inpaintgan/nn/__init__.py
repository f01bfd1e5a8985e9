"""Reusable layers shared by the methods."""

from inpaintgan.nn.blocks import ConvBNAct, DownsamplingDiscriminator

__all__ = ["ConvBNAct", "DownsamplingDiscriminator"]
