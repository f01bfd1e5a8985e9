"""``inpaintgan train / config / methods / export``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inpaintgan.cli_types import int_at_least


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c",
                   help="a preset name (inpaintgan config --list; e.g. glcic_cifar10) or a YAML file; defaults reproduce the paper")
    p.add_argument("--data", metavar="DIR", help="the training data folder (same as --set data.root=DIR): a folder of images "
                   "(recursive), or the dataset's own files for data.dataset=cifar10 / fashion_mnist")
    p.add_argument("--val-data", metavar="DIR", help="a separate validation folder (same as --set data.val_root=DIR; "
                   "with --data and without it, validation uses a seeded split of --data)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config value, e.g. --set train.batch_size=32 (repeatable; unknown keys are errors)",
    )


def _load(args):
    """The resolved config of a command's -c / --data / --set."""
    from inpaintgan.config import load_config
    from inpaintgan.presets import find_preset

    overrides = list(args.overrides)
    if getattr(args, "data", None):  # explicit --set data.* values still win
        # the preset's validation folder belongs to its own data: validate on a split of DIR instead
        overrides[:0] = [f"data.root={args.data}", f"data.val_root={getattr(args, 'val_data', None) or ''}"]
    elif getattr(args, "val_data", None):
        overrides.insert(0, f"data.val_root={args.val_data}")
    return load_config(find_preset(args.config) if args.config else None, overrides), overrides


def cmd_train(args) -> int:
    from inpaintgan.cli import CLIError
    from inpaintgan.training.trainer import train

    if args.out:
        args.overrides.append(f"train.out_dir={args.out}")
    if args.device:
        args.overrides.append(f"train.device={args.device}")
    cfg, _ = _load(args)
    if cfg.data.dataset == "folder" and not Path(cfg.data.root).is_dir():
        raise CLIError(f"data folder {cfg.data.root} not found; give a folder of your images with --data DIR "
                       "(or --set data.root=DIR)")
    result = train(cfg, resume=args.resume, progress=not args.no_progress)
    if result.val:
        vals = ", ".join(f"{k} {v:.5g}" for k, v in result.val.items())
        print(f"step {result.step}: validation {vals}")
    print(f"run folder: {result.out_dir}  (last checkpoint: {result.last_checkpoint})")
    if args.export:
        from inpaintgan.checkpoints import load_training_state

        export_checkpoint(load_training_state(result.last_checkpoint), args.export, half=args.half)
        print(f"exported model: {args.export}")
    return 0


def cmd_config(args) -> int:
    from inpaintgan.config import dump_config

    if args.list:
        from inpaintgan.presets import list_presets, preset_dir

        rows = list_presets()
        width = max((len(n) for n, _ in rows), default=0)
        for name, desc in rows:
            print(f"{name:<{width}}  {desc}")
        print(f"({len(rows)} presets in {preset_dir()}; use one with -c NAME, e.g. inpaintgan train -c NAME --data DIR)")
        return 0
    cfg, _ = _load(args)
    sys.stdout.write(dump_config(cfg))
    return 0


def cmd_methods(args) -> int:
    import importlib

    from inpaintgan.registry import get_method, list_methods

    for name in list_methods():
        cls = get_method(name)
        doc = (importlib.import_module(cls.__module__).__doc__ or "").strip().splitlines()
        print(f"{name:12s} {doc[0] if doc else ''}")
    return 0


def export_checkpoint(payload: dict, out: str | Path, half: bool = False, working_size: int = 0) -> Path:
    """Training checkpoint -> safetensors model file with metadata (method, config, data, step, val)."""
    from inpaintgan.checkpoints import build_training_method, save_model

    method, cfg, _ = build_training_method(payload)
    progress = payload.get("progress") if isinstance(payload.get("progress"), dict) else {}
    meta = {
        "training": {
            "data": cfg.data.root,
            "dataset": cfg.data.dataset,
            "masks": cfg.masks.kind,
            "steps": progress.get("step"),
            "batch_size": cfg.train.batch_size,
        },
        "metrics": payload.get("val") or {},
    }
    meta = {**method.extra_state_for_export(), **meta}
    if working_size:  # the scale the Inpainter fills at (fully convolutional networks may differ from training)
        if not getattr(method, "fully_convolutional", True):
            raise ValueError(f"--working-size: {cfg.method} is not fully convolutional; it works at {cfg.data.image_size} only")
        meta["image_size"] = int(working_size)
        meta["training"]["image_size"] = cfg.data.image_size
    return save_model(method, out, meta, half=half)


