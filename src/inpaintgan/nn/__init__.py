"""Reusable layers shared by the methods."""

from inpaintgan.nn.blocks import ConvBNAct, DownsamplingDiscriminator, StridedConvDiscriminator
from inpaintgan.nn.contextual_attention import ContextualAttention
from inpaintgan.nn.partial_conv import PartialConv2d

__all__ = ["ContextualAttention", "ConvBNAct", "DownsamplingDiscriminator", "PartialConv2d", "StridedConvDiscriminator"]
