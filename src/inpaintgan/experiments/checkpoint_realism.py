"""Realism of a pre-filling model's checkpoints, cheaply: FID and paired KID of each checkpoint's fills
against PatchMatch's on one image set and protocol, with the classical pre-fill computed once.

Choosing a checkpoint or a training ingredient by realism needs many evaluations of the same model
family on the same holes. For a model that refines a classical pre-fill (``lama`` with ``prefill:
patchmatch``) the pre-fill is most of an evaluation's cost (about 0.6 s per 256-px photo for
PatchMatch, against about 0.05 s for the network), so it is computed once per image and hole and kept
in ``--out`` (``prefill_<kind>.npz``, exact: the classical fills are uint8). Each checkpoint is then a
network pass plus its Inception features. The scoring is the eval harness's (the same rows, caches and
tables as ``inpaintgan eval``), so ``inpaintgan compare OUT --ref patchmatch --metric kid`` gives the
paired bootstrap interval of each checkpoint against PatchMatch.

``--alpha`` scales the learned correction (``pre + alpha * correction``; 1 = the model as trained,
0 = the pre-fill alone), to measure what the correction is worth along its own direction;
``--lowpass F`` keeps only its low frequencies (averaged over FxF cells, bilinearly upsampled): what
the correction's colour and shading are worth apart from the texture it adds or removes; ``--gate M``
lets the checkpoint's own discriminator choose, per image, the pre-fill alone or the model's fill
(``M``: a margin in logits in the pre-fill's favour), to see whether the discriminator knows when the
correction helps.

Choose with a *development* set, not the validation photos that the results report uses (e.g. a few
hundred training photos: the model saw them only as random crops under random masks)::

    python -m inpaintgan.experiments.checkpoint_realism runs/default_lama/checkpoints/step_00001000.pt \\
        --data /tmp/dev389 --protocol thick --out /tmp/probe_thick
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from inpaintgan.experiments.common import folder_evaluation, overall_json, overall_scores, portable_path
from inpaintgan.tensors import quantize_uint8


class PrefillCache:
    """Classical pre-fills keyed by the bytes of (image, mask), saved to one ``.npz`` (uint8)."""

    def __init__(self, path: Path, kind: str):
        from inpaintgan.postprocess import fill_hole

        self.path, self.kind, self._fill = Path(path), kind, fill_hole
        self.store: dict[str, np.ndarray] = {}
        if self.path.is_file():
            with np.load(self.path) as z:
                self.store = {k: z[k] for k in z.files}
        self.new = 0  # entries computed since the last save

    @staticmethod
    def key(image: torch.Tensor, mask: torch.Tensor) -> str:
        h = hashlib.sha1(image.detach().cpu().numpy().tobytes())
        h.update(mask.detach().cpu().numpy().tobytes())
        return h.hexdigest()

    def __call__(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        out = []
        for img, m in zip(images, masks):
            k = self.key(img, m)
            if k not in self.store:
                pre = self._fill(img[None], m[None], self.kind, 0.0)[0]
                q = quantize_uint8(pre)
                if not torch.allclose(q.float() / 255, pre, atol=1e-6):
                    raise ValueError(f"the {self.kind} pre-fill is not on the uint8 grid; it cannot be cached exactly")
                self.store[k] = q.cpu().numpy()
                self.new += 1
            out.append(torch.from_numpy(self.store[k]).float() / 255)
        return torch.stack(out).to(images.device)

    def save(self, every: int = 1) -> None:
        """Write the cache when at least ``every`` entries are new (the probe saves every 64 during a
        run, so a killed run loses little, and once at its end)."""
        if self.new >= max(1, every):
            from inpaintgan.checkpoints import atomic_write

            def write(tmp) -> None:
                with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to the temp name
                    np.savez(f, **self.store)

            atomic_write(self.path, write)
            self.new = 0


class CachedPrefillModel:
    """``(images, masks) -> composite`` of a pre-filling method, the pre-fill taken from the cache and
    the correction scaled by ``alpha``."""

    def __init__(self, method, cache: PrefillCache, alpha: float = 1.0, lowpass: int = 1):
        if not getattr(method.cfg, "residual", False):
            raise ValueError("the checkpoint's model does not refine a pre-fill (model.residual is false)")
        self.method, self.cache, self.alpha, self.lowpass = method.eval(), cache, float(alpha), int(lowpass)

    def __call__(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return self.fills(images, masks)[1]

    @torch.no_grad()
    def fills(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the pre-fill composited, the model's fill composited)."""
        m = self.method
        pre = self.cache(images, masks)
        _, x = m.network_input(images, masks, pre)
        y = m.generator_ema(x)
        if self.lowpass > 1:  # keep only the correction's low frequencies (colour / shading), not its texture
            h, w = y.shape[-2:]
            y = F.interpolate(F.adaptive_avg_pool2d(y, (max(1, h // self.lowpass), max(1, w // self.lowpass))),
                              size=(h, w), mode="bilinear", align_corners=False)  # fmt: skip
        pred = m.to_image(pre, self.alpha * y).clamp(0, 1)
        self.cache.save(every=64)
        return m.composite(pre, images, masks), m.composite(pred, images, masks)


class DiscriminatorGate:
    """``(images, masks) -> composite``: per image, the pre-fill alone or the model's fill, whichever the
    checkpoint's own discriminator finds more real (mean logit over the cells that touch the hole, the
    cells its mask-aware training labels fake): discriminator-driven selection in the spirit of
    discriminator rejection sampling (Azadi et al. 2019), at the cost of two discriminator passes.
    ``margin`` (in logits) biases the choice towards the pre-fill; ``chosen`` counts the model's wins."""

    def __init__(self, method, cache: PrefillCache, margin: float = 0.0):
        self.inner = CachedPrefillModel(method, cache)
        self.method, self.margin = self.inner.method, float(margin)
        self.chosen, self.seen = 0, 0

    def d_score(self, comp: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        from inpaintgan.experiments.discriminator_probe import hole_scores

        return hole_scores(self.method.discriminator, comp, masks)  # D's input range: comp * 2 - 1, as d_input

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        pre, net = self.inner.fills(images, masks)
        use = self.d_score(net, masks) > self.d_score(pre, masks) + self.margin
        self.chosen += int(use.sum())
        self.seen += len(use)
        return torch.where(use[:, None, None, None], net, pre)


def _label(path: Path, alpha: float, lowpass: int = 1, gate: float | None = None) -> str:
    stem = path.stem.replace("step_", "s").lstrip("0")
    return (stem + ("" if alpha == 1.0 else f"_a{alpha:g}") + ("" if lowpass <= 1 else f"_lp{lowpass}")
            + ("" if gate is None else f"_gate{gate:g}"))  # fmt: skip


def main(argv=None) -> int:
    from inpaintgan.baselines import resolve_model
    from inpaintgan.checkpoints import load_any
    from inpaintgan.eval.runner import Contender

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", help="trainer checkpoints (.pt) or model files of a pre-filling model")
    p.add_argument("--data", required=True, help="image folder (a development set, not the report's validation set)")
    p.add_argument("--protocol", default="thick")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("-n", type=int, default=0, help="first n images only (0 = all)")
    p.add_argument("--alpha", type=float, nargs="*", default=[1.0], help="scales of the learned correction (none: only --gate)")
    p.add_argument("--lowpass", type=int, nargs="+", default=[1],
                   help="keep only the correction's low frequencies: average over FxF cells, upsampled (1 = as trained)")
    p.add_argument("--gate", type=float, nargs="*", default=[],
                   help="also score, per margin given, the per-image choice between the pre-fill and the model's fill by "
                        "the checkpoint's discriminator (needs a trainer checkpoint)")
    p.add_argument("--baselines", nargs="*", default=["patchmatch"], help="classical fills scored beside them")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    ev = folder_evaluation(a.data, a.protocol, a.size, a.n, out)
    contenders = [Contender(b, model=resolve_model(b), fingerprint=b) for b in a.baselines]
    caches: dict[str, PrefillCache] = {}
    gates: list[DiscriminatorGate] = []
    for ck in map(Path, a.checkpoints):
        method, _meta = load_any(ck)
        kind = method.cfg.prefill
        cache = caches.setdefault(kind, PrefillCache(out / f"prefill_{kind}.npz", kind))
        fp = f"{portable_path(ck)}:{ck.stat().st_size}:{ck.stat().st_mtime_ns}"  # no machine paths in the folder
        for alpha in a.alpha:
            for lp in a.lowpass:
                contenders.append(Contender(_label(ck, alpha, lp), model=CachedPrefillModel(method, cache, alpha, lp),
                                            fingerprint=f"{fp}:{alpha}:{lp}"))  # fmt: skip
        for margin in a.gate:
            gates.append(DiscriminatorGate(method, cache, margin))
            contenders.append(Contender(_label(ck, 1.0, 1, margin), model=gates[-1], fingerprint=f"{fp}:gate:{margin}"))
    rows = ev.run(contenders)
    for g in gates:
        print(f"gate margin {g.margin:g}: the model's fill chosen for {g.chosen} of {g.seen} images")
    for cache in caches.values():
        cache.save()
    overall = overall_scores(ev, rows, [c.label for c in contenders])
    (out / "overall.json").write_text(overall_json(overall))
    print(overall_json(overall))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
