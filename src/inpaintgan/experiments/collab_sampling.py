"""Plain collaborative sampling (Liu, Kothari, Alahi, "Collaborative Sampling in Generative Adversarial
Networks", AAAI 2020), without inpainting: the trained DCGAN proposes samples, the discriminator
refines them through gradient steps on the generator's activations, and the samples' distance to real
images is measured before and after, for the plain discriminator and for each shaped one.

This is the paper's own experiment (its image-generation results: the proposals' and refined samples'
FID, and the refined samples with heatmaps of what changed), on the semantic runner's Fashion-MNIST
DCGAN and shaped discriminators. Per variant: FID and KID (unpaired: samples are not made from the
real images) against the first ``--n-real`` t10k images, D's mean logit before and after, the share of
samples that stopped before taking a step and the mean number of steps; a figure of proposal | heatmap
| refined for the first samples; per-sample logits and steps in ``per_sample.csv``. The reference
rows: t10k against as many *training* images (the floor a perfect sampler would reach at this n).

    python -m inpaintgan.experiments.collab_sampling --base M/semantic_fmnist.safetensors \\
        --shaped 1=M/semantic_shaped_1.safetensors --shaped 2=M/semantic_shaped_2.safetensors \\
        -n 1000 --out docs/eval/semantic_fmnist/collab_sampling
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path

import torch


class CollabError(ValueError):
    """A one-line reason the experiment cannot run (bad model file, missing data)."""


@torch.no_grad()
def propose(model, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(activations h after the refinement layer, proposal in [-1, 1]) of n seeded prior samples."""
    gen = torch.Generator().manual_seed(seed)
    z = model.sample_z(n, gen)
    k = model.cfg.refine_layer
    h = model.generator.forward_to(z, k)
    return h, model.generator.forward_from(h, k)


def refine_all(model, h: torch.Tensor, batch: int, steps: int, step_size: float, stop_rule: str) -> dict[str, torch.Tensor]:
    """``model.refine`` without a mask (the whole sample is the view D judges), in batches."""
    parts: list[dict[str, torch.Tensor]] = []
    for i in range(0, h.shape[0], batch):
        parts.append(model.refine(h[i : i + batch], masked=False, steps=steps, step_size=step_size, stop_rule=stop_rule))
    return {k: torch.cat([p[k] for p in parts]) for k in ("x", "steps", "logit_initial", "logit")}


def figure(proposal: torch.Tensor, refined: torch.Tensor, rows: int, path: Path) -> None:
    """proposal | heatmap | refined, one sample per row (the paper's refined samples with heatmaps)."""
    from inpaintgan.methods.semantic import refinement_heatmap, report_figure

    p, r = proposal[:rows], refined[:rows]
    blank = torch.ones_like(p)
    img = report_figure(blank, p, refinement_heatmap(p, r), r, blank, upscale=2)
    # keep the three informative columns (report_figure's layout: five equal columns with gaps)
    w = img.width // 5
    img = img.crop((w, 0, 4 * w, img.height))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    _write(path, buf.getvalue())


