"""The ``inpaintgan`` command line. Each group of subcommands lives beside the code it drives and
registers itself here through a ``register(subparsers)`` function."""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from inpaintgan import __version__

# Modules that add subcommands; each has ``register(subparsers) -> None`` and sets ``func`` defaults.
SUBCOMMAND_MODULES = (
    "inpaintgan.training.cli",  # train, config, methods, export
    "inpaintgan.training.plot",  # plot
    "inpaintgan.inference_cli",  # fill, demo, models, download
    "inpaintgan.eval.cli",  # eval, masks
    "inpaintgan.server.cli",  # serve
)


class CLIError(Exception):
    """An error to report to the user in one line, without a traceback (exit code 2: usage)."""


#: set INPAINTGAN_DEBUG=1 to get the traceback of an unexpected error as well as its one-line message
DEBUG_ENV = "INPAINTGAN_DEBUG"


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="inpaintgan",
        description="Image inpainting with GANs: fill holes in photos, train and evaluate published methods.",
        epilog="Run 'inpaintgan COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"inpaintgan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in SUBCOMMAND_MODULES:
        importlib.import_module(mod).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from inpaintgan.checkpoints import CheckpointError
    from inpaintgan.config import ConfigError
    from inpaintgan.registry import UnknownNameError

    usage_errors = (CLIError, ConfigError, UnknownNameError, CheckpointError, FileNotFoundError, NotADirectoryError, ValueError)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"inpaintgan {args.command}: interrupted", file=sys.stderr)
        return 130
    except usage_errors as e:  # a bad option, config value or input: exit 2
        print(f"inpaintgan {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - anything else failed while running: one line, exit 1
        hint = "" if _expected(e) else f" (set {DEBUG_ENV}=1 for the traceback)"
        print(f"inpaintgan {args.command}: error: {one_line(e, with_type=not _expected(e))}{hint}", file=sys.stderr)
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        return 1


def _expected(e: BaseException) -> bool:
    """Errors whose message says everything: the project's own, and the system's (disk, memory)."""
    return isinstance(e, (OSError, FloatingPointError, MemoryError)) or type(e).__module__.startswith("inpaintgan")


def one_line(e: BaseException, with_type: bool = False) -> str:
    """An exception's message on one line (multi-line messages, e.g. torch's, are joined)."""
    text = " ".join(part.strip() for part in str(e).splitlines() if part.strip()) or type(e).__name__
    if len(text) > 600:
        text = text[:600] + " ..."
    return f"{type(e).__name__}: {text}" if with_type else text


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