def cmd_export_deploy(args) -> int:
    """``export --format onnx|torchscript``: the inference network of a run, checkpoint, model file or zoo name."""
    from inpaintgan.checkpoints import load_any, resolve_model
    from inpaintgan.export import ExportError, export_model
    from inpaintgan.export.exporter import SUFFIXES
    from inpaintgan.export.graphs import classical_prefill
    from inpaintgan.training.state import find_resume

    src: str | Path = args.checkpoint
    if Path(src).is_dir():
        src = find_resume(Path(src), "auto")
        if src is None:
            raise FileNotFoundError(f"no checkpoint found in run folder {args.checkpoint}")
    path = resolve_model(src)
    method, meta = load_any(path, "cpu")
    meta = {**meta, "model": path.stem}
    if args.working_size:
        meta["image_size"] = int(args.working_size)
    out = Path(args.output)
    if out.suffix.lower() != SUFFIXES[args.format]:
        print(f"note: {args.format} files are recognised by the suffix {SUFFIXES[args.format]}; writing {out}")
    try:
        written = export_model(method.eval(), out, args.format, meta, int8=args.int8)
    except ExportError as e:
        print(f"error: cannot export: {e}", file=sys.stderr)
        return 2
    prefill = classical_prefill(method)
    print(f"exported {path} -> {written} ({args.format}, {written.stat().st_size / 1e6:.2f} MB)")
    if prefill != "none":
        print(f"note: the {prefill} pre-fill is a classical algorithm, not a network, so it is not in the file: the "
              f"exported graph is the network part and takes the image with its hole already pre-filled "
              f"(Inpainter.from_pretrained / inpaintgan fill compute the pre-fill when they run the file)")
    return 0


def cmd_export(args) -> int:
    from inpaintgan.checkpoints import load_training_state
    from inpaintgan.training.state import find_resume

    if args.format != "safetensors":
        return cmd_export_deploy(args)
    if args.int8:
        raise ValueError("--int8 needs --format onnx")
    src = Path(args.checkpoint)
    ckpt = find_resume(src, "auto") if src.is_dir() else src
    if ckpt is None:
        raise FileNotFoundError(f"no checkpoint found in run folder {src}")
    if Path(args.output).resolve() == Path(ckpt).resolve():
        raise ValueError(f"--output {args.output} is the checkpoint being exported; choose another file name")
    from inpaintgan.checkpoints import check_training_payload

    payload = check_training_payload(load_training_state(ckpt), ckpt)
    path = export_checkpoint(payload, args.output, half=args.half, working_size=args.working_size)
    print(f"exported {ckpt} -> {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train a method (one shared trainer for all methods)",
        description="Train an inpainting method. Phases come from the method; checkpoints, metrics.csv, "
        "TensorBoard logs and sample grids go to train.out_dir.",
    )
    _add_config_args(p)
    p.add_argument("--out", "-o", help="run folder (same as --set train.out_dir=...)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (same as --set train.device=...)")
    p.add_argument(
        "--resume", nargs="?", const="auto", default="",
        help="continue a run: 'auto' (default when given without a value) = newest checkpoint in the run folder, "
        "or a checkpoint path; 'none' starts over in a run folder that already holds checkpoints, deleting "
        "them (without --resume, such a folder is refused rather than silently overwritten)",
    )
    p.add_argument("--export", metavar="FILE", help="after training, export the model to this .safetensors file")
    p.add_argument("--half", action="store_true", help="export weights in float16 (half the size)")
    p.add_argument("--no-progress", "--quiet", "-q", dest="no_progress", action="store_true",
                   help="no progress (else a bar on a terminal, a plain line every 30 s in a log)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("config", help="print a resolved config (preset + overrides) as YAML; --list: the presets")
    _add_config_args(p)
    p.add_argument("--list", action="store_true", help="list the shipped presets")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("methods", help="list the registered methods")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser(
        "export", help="export a training checkpoint (or a run folder's newest) to a .safetensors model, "
        "or a model's inference network to ONNX / TorchScript (--format)",
    )
    p.add_argument("checkpoint", help="training checkpoint .pt, or a run folder; with --format onnx|torchscript also "
                   "a .safetensors model file or a zoo name")
    p.add_argument("--output", "-o", required=True, help="file to write (.safetensors, .onnx, .torchscript)")
    p.add_argument("--format", "-f", choices=("safetensors", "onnx", "torchscript"), default="safetensors",
                   help="safetensors (default): weights + metadata for inpaintgan; onnx: the inference graph for "
                   "onnxruntime (dynamic batch, height, width); torchscript: the same graph for torch.jit.load")
    p.add_argument("--half", action="store_true", help="store weights in float16")
    p.add_argument("--int8", action="store_true", help="with --format onnx: static int8 quantisation (faster on CPUs with "
                   "VNNI; accuracy cost in docs/benchmarks.md)")
    p.add_argument("--working-size", type=int_at_least(0), default=0, metavar="PX",
                   help="the scale the model fills at (fully convolutional methods; default: the training crop size)")
    p.set_defaults(func=cmd_export)
