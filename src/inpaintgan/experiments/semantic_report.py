"""The semantic-inpainting experiment (issue #9): Yeh et al.'s DCGAN latent search, refined by Liu et
al.'s collaborative sampling with the base discriminator and with shaped discriminators, against
OpenCV Telea and any other model, on the official Fashion-MNIST test set at the model's size (64x64,
one channel) with the project's seeded mask protocols.

One z search per batch (the base model) gives the proposal; every semantic variant starts from that
same latent:

- ``yeh``: the proposal composite (Yeh et al.), exactly ``method.inpaint(..., collaborative=False)``;
- ``collab``: the proposal's activations refined by the base discriminator, stopped at its
  ``d_real_median`` (Liu et al.; :meth:`SemanticInpainting.refine`, the method's own code path);
- ``shaped-LABEL``: the same activations refined by a shaped discriminator (and its own
  ``d_real_median``) swapped in; the search is not re-run. A shaped file must hold the base's
  generator bit for bit (shaping trains D only); anything else is refused.

References run on the same images and holes: ``telea`` (:mod:`inpaintgan.baselines`) and every
``--model`` (a baseline name, a model file or a zoo name through the :class:`~inpaintgan.Inpainter`,
which converts the one-channel images to the model's channels and back). Per image: hole L1, hole
PSNR, hole SSIM (:mod:`inpaintgan.metrics`, hole pixels only, as ``inpaintgan eval``), D's logits on
the proposal and the refined result and the refinement steps taken (semantic variants). Per variant
and protocol, FID and paired KID of the outputs against the real images (:mod:`inpaintgan.eval.realism`,
as ``inpaintgan eval``) where the FID Inception network loads; otherwise they are recorded as
unavailable with the reason, as ``inpaintgan eval`` does. Wall-clock seconds per image are
measured for the search, each refinement and each reference.

Run ``python -m inpaintgan.experiments.semantic_report --help`` for the options and outputs.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from inpaintgan.experiments.common import (
    ReportError,
    atomic_write,
    batches,
    best_values,
    bold_cells,
    csv_text,
    is_label,
    json_num,
    load_fashion_images,
    machine,
    masked,
    md_head,
    parse_spec,
    portable_arg,
    portable_path,
    pyplot,
    run_cli,
    save_grid,
    save_plot,
    u8,
    write_text,
)
from inpaintgan.experiments.common import command_line as common_command_line

PROG = "python -m inpaintgan.experiments.semantic_report"
DEFAULT_PROTOCOLS = ("center", "freeform_buckets")
#: per-image metrics (hole pixels only) and whether higher is better
METRICS = {"l1_hole": False, "psnr_hole": True, "ssim_hole": True}
#: per-image extras of the semantic variants (D's logits on the judged view, refinement steps)
EXTRAS = ("d_proposal", "d_refined", "steps")
ALL = "all"
SEMANTIC = ("yeh", "collab")


# ------------------------------------------------------------------------------------- arguments


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Semantic inpainting with a DCGAN (Yeh et al. 2017) refined by collaborative sampling with\n"
            "discriminator shaping (Liu et al. 2019) on the Fashion-MNIST test set (t10k), one channel,\n"
            "resized 28 -> the model's size (64) with bicubic interpolation.\n\n"
            "Per batch ONE z search with the base model gives the proposal; from that same latent:\n"
            "  yeh           the proposal composite (Yeh et al.)\n"
            "  collab        refined with the base discriminator, stopped at its d_real_median\n"
            "  shaped-LABEL  refined with each --shaped model's discriminator and d_real_median\n"
            "                (the search is not re-run; the shaped file must hold the base's generator\n"
            "                bit for bit)\n"
            "References on the same images and holes: telea (OpenCV) and every --model.\n\n"
            "Metrics per image: hole L1, hole PSNR, hole SSIM (hole pixels only, as 'inpaintgan eval'),\n"
            "D's logit on the proposal and on the refined result, refinement steps. Per variant: FID and\n"
            "paired KID against the real images where the FID Inception network loads (the [metrics]\n"
            "extra; else recorded as unavailable with the reason). Seconds per\n"
            "image of the search, each refinement and each reference.\n\n"
            "Outputs in --out (each written to a temporary file, then renamed):\n"
            "  per_image.csv          protocol, index, hole ratio, bucket, variant, metrics\n"
            "  results.csv / .md      means per protocol x variant (+ per hole-ratio bucket where a\n"
            "                         protocol spans several, e.g. freeform_buckets); best in bold in .md\n"
            "  results.json           settings (command line, paths relative to the working directory),\n"
            "                         models, machine, timing, unavailable metrics, the table\n"
            "  figure_<protocol>.png  input | proposal | heatmap | refined | original (collab), and\n"
            "                         figure_<protocol>_<best shaped>.png for the best shaped variant\n"
            "  comparison_<protocol>.png  input | telea | --model ... | yeh | collab | shaped ... | original\n"
            "  shaping_<protocol>.png  hole PSNR / SSIM / refinement steps against the shaping length, when\n"
            "                         every --shaped label is a number of epochs (two or more)\n\n"
            "Deterministic: the same arguments give the same numbers (seeded masks, seeded search and\n"
            "stopping draws); only the timings vary."
        ),
        epilog=(
            "example (the issue's full experiment):\n"
            f"  {PROG} --base semantic_fmnist.safetensors \\\n"
            "    --shaped 0.1=semantic_shaped_0.1.safetensors --shaped 0.5=semantic_shaped_0.5.safetensors \\\n"
            "    --out docs/eval/semantic_fmnist"
        ),
    )
    for add in (_model_options, _data_options, _search_options, _refine_options, _run_options):
        add(p)
    return p


def _model_options(p: argparse.ArgumentParser) -> None:
    """Options: --base, --shaped, --model."""
    g = p.add_argument_group("models")
    g.add_argument("--base", required=True, metavar="PATH",
                   help="the base semantic model file (.safetensors from 'inpaintgan export'): searches, refines (collab)")  # fmt: skip
    g.add_argument("--shaped", action="append", default=[], metavar="LABEL=PATH",
                   help="a shaped model file (same generator, shaped discriminator and its own d_real_median), "
                   "reported as variant shaped-LABEL, e.g. 0.5=semantic_shaped_0.5.safetensors; repeatable")  # fmt: skip
    g.add_argument("--model", action="append", default=[], metavar="NAME=PATH_OR_ZOO_NAME",
                   help="an extra reference: a model file, a zoo name or a baseline (ns, patchmatch, mean), run "
                   "through the Inpainter on the same images and holes, reported as NAME (without 'NAME=': the "
                   "file stem or the name); repeatable")  # fmt: skip


def _data_options(p: argparse.ArgumentParser) -> None:
    """Options: the test images and the mask protocols."""
    from inpaintgan.eval.protocols import PROTOCOLS

    g = p.add_argument_group("data and masks")
    g.add_argument("--data-root", default="", metavar="DIR",
                   help="folder of the Fashion-MNIST IDX files (t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]); "
                   "default: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist), else the cache")  # fmt: skip
    g.add_argument("-n", "--n", type=int, default=256, help="the first N test images (default: 256)")
    g.add_argument("--protocol", action="append", default=None, metavar="P",
                   help=f"mask protocol ({', '.join(p for p in PROTOCOLS if p != 'irregular')}); repeatable "
                   f"(default: {' and '.join(DEFAULT_PROTOCOLS)})")  # fmt: skip
    g.add_argument("--seed", type=int, default=0,
                   help="mask seed: image i's mask depends only on (protocol, seed, i) (default: 0)")  # fmt: skip


def _search_options(p: argparse.ArgumentParser) -> None:
    """Options: Yeh et al.'s z search."""
    from inpaintgan.methods.semantic import BLENDS

    g = p.add_argument_group("z search (Yeh et al.; unset options: the base model's config)")
    g.add_argument("--iterations", type=int, metavar="N", default=1000, help="Adam steps on z (default: 1000)")  # fmt: skip
    g.add_argument("--restarts", type=int, metavar="N", default=2, help="random initial z per image, best kept (default: 2)")  # fmt: skip
    g.add_argument("--lam", type=float, metavar="X", default=None, help="weight of the prior loss (default: model config)")  # fmt: skip
    g.add_argument("--lr", type=float, metavar="X", default=None, help="Adam learning rate of the search (default: model config)")  # fmt: skip
    g.add_argument("--window", type=int, metavar="N", default=None, help="importance-weight window, odd (default: model config)")  # fmt: skip
    g.add_argument("--blend", choices=BLENDS, default=None, help="blend of the fill (default: model config)")
    g.add_argument("--search-seed", type=int, metavar="SEED", default=None,
                   help="seed of the search's starting points (every batch) and of the probabilistic stopping "
                   "draws (seed + 1) (default: model config)")  # fmt: skip


