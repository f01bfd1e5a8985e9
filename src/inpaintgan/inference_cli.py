"""``inpaintgan fill / demo / models / download``: inference from the command line.

``fill`` runs a model on image files or folders. Output names come from the input file names only
(their basename), so nothing is written outside ``-o``; an output that would replace an input image
or mask is refused; every file is written atomically. A bad file (unreadable, mask of another size,
mask covering everything, ...) is reported and skipped; the failures are listed at the end and the
exit code is 1. Errors that stop everything (unknown model, bad option) exit with 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inpaintgan.cli import CLIError
from inpaintgan.cli_types import int_at_least
from inpaintgan.imageio import DEFAULT_MAX_PIXELS, FORMATS, IMAGE_EXTS

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
OUTPUT_FORMATS = ("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff")


# ------------------------------------------------------------------------------------------- fill


def collect_inputs(paths: list[str]) -> list[Path]:
    """Files as given, folders expanded to their image files (not recursive, sorted, no hidden files).

    A path that does not exist stays in the list (it is reported as a failure, like a bad file)."""
    out: list[Path] = []
    for s in paths:
        p = Path(s)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTS and not f.name.startswith("."))
            if not found:
                print(f"warning: folder {p} holds no images ({', '.join(IMAGE_EXTS)})", file=sys.stderr)
            out.extend(found)
        else:
            out.append(p)
    return out


def find_mask(image: Path, mask_dir: Path) -> Path:
    """The mask of ``image`` in ``mask_dir``: same stem, ``.png`` first, then the other image
    extensions, then ``<stem>_mask.<ext>``, then LaMa's ``<stem>_mask<N>.png`` (the first of
    them; :func:`find_masks` gives them all). FileNotFoundError names what was looked for."""
    return find_masks(image, mask_dir)[0]


def find_masks(image: Path, mask_dir: Path) -> list[Path]:
    """Every mask of ``image`` in ``mask_dir``: one file named like the image (see
    :func:`find_mask`), else all of LaMa's ``<stem>_mask000.png``, ``<stem>_mask001.png``, ...
    (``fill`` removes their union)."""
    stem = image.stem
    exts = (".png",) + tuple(e for e in IMAGE_EXTS if e != ".png")
    for name in (stem, f"{stem}_mask"):
        for ext in exts:
            for cand in (mask_dir / f"{name}{ext}", mask_dir / f"{name}{ext.upper()}"):
                if cand.is_file() and cand.resolve() != image.resolve():
                    return [cand]
    lama = sorted(p for p in mask_dir.glob(f"{glob_escape(stem)}_mask*")
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTS and is_lama_mask_name(p.name, stem))
    if lama:
        return lama
    raise FileNotFoundError(f"no mask for {image.name} in {mask_dir} (looked for {stem}.png, {stem}.jpg, ..., "
                            f"{stem}_mask.png, {stem}_mask000.png, ...)")


def _attention_hint() -> str:
    from inpaintgan.catalog import suggestion

    return suggestion("attention-map", "use a model that has one (e.g. method deepfill)")


def glob_escape(s: str) -> str:
    import glob

    return glob.escape(s)


def is_lama_mask_name(name: str, stem: str | None = None) -> bool:
    """True for LaMa's mask naming ``<stem>_mask<digits>.<ext>`` (of ``stem``, if given)."""
    import re

    m = re.fullmatch(r"(.+)_mask\d*\.[A-Za-z]+", name)
    return bool(m) and (stem is None or m.group(1) == stem)


def _resolved(p: Path) -> Path:
    try:
        return p.resolve()
    except OSError:
        return p.absolute()


def _same_file(a: Path, b: Path) -> bool:
    """True if both exist and are one file (hard links, symlinks, case-insensitive file systems)."""
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def plan_outputs(inputs: list[Path], output: str, fmt: str | None, single_file_input: bool) -> tuple[Path | None, list[Path]]:
    """(output folder or None, output path per input). One input file and ``-o`` with an image
    extension (not an existing folder) -> that file; otherwise ``-o`` is a folder and each output is
    named after its input's basename (with the ``--format`` extension if given)."""
    o = Path(output)
    if single_file_input and len(inputs) == 1 and not o.is_dir() and o.suffix.lower() in FORMATS:
        if fmt and FORMATS["." + fmt] != FORMATS[o.suffix.lower()]:
            raise CLIError(f"--format {fmt} disagrees with the output file name {o}")
        return None, [o]
    if o.exists() and not o.is_dir():
        raise CLIError(f"output {o} exists and is not a folder (several inputs need an output folder)")
    names = []
    for p in inputs:
        base = Path(p.name)  # basename only: an input path cannot steer the output elsewhere
        names.append(o / (base.stem + "." + fmt if fmt else base.name))
    return o, names


