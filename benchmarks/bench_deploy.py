"""Deployment speed, side by side with GLCIC-PyTorch (``otenim/GLCIC-PyTorch``) in one process.

    python benchmarks/bench_deploy.py                                  # everything, 2 threads
    python benchmarks/bench_deploy.py --parts inference --sizes 256 --repeats 7
    python benchmarks/bench_deploy.py --parts train fill --threads 2

Parts (all in one run, same threads for torch and onnxruntime, inputs identical across paths):

- ``inference``: the GLCIC completion network (paper widths, random weights, batch 1) at each size:
  the peer's eager network as its ``predict.py`` runs it (``eval()``, ``no_grad``, mean-pixel input),
  against the project's GLCIC inference graph (mean fill, network, composite) on each path: eager
  (``eval()``, ``no_grad``), optimised eager (BatchNorm folded, channels_last, ``inference_mode``),
  optimised eager in bfloat16 (where the CPU has bf16 instructions), TorchScript (traced, frozen),
  onnxruntime (all graph optimisations) and onnxruntime on the int8-quantised export. Rows are interleaved (path A, B, ... then again) ``--repeats``
  times; the figure is the best run (``--stat median`` for medians; both are printed for inference);
  ratios are the peer's figure over the path's. Accuracy: max |diff|
  against the project's eager fp32 output.
- ``accuracy``: the accuracy cost of bf16 and int8 on a trained model (glcic-cifar10): hole L1 and
  PSNR against the ground truth on crops of the bundled photos, next to fp32.
- ``train``: images/s of the peer's phase-1 step and phase-3 step exactly as its ``train.py`` does them
  (networks, BCELoss, Adadelta, alpha 4e-4; local discriminator declared 32x32 and fed 16x16 crops at
  32 px, its README's workaround) against ``GLCIC.train_step`` phases ``completion`` and ``joint`` with
  the trainer's ``TrainContext`` and Adadelta (NCHW, and channels_last as the GLCIC presets train), at
  32 px batch 64 (``--train-configs 32x64 128x16`` adds 128 px batch 16).
- ``train``'s bf16 rows run ``train.amp=bf16`` (bf16 autocast, on the CPU too), the project's fastest
  training path on CPUs with bf16 instructions.
- ``fill``: ``Inpainter`` on a 512x512 photo (the bundled mountain.jpg, a 128x128 hole in the middle,
  uint8 in and out) with the default model through eager PyTorch and through its ONNX export
  (onnxruntime; also the export with ONNX's DFT operator and the int8 export), then where the fill's
  time goes (the PatchMatch pre-fill, the same on every path, and the network at the working size),
  and the network alone at 512 px.
- ``default-accuracy``: the default model's onnxruntime fp32 and int8 outputs against eager on
  ``--accuracy-photos`` validation photos (``--photos``) with thick masks: hole PSNR, pixel changes.

The peer's code is imported from ``../shared/peers/glcic-pytorch`` (``--peer``) and never copied.
Markdown goes to stdout and is appended to ``docs/benchmarks.md`` (``--output ''`` to skip).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path

import numpy as np
import torch
from machine import machine_info  # benchmarks/machine.py (scripts run from benchmarks/)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PEER = ROOT.parent / "shared" / "peers" / "glcic-pytorch"


def import_peer(path: Path):
    """The peer's modules (its utils.py imports torchvision at module level without using it here: an
    empty stand-in is installed for that import only, so other code does not mistake it for the real one)."""
    stub = "torchvision" not in sys.modules
    if stub:
        tv = types.ModuleType("torchvision")
        tv.transforms = types.ModuleType("torchvision.transforms")
        sys.modules["torchvision"], sys.modules["torchvision.transforms"] = tv, tv.transforms
    sys.path.insert(0, str(path))
    try:
        import losses as peer_losses
        import models as peer_models
        import utils as peer_utils
    finally:
        if stub:
            del sys.modules["torchvision"], sys.modules["torchvision.transforms"]
    return peer_models, peer_losses, peer_utils


#: "min" (default): the best of the repeats, the run least disturbed by other jobs on a shared machine
#: (what ``timeit`` recommends); "median" is also reported
STAT = "min"


def interleaved(fns: dict, repeats: int) -> dict[str, float]:
    """Seconds per path (best of ``repeats``, or the median with ``--stat median``), the paths run in
    turn ``repeats`` times after one warm-up each: load from other jobs then hits every path alike.
    The medians are kept in ``interleaved.medians``."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    interleaved.medians = {k: statistics.median(v) for k, v in times.items()}
    if STAT == "median":
        return dict(interleaved.medians)
    return {k: min(v) for k, v in times.items()}


