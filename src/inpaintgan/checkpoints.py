"""Model files: safetensors weights + JSON metadata (method, resolved config, training data, steps,
metrics). Nothing pickled is ever loaded: safetensors holds tensors only, and training-state files
are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT_VERSION = "1"


class CheckpointError(ValueError):
    """A model or training-state file that cannot be used (missing, corrupt, unsafe, wrong method)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # exists (another user's), or cannot tell: keep its file
    return True


def remove_stale_temp_files(path: Path) -> None:
    """Temp files of earlier atomic writes of ``path`` whose process is gone (killed mid-write):
    ``.NAME.PID.XXXX.tmp``. So a temp file never outlives its process's next write of that file."""
    prefix = f".{path.name}."
    ends = (".tmp", ".tmp" + path.suffix) if path.suffix else (".tmp",)
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(ends)]
    except OSError:
        return
    for p in candidates:
        pid = p.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            p.unlink(missing_ok=True)


def atomic_write(path: str | Path, write_fn, keep_suffix: bool = False) -> Path:
    """Call ``write_fn(tmp_path)`` then rename onto ``path``: readers never see a half-written file.
    The temp file (``.NAME.PID.XXXX.tmp`` beside ``path``; ``keep_suffix``: ``...tmp.SUFFIX``, for
    writers that choose the format from the file name) is removed on any error, and, should the
    process be killed, by the next write of ``path``. The one atomic writer of the package."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path)
    suffix = ".tmp" + (path.suffix if keep_suffix else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_model(method, path: str | Path, metadata: dict[str, Any] | None = None, half: bool = False) -> Path:
    """Export the networks a method needs at inference (``method.inference_modules``) to safetensors.

    ``metadata`` (JSON-serialisable) is stored in the safetensors header under ``inpaintgan``,
    together with the method name, its config, image size and channels.
    """
    from inpaintgan.config import to_dict

    tensors: dict[str, torch.Tensor] = {}
    for name in method.inference_modules:
        for key, t in getattr(method, name).state_dict().items():
            t = t.detach().cpu()
            if half and t.is_floating_point():
                t = t.half()
            tensors[f"{name}.{key}"] = t.contiguous()
    for key, t in method.named_buffers():
        if "." not in key:  # top-level buffers (e.g. GLCIC's fill value)
            tensors[key] = t.detach().cpu().contiguous()
    meta = {
        "format": FORMAT_VERSION,
        "method": method.name,
        "config": to_dict(method.cfg),
        "image_size": method.image_size,
        "channels": method.channels,
        **(metadata or {}),
    }
    header = {"inpaintgan": json.dumps(meta)}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a model file, without loading weights."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a valid safetensors model file: {e}") from None
    if "inpaintgan" not in meta:
        raise CheckpointError(f"{path} has no inpaintgan metadata (not exported by inpaintgan?)")
    return check_metadata(meta["inpaintgan"], path)


def check_metadata(text: str, path: str | Path) -> dict[str, Any]:
    """The parsed ``inpaintgan`` metadata, or a CheckpointError saying what is wrong with it."""
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"{path}: its inpaintgan metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its inpaintgan metadata must be a JSON object, got {type(meta).__name__}")
    if not isinstance(meta.get("method"), str):
        raise CheckpointError(f"{path}: its inpaintgan metadata names no method (key 'method'); not an inpaintgan model file?")
    for key in ("image_size", "channels"):
        v = meta.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise CheckpointError(f"{path}: metadata {key}={v!r} must be a positive integer")
    if meta.get("config") is not None and not isinstance(meta["config"], dict):
        raise CheckpointError(f"{path}: metadata 'config' must be a JSON object")
    return meta


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """Build the method recorded in a model file and load its inference weights.

    Returns ``(method, metadata)``; the method is in eval mode, in float32, on ``device``.
    """
    from inpaintgan.config import from_dict
    from inpaintgan.registry import get_method

    meta = read_metadata(path)
    cls = get_method(meta["method"])
    cfg = from_dict(cls.Config, cls.upgrade_config(meta.get("config") or {}), "config")
    missing = [k for k in ("image_size", "channels") if meta.get(k) is None]
    if missing:
        raise CheckpointError(f"{path}: its metadata lacks {', '.join(missing)}")
    method = cls(cfg, image_size=int(meta["image_size"]), channels=int(meta["channels"]))
    load_weights_into(method, path, meta)
    return method.to(device).eval(), meta


def _load_matching(module: torch.nn.Module, sub: dict[str, torch.Tensor]) -> list[str]:
    """Non-strict load: tensors whose name and shape match are copied; a conv weight that differs only
    in its input channels (dim 1) gets the overlapping channels copied and the new ones zeroed (a
    network that now also reads e.g. a mask channel starts as the old one). Returns what was skipped."""
    own = module.state_dict()
    skipped, ok = [], {}
    for k, t in own.items():
        v = sub.get(k)
        if v is None:
            skipped.append(f"{k} (missing)")
        elif v.shape == t.shape:
            ok[k] = v
        elif v.dim() == t.dim() >= 2 and v.shape[0] == t.shape[0] and v.shape[2:] == t.shape[2:]:
            w = torch.zeros_like(t)
            c = min(v.shape[1], t.shape[1])
            w[:, :c] = v[:, :c]
            ok[k] = w
            skipped.append(f"{k} (input channels {v.shape[1]} -> {t.shape[1]}: overlap copied)")
        else:
            skipped.append(f"{k} (shape {tuple(v.shape)} != {tuple(t.shape)})")
    module.load_state_dict(ok, strict=False)
    return skipped


def load_weights_into(method, path: str | Path, meta: dict[str, Any] | None = None, strict: bool = True) -> list[str]:
    """Load a model file's inference networks (and top-level buffers) into an existing method of the
    same kind, e.g. to warm-start training from published weights (``train.init_from``).

    ``strict=False`` (``train.init_strict: false``) warm-starts a changed architecture: tensors of the
    same name and shape load, the rest keep their initialisation (see :func:`_load_matching`); the
    names not loaded exactly are returned."""
    meta = meta if meta is not None else read_metadata(path)
    if meta["method"] != method.name:
        raise CheckpointError(f"{path} holds a {meta['method']!r} model, not {method.name!r}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"cannot read weights from {path}: {e}") from None
    from inpaintgan.finite import check_finite_weights

    check_finite_weights(tensors.items(), path)
    skipped: list[str] = []
    for name in method.inference_modules:
        prefix = f"{name}."
        # float16 files load into the float32 networks; integer buffers (BN counters) stay as they are
        sub = {k[len(prefix) :]: v.float() if v.is_floating_point() else v for k, v in tensors.items() if k.startswith(prefix)}
        if not strict:
            skipped += [f"{name}.{k}" for k in _load_matching(getattr(method, name), sub)]
            continue
        try:
            getattr(method, name).load_state_dict(sub, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"weights in {path} do not fit method {meta['method']!r}: {e}") from None
    with torch.no_grad():
        for key, t in tensors.items():
            if "." not in key and hasattr(method, key):
                getattr(method, key).copy_(t.float())
    skipped += method.after_warm_start(meta)  # a no-op when the file's config is the method's own
    return skipped


def load_training_state(path: str | Path, map_location="cpu") -> dict[str, Any]:
    """Read a trainer checkpoint safely (tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # the unpickler raises many types; all mean "refused or corrupt"
        raise CheckpointError(f"cannot load checkpoint {path} (corrupt, or holds pickled objects): {e}") from None


def check_training_payload(payload: Any, source: str | Path = "checkpoint") -> dict[str, Any]:
    """A trainer checkpoint's contents, checked: a dict with 'config' (a mapping) and 'model' (a state
    dict of finite tensors); else a CheckpointError saying what the file is instead."""
    from inpaintgan.finite import check_finite_weights

    if not isinstance(payload, dict) or not isinstance(payload.get("config"), dict) or not isinstance(payload.get("model"), dict):
        keys = ", ".join(map(str, payload)) if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(
            f"{source} is not an inpaintgan training checkpoint (needs 'config' and 'model'; has: {keys or 'nothing'}); "
            "export models to .safetensors with 'inpaintgan export'"
        )
    check_finite_weights(payload["model"].items(), source)
    return payload


def _upgraded_run_config(data: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's stored run config with its model section read as the method's current code
    reads stored configs (``InpaintMethod.upgrade_config``)."""
    from inpaintgan.registry import get_method

    method = data.get("method")
    if not isinstance(method, str) or not isinstance(data.get("model"), dict):
        return data
    try:
        cls = get_method(method)
    except Exception:  # an unknown name: build_run_config says so in one line
        return data
    return {**data, "model": cls.upgrade_config(data["model"])}


def build_training_method(payload: dict[str, Any], source: str | Path = "checkpoint"):
    """(method with the checkpoint's weights, its RunConfig, channels) from a trainer checkpoint
    (already read with ``weights_only=True``); a one-line CheckpointError where they do not fit."""
    from inpaintgan.config import build_run_config
    from inpaintgan.registry import get_method

    check_training_payload(payload, source)
    cfg = build_run_config(_upgraded_run_config(payload["config"]))
    channels = 1 if cfg.data.grayscale or cfg.data.dataset == "fashion_mnist" else 3
    method = get_method(cfg.method)(cfg.model, image_size=cfg.data.image_size, channels=channels)
    try:
        method.load_state_dict(payload["model"])
    except RuntimeError as e:
        raise CheckpointError(f"weights in {source} do not fit method {cfg.method!r}: {str(e).splitlines()[0]}") from None
    return method, cfg, channels


def method_from_training_state(payload: dict[str, Any], source: str | Path = "checkpoint"):
    """Build a method from a trainer checkpoint (already read with ``weights_only=True``).

    Returns ``(method, metadata)`` like :func:`load_model`; the method is in eval mode on the CPU.
    """
    from inpaintgan.config import to_dict

    method, cfg, channels = build_training_method(payload, source)
    meta = {
        "format": FORMAT_VERSION,
        "method": cfg.method,
        "config": to_dict(cfg.model),
        "image_size": cfg.data.image_size,
        "channels": channels,
        "source": "training checkpoint",
    }
    return method.eval(), meta


def load_any(path: str | Path, device: str | torch.device = "cpu"):
    """Load an exported ``.safetensors`` model, or a trainer ``.pt``/``.pth`` checkpoint read with
    ``torch.load(weights_only=True)`` (files holding pickled objects are refused). ``(method, meta)``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    if path.suffix.lower() in (".pt", ".pth"):
        method, meta = method_from_training_state(load_training_state(path), path)
        return method.to(device), meta
    return load_model(path, device)


# ------------------------------------------------------------------------------------ model zoo

#: the folder of the weights shipped inside the package
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: Named models. ``embedded`` ones ship in :data:`WEIGHTS_DIR`; the others are downloaded on explicit
#: request only (``inpaintgan download NAME``) into the cache folder, and their checksum is verified.
#: Keys: url, sha256, filename, description, method, embedded, image_size (working scale, px).
MODEL_ZOO: dict[str, dict[str, Any]] = {
    "default": dict(
        url=None,
        sha256=None,
        filename="default.safetensors",
        description="LaMa-style Fourier network refining a PatchMatch fill, trained adversarially on natural photos "
        "(object removal, realistic texture; embedded)",
        method="lama",
        embedded=True,
        image_size=256,
    ),
    "smooth": dict(
        url=None,
        sha256=None,
        filename="smooth.safetensors",
        description="the previous default (version 3): U-Net refining a fast-marching fill, pixel losses only; smooth "
        "fills, the best hole PSNR, blurry in large holes (embedded)",
        method="pconv",
        embedded=True,
        image_size=128,
    ),
    "glcic-cifar10": dict(
        url=None,
        sha256=None,
        filename="glcic_cifar10.safetensors",
        description="GLCIC reproduced on CIFAR-10 32x32 (configs/glcic_cifar10_gpu.yaml; docs/results.md)",
        method="glcic",
        embedded=True,
        image_size=32,
    ),
}

MODEL_SUFFIXES = (".safetensors", ".pt", ".pth")


def _zoo_entry(name: str) -> dict[str, Any]:
    from inpaintgan.registry import UnknownNameError

    if name not in MODEL_ZOO:
        raise UnknownNameError(
            f"unknown model {name!r}; known models: {', '.join(sorted(MODEL_ZOO)) or '(none)'}; "
            "classical fills: telea, ns, patchmatch "
            f"(or give the path of a {'/'.join(MODEL_SUFFIXES)} file)"
        )
    return MODEL_ZOO[name]


def model_file(name: str) -> Path:
    """Where the file of zoo model ``name`` is (embedded) or goes (the download cache)."""
    entry = _zoo_entry(name)
    if entry.get("embedded"):
        return WEIGHTS_DIR / entry["filename"]
    from inpaintgan.download import cache_dir

    return Path(cache_dir()) / "models" / entry["filename"]


def is_model_path(name_or_path: str | Path) -> bool:
    """True if the argument names a file rather than a zoo model (a path separator, a model file
    suffix, or an existing file that is not a zoo name)."""
    if isinstance(name_or_path, Path):
        return True
    s = str(name_or_path)
    if s in MODEL_ZOO:
        return False
    return "/" in s or os.sep in s or s.lower().endswith(MODEL_SUFFIXES) or Path(s).is_file()


def resolve_model(name_or_path: str | Path) -> Path:
    """Zoo name or file path -> the path of an existing model file, or a clear error (unknown name
    lists the known ones; a model not installed says where to put it and where to get it)."""
    if is_model_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise CheckpointError(f"model file not found: {path}")
        return path
    name = str(name_or_path)
    entry = _zoo_entry(name)
    path = model_file(name)
    if path.is_file():
        return path
    if entry.get("embedded"):
        raise CheckpointError(
            f"the embedded model {name!r} is missing from this installation: expected {path} "
            "(reinstall inpaintgan, or put a model exported with 'inpaintgan export' there)"
        )
    where = f"download {entry['url']} by hand" if entry.get("url") else "obtain the file"
    raise CheckpointError(
        f"model {name!r} is not installed: run 'inpaintgan download {name}', or {where} and place it at {path}"
    )


def download_model(name: str, force: bool = False, progress: bool = True) -> Path:
    """Download zoo model ``name`` into the cache (checksum verified); returns its path.

    Embedded models are not downloaded (their path is returned). An installed file is kept unless
    ``force``.
    """
    entry = _zoo_entry(name)
    path = model_file(name)
    if entry.get("embedded"):
        return resolve_model(name)
    if path.is_file() and not force:
        return path
    if not entry.get("url"):
        raise CheckpointError(f"model {name!r} has no published download URL; place the file at {path} by hand")
    from inpaintgan.download import download_url

    download_url(entry["url"], path, sha256=entry.get("sha256"), progress=progress)
    read_metadata(path)  # a file that is not an inpaintgan model is an error now, not at first use
    return path


def list_models() -> list[dict[str, Any]]:
    """The model zoo: one dict per model (name, method, image_size, installed, problem (why an
    existing file is unusable), file_mb, path, url, embedded, description)."""
    rows = []
    for name, entry in sorted(MODEL_ZOO.items()):
        try:
            path: Path | None = model_file(name)
        except ImportError:  # no download module: the cache folder is unknown
            path = None
        installed = bool(path and path.is_file())
        image_size, problem = entry.get("image_size"), None
        if installed:
            try:
                image_size = read_metadata(path).get("image_size", image_size)
            except CheckpointError as e:
                installed, problem = False, str(e)
        rows.append(
            dict(
                name=name,
                method=entry.get("method", "?"),
                image_size=image_size,
                installed=installed,
                problem=problem,
                file_mb=round(path.stat().st_size / 1e6, 2) if installed else None,
                path=str(path) if path else None,
                url=entry.get("url"),
                embedded=bool(entry.get("embedded")),
                description=entry.get("description", ""),
            )
        )
    return rows
