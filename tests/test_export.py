"""ONNX / TorchScript export: parity with PyTorch through the Inpainter (odd sizes, batches), exact known
pixels, unexportable cases, BatchNorm folding, the CLI. Tiny models with random weights."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from inpaintgan import Inpainter
from inpaintgan.checkpoints import save_model
from inpaintgan.export import (
    ExportError,
    count_batchnorms,
    export_model,
    fold_batchnorm,
    optimize_for_inference,
)
from inpaintgan.export.runtime import ExportedMethod
from inpaintgan.methods.btgmi import BTGMI, BTGMIConfig
from inpaintgan.methods.deepfill import DeepFill, DeepFillConfig
from inpaintgan.methods.glcic import GLCIC, GLCICConfig
from inpaintgan.methods.lama import LaMa, LaMaConfig
from inpaintgan.methods.pconv import PConvConfig, PConvGAN
from inpaintgan.methods.semantic import SemanticConfig, SemanticInpainting

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

TOL = 1e-4
H, W = 333, 517  # odd, not a multiple of any size_multiple


def _randomize_batchnorm(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial running statistics and affine parameters (fresh BatchNorms are the identity)."""
    g = torch.Generator().manual_seed(seed)
    for bn in module.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            c = bn.num_features
            bn.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
            bn.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            bn.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            bn.bias.data.copy_(torch.randn(c, generator=g) * 0.2)


def _make(name: str):
    torch.manual_seed(0)
    if name == "glcic":
        m = GLCIC(GLCICConfig(width=8, d_width=8), image_size=32)
    elif name == "glcic_telea_residual":
        m = GLCIC(GLCICConfig(width=8, d_width=8, prefill="telea", output="residual"), image_size=32)
        torch.nn.init.normal_(m.generator.net[-1].weight, std=0.05)
    elif name == "pconv":
        m = PConvGAN(PConvConfig(width=0.125, d_width=0.25, depth=3), image_size=32)
    elif name == "lama_telea":
        m = LaMa(LaMaConfig(width=4, downsamples=2, blocks=1, d_width=4, d_layers=2, augment=(), prefill="telea", residual=True), image_size=16)
        torch.nn.init.normal_(m.generator_ema.output.weight, std=0.1)
    elif name == "lama":
        m = LaMa(LaMaConfig(width=4, downsamples=2, blocks=1, d_width=4, d_layers=2, augment=(), prefill="none"), image_size=16)
    elif name == "deepfill":
        m = DeepFill(DeepFillConfig(width=4, d_width=4), image_size=32)
    elif name == "btgmi":
        m = BTGMI(BTGMIConfig(width=4, res_blocks=1, refine_blocks=2, d_width=4, d_layers=2, num_d=2, ppl_size=16), image_size=32)
        m.generator.set_blocks(2, 1.0)
    elif name == "btgmi_interp":  # the interpolated-convolution back end (nearest x2 + 3x3 conv)
        m = BTGMI(BTGMIConfig(width=4, res_blocks=1, refine_blocks=2, d_width=4, d_layers=2, num_d=2, ppl_size=16, upsample="interp"),
                  image_size=32)
        m.generator.set_blocks(2, 0.5)
    else:  # pragma: no cover
        raise KeyError(name)
    _randomize_batchnorm(m)
    return m.eval()


