"""Write a method's inference network as ONNX or TorchScript, with its metadata inside the file.

ONNX: ``torch.onnx.export(dynamo=True)`` (opset 18 or later: FFT exports as ``DFT``), batch, height and
width dynamic (height and width as multiples of the method's ``size_multiple``); the metadata is the
JSON string under the model's ``metadata_props`` key ``inpaintgan``. TorchScript: ``torch.jit.trace``
of the same module, frozen; the metadata is the extra file ``inpaintgan.json``. BatchNorm is folded into
the convolutions first (:func:`inpaintgan.export.fold.fold_batchnorm`).
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inpaintgan.checkpoints import atomic_write
from inpaintgan.export.fold import fold_batchnorm
from inpaintgan.export.graphs import ExportError, classical_prefill, export_graph, fixed_batch

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript"}
EXPORT_SUFFIXES = (".onnx", ".torchscript", ".ts")
META_KEY = "inpaintgan"
TS_META_FILE = "inpaintgan.json"
FORMAT_VERSION = "export/1"
DEFAULT_OPSET = 18


def export_metadata(method, meta: dict[str, Any] | None, fmt: str, graph) -> dict[str, Any]:
    """The metadata stored in an exported file: what the Inpainter needs to pre- and post-process."""
    from dataclasses import asdict, is_dataclass

    meta = dict(meta or {})
    cfg = getattr(method, "cfg", None)
    prefill = classical_prefill(method)
    out = {
        "format": FORMAT_VERSION,
        "export_format": fmt,
        "method": method.name,
        "image_size": int(meta.get("image_size") or method.image_size),
        "channels": int(method.channels),
        "size_multiple": int(getattr(method, "size_multiple", 1) or 1),
        "fully_convolutional": bool(getattr(method, "fully_convolutional", True)),
        "prefill": prefill,
        "dynamic_batch": not fixed_batch(method),
        "inputs": list(graph.inputs),
        "outputs": ["output"],
        "convention": (
            "image float32 (N, C, H, W) in [0, 1]"
            + (f" with its hole already pre-filled by {prefill} (not part of the graph)" if prefill != "none" else "")
            + "; mask float32 (N, 1, H, W), 1 = hole"
            + ("; guide float32 (N, 1, H, W), 1 = content to harmonise" if "guide" in graph.inputs else "")
            + "; output float32 (N, C, H, W) in [0, 1], composited (known pixels = input);"
            f" H and W multiples of {int(getattr(method, 'size_multiple', 1) or 1)}"
        ),
        "config": asdict(cfg) if is_dataclass(cfg) else {},
    }
    for key in ("auto_full_factor", "training", "metrics", "model"):
        if key in meta:
            out[key] = meta[key]
    if "auto_full_factor" not in out and hasattr(method, "extra_state_for_export"):
        extra = method.extra_state_for_export()
        if "auto_full_factor" in extra:
            out["auto_full_factor"] = extra["auto_full_factor"]
    return out


def _example_inputs(graph, channels: int, mult: int, batch: int = 2, cells: tuple[int, int] = (5, 7)) -> tuple:
    h, w = mult * cells[0], mult * cells[1]
    while min(h, w) < 32:  # room for every downsampling (and contextual attention's patches)
        h, w = h * 2, w * 2
    g = torch.Generator().manual_seed(0)
    image = torch.rand(batch, channels, h, w, generator=g)
    mask = torch.zeros(batch, 1, h, w)
    mask[:, :, h // 4 : h // 2, w // 4 : w // 2] = 1
    args = [image, mask]
    if "guide" in graph.inputs:
        args.append(torch.zeros(batch, 1, h, w))
    return tuple(args)


def prepare(method, fmt: str):
    """(graph module with BatchNorm folded, number folded); raises ExportError for unexportable cases."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    graph = export_graph(method, fmt)
    import copy

    graph = copy.deepcopy(graph)
    _, n = fold_batchnorm(graph, inplace=True)
    for mod in graph.modules():  # progressive blocks (btgmi): their weights are constants of the trained model
        if callable(getattr(mod, "block_weights", None)):
            weights = list(mod.block_weights())
            mod.block_weights = lambda w=weights: w
    for p in graph.parameters():
        p.requires_grad_(False)
    return graph.eval(), n


