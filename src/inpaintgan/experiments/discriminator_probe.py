"""Can the default model's discriminator tell a classical fill from a real photo? Two measurements:

- ``--checkpoints CK ...``: a trained ``lama`` checkpoint's own discriminator scores real crops and
  their pre-filled / network-filled composites (mean logit over the cells that touch the hole, the
  cells its mask-aware labels call fake); the AUC of real against each fill says whether it can tell
  them apart (0.5 = not at all).
- ``--train VARIANT ...``: a fresh PatchGAN (``rgb``: image only, as the model's; ``mask``: the mask
  as a fourth channel, real photos shown with the same mask; ``_bal`` suffix: hole cells and other
  cells weigh alike in the fake term) is trained *alone* on (real crop, classical fill) pairs from
  the training config's data, with the model's loss, augmentation and lazy R1, and its AUC on the
  development photos is printed every ``--every`` steps. The generator plays no part, so this
  measures how fast the discriminator could learn at all with the fakes the generator starts from.

The AUC is computed on held-out photos (``--data``, at ``--size`` with ``--protocol`` holes,
downscaled to the training crop size)::

    python -m inpaintgan.experiments.discriminator_probe --data /tmp/dev389 -n 96 \\
        --checkpoints runs/default_lama_fm10/checkpoints/step_00001400.pt
    python -m inpaintgan.experiments.discriminator_probe --data /tmp/dev389 -n 96 \\
        --train rgb mask_bal --pool 800 --steps 1500 --lr 1e-3 --every 250
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from inpaintgan.experiments.common import ReportError, load_folder_images, run_cli

PROG = "python -m inpaintgan.experiments.discriminator_probe"


def auc(real: torch.Tensor, fake: torch.Tensor) -> float:
    """P(score of a real image > score of a filled one), ties counted half (Mann-Whitney)."""
    d = real[:, None] - fake[None, :]
    return float(((d > 0).float() + 0.5 * (d == 0).float()).mean())


def hole_scores(discriminator, images: torch.Tensor, masks: torch.Tensor, mask_channel: bool = False) -> torch.Tensor:
    """(N,) mean logit over the cells touching each image's hole (images and masks in [0, 1])."""
    from inpaintgan.methods.lama import fake_patch_labels

    x = images * 2 - 1
    if mask_channel:
        x = torch.cat([x, masks * 2 - 1], 1)
    with torch.no_grad():
        logits, _ = discriminator(x)
    lab = fake_patch_labels(masks, logits.shape[-2:])
    return (logits * lab).sum((1, 2, 3)) / lab.sum((1, 2, 3)).clamp_min(1)


def print_row(row: dict) -> None:
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)


def classical_fill(kind: str, images: torch.Tensor, masks: torch.Tensor, cache: str | Path | None = None) -> torch.Tensor:
    """``kind``'s fills of a batch; with ``cache`` (an ``.npz``, PatchMatch or Telea only) each image's
    fill is kept there (checkpoint_realism's :class:`PrefillCache`) and read back on the next run."""
    from inpaintgan.baselines import get_baseline
    from inpaintgan.experiments.checkpoint_realism import PrefillCache

    cached = bool(cache) and kind in ("patchmatch", "telea")
    fill = PrefillCache(Path(cache), kind) if cached else get_baseline(kind)
    out = torch.cat([fill(images[i : i + 32], masks[i : i + 32]) for i in range(0, len(images), 32)])
    if cached:
        fill.save()
    return out


def dev_set(data: str, n: int, size: int, protocol: str, crop: int, fake: str, cache: str | Path | None = None):
    """(real, filled, masks) of the development photos at ``crop`` px."""
    from inpaintgan.eval.protocols import get_protocol

    x, _ = load_folder_images(data, n, size)
    m = get_protocol(protocol, 0).masks(range(len(x)), size, size).float()
    f = classical_fill(fake, x, m, cache)
    return [F.interpolate(t, size=(crop, crop), mode="area") for t in (x, f, m)]


def score_checkpoints(paths: list[str], dev, fake: str) -> list[dict]:
    from inpaintgan.checkpoints import load_any

    x, f, m = dev
    rows = []
    for ck in paths:
        if Path(ck).suffix == ".safetensors":
            raise ReportError(f"{ck}: a model file holds no discriminator; give a training checkpoint (.pt)")
        method, _ = load_any(Path(ck))
        method.eval()
        if not hasattr(method, "discriminator") or not hasattr(method, "generator_ema"):
            raise ReportError(f"{ck}: not a lama training checkpoint (its discriminator is needed)")
        with torch.no_grad():
            _, inp = method.network_input(x, m, f)
            net = method.composite(method.to_image(f, method.generator_ema(inp)).clamp(0, 1), x, m)
        s = {k: hole_scores(method.discriminator, v, m) for k, v in (("real", x), (fake, f), ("network", net))}
        row = {"checkpoint": ck, **{f"logit_{k}": float(v.mean()) for k, v in s.items()},
               f"auc_real_vs_{fake}": auc(s["real"], s[fake]), "auc_real_vs_network": auc(s["real"], s["network"])}  # fmt: skip
        print_row(row)
        rows.append(row)
    return rows


