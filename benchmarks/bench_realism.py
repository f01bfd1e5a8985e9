"""What FID / KID add to an evaluation: seconds of Inception-v3 features per 100 images, beside the
per-image pixel metrics and a fast model's own forward pass, in one run.

    python benchmarks/bench_realism.py                 # 256 px, 100 images, batch 16
    python benchmarks/bench_realism.py --size 512 -n 50

Random images (the cost does not depend on the content). Measured: ``InceptionFeatures`` (resize to
299, the TorchScript network) after one warm-up batch; ``metrics.compute_all`` (L1, L2, PSNR, SSIM,
TV); and the embedded ``smooth`` model's forward pass on the same batches, as a yardstick. The real
images' features are computed once per image set and cached, so a model added to an evaluation costs
one feature pass over its outputs. Results are printed as Markdown and appended to
``docs/benchmarks.md`` (``--output ''`` to skip). Not part of the tests.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from machine import machine_info  # benchmarks/machine.py (scripts run from benchmarks/)

ROOT = Path(__file__).resolve().parents[1]


def _seconds(fn, batches) -> float:
    fn(batches[0])  # warm-up (TorchScript profiles its first calls)
    t = time.perf_counter()
    for b in batches:
        fn(b)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("-n", type=int, default=100, help="images (default 100)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"), help="Markdown file to append to ('' = none)")
    args = p.parse_args(argv)
    from inpaintgan import metrics as M
    from inpaintgan.eval.realism import InceptionFeatures, RealismUnavailable
    from inpaintgan.inpainter import Inpainter

    try:
        net = InceptionFeatures(batch_size=args.batch_size)
    except RealismUnavailable as e:
        print(f"bench_realism: error: {e}", file=sys.stderr)
        return 2
    g = torch.Generator().manual_seed(0)
    batches = []
    for i in range(0, args.n, args.batch_size):
        k = min(args.batch_size, args.n - i)
        img = torch.rand(k, 3, args.size, args.size, generator=g)
        mask = torch.zeros(k, 1, args.size, args.size)
        mask[:, :, args.size // 4 : args.size // 2, args.size // 4 : args.size // 2] = 1
        batches.append((img, mask))
    smooth = Inpainter.from_pretrained("smooth", device="cpu").method
    per100 = 100 / args.n
    rows = [
        ("Inception-v3 features (FID/KID)", _seconds(lambda b: net(b[0]), batches) * per100),
        ("pixel metrics (L1, L2, PSNR, SSIM, TV)", _seconds(lambda b: M.compute_all(b[0], b[0], b[1]), batches) * per100),
    ]
    with torch.no_grad():
        rows.append(("`smooth` model forward (yardstick)", _seconds(lambda b: smooth.inpaint(b[0], b[1]), batches) * per100))
    info = machine_info("cpu")
    lines = [f"## realism metrics cost -- {info['date']} -- {info['cpu']}, {info['cores']} cores, cpu", "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items() if k != "date") + "  ",
             f"Command: `python benchmarks/bench_realism.py {' '.join(argv)}`".rstrip() + "  ",
             f"{args.n} random {args.size}x{args.size} images, batch {args.batch_size}, after one warm-up batch; "
             "seconds per 100 images. The real images' features are cached per image set (computed once).", "",
             "| step | s / 100 images |", "|---|---:|"]  # fmt: skip
    lines += [f"| {name} | {s:.1f} |" for name, s in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        with open(args.output, "a") as f:
            f.write("\n" + text)
        print(f"appended to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