#: how an FFT (the ``lama`` method's Fourier units) is written into an ONNX graph: "matmul" (default)
#: as real matrix products built from the runtime height and width (:mod:`inpaintgan.nn.dft`), "dft"
#: as ONNX's DFT operator (several times slower in onnxruntime on CPU; docs/benchmarks.md)
ONNX_DFT = ("matmul", "dft")


def set_dft(graph, dft: str) -> int:
    """Make every Fourier unit of ``graph`` run its FFT as ``dft`` ("matmul" | "dft" = torch.fft);
    returns how many were set."""
    if dft not in ONNX_DFT:
        raise ExportError(f"unknown FFT form {dft!r}; known: {', '.join(ONNX_DFT)}")
    n = 0
    for mod in graph.modules():
        if isinstance(getattr(type(mod), "dft", None), str):
            mod.dft = "matmul" if dft == "matmul" else "fft"
            n += 1
    return n


def export_onnx(method, path: str | Path, meta: dict[str, Any] | None = None, opset: int = DEFAULT_OPSET, dft: str = "matmul") -> Path:
    """``method``'s inference graph as ONNX at ``path``; ``dft``: how FFTs are written (:data:`ONNX_DFT`)."""
    graph, _ = prepare(method, "onnx")
    set_dft(graph, dft)
    mult = int(getattr(method, "size_multiple", 1) or 1)
    example = _example_inputs(graph, method.channels, mult, batch=1 if fixed_batch(method) else 2)
    n = torch.export.Dim("batch", min=1, max=4096)
    hm = torch.export.Dim("h_cells", min=1, max=65536 // mult)
    wm = torch.export.Dim("w_cells", min=1, max=65536 // mult)
    if mult > 1:
        spatial = {0: n, 2: mult * hm, 3: mult * wm}
    else:
        spatial = {0: n, 2: torch.export.Dim("height", min=2), 3: torch.export.Dim("width", min=2)}
    if fixed_batch(method):
        del spatial[0]
    dynamic = {name: spatial for name in graph.inputs}
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # e.g. "torchvision is not installed" while registering operators
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                graph, example, dynamo=True, input_names=list(graph.inputs), output_names=["output"],
                dynamic_shapes=dynamic, opset_version=opset, verbose=False, optimize=True,
            )  # fmt: skip
        except Exception as e:  # noqa: BLE001 - the exporter's errors are many kinds; one line for the user
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportError(f"{method.name}: ONNX export failed ({type(e).__name__}: {first[:300]}); try --format torchscript") from e
        finally:
            quiet.setLevel(level)
    model = program.model_proto
    md = export_metadata(method, meta, "onnx", graph)
    entry = model.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(md)
    model.producer_name = "inpaintgan"
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(model.SerializeToString()))


def calibration_batches(method, graph_inputs: list[str], n: int = 8, size: int | None = None, seed: int = 0) -> list[dict]:
    """Inputs for int8 calibration: crops of the bundled example photos (``inpaintgan/assets``) at the
    working size with rectangular holes (a classical pre-fill, if any, left out: the hole holds the
    photo), one image per batch."""
    from PIL import Image

    from inpaintgan.checkpoints import WEIGHTS_DIR
    from inpaintgan.masks import glcic_rect

    mult = int(getattr(method, "size_multiple", 1) or 1)
    size = int(size or method.image_size)
    size = max(mult, size - size % mult)
    photos = sorted((WEIGHTS_DIR.parent / "assets").glob("*.jpg"))
    if not photos:
        raise ExportError("int8 calibration needs the bundled example photos (inpaintgan/assets/*.jpg)")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = Image.open(photos[i % len(photos)]).convert("RGB" if method.channels == 3 else "L")
        scale = size / min(img.size) * rng.uniform(1.0, 2.0)
        img = img.resize((max(size, round(img.width * scale)), max(size, round(img.height * scale))), Image.BILINEAR)
        a = np.asarray(img, np.float32) / 255.0
        a = a[:, :, None] if a.ndim == 2 else a
        y, x = rng.integers(0, a.shape[0] - size + 1), rng.integers(0, a.shape[1] - size + 1)
        image = np.ascontiguousarray(a[y : y + size, x : x + size].transpose(2, 0, 1)[None])
        mask = glcic_rect(rng, size, size).astype(np.float32)[None, None]
        feed = {"image": image, "mask": mask}
        if "guide" in graph_inputs:
            feed["guide"] = np.zeros_like(mask)
        out.append(feed)
    return out


