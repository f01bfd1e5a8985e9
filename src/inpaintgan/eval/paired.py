"""Paired comparison of models scored by ``inpaintgan eval``: per image, the difference of a metric
between each model and a reference model on the same image and the same hole; the mean difference
with its 95% confidence interval (Student's t over the paired differences: t(0.975, n-1) standard
errors; 1.96 for large n) and how often each model beats the reference. Two models whose interval contains 0
are not told apart by this test set; a table of means alone cannot say that."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

_NOT_METRICS = {"model", "index", "file", "bucket", "hole_ratio"}


def lower_is_better(metric: str) -> bool:
    """From :data:`inpaintgan.metrics.HIGHER_IS_BETTER` (``l2_hole`` -> ``l2``); unknown columns: higher."""
    from inpaintgan.metrics import HIGHER_IS_BETTER

    return not HIGHER_IS_BETTER.get(metric.removesuffix("_hole"), True)


def t_quantile(df: int, q: float = 0.975) -> float:
    """Student's t quantile (scipy, a dependency of scikit-image); 1.96 for large samples."""
    from scipy import stats

    return float(stats.t.ppf(q, df))


def read_per_image(folder: str | Path) -> list[dict[str, str]]:
    path = Path(folder)
    csv_path = path / "per_image.csv" if path.is_dir() else path
    if not csv_path.is_file():
        raise FileNotFoundError(f"no per_image.csv in {folder} (run `inpaintgan eval --out {folder}` first)")
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{csv_path} holds no rows")
    return rows


def paired_differences(rows: list[dict[str, str]], ref: str, metric: str) -> list[dict]:
    """One entry per model other than ``ref``: n, mean difference (model - ref), its 95% CI half-width,
    the fraction of images where the model is better / worse, and whether the interval excludes 0."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    if ref not in models:
        raise ValueError(f"unknown reference model {ref!r}; models in the table: {', '.join(models)}")
    metrics = [k for k in rows[0] if k not in _NOT_METRICS]
    if metric not in metrics:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(metrics)}")
    values: dict[str, dict[str, float]] = {}
    for r in rows:
        v = r.get(metric, "")
        if v not in ("", None):
            values.setdefault(r["model"], {})[r["file"]] = float(v)
    base = values.get(ref, {})
    sign = -1.0 if lower_is_better(metric) else 1.0
    out = []
    for m in models:
        if m == ref:
            continue
        keys = sorted(set(values.get(m, {})) & set(base))
        d = np.array([values[m][k] - base[k] for k in keys], dtype=np.float64)
        d = d[np.isfinite(d)]
        n = len(d)
        mean = float(d.mean()) if n else math.nan
        half = float(t_quantile(n - 1) * d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        better = float((sign * d > 0).mean()) if n else math.nan
        worse = float((sign * d < 0).mean()) if n else math.nan
        out.append({"model": m, "n": n, "mean_diff": mean, "ci95": half, "better": better, "worse": worse,
                    "significant": bool(n > 1 and abs(mean) > half)})  # fmt: skip
    return out


def format_paired(entries: list[dict], ref: str, metric: str) -> str:
    arrow = "lower is better" if lower_is_better(metric) else "higher is better"
    lines = [f"Paired differences in {metric} ({arrow}) against {ref}, per image on the same holes:", "",
             f"| model | n | mean - {ref} | 95% CI | better on | worse on | told apart? |",
             "|---|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for e in entries:
        lines.append(f"| {e['model']} | {e['n']} | {e['mean_diff']:+.3g} | ±{e['ci95']:.2g} | {e['better']:.0%} | "
                     f"{e['worse']:.0%} | {'yes' if e['significant'] else 'no'} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def paired_kid(folder: str | Path, ref: str, n_boot: int = 200, seed: int = 0) -> list[dict]:
    """KID difference (model - ``ref``) per model on the images both were scored on, from an eval
    folder's saved Inception features, with a 95% paired bootstrap interval over images
    (:func:`inpaintgan.eval.realism.kid_difference_bootstrap`)."""
    import json

    from inpaintgan.eval.realism import kid_difference_bootstrap
    from inpaintgan.eval.runner import FEATURES_DIR, REAL, FeatureStore

    path = Path(folder)
    path = path.parent if path.is_file() else path
    rows = read_per_image(path)
    models = list(dict.fromkeys(r["model"] for r in rows))
    if ref not in models:
        raise ValueError(f"unknown reference model {ref!r}; models in the table: {', '.join(models)}")
    results = path / "results.json"
    network = json.loads(results.read_text()).get("realism", {}).get("network", "") if results.is_file() else ""
    store = FeatureStore(path / FEATURES_DIR, network)
    real, base = store.load(REAL), store.load(ref)
    if not network or not real or not base:
        raise ValueError(f"{path} holds no Inception features for {ref!r} (run `inpaintgan eval` with FID/KID on first)")
    out = []
    for m in models:
        if m == ref:
            continue
        feats = store.load(m)
        keys = sorted(set(feats) & set(base) & set(real))
        if len(keys) < 4:
            out.append({"model": m, "n": len(keys), "diff": math.nan, "low": math.nan, "high": math.nan, "significant": False})
            continue
        diff, lo, hi = kid_difference_bootstrap(np.stack([real[k] for k in keys]), np.stack([feats[k] for k in keys]),
                                                np.stack([base[k] for k in keys]), n_boot, seed)  # fmt: skip
        out.append({"model": m, "n": len(keys), "diff": diff, "low": lo, "high": hi, "significant": bool(lo > 0 or hi < 0)})
    return out


def format_paired_kid(entries: list[dict], ref: str) -> str:
    lines = [f"KID x1000 differences (lower is better) against {ref} on the same images, 95% paired bootstrap:", "",
             f"| model | n | KID - KID({ref}) | 95% interval | told apart? |", "|---|---:|---:|---|---|"]  # fmt: skip
    for e in entries:
        lines.append(f"| {e['model']} | {e['n']} | {1000 * e['diff']:+.2f} | [{1000 * e['low']:+.2f}, {1000 * e['high']:+.2f}] | "
                     f"{'yes' if e['significant'] else 'no'} |")  # fmt: skip
    return "\n".join(lines) + "\n"
