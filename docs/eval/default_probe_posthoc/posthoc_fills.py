"""Can a fixed change to PatchMatch's fill bring it closer to real photos? Two families, scored by the
eval harness on the development set (thick holes, 256 px), in the same folder as the checkpoint probe so
the real images' and PatchMatch's features are shared:

- ``band_SRC_sS``: PatchMatch's fill with its low frequencies replaced by those of ``SRC`` (``smooth``:
  the previous default, the best hole PSNR of all; ``truth``: the original photo, an oracle), i.e.
  ``pm + G_s * ((SRC - pm) * hole)`` with a Gaussian of sigma ``s`` px (the correction fades towards
  the hole's edge); ``bandn_...`` (``--band SRC:S:n``) divides it by ``G_s * hole``, the whole
  correction up to the edge. Asks whether a network that
  only corrects colour and shading (a "two-band" default: PatchMatch's texture, a learned low band)
  can gain realism.
- ``sharp_sS_kK``: an unsharp mask inside the hole, ``pm + k * (pm - G_s * pm)``. Asks whether
  PatchMatch's patch voting (an average of overlapping patches) leaves its texture too soft.

    python docs/eval/default_probe_posthoc/posthoc_fills.py --data /tmp/dev389 --out /tmp/probe_thick \\
        --band smooth:4 smooth:8 truth:4 truth:8 truth:4:n truth:8:n smooth:8:n --sharp 1:0.5 1:1 0.7:0.7
    inpaintgan compare /tmp/probe_thick --ref patchmatch --metric kid

(``--out`` may be a fresh folder; the PatchMatch fills are then computed once and cached there.)

``--dump N FILE`` writes the first N development photos, their holes and PatchMatch's fills (uint8) for
``xphoto_fills.py``, which runs OpenCV-contrib's exemplar methods (in a separate environment: the
contrib wheel replaces the project's ``cv2``) and draws the by-eye comparison.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from inpaintgan.baselines import resolve_model
from inpaintgan.eval.runner import Contender
from inpaintgan.experiments.checkpoint_realism import PrefillCache
from inpaintgan.experiments.common import folder_evaluation, overall_json, overall_scores


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = int(3 * sigma) * 2 + 1
    t = torch.arange(k, dtype=x.dtype) - k // 2
    g = torch.exp(-(t**2) / (2 * sigma * sigma))
    g = (g / g.sum()).to(x.device)
    c = x.shape[1]
    x = F.pad(x, (k // 2,) * 4, mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, k).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, k, 1).repeat(c, 1, 1, 1), groups=c)


class PosthocFill:
    """``(images, masks) -> composite``: PatchMatch's (cached) fill changed by ``kind``."""

    def __init__(self, cache: PrefillCache, kind: str, sigma: float, amount: float = 1.0, source=None):
        self.cache, self.kind, self.sigma, self.amount, self.source = cache, kind, sigma, amount, source

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        pm = images * (1 - masks) + self.cache(images, masks) * masks
        if self.kind in ("band", "bandn"):
            low = images if self.source is None else self.source(images, masks)
            y = pm + gaussian_blur((low - pm) * masks, self.sigma)
            if self.kind == "bandn":  # normalised inside the hole: the full correction up to its edge
                y = pm + (y - pm) / gaussian_blur(masks, self.sigma).clamp_min(1e-3)
        else:
            y = pm + self.amount * (pm - gaussian_blur(pm, self.sigma))
        return images * (1 - masks) + y.clamp(0, 1) * masks


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--protocol", default="thick")
    p.add_argument("--band", nargs="*", default=[], metavar="SRC:SIGMA", help="SRC: smooth or truth")
    p.add_argument("--sharp", nargs="*", default=[], metavar="SIGMA:AMOUNT")
    p.add_argument("--dump", nargs=2, metavar=("N", "FILE"))
    a = p.parse_args(argv)
    out = Path(a.out)
    ev = folder_evaluation(a.data, a.protocol, 256, 0, out)
    cache = PrefillCache(out / "prefill_patchmatch.npz", "patchmatch")
    if a.dump:
        import numpy as np

        from inpaintgan.eval.runner import load_batch

        idx = list(range(min(int(a.dump[0]), len(ev.data))))
        images, masks = load_batch(ev.data, ev.protocol, idx, "cpu")
        pm = images * (1 - masks) + cache(images, masks) * masks
        u8 = lambda t: (t * 255).round().byte().permute(0, 2, 3, 1).numpy()  # noqa: E731
        np.savez(a.dump[1], images=u8(images), masks=(masks[:, 0] > 0.5).numpy(), patchmatch=u8(pm))
        return 0
    smooth = resolve_model("smooth")
    cs = [Contender("patchmatch", model=resolve_model("patchmatch"), fingerprint="patchmatch")]
    for spec in a.band:  # SRC:SIGMA, or SRC:SIGMA:n for the correction normalised inside the hole
        src, s, *norm = spec.split(":")
        kind = "bandn" if norm == ["n"] else "band"
        cs.append(Contender(f"{kind}_{src}_s{float(s):g}", model=PosthocFill(cache, kind, float(s), source=None if src == "truth" else smooth),
                            fingerprint=f"{kind}:{src}:{float(s)}"))  # fmt: skip
    for spec in a.sharp:
        s, k = map(float, spec.split(":"))
        cs.append(Contender(f"sharp_s{s:g}_k{k:g}", model=PosthocFill(cache, "sharp", s, k), fingerprint=f"sharp:{s}:{k}"))
    rows = ev.run(cs)
    cache.save()
    print(overall_json(overall_scores(ev, rows, [c.label for c in cs])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