def quantize_onnx_int8(src: str | Path, dst: str | Path, method, graph_inputs: list[str]) -> Path:
    """Static int8 quantisation (QDQ, per-channel int8 weights, uint8 activations) of an exported
    ONNX file with onnxruntime's quantiser, calibrated on :func:`calibration_batches`. Measured speed
    and accuracy cost: ``docs/benchmarks.md``."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batches = calibration_batches(method, graph_inputs)

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(batches)

        def get_next(self):
            return next(self.it, None)

    meta = {p.key: p.value for p in onnx.load(str(src)).metadata_props}
    with tempfile.TemporaryDirectory() as d:
        pre, q = Path(d) / "pre.onnx", Path(d) / "q.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(q), _Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=True)  # fmt: skip
        model = onnx.load(str(q))
    md = json.loads(meta[META_KEY])
    md["quantization"] = "int8 static (QDQ, per-channel weights), calibrated on the bundled example photos"
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(md)
    return atomic_write(dst, lambda tmp: Path(tmp).write_bytes(model.SerializeToString()))


def export_torchscript(method, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    graph, _ = prepare(method, "torchscript")
    mult = int(getattr(method, "size_multiple", 1) or 1)
    example = _example_inputs(graph, method.channels, mult, batch=1 if fixed_batch(method) else 2)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints from shapes: checked by the parity tests
        try:
            traced = torch.jit.trace(graph, example, check_trace=False)
            traced = torch.jit.freeze(traced.eval())
        except Exception as e:  # noqa: BLE001
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportError(f"{method.name}: TorchScript export failed ({type(e).__name__}: {first[:300]})") from e
    md = export_metadata(method, meta, "torchscript", graph)

    def write(tmp):
        torch.jit.save(traced, str(tmp), _extra_files={TS_META_FILE: json.dumps(md)})

    return atomic_write(path, write)


def export_model(
    method, path: str | Path, fmt: str, meta: dict[str, Any] | None = None, opset: int = DEFAULT_OPSET, int8: bool = False,
    dft: str = "matmul",
) -> Path:  # fmt: skip
    """Export ``method``'s inference network to ``path`` in ``fmt`` (onnx | torchscript); ``int8``:
    ONNX only, statically quantised (:func:`quantize_onnx_int8`); ``dft``: ONNX only, how FFTs are
    written (:data:`ONNX_DFT`)."""
    if int8 and fmt != "onnx":
        raise ExportError(f"int8 quantisation is available for --format onnx only, not {fmt}")
    if fmt == "onnx" and int8:
        with tempfile.TemporaryDirectory() as d:
            fp32 = export_onnx(method, Path(d) / "fp32.onnx", meta, opset, dft)
            return quantize_onnx_int8(fp32, path, method, list(export_graph(method).inputs))
    if fmt == "onnx":
        return export_onnx(method, path, meta, opset, dft)
    if fmt == "torchscript":
        return export_torchscript(method, path, meta)
    raise ExportError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")


__all__ = ["export_model", "export_onnx", "set_dft", "ONNX_DFT", "export_torchscript", "export_metadata", "FORMATS", "EXPORT_SUFFIXES", "SUFFIXES"]