def _refine_options(p: argparse.ArgumentParser) -> None:
    """Options: Liu et al.'s refinement."""
    from inpaintgan.methods.semantic import STOP_RULES

    g = p.add_argument_group("refinement (Liu et al.; unset options: the base model's config)")
    g.add_argument("--refine-steps", type=int, metavar="N", default=None, help="at most this many steps per image (0: none)")  # fmt: skip
    g.add_argument("--refine-step-size", type=float, metavar="S", default=None, help="gradient step size on the activations")  # fmt: skip
    g.add_argument("--stop-rule", choices=STOP_RULES, default=None,
                   help="median: stop at the discriminator's d_real_median; probabilistic; none (all steps)")  # fmt: skip
    g.add_argument("--refine-masked", action=argparse.BooleanOptionalAction, default=None,
                   help="D judges the composite (the report's masked variant) rather than G's whole image")  # fmt: skip


def _run_options(p: argparse.ArgumentParser) -> None:
    """Options: batching, threads, outputs, the latent cache."""
    g = p.add_argument_group("run and outputs")
    g.add_argument("--batch-size", type=int, metavar="N", default=64, help="images per search batch (default: 64)")  # fmt: skip
    g.add_argument("--threads", type=int, metavar="N", default=1, help="torch CPU threads, recorded with the timings (default: 1)")  # fmt: skip
    g.add_argument("--out", required=True, metavar="DIR", help="output folder (created; files in it are replaced)")  # fmt: skip
    g.add_argument("--figure-rows", type=int, metavar="N", default=8, help="images in the figures (default: 8; 0 = no figures)")  # fmt: skip
    g.add_argument("--latents", default="", metavar="DIR",
                   help="cache of the searched latents: each batch's z (and its search time) is saved there and "
                   "reused by a later run with the same base model, images, masks and search settings, so adding "
                   "a shaped variant or changing the refinement costs the refinement alone (default: no cache)")  # fmt: skip
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def split_spec(spec: str, option: str, need_label: bool = True) -> tuple[str, str]:
    """``LABEL=VALUE`` -> (label, value). Without ``=`` (allowed when not ``need_label``): the value's
    file stem (or the value itself) as the label."""
    label, value, labelled = parse_spec(spec)
    if not labelled and need_label:
        raise ReportError(
            f"{option} expects LABEL=PATH (e.g. 0.5=semantic_shaped_0.5.safetensors), got {spec!r}"
        )
    if not label or not value:
        raise ReportError(f"{option} expects LABEL=PATH with both parts non-empty, got {spec!r}")
    if not is_label(label):
        raise ReportError(
            f"{option}: label {label!r} may hold letters, digits and . _ + - only (it names files)"
        )
    return label, value


