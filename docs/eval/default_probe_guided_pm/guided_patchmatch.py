"""Network-guided PatchMatch, tried in session 9 (issue 21) and dropped: PatchMatch (pypatchmatch's
``inpaint_regularity``) with a guide map in its patch distance, the guide being a fill's Y and Cr
channels (Gaussian sigma 2), from Telea's fill or from a default-model checkpoint's fill; the idea
(Yang et al. 2017; Zeng et al. 2020's guided upsampling) is real patches laid out by the network.
Scored with the eval harness on the development set, thick holes, 256 px, beside PatchMatch and the
checkpoint itself::

    python docs/eval/default_probe_guided_pm/guided_patchmatch.py \\
        runs/default_lama_fm10/checkpoints/step_00001400.pt --data /tmp/dev389 --out /tmp/probe_guided

(copy ``prefill_patchmatch.npz`` from the checkpoint probe's folder into ``--out`` to skip the
pre-fills). About 25 minutes on the 2-core CPU.
"""

import argparse
from pathlib import Path

import cv2
import numpy as np
import patchmatch
import torch

from inpaintgan.baselines import resolve_model
from inpaintgan.checkpoints import load_any
from inpaintgan.eval.runner import Contender
from inpaintgan.experiments.checkpoint_realism import CachedPrefillModel, PrefillCache
from inpaintgan.experiments.common import folder_evaluation, overall_json, overall_scores
from inpaintgan.tensors import to_uint8


class GuidedPatchMatch:
    """PatchMatch guided by ``guide``'s fill (Y and Cr of YCrCb, blurred), weight ``w``."""

    def __init__(self, guide, w: float, sigma: float = 2.0):
        self.guide, self.w, self.sigma = guide, w, sigma

    @torch.no_grad()
    def __call__(self, images, masks):
        outs = []
        for img, m, g in zip(images, masks, self.guide(images, masks)):
            ycc = cv2.cvtColor(np.ascontiguousarray(to_uint8(g)), cv2.COLOR_RGB2YCrCb).astype(np.float32)
            ycc = cv2.GaussianBlur(ycc, (0, 0), self.sigma)
            ij = np.zeros_like(ycc)
            ij[..., :2] = ycc[..., :2]
            patchmatch.set_random_seed(0)
            hole = (m[0] > 0.5).cpu().numpy().astype(np.uint8) * 255
            o = patchmatch.inpaint_regularity(np.ascontiguousarray(to_uint8(img)), hole, ij, patch_size=3, guide_weight=self.w)
            outs.append(torch.from_numpy(np.asarray(o)).permute(2, 0, 1).float() / 255)
        return torch.where(masks > 0.5, torch.stack(outs).to(images.device), images)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("-n", type=int, default=0)
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    ev = folder_evaluation(a.data, "thick", 256, a.n, out)
    method, _ = load_any(Path(a.checkpoint))
    net = CachedPrefillModel(method, PrefillCache(out / "prefill_patchmatch.npz", "patchmatch"))
    telea = resolve_model("telea")
    cs = [Contender("patchmatch", model=resolve_model("patchmatch"), fingerprint="patchmatch"),
          Contender("s1400", model=net, fingerprint="fm10s1400"),
          Contender("pmg_telea_w1", model=GuidedPatchMatch(telea, 1.0), fingerprint="g_telea_1"),
          Contender("pmg_net_w1", model=GuidedPatchMatch(net, 1.0), fingerprint="g_net_1"),
          Contender("pmg_net_w4", model=GuidedPatchMatch(net, 4.0), fingerprint="g_net_4")]  # fmt: skip
    rows = ev.run(cs)
    overall = overall_scores(ev, rows, [c.label for c in cs])
    (out / "overall.json").write_text(overall_json(overall))


if __name__ == "__main__":
    main()
