"""Speed and memory of every registered method and of the classical baselines, in one command.

    python benchmarks/bench_inference.py                       # all methods, 32/128/256/512 px
    python benchmarks/bench_inference.py --sizes 32 128 --repeats 2 --methods glcic --no-train

Per method (built with ``get_method(name)(Config(), image_size, channels)``, the paper defaults):

- inference latency per image (``method.inpaint`` on a batch of 1, median of ``--repeats`` after a
  warm-up) at each size; sizes a method cannot handle are skipped with the reason;
- peak memory during inference: on CPU the process's peak resident set (VmHWM, reset before each
  measurement through /proc/self/clear_refs where Linux allows it, else ``ru_maxrss``); on CUDA
  ``torch.cuda.max_memory_allocated``;
- training throughput (images/s) of each phase of ``method.phases()`` at ``--train-size`` with a
  batch of ``--train-batch``, through ``method.train_step`` and the trainer's ``TrainContext``.

The baselines (OpenCV Telea / Navier-Stokes, PatchMatch, mean fill) run in the same process on the
same images. Every hole is the centered 25% square, so hole size does not differ between rows.
Results are printed and appended to ``docs/benchmarks.md`` with the machine (CPU model, cores,
threads, torch version, device, date). Not part of the tests.
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from machine import machine_info  # benchmarks/machine.py (scripts run from benchmarks/)

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------- memory


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM (Linux >= 4.0)
        return True
    except OSError:
        return False


def _status_mb(key: str) -> float | None:
    try:
        m = re.search(rf"{key}:\s+(\d+)\s+kB", Path("/proc/self/status").read_text())
        return int(m.group(1)) / 1024 if m else None
    except OSError:
        return None


def _peak_rss_mb() -> float:
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


class PeakMemory:
    """Peak memory (MiB) the block needed: the CUDA allocator's peak, or on CPU the rise of the
    process's peak resident set above its resident set at the start (memory the allocator already
    held from earlier work and reuses is not counted; without /proc the absolute ru_maxrss)."""

    def __init__(self, device: torch.device):
        self.device, self.mb = device, float("nan")

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.exact = _reset_peak_rss()
            self.start = _status_mb("VmRSS") if self.exact else 0.0
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.mb = _peak_rss_mb() - (self.start or 0.0)
        return False


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, device, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up run."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _inputs(size: int, channels: int, batch: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    from inpaintgan.masks import center_square

    g = torch.Generator().manual_seed(0)
    image = torch.rand(batch, channels, size, size, generator=g).to(device)
    mask = torch.from_numpy(center_square(size, size, 0.25))[None, None].expand(batch, 1, -1, -1).contiguous().to(device)
    return image, mask


# ---------------------------------------------------------------------------------------- methods


def _inference_params(method) -> int:
    """Parameters of the networks used at inference (``method.inference_modules``)."""
    mods = [getattr(method, n) for n in getattr(method, "inference_modules", ()) if hasattr(method, n)] or [method]
    return sum(p.numel() for m in mods for p in m.parameters())


FIXED_SIZE = 64  # methods that are not fully convolutional (the DCGAN) are timed at this size only


def bench_method_inference(
    name: str, sizes: list[int], repeats: int, device, search_iterations: int = 100
) -> list[dict]:
    import dataclasses

    from inpaintgan.registry import get_method

    cls = get_method(name)
    rows = []
    fixed = not getattr(cls, "fully_convolutional", True)
    cfg = cls.Config()
    note = ""
    if any(f.name == "iterations" for f in dataclasses.fields(cfg)):
        # inference is an optimisation (Yeh et al.'s z-search): time a given number of iterations
        cfg = dataclasses.replace(cfg, iterations=search_iterations, progress=False)
        note = f"{search_iterations} search iterations x {cfg.restarts} restarts (latency ~ linear in both)"
    for size in [FIXED_SIZE] if fixed else sizes:
        row = {"what": name, "size": size, "note": note or ("fixed-size network" if fixed else "")}
        k = int(getattr(cls, "size_multiple", 1))
        if size % k:
            rows.append({**row, "note": f"skipped: {size} px is not a multiple of {k}"})
            continue
        rows.append(_time_inpaint(lambda s=size: cls(cfg, image_size=s, channels=3), row, size, repeats, device))
    return rows


def _time_inpaint(build, row: dict, size: int, repeats: int, device) -> dict:
    """``row`` completed with the median latency of ``build()``'s ``inpaint`` on one size x size image."""
    method = None
    try:
        method = build().to(device).eval()
        image, mask = _inputs(size, method.channels, 1, device)
        with torch.no_grad(), PeakMemory(device) as mem:
            sec = _time(lambda m=method, i=image, k=mask: m.inpaint(i, k), device, repeats)
        return {**row, "ms": sec * 1000, "peak_mb": mem.mb, "params_m": _inference_params(method) / 1e6}
    except (RuntimeError, ValueError, NotImplementedError, MemoryError) as e:
        return {**row, "note": f"skipped: {type(e).__name__}: {str(e).splitlines()[0][:120]}"}
    finally:
        method = None
        if device.type == "cuda":
            torch.cuda.empty_cache()