# ------------------------------------------------------------------------------------ small helpers


def command_line(argv: list[str], prog: str = PROG) -> str:
    """The command (``prog`` and ``argv``) as it would be typed, with paths made portable (:func:`portable_path`)."""
    return common_command_line(argv, prog)


def fid_extractor() -> tuple[Callable[[Tensor], np.ndarray] | None, str]:
    """(feature function, "") where the FID Inception network loads here (the ``[metrics]`` extra or
    $INPAINTGAN_FID_INCEPTION: :mod:`inpaintgan.eval.realism`), else (None, why), the rule of
    ``inpaintgan eval``. The function maps images (N, 1|3, H, W) in [0, 1] to (N, 2048) pool features."""
    from inpaintgan.eval.realism import InceptionFeatures, RealismUnavailable, availability

    ok, reason = availability()
    if not ok:
        return None, reason
    try:
        return InceptionFeatures(None, "cpu", batch_size=32), ""
    except RealismUnavailable as e:
        return None, str(e)


def realism_scores(features: Callable[[Tensor], np.ndarray], images: Tensor, outputs: dict[str, Tensor]) -> dict[str, dict[str, float]]:
    """{variant: {"fid", "kid", "kid_std"}} of each variant's outputs against the real images they
    were made from (paired KID, as ``inpaintgan eval``: row i of both sets is image i)."""
    from inpaintgan.eval.realism import set_scores

    real = features(images)
    return {v: set_scores(real, features(y), paired=True) for v, y in outputs.items()}


# ---------------------------------------------------------------------------------------- inputs


def check_same_generator(base, other, path: str | Path, label: str) -> None:
    """Refuse a shaped model whose generator is not the base's bit for bit (BatchNorm statistics too)."""
    a, b = base.generator.state_dict(), other.generator.state_dict()
    if a.keys() != b.keys():
        raise ReportError(
            f"--shaped {label}: {path} has a different generator architecture than the base model"
        )
    for k in a:
        if a[k].shape != b[k].shape or a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k]):
            raise ReportError(
                f"--shaped {label}: the generator in {path} differs from the base model's (generator.{k}); "
                "shaping trains the discriminator only, so a shaped file must hold the base's generator bit for "
                "bit (export both from one run: the shaping run resumed from the base checkpoint)"
            )


def load_semantic(path: str, what: str):
    from inpaintgan.checkpoints import load_model

    method, meta = load_model(path)
    if meta.get("method") != "semantic":
        raise ReportError(f"{what} {path} holds a {meta.get('method')!r} model, not 'semantic'")
    return method


def load_shaped(base, label: str, path: str):
    """The base method with the shaped file's discriminator and ``d_real_median`` swapped in (so the
    base's config and generator drive the refinement); the generators must match bit for bit."""
    shaped = load_semantic(path, f"--shaped {label}:")
    if (shaped.image_size, shaped.channels) != (base.image_size, base.channels):
        raise ReportError(
            f"--shaped {label}: {path} is a {shaped.image_size}px {shaped.channels}-channel model, "
            f"the base {base.image_size}px {base.channels}-channel"
        )
    check_same_generator(base, shaped, path, label)
    variant = copy.deepcopy(base)
    variant.discriminator = shaped.discriminator
    with torch.no_grad():
        variant.d_real_median.copy_(shaped.d_real_median)
    return variant.eval()


# ----------------------------------------------------------------------------------- the semantic part


@dataclass
class Settings:
    iterations: int
    restarts: int
    lam: float
    lr: float
    window: int
    blend: str
    search_seed: int
    refine_steps: int
    refine_step_size: float
    stop_rule: str
    refine_masked: bool
    refine_layer: int

    @classmethod
    def from_args(cls, args: argparse.Namespace, cfg) -> Settings:
        pick = lambda v, d: d if v is None else v  # noqa: E731
        return cls(
            iterations=int(args.iterations),
            restarts=int(args.restarts),
            lam=float(pick(args.lam, cfg.lam)),
            lr=float(pick(args.lr, cfg.lr)),
            window=int(pick(args.window, cfg.window)),
            blend=str(pick(args.blend, cfg.blend)),
            search_seed=int(pick(args.search_seed, cfg.seed)),
            refine_steps=int(pick(args.refine_steps, cfg.refine_steps)),
            refine_step_size=float(pick(args.refine_step_size, cfg.refine_step_size)),
            stop_rule=str(pick(args.stop_rule, cfg.stop_rule)),
            refine_masked=bool(pick(args.refine_masked, cfg.refine_masked)),
            refine_layer=int(cfg.refine_layer),
        )


@dataclass
class VariantResult:
    out: Tensor  # (N, C, S, S) composite in [0, 1]
    seconds: float  # the variant's own wall-clock time for the batch
    seconds_total: float  # including the shared search (refinements)
    d_proposal: Tensor | None = None
    d_refined: Tensor | None = None
    steps: Tensor | None = None


