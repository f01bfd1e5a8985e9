"""The evaluation runner: every model on the same images and the same seeded holes, scored per image,
then tabulated per hole-ratio bucket (Markdown, CSV, JSON).

Per-image results are appended to ``per_image.csv`` in the output folder after every batch, so an
interrupted run loses at most one batch; a rerun with the same ``--out`` and settings skips the
(model, image) pairs already scored. Metrics are those of :mod:`inpaintgan.metrics`: the hole-only
and whole-image L1, L2, PSNR, SSIM, and total variation, plus LPIPS when its weights are present.
Methods follow the protocol of the papers: masks from :mod:`inpaintgan.eval.protocols`, images
centre-cropped to a square and resized to ``size``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from inpaintgan import metrics as M
from inpaintgan.data.folder import IMAGE_EXTS, list_images, read_image_array
from inpaintgan.eval.protocols import Protocol, bucket_label
from inpaintgan.tensors import to_uint8  # noqa: F401 - also importable from here, as before

PER_IMAGE_CSV = "per_image.csv"
SETTINGS_JSON = "settings.json"
CONTENDERS_JSON = "contenders.json"  # label -> fingerprint of what produced its rows
ALL = "all"


def prepare_image(arr: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W, C) -> centre square crop resized to (size, size, C); ``size`` 0 keeps it as is."""
    if size <= 0:
        return arr
    h, w = arr.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    arr = arr[y : y + s, x : x + s]
    if s != size:
        interp = cv2.INTER_AREA if s > size else cv2.INTER_CUBIC
        arr = cv2.resize(np.ascontiguousarray(arr), (size, size), interpolation=interp).reshape(size, size, -1)
    return arr