def attention_map_paths(arg: str | None, outputs: list[Path], single_file_input: bool) -> list[Path] | None:
    """Where ``--attention-map`` writes: PATH for one input file; without PATH, ``<stem>_attention.png``
    beside each output. None when the option is not given."""
    if arg is None:
        return None
    if arg:
        if not (single_file_input and len(outputs) == 1):
            raise CLIError(
                "--attention-map PATH needs a single input image; with several inputs give --attention-map "
                "without a path (maps are written as <stem>_attention.png beside the outputs)"
            )
        return [Path(arg)]
    return [o.with_name(f"{o.stem}_attention.png") for o in outputs]


def attention_image(inpainter: Any, image: Any, hole: np.ndarray) -> np.ndarray:
    """The model's contextual attention for ``image`` (PIL) with ``hole`` (bool (H, W)) as the paper's
    colour-coded flow, uint8 (H, W, 3). The whole image goes through the network, downscaled to the
    working size when it is larger than the auto strategy runs whole (the map is then upscaled back)."""
    import torch
    import torch.nn.functional as F

    from inpaintgan.inpainter import AUTO_FULL_FACTOR

    arr = np.asarray(image.convert("L" if inpainter.channels == 1 else "RGB"), np.float32) / 255.0
    x = torch.from_numpy(arr.reshape(arr.shape[0], arr.shape[1], -1)).permute(2, 0, 1)[None]  # (1, C, H, W)
    m = torch.from_numpy(hole.astype(np.float32))[None, None]  # (1, 1, H, W)
    h, w = hole.shape
    ws = inpainter.working_size
    if max(h, w) > AUTO_FULL_FACTOR * ws:
        size = (max(1, round(h * ws / max(h, w))), max(1, round(w * ws / max(h, w))))
        x, m = F.interpolate(x, size=size, mode="area"), (F.interpolate(m, size=size, mode="area") > 0).float()
    from inpaintgan.tensors import eval_mode, quantize_uint8

    with eval_mode(inpainter.method) as method, torch.inference_mode():
        _, color = method.inpaint_with_attention(x.to(inpainter.device), m.to(inpainter.device))  # (1, 3, h', w')
    color = F.interpolate(color.float().cpu(), size=(h, w), mode="nearest")[0]
    return quantize_uint8(color).permute(1, 2, 0).numpy()


def guide_inputs(args: argparse.Namespace, inpainter: Any) -> tuple[Any, np.ndarray] | None:
    """Check ``--task`` / ``--guide`` / ``--guide-mask`` against each other and the model; the guide
    image and its mask for guided inpainting (else None)."""
    from inpaintgan.imageio import read_image, read_mask

    if (args.guide is None) != (args.guide_mask is None):
        raise CLIError("--guide and --guide-mask go together (the guide image and where it goes)")
    special = args.task == "harmonize" or args.guide is not None
    if args.task == "harmonize" and args.guide is not None:
        raise CLIError("--task harmonize takes no --guide (the guide is for guided inpainting)")
    if special and (args.blend != "none" or args.prefill or args.strategy in ("crop", "resize") or args.attention_map is not None):
        raise CLIError("--blend, --prefill, --attention-map and --strategy crop/resize apply to plain inpainting only")
    method = inpainter.method
    if args.task == "harmonize" and not hasattr(method, "harmonize"):
        from inpaintgan.catalog import suggestion

        raise CLIError(f"--task harmonize: model {args.model} (method {method.name!r}) cannot harmonize; "
                       f"{suggestion('harmonize', 'use e.g. a btgmi model')}")
    if args.guide is not None and not hasattr(method, "guided_inpaint"):
        from inpaintgan.catalog import suggestion

        raise CLIError(f"--guide: model {args.model} (method {method.name!r}) has no guided inpainting; "
                       f"{suggestion('guided', 'use e.g. a btgmi model')}")
    if args.guide is None:
        return None
    return read_image(args.guide, args.max_pixels), read_mask(args.guide_mask, args.max_pixels)