def latent_cache_key(base_path: str, images: Tensor, masks: Tensor, s: Settings) -> str:
    """What a searched latent depends on: the base model file, the exact images and masks, and the
    search settings (not the refinement ones)."""
    h = hashlib.sha256()
    h.update(Path(base_path).read_bytes())
    for t in (images, masks):
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    h.update(json.dumps([s.iterations, s.restarts, s.lam, s.lr, s.window, s.search_seed]).encode())
    return h.hexdigest()[:32]


def semantic_batch(
    base, refiners: dict[str, Any], images: Tensor, masks: Tensor, s: Settings, cache: Path | None = None,
    key: str = "", z: Tensor | None = None,
) -> dict[str, VariantResult]:
    """One z search with ``base``, then ``yeh`` (the proposal) and one refinement of the same
    activations per entry of ``refiners`` (variant name -> method whose discriminator and median judge).
    With ``cache`` (a folder) and ``key`` (:func:`latent_cache_key`), a latent searched before is
    loaded (its recorded search time is reported) instead of searched again."""
    t0 = time.perf_counter()
    path = cache / f"z_{key}.pt" if cache is not None and key else None
    if z is not None:  # given (warm-up)
        found, t_offset = {"z": z}, 0.0
    elif path is not None and path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        found = {"z": saved["z"]}
        t_offset = float(saved["search_seconds"]) - (time.perf_counter() - t0)
    else:
        found = base.search_latent(images, masks, iterations=s.iterations, restarts=s.restarts, lam=s.lam, lr=s.lr,
                                   window=s.window, seed=s.search_seed, progress=False)  # fmt: skip
        t_offset = 0.0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            torch.save({"z": found["z"].detach().cpu(), "search_seconds": time.perf_counter() - t0}, tmp)
            os.replace(tmp, path)
    k = s.refine_layer
    with base._inference_guard(), torch.no_grad():  # as inpaint(): G in eval mode, no graph
        h0 = base.generator.forward_to(found["z"], k)
        x0 = base.generator.forward_from(h0, k)
    proposal = base._finish(x0, images, masks, s.blend)
    t_search = time.perf_counter() - t0 + t_offset
    y, m = base._prepare(images, masks)  # model space, as the method's own inpaint_detailed refines
    out: dict[str, VariantResult] = {}
    for name, method in refiners.items():
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(s.search_seed + 1)  # inpaint()'s stopping-draw seed
        with method._inference_guard():
            ref = method.refine(h0, y, m, steps=s.refine_steps, step_size=s.refine_step_size, masked=s.refine_masked,
                                stop_rule=s.stop_rule, generator=gen)  # fmt: skip
        refined = method._finish(ref["x"], images, masks, s.blend)
        dt = time.perf_counter() - t0
        out[name] = VariantResult(
            refined, dt, t_search + dt, ref["logit_initial"].cpu(), ref["logit"].cpu(), ref["steps"].cpu()
        )
    first = next(iter(out.values()))  # the base discriminator's logit on the proposal
    return {"yeh": VariantResult(proposal, t_search, t_search, d_proposal=first.d_proposal), **out}


def warm_up(refs: dict, base, refiners: dict, images: Tensor, masks: Tensor, s: Settings, search: bool = True) -> None:
    """One untimed pass of everything on one image, so first-call costs (allocations, lazy set-up) stay
    out of the timings; seeded code paths only, so the numbers are unaffected. ``search=False`` (latents
    from a cache) warms up the refinement from a zero latent instead of running a search."""
    with torch.no_grad():
        for fn in refs.values():
            fn(images[:1], masks[:1])
    quick = dataclasses.replace(s, iterations=1, restarts=1, refine_steps=min(1, s.refine_steps))
    z = None if search else torch.zeros(1, base.cfg.z_dim)
    semantic_batch(base, refiners, images[:1], masks[:1], quick, z=z)


# ------------------------------------------------------------------------------------ aggregation


def summarize(
    rows: list[dict], protocols: dict[str, list[str]], variants: list[str], timing: dict
) -> list[dict]:
    """Means per (protocol, bucket, variant): an ``all`` group per protocol, plus one per hole-ratio
    bucket where a protocol's images span several buckets. Timing on the ``all`` rows."""
    table = []
    for proto, order in protocols.items():
        mine = [r for r in rows if r["protocol"] == proto]
        present = list(dict.fromkeys(r["bucket"] for r in mine))
        buckets = [b for b in order if b in present] + [b for b in present if b not in order]
        for b in [ALL, *(buckets if len(buckets) > 1 else [])]:
            for v in variants:
                sel = [r for r in mine if r["variant"] == v and (b == ALL or r["bucket"] == b)]
                if not sel:
                    continue
                e: dict[str, Any] = {"protocol": proto, "bucket": b, "variant": v, "count": len(sel),
                                     "hole_ratio": float(np.mean([r["hole_ratio"] for r in sel]))}  # fmt: skip
                for name in (*METRICS, *EXTRAS):
                    vals = [float(r[name]) for r in sel if r.get(name) is not None]
                    e[name] = float(np.mean(vals)) if vals else math.nan
                t = timing[proto][v] if b == ALL else None
                e["sec_per_image"] = t["seconds"] / t["images"] if t else math.nan
                e["sec_per_image_total"] = t["seconds_total"] / t["images"] if t else math.nan
                table.append(e)
    return table