def to_tensor(arr: np.ndarray) -> Tensor:
    """uint8 (H, W, C) -> float (C, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float() / 255




class EvalImages:
    """The first ``n`` images under ``root`` (recursive, sorted), prepared at ``size``."""

    def __init__(self, root: str | Path, size: int, n: int = 0, grayscale: bool = False):
        self.root = Path(root)
        files = list_images(self.root)
        if not files:
            raise ValueError(f"data folder {self.root} holds no images ({', '.join(IMAGE_EXTS)})")
        self.files = files[:n] if n > 0 else files
        self.size, self.grayscale = size, grayscale

    def __len__(self) -> int:
        return len(self.files)

    def rel(self, i: int) -> str:
        return self.files[i].relative_to(self.root).as_posix()

    def native(self, i: int) -> np.ndarray:
        return read_image_array(self.files[i], self.grayscale)

    def load(self, i: int) -> np.ndarray:
        """Image ``i`` as prepared uint8 (H, W, C)."""
        return prepare_image(self.native(i), self.size)


class OutputsFolder:
    """Already-inpainted results of another tool: files named like the data images (same relative
    path; any image extension). Each result is brought to the evaluation size like the data image
    when it has the data image's native size; otherwise it must already have the evaluation size."""

    def __init__(self, root: str | Path, name: str | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise NotADirectoryError(f"outputs folder not found: {self.root}")
        self.name = name or self.root.name

    def find(self, rel: str) -> Path | None:
        p = self.root / rel
        if p.is_file():
            return p
        for ext in IMAGE_EXTS:
            q = p.with_suffix(ext)
            if q.is_file():
                return q
        return None

    def load(self, data: EvalImages, i: int, shape: tuple[int, ...]) -> np.ndarray:
        path = self.find(data.rel(i))
        if path is None:
            raise FileNotFoundError(f"outputs folder {self.root} has no result for {data.rel(i)}")
        arr = read_image_array(path, data.grayscale)
        if arr.shape[:2] == tuple(shape[:2]):
            return arr
        native = data.native(i)
        if arr.shape[:2] == native.shape[:2]:
            return prepare_image(arr, data.size)
        raise ValueError(
            f"{path} is {arr.shape[1]}x{arr.shape[0]}; expected the evaluation size {shape[1]}x{shape[0]} "
            f"or the data image's native size {native.shape[1]}x{native.shape[0]}"
        )

    def check_complete(self, data: EvalImages) -> None:
        missing = [data.rel(i) for i in range(len(data)) if self.find(data.rel(i)) is None]
        if missing:
            raise FileNotFoundError(
                f"outputs folder {self.root} lacks {len(missing)} of {len(data)} results "
                f"(e.g. {', '.join(missing[:3])}); file names must match the data images"
            )


@dataclass
class Contender:
    """One column of the comparison: a model callable, or a folder of finished outputs."""

    label: str
    model: Callable[[Tensor, Tensor], Tensor] | None = None
    outputs: OutputsFolder | None = None
    #: identifies what produced the outputs (e.g. the model file's SHA-256); a resumed run re-scores a
    #: label whose fingerprint changed instead of keeping the old model's rows under the same name
    fingerprint: str = ""

    def run(self, data: EvalImages, idx: list[int], images: Tensor, masks: Tensor) -> Tensor:
        if self.model is not None:
            out = self.model(images, masks)
            if not isinstance(out, Tensor):
                raise TypeError(f"model {self.label!r} returned {type(out).__name__}, expected a tensor")
            return out.to(images.device, images.dtype)
        shape = tuple(images.shape[2:])
        return torch.stack([to_tensor(self.outputs.load(data, i, shape)) for i in idx]).to(images.device)


@dataclass
class EvalSettings:
    """What makes two runs comparable (checked before resuming into the same ``--out``)."""

    data: str
    protocol: dict
    size: int
    n: int
    grayscale: bool
    metrics: list[str] = field(default_factory=list)


def batches(data: EvalImages, batch_size: int) -> Iterable[list[int]]:
    """Consecutive indices in groups of at most ``batch_size`` with equal prepared shapes."""
    cur: list[int] = []
    shape = None
    for i in range(len(data)):
        s = data.load(i).shape if data.size <= 0 else None
        if cur and (len(cur) >= batch_size or s != shape):
            yield cur
            cur = []
        cur.append(i)
        shape = s
    if cur:
        yield cur


def load_batch(data: EvalImages, protocol: Protocol, idx: list[int], device) -> tuple[Tensor, Tensor]:
    """(images (N, C, H, W), masks (N, 1, H, W)) for the given indices, on ``device``."""
    arrs = [data.load(i) for i in idx]
    h, w = arrs[0].shape[:2]
    images = torch.stack([to_tensor(a) for a in arrs]).to(device)
    masks = protocol.masks(idx, h, w).to(device)
    return images, masks


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class Evaluation:
    """Runs contenders over the images and keeps per-image rows in ``out/per_image.csv``."""

    def __init__(
        self,
        data: EvalImages,
        protocol: Protocol,
        out_dir: str | Path,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
        fresh: bool = False,
        lpips: torch.nn.Module | None = None,
        realism=None,
    ):
        self.data, self.protocol, self.device = data, protocol, torch.device(device)
        #: an :class:`inpaintgan.eval.realism.InceptionFeatures` (FID/KID on), or None
        self.realism = realism
        self.out = Path(out_dir)
        self.batch_size = max(1, batch_size)
        self.lpips = lpips
        self.metric_names = list(M.METRIC_NAMES) + (["lpips"] if lpips is not None else [])
        self.settings = EvalSettings(
            data=str(data.root), protocol=protocol.describe(), size=data.size, n=len(data),
            grayscale=data.grayscale, metrics=self.metric_names,
        )  # fmt: skip
        self.out.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.out / PER_IMAGE_CSV
        self._check_resume(fresh)
        self.columns = ["model", "index", "file", "hole_ratio", "bucket", *self.metric_names]
        self.features = FeatureStore(self.out / FEATURES_DIR, realism.id if realism is not None else "")
        if fresh:
            self.features.clear()

    def _check_resume(self, fresh: bool) -> None:
        spath = self.out / SETTINGS_JSON
        mine = json.loads(json.dumps(asdict(self.settings)))
        if spath.is_file() and self.csv_path.is_file() and not fresh:
            old = json.loads(spath.read_text())
            if old != mine:
                diff = sorted(k for k in mine if old.get(k) != mine[k])
                raise ValueError(
                    f"{self.out} holds results of a different evaluation (differs in: {', '.join(diff)}); "
                    "use another --out, or --fresh to discard them"
                )
        elif self.csv_path.exists():
            self.csv_path.unlink()
        spath.write_text(json.dumps(mine, indent=2))

    def done(self) -> set[tuple[str, str]]:
        return {(r["model"], r["file"]) for r in read_rows(self.csv_path)}

    def _drop_changed(self, contenders: list[Contender]) -> None:
        """Forget the rows of labels whose fingerprint differs from the one they were scored with
        (``contenders.json`` beside ``per_image.csv``): a retrained model under the same name must
        not inherit the old one's numbers. The CSV is rewritten atomically."""
        fpath = self.out / CONTENDERS_JSON
        old = json.loads(fpath.read_text()) if fpath.is_file() else {}
        rows = read_rows(self.csv_path) if self.csv_path.is_file() else []
        scored = {r["model"] for r in rows}
        # rows scored by another model, or by an unrecorded one (results written before fingerprints)
        stale = {c.label for c in contenders if c.label in scored and old.get(c.label) != c.fingerprint}
        for label in stale:
            self.features.drop(label)
        if stale:
            keep = [r for r in rows if r["model"] not in stale]
            tmp = self.csv_path.with_suffix(".csv.tmp")
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(keep)
            os.replace(tmp, self.csv_path)
            print(f"re-scoring {', '.join(sorted(stale))}: changed since the results in {self.out}", flush=True)
        new = {**old, **{c.label: c.fingerprint for c in contenders}}
        tmp = fpath.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(new, indent=2))
        os.replace(tmp, fpath)

    def score(self, out: Tensor, images: Tensor, masks: Tensor) -> dict[str, Tensor]:
        vals = M.compute_all(out, images, masks)
        if self.lpips is not None:
            with torch.no_grad():
                vals["lpips"] = self.lpips(out.to(self.device), images).detach().cpu()
        return vals

    def run(self, contenders: list[Contender], progress: bool = True) -> list[dict]:
        """Score every contender on every image not yet scored; returns all per-image rows."""
        from inpaintgan.progress import progress as progress_bar

        self._drop_changed(contenders)
        done = self.done()
        plan = list(batches(self.data, self.batch_size))
        new_file = not self.csv_path.is_file()
        with open(self.csv_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns)
            if new_file:
                writer.writeheader()
                f.flush()
            for c in contenders:
                feats = self.features.load(c.label) if self.realism is not None else None

                def pending(i, c=c, feats=feats):
                    rel = self.data.rel(i)
                    return (c.label, rel) not in done or (feats is not None and rel not in feats)

                todo = [[i for i in b if pending(i)] for b in plan]
                todo = [b for b in todo if b]
                n_todo = sum(len(b) for b in todo)
                bar = progress_bar(total=n_todo, desc=c.label, unit="img", quiet=not progress or n_todo == 0, leave=False)
                for idx in todo:
                    images, masks = load_batch(self.data, self.protocol, idx, self.device)
                    with torch.no_grad():
                        out = c.run(self.data, idx, images, masks)
                    if feats is not None:  # the composited outputs' Inception features, saved per batch
                        for i, vec in zip(idx, self.realism(out)):
                            feats[self.data.rel(i)] = vec
                        self.features.save(c.label, feats)
                    vals = self.score(out, images, masks)
                    ratios = masks.flatten(1).mean(1).cpu()
                    for k, i in enumerate(idx):
                        if (c.label, self.data.rel(i)) in done:
                            continue  # scored before; only its features were missing
                        r = float(ratios[k])
                        row = {"model": c.label, "index": i, "file": self.data.rel(i), "hole_ratio": f"{r:.6f}",
                               "bucket": self.protocol.bucket(r)}  # fmt: skip
                        row.update({m: f"{float(vals[m][k]):.6g}" for m in self.metric_names})
                        writer.writerow(row)
                    f.flush()  # an interrupt loses at most the batch in flight
                    bar.update(len(idx))
                bar.close()
        return read_rows(self.csv_path)

    def real_features(self, progress: bool = True) -> dict[str, np.ndarray]:
        """Inception features of the prepared ground-truth images (every image of the set), from the
        eval folder's cache, else the user cache (keyed by the images, size and network), else computed."""
        from inpaintgan.progress import progress as progress_bar

        have = self.features.load(REAL)
        missing = [i for i in range(len(self.data)) if self.data.rel(i) not in have]
        if missing:
            key = real_set_key(self.data, self.realism.id)
            shared = FeatureStore(user_feature_cache(), self.realism.id)
            have.update({k: v for k, v in shared.load(key).items() if k not in have})
            missing = [i for i in range(len(self.data)) if self.data.rel(i) not in have]
            bar = progress_bar(total=len(missing), desc="real images", unit="img", quiet=not progress or not missing, leave=False)
            for start in range(0, len(missing), self.batch_size):
                idx = missing[start : start + self.batch_size]
                arrs = {i: self.data.load(i) for i in idx}
                for shape in {a.shape for a in arrs.values()}:  # native sizes may differ within a batch
                    g = [i for i in idx if arrs[i].shape == shape]
                    images = torch.stack([to_tensor(arrs[i]) for i in g])
                    for i, vec in zip(g, self.realism(images)):
                        have[self.data.rel(i)] = vec
                bar.update(len(idx))
            bar.close()
            self.features.save(REAL, have)
            try:
                shared.save(key, have)
            except OSError:  # pragma: no cover - a read-only cache only costs the next run its time
                pass
        return have

    def realism_scores(self, rows: list[dict], labels: list[str], progress: bool = True) -> dict[tuple[str, str], dict]:
        """FID, KID (mean, std) per (model, bucket) and per (model, ``all``): each model's composited
        outputs against the real images of the same files."""
        from inpaintgan.eval.realism import set_scores

        real = self.real_features(progress)
        out = {}
        for label in labels:
            fake = self.features.load(label)
            mine = [r for r in rows if r["model"] == label and r["file"] in fake and r["file"] in real]
            groups = {ALL: mine}
            for r in mine:
                groups.setdefault(r["bucket"], []).append(r)
            for bucket, sel in groups.items():
                files = [r["file"] for r in sel]
                out[(label, bucket)] = set_scores(np.stack([real[f] for f in files]) if files else np.zeros((0, 1)),
                                                  np.stack([fake[f] for f in files]) if files else np.zeros((0, 1)),
                                                  paired=True)  # fmt: skip
        return out


