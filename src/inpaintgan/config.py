"""Typed configuration: dataclasses are the single source of truth, YAML presets override them,
``--set a.b=c`` overrides a preset. Unknown keys and wrongly typed values are errors that name the
valid keys / the expected type. The resolved config is saved with every run and every checkpoint.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file or override that does not fit the dataclasses."""


@dataclass
class DataConfig:
    """Where training images come from and how they are prepared."""

    dataset: str = "folder"  # folder | cifar10 | fashion_mnist
    root: str = ""  # folder of images, or the dataset's root folder
    val_root: str = ""  # optional separate validation folder (else a seeded split of ``root``)
    image_size: int = 32  # training resolution (square)
    resize: str = "crop"  # crop: random crop (resize up if smaller) | resize: whole image resized
    crop_scale: tuple[float, float] = (1.0, 1.0)  # crop mode: short side first resized to size * U(a, b)
    flip: bool = True  # random horizontal flip
    grayscale: bool = False  # L instead of RGB (Fashion-MNIST methods)
    val_fraction: float = 0.05  # seeded split of the training set (the GLCIC report used 90/5/5)
    test_fraction: float = 0.05
    split_seed: int = 0
    limit: int = 0  # use at most this many training images (0 = all)
    num_workers: int = 0
    download: bool = False  # cifar10 / fashion_mnist: fetch the official files if missing
    #: training crops, flips and masks repeat every this many epochs (0 = new ones every epoch); with
    #: ``prefill_cache`` the classical pre-fills of repeated samples are read back instead of recomputed
    repeat_epochs: int = 0
    prefill_cache: str = ""  # folder keeping each training sample's classical pre-fill (methods with a pre-fill)


@dataclass
class MaskConfig:
    """Training masks (1 = hole). Sizes are fractions of the image side so they scale with resolution."""

    kind: str = "glcic_rect"  # glcic_rect | two_rect | center | strokes | folder | mixed | lama_wide
    rect_min: float = 5 / 32  # GLCIC: hole height and width uniform in [min, max] * side
    rect_max: float = 12 / 32
    center_area: float = 0.25  # centered square's area fraction (Yeh et al.)
    stroke_max_vertices: int = 8  # free-form strokes (DeepFill v2 / LaMa style)
    stroke_max_width: float = 0.1  # fraction of the side
    stroke_max_length: float = 0.3
    stroke_max_strokes: int = 4
    folder: str = ""  # irregular masks (PNG) for kind=folder
    mixed_rect_prob: float = 0.5  # kind=mixed: probability of a rectangle instead of strokes


@dataclass
class TrainConfig:
    """The shared trainer's settings."""

    batch_size: int = 64
    optimizer: str = "adam"  # adam | adadelta (GLCIC's original)
    lr: float = 2e-4  # generator learning rate (adadelta: ignored unless set != 2e-4)
    lr_d: float = 0.0  # discriminator learning rate (0 = same as lr)
    betas: tuple[float, float] = (0.5, 0.999)
    grad_clip: float = 0.0  # 0 = off
    lr_schedule: str = "constant"  # constant | cosine | linear: decay over all steps to lr * lr_min_factor
    lr_min_factor: float = 0.05
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "none"  # none | bf16 (GPU and CPU) | fp16 (GPU only)
    out_dir: str = "runs/default"
    log_every: int = 50
    sample_every: int = 500
    ckpt_every: int = 500
    keep_last: int = 3
    val_every: int = 0  # steps; 0 = once per epoch
    val_batches: int = 20  # batches of the validation split scored at each validation
    threads: int = 0  # torch CPU threads (0 = torch default)
    channels_last: bool = False  # NHWC memory format (faster convolutions on CPU with oneDNN, and on tensor cores)
    max_steps: int = 0  # stop after this many steps in total (0 = all phases)
    time_limit_min: float = 0.0  # stop (with a checkpoint) after this many minutes; resume later
    tensorboard: bool = True
    init_from: str = ""  # warm start: a model file or zoo name whose inference networks are loaded first
    init_strict: bool = True  # false: load only the tensors that fit (a changed architecture), log the rest