TABLE_COLUMNS = [
    "protocol",
    "bucket",
    "variant",
    "count",
    "hole_ratio",
    *METRICS,
    *EXTRAS,
    "sec_per_image",
    "sec_per_image_total",
]
#: Markdown columns: key, header, format, better direction (None: no "best")
MD_COLUMNS = [
    ("l1_hole", "L1 hole ↓", "{:.4f}", min),
    ("psnr_hole", "PSNR hole ↑", "{:.2f}", max),
    ("ssim_hole", "SSIM hole ↑", "{:.4f}", max),
    ("d_proposal", "D(proposal)", "{:.3f}", None),
    ("d_refined", "D(refined)", "{:.3f}", None),
    ("steps", "steps", "{:.1f}", None),
    ("sec_per_image", "s/img", "{:.4g}", None),  # different work per variant: not ranked
    ("sec_per_image_total", "s/img total ↓", "{:.4g}", min),
]


def format_markdown(table: list[dict], header: str, fid: dict | None, fid_reason: str) -> str:
    """One table per protocol (variant x bucket), the best value of each group bold per column; FID and
    KID (``fid``: protocol -> variant -> scores) on the "all" rows."""
    cols = list(MD_COLUMNS)
    lines = [header, ""]
    for proto in dict.fromkeys(e["protocol"] for e in table):
        lines += [f"## {proto}", ""]
        heads = ["variant", "bucket", "n", "hole %", *(c[1] for c in cols)] + (["FID ↓", "KID×1000 ↓"] if fid else [])
        lines += md_head(heads)
        entries = [e for e in table if e["protocol"] == proto]
        for bucket in dict.fromkeys(e["bucket"] for e in entries):
            group = [e for e in entries if e["bucket"] == bucket]
            best = best_values(group, cols)
            for e in group:
                cells = [e["variant"], bucket, str(e["count"]), f"{100 * e['hole_ratio']:.1f}"]
                cells += bold_cells(e, cols, best)
                if fid:  # set-level realism over all images of the protocol (paired KID: mean ± std over subsets)
                    v = fid.get(proto, {}).get(e["variant"]) if bucket == ALL else None
                    if v is None:
                        cells += ["–", "–"]
                    else:
                        cells += [f"{v['fid']:.1f}", f"{1000 * v['kid']:.2f} ± {1000 * v['kid_std']:.2f}"]
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if fid_reason:
        lines.append(f"fid: unavailable ({fid_reason})")
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ figures


def shaping_epochs(labels: list[str]) -> dict[str, float] | None:
    """``shaped-E`` variant -> E as a number, when every shaped label is one (the report's shaping
    fractions in epochs); None otherwise (labels such as ``a``/``b`` have no axis to plot on)."""
    out = {}
    for v in labels:
        try:
            out[v] = float(v.removeprefix("shaped-"))
        except ValueError:
            return None
    return out