def bf16_supported() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# ------------------------------------------------------------------------------------------ inference


def _trained_like_batchnorm(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics and affine parameters, as after training."""
    g = torch.Generator().manual_seed(seed)
    for bn in module.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            c = bn.num_features
            bn.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            bn.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            bn.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            bn.bias.data.copy_(torch.randn(c, generator=g) * 0.1)


def bench_inference(peer, sizes: list[int], repeats: int, threads: int, tmp: Path) -> list[dict]:
    from inpaintgan.export import export_model, optimize_for_inference
    from inpaintgan.export.graphs import export_graph
    from inpaintgan.export.runtime import ExportedMethod
    from inpaintgan.methods.glcic import GLCIC, GLCICConfig

    peer_models = peer[0]
    torch.manual_seed(0)
    peer_net = peer_models.CompletionNetwork().eval()
    method = GLCIC(GLCICConfig(), image_size=256).eval()
    _trained_like_batchnorm(method)  # fresh BatchNorms are the identity: folding would be trivially exact
    graph = export_graph(method)
    fast = export_graph(optimize_for_inference(method))
    fast_bf16 = copy.deepcopy(fast).to(torch.bfloat16)
    ort_m = ExportedMethod(export_model(method, tmp / "glcic.onnx", "onnx"), threads=threads)
    ts_m = ExportedMethod(export_model(method, tmp / "glcic.torchscript", "torchscript"))
    ort8 = ExportedMethod(export_model(method, tmp / "glcic_int8.onnx", "onnx", int8=True), threads=threads)
    mpv = method.fill_value
    rows = []

    def one_size(size: int) -> None:
        g = torch.Generator().manual_seed(size)
        x = torch.rand(1, 3, size, size, generator=g)
        m = torch.zeros(1, 1, size, size)
        m[:, :, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
        xcl, mcl = x.contiguous(memory_format=torch.channels_last), m.contiguous(memory_format=torch.channels_last)
        xb, mb = xcl.to(torch.bfloat16), mcl.to(torch.bfloat16)

        def peer_run():  # predict.py: x_mask = x - x * mask + mpv * mask; cat; model(input)
            with torch.no_grad():
                return peer_net(torch.cat((x - x * m + mpv * m, m), dim=1))

        def eager():
            with torch.no_grad():
                return graph(x, m)

        def optimized():
            with torch.inference_mode():
                return fast(xcl, mcl)

        def optimized_bf16():
            with torch.inference_mode():
                return fast_bf16(xb, mb).float()

        fns = {"peer eager": peer_run, "eager": eager, "optimised eager": optimized}
        if bf16_supported():
            fns["optimised eager bf16"] = optimized_bf16
        fns["torchscript"] = lambda: ts_m.run_graph(x, m)
        fns["onnxruntime"] = lambda: ort_m.run_graph(x, m)
        fns["onnxruntime int8"] = lambda: ort8.run_graph(x, m)
        ref = eager()
        errs = {k: float((fn() - ref).abs().max()) for k, fn in fns.items() if k != "peer eager"}
        med = interleaved(fns, repeats)
        medians = interleaved.medians
        for k, sec in med.items():
            rows.append({"size": size, "path": k, "ms": sec * 1000, "x_peer": med["peer eager"] / sec, "max_err": errs.get(k),
                         "median_ms": medians[k] * 1000, "x_peer_median": medians["peer eager"] / medians[k]})  # fmt: skip

    for size in sizes:
        one_size(size)
    return rows


# ------------------------------------------------------------------------------------------- training


def bench_train(peer, configs: list[tuple[int, int]], repeats: int) -> list[dict]:
    from inpaintgan.config import TrainConfig
    from inpaintgan.masks import glcic_rect, local_crop_boxes
    from inpaintgan.methods.glcic import GLCIC, GLCICConfig
    from inpaintgan.training.trainer import TrainContext, set_phase_modes

    peer_models, peer_losses, peer_utils = peer
    rows = []

    def one_config(size: int, batch: int) -> None:
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        x = torch.rand(batch, 3, size, size)
        mask = torch.stack([torch.from_numpy(glcic_rect(rng, size, size)) for _ in range(batch)])[:, None].float()
        ld = size // 2
        # --- peer: train.py's phase-1 and phase-3 steps
        cn = peer_models.CompletionNetwork()
        cd = peer_models.ContextDiscriminator(
            local_input_shape=(3, max(ld, 32), max(ld, 32)), global_input_shape=(3, size, size), arc="celeba"
        )
        opt_cn, opt_cd = torch.optim.Adadelta(cn.parameters()), torch.optim.Adadelta(cd.parameters())
        bce = torch.nn.BCELoss()
        mpv = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
        alpha = torch.tensor(4e-4)
        area = ((size // 4, size // 4), (ld, ld))

        def peer_phase1():
            cn.train()
            x_mask = x - x * mask + mpv * mask
            out = cn(torch.cat((x_mask, mask), dim=1))
            loss = peer_losses.completion_network_loss(x, out, mask)
            loss.backward()
            opt_cn.step()
            opt_cn.zero_grad()

        def peer_phase3():
            cn.train()
            cd.train()
            fake, real = torch.zeros((len(x), 1)), torch.ones((len(x), 1))
            x_mask = x - x * mask + mpv * mask
            output_cn = cn(torch.cat((x_mask, mask), dim=1))
            gd_fake = output_cn.detach()
            out_fake = cd((peer_utils.crop(gd_fake, area), gd_fake))
            loss_fake = bce(out_fake, fake)
            out_real = cd((peer_utils.crop(x, area), x))
            loss_real = bce(out_real, real)
            loss_cd = (loss_fake + loss_real) * alpha / 2.0
            loss_cd.backward()
            opt_cd.step()
            opt_cd.zero_grad()
            loss_cn_1 = peer_losses.completion_network_loss(x, output_cn, mask)
            out_fake = cd((peer_utils.crop(output_cn, area), output_cn))
            loss_cn = (loss_cn_1 + alpha * bce(out_fake, real)) / 2.0
            loss_cn.backward()
            opt_cn.step()
            opt_cn.zero_grad()

        # --- ours: GLCIC.train_step through the trainer's TrainContext, Adadelta, paper widths
        method = GLCIC(GLCICConfig(alpha=4e-4, adv_loss="bce"), image_size=size, channels=3)
        opts = method.configure_optimizers(TrainConfig(optimizer="adadelta"))
        ctx = TrainContext(opts, torch.device("cpu"), "none", 0.0, None, seed=0)
        # the same, as the trainer runs it with train.channels_last (the GLCIC presets): networks and
        # batches in NHWC, oneDNN's fast layout on CPU
        method_cl = copy.deepcopy(method).to(memory_format=torch.channels_last)
        opts_cl = method_cl.configure_optimizers(TrainConfig(optimizer="adadelta"))
        ctx_cl = TrainContext(opts_cl, torch.device("cpu"), "none", 0.0, None, seed=0)
        # and with bf16 autocast (train.amp=bf16), where the CPU has bf16 instructions
        method_amp = copy.deepcopy(method_cl)
        opts_amp = method_amp.configure_optimizers(TrainConfig(optimizer="adadelta"))
        ctx_amp = TrainContext(opts_amp, torch.device("cpu"), "bf16", 0.0, None, seed=0)
        cl = torch.channels_last
        batch_d = {"image": x, "mask": mask}
        batch_cl = {"image": x.contiguous(memory_format=cl), "mask": mask.contiguous(memory_format=cl)}
        phases = {p.name: p for p in method.phases()}

        def ours(name, channels_last=False, amp=False):
            m, o, c, b = (method_cl, opts_cl, ctx_cl, batch_cl) if channels_last else (method, opts, ctx, batch_d)
            if amp:
                m, o, c, b = method_amp, opts_amp, ctx_amp, batch_cl

            def step():
                set_phase_modes(m, o, phases[name])
                m.train_step(b, phases[name], 0, c)

            return step

        assert local_crop_boxes(mask, method.local_size).shape[0] == batch
        fns = {"peer phase 1": peer_phase1, "ours completion (phase 1)": ours("completion"),
               "ours completion (phase 1), channels_last": ours("completion", True),
               "peer phase 3": peer_phase3, "ours joint (phase 3)": ours("joint"),
               "ours joint (phase 3), channels_last": ours("joint", True)}  # fmt: skip
        if bf16_supported():
            fns["ours completion (phase 1), channels_last + bf16 autocast"] = ours("completion", amp=True)
            fns["ours joint (phase 3), channels_last + bf16 autocast"] = ours("joint", amp=True)
        med = interleaved(fns, repeats)
        for k, sec in med.items():
            base = med["peer phase 1"] if "phase 1" in k else med["peer phase 3"]
            rows.append({"size": size, "batch": batch, "what": k, "img_s": batch / sec, "ms": sec * 1000, "x_peer": base / sec})

    for size, batch in configs:
        one_config(size, batch)
    return rows


# ------------------------------------------------------------------------------------- accuracy cost


def bench_accuracy(tmp: Path, model: str = "glcic-cifar10", n: int = 64) -> list[dict]:
    """Accuracy cost of the reduced-precision paths on a trained model: hole L1 / PSNR against the
    ground truth on ``n`` crops of the bundled photos at the model's size (holes from GLCIC's
    rectangle generator; int8 calibrated on other crops), fp32 eager vs each path."""
    from inpaintgan.checkpoints import load_any, resolve_model
    from inpaintgan.export import export_model, optimize_for_inference
    from inpaintgan.export.exporter import calibration_batches
    from inpaintgan.export.graphs import export_graph
    from inpaintgan.export.runtime import ExportedMethod

    method, meta = load_any(resolve_model(model), "cpu")
    method.eval()
    graph = export_graph(method)
    bf = export_graph(optimize_for_inference(method).to(torch.bfloat16))
    ort = ExportedMethod(export_model(method, tmp / "acc.onnx", "onnx", meta))
    ort8 = ExportedMethod(export_model(method, tmp / "acc8.onnx", "onnx", meta, int8=True))
    batches = calibration_batches(method, list(graph.inputs), n=n, seed=12345)  # not the calibration crops
    x = torch.from_numpy(np.concatenate([b["image"] for b in batches]))
    m = torch.from_numpy(np.concatenate([b["mask"] for b in batches]))
    with torch.no_grad():
        outs = {"eager fp32": graph(x, m), "optimised eager bf16": bf(x.bfloat16(), m.bfloat16()).float(),
                "onnxruntime fp32": ort.run_graph(x, m), "onnxruntime int8": ort8.run_graph(x, m)}  # fmt: skip
    hole = m.expand_as(x) > 0.5
    rows = []
    for k, y in outs.items():
        err = (y - x)[hole]
        mse = float((err**2).mean())
        rows.append({"path": k, "l1": float(err.abs().mean()) * 255, "psnr": 10 * np.log10(1 / mse),
                     "vs_fp32": float((y - outs["eager fp32"]).abs()[hole].mean()) * 255})  # fmt: skip
    return rows


# ------------------------------------------------------------------------------------------------ fill


def bench_fill(repeats: int, threads: int, tmp: Path, model: str) -> list[dict]:
    """The default model's 512x512 photo fill on each path, then where its time goes: the PatchMatch
    pre-fill (the same code on every path) and the network at the size the fill runs it (the crop
    window resized to the working size), and the network alone at 512 px. Paths: eager PyTorch,
    onnxruntime on the default export (FFT as matrix products), on the export with ONNX's DFT operator
    (the previous default) and on the int8 export (its accuracy cost: ``--parts default-accuracy``)."""
    from PIL import Image

    from inpaintgan import Inpainter
    from inpaintgan.checkpoints import load_any, resolve_model
    from inpaintgan.export import export_model
    from inpaintgan.export.graphs import classical_prefill, export_graph
    from inpaintgan.inpainter import plan_crops
    from inpaintgan.postprocess import fill_hole

    path = resolve_model(model)
    method, meta = load_any(path, "cpu")
    method.eval()
    files = {"onnxruntime": export_model(method, tmp / "default.onnx", "onnx", meta),
             "onnxruntime, ONNX DFT": export_model(method, tmp / "default_dft.onnx", "onnx", meta, dft="dft"),
             "onnxruntime int8": export_model(method, tmp / "default8.onnx", "onnx", meta, int8=True)}  # fmt: skip
    inps = {"eager": Inpainter.from_pretrained(model, device="cpu")}
    for k, f in files.items():
        inps[k] = Inpainter.from_pretrained(f, device="cpu")
        inps[k].method.threads = threads
    photo = np.asarray(Image.open(ROOT / "src/inpaintgan/assets/mountain.jpg").convert("RGB").resize((512, 512), Image.BICUBIC))
    hole = np.zeros((512, 512), bool)
    hole[192:320, 192:320] = True
    rows = []

    def add(what: str, secs: dict, outs: dict, unit: str) -> None:
        for k, sec in secs.items():
            d = np.abs(outs[k].astype(np.float64) - outs["eager"].astype(np.float64)).max()
            diff = "-" if k == "eager" else (f"max {int(d)}/255" if unit == "uint8" else f"max {d:.1e}")
            rows.append({"what": what, "path": k, "ms": sec * 1000, "x_eager": secs["eager"] / sec, "diff": diff})

    outs = {k: inp(photo, hole) for k, inp in inps.items()}
    secs = interleaved({k: (lambda inp=inp: inp(photo, hole)) for k, inp in inps.items()}, repeats)
    add(f"fill 512x512 ({inps['eager'].choose_strategy(512, 512)})", secs, outs, "uint8")
    # the fill's parts: the crop window, resized to the working size, PatchMatch-filled, then the network
    (y0, x0, y1, x1), _ = plan_crops(hole, inps["eager"].working_size)[0]
    ws = inps["eager"].working_size
    x = torch.from_numpy(photo[y0:y1, x0:x1].copy()).permute(2, 0, 1)[None].float() / 255
    m = torch.from_numpy(hole[y0:y1, x0:x1].astype(np.float32))[None, None]
    x = torch.nn.functional.interpolate(x, size=(ws, ws), mode="area")
    m = (torch.nn.functional.interpolate(m, size=(ws, ws), mode="area") > 0).float()
    prefill = classical_prefill(method)
    sec = interleaved({"pre-fill": lambda: fill_hole(x, m, prefill, 0.0)}, repeats)["pre-fill"]
    rows.append({"what": f"of which {prefill} pre-fill, {ws}x{ws} (the same code on every path)", "path": "all",
                 "ms": sec * 1000, "x_eager": None, "diff": "-"})  # fmt: skip
    graph = export_graph(method)

    def net_eager(a, b):
        with torch.inference_mode():
            return graph(a, b)

    for what, (a, b) in {f"of which the network, {ws}x{ws}": (fill_hole(x, m, prefill, 0.0), m),
                         "network only, 512x512": (torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255,
                                                   torch.from_numpy(hole)[None, None].float())}.items():  # fmt: skip
        if what.startswith("network only"):
            a = fill_hole(a, b, prefill, 0.0)
        fns = {"eager": lambda a=a, b=b: net_eager(a, b)}
        for k in files:
            fns[k] = lambda a=a, b=b, k=k: inps[k].method.run_graph(a, b)
        outs = {k: f().numpy() for k, f in fns.items()}
        add(what, interleaved(fns, repeats), outs, "float")
    return rows


def bench_default_accuracy(tmp: Path, model: str, photos: Path, n: int = 50, size: int = 256, seed: int = 0) -> list[dict]:
    """Accuracy of the default model's onnxruntime paths against eager PyTorch on ``n`` validation photos
    (centre crop resized to ``size``) with LaMa's thick masks (eval protocol ``thick``, ``seed``): the
    PatchMatch pre-fill computed once per photo, then each path's network on it; hole PSNR against the
    photo, and the change of each hole pixel against eager (0-255)."""
    from PIL import Image

    from inpaintgan.checkpoints import load_any, resolve_model
    from inpaintgan.eval.protocols import get_protocol
    from inpaintgan.export import export_model
    from inpaintgan.export.graphs import classical_prefill, export_graph
    from inpaintgan.export.runtime import ExportedMethod
    from inpaintgan.postprocess import fill_hole

    method, meta = load_any(resolve_model(model), "cpu")
    method.eval()
    graph = export_graph(method)
    paths = {"onnxruntime": ExportedMethod(export_model(method, tmp / "a.onnx", "onnx", meta)),
             "onnxruntime int8": ExportedMethod(export_model(method, tmp / "a8.onnx", "onnx", meta, int8=True))}  # fmt: skip
    files = sorted(p for p in Path(photos).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n]
    if not files:
        raise SystemExit(f"no photos in {photos}")
    protocol = get_protocol("thick", seed)
    sums = {k: {"se": 0.0, "count": 0, "abs": 0.0, "max": 0.0} for k in ["eager", *paths]}
    for i, f in enumerate(files):
        img = Image.open(f).convert("RGB")
        s = min(img.size)
        img = img.crop(((img.width - s) // 2, (img.height - s) // 2, (img.width - s) // 2 + s, (img.height - s) // 2 + s))
        x = torch.from_numpy(np.asarray(img.resize((size, size), Image.BICUBIC))).permute(2, 0, 1)[None].float() / 255
        m = torch.from_numpy(np.asarray(protocol.mask(i, size, size), np.float32))[None, None]
        pre = fill_hole(x, m, classical_prefill(method), 0.0)
        with torch.inference_mode():
            outs = {"eager": graph(pre, m)}
        for k, p in paths.items():
            outs[k] = p.run_graph(pre, m)
        hole = m.expand_as(x) > 0.5
        for k, y in outs.items():
            q = (y * 255).round().clamp(0, 255)  # what a user gets: uint8
            err = (q / 255 - x)[hole]
            ch = (q - (outs["eager"] * 255).round().clamp(0, 255))[hole].abs()
            acc = sums[k]
            acc["se"] += float((err**2).sum())
            acc["count"] += int(hole.sum())
            acc["abs"] += float(ch.sum())
            acc["max"] = max(acc["max"], float(ch.max()))
    return [{"path": k, "psnr": 10 * np.log10(a["count"] / a["se"]), "mean": a["abs"] / a["count"], "max": a["max"],
             "n": len(files), "size": size} for k, a in sums.items()]  # fmt: skip


# ------------------------------------------------------------------------------------------ reporting


def _f(v, d=1):
    return "-" if v is None else (f"{v:.{d}e}" if isinstance(v, float) and d == "e" else f"{v:.{d}f}")


def to_markdown(info: dict, inf: list[dict], train: list[dict], fill: list[dict], argv: list[str], note: str,
                acc: list[dict] | None = None, dacc: list[dict] | None = None) -> str:
    lines = [f"## deploy -- {info['date']} -- {info['cpu']}, {info['cores']} cores, {info['device']}", ""]
    lines.append("Machine: " + ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("date", "load")) + "  ")
    lines.append(f"Command: `python benchmarks/bench_deploy.py {' '.join(argv)}`  ")
    if note:
        lines.append(note + "  ")
    if "load" in info:
        lines.append(f"Load average (1 min, all jobs on the machine): {info['load']}  ")
    lines.append("")
    if inf:
        lines += [f"### GLCIC completion network, batch 1 (ratios within this run; ms = {STAT} of the repeats)", "",
                  "| size | path | ms | x peer eager | median ms | x peer (medians) | max abs diff vs eager fp32 |",
                  "|---:|---|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in inf:
            err = "-" if r["max_err"] is None else f"{r['max_err']:.1e}"
            lines.append(f"| {r['size']} | {r['path']} | {r['ms']:.1f} | {r['x_peer']:.2f} | {r['median_ms']:.1f} | "
                         f"{r['x_peer_median']:.2f} | {err} |")  # fmt: skip
        lines.append("")
    if train:
        lines += [f"### GLCIC training steps (Adadelta, BCE, alpha 4e-4; {STAT} of the repeats)", "",
                  "| size | batch | step | images / s | ms / step | x peer |", "|---:|---:|---|---:|---:|---:|"]  # fmt: skip
        for r in train:
            lines.append(f"| {r['size']} | {r['batch']} | {r['what']} | {r['img_s']:.1f} | {r['ms']:.0f} | {r['x_peer']:.2f} |")
        lines.append("")
    if acc:
        lines += ["### Accuracy cost on a trained model (glcic-cifar10, 64 crops of the bundled photos at 32 px)", "",
                  "| path | hole L1 (0-255) | hole PSNR dB | mean abs diff vs eager fp32 (0-255) |", "|---|---:|---:|---:|"]  # fmt: skip
        for r in acc:
            lines.append(f"| {r['path']} | {r['l1']:.2f} | {r['psnr']:.2f} | {r['vs_fp32']:.3f} |")
        lines.append("")
    if fill:
        lines += [f"### Default model: eager PyTorch vs onnxruntime ({STAT} of the repeats)", "",
                  "| what | path | ms | x eager | output difference vs eager |", "|---|---|---:|---:|---|"]  # fmt: skip
        for r in fill:
            x = "-" if r["x_eager"] is None else f"{r['x_eager']:.2f}"
            lines.append(f"| {r['what']} | {r['path']} | {r['ms']:.1f} | {x} | {r['diff']} |")
        lines.append("")
    if dacc:
        r0 = dacc[0]
        lines += [f"### Default model accuracy: {r0['n']} validation photos at {r0['size']} px, thick masks (uint8 outputs)", "",
                  "| path | hole PSNR dB | mean abs change vs eager (0-255) | max abs change vs eager (0-255) |",
                  "|---|---:|---:|---:|"]  # fmt: skip
        for r in dacc:
            lines.append(f"| {r['path']} | {r['psnr']:.2f} | {r['mean']:.3f} | {r['max']:.0f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", nargs="+", default=["inference", "accuracy", "train", "fill", "default-accuracy"],
                   choices=["inference", "accuracy", "train", "fill", "default-accuracy"])
    p.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "photos" / "val",
                   help="validation photos for --parts default-accuracy (default ../shared/data/photos/val)")
    p.add_argument("--accuracy-photos", type=int, default=50, help="how many (default 50)")
    p.add_argument("--sizes", nargs="+", type=int, default=[128, 256, 512])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--train-repeats", type=int, default=5)
    p.add_argument("--train-configs", nargs="+", default=["32x64"], metavar="PXxBATCH",
                   help="training configurations (default 32x64; the issue also names 128x16)")
    p.add_argument("--threads", type=int, default=2, help="torch and onnxruntime intra-op threads (default 2)")
    p.add_argument("--peer", type=Path, default=DEFAULT_PEER, help="GLCIC-PyTorch checkout (imported, never copied)")
    p.add_argument("--model", default="default", help="model for the fill part (default: the embedded default)")
    p.add_argument("--note", default="", help="a line about the machine's load, written under the command")
    p.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"), help="Markdown file to append to ('' = none)")
    p.add_argument("--stat", choices=("min", "median"), default="min", help="figure per path (default min: best of the repeats)")
    args = p.parse_args(argv)
    global STAT
    STAT = args.stat
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    warnings.simplefilter("ignore")
    peer = import_peer(args.peer) if {"inference", "train"} & set(args.parts) else None
    inf, train, fill, acc, dacc = [], [], [], [], []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "inference" in args.parts:
            inf = bench_inference(peer, args.sizes, args.repeats, args.threads, tmp)
        if "accuracy" in args.parts:
            acc = bench_accuracy(tmp)
        if "train" in args.parts:
            configs = [tuple(int(v) for v in c.lower().split("x")) for c in args.train_configs]
            train = bench_train(peer, configs, args.train_repeats)
        if "fill" in args.parts:
            fill = bench_fill(args.repeats, args.threads, tmp, args.model)
        if "default-accuracy" in args.parts:
            dacc = bench_default_accuracy(tmp, args.model, args.photos, args.accuracy_photos)
    info = machine_info("cpu")
    info["load"] = f"{load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    md = to_markdown(info, inf, train, fill, argv, args.note, acc, dacc)
    print(md)
    if args.output:
        with open(args.output, "a") as f:
            f.write("\n" + md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