def _write(path: Path, data: bytes | str) -> None:
    from inpaintgan.checkpoints import atomic_write

    raw = data.encode() if isinstance(data, str) else data
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(raw))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m inpaintgan.experiments.collab_sampling",
        description="Plain collaborative sampling (Liu et al. 2020): DCGAN samples refined by the plain and "
        "the shaped discriminators, FID/KID against real Fashion-MNIST images before and after.",
    )
    p.add_argument("--base", required=True, help="the semantic DCGAN model file (generator + plain discriminator)")
    p.add_argument("--shaped", action="append", default=[], metavar="LABEL=FILE",
                   help="a shaped model of the same generator (repeatable); its discriminator refines variant shaped-LABEL")  # fmt: skip
    p.add_argument("-n", type=int, default=1000, help="samples (default 1000)")
    p.add_argument("--n-real", type=int, default=0, help="real t10k images for FID/KID (default: n)")
    p.add_argument("--seed", type=int, default=0, help="latent seed (default 0)")
    p.add_argument("--steps", type=int, default=50, help="most refinement steps per sample (default 50)")
    p.add_argument("--step-size", type=float, default=0.1, help="refinement step size (default 0.1)")
    p.add_argument("--stop-rule", default="median", choices=["median", "probabilistic", "none"],
                   help="when a sample stops: at D's real-median logit (default), accepted w.p. sigmoid(logit), never")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--figure-rows", type=int, default=8)
    p.add_argument("--data-root", default="", help="Fashion-MNIST folder (default: the Debian package's)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    if a.n < 2 or (a.n_real and a.n_real < 2):
        p.error("-n and --n-real must be at least 2 (FID and KID need two samples)")
    return a


def run(a: argparse.Namespace, features=None) -> dict:
    from inpaintgan.eval.realism import InceptionFeatures, set_scores

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    from inpaintgan.experiments.semantic_report import ReportError, load_semantic, load_shaped

    try:
        base = load_semantic(a.base, "--base").eval()
        models = {"collab": base}
        for spec in a.shaped:
            label, sep, path = spec.partition("=")
            if not sep or not label or not path:
                raise CollabError(f"--shaped takes LABEL=FILE, got {spec!r}")
            models[f"shaped-{label}"] = load_shaped(base, label, path).eval()
    except ReportError as e:
        raise CollabError(str(e)) from None
    features = features or InceptionFeatures(None, "cpu", batch_size=50)
    size = base.image_size
    n_real = a.n_real or a.n
    from inpaintgan.experiments.common import load_fashion_images

    try:
        real = load_fashion_images(a.data_root, n_real, size, train=False)
        train_ref = load_fashion_images(a.data_root, n_real, size, train=True)
    except ReportError as e:
        raise CollabError(str(e)) from None

    h, x0 = propose(base, a.n, a.seed)
    proposal = ((x0 + 1) / 2).clamp(0, 1)
    samples, stats, timing = {"proposal": proposal}, {}, {}
    for label, m in models.items():
        t0 = time.perf_counter()
        r = refine_all(m, h, a.batch_size, a.steps, a.step_size, a.stop_rule)
        timing[label] = (time.perf_counter() - t0) / a.n
        samples[label] = ((r["x"] + 1) / 2).clamp(0, 1)
        stats[label] = r

    real_f = features(real)
    scores = {"t10k vs train (reference)": set_scores(real_f, features(train_ref))}
    for label, x in samples.items():
        scores[label] = set_scores(real_f, features(x))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, r in stats.items():
        st = r["steps"].float()
        rows.append({
            "variant": label,
            "d_logit_before": float(r["logit_initial"].mean()),
            "d_logit_after": float(r["logit"].mean()),
            "stopped_at_once": float((st == 0).float().mean()),
            "mean_steps": float(st.mean()),
            "sec_per_sample": timing[label],
        })  # fmt: skip
    result = {
        "experiment": "plain collaborative sampling (Liu et al. 2020), no inpainting",
        "settings": {k: v for k, v in vars(a).items()},
        "d_real_median": {label: float(m.d_real_median) for label, m in models.items()},
        "realism": scores,
        "refinement": rows,
    }
    _write(out / "results.json", json.dumps(result, indent=2, default=float) + "\n")
    _write(out / "results.md", format_markdown(result, a))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["index", *[f"{lab}_{k}" for lab in stats for k in ("logit_initial", "logit", "steps")]])
    for i in range(a.n):
        w.writerow([i, *[f"{float(stats[lab][k][i]):.6g}" for lab in stats for k in ("logit_initial", "logit", "steps")]])
    _write(out / "per_sample.csv", buf.getvalue())
    if a.figure_rows > 0:
        for label in stats:
            figure(proposal, samples[label], min(a.figure_rows, a.n), out / f"figure_{label}.png")
    return result


def format_markdown(result: dict, a: argparse.Namespace) -> str:
    lines = [
        f"# Plain collaborative sampling: {a.n} DCGAN samples, Fashion-MNIST",
        "",
        f"Refinement: at most {a.steps} steps of {a.step_size:g}, stop rule {a.stop_rule}, the whole sample "
        f"judged (no mask); latent seed {a.seed}. FID / KID x1000 (unpaired, mean ± std over subsets) "
        "against the first t10k images; the reference row is t10k against as many training images.",
        "",
        "| samples | FID ↓ | KID×1000 ↓ | D logit before → after | stopped at once | mean steps | s/sample |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    ref = {r["variant"]: r for r in result["refinement"]}
    for label, s in result["realism"].items():
        r = ref.get(label)
        extra = (
            [f"{r['d_logit_before']:.2f} → {r['d_logit_after']:.2f}", f"{100 * r['stopped_at_once']:.0f}%",
             f"{r['mean_steps']:.1f}", f"{r['sec_per_sample']:.4f}"] if r else ["–"] * 4
        )  # fmt: skip
        lines.append(f"| {label} | {s['fid']:.1f} | {1000 * s['kid']:.2f} ± {1000 * s['kid_std']:.2f} | " + " | ".join(extra) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from inpaintgan.checkpoints import CheckpointError

    a = parse_args(argv)
    try:
        res = run(a)
    except (CollabError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_markdown(res, a))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
