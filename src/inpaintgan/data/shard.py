"""Pack a random sample of a photo folder into one zip of JPEG crops: the data a lent GPU machine is
sent (its transfer is limited, e.g. 64 MiB with the checkpoint). A different ``--seed`` per session
sends different photos.

    python -m inpaintgan.data.shard ../shared/data/photos/train -o gpu_pack/shard.zip --size 256 \\
        --quality 85 --max-mb 56 --seed 3

Each photo's short side is resized to ``--size`` (Lanczos; never enlarged), centre-cropped to a
square and written as JPEG ``--quality``; photos are added in a seeded random order until the zip
would exceed ``--max-mb``. The zip is written atomically; unreadable files are skipped and counted.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def pack(src: str | Path, out: str | Path, size: int = 256, quality: int = 85, max_mb: float = 56.0,
         seed: int = 0) -> dict:  # fmt: skip
    from inpaintgan.checkpoints import atomic_write
    from inpaintgan.data.folder import list_images

    files = list_images(Path(src))
    if not files:
        raise ValueError(f"no images in {src}")
    if size < 16 or not 1 <= quality <= 100 or max_mb <= 0:
        raise ValueError("need --size >= 16, 1 <= --quality <= 100 and --max-mb > 0")
    order = np.random.default_rng(seed).permutation(len(files))
    budget = int(max_mb * 1024 * 1024)
    stats = {"written": 0, "skipped": 0, "bytes": 0}

    def write(tmp):
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
            for i in order:
                try:
                    with Image.open(files[i]) as im:
                        im = im.convert("RGB")
                        s = min(im.size)
                        if s > size:
                            im = im.resize((round(im.width * size / s), round(im.height * size / s)), Image.LANCZOS)
                        c = min(im.size)
                        x, y = (im.width - c) // 2, (im.height - c) // 2
                        im = im.crop((x, y, x + c, y + c))
                        buf = io.BytesIO()
                        im.save(buf, "JPEG", quality=quality)
                except (OSError, ValueError):
                    stats["skipped"] += 1
                    continue
                data = buf.getvalue()
                if stats["bytes"] + len(data) + 200 > budget:
                    break
                z.writestr(f"{stats['written']:05d}_{files[i].stem}.jpg", data)
                stats["written"] += 1
                stats["bytes"] += len(data) + 200

    atomic_write(Path(out), write)
    return {**stats, "available": len(files), "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m inpaintgan.data.shard", description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="photo folder (searched recursively)")
    p.add_argument("-o", "--output", required=True, help="zip file to write")
    p.add_argument("--size", type=int, default=256, help="short side and crop (default 256)")
    p.add_argument("--quality", type=int, default=85, help="JPEG quality (default 85)")
    p.add_argument("--max-mb", type=float, default=56.0, help="size limit of the zip in MiB (default 56)")
    p.add_argument("--seed", type=int, default=0, help="which photos (a different seed per session)")
    args = p.parse_args(argv)
    try:
        r = pack(args.src, args.output, args.size, args.quality, args.max_mb, args.seed)
    except (ValueError, OSError) as e:
        print(f"shard: error: {e}", file=sys.stderr)
        return 2
    print(f"packed {r['written']} of {r['available']} photos ({r['bytes'] / 2**20:.1f} MiB, {r['skipped']} unreadable) into {r['out']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
