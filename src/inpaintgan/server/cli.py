"""``inpaintgan serve``: the web UI and REST API on a local port (uvicorn).

The model is loaded once, before the port opens; the URL to open is printed once the server
listens. The default address is the loopback one (127.0.0.1): only this computer can reach it, and
requests whose ``Host`` header is not a loopback name are refused (DNS rebinding). ``--host 0.0.0.0``
opens it to the network, with a warning: there is no authentication.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

from inpaintgan.cli import CLIError
from inpaintgan.cli_types import int_at_least

LOOPBACK_NAMES = ("localhost", "127.0.0.1")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_for(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # what to open on this machine
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from inpaintgan.server.app import ServerLimits, create_app
    except ImportError as e:  # pragma: no cover - they are dependencies
        raise CLIError(f"the web server needs fastapi, uvicorn and python-multipart ({e}); pip install fastapi uvicorn python-multipart") from None
    from inpaintgan.inpainter import Inpainter

    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be 0..65535 (0 = any free port), got {args.port}")
    limits = ServerLimits(
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=args.max_pixels,
        max_in_flight=args.max_in_flight,
        max_queued=args.max_queued,
        read_timeout_s=args.read_timeout,
        min_body_rate=args.min_body_rate,
    )
    folder = None
    if args.input or args.output_dir:
        from inpaintgan.server.folder import Folder, FolderError

        if not (args.input and args.output_dir):
            raise CLIError("--input and --output-dir go together: a folder of photos and where their results go")
        try:
            folder = Folder(args.input, args.output_dir)
        except FolderError as e:
            raise CLIError(str(e)) from None
    inpainter = Inpainter.from_pretrained(args.model, device=args.device)
    allowed = ["loopback"] if is_loopback(args.host) else None  # every loopback form, [::1] included
    app = create_app(inpainter, device=args.device, zoo=not args.no_zoo, limits=limits, allowed_hosts=allowed, folder=folder)
    if not is_loopback(args.host):
        print(f"warning: listening on {args.host}: anyone who can reach this machine can use the server "
              "(there is no authentication)", file=sys.stderr)

    def started(port: int) -> None:
        url = url_for(args.host, port)
        print(f"inpaintgan serve: model {inpainter.name} ({getattr(inpainter.method, 'name', '?')}, "
              f"{inpainter.image_size} px) on {inpainter.device}", flush=True)
        if folder is not None:
            print(f"{len(folder.files)} photos from {folder.input_dir}; results go to {folder.output_dir}", flush=True)
        print(f"Open {url} in a browser (API: {url}api/v1/docs). Press Ctrl+C to stop.", flush=True)

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                port = args.port
                try:
                    port = self.servers[0].sockets[0].getsockname()[1]
                except (AttributeError, IndexError, OSError):  # pragma: no cover - uvicorn internals moved
                    pass
                started(port)

    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            access_log=args.access_log, timeout_graceful_shutdown=5)
    Server(config).run()
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve", help="web page and REST API for object removal (http://127.0.0.1:8080/)",
        description="Serve the web UI (paint over what should go, press Remove) and the REST API "
        "(POST /api/v1/inpaint, GET /api/v1/models, GET /api/v1/health; OpenAPI at /api/v1/docs). "
        "Bound to this computer only unless --host says otherwise.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer only)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 = any free port)")
    p.add_argument("--model", "-m", default="default",
                   help="the served model: zoo name (see 'inpaintgan models') or a .safetensors file (default: default)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default: auto)")
    p.add_argument("--input", metavar="DIR", help="a folder of photos to work through in the page (thumbnails); "
                   "each result is saved to --output-dir under the photo's name and format")
    p.add_argument("--output-dir", metavar="DIR", help="where --input's results go (never the input folder)")
    p.add_argument("--no-zoo", action="store_true", help="offer only --model, not the other installed zoo models")
    p.add_argument("--max-in-flight", type=int, default=1, metavar="N", help="inferences at once (default 1)")
    p.add_argument("--max-queued", type=int, default=4, metavar="N",
                   help="requests waiting for an inference; more get 503 + Retry-After (default 4)")
    p.add_argument("--max-upload-mb", type=float, default=50.0, metavar="MB", help="largest request body (default 50 MiB)")
    p.add_argument("--max-pixels", type=int_at_least(1), default=25_000_000, metavar="N",
                   help="largest image, width x height, checked before decoding (default 25,000,000)")
    p.add_argument("--read-timeout", type=float, default=10.0, metavar="S",
                   help="longest wait for the next part of a request body; slower uploads get 408 (default 10)")
    p.add_argument("--min-body-rate", type=float, default=1024.0, metavar="B",
                   help="slowest accepted average upload rate, bytes/s, after 5 s (default 1024; 0 = none)")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"),
                   help="uvicorn's log level (default warning)")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(func=cmd_serve)