@dataclass
class FillPlan:
    """What ``fill`` works on, checked before any model is loaded: the inputs and where each goes, the
    mask folder or the one mask, and the files no output may replace."""

    inputs: list[Path]
    outputs: list[Path]
    out_dir: Path | None
    single: bool
    mask_dir: Path | None
    shared_mask: np.ndarray | None
    protected: set[Path]


@dataclass
class FillRun:
    """The loaded model and what each file's fill needs besides its own image and masks."""

    inpainter: Any
    guide: tuple[Any, np.ndarray] | None
    attention_for: dict[Path, Path]
    written: dict[Path, Path] = field(default_factory=dict)


def cmd_fill(args: argparse.Namespace) -> int:
    """``inpaintgan fill``: plan (inputs, outputs, masks) -> load the model -> fill each file -> report."""
    from inpaintgan.progress import progress

    plan = plan_fill(args)
    run = load_fill_model(args, plan)
    if plan.out_dir is not None:
        try:
            plan.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CLIError(f"cannot create the output folder {plan.out_dir}: {e.strerror or e}") from None
    failures: list[tuple[Path, str]] = []
    for src, dst in progress(list(zip(plan.inputs, plan.outputs)), desc="fill", unit="img", quiet=args.quiet):
        try:
            fill_one(args, plan, run, src, dst)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the others
            msg = str(e) if isinstance(e, (OSError, ValueError, CLIError, LookupError)) else f"{type(e).__name__}: {e}"
            failures.append((src, msg))
    where = plan.out_dir if plan.out_dir is not None else plan.outputs[0]
    print(f"wrote {len(run.written)} of {len(plan.inputs)} image(s) to {where}")
    if failures:
        print(f"{len(failures)} failed:", file=sys.stderr)
        for src, msg in failures:
            print(f"  {src}: {msg}", file=sys.stderr)
        return 1
    return 0


def plan_fill(args: argparse.Namespace) -> FillPlan:
    """Check the options and the inputs; the inputs (masks beside them in LaMa's layout left out),
    their outputs, and the shared ``--mask`` (read once)."""
    from inpaintgan.imageio import read_mask

    if args.dilate < 0:
        raise CLIError(f"--dilate must be >= 0, got {args.dilate}")
    inputs = collect_inputs(args.images)
    if not inputs:
        raise CLIError("no input images found")
    mask_dir = Path(args.mask_dir) if args.mask_dir else None
    if mask_dir is not None and not mask_dir.is_dir():
        raise CLIError(f"mask folder not found: {mask_dir}")
    if mask_dir is not None:  # LaMa's layout: NAME.png beside NAME_mask000.png in one folder
        masks_here = [p for p in inputs if _resolved(p.parent) == _resolved(mask_dir) and is_lama_mask_name(p.name)
                      and any(is_lama_mask_name(p.name, q.stem) for q in inputs)]
        inputs = [p for p in inputs if p not in masks_here]
        if not inputs:
            raise CLIError("no input images found (only masks)")
    single = len(args.images) == 1 and not Path(args.images[0]).is_dir()
    out_dir, outputs = plan_outputs(inputs, args.output, args.format, single)
    shared_mask = None
    protected = {_resolved(p) for p in inputs}
    if args.mask:
        shared_mask = read_mask(args.mask, args.max_pixels)
        protected.add(_resolved(Path(args.mask)))
    return FillPlan(inputs, outputs, out_dir, single, mask_dir, shared_mask, protected)


def load_fill_model(args: argparse.Namespace, plan: FillPlan) -> FillRun:
    """Load the model and check it can do what was asked (task, guide, attention map)."""
    from inpaintgan.inpainter import Inpainter

    inpainter = Inpainter.from_pretrained(args.model, device=args.device, working_size=args.working_size)
    guide = guide_inputs(args, inpainter)
    if guide is not None:
        plan.protected |= {_resolved(Path(args.guide)), _resolved(Path(args.guide_mask))}
    attention_paths = attention_map_paths(args.attention_map, plan.outputs, plan.single)
    if attention_paths is not None and not hasattr(inpainter.method, "inpaint_with_attention"):
        raise CLIError(
            f"--attention-map: model {args.model} (method {inpainter.method.name!r}) has no contextual attention "
            f"layer; {_attention_hint()}"
        )
    if attention_paths is not None and not getattr(inpainter.method, "has_attention", True):
        raise CLIError(
            f"--attention-map: model {args.model} (method {inpainter.method.name!r}) was built without its "
            f"contextual attention layer (config attention: false); {_attention_hint()}"
        )
    return FillRun(inpainter, guide, dict(zip(plan.outputs, attention_paths or [])))