@dataclass
class RunConfig:
    """Everything a training run needs; ``model`` is the method's own Config dataclass."""

    method: str = "glcic"
    model: Any = None
    data: DataConfig = field(default_factory=DataConfig)
    masks: MaskConfig = field(default_factory=MaskConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


# ----------------------------------------------------------------------------------------- helpers


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain dict/list/scalars (YAML/JSON-safe)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


#: YAML 1.1 words for booleans that YAML's own loader turns into bools; accepted for bool fields only
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class _Yaml12Loader(yaml.SafeLoader):
    """YAML with the 1.2 core schema's scalars: only true/false are booleans (``root: no`` is the
    text "no"), and ``1e-4`` is a number (YAML 1.1 needs a dot: ``1.0e-4``)."""


_Yaml12Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def yaml_load(text: str) -> Any:
    """Parse YAML text with the 1.2 scalar rules (see :class:`_Yaml12Loader`)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def _number(text: str) -> float | None:
    try:
        return float(text.strip().replace("_", ""))
    except ValueError:
        return None


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` as type ``tp``. Text (from ``--set`` or a quoted YAML value) is parsed by the field's
    type: '1e-4' is a number for a float field, 'no' is text for a string field and false for a bool."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return yaml_load(value) if isinstance(value, str) else value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip() in ("null", "~")):
            return None
        return _coerce(value, args[0], where)
    if origin in (tuple, list):
        args = typing.get_args(tp)
        if isinstance(value, str):
            try:
                value = yaml_load(value)
            except yaml.YAMLError:
                pass
            if not isinstance(value, (list, tuple)):  # a single comma-separated line: 0.5,0.999
                value = [v.strip() for v in str(value).split(",")] if value not in (None, "") else []
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        out = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, str):
            num = _number(value)
            if num is None:
                raise ConfigError(f"{where}: expected an integer, got {value!r}")
            value = num
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, str):
            num = _number(value)
            if num is None:
                raise ConfigError(f"{where}: expected a number, got {value!r}")
            value = num
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r} (quote it)")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, str) and value.strip() in ("", "null", "~"):
            value = None
        return from_dict(tp, value, where)
    return value


def renamed_fields(**renames: str):
    """Class decorator for a config dataclass some of whose fields were renamed (``old="new"``): the
    old names keep working, with a ``DeprecationWarning``, as constructor keywords, as keys of YAML
    presets, ``--set`` overrides, checkpoints and model-file metadata (:func:`from_dict`), and as
    read-only attributes. ``cls.RENAMED`` holds the mapping."""

    def decorate(cls: type) -> type:
        cls.RENAMED = dict(renames)
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            init(self, *args, **_renamed_keys(cls, kwargs, cls.__name__))

        cls.__init__ = __init__
        for old, new in renames.items():
            setattr(cls, old, property(lambda self, new=new: getattr(self, new), doc=f"Deprecated: renamed to ``{new}``."))
        return cls

    return decorate


def _renamed_keys(cls: type, data: dict[str, Any], where: str) -> dict[str, Any]:
    """``data`` with the deprecated names of ``cls.RENAMED`` replaced by the current ones."""
    renames = getattr(cls, "RENAMED", None)
    if not renames or not any(k in renames for k in data):
        return data
    out = {}
    for key, value in data.items():
        new = renames.get(key)
        if new is None:
            out[key] = value
            continue
        if new in data:
            raise ConfigError(f"{where}: both {key!r} and {new!r} are set; {key!r} is the old name of {new!r}, keep one")
        warnings.warn(f"{where}.{key} is deprecated: it was renamed to {new!r}", DeprecationWarning, stacklevel=3)
        out[new] = value
    return out


def from_dict(cls: type, data: dict[str, Any] | None, where: str = "") -> Any:
    """Build dataclass ``cls`` from a dict; unknown keys are errors listing the valid ones (renamed
    keys, see :func:`renamed_fields`, are read under their new names)."""
    if data is None:
        return cls()
    if dataclasses.is_dataclass(data) and isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {data!r}")
    data = _renamed_keys(cls, data, where or cls.__name__)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            raise ConfigError(f"unknown config key {path!r}; valid keys here: {', '.join(names)}")
        kwargs[key] = _coerce(value, hints[key], path)
    return cls(**kwargs)


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    # the text is kept as given: the field's type decides what it means (see _coerce)
    return key.strip().split("."), raw


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=c`` overrides to a nested dict (values stay text, typed later by the field)."""
    for text in overrides or []:
        keys, value = _parse_override(text)
        node = data
        for k in keys[:-1]:
            if node.get(k) is None:  # absent, or an empty section in the YAML file
                node[k] = {}
            node = node[k]
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {k!r} is not a section")
        node[keys[-1]] = value
    return data


def build_run_config(data: dict[str, Any]) -> RunConfig:
    """Resolve a raw dict (from YAML + overrides) into a fully typed :class:`RunConfig`."""
    from inpaintgan.registry import get_method

    data = dict(data or {})
    top = [f.name for f in dataclasses.fields(RunConfig)]
    for key in data:
        if key not in top:
            raise ConfigError(f"unknown config key {key!r}; valid top-level keys: {', '.join(top)}")
    method_name = data.get("method", RunConfig.method)
    if not isinstance(method_name, str):
        raise ConfigError(f"method: expected a method name, got {method_name!r}")
    method_cls = get_method(method_name)
    cfg = RunConfig(
        method=method_name,
        model=from_dict(method_cls.Config, data.get("model"), "model"),
        data=from_dict(DataConfig, data.get("data"), "data"),
        masks=from_dict(MaskConfig, data.get("masks"), "masks"),
        train=from_dict(TrainConfig, data.get("train"), "train"),
    )
    from inpaintgan.config_checks import check_run_config

    check_run_config(cfg)
    return cfg


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Load a YAML preset (or the defaults) and apply ``--set`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {p} is not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
    return build_run_config(apply_overrides(data, overrides or []))


def dump_config(cfg: RunConfig) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
