"""Reusable layers shared by the methods. Masks are 1 = hole, as everywhere in inpaintgan, except
:class:`PartialConv2d`'s ``valid`` argument (the paper's 1 = valid), which its signature names."""

from inpaintgan.nn.blocks import ConvBNAct, DownsamplingDiscriminator, StridedConvDiscriminator
from inpaintgan.nn.contextual_attention import ContextualAttention
from inpaintgan.nn.partial_conv import PartialConv2d

__all__ = ["ContextualAttention", "ConvBNAct", "DownsamplingDiscriminator", "PartialConv2d", "StridedConvDiscriminator"]