def shaping_plot(table: list[dict], proto: str, epochs: dict[str, float], path: Path) -> Path:
    """Hole PSNR, hole SSIM and refinement steps against the shaping length (epochs), one point per
    shaped discriminator; collab (the unshaped discriminator) at 0 and the search's proposal (yeh) as a
    dashed line: the report's question of how much shaping the refinement needs."""
    plt = pyplot()
    rows = {e["variant"]: e for e in table if e["protocol"] == proto and e["bucket"] == ALL}
    pts = sorted([(0.0, "collab")] + [(x, v) for v, x in epochs.items()])
    panels = [("psnr_hole", "hole PSNR (dB)"), ("ssim_hole", "hole SSIM"), ("steps", "refinement steps")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for ax, (key, label) in zip(axes, panels):
        xs = [x for x, v in pts if rows.get(v, {}).get(key) is not None]
        ys = [rows[v][key] for x, v in pts if rows.get(v, {}).get(key) is not None]
        ax.plot(xs, ys, marker="o", label="refined (0 = collab, unshaped D)")
        if key != "steps" and rows.get("yeh", {}).get(key) is not None:
            ax.axhline(rows["yeh"][key], ls="--", color="gray", label="proposal (Yeh et al.)")
        ax.set_xlabel("discriminator shaping (epochs)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{proto}: refinement quality vs shaping length", fontsize=10)
    fig.tight_layout()
    return save_plot(fig, path, dpi=100)


def write_figures(out_dir: Path, proto: str, fig: dict[str, Tensor], images: Tensor, masks: Tensor,
                  variants: list[str], best_shaped: str | None) -> list[Path]:  # fmt: skip
    from inpaintgan.methods.semantic import refinement_heatmap, report_figure
    from inpaintgan.training.logging import masked_input_view

    written = []
    view = masked_input_view(images, masks)
    upscale = max(2, math.ceil(128 / images.shape[-1]))  # 2 at 64 px, as the report
    for name, suffix in (("collab", ""), *([(best_shaped, f"_{best_shaped}")] if best_shaped else [])):
        img = report_figure(
            view, fig["yeh"], refinement_heatmap(fig["yeh"], fig[name]), fig[name], images, upscale=upscale
        )
        written.append(
            atomic_write(
                out_dir / f"figure_{proto}{suffix}.png", lambda tmp, img=img: img.save(tmp, format="PNG")
            )
        )
    rows = [[masked(images[j], masks[j]), *(u8(fig[v][j]) for v in variants), u8(images[j])]
            for j in range(images.shape[0])]  # fmt: skip
    written.append(save_grid(out_dir / f"comparison_{proto}.png", rows, ["input", *variants, "original"]))
    return written


# ------------------------------------------------------------------------------------------- runner


@dataclass
class Report:
    """What a run produced (also written to ``out_dir``)."""

    out_dir: Path
    variants: list[str]
    rows: list[dict]  # per image
    table: list[dict]  # means
    images: dict[str, Tensor] = field(default_factory=dict)  # protocol -> originals (n, C, S, S)
    masks: dict[str, Tensor] = field(default_factory=dict)  # protocol -> masks (n, 1, S, S)
    outputs: dict[str, dict[str, Tensor]] = field(default_factory=dict)  # protocol -> variant -> (n, C, S, S)
    results: dict = field(default_factory=dict)  # the content of results.json


def _check_args(args: argparse.Namespace) -> None:
    for name, lo in (
        ("n", 1),
        ("batch_size", 1),
        ("iterations", 0),
        ("restarts", 1),
        ("threads", 1),
        ("figure_rows", 0),
    ):
        if getattr(args, name) < lo:
            raise ReportError(f"--{name.replace('_', '-')} must be >= {lo}, got {getattr(args, name)}")
    if args.refine_steps is not None and args.refine_steps < 0:
        raise ReportError(f"--refine-steps must be >= 0, got {args.refine_steps}")


@dataclass
class Plan:
    """What a run needs, built from the arguments (:func:`build_plan`) before anything is timed."""

    variants: list[str]  # references, yeh, collab, shaped-*
    shaped_labels: list[str]
    model_specs: list[tuple[str, str]]  # --model (label, spec)
    protocols: dict[str, Any]  # name -> MaskProtocol
    base: Any  # the base SemanticInpainting
    refiners: dict[str, Any]  # collab / shaped-LABEL -> the method whose discriminator refines
    shaped_info: list[dict]
    refs: dict[str, Callable[[Tensor, Tensor], Tensor]]  # telea and --model
    settings: Settings
    images: Tensor  # (n, 1, S, S) in [0, 1]
    fid_fn: Callable[[Tensor], np.ndarray] | None
    fid_reason: str
    out_dir: Path

    @property
    def size(self) -> int:
        return self.base.image_size


def build_plan(args: argparse.Namespace) -> Plan:
    """Check the arguments, name the variants, load the models, the references and the test images."""
    from inpaintgan.eval.protocols import get_protocol

    _check_args(args)
    shaped_specs = [split_spec(s, "--shaped") for s in args.shaped]
    model_specs = [split_spec(s, "--model", need_label=False) for s in args.model]
    ref_labels = ["telea", *(label for label, _ in model_specs)]
    shaped_labels = [f"shaped-{label}" for label, _ in shaped_specs]
    variants = [*ref_labels, *SEMANTIC, *shaped_labels]
    dupes = sorted({v for v in variants if variants.count(v) > 1})
    if dupes:
        raise ReportError(
            f"variant names must be unique; repeated: {', '.join(dupes)} (rename a --model or --shaped label)"
        )
    protocols = {name: get_protocol(name, args.seed) for name in (args.protocol or DEFAULT_PROTOCOLS)}
    torch.set_num_threads(int(args.threads))

    base = load_semantic(args.base, "--base")
    if base.channels != 1:
        raise ReportError(
            f"--base {args.base} has {base.channels} channels; Fashion-MNIST is grayscale (1 channel)"
        )
    refiners, shaped_info = load_refiners(base, shaped_specs, shaped_labels)
    refs = load_references(model_specs)
    s = Settings.from_args(args, base.cfg)
    x_all = load_fashion_images(args.data_root, args.n, base.image_size)
    fid_fn, fid_reason = fid_extractor()

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    return Plan(variants, shaped_labels, model_specs, protocols, base, refiners, shaped_info, refs, s, x_all,
                fid_fn, fid_reason, out_dir)  # fmt: skip


def load_refiners(base, shaped_specs: list[tuple[str, str]], shaped_labels: list[str]) -> tuple[dict[str, Any], list[dict]]:
    """``collab`` (the base) and one ``shaped-LABEL`` per --shaped file; and what each shaped file is."""
    refiners = {"collab": base}
    shaped_info = []
    for (label, path), name in zip(shaped_specs, shaped_labels):
        refiners[name] = load_shaped(base, label, path)
        shaped_info.append({"label": label, "variant": name, "path": portable_path(path),
                            "d_real_median": json_num(float(refiners[name].d_real_median))})  # fmt: skip
    return refiners, shaped_info


def load_references(model_specs: list[tuple[str, str]]) -> dict[str, Callable[[Tensor, Tensor], Tensor]]:
    """``telea`` and every --model, as ``(images, masks) -> composite`` on the CPU."""
    from inpaintgan.baselines import get_baseline, resolve_model

    refs: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"telea": get_baseline("telea")}
    for label, spec in model_specs:
        try:
            refs[label] = resolve_model(spec, "cpu")
        except ImportError as e:  # an optional baseline's package is missing
            raise ReportError(f"--model {label}: cannot run here: {e}") from None
    return refs


def run_references(refs: dict[str, Callable[[Tensor, Tensor], Tensor]], images: Tensor, masks: Tensor) -> dict[str, VariantResult]:
    """Each reference on the batch, timed (its whole run)."""
    res: dict[str, VariantResult] = {}
    for label, fn in refs.items():
        t0 = time.perf_counter()
        with torch.no_grad():
            y = fn(images, masks)
        dt = time.perf_counter() - t0
        y = y.detach().float().cpu()
        if y.shape != images.shape:
            raise ReportError(
                f"model {label!r} returned shape {tuple(y.shape)}, expected {tuple(images.shape)}"
            )
        res[label] = VariantResult(y, dt, dt)
    return res


