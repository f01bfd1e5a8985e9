"""How much realism the classical pre-fill alone is worth: PatchMatch at several patch sizes (and
Telea for reference) scored by the eval harness (hole PSNR, FID, paired KID) on one protocol.

The default model refines a PatchMatch pre-fill, so the pre-fill's patch size is an ingredient to
measure, separately from what the network adds. Resumes like ``inpaintgan eval``: point ``--out`` at
(a copy of) an existing eval folder of the same protocol and only the new variants are computed::

    python -m inpaintgan.experiments.prefill_sweep --data ../shared/data/photos/val --protocol thick \
        --radii 2 3 4 5 --out /tmp/sweep_thick
"""

from __future__ import annotations

import argparse

import torch

from inpaintgan.experiments.common import folder_evaluation, overall_json, overall_scores


class _PatchMatchVariant:
    def __init__(self, radius: int):
        from inpaintgan.baselines import PatchMatchInpaint

        self.pm = PatchMatchInpaint(patch_radius=radius)

    def __call__(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return self.pm(images, masks)


def main(argv=None) -> int:
    from inpaintgan.eval.runner import Contender

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--protocol", default="thick")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("-n", type=int, default=0)
    p.add_argument("--radii", type=int, nargs="+", default=[2, 3, 4, 5])
    p.add_argument("--also", nargs="*", default=["patchmatch"],
                   help="labels already scored in --out to print beside the variants (default: patchmatch)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)

    ev = folder_evaluation(a.data, a.protocol, a.size, a.n, a.out)
    contenders = [Contender(f"pm_r{r}", model=_PatchMatchVariant(r), fingerprint=f"pm_r{r}") for r in a.radii]
    rows = ev.run(contenders)
    labels = [c.label for c in contenders] + [x for x in a.also if x not in {c.label for c in contenders}]
    rows = [r for r in rows if r["model"] in labels]
    print(overall_json(overall_scores(ev, rows, labels)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