def bench_model_files(specs: list[str], sizes: list[int], repeats: int, device) -> list[dict]:
    """Trained model files (``LABEL=PATH`` or a zoo name), each with its own config, at ``sizes``."""
    from inpaintgan.checkpoints import load_any, resolve_model

    rows = []
    for spec in specs:
        label, sep, path = spec.partition("=")
        label, path = (label, path) if sep else (Path(spec).stem, spec)
        for size in sizes:
            rows.append(_time_inpaint(lambda p=path: load_any(resolve_model(p))[0], {"what": label, "size": size, "note": "model file"},
                                      size, repeats, device))  # fmt: skip
    return rows


def bench_method_training(name: str, size: int, batch: int, steps: int, device) -> list[dict]:
    from inpaintgan.config import TrainConfig
    from inpaintgan.registry import get_method

    try:
        from inpaintgan.training.trainer import TrainContext, set_phase_modes
    except ImportError as e:
        return [{"what": name, "phase": "-", "note": f"skipped: no training context ({e})"}]
    cls = get_method(name)
    method = cls(cls.Config(), image_size=size, channels=3).to(device)
    optimizers = method.configure_optimizers(TrainConfig())
    ctx = TrainContext(optimizers, device, "none", 0.0, None, seed=0)
    image, mask = _inputs(size, method.channels, batch, device)
    # a different hole per image, as in training
    from inpaintgan.masks import glcic_rect

    rng = np.random.default_rng(0)
    mask = torch.stack([torch.from_numpy(glcic_rect(rng, size, size)) for _ in range(batch)])[:, None].to(device)
    batch_dict = {"image": image, "mask": mask}
    rows = []
    for phase in method.phases():
        try:
            set_phase_modes(method, optimizers, phase)
            with PeakMemory(device) as mem:
                sec = _time(lambda ph=phase: method.train_step(batch_dict, ph, 0, ctx), device, steps)
            rows.append({"what": name, "phase": phase.name, "size": size, "batch": batch,
                         "img_per_s": batch / sec, "ms_per_step": sec * 1000, "peak_mb": mem.mb})  # fmt: skip
        except (RuntimeError, ValueError, NotImplementedError, KeyError) as e:
            rows.append({"what": name, "phase": phase.name, "note": f"skipped: {type(e).__name__}: {str(e)[:120]}"})
    return rows


def bench_baselines(names: list[str], sizes: list[int], repeats: int) -> list[dict]:
    from inpaintgan.baselines import get_baseline

    rows = []
    for name in names:
        try:
            model = get_baseline(name)
        except ImportError as e:
            rows += [{"what": name, "size": s, "note": f"skipped: {e}"} for s in sizes]
            continue
        for size in sizes:
            image, mask = _inputs(size, 3, 1, torch.device("cpu"))
            with PeakMemory(torch.device("cpu")) as mem:
                sec = _time(lambda i=image, k=mask, f=model: f(i, k), torch.device("cpu"), repeats)
            rows.append({"what": name, "size": size, "ms": sec * 1000, "peak_mb": mem.mb})
    return rows


# ---------------------------------------------------------------------------------------- report