METHODS = ("glcic", "glcic_telea_residual", "pconv", "lama", "lama_telea", "deepfill", "btgmi", "btgmi_interp")
FORMATS = ("onnx", "torchscript")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{(method, format): (PyTorch Inpainter, exported-file Inpainter)}, each exported once per module."""
    root = tmp_path_factory.mktemp("export")
    cache: dict = {}

    def get(name: str, fmt: str):
        if (name, fmt) not in cache:
            method = _make(name)
            safet = root / f"{name}.safetensors"
            save_model(method, safet)
            path = export_model(method, root / f"{name}.{fmt}", fmt, {"model": name})
            cache[(name, fmt)] = (Inpainter.from_pretrained(safet, device="cpu"), Inpainter.from_pretrained(path, device="cpu"))
        return cache[(name, fmt)]

    return get


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((H, W, 3), dtype=np.float32) for _ in range(n)]


def _hole() -> np.ndarray:
    hole = np.zeros((H, W), bool)
    hole[101:190, 203:311] = True
    hole[20:41, 30:47] = True
    return hole


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", METHODS)
def test_exported_file_fills_like_pytorch_odd_size_batch(exported, name, fmt):
    ref_inp, exp_inp = exported(name, fmt)
    assert isinstance(exp_inp.method, ExportedMethod)
    assert exp_inp.method.backend == ("onnxruntime" if fmt == "onnx" else "torchscript")
    imgs, hole = _images(2), _hole()
    ref = ref_inp(imgs, hole, strategy="full")  # two images of one size: one batched network call
    out = exp_inp(imgs, hole, strategy="full")
    for r, o, img in zip(ref, out, imgs):
        assert o.shape == img.shape and o.dtype == img.dtype
        assert np.abs(o - r).max() <= TOL
        assert np.array_equal(o[~hole], img[~hole])  # known pixels bit-identical
        assert np.abs(o - img)[hole].mean() > 1e-3  # the hole was really filled (not a copy of the input)


@pytest.mark.parametrize("fmt", FORMATS)
def test_exported_graph_batch_and_other_size_directly(exported, fmt):
    """The graph itself (no Inpainter): batch 3 at a size other than the one it was exported with."""
    _, exp_inp = exported("glcic", fmt)
    method = _make("glcic")
    g = torch.Generator().manual_seed(1)
    x, m = torch.rand(3, 3, 44, 76, generator=g), (torch.rand(3, 1, 44, 76, generator=g) > 0.6).float()
    with torch.no_grad():
        ref = method.inpaint(x, m)
    out = exp_inp.method.run_graph(x, m)
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() <= TOL
    assert torch.equal(out[m.expand_as(x) < 0.5], x[m.expand_as(x) < 0.5])


def test_uint8_crop_strategy_through_exported_file(exported):
    """The default strategy on a larger photo (crop windows resized to the working size) and uint8 data."""
    ref_inp, exp_inp = exported("lama_telea", "onnx")
    img = (np.random.default_rng(3).random((H, W, 3)) * 255).astype(np.uint8)
    hole = _hole()
    ref, out = ref_inp(img, hole), exp_inp(img, hole)
    assert np.array_equal(out[~hole], img[~hole])
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1  # 1e-4 in [0, 1] can flip one rounding


def test_lama_fft_exports_as_matrix_products_by_default(exported, tmp_path):
    """The Fourier units' FFTs become MatMuls (no ONNX DFT, slow in onnxruntime); the DFT form still
    exports on request; both fill alike (the parity test above holds the default one to PyTorch)."""
    import onnx

    ref_inp, exp_inp = exported("lama", "onnx")
    ops = {n.op_type for n in onnx.load(exp_inp.metadata["path"]).graph.node}
    assert "DFT" not in ops and "MatMul" in ops
    dft = Inpainter.from_pretrained(export_model(_make("lama"), tmp_path / "d.onnx", "onnx", dft="dft"), device="cpu")
    assert "DFT" in {n.op_type for n in onnx.load(tmp_path / "d.onnx").graph.node}
    imgs, hole = _images(2, seed=11), _hole()
    for a, b in zip(exp_inp(imgs, hole, strategy="full"), dft(imgs, hole, strategy="full")):
        assert np.abs(a - b).max() <= TOL
    with pytest.raises(ExportError, match="unknown FFT form"):
        export_model(_make("lama"), tmp_path / "x.onnx", "onnx", dft="fftw")


def test_btgmi_harmonize_and_guided_through_exported_file(exported):
    ref_inp, exp_inp = exported("btgmi", "onnx")
    img, guide = _images(2, seed=5)
    region = np.zeros((H, W), bool)
    region[50:120, 60:200] = True
    hole = _hole()
    np.testing.assert_allclose(exp_inp.harmonize(img, region), ref_inp.harmonize(img, region), atol=TOL, rtol=0)
    out = exp_inp.guided(img, hole, guide, region)
    np.testing.assert_allclose(out, ref_inp.guided(img, hole, guide, region), atol=TOL, rtol=0)
    untouched = ~(hole | region)
    assert np.array_equal(out[untouched], img[untouched])


def test_method_without_harmonize_says_so(exported):
    _, exp_inp = exported("glcic", "onnx")
    with pytest.raises(ValueError, match="no harmonize"):
        exp_inp.harmonize(_images(1)[0], _hole())


def test_metadata_stored_in_the_files(exported):
    import onnx

    _, onnx_inp = exported("lama_telea", "onnx")
    meta = json.loads({p.key: p.value for p in onnx.load(onnx_inp.metadata["path"]).metadata_props}["inpaintgan"])
    assert meta["method"] == "lama" and meta["prefill"] == "telea" and meta["size_multiple"] == 4
    assert meta["inputs"] == ["image", "mask"] and "pre-filled by telea" in meta["convention"]
    _, ts_inp = exported("deepfill", "torchscript")
    assert ts_inp.metadata["method"] == "deepfill" and ts_inp.metadata["dynamic_batch"] is False
    assert onnx_inp.image_size == 16 and onnx_inp.method.size_multiple == 4


def test_unexportable_method_gives_a_one_line_reason(tmp_path):
    sem = SemanticInpainting(SemanticConfig(), image_size=32)
    for fmt in FORMATS:
        with pytest.raises(ExportError) as e:
            export_model(sem, tmp_path / f"s.{fmt}", fmt)
        msg = str(e.value)
        assert "\n" not in msg and "search" in msg and msg.startswith("semantic")
        assert not (tmp_path / f"s.{fmt}").exists()
    with pytest.raises(ExportError, match="unknown export format"):
        export_model(_make("glcic"), tmp_path / "x.tflite", "tflite")


def test_a_foreign_onnx_file_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["image"], ["output"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)])
    onnx.save(helper.make_model(graph), tmp_path / "foreign.onnx")
    with pytest.raises(ValueError, match="not an inpaintgan export"):
        Inpainter.from_pretrained(tmp_path / "foreign.onnx")


# ------------------------------------------------------------------------------------- BatchNorm folding


@pytest.mark.parametrize("name", ["glcic", "btgmi", "btgmi_interp"])
def test_folded_batchnorm_network_equals_unfolded(name):
    method = _make(name)
    net = method.generator
    n_bn = count_batchnorms(net)
    assert n_bn > 0
    folded, n = fold_batchnorm(net)
    assert n == n_bn and count_batchnorms(folded) == 0  # every BatchNorm of the generator follows a conv
    assert count_batchnorms(net) == n_bn  # the original is untouched
    channels = method.channels + (1 if name == "glcic" else 2)
    x = torch.rand(2, channels, 40, 56, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref, out = net(x), folded(x)
    assert (ref - out).abs().max().item() <= 1e-5
    assert (ref - net.train()(x)).abs().max().item() > 1e-3  # the statistics matter: the test can fail


def test_optimized_inpainter_fills_like_the_plain_one(tmp_path):
    method = _make("glcic")
    path = save_model(method, tmp_path / "g.safetensors")
    plain = Inpainter.from_pretrained(path, device="cpu")
    fast = Inpainter.from_pretrained(path, device="cpu", optimize=True)
    assert count_batchnorms(fast.method.generator) == 0 and count_batchnorms(plain.method.generator) > 0
    imgs, hole = _images(2, seed=7), _hole()
    for a, b, img in zip(plain(imgs, hole, strategy="full"), fast(imgs, hole, strategy="full"), imgs):
        assert np.abs(a - b).max() <= 1e-5
        assert np.array_equal(b[~hole], img[~hole])
    assert optimize_for_inference(method) is not method


def test_bfloat16_inpainter_close_to_float32_known_pixels_exact(tmp_path):
    """The reduced-precision code path (float16 on GPUs) tested on the CPU with bfloat16."""
    path = save_model(_make("glcic"), tmp_path / "g.safetensors")
    ref = Inpainter.from_pretrained(path, device="cpu")
    bf = Inpainter.from_pretrained(path, device="cpu", optimize=True, dtype="bfloat16")
    assert bf.dtype == torch.bfloat16 and next(bf.method.generator.parameters()).dtype == torch.bfloat16
    img, hole = _images(1, seed=9)[0], _hole()
    a, b = ref(img, hole, strategy="full"), bf(img, hole, strategy="full")
    assert b.dtype == img.dtype and np.array_equal(b[~hole], img[~hole])
    diff = np.abs(a - b)[hole]
    assert 0 < diff.max() <= 0.05 and diff.mean() <= 0.01  # bf16 keeps ~3 significant digits


def test_int8_onnx_export_runs_close_to_float32_known_pixels_exact(tmp_path):
    method = _make("glcic")
    fp32 = Inpainter.from_pretrained(export_model(method, tmp_path / "g.onnx", "onnx"), device="cpu")
    q = Inpainter.from_pretrained(export_model(method, tmp_path / "g8.onnx", "onnx", int8=True), device="cpu")
    assert "int8" in q.metadata["quantization"] and "quantization" not in fp32.metadata
    img, hole = _images(1, seed=4)[0], _hole()
    a, b = fp32(img, hole, strategy="full"), q(img, hole, strategy="full")
    assert np.array_equal(b[~hole], img[~hole])
    diff = np.abs(a - b)[hole]
    assert 0 < diff.mean() <= 0.02  # quantised (not the same graph), but close
    with pytest.raises(ExportError, match="onnx only"):
        export_model(method, tmp_path / "g.torchscript", "torchscript", int8=True)


# ------------------------------------------------------------------------------------------------ CLI


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inpaintgan", *args], capture_output=True, text=True, timeout=600)


def test_cli_export_onnx_and_fill(tmp_path):
    method = _make("glcic")
    src = save_model(method, tmp_path / "g.safetensors")
    r = _cli("export", str(src), "--format", "onnx", "-o", str(tmp_path / "g.onnx"))
    assert r.returncode == 0, r.stderr
    assert "g.onnx" in r.stdout
    from PIL import Image

    img = (np.random.default_rng(0).random((45, 61, 3)) * 255).astype(np.uint8)
    mask = np.zeros((45, 61), np.uint8)
    mask[10:30, 20:40] = 255
    Image.fromarray(img).save(tmp_path / "in.png")
    Image.fromarray(mask).save(tmp_path / "m.png")
    r = _cli("fill", str(tmp_path / "in.png"), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "out.png"), "--model", str(tmp_path / "g.onnx"))
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(tmp_path / "out.png"))
    ref = Inpainter.from_pretrained(src, device="cpu")(img, mask > 0)
    assert np.array_equal(out[mask == 0], img[mask == 0])
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def test_cli_export_unexportable_is_one_line(tmp_path):
    src = save_model(SemanticInpainting(SemanticConfig(), image_size=32), tmp_path / "s.safetensors")
    r = _cli("export", str(src), "--format", "torchscript", "-o", str(tmp_path / "s.torchscript"))
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "search" in lines[0]
    assert not (tmp_path / "s.torchscript").exists()


def test_cli_export_patchmatch_prefill_says_what_is_exported(tmp_path):
    pytest.importorskip("patchmatch")
    method = LaMa(LaMaConfig(width=4, downsamples=2, blocks=1, d_width=4, d_layers=2, augment=(), prefill="patchmatch", residual=True), image_size=16)
    src = save_model(method, tmp_path / "l.safetensors")
    r = _cli("export", str(src), "--format", "onnx", "-o", str(tmp_path / "l.onnx"))
    assert r.returncode == 0, r.stderr
    assert "patchmatch pre-fill" in r.stdout and "pre-filled" in r.stdout
    exp = Inpainter.from_pretrained(tmp_path / "l.onnx", device="cpu")
    assert exp.method.prefill == "patchmatch"
    img, hole = _images(1)[0][:64, :80], _hole()[:64, :80].copy()
    hole[20:40, 30:50] = True
    ref = Inpainter.from_pretrained(src, device="cpu")(img, hole, strategy="full")
    np.testing.assert_allclose(exp(img, hole, strategy="full"), ref, atol=TOL, rtol=0)
