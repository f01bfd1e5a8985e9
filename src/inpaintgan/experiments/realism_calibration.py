"""Calibration of the realism metrics (FID, KID on the FID Inception network), recorded, not tuned:

1. **Disjoint halves**: FID / KID between two random halves of one photo folder (same distribution:
   FID is the small-sample bias at that N, KID should be about 0), and between CIFAR-10 train and test
   samples of equal size (``--cifar ROOT`` with ``train/`` and ``test/`` folders).
2. **Sanity ladder** on one photo folder with seeded holes (``--protocol``, LaMa's ``thick`` by
   default): ground truth (the composite is the photo: FID 0), PatchMatch, Telea, the truth
   Gaussian-blurred inside the hole, mean fill. FID and KID should rise along it.
3. **Self-KID**: the real set against itself, with independent subsets (StyleGAN2-ADA's estimator
   sits below 0: rows drawn into both subsets pair an image with itself) and paired (exactly 0).

    python -m inpaintgan.experiments.realism_calibration --halves ../shared/data/photos/train --halves-n 2000 \\
        --ladder ../shared/data/photos/val --cifar ../shared/data/cifar10 --cifar-n 5000 \\
        --out docs/eval/realism_calibration

Writes ``results.json`` (settings, machine, command, timings, every figure) and ``tables.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from inpaintgan.experiments.common import (
    ReportError,
    command_line,
    machine,
    portable_path,
    run_cli,
    write_text,
)

PROG = "python -m inpaintgan.experiments.realism_calibration"
LADDER = ("truth", "patchmatch", "telea", "blurred truth", "mean")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--halves", default=None, help="photo folder split into two random halves")
    p.add_argument("--halves-n", type=int, default=2000, help="images drawn from --halves (default 2000: 1000 per half)")
    p.add_argument("--ladder", default=None, help="photo folder for the sanity ladder (and self-KID)")
    p.add_argument("--ladder-n", type=int, default=0, help="first N images of --ladder (0 = all)")
    p.add_argument("--protocol", default="thick", help="mask protocol of the ladder (default: LaMa's thick)")
    p.add_argument("--blur-sigma", type=float, default=6.0, help="Gaussian sigma (px at --size) of 'blurred truth'")
    p.add_argument("--cifar", default=None, help="CIFAR-10 folder with train/ and test/ (image files)")
    p.add_argument("--cifar-n", type=int, default=5000, help="images per CIFAR-10 split (default 5000)")
    p.add_argument("--size", type=int, default=256, help="photo crop size (default 256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--out", required=True)
    return p


def _features(net, files: list[Path], size: int, batch_size: int) -> np.ndarray:
    from inpaintgan.data.folder import read_image_array
    from inpaintgan.eval.runner import prepare_image, to_tensor

    out = []
    for i in range(0, len(files), batch_size):
        arrs = [prepare_image(read_image_array(f), size) for f in files[i : i + batch_size]]
        out.append(net(torch.stack([to_tensor(a) for a in arrs])))
    return np.concatenate(out)


def _pair(net, a: list[Path], b: list[Path], size: int, bs: int) -> dict:
    from inpaintgan.eval.realism import set_scores

    t0 = time.time()
    fa, fb = _features(net, a, size, bs), _features(net, b, size, bs)
    return {**set_scores(fa, fb), "n": [len(a), len(b)], "seconds": round(time.time() - t0, 1)}


def blurred_truth(sigma: float):
    """A contender whose hole holds the ground truth blurred by a Gaussian of ``sigma`` px."""
    import cv2

    def fill(image, mask):
        k = int(2 * round(3 * sigma) + 1)
        arr = image.permute(0, 2, 3, 1).cpu().numpy()
        blur = np.stack([cv2.GaussianBlur(a, (k, k), sigma).reshape(a.shape) for a in arr])
        b = torch.from_numpy(blur).permute(0, 3, 1, 2).to(image)
        return torch.where(mask > 0.5, b, image)

    return fill


def run(args, argv: list[str]) -> dict:
    from inpaintgan.data.folder import list_images
    from inpaintgan.eval.realism import InceptionFeatures, RealismUnavailable, kid

    try:
        net = InceptionFeatures(batch_size=args.batch_size)
    except RealismUnavailable as e:
        raise ReportError(str(e)) from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    res: dict = {"settings": {"command": command_line(argv, PROG), "machine": machine(), "network": net.id,
                              "size": args.size, "seed": args.seed}}  # fmt: skip
    lines = ["# Realism metrics calibration", ""]
    if args.halves:
        files = list_images(args.halves)
        if len(files) < 4:
            raise ReportError(f"--halves {args.halves} holds fewer than 4 images")
        pick = rng.permutation(len(files))[: min(args.halves_n, len(files))]
        a, b = [files[i] for i in pick[: len(pick) // 2]], [files[i] for i in pick[len(pick) // 2 :]]
        res["halves"] = {"data": portable_path(args.halves), **_pair(net, a, b, args.size, args.batch_size)}
        h = res["halves"]
        lines += ["## Two disjoint halves of one photo folder", "",
                  f"{portable_path(args.halves)}, {h['n'][0]} vs {h['n'][1]} images at {args.size} px: "
                  f"FID {h['fid']:.2f}, KID x1000 {1000 * h['kid']:.2f} ± {1000 * h['kid_std']:.2f} ({h['seconds']} s)", ""]  # fmt: skip
    if args.cifar:
        root = Path(args.cifar)
        split = {}
        for s in ("train", "test"):
            files = list_images(root / s)
            if not files:
                raise ReportError(f"--cifar {root} has no images in {s}/")
            split[s] = [files[i] for i in rng.permutation(len(files))[: min(args.cifar_n, len(files))]]
        res["cifar"] = {"data": portable_path(args.cifar), **_pair(net, split["train"], split["test"], 0, args.batch_size)}
        c = res["cifar"]
        lines += ["## CIFAR-10 train vs test", "",
                  f"{c['n'][0]} train vs {c['n'][1]} test images (random, seeded; 32 px resized to 299): FID "
                  f"{c['fid']:.2f}, KID x1000 {1000 * c['kid']:.2f} ± {1000 * c['kid_std']:.2f} ({c['seconds']} s)", ""]  # fmt: skip
    if args.ladder:
        from inpaintgan.baselines import get_baseline
        from inpaintgan.eval.protocols import get_protocol
        from inpaintgan.eval.runner import Contender, EvalImages, Evaluation

        data = EvalImages(args.ladder, args.size, args.ladder_n)
        protocol = get_protocol(args.protocol, args.seed)
        fills = {"truth": lambda image, mask: image.clone(), "patchmatch": get_baseline("patchmatch"),
                 "telea": get_baseline("telea"), "blurred truth": blurred_truth(args.blur_sigma), "mean": get_baseline("mean")}  # fmt: skip
        ev = Evaluation(data, protocol, out / "ladder", batch_size=args.batch_size, realism=net)
        t0 = time.time()
        rows = ev.run([Contender(k, model=v, fingerprint=f"{k}:{args.blur_sigma}") for k, v in fills.items()], progress=False)
        scores = ev.realism_scores(rows, list(LADDER), progress=False)
        res["ladder"] = {"data": portable_path(args.ladder), "n": len(data), "protocol": args.protocol,
                         "blur_sigma": args.blur_sigma, "seconds": round(time.time() - t0, 1),
                         "scores": {k: scores[(k, "all")] for k in LADDER}}  # fmt: skip
        real = ev.real_features(progress=False)
        feats = np.stack([real[k] for k in sorted(real)])
        sk, ss = kid(feats, feats)
        pk, ps = kid(feats, feats, paired=True)
        res["self_kid"] = {"kid": sk, "kid_std": ss, "paired_kid": pk, "paired_kid_std": ps, "n": len(feats)}
        fids = [res["ladder"]["scores"][k]["fid"] for k in LADDER]
        kids = [res["ladder"]["scores"][k]["kid"] for k in LADDER]
        res["ladder"]["monotonic"] = {"fid": bool(np.all(np.diff(fids) > 0)), "kid": bool(np.all(np.diff(kids) > 0))}
        lines += [f"## Sanity ladder: {portable_path(args.ladder)}, {len(data)} photos at {args.size} px, `{args.protocol}` holes", "",
                  "| fill | FID | KID x1000 |", "|---|---:|---:|"]  # fmt: skip
        for k in LADDER:
            s = res["ladder"]["scores"][k]
            lines.append(f"| {k} | {s['fid']:.1f} | {1000 * s['kid']:.2f} ± {1000 * s['kid_std']:.2f} |")
        lines += ["", f"Monotonic: FID {res['ladder']['monotonic']['fid']}, KID {res['ladder']['monotonic']['kid']} "
                  f"({res['ladder']['seconds']} s)", "",
                  f"Self-KID x1000 of the {len(feats)} real photos: {1000 * sk:.3f} ± {1000 * ss:.3f} with independent "
                  f"subsets (StyleGAN2-ADA's form; below 0 because an image meets itself), {1000 * pk:.3f} ± "
                  f"{1000 * ps:.3f} paired (the evaluation's form)", ""]  # fmt: skip
    write_text(out / "tables.md", "\n".join(lines))
    write_text(out / "results.json", json.dumps(res, indent=2))
    print("\n".join(lines))
    return res


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, build_parser().parse_args, run, argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
