"""The research models a checkout holds (``docs/eval/*/models/*.safetensors``, and any folders in
``INPAINTGAN_MODEL_DIRS``), described from their metadata: what each is for (tasks), its working
size, file size, training data and the ``docs/results.md`` section that measures it.

They are not package data (a wheel has only the embedded zoo models); ``inpaintgan models --all``
lists them and ``fill --model PATH`` uses one. Task options (``--task harmonize``, ``--guide``,
``--attention-map``) name the ones that support them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: docs/results.md section of each experiment folder
SECTIONS = {
    "btgmi_photos128": "BTGMI: block-wise training, ALA, PPL, mask-aware PatchGAN; harmonization and guided inpainting (issue 8)",
    "btgmi_photos128_cpu": "BTGMI: interpolated convolution and L1 without PPL, at one CPU budget (issue 16)",
    "deepfill_photos128": "DeepFill v1 with and without contextual attention (issue 6)",
    "pconv_photos128": "Partial-convolution U-Net GAN and the report's ablations (issue 7)",
    "semantic_fmnist": "Semantic inpainting + collaborative sampling on Fashion-MNIST (issue 9)",
}


def model_dirs() -> list[Path]:
    dirs = []
    extra = os.environ.get("INPAINTGAN_MODEL_DIRS", "")
    dirs += [Path(d) for d in extra.split(os.pathsep) if d]
    docs = Path(__file__).resolve().parents[2] / "docs" / "eval"
    if docs.is_dir():
        dirs += sorted(p for p in docs.glob("*/models") if p.is_dir())
    return dirs


def tasks_of(meta: dict[str, Any]) -> list[str]:
    tasks = list(meta.get("tasks") or ["inpaint"])
    cfg = meta.get("config")
    if isinstance(cfg, str):
        import json

        try:
            cfg = json.loads(cfg)
        except ValueError:
            cfg = {}
    cfg = cfg if isinstance(cfg, dict) else {}
    model_cfg = cfg.get("model") if isinstance(cfg.get("model"), dict) else cfg  # a method config or a run config
    if meta.get("method") == "deepfill" and model_cfg.get("attention", True):
        tasks.append("attention-map")
    return tasks


def research_models() -> list[dict[str, Any]]:
    """One row per model file: name, path, method, tasks, image_size, channels, file_mb, data, steps, section."""
    from inpaintgan.checkpoints import read_metadata

    rows = []
    for d in model_dirs():
        for path in sorted(d.glob("*.safetensors")):
            try:
                meta = read_metadata(path)
            except Exception:  # noqa: BLE001 - an unreadable file is listed as such, not fatal
                rows.append(dict(name=path.stem, path=str(path), method="?", tasks=[], image_size=None, channels=None,
                                 file_mb=round(path.stat().st_size / 1e6, 1), data="?", steps=None, section=""))
                continue
            training = meta.get("training") or {}
            data = training.get("dataset") if training.get("dataset") not in (None, "folder") else training.get("data")
            rows.append(dict(
                name=path.stem, path=str(path), method=meta.get("method", "?"), tasks=tasks_of(meta),
                image_size=meta.get("image_size"), channels=meta.get("channels"),
                file_mb=round(path.stat().st_size / 1e6, 1), data=str(data or "?"), steps=training.get("steps"),
                section=SECTIONS.get(path.parent.parent.name, ""),
            ))
    return rows


def models_for(task: str) -> list[str]:
    """Paths of the research models that support ``task`` (harmonize, guided, attention-map)."""
    return [r["path"] for r in research_models() if task in r["tasks"]]


def suggestion(task: str, fallback: str) -> str:
    """``"; models that can: A, B"`` from this checkout, else ``fallback``."""
    paths = models_for(task)
    if not paths:
        return fallback
    shown = []
    for p in paths[:3]:
        try:
            rel = os.path.relpath(p)
        except ValueError:  # another drive
            rel = p
        shown.append(p if rel.startswith("..") else rel)
    return f"models that can: {', '.join(shown)}" + (f" (+{len(paths) - 3} more: inpaintgan models --all)" if len(paths) > 3 else "")


__all__ = ["research_models", "models_for", "suggestion", "model_dirs"]
