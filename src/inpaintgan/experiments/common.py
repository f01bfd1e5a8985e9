"""What the experiment runners share, so each runner keeps only its paper's experiment:

- errors and the command line: :class:`ReportError` (a one-line input problem), :func:`run_cli`;
- recorded commands: :func:`portable_path`, :func:`portable_arg`, :func:`command_line` (no machine
  folders in the reports);
- report I/O: :func:`atomic_write`, :func:`write_text`, :func:`csv_text`, :func:`json_num`, and
  :func:`machine` (the ``machine`` entry, from :mod:`inpaintgan.machine`);
- inputs: ``--model`` specs (:func:`split_model_spec`, :class:`Model`, :func:`load_models`), held-out
  photos (:func:`load_folder_images`), :func:`batches`;
- scored eval folders: :func:`folder_evaluation`, :func:`overall_scores`, :func:`overall_json`;
- tables: :func:`fmt_value`, :func:`md_head`, :func:`best_values`, :func:`bold_cells` (the best value of
  a group in bold);
- figures: :func:`u8`, :func:`masked`, :func:`save_grid` (a comparison grid), :func:`pyplot` /
  :func:`save_plot` (matplotlib without a display, written atomically).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import re
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor


class ReportError(ValueError):
    """A problem with the inputs, reported in one line (exit code 2), without a traceback."""


# --------------------------------------------------------------------------- the command line


def run_cli(name: str, parse: Callable, run: Callable, argv: list[str] | None) -> int:
    """An experiment runner's command line (shared by the runners in this package): parse ``argv``
    (usage errors: argparse's message, exit 2), run, and turn input problems into one line
    ``NAME: error: ...`` with exit code 2 instead of a traceback."""
    from inpaintgan.checkpoints import CheckpointError
    from inpaintgan.config import ConfigError
    from inpaintgan.registry import UnknownNameError

    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    try:
        run(args, argv)
    except (ReportError, CheckpointError, ConfigError, UnknownNameError, FileNotFoundError, NotADirectoryError,
            ValueError) as e:  # fmt: skip
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    return 0


# ------------------------------------------------------------------------- recorded commands


def portable_path(path: str | Path) -> str:
    """A path without the machine's layout: relative to the working directory when inside it, as typed
    when relative (``../shared/data`` names no machine folder), ``~/...`` under the home folder, as is
    under /usr/share (package data), else the bare name."""
    p = Path(path).expanduser()
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix() or "."
    except (ValueError, OSError):
        pass
    if not p.is_absolute():
        return p.as_posix()
    try:
        return "~/" + p.resolve().relative_to(Path.home().resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):
        pass
    if p.as_posix().startswith("/usr/share/"):
        return p.as_posix()
    return p.name


def portable_arg(token: str) -> str:
    """One command-line token with its path made portable: ``--opt=PATH``, ``LABEL=PATH`` or a bare path
    (anything with a slash, or that exists); other tokens as they are."""
    if token.startswith("-"):
        opt, sep, val = token.partition("=")
        return opt + sep + portable_arg(val) if sep else token
    if "=" in token:
        label, _, val = token.partition("=")
        return f"{label}={portable_arg(val)}"
    if "/" in token or os.sep in token or Path(token).exists():
        return portable_path(token)
    return token


def command_line(argv: list[str], prog: str) -> str:
    """The command (``prog`` and ``argv``) as it would be typed, with paths made portable (:func:`portable_path`)."""
    return " ".join([prog, *(shlex.quote(portable_arg(a)) for a in argv)])


# ------------------------------------------------------------------------------- report I/O


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[str], Any]) -> Path:
    """``write(tmp)`` into a temporary file beside ``path`` (same suffix, so image writers know the
    format), then rename it onto ``path``: :func:`inpaintgan.checkpoints.atomic_write`."""
    from inpaintgan.checkpoints import atomic_write as _atomic_write

    return _atomic_write(path, write, keep_suffix=True)


def write_text(path: Path, text: str) -> Path:
    """``text`` (UTF-8) to ``path``, atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def fmt_csv(v: Any) -> str:
    """A CSV cell: empty for None and NaN, floats to 6 significant digits."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def csv_text(rows: list[dict], columns: list[str]) -> str:
    """``rows`` as CSV text with a header of ``columns`` (missing keys: empty cells)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: fmt_csv(r.get(k)) for k in columns})
    return buf.getvalue()


