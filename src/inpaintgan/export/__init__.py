"""Deployment: ONNX / TorchScript export of a method's inference network, running such a file through
the :class:`~inpaintgan.Inpainter` (onnxruntime or torch.jit), and inference-time rewrites (BatchNorm
folding, channels_last). See ``docs/ARCHITECTURE.md`` (Export) and ``docs/benchmarks.md``."""

from inpaintgan.export.exporter import EXPORT_SUFFIXES, FORMATS, export_model, export_onnx, export_torchscript
from inpaintgan.export.fold import count_batchnorms, fold_batchnorm, optimize_for_inference
from inpaintgan.export.graphs import ExportError, classical_prefill, unexportable_reason

__all__ = [
    "EXPORT_SUFFIXES",
    "FORMATS",
    "ExportError",
    "classical_prefill",
    "count_batchnorms",
    "export_model",
    "export_onnx",
    "export_torchscript",
    "fold_batchnorm",
    "optimize_for_inference",
    "unexportable_reason",
]