# ------------------------------------------------------------------------------------ feature cache

FEATURES_DIR = "features"
REAL = "real images"
SET_METRICS = ("fid", "kid", "kid_std")


def user_feature_cache() -> Path:
    from inpaintgan.download import cache_dir

    return Path(cache_dir()) / "fid_features"


def real_set_key(data: EvalImages, network_id: str) -> str:
    """Identifies a real image set as prepared for one feature network: the files (relative path,
    size, modification time), the evaluation size, grayscale and the network."""
    import hashlib

    h = hashlib.sha256(f"{network_id}|{data.size}|{data.grayscale}|{data.root.resolve()}".encode())
    for f in data.files:
        st = f.stat()
        h.update(f"{f.relative_to(data.root).as_posix()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return "real-" + h.hexdigest()[:24]


class FeatureStore:
    """Per-label Inception features in ``<folder>/<slug>.npz`` (file names + (N, D) float32), written
    atomically; each file records the network id and is ignored when it differs."""

    def __init__(self, folder: Path, network_id: str):
        self.folder, self.network_id = Path(folder), network_id

    def path(self, label: str) -> Path:
        import hashlib
        import re

        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:40]
        return self.folder / f"{slug}-{hashlib.sha1(label.encode()).hexdigest()[:8]}.npz"

    def load(self, label: str) -> dict[str, np.ndarray]:
        p = self.path(label)
        if not p.is_file():
            return {}
        try:
            with np.load(p, allow_pickle=False) as z:
                if str(z["network"]) != self.network_id or str(z["label"]) != label:
                    return {}
                return {str(f): v.astype(np.float64) for f, v in zip(z["files"], z["features"])}
        except (OSError, ValueError, KeyError):
            return {}  # a damaged cache file is recomputed

    def save(self, label: str, feats: dict[str, np.ndarray]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        files = sorted(feats)
        arr = np.stack([feats[f] for f in files]).astype(np.float32) if files else np.zeros((0, 0), np.float32)
        p = self.path(label)
        tmp = p.with_name(p.name + ".tmp.npz")
        np.savez(tmp, files=np.array(files, dtype=str), features=arr, network=np.array(self.network_id),
                 label=np.array(label))  # fmt: skip
        os.replace(tmp, p)

    def drop(self, label: str) -> None:
        self.path(label).unlink(missing_ok=True)

    def clear(self) -> None:
        if self.folder.is_dir():
            for p in self.folder.glob("*.npz"):
                p.unlink()


# ------------------------------------------------------------------------------------ aggregation


def summarize(rows: list[dict], labels: list[str], buckets: list[str], metric_names: list[str],
              set_scores: dict[tuple[str, str], dict] | None = None) -> list[dict]:
    """Mean of each metric per (model, bucket), plus an ``all`` row per model, with image counts.

    Rows come in the order of ``labels`` then ``buckets`` (empty buckets left out, unknown buckets
    such as ``other`` appended)."""
    table = []
    for label in labels:
        mine = [r for r in rows if r["model"] == label]
        present = list(dict.fromkeys(r["bucket"] for r in mine))
        order = [b for b in buckets if b in present] + [b for b in present if b not in buckets]
        for b in [*order, ALL]:
            sel = mine if b == ALL else [r for r in mine if r["bucket"] == b]
            if not sel:
                continue
            entry = {"model": label, "bucket": b, "count": len(sel),
                     "hole_ratio": float(np.mean([float(r["hole_ratio"]) for r in sel]))}  # fmt: skip
            for m in metric_names:
                vals = [float(r[m]) for r in sel if r.get(m) not in (None, "")]
                entry[m] = float(np.mean(vals)) if vals else math.nan
            if set_scores is not None:
                entry.update(set_scores.get((label, b), dict.fromkeys(SET_METRICS, math.nan)))
            table.append(entry)
    return table


def format_markdown(table: list[dict], metric_names: list[str]) -> str:
    """The summary as a Markdown table (arrows mark the better direction of each metric)."""
    from inpaintgan.tables import md_head, md_row


    def head(m: str) -> str:
        base = m.removesuffix("_hole")
        arrow = "↑" if M.HIGHER_IS_BETTER.get(base, False) else "↓"
        return f"{m} {arrow}"

    realism = bool(table) and "kid" in table[0]
    cols = ["model", "bucket", "n", *[head(m) for m in metric_names]] + (["FID ↓", "KID×1000 ↓"] if realism else [])
    lines = md_head(cols)
    for e in table:
        cells = [e["model"], e["bucket"], str(e["count"])]
        for m in metric_names:
            v = e[m]
            cells.append("n/a" if math.isnan(v) else f"{v:.2f}" if m.startswith("psnr") else f"{v:.4f}")
        if realism:
            f, k, ks = e["fid"], e["kid"], e["kid_std"]
            cells.append("n/a" if math.isnan(f) else f"{f:.1f}")
            cells.append("n/a" if math.isnan(k) else f"{1000 * k:.1f} ± {1000 * ks:.1f}")
        lines.append(md_row(cells))
    return "\n".join(lines)


def write_tables(table: list[dict], out_dir: Path, metric_names: list[str], extra: dict) -> tuple[Path, Path]:
    """``results.csv`` and ``results.json`` (the JSON also holds ``extra``: settings, unavailable
    metrics and why)."""
    csv_path, json_path = out_dir / "results.csv", out_dir / "results.json"
    with open(csv_path, "w", newline="") as f:
        extra_cols = list(SET_METRICS) if table and "kid" in table[0] else []
        w = csv.DictWriter(f, fieldnames=["model", "bucket", "count", "hole_ratio", *metric_names, *extra_cols])
        w.writeheader()
        for e in table:
            w.writerow({k: e[k] for k in w.fieldnames})
    clean = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in e.items()} for e in table]
    json_path.write_text(json.dumps({**extra, "results": clean}, indent=2))
    return csv_path, json_path


def bucket_order(protocol: Protocol) -> list[str]:
    return [bucket_label(b) for b in protocol.buckets]