def fill_one(args: argparse.Namespace, plan: FillPlan, run: FillRun, src: Path, dst: Path) -> None:
    """One input: its masks, checks that nothing is overwritten, read by the one reader, fill, write by
    the one writer (mode, depth, alpha, ICC, DPI, EXIF kept) and the attention map if asked."""
    from inpaintgan.imagefile import read_image_file, write_image_file
    from inpaintgan.imageio import dilate_mask, write_image

    mask_paths = find_masks(src, plan.mask_dir) if plan.mask_dir is not None else [Path(args.mask)]
    key = _resolved(dst)
    if key in plan.protected or key in {_resolved(p) for p in mask_paths} or any(_same_file(dst, p) for p in (src, *mask_paths)):
        raise CLIError(f"output {dst} would overwrite an input; choose another -o")
    if key in run.written:
        raise CLIError(f"output name {dst.name} is already taken by {run.written[key]} (same file name in two inputs)")
    source = read_image_file(src, args.max_pixels)  # mode, depth, alpha, ICC, DPI, EXIF kept
    mask = fill_mask(args, plan, mask_paths, source.size, src)
    result = _run_model(args, run, src, source.model_input(), mask)
    att = run.attention_for.get(dst)
    if att is not None and (_resolved(att) in plan.protected or _resolved(att) == key or _resolved(att) in run.written):
        raise CLIError(f"attention map {att} would overwrite an input or an output; choose another path")
    hole = dilate_mask(mask, args.dilate) | (run.guide[1] if run.guide is not None else False)
    write_image_file(dst, source.merge(result, hole), like=source, format=args.format, quality=args.quality)
    run.written[key] = src
    if att is not None:
        write_image(attention_image(run.inpainter, source.to_pil_rgb(), dilate_mask(mask, args.dilate)), att)


def fill_mask(args: argparse.Namespace, plan: FillPlan, mask_paths: list[Path], size: tuple[int, int], src: Path) -> np.ndarray:
    """The hole of one input: the shared mask or the union of its mask files, checked against its size."""
    from inpaintgan.imageio import fit_mask, read_mask

    mask_path = mask_paths[0]
    mask = plan.shared_mask if plan.shared_mask is not None else read_mask(mask_path, args.max_pixels)
    for extra in mask_paths[1:]:  # LaMa's <stem>_mask000.png, _mask001.png, ...: their union
        more = read_mask(extra, args.max_pixels)
        if more.shape != mask.shape:
            raise CLIError(f"masks {mask_path.name} and {extra.name} have different sizes")
        mask = mask | more
    return fit_mask(mask, size, args.resize_mask, mask_name=f"mask {mask_path}", image_name=f"image {src}")