def json_num(v: Any) -> Any:
    """A value JSON can hold: NaN -> None, infinities -> ``"inf"`` / ``"-inf"``; anything else as is."""
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def machine() -> dict:
    """CPU model, cores, threads and versions (:func:`inpaintgan.machine.machine_info` on the CPU), else,
    where that cannot run (a library missing), the same facts from :mod:`platform`."""
    from inpaintgan.machine import cpu_model

    try:
        from inpaintgan.machine import machine_info

        return machine_info("cpu")
    except Exception:  # a library missing: platform facts
        return {
            "cpu": cpu_model(platform.machine() or "?"),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "omp_threads": os.environ.get("OMP_NUM_THREADS", "(unset)"),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "device": "cpu",
        }


# ------------------------------------------------------------------------------------ inputs


def default_label(spec: str) -> str:
    """The name a ``--model`` given without ``NAME=`` is reported as: a path's file stem, else itself."""
    return Path(spec).stem if ("/" in spec or spec.endswith((".safetensors", ".pt", ".pth"))) else spec


def parse_spec(spec: str) -> tuple[str, str, bool]:
    """``LABEL=VALUE`` -> (label, value, True), both stripped; without ``=``: (:func:`default_label`,
    the spec, False). Callers check the parts (:func:`is_label`) with their own messages."""
    label, sep, value = spec.partition("=")
    if not sep:
        label, value = default_label(spec), spec
    return label.strip(), value.strip(), bool(sep)


def is_label(label: str) -> bool:
    """Whether ``label`` may name a column and files: letters, digits and ``. _ + -`` only."""
    return re.fullmatch(r"[\w.+-]+", label) is not None


def split_model_spec(spec: str) -> tuple[str, str]:
    """``NAME=VALUE`` -> (name, value); without ``=``, the file stem (paths) or the name itself."""
    label, value, _ = parse_spec(spec)
    if not label or not value:
        raise ReportError(f"--model expects NAME=PATH (or a name) with both parts non-empty, got {spec!r}")
    if not is_label(label):
        raise ReportError(f"--model: name {label!r} may hold letters, digits and . _ + - only")
    return label, value


@dataclass
class Model:
    """One column: a callable ``(image, mask) -> composited image`` and what it is."""

    label: str
    spec: str
    fn: Any
    method: Any = None  # the network, for models (None for baselines)

    @property
    def has_attention(self) -> bool:
        m = self.method
        return m is not None and callable(getattr(m, "inpaint_with_attention", None)) and bool(getattr(m, "has_attention", True))

    def describe(self) -> dict:
        m = self.method
        out = {"label": self.label, "model": portable_arg(self.spec), "kind": "baseline" if m is None else "model"}
        if m is not None:
            out.update(method=getattr(m, "name", type(m).__name__), image_size=getattr(m, "image_size", None),
                       attention=self.has_attention)  # fmt: skip
            cfg = getattr(m, "cfg", None)
            if cfg is not None and hasattr(cfg, "width"):
                out["width"] = cfg.width
        return out


def load_models(specs: list[str]) -> list[Model]:
    """The ``--model`` specs resolved on the CPU (model files, zoo names, baselines), names unique."""
    from inpaintgan.baselines import resolve_model

    if not specs:
        raise ReportError("no models: give at least one --model (a model file, a zoo name, or telea / ns / patchmatch / mean)")
    parsed = [split_model_spec(s) for s in specs]
    labels = [label for label, _ in parsed]
    dupes = sorted({v for v in labels if labels.count(v) > 1})
    if dupes:
        raise ReportError(f"model names must be unique; repeated: {', '.join(dupes)} (use --model NAME=PATH)")
    models = []
    for label, value in parsed:
        try:
            fn = resolve_model(value, "cpu")
        except ImportError as e:  # an optional baseline's package is missing
            raise ReportError(f"--model {label}: cannot run here: {e}") from None
        models.append(Model(label, value, fn, getattr(fn, "method", None)))
    return models


def load_folder_images(root: str, n: int, size: int) -> tuple[Tensor, list[str]]:
    """The first ``n`` images under ``root`` (recursive, sorted) as float (n, 3, size, size) in [0, 1]
    (``inpaintgan eval``'s centre crop and resize) and their paths relative to ``root``."""
    from inpaintgan.data.folder import IMAGE_EXTS, READ_ERRORS, list_images, read_image_array
    from inpaintgan.eval.runner import prepare_image, to_tensor

    path = Path(root)
    if not path.exists():
        raise ReportError(f"data folder not found: {root}")
    if not path.is_dir():
        raise ReportError(f"--data {root} is not a folder")
    files = list_images(path)[:n]
    if not files:
        raise ReportError(f"data folder {root} holds no images ({', '.join(IMAGE_EXTS)})")
    arrs = []
    for f in files:
        try:
            arrs.append(prepare_image(read_image_array(f), size))
        except READ_ERRORS as e:
            raise ReportError(f"cannot read image {f}: {e}") from None
    return torch.stack([to_tensor(a) for a in arrs]), [f.relative_to(path).as_posix() for f in files]