def _fmt(v, digits=1) -> str:
    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def to_markdown(info: dict, inf_rows: list[dict], train_rows: list[dict], base_rows: list[dict], argv: list[str]) -> str:
    lines = [f"## {info['date']} -- {info['cpu']}, {info['cores']} cores, torch {info['torch']}, {info['device']}", ""]
    lines.append("Machine: " + ", ".join(f"{k} {v}" for k, v in info.items() if k != "date"))
    lines.append(f"Command: `python benchmarks/bench_inference.py {' '.join(argv)}`".rstrip() + "  ")
    lines.append("Hole: centered 25% square. Latency: median per image (batch 1) after a warm-up. "
                 "Peak MiB: on CPU the rise of the process's peak RSS during the measurement (memory kept from "
                 "earlier rows and reused is not counted), on CUDA the allocator's peak. Params: inference networks.")  # fmt: skip
    lines += ["", "### Inference latency", "", "| method | size | ms / image | peak MiB | params (M) | note |", "|---|---:|---:|---:|---:|---|"]
    for r in inf_rows + base_rows:
        lines.append(f"| {r['what']} | {r['size']} | {_fmt(r.get('ms'))} | {_fmt(r.get('peak_mb'), 0)} | "
                     f"{_fmt(r.get('params_m'), 2)} | {r.get('note', '')} |")  # fmt: skip
    if train_rows:
        lines += ["", "### Training throughput", "", "| method | phase | size | batch | images / s | ms / step | peak MiB | note |",
                  "|---|---|---:|---:|---:|---:|---:|---|"]  # fmt: skip
        for r in train_rows:
            lines.append(f"| {r['what']} | {r['phase']} | {r.get('size', '-')} | {r.get('batch', '-')} | {_fmt(r.get('img_per_s'), 2)} | "
                         f"{_fmt(r.get('ms_per_step'))} | {_fmt(r.get('peak_mb'), 0)} | {r.get('note', '')} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 128, 256, 512])
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median; plus one warm-up)")
    p.add_argument("--methods", nargs="*", default=None, help="registered methods to run (default: all; none: only --model-files)")
    p.add_argument("--model-files", nargs="+", default=[], metavar="LABEL=PATH",
                   help="also time trained model files (or zoo names), each at its own width and depth")  # fmt: skip
    p.add_argument("--baselines", nargs="*", default=["telea", "ns", "patchmatch", "mean"])
    p.add_argument("--search-iterations", type=int, default=100,
                   help="methods whose inference is an optimisation (semantic): iterations to time (default 100)")
    p.add_argument("--no-train", action="store_true", help="skip the training-throughput part")
    p.add_argument("--train-size", type=int, default=64)
    p.add_argument("--train-batch", type=int, default=4)
    p.add_argument("--device", default="cpu", help="cpu | cuda (methods only; baselines run on CPU)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"), help="Markdown file to append to ('' = none)")
    args = p.parse_args(argv)

    from inpaintgan.registry import list_methods

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    methods = list_methods() if args.methods is None else args.methods
    unknown = sorted(set(methods) - set(list_methods()))
    if unknown:
        p.error(f"unknown methods {', '.join(unknown)}; registered: {', '.join(list_methods())}")

    from inpaintgan.checkpoints import resolve_model

    for spec in args.model_files:  # every model file is found before anything is timed
        try:
            resolve_model(spec.partition("=")[2] or spec)
        except (ValueError, KeyError) as e:
            p.error(f"--model-files {spec}: {e}")

    inf_rows, train_rows = [], []
    for name in methods:
        print(f"[{name}] inference at {args.sizes}", file=sys.stderr, flush=True)
        inf_rows += bench_method_inference(name, args.sizes, args.repeats, device, args.search_iterations)
        if not args.no_train:
            print(f"[{name}] training at {args.train_size} px, batch {args.train_batch}", file=sys.stderr, flush=True)
            train_rows += bench_method_training(name, args.train_size, args.train_batch, args.repeats, device)
    if args.model_files:
        print(f"[model files] {args.model_files}", file=sys.stderr, flush=True)
        inf_rows += bench_model_files(args.model_files, args.sizes, args.repeats, device)
    print(f"[baselines] {args.baselines}", file=sys.stderr, flush=True)
    base_rows = bench_baselines(args.baselines, args.sizes, args.repeats)

    text = to_markdown(machine_info(device), inf_rows, train_rows, base_rows, argv)
    print(text)
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        header = "" if out.is_file() else (
            "# Benchmarks\n\nAppended by `python benchmarks/bench_inference.py` (see its docstring for what is "
            "measured). Timings on shared machines are noisy; compare rows of one run.\n\n"
        )  # fmt: skip
        with open(out, "a") as f:
            f.write(header + text + "\n")
        print(f"appended to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