def training_pool(config: str, n: int, fake: str, seed: int = 3):
    """``n`` training samples (image, mask, classical fill composited) drawn as the trainer draws them."""
    from inpaintgan.config import build_run_config, yaml_load
    from inpaintgan.data.inpainting import build_datasets
    from inpaintgan.masks import build_mask_generator

    cfg = build_run_config(yaml_load(Path(config).read_text()))
    prefill = fake if fake in ("telea", "patchmatch") else "none"
    train, _ = build_datasets(cfg.data, build_mask_generator(cfg.masks), seed=seed, prefill=prefill)
    if len(train) < 1:
        raise ReportError(f"{config}: the training data is empty")
    items = [train[i % len(train)] for i in range(n)]
    x = torch.stack([it["image"] for it in items])
    m = torch.stack([it["mask"] for it in items])
    f = torch.stack([it["prefill"] for it in items]) if prefill != "none" else classical_fill(fake, x, m)
    return x, torch.where(m > 0.5, f, x), m


def train_probe(variant: str, pool, dev, steps: int, lr: float, every: int, width: int, layers: int,
                batch: int = 8, seed: int = 1) -> list[dict]:  # fmt: skip
    """Train a fresh PatchGAN alone on the pool's (real, fill) pairs; its dev AUC every ``every`` steps."""
    from inpaintgan.methods.lama import (
        AUGMENTS,
        LaMaConfig,
        PatchDiscriminator,
        diff_augment,
                fake_patch_labels,
        labelled_cell_losses,
        r1_penalty,
    )

    if variant not in ("rgb", "rgb_bal", "mask", "mask_bal"):
        raise ReportError(f"unknown variant {variant!r}; known: rgb, rgb_bal, mask, mask_bal")
    use_mask, balance = variant.startswith("mask"), variant.endswith("_bal")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    d = PatchDiscriminator(4 if use_mask else 3, width, layers)
    opt = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999))
    r1_gamma, r1_every = LaMaConfig.r1_gamma, LaMaConfig.r1_every  # the model's lazy R1
    x_all, f_all, m_all = pool
    xd, fd, md = dev
    rows, t0 = [], time.time()
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(x_all), (batch,), generator=g)
        (fa, ra), ma = diff_augment([f_all[idx] * 2 - 1, x_all[idx] * 2 - 1], m_all[idx], AUGMENTS, g)

        def disc(z, ma=ma):
            return d(torch.cat([z, ma * 2 - 1], 1) if use_mask else z)

        lr_, _ = disc(ra)
        lf, _ = disc(fa)
        lab = fake_patch_labels(ma, lf.shape[-2:])
        per_cell = labelled_cell_losses(lf, lab)
        if balance:
            w = lab / lab.sum().clamp_min(1) + (1 - lab) / (1 - lab).sum().clamp_min(1)
            loss_fake = (per_cell * w).sum() / 2
        else:
            loss_fake = per_cell.mean()
        loss = F.softplus(-lr_).mean() + loss_fake
        if step % r1_every == 0:
            loss = loss + r1_gamma / 2 * r1_every * r1_penalty(lambda r: disc(r)[0], ra)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % every == 0 or step == steps:
            a, b = hole_scores(d, xd, md, use_mask), hole_scores(d, fd, md, use_mask)
            row = {"variant": variant, "step": step, "loss": float(loss.detach()), "logit_real": float(a.mean()),
                   "logit_fill": float(b.mean()), "auc": auc(a, b), "seconds": round(time.time() - t0, 1)}  # fmt: skip
            print_row(row)
            rows.append(row)
    return rows


def parse(argv):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="development photos (held out from the choice being made)")
    p.add_argument("-n", type=int, default=96, help="development photos used (default 96)")
    p.add_argument("--size", type=int, default=256, help="evaluation size of the development photos")
    p.add_argument("--crop", type=int, default=128, help="size the discriminator sees (the training crop size)")
    p.add_argument("--protocol", default="thick")
    p.add_argument("--fake", default="patchmatch", help="classical fill: patchmatch, telea, ns or mean")
    p.add_argument("--fill-cache", metavar="NPZ",
                   help="keep the development photos' PatchMatch/Telea fills in this file and reuse them next run")
    p.add_argument("--checkpoints", nargs="*", default=[], help="lama training checkpoints whose discriminator to score")
    p.add_argument("--train", nargs="*", default=[], help="fresh discriminators to train alone: rgb, rgb_bal, mask, mask_bal")
    p.add_argument("--config", default="configs/default_lama.yaml", help="training config whose data the pool is drawn from")
    p.add_argument("--pool", type=int, default=800, help="training samples drawn once (their classical fills computed once)")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--d-width", type=int, default=64)
    p.add_argument("--d-layers", type=int, default=4)
    p.add_argument("--out", help="write the rows as JSON here")
    return p.parse_args(argv)


def run(a, argv=None) -> int:
    import json

    if not a.checkpoints and not a.train:
        raise ReportError("nothing to do: give --checkpoints and/or --train")
    dev = dev_set(a.data, a.n, a.size, a.protocol, a.crop, a.fake, a.fill_cache)
    rows = score_checkpoints(a.checkpoints, dev, a.fake)
    if a.train:
        pool = training_pool(a.config, a.pool, a.fake)
        for v in a.train:
            rows += train_probe(v, pool, dev, a.steps, a.lr, a.every, a.d_width, a.d_layers)
    if a.out:
        from inpaintgan.experiments.common import write_text

        write_text(Path(a.out), json.dumps(rows, indent=1) + "\n")
    return 0


def main(argv=None) -> int:
    return run_cli(PROG, parse, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