def load_fashion_images(root: str | None, n: int, size: int, train: bool = False) -> Tensor:
    """The first ``n`` Fashion-MNIST images of a split (``train`` or t10k) as float (n, 1, size, size) in
    [0, 1], bicubic from 28 px (as the semantic runners feed them to the DCGAN)."""
    import torch.nn.functional as F

    from inpaintgan.data.fashion_mnist import DEBIAN_ROOT, FashionMNIST

    split = "training set" if train else "test set (t10k)"
    try:
        ds = FashionMNIST(root or None, train=train)
    except FileNotFoundError as e:
        raise ReportError(
            f"the Fashion-MNIST {split} is missing: {e} (Debian/Ubuntu: apt install dataset-fashion-mnist, "
            f"files in {DEBIAN_ROOT}; or --data-root DIR)"
        ) from None
    if n > len(ds):
        raise ReportError(f"{n} images asked for; the {split} in {ds.root} holds {len(ds)}")
    x = torch.from_numpy(np.stack([ds.load(i) for i in range(n)])).permute(0, 3, 1, 2).float() / 255
    return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def batches(n: int, bs: int) -> list[list[int]]:
    """The indices ``0 .. n-1`` in consecutive batches of at most ``bs``."""
    return [list(range(i, min(i + bs, n))) for i in range(0, n, bs)]


# ------------------------------------------------------------------------------------ tables


# the table helpers live in the package core (``inpaintgan.tables``) so ``eval`` shares them
from inpaintgan.tables import best_values, bold_cells, fmt_value, md_head  # noqa: E402,F401

# ---------------------------------------------------------------------- scored eval folders


def folder_evaluation(data: str, protocol: str, size: int, n: int, out: str | Path):
    """An ``inpaintgan eval`` run on the CPU (:class:`~inpaintgan.eval.runner.Evaluation`): the first ``n``
    images of ``data`` (0: all) at ``size``, ``protocol``'s masks with seed 0, FID/KID features on,
    results (resumable) in ``out``."""
    from inpaintgan.eval.protocols import get_protocol
    from inpaintgan.eval.realism import InceptionFeatures
    from inpaintgan.eval.runner import EvalImages, Evaluation

    masks = get_protocol(protocol, 0)
    images = EvalImages(data, size, n, False)
    return Evaluation(images, masks, out, "cpu", 16, False, None, InceptionFeatures(None, "cpu", batch_size=16))


def overall_scores(ev, rows: list[dict], labels: list[str]) -> dict[str, dict[str, Any]]:
    """Print the evaluation's table of ``rows`` (models ``labels``) and return, per model, hole PSNR,
    FID and KID over all images."""
    from inpaintgan.eval.runner import bucket_order, format_markdown, summarize

    table = summarize(rows, labels, bucket_order(ev.protocol), ev.metric_names, ev.realism_scores(rows, labels))
    print(format_markdown(table, ev.metric_names))
    return {t["model"]: {k: t[k] for k in ("psnr_hole", "fid", "kid") if k in t} for t in table if t.get("bucket") == "all"}


def overall_json(overall: dict) -> str:
    """:func:`overall_scores` as JSON (numpy numbers as floats)."""
    return json.dumps(overall, indent=1, default=lambda x: float(np.asarray(x)))


# ----------------------------------------------------------------------------------- figures


def u8(t: Tensor) -> np.ndarray:
    """A (C, H, W) image in [0, 1] as uint8 (H, W, C) (:func:`inpaintgan.eval.runner.to_uint8`)."""
    from inpaintgan.eval.runner import to_uint8

    return to_uint8(t)


def masked(image: Tensor, mask: Tensor) -> np.ndarray:
    """The figures' input view: the image (C, H, W) with its hole (``mask`` (1, H, W), 1 = hole) shown."""
    from inpaintgan.eval.report import masked_input

    return masked_input(u8(image), mask[0].numpy())


def save_grid(path: Path, rows: list[list[np.ndarray]], headers: list[str]) -> Path:
    """A comparison grid (one row per image, one column per header), written atomically."""
    from inpaintgan.eval.report import comparison_figure

    return atomic_write(path, lambda tmp: comparison_figure(rows, headers, tmp))


def pyplot():
    """:mod:`matplotlib.pyplot` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_plot(fig, path: Path, dpi: int) -> Path:
    """``fig`` as a PNG at ``path`` (atomically), then closed."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    pyplot().close(fig)
    return path
