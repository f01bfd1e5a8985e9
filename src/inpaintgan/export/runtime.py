"""Run an exported file (ONNX through onnxruntime, TorchScript through torch.jit) behind the method
interface the :class:`~inpaintgan.Inpainter` uses, so padding, crop strategy, pre-fill and compositing
are the PyTorch path's own code.

``ExportedMethod.inpaint(image, mask)`` does what the method's ``inpaint`` does: a classical pre-fill
(``prefill`` in the file's metadata: telea / patchmatch) is computed here with the same function the
method uses, then the graph runs, then known pixels are taken from the caller's image again.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaintgan.export.exporter import EXPORT_SUFFIXES, META_KEY, TS_META_FILE
from inpaintgan.postprocess import fill_hole

BACKENDS = ("onnxruntime", "torchscript")


def is_exported_path(p: str | Path) -> bool:
    return str(p).lower().endswith(EXPORT_SUFFIXES)


def default_threads() -> int:
    """Threads for onnxruntime: torch's setting (OMP_NUM_THREADS / torch.set_num_threads), so the two
    backends are compared with the same threads."""
    return max(1, int(torch.get_num_threads()))


class ExportedMethod(nn.Module):
    """An exported inference graph behaving like an ``InpaintMethod`` at inference time."""

    def __init__(self, path: str | Path, device: str | torch.device = "cpu", threads: int | None = None):
        super().__init__()
        self.path = Path(path)
        if not self.path.is_file():
            from inpaintgan.checkpoints import CheckpointError

            raise CheckpointError(f"model file not found: {self.path}")
        self.backend = "onnxruntime" if self.path.suffix.lower() == ".onnx" else "torchscript"
        self.device = torch.device(device)
        self.threads = int(threads or default_threads())
        if self.backend == "onnxruntime":
            self._load_onnx()
        else:
            self._load_torchscript()
        m = self.meta
        self.name = str(m["method"])
        self.image_size = int(m["image_size"])
        self.channels = int(m["channels"])
        self.size_multiple = int(m.get("size_multiple", 1))
        self.fully_convolutional = bool(m.get("fully_convolutional", True))
        self.prefill = str(m.get("prefill", "none"))
        self.inputs = list(m.get("inputs", ["image", "mask"]))
        self.dynamic_batch = bool(m.get("dynamic_batch", True))
        self.cfg = m.get("config", {})
        self.eval()

    # ------------------------------------------------------------------------------ loading

    def _load_onnx(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise ImportError("running an .onnx model needs onnxruntime: pip install 'inpaintgan[export]'") from e
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(self.path), opts, providers=providers)
        props = self.session.get_modelmeta().custom_metadata_map
        if META_KEY not in props:
            raise ValueError(f"{self.path}: not an inpaintgan export (no '{META_KEY}' metadata); export it with 'inpaintgan export --format onnx'")
        self.meta = json.loads(props[META_KEY])

    def _load_torchscript(self) -> None:
        extra = {TS_META_FILE: ""}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in favour of torch.export
            self.module = torch.jit.load(str(self.path), map_location=self.device, _extra_files=extra)
        if not extra[TS_META_FILE]:
            raise ValueError(f"{self.path}: not an inpaintgan export (no {TS_META_FILE}); export it with 'inpaintgan export --format torchscript'")
        self.meta = json.loads(extra[TS_META_FILE])

    def to(self, *args, **kwargs):  # the Inpainter moves methods to its device
        device = kwargs.get("device", args[0] if args else None)
        if device is not None and self.backend == "torchscript":
            self.device = torch.device(device)
            self.module = self.module.to(self.device)
        return self

    def extra_repr(self) -> str:
        return f"{self.path.name}, backend={self.backend}, method={self.name}"

    # ------------------------------------------------------------------------------ running

    def run_graph(self, *tensors: Tensor) -> Tensor:
        """The graph on (image, mask[, guide]) (N, *, H, W), H and W multiples of ``size_multiple``."""
        if not self.dynamic_batch and tensors[0].shape[0] > 1:
            return torch.cat([self.run_graph(*(t[i : i + 1] for t in tensors)) for i in range(tensors[0].shape[0])])
        if self.backend == "onnxruntime":
            feeds = {name: np.ascontiguousarray(t.detach().float().cpu().numpy()) for name, t in zip(self.inputs, tensors)}
            return torch.from_numpy(self.session.run(None, feeds)[0])
        with torch.inference_mode():
            return self.module(*(t.to(self.device, torch.float32) for t in tensors)).float()

    def _padded(self, tensors: list[Tensor]) -> Tensor:
        """``run_graph`` with every tensor replicate-padded to ``size_multiple`` and cropped back."""
        h, w = tensors[0].shape[-2:]
        ph, pw = (-h) % self.size_multiple, (-w) % self.size_multiple
        if ph or pw:
            tensors = [F.pad(t, (0, pw, 0, ph), mode="replicate") for t in tensors]
        return self.run_graph(*tensors)[..., :h, :w]

    def _input(self, image: Tensor, mask: Tensor) -> Tensor:
        return fill_hole(image, mask, self.prefill, 0.0) if self.prefill != "none" else image

    @staticmethod
    def composite(pred: Tensor, image: Tensor, mask: Tensor) -> Tensor:
        return torch.where(mask > 0.5, pred, image)

    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        image, mask = image.float().cpu(), mask.float().cpu()
        extra = [torch.zeros_like(mask)] if "guide" in self.inputs else []
        out = self._padded([self._input(image, mask), mask, *extra])
        return self.composite(out.to(image.dtype), image, mask)

    def harmonize(self, image: Tensor, region: Tensor) -> Tensor:
        self._needs_guide("harmonize")
        image, region = image.float().cpu(), region.float().cpu()
        out = self._padded([image, torch.zeros_like(region), region])
        return self.composite(out, image, region)

    def guided_inpaint(self, image: Tensor, mask: Tensor, guide_image: Tensor, guide_mask: Tensor) -> Tensor:
        self._needs_guide("guided_inpaint")
        image, mask, guide_image, guide_mask = (t.float().cpu() for t in (image, mask, guide_image, guide_mask))
        g = guide_mask > 0.5
        region = ((mask > 0.5) | g).to(image.dtype)
        x = torch.where(g, guide_image, image)
        out = self._padded([x, region * (~g).to(image.dtype), g.to(image.dtype)])
        return self.composite(out, image, region)

    def _needs_guide(self, what: str) -> None:
        if "guide" not in self.inputs:
            raise ValueError(f"method {self.name!r} has no {what}(); use a model that has one (e.g. method btgmi)")


def load_exported(path: str | Path, device: str | torch.device = "cpu", threads: int | None = None) -> tuple[ExportedMethod, dict]:
    """(method-like runner, metadata) for an ``.onnx`` / ``.torchscript`` file."""
    m = ExportedMethod(path, device, threads)
    return m, dict(m.meta)


__all__ = ["ExportedMethod", "load_exported", "is_exported_path", "BACKENDS"]
