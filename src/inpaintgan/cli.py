"""The ``inpaintgan`` command line. Each group of subcommands lives beside the code it drives and
registers itself here through a ``register(subparsers)`` function."""

from __future__ import annotations

import argparse
import sys

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
    """An error to report to the user in one line, without a traceback."""


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

    try:
        return int(args.func(args) or 0)
    except (CLIError, ConfigError, UnknownNameError, CheckpointError, FileNotFoundError, NotADirectoryError, ValueError) as e:
        print(f"inpaintgan {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"inpaintgan {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