def _run_model(args: argparse.Namespace, run: FillRun, src: Path, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The task (harmonize, guided or plain inpainting) on one image; its warnings printed, naming the file."""
    from tqdm.auto import tqdm

    from inpaintgan.imageio import dilate_mask

    inpainter, guide = run.inpainter, run.guide
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.task == "harmonize":
            result = inpainter.harmonize(image, dilate_mask(mask, args.dilate))
        elif guide is not None:
            result = inpainter.guided(image, dilate_mask(mask, args.dilate), *guide)
        else:
            result = inpainter(
                image, mask, strategy=args.strategy, dilate=args.dilate,
                blend=args.blend, prefill=args.prefill,
            )
    for w in caught:
        tqdm.write(f"warning: {src}: {w.message}", file=sys.stderr)
    return result


# ------------------------------------------------------------------------------------------- demo


def demo_examples(assets: Path = ASSETS_DIR) -> list[tuple[Path, Path]]:
    """(image, mask) pairs bundled with the package: ``<name>.jpg`` + ``<name>_mask.png``."""
    pairs = []
    for img in sorted(assets.glob("*.jpg")):
        mask = img.with_name(f"{img.stem}_mask.png")
        if mask.is_file():
            pairs.append((img, mask))
    return pairs


def mask_overlay(image: np.ndarray, mask: np.ndarray, color=(255, 0, 0), alpha: float = 0.6) -> np.ndarray:
    """The image with its hole tinted (uint8 (H, W, 3))."""
    out = image.astype(np.float32)
    out[mask] = out[mask] * (1 - alpha) + np.asarray(color, np.float32) * alpha
    return out.round().astype(np.uint8)


def comparison_grid(rows: list[list[np.ndarray]], gap: int = 8) -> np.ndarray:
    """Rows of uint8 (H, W, 3) panels side by side, rows stacked, on a white background."""
    heights = [max(p.shape[0] for p in r) for r in rows]
    widths = [sum(p.shape[1] for p in r) + gap * (len(r) - 1) for r in rows]
    canvas = np.full((sum(heights) + gap * (len(rows) + 1), max(widths) + 2 * gap, 3), 255, np.uint8)
    y = gap
    for r, h in zip(rows, heights):
        x = gap
        for p in r:
            canvas[y : y + p.shape[0], x : x + p.shape[1]] = p
            x += p.shape[1] + gap
        y += h + gap
    return canvas


def cmd_demo(args: argparse.Namespace) -> int:
    from inpaintgan.imageio import read_image, read_mask, write_image
    from inpaintgan.inpainter import Inpainter

    examples = demo_examples()
    if not examples:
        raise CLIError(f"no example images found in {ASSETS_DIR} (broken installation?)")
    inpainter = Inpainter.from_pretrained(args.model, device=args.device)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for img_path, mask_path in examples:
        image, mask = read_image(img_path), read_mask(mask_path)
        result = inpainter(image, mask)
        write_image(result, out / f"{img_path.stem}_filled.png")
        rows.append([mask_overlay(np.asarray(image), mask), np.asarray(result)])
    path = write_image(comparison_grid(rows), out / "comparison.png")
    print(f"model {inpainter.name} ({inpainter.method.name}, {inpainter.image_size}px) on {len(rows)} examples")
    print(f"results: {out}/<name>_filled.png")
    print(f"before | after: {path}")
    return 0


# ----------------------------------------------------------------------------------- models, download


def cmd_models(args: argparse.Namespace) -> int:
    from inpaintgan.checkpoints import list_models

    rows = list_models()
    print(f"{'name':<16} {'method':<10} {'size':>6}  {'installed':<9}  description")
    for r in rows:
        size = f"{r['image_size']}px" if r["image_size"] else "?"
        print(f"{r['name']:<16} {r['method']:<10} {size:>6}  {'yes' if r['installed'] else 'no':<9}  {r['description']}")
        if r["installed"]:
            print(f"{'':<16} at {r['path']} ({r['file_mb']} MB)")
        elif r["problem"]:
            print(f"{'':<16} unusable: {r['problem']}")
        elif r["embedded"]:
            print(f"{'':<16} missing: expected at {r['path']}")
        else:
            print(f"{'':<16} not downloaded: 'inpaintgan download {r['name']}' puts it at {r['path']}")
    from inpaintgan.classical import CLASSICAL, DESCRIPTIONS, WORKING_SIZE

    for name in CLASSICAL:
        print(f"{name:<16} {name:<10} {f'{WORKING_SIZE}px':>6}  {'yes':<9}  {DESCRIPTIONS[name]}")
    if args.all:
        from inpaintgan.catalog import research_models

        rows = research_models()
        print(f"\nResearch models in this checkout ({len(rows)}; use with --model PATH):")
        for r in rows:
            size = f"{r['image_size']}px" if r["image_size"] else "?"
            print(f"{r['name']:<20} {r['method']:<9} {size:>6}  {r['file_mb']:>5} MB  tasks: {', '.join(r['tasks']) or '?'};"
                  f" data: {r['data']}" + (f", {r['steps']} steps" if r["steps"] else ""))
            print(f"{'':<20} {r['path']}" + (f"  (docs/results.md: {r['section']})" if r["section"] else ""))
    else:
        print("inpaintgan models --all also lists the research models of a checkout (docs/eval/*/models).")
    print("Any .safetensors model file can be given instead of a name (--model PATH).")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from inpaintgan.checkpoints import MODEL_ZOO, download_model, model_file

    for name in args.names:
        entry = MODEL_ZOO.get(name)
        if entry is not None and entry.get("embedded"):
            path = download_model(name)  # the embedded file (an error if it is missing)
            print(f"{name}: embedded in the package, nothing to download ({path})")
            continue
        if entry is not None and model_file(name).is_file() and not args.force:
            print(f"{name}: already downloaded ({model_file(name)}); --force downloads it again")
            continue
        path = download_model(name, force=args.force, progress=not args.quiet)
        print(f"{name}: {path}")
    return 0


# ----------------------------------------------------------------------------------------- parsers


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default="default", help="zoo name or classical fill (telea, ns, patchmatch; see 'inpaintgan models') or a .safetensors file (default: default)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default: auto)")


def quality_arg(text: str) -> int | str:
    """``--quality``: an integer 1..100 or ``keep``."""
    if text.strip().lower() == "keep":
        return "keep"
    try:
        q = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 1..100 or 'keep', got {text!r}") from None
    if not 1 <= q <= 100:
        raise argparse.ArgumentTypeError(f"must be 1..100 or 'keep', got {q}")
    return q


def register(sub: Any) -> None:
    p = sub.add_parser(
        "fill", help="inpaint image files or folders",
        description="Fill the holes of images (white in the mask = hole) with a trained model. Outputs "
        "keep the input's file name and format (or --format) and never replace an input.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files and/or folders of images")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--mask", help="one mask for every image (white = hole)")
    g.add_argument("--mask-dir", help="folder of masks named like the images (same stem, .png preferred; or <stem>_mask.*; "
                   "or LaMa's <stem>_mask000.png, ... whose union is removed)")
    p.add_argument("--output", "-o", required=True, help="output file (one input file) or folder")
    _add_model_args(p)
    p.add_argument("--strategy", default="auto", choices=("auto", "full", "crop", "resize"),
                   help="auto (default): the whole image when its short side is at most 2x the working size, else a crop around each hole")
    p.add_argument("--working-size", type=int_at_least(1), default=None, help="scale the network works at (default: the model's training size)")
    p.add_argument("--dilate", type=int, default=0, metavar="N", help="grow the holes by N pixels (default 0)")
    p.add_argument("--resize-mask", action="store_true", help="resize masks of another size to the image (else an error)")
    p.add_argument("--blend", default="none", choices=("none", "poisson"), help="Poisson-blend the fill into the image (GLCIC's post-processing)")
    p.add_argument("--prefill", action="store_true",
                   help="fast-marching (Telea) pre-fill of the holes before the network (for methods that read the "
                   "hole's pixels; GLCIC replaces them with its mean fill)")
    p.add_argument("--attention-map", nargs="?", const="", default=None, metavar="PATH",
                   help="also write the contextual attention as a colour-coded flow image (models with an attention "
                   "layer, e.g. deepfill): to PATH for one input image, else as <stem>_attention.png beside each output")
    p.add_argument("--task", default="inpaint", choices=("inpaint", "harmonize"),
                   help="inpaint (default) | harmonize: re-tone the mask's region to fit the image (models that can, e.g. btgmi)")
    p.add_argument("--guide", metavar="IMAGE", help="guided inpainting: a guide image of the input's size, used where "
                   "--guide-mask is white and blended in while the rest of the hole is filled (models that can, e.g. btgmi)")
    p.add_argument("--guide-mask", metavar="MASK", help="where the guide image's pixels go (white), with --guide")
    p.add_argument("--format", choices=OUTPUT_FORMATS, help="output format (default: the input's)")
    p.add_argument("--quality", type=quality_arg, default=95, metavar="Q|keep",
                   help="JPEG/WebP quality 1..100 (default 95), or 'keep': JPEG reuses the input's quantisation "
                   "tables, WebP is written lossless. PNG, TIFF and BMP keep known pixels bit for bit anyway")
    p.add_argument("--max-pixels", type=int_at_least(0), default=DEFAULT_MAX_PIXELS, help=f"refuse larger images (default {DEFAULT_MAX_PIXELS:,}; 0 = no limit of ours)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or per-file messages")
    p.set_defaults(func=cmd_fill)

    p = sub.add_parser("demo", help="run the default model on the bundled example photos",
                       description="Inpaint the bundled example photos and write a before/after comparison image.")
    p.add_argument("--output", "-o", default="inpaintgan-demo", help="output folder (default: ./inpaintgan-demo)")
    _add_model_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("models", help="list the named models (installed or not, where, what)")
    p.add_argument("--all", action="store_true",
                   help="also the research models of a checkout (docs/eval/*/models; INPAINTGAN_MODEL_DIRS)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("download", help="download named models into the cache (checksum verified)",
                       description="Download models that are not shipped with the package into the cache folder "
                       "($INPAINTGAN_CACHE, else ~/.cache/inpaintgan). Nothing is ever downloaded implicitly.")
    p.add_argument("names", nargs="+", metavar="NAME", help="model names (see 'inpaintgan models')")
    p.add_argument("--force", action="store_true", help="download again even if present")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_download)