def run_batch(plan: Plan, args: argparse.Namespace, images: Tensor, masks: Tensor) -> dict[str, VariantResult]:
    """Every variant on one batch: the references, then the search (or its cached latent) and the refinements."""
    res = run_references(plan.refs, images, masks)
    cache = Path(args.latents) if args.latents else None
    key = latent_cache_key(args.base, images, masks, plan.settings) if cache is not None else ""
    res.update(semantic_batch(plan.base, plan.refiners, images, masks, plan.settings, cache, key))
    return res


def image_rows(pname: str, proto, idx: list[int], masks: Tensor, scored: dict[str, dict[str, Tensor]],
               res: dict[str, VariantResult], variants: list[str]) -> list[dict]:  # fmt: skip
    """per_image.csv's rows of one batch: one per image and variant."""
    ratios = masks.flatten(1).mean(1)
    rows = []
    for j, i in enumerate(idx):
        r = float(ratios[j])
        for v in variants:
            row = {
                "protocol": pname,
                "index": i,
                "variant": v,
                "hole_ratio": r,
                "bucket": proto.bucket(r),
            }
            row.update({m: float(scored[v][m][j]) for m in METRICS})
            vr = res[v]
            row["d_proposal"] = None if vr.d_proposal is None else float(vr.d_proposal[j])
            row["d_refined"] = None if vr.d_refined is None else float(vr.d_refined[j])
            row["steps"] = None if vr.steps is None else int(vr.steps[j])
            rows.append(row)
    return rows


def run_batches(plan: Plan, args: argparse.Namespace, rep: Report) -> tuple[dict, float]:
    """Every protocol and batch (after an untimed warm-up): rows, images, masks and outputs into ``rep``.
    Returns (timing: protocol -> variant -> seconds, seconds_total, images; wall-clock seconds)."""
    from tqdm.auto import tqdm

    from inpaintgan import metrics as M

    x_all, size, variants = plan.images, plan.size, plan.variants
    n = x_all.shape[0]
    todo = batches(n, args.batch_size)
    timing: dict[str, dict[str, dict[str, float]]] = {}
    bar = tqdm(
        total=len(plan.protocols) * len(todo), desc="semantic_report", unit="batch", disable=args.no_progress
    )
    first = next(iter(plan.protocols.values()))
    warm_up(plan.refs, plan.base, plan.refiners, x_all[:1], first.masks([0], size, size), plan.settings,
            search=not args.latents)  # fmt: skip
    t_run = time.perf_counter()
    try:
        for pname, proto in plan.protocols.items():
            masks_all = proto.masks(range(n), size, size)
            outs = {v: torch.empty_like(x_all) for v in variants}
            timing[pname] = {v: {"seconds": 0.0, "seconds_total": 0.0, "images": 0} for v in variants}
            bar.set_postfix(protocol=pname, refresh=False)
            for idx in todo:
                images, masks = x_all[idx], masks_all[idx]
                res = run_batch(plan, args, images, masks)
                scored = {v: M.compute_all(res[v].out, images, masks) for v in variants}
                for v in variants:
                    outs[v][idx] = res[v].out.detach().float().cpu()
                    t = timing[pname][v]
                    t["seconds"] += res[v].seconds
                    t["seconds_total"] += res[v].seconds_total
                    t["images"] += len(idx)
                rep.rows.extend(image_rows(pname, proto, idx, masks, scored, res, variants))
                bar.update(1)
            rep.images[pname], rep.masks[pname], rep.outputs[pname] = x_all, masks_all, outs
    finally:
        bar.close()
    return timing, time.perf_counter() - t_run


def run_report(args: argparse.Namespace, argv: list[str] | None = None) -> Report:
    """Run the experiment described by parsed ``args`` (``argv``: the command line to record): build the
    plan, run every batch, summarise (means, FID/KID), write the files."""
    from inpaintgan.eval.protocols import bucket_label

    plan = build_plan(args)
    rep = Report(plan.out_dir, plan.variants, [], [])
    timing, wall = run_batches(plan, args, rep)

    orders = {p: [bucket_label(b) for b in proto.buckets] for p, proto in plan.protocols.items()}
    rep.table = summarize(rep.rows, orders, plan.variants, timing)
    fid: dict[str, dict[str, dict[str, float]]] = {}
    if plan.fid_fn is not None:
        for pname in plan.protocols:
            fid[pname] = realism_scores(plan.fid_fn, rep.images[pname], rep.outputs[pname])

    write_report(rep, plan, args, argv, timing, wall, fid)
    return rep


# ------------------------------------------------------------------------------------------- files


def settings_json(plan: Plan, args: argparse.Namespace, argv: list[str] | None) -> dict:
    """results.json's ``settings``: the command line, the data, protocols, search and refinement."""
    s = plan.settings
    argv = list(argv) if argv is not None else None
    return {
        "command": command_line(argv) if argv is not None else None,
        "data": {
            "dataset": "fashion_mnist",
            "split": "test (t10k)",
            "root": portable_path(args.data_root) if args.data_root else "(default)",
            "n": plan.images.shape[0],
            "image_size": plan.size,
            "channels": 1,
            "resize": "bicubic 28 -> image_size, align_corners=False, clamp [0, 1]",
        },
        "protocols": list(plan.protocols),
        "mask_seed": args.seed,
        "search": {
            k: getattr(s, k)
            for k in ("iterations", "restarts", "lam", "lr", "window", "blend", "search_seed")
        },
        "refine": {
            k: getattr(s, k)
            for k in ("refine_steps", "refine_step_size", "stop_rule", "refine_masked", "refine_layer")
        },
        "batch_size": args.batch_size,
        "threads": int(args.threads),
        "figure_rows": args.figure_rows,
        "out": portable_path(plan.out_dir),
    }


def models_json(plan: Plan, args: argparse.Namespace) -> dict:
    """results.json's ``models``: the base (file, median, config), the shaped files, the references."""
    base = plan.base
    return {
        "base": {
            "path": portable_path(args.base),
            "d_real_median": json_num(float(base.d_real_median)),
            "config": {k: getattr(base.cfg, k) for k in ("z_dim", "ngf", "ndf", "z_prior")},
        },
        "shaped": plan.shaped_info,
        "references": [{"variant": "telea", "model": "telea"}]
        + [{"variant": label, "model": portable_arg(spec)} for label, spec in plan.model_specs],
    }


def timing_json(timing: dict, wall: float) -> dict:
    """results.json's ``timing``: seconds per image per protocol and variant, and what they measure."""
    timing_out = {
        p: {v: {"sec_per_image": t["seconds"] / max(1, t["images"]), "sec_per_image_total": t["seconds_total"] / max(1, t["images"])}
            for v, t in tv.items()}
        for p, tv in timing.items()
    }  # fmt: skip
    timing_note = ("seconds per image, wall clock, batch time / batch size: yeh = the z search; collab and shaped-* = "
                   "their refinement alone (sec_per_image) and with the shared search (sec_per_image_total); "
                   "references = their whole run; after one untimed warm-up pass on one image")  # fmt: skip
    return {"note": timing_note, "wall_seconds": wall, **timing_out}


def markdown_header(plan: Plan, args: argparse.Namespace, settings: dict, info: dict) -> str:
    """results.md's title and the lines on the settings above the tables."""
    s, n, size = plan.settings, plan.images.shape[0], plan.size
    return "\n".join([
        f"# Semantic inpainting + collaborative sampling: Fashion-MNIST test, first {n} images, {size}x{size}",
        "",
        f"Search: {s.iterations} iterations x {s.restarts} restarts (lam {s.lam:g}, lr {s.lr:g}, seed {s.search_seed}); "
        f"refinement: at most {s.refine_steps} steps of {s.refine_step_size:g} after generator block {s.refine_layer}, "
        f"stop rule {s.stop_rule}, {'masked' if s.refine_masked else 'unmasked'}; mask seed {args.seed}; "
        f"batch {args.batch_size}; {int(args.threads)} thread(s) on {info.get('cpu', '?')}.",
        "",
        "Metrics over hole pixels only; D(.) = the variant's discriminator's mean logit (yeh, collab: the base's); "
        "s/img: the variant's own time (collab/shaped: the refinement alone), total: with the shared search. "
        "Bold: the best of each bucket's rows.",
        "",
        f"Command: `{settings['command'] or '(API call)'}`",
    ])  # fmt: skip


def write_all_figures(rep: Report, plan: Plan, figure_rows: int) -> None:
    """Per protocol: the figures of collab and of the best shaped variant, the comparison grid, and the
    shaping plot where every shaped label is a number of epochs (two or more)."""
    k = min(figure_rows, plan.images.shape[0])
    shaped_labels = plan.shaped_labels
    for pname in plan.protocols:
        means = {
            e["variant"]: e["psnr_hole"] for e in rep.table if e["protocol"] == pname and e["bucket"] == ALL
        }
        best = max(shaped_labels, key=lambda v: means[v]) if shaped_labels else None
        fig = {v: rep.outputs[pname][v][:k] for v in plan.variants}
        write_figures(plan.out_dir, pname, fig, rep.images[pname][:k], rep.masks[pname][:k], plan.variants, best)
        epochs = shaping_epochs(shaped_labels)
        if epochs and len(epochs) >= 2:
            shaping_plot(rep.table, pname, epochs, plan.out_dir / f"shaping_{pname}.png")


def write_report(rep: Report, plan: Plan, args: argparse.Namespace, argv: list[str] | None, timing: dict,
                 wall: float, fid: dict) -> None:  # fmt: skip
    """per_image.csv, results.csv, results.json, results.md and the figures; the table printed."""
    out_dir, table = plan.out_dir, rep.table
    per_cols = ["protocol", "index", "variant", "hole_ratio", "bucket", *METRICS, *EXTRAS]
    write_text(out_dir / "per_image.csv", csv_text(rep.rows, per_cols))
    write_text(out_dir / "results.csv", csv_text(table, TABLE_COLUMNS))
    info = machine()
    settings = settings_json(plan, args, argv)
    results = {
        "experiment": "semantic_report (issue #9)",
        "settings": settings,
        "models": models_json(plan, args),
        "variants": plan.variants,
        "machine": info,
        "timing": timing_json(timing, wall),
        "unavailable": {"fid": plan.fid_reason} if plan.fid_reason else {},
        "realism": fid or None,  # protocol -> variant -> {fid, kid, kid_std} (whole images, paired KID)
        "results": [{k: json_num(v) for k, v in e.items()} for e in table],
    }
    rep.results = results
    write_text(out_dir / "results.json", json.dumps(results, indent=2) + "\n")
    md = format_markdown(table, markdown_header(plan, args, settings, info), fid or None, plan.fid_reason)
    write_text(out_dir / "results.md", md)

    if args.figure_rows > 0:
        write_all_figures(rep, plan, args.figure_rows)

    print(md)  # ends with "fid: unavailable (...)" where FID cannot run, as inpaintgan eval prints it
    print(
        f"\nwrote per_image.csv, results.csv, results.md, results.json and figures to {out_dir}",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (2: a one-line error, no traceback)."""
    return run_cli("semantic_report", parse_args, run_report, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
