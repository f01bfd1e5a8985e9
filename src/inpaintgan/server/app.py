"""The ASGI app behind ``inpaintgan serve``: a REST API (``/api/v1``) and the web page (``/``).

Endpoints
---------
- ``POST /api/v1/inpaint``: ``multipart/form-data`` with file parts ``image`` and ``mask``, or
  ``application/json`` with base64 (or ``data:`` URL) strings ``image`` and ``mask``; options
  ``model`` (a name from ``/api/v1/models``), ``strategy`` (auto | full | crop | resize), ``dilate``
  (px, 0..:attr:`ServerLimits.max_dilate`), ``blend`` (none | poisson), ``resize_mask`` (bool),
  ``format`` (png | jpeg; default from the ``Accept`` header, else png), ``quality`` (JPEG, 1..100).
  Returns the image (same size and mode as the input; known pixels unchanged bit for bit in PNG).
- ``GET /api/v1/models``, ``GET /api/v1/health``; the OpenAPI schema at ``/api/v1/openapi.json``
  (Swagger UI at ``/api/v1/docs``).

Errors are JSON ``{"status": int, "error": code, "message": text}`` with 400 (malformed request or
option: unknown model, bad strategy, too deeply nested JSON, a Host header of another machine, ...),
404/405, 408 (the body came too slowly), 413 (too many bytes or pixels), 415 (neither
multipart nor JSON), 422 (a file that cannot be used: not an image, truncated, mask of another size,
empty or full mask), 500 (the model failed; details only in the server log) and 503 (queue full;
``Retry-After`` says when to try again).

Resources are bounded: at most ``max_in_flight`` requests are decoded, inferred and encoded at once
(in a dedicated thread pool, off the event loop, so the page, health and other requests stay
responsive) and at most ``max_queued`` more wait; while that queue is full a request is refused with
503 *before its body is read*, so a flood cannot fill the memory. Bodies are read before a request
takes a queue place, at most ``max_reading`` at once, and must arrive in time: each part within
``read_timeout_s``, the whole body within ``body_timeout_s``, and at ``min_body_rate`` bytes/s or
faster after ``rate_grace_s`` (else 408). Slow senders hold reading places only, and only briefly:
they cannot lock others out of the queue. Bodies are capped by ``Content-Length`` and again while
streaming (``Transfer-Encoding: chunked`` bodies too); an image's pixel count and decoded size are
checked from its header before it is decoded (the memory budget, :attr:`ServerLimits.memory_budget_bytes`,
follows from the pixel limit), and only PNG, JPEG, WebP, BMP, TIFF and GIF are opened. Every error
is JSON, including a refused ``Host`` header (400 ``invalid_host``; every loopback form, IPv6 too)
and unexpected failures (500 ``internal_error``). Model names in requests are names only: the
served model or an installed zoo model, never a path.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from inpaintgan import __version__
from inpaintgan.imagefile import (
    ImageFile,
    ImageReadError,
    ReadRules,
    encode_image_file,
    open_image,
    read_image_file,
)
from inpaintgan.imagefile import human_bytes as _mb
from inpaintgan.imageio import dilate_mask, fit_mask, read_mask
from inpaintgan.inpainter import STRATEGIES, Inpainter
from inpaintgan.postprocess import BLEND_MODES
from inpaintgan.server.guards import BodyTooSlow, HostCheck, timed_receive

log = logging.getLogger("inpaintgan.server")

STATIC_DIR = Path(__file__).resolve().parent / "static"
API = "/api/v1"
#: what Pillow may open from a request (no plugin that shells out or parses exotic formats)
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
OUTPUT_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG"}
OPTION_FIELDS = ("model", "strategy", "dilate", "blend", "resize_mask", "format", "quality")
#: the page's Content-Security-Policy: everything from this server only (blob: for the images)
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


#: peak working memory of one request per image pixel (decode, mask, fill, encode), rounded up from
#: the 45.5 bytes measured for a 24 MP PNG with a hole of a quarter of each side (the crop strategy's
#: window is then most of the photo, in float32; benchmarks/bench_server.py --large): the basis of
#: :attr:`ServerLimits.memory_budget_bytes`
WORK_BYTES_PER_PIXEL = 48


@dataclass(frozen=True)
class ServerLimits:
    """Resource limits of the server (``inpaintgan serve --help`` sets them)."""

    #: largest request body (multipart or JSON, all parts together)
    max_upload_bytes: int = 50 * 1024 * 1024
    #: largest image or mask, width x height, checked from the file header before decoding
    max_pixels: int = 25_000_000
    #: inferences running at once (one model is shared; on a CPU one at a time is fastest)
    max_in_flight: int = 1
    #: requests admitted to wait for an inference slot; the next ones get 503 + Retry-After
    max_queued: int = 4
    #: largest ``dilate`` option (px)
    max_dilate: int = 64
    #: request bodies read at once (before a request takes an inference place); more get 503
    max_reading: int = 16
    #: longest wait for the next part of a request body (s); slower clients get 408
    read_timeout_s: float = 10.0
    #: longest time for a whole request body (s)
    body_timeout_s: float = 300.0
    #: slowest average body rate (bytes/s) accepted once ``rate_grace_s`` have passed (0 = no minimum)
    min_body_rate: float = 1024.0
    rate_grace_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_in_flight", "max_reading"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_queued", "max_dilate", "min_body_rate", "rate_grace_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("read_timeout_s", "body_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    @property
    def decode_budget_bytes(self) -> int:
        """Largest decoded image (bytes, from its header): the pixel limit at 8-bit RGBA, 4 bytes a
        pixel. A 16-bit or float image therefore may have fewer pixels than ``max_pixels``."""
        return 4 * self.max_pixels

    @property
    def memory_budget_bytes(self) -> int:
        """What decoding and inference may hold at once, beyond the model: each of the ``max_in_flight``
        pool threads works on one request at a time, about :data:`WORK_BYTES_PER_PIXEL` bytes per pixel
        at the pixel limit (image, mask, hole, output and their working copies)."""
        return self.max_in_flight * WORK_BYTES_PER_PIXEL * self.max_pixels


class ApiError(Exception):
    """An error answered as JSON ``{"status", "error", "message"}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, self.headers)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": status, "error": code, "message": message}, status_code=status, headers=headers)


class ErrorBody(BaseModel):
    """The body of every error answer."""

    status: int
    error: str
    message: str


# ---------------------------------------------------------------------------------------- models


class ModelPool:
    """The served model (loaded once, shared by all requests), extra in-memory models, and the
    installed zoo models, each loaded on first use and then kept. Requests name models; names are
    looked up here only, so a request can never make the server open a path of its choosing."""

    def __init__(self, default: Inpainter, extra: Mapping[str, Inpainter] | None, zoo: bool, device: str):
        self.default_name = str(default.name)
        self._loaded: dict[str, Inpainter] = {self.default_name: default}
        for name, inp in (extra or {}).items():
            self._loaded.setdefault(str(name), inp)
        self.zoo, self.device = zoo, device
        self._lock = threading.Lock()

    @property
    def default(self) -> Inpainter:
        return self._loaded[self.default_name]

    def _zoo_rows(self) -> list[dict[str, Any]]:
        if not self.zoo:
            return []
        from inpaintgan.checkpoints import list_models
        from inpaintgan.classical import CLASSICAL, DESCRIPTIONS, WORKING_SIZE

        rows = [r for r in list_models() if r["installed"] and r["name"] not in self._loaded]
        return rows + [dict(name=n, method=n, image_size=WORKING_SIZE, description=DESCRIPTIONS[n])
                       for n in CLASSICAL if n not in self._loaded]

    def names(self) -> list[str]:
        return list(self._loaded) + [r["name"] for r in self._zoo_rows()]

    def describe(self) -> list[dict[str, Any]]:
        rows = []
        for name, inp in self._loaded.items():
            meta = inp.metadata
            rows.append(dict(
                name=name, method=getattr(inp.method, "name", type(inp.method).__name__),
                image_size=inp.image_size, loaded=True, default=name == self.default_name,
                description=str(meta.get("description") or _zoo_description(name) or ""),
            ))
        for r in self._zoo_rows():
            rows.append(dict(name=r["name"], method=r["method"], image_size=r["image_size"], loaded=False,
                             default=False, description=r["description"]))
        return rows

    def check(self, name: Any) -> str:
        """The model name to use, or a 400 naming the available ones."""
        if name is None or name == "":
            return self.default_name
        if not isinstance(name, str) or len(name) > 200:
            raise ApiError(400, "bad_option", "model must be a model name (see GET /api/v1/models)")
        if name in self._loaded or name in {r["name"] for r in self._zoo_rows()}:
            return name
        shown = name if name.isprintable() and len(name) <= 80 else repr(name[:80])
        raise ApiError(400, "unknown_model", f"unknown model {shown!r}; available models: {', '.join(self.names())} "
                       "(a request names a model; it cannot give a file path)")

    def get(self, name: str) -> Inpainter:
        """The inpainter of a checked name; zoo models are loaded here on first use (once)."""
        with self._lock:
            inp = self._loaded.get(name)
            if inp is None:
                from inpaintgan.checkpoints import MODEL_ZOO
                from inpaintgan.classical import CLASSICAL

                if name not in MODEL_ZOO and name not in CLASSICAL:  # only names reach from_pretrained: never a path
                    raise ApiError(400, "unknown_model", f"unknown model {name!r}")
                inp = Inpainter.from_pretrained(name, device=self.device)
                self._loaded[name] = inp
            return inp


def _zoo_description(name: str) -> str | None:
    from inpaintgan.checkpoints import MODEL_ZOO

    entry = MODEL_ZOO.get(name)
    return entry.get("description") if entry else None


# ------------------------------------------------------------------------------ admission control


class InferenceQueue:
    """Bounded admission + a dedicated thread pool for inference.

    A request first takes a *reading* place (:meth:`try_read`, at most ``max_reading``) while its body
    is read under the body time limits, then is *admitted* (:meth:`try_admit`) and holds its place
    until its work has finished (or it failed earlier); at most ``max_in_flight + max_queued`` are
    admitted at once. While the queue is full, requests are refused before their body is read. So
    memory is bounded by ``max_reading + max_in_flight + max_queued`` request bodies and
    ``max_in_flight`` decoded images. Decoding, inference and encoding run in a pool of
    ``max_in_flight`` threads; the event loop only waits for it.
    """

    def __init__(self, max_in_flight: int, max_queued: int, max_reading: int = 16):
        self.max_in_flight, self.max_queued, self.max_reading = max_in_flight, max_queued, max_reading
        self.reading = 0  # bodies being read; changed on the event loop only
        self.admitted = 0  # changed on the event loop only
        self.running = 0
        self.served = 0
        self.rejected = 0
        self.avg_seconds: float | None = None  # moving average of one inference
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def capacity(self) -> int:
        return self.max_in_flight + self.max_queued

    def try_read(self) -> bool:
        """Take a place to read a request body: refused while the queue is full (the body would be
        refused anyway) or ``max_reading`` bodies are being read."""
        if self.admitted >= self.capacity or self.reading >= self.max_reading:
            self.rejected += 1
            return False
        self.reading += 1
        return True

    def done_reading(self) -> None:
        self.reading = max(0, self.reading - 1)

    def try_admit(self) -> bool:
        if self.admitted >= self.capacity:
            self.rejected += 1
            return False
        self.admitted += 1
        return True

    def release(self) -> None:
        self.admitted = max(0, self.admitted - 1)

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the queue ahead times the average inference."""
        avg = self.avg_seconds if self.avg_seconds is not None else 1.0
        return max(1, math.ceil(avg * max(1, self.admitted) / self.max_in_flight))

    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="inpaintgan-infer")
        return self._executor

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def run(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in the inference pool; the caller's admission is released when it ends (even
        if the awaiting request is cancelled: the place stays taken while the work still runs)."""
        loop = asyncio.get_running_loop()

        def job() -> Any:
            with self._lock:
                self.running += 1
            t = time.perf_counter()
            try:
                return fn()
            finally:
                dt = time.perf_counter() - t
                with self._lock:
                    self.running -= 1
                    self.served += 1
                    self.avg_seconds = dt if self.avg_seconds is None else 0.7 * self.avg_seconds + 0.3 * dt

        def done(_f: Any) -> None:
            try:
                loop.call_soon_threadsafe(self.release)
            except RuntimeError:  # the loop is gone (shutdown)
                pass

        fut = self.executor().submit(job)
        fut.add_done_callback(done)
        return await asyncio.wrap_future(fut)

    def state(self) -> dict[str, Any]:
        return dict(
            in_flight=self.running, queued=max(0, self.admitted - self.running), reading=self.reading, served=self.served,
            rejected=self.rejected, max_in_flight=self.max_in_flight, max_queued=self.max_queued,
            avg_inference_s=None if self.avg_seconds is None else round(self.avg_seconds, 4),
        )


# -------------------------------------------------------------------------------- request parsing


def body_receive(request: Request, limits: ServerLimits) -> Callable:
    """The request's ``receive`` with the body limits: bytes (413) and time (408, see
    :func:`~inpaintgan.server.guards.timed_receive`)."""
    timed = timed_receive(request.receive, limits.read_timeout_s, limits.body_timeout_s, limits.min_body_rate, limits.rate_grace_s)

    async def guarded() -> dict:
        try:
            return await timed()
        except BodyTooSlow as e:
            raise ApiError(408, "body_too_slow", str(e), headers={"Connection": "close"}) from None

    return _capped_receive(guarded, limits.max_upload_bytes)


def _capped_receive(receive: Callable, limit: int) -> Callable:
    """Wrap an ASGI ``receive`` so that a body longer than ``limit`` bytes stops with a 413 while
    it streams in (``Content-Length`` can be absent or lie)."""
    total = 0

    async def wrapped() -> dict:
        nonlocal total
        message = await receive()
        if message.get("type") == "http.request":
            total += len(message.get("body", b""))
            if total > limit:
                raise ApiError(413, "upload_too_large", f"the request body is over this server's limit of {_mb(limit)}",
                               headers={"Connection": "close"})
        return message

    return wrapped


async def drain_body(request: Request, limits: ServerLimits) -> None:
    """Read and drop a request body we answer without using (503): answering while the client is
    still sending and then closing would reset the connection, and the client would see an error
    instead of the 503. Nothing is kept; a body over ``limit`` gets its 413."""
    try:
        async for _chunk in Request(request.scope, body_receive(request, limits)).stream():
            pass
    except ClientDisconnect:
        pass


async def read_multipart(req: Request, file_keys: tuple[str, ...], n_fields: int) -> tuple[dict[str, bytes], dict[str, Any]]:
    """(file parts by name, text fields) of a multipart body: only ``file_keys`` may be files, each
    at most once; at most ``n_fields`` text fields; anything else is a one-line 400."""
    form = await req.form(max_files=len(file_keys), max_fields=n_fields + len(file_keys), max_part_size=64 * 1024)
    files: dict[str, bytes] = {}
    fields: dict[str, Any] = {}
    try:
        for key, value in form.multi_items():
            if key in file_keys:
                if isinstance(value, str):
                    raise ApiError(400, "bad_request", f"'{key}' must be a file part (curl: -F {key}=@file.png)")
                if key in files:
                    raise ApiError(400, "bad_request", f"'{key}' given twice")
                files[key] = await value.read()
            elif isinstance(value, str):
                fields[key] = value
            else:
                names = ", ".join(repr(k) for k in file_keys)
                raise ApiError(400, "bad_request", f"unexpected file part {key!r}; the files are {names}")
    finally:
        await form.close()
    return files, fields


async def read_request_body(request: Request, queue: InferenceQueue, limits: ServerLimits, reader: Callable) -> Any:
    """``reader(request, limits)``'s result, read before the request takes an inference place: the
    declared length is checked first (413), then a *reading* place is taken (503 when none: the body
    is read, time-limited, and dropped, so a flood costs no memory). A client that sends slowly holds
    a reading place only (``max_reading`` of them), and only until the body limits end it with a 408."""
    length = request.headers.get("content-length")
    if length is not None:
        try:
            n = int(length)
        except ValueError:
            raise ApiError(400, "bad_request", "invalid Content-Length header") from None
        if n > limits.max_upload_bytes:
            raise ApiError(413, "upload_too_large",
                           f"the request body is {_mb(n)}, over this server's limit of {_mb(limits.max_upload_bytes)}",
                           headers={"Connection": "close"})  # the body is not read: no keep-alive
    if not queue.try_read():
        wait = queue.retry_after()
        await drain_body(request, limits)
        raise ApiError(503, "busy", f"the server is busy ({queue.admitted} requests ahead); retry in {wait} s",
                       headers={"Retry-After": str(wait)})
    try:
        return await reader(request, limits)
    finally:
        queue.done_reading()


def admit_or_503(queue: InferenceQueue) -> None:
    """Take an inference place (released by the queue when the work ends), or answer 503 busy."""
    if not queue.try_admit():
        wait = queue.retry_after()
        raise ApiError(503, "busy", f"the server is busy ({queue.admitted} requests ahead); retry in {wait} s",
                       headers={"Retry-After": str(wait)})


async def read_inpaint_request(request: Request, limits: ServerLimits) -> tuple[bytes, bytes, dict[str, Any]]:
    """(image bytes, mask bytes, option fields) from a multipart or JSON request, body capped."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    req = Request(request.scope, body_receive(request, limits))
    if ctype == "multipart/form-data":
        files, fields = await read_multipart(req, ("image", "mask"), len(OPTION_FIELDS))
        for key in ("image", "mask"):
            if key not in files:
                raise ApiError(400, "missing_field", f"missing file part '{key}' (multipart: -F image=@photo.jpg -F mask=@mask.png)")
        return files["image"], files["mask"], fields
    if ctype == "application/json" or ctype.endswith("+json"):
        body = await req.body()
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, "bad_json", f"the body is not valid JSON: {e}") from None
        except RecursionError:
            raise ApiError(400, "bad_json", "the JSON body is nested too deeply") from None
        if not isinstance(data, dict):
            raise ApiError(400, "bad_json", "the JSON body must be an object with 'image' and 'mask'")
        out = []
        for key in ("image", "mask"):
            if key not in data:
                raise ApiError(400, "missing_field", f"missing field '{key}' (a base64 string or a data: URL)")
            out.append(_b64(data.pop(key), key))
        return out[0], out[1], data
    raise ApiError(415, "unsupported_media_type",
                   f"send multipart/form-data (image and mask files) or application/json (base64); got {ctype or 'no Content-Type'!r}")


def _b64(value: Any, key: str) -> bytes:
    if not isinstance(value, str):
        raise ApiError(400, "bad_base64", f"'{key}' must be a base64 string or a data: URL")
    if value.startswith("data:"):
        head, sep, value = value.partition(",")
        if not sep or not head.endswith(";base64"):
            raise ApiError(400, "bad_base64", f"'{key}': a data: URL must be base64 (data:image/png;base64,...)")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ApiError(400, "bad_base64", f"'{key}' is not valid base64: {e}") from None


@dataclass
class Options:
    model: str
    strategy: str = "auto"
    dilate: int = 0
    blend: str = "none"
    resize_mask: bool = False
    format: str = "png"
    quality: int = 95


def _int(value: Any, key: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ApiError(400, "bad_option", f"{key} must be an integer from {lo} to {hi}")
    try:
        v = int(value)
    except ValueError:
        raise ApiError(400, "bad_option", f"{key} must be an integer from {lo} to {hi}, got {value!r}") from None
    if not lo <= v <= hi:
        raise ApiError(400, "bad_option", f"{key} must be from {lo} to {hi}, got {v}")
    return v


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off", ""):
        return value.lower() in ("true", "1", "yes", "on")
    raise ApiError(400, "bad_option", f"{key} must be true or false, got {value!r}")


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise ApiError(400, "bad_option", f"unknown {key} {value!r}; known: {', '.join(choices)}")
    return value.lower()


def parse_options(fields: Mapping[str, Any], accept: str, pool: ModelPool, limits: ServerLimits) -> Options:
    unknown = sorted(set(fields) - set(OPTION_FIELDS))
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown field(s) {', '.join(map(repr, unknown))}; known: image, mask, {', '.join(OPTION_FIELDS)}")
    opts = Options(model=pool.check(fields.get("model")))
    if fields.get("strategy") not in (None, ""):
        opts.strategy = _choice(fields["strategy"], "strategy", STRATEGIES)
    if fields.get("blend") not in (None, ""):
        opts.blend = _choice(fields["blend"], "blend", BLEND_MODES)
    if fields.get("dilate") not in (None, ""):
        opts.dilate = _int(fields["dilate"], "dilate", 0, limits.max_dilate)
    if fields.get("quality") not in (None, ""):
        opts.quality = _int(fields["quality"], "quality", 1, 100)
    if "resize_mask" in fields:
        opts.resize_mask = _bool(fields["resize_mask"], "resize_mask")
    if fields.get("format") not in (None, ""):
        opts.format = OUTPUT_FORMATS[_choice(fields["format"], "format", tuple(OUTPUT_FORMATS))].lower()
    else:
        accept = accept.lower()
        if ("image/jpeg" in accept or "image/jpg" in accept) and "image/png" not in accept:
            opts.format = "jpeg"
    return opts


# ------------------------------------------------------------------------------------ image bytes


def read_rules(max_pixels: int) -> ReadRules:
    """The one reader's rules for a request: only :data:`ALLOWED_FORMATS`, the pixel limit, the decoded
    size within 4 bytes a pixel at that limit (:attr:`ServerLimits.decode_budget_bytes`), and Pillow's
    decompression-bomb warning refused too."""
    return ReadRules(max_pixels=max_pixels, formats=ALLOWED_FORMATS, decode_budget=4 * max_pixels, strict_bomb=True,
                     limit_name="this server's limit", limit_hint="", budget_name="this server's budget")


#: the answer to each kind of :class:`~inpaintgan.imagefile.ImageReadError`
_READ_STATUS = {"too_many_pixels": 413, "not_an_image": 422, "corrupt_image": 422, "missing": 422}


def _api_read_error(e: ImageReadError) -> ApiError:
    return ApiError(_READ_STATUS.get(e.kind, 422), e.kind if e.kind in _READ_STATUS else "not_an_image", str(e))


def decode_image(data: bytes, what: str, max_pixels: int) -> Image.Image:
    """Bytes -> a fully decoded, upright PIL image, by the one reader with this server's rules and errors."""
    try:
        return open_image(data, what=what, rules=read_rules(max_pixels))
    except ImageReadError as e:
        raise _api_read_error(e) from None


def decode_image_file(data: bytes, what: str, max_pixels: int) -> ImageFile:
    """Bytes -> an :class:`~inpaintgan.imagefile.ImageFile` by the one reader (mode, 16-bit depth,
    alpha, ICC, DPI and EXIF kept, as ``fill`` reads files), with this server's rules and errors."""
    try:
        return read_image_file(data, what=what, rules=read_rules(max_pixels))
    except ImageReadError as e:
        raise _api_read_error(e) from None


def decode_mask(data: bytes, what: str, max_pixels: int) -> np.ndarray:
    """Bytes -> bool (H, W), True = hole, by the one mask reader (as ``fill`` reads mask files)."""
    try:
        return read_mask(data, what=what, rules=read_rules(max_pixels))
    except ImageReadError as e:
        raise _api_read_error(e) from None


def image_and_hole(image_bytes: bytes, mask_bytes: bytes, opts: Options, limits: ServerLimits) -> tuple[ImageFile, np.ndarray]:
    """Decode and check the image and the mask; the hole (bool (H, W), dilated) or a 4xx error."""
    image = decode_image_file(image_bytes, "image", limits.max_pixels)
    hole = decode_mask(mask_bytes, "mask", limits.max_pixels)
    (w, h), (mh, mw) = image.size, hole.shape
    if (mw, mh) != (w, h):
        if not opts.resize_mask:
            raise ApiError(422, "mask_size_mismatch",
                           f"the mask is {mw}x{mh} but the image is {w}x{h} (width x height); send a mask of the "
                           "image's size, or set resize_mask=true")
        hole = fit_mask(hole, (w, h), resize=True)  # the resize of fill and the Python API
    hole = dilate_mask(hole, opts.dilate)
    if not hole.any():
        raise ApiError(422, "mask_empty", "the mask is empty: no pixel is marked for removal (white or opaque = hole)")
    if hole.all():
        raise ApiError(422, "mask_full", "the mask covers the whole image: there is nothing to inpaint from")
    return image, hole


def encode_image(pixels: np.ndarray, fmt: str, quality: int, source: ImageFile) -> bytes:
    """The answer's bytes, by the one writer: PNG in the source's mode and depth (alpha, ICC, DPI, EXIF
    kept), or JPEG (no alpha; 16-bit data as 8 bits)."""
    return encode_image_file(pixels, "JPEG" if fmt == "jpeg" else "PNG", like=source, quality=quality, compress_level=3)


# ------------------------------------------------------------------------------------------- app


_INPAINT_DOC = """Fill the masked region of an image (white / opaque in the mask = remove).

Send **multipart/form-data** with file parts `image` and `mask` (plus option fields), or
**application/json** with `image` and `mask` as base64 strings or `data:` URLs. The answer is the
image (PNG by default, or JPEG with `format=jpeg` / `Accept: image/jpeg`), the size of the input;
outside the hole its pixels are the input's, bit for bit (PNG). Errors are JSON `{status, error,
message}`; 503 means the queue is full: retry after `Retry-After` seconds."""

_OPTION_SCHEMA = {
    "model": {"type": "string", "description": "a model name from GET /api/v1/models (default: the served model)"},
    "strategy": {"type": "string", "enum": list(STRATEGIES), "default": "auto"},
    "dilate": {"type": "integer", "minimum": 0, "default": 0, "description": "grow the hole by N pixels"},
    "blend": {"type": "string", "enum": list(BLEND_MODES), "default": "none"},
    "resize_mask": {"type": "boolean", "default": False, "description": "resize a mask of another size (else 422)"},
    "format": {"type": "string", "enum": ["png", "jpeg"], "description": "default: from Accept, else png"},
    "quality": {"type": "integer", "minimum": 1, "maximum": 100, "default": 95, "description": "JPEG quality"},
}
_INPAINT_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["image", "mask"],
                "properties": {"image": {"type": "string", "format": "binary"},
                               "mask": {"type": "string", "format": "binary"}, **_OPTION_SCHEMA},
            }},
            "application/json": {"schema": {
                "type": "object", "required": ["image", "mask"],
                "properties": {"image": {"type": "string", "description": "base64 or data: URL"},
                               "mask": {"type": "string", "description": "base64 or data: URL"}, **_OPTION_SCHEMA},
            }},
        },
    },
}
_ERRORS = {code: {"model": ErrorBody, "description": text} for code, text in {
    400: "malformed request or option (unknown model, strategy, ...)",
    413: "request body or image too large",
    415: "neither multipart/form-data nor JSON",
    422: "an unusable file: not an image, truncated, mask of another size, empty or full mask",
    500: "the model failed",
    503: "busy: the queue is full (see Retry-After)",
}.items()}


def create_app(
    inpainter: Inpainter | None = None,
    *,
    model: str = "default",
    device: str = "auto",
    models: Mapping[str, Inpainter] | None = None,
    zoo: bool = True,
    limits: ServerLimits | None = None,
    allowed_hosts: list[str] | None = None,
    folder: Any = None,
) -> FastAPI:
    """The ASGI app.

    ``inpainter``: the served model, already loaded (else ``Inpainter.from_pretrained(model,
    device)``; ``model`` may be a zoo name or a file path -- it comes from the operator, not from a
    request). ``models``: more in-memory models requests may name. ``zoo``: also offer the installed
    zoo models (loaded on first use). ``allowed_hosts``: accepted ``Host`` headers (None = any;
    ``inpaintgan serve`` on a loopback address passes the loopback names, against DNS rebinding).
    ``folder``: a :class:`~inpaintgan.server.folder.Folder` (``serve --input DIR --output-dir OUT``).
    """
    limits = limits or ServerLimits()
    if inpainter is None:
        inpainter = Inpainter.from_pretrained(model, device=device)
    pool = ModelPool(inpainter, models, zoo, device)
    queue = InferenceQueue(limits.max_in_flight, limits.max_queued, limits.max_reading)
    app = _new_app(queue, allowed_hosts)
    app.state.pool, app.state.queue, app.state.limits = pool, queue, limits
    add_error_handlers(app)
    add_inpaint_route(app, pool, queue, limits)  # POST /api/v1/inpaint
    add_info_routes(app, pool, queue, limits)  # GET /api/v1/models, /api/v1/health
    from inpaintgan.server.product import add_product_routes

    add_product_routes(app, queue, limits)  # POST /api/v1/segment, GET /api/v1/docs
    from inpaintgan.server.folder import add_folder_routes

    add_folder_routes(app, folder, limits)  # /api/v1/folder...: serve --input (else it says "not enabled")
    add_page_routes(app)  # / and /static
    return app


def _new_app(queue: InferenceQueue, allowed_hosts: list[str] | None) -> FastAPI:
    """The FastAPI object: metadata, the queue's shutdown at exit, the Host check."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        queue.shutdown()

    app = FastAPI(
        title="inpaintgan",
        version=__version__,
        description="Image inpainting with GANs: remove objects from photos. The web page is at /.",
        openapi_url=f"{API}/openapi.json",
        docs_url=None,  # served with local assets by add_product_routes (works offline)
        redoc_url=None,
        lifespan=lifespan,
    )
    if allowed_hosts:  # "loopback" allows every loopback form: localhost, 127.0.0.0/8, [::1]
        app.add_middleware(HostCheck, allowed=list(allowed_hosts))
    return app


def add_error_handlers(app: FastAPI) -> None:
    """Every error as JSON ``{status, error, message}``: ours, Starlette's, validation, unexpected (500)."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail),
                              dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", exc_info=exc)
        return error_response(500, "internal_error", "the server failed on this request (details in the server log)")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "bad_request", str(exc.errors()))


def inpaint_work(data: list[bytes], opts: Options, limits: ServerLimits, pool: ModelPool) -> tuple[bytes, float]:
    """Decode, fill, encode one request (in the inference pool: at most ``max_in_flight`` images are
    decoded at once, the memory budget, however many requests wait). ``data`` = [image, mask] bytes,
    emptied once decoded. Returns (the answer's bytes, inference seconds)."""
    image, hole = image_and_hole(data[0], data[1], opts, limits)
    data.clear()
    inp = pool.get(opts.model)
    t = time.perf_counter()
    out = image.merge(inp(image.model_input(), hole, strategy=opts.strategy, blend=opts.blend), hole)
    seconds = time.perf_counter() - t
    return encode_image(out, opts.format, opts.quality, image), seconds


async def run_inpaint(queue: InferenceQueue, data: list[bytes], opts: Options, limits: ServerLimits, pool: ModelPool) -> tuple[bytes, float]:
    """:func:`inpaint_work` in the queue (its place already taken); model failures as JSON errors."""
    try:
        return await queue.run(lambda: inpaint_work(data, opts, limits, pool))
    except ApiError:
        raise
    except ValueError as e:  # e.g. strategy 'full' for a model that is not fully convolutional
        raise ApiError(422, "cannot_inpaint", str(e)) from None
    except Exception:
        log.exception("inference failed (model %s)", opts.model)
        raise ApiError(500, "inference_failed", "the model failed on this image (details in the server log)") from None


def add_inpaint_route(app: FastAPI, pool: ModelPool, queue: InferenceQueue, limits: ServerLimits) -> None:
    """``POST /api/v1/inpaint``: read the body (reading place), parse the options, take a queue place
    (else 503), then decode, fill and encode in the inference pool."""

    @app.post(f"{API}/inpaint", summary="Inpaint an image", description=_INPAINT_DOC, openapi_extra=_INPAINT_OPENAPI,
              response_class=Response, tags=["inpaint"],
              responses={200: {"content": {"image/png": {}, "image/jpeg": {}}, "description": "the filled image"}, **_ERRORS})
    async def inpaint(request: Request) -> Response:
        try:
            image_bytes, mask_bytes, fields = await read_request_body(request, queue, limits, read_inpaint_request)
        except ClientDisconnect:
            return Response(status_code=400)
        opts = parse_options(fields, request.headers.get("accept", ""), pool, limits)
        admit_or_503(queue)
        handed_off = False
        try:
            data = [image_bytes, mask_bytes]
            del image_bytes, mask_bytes
            handed_off = True  # from here the queue releases the place when the work ends
            body, seconds = await run_inpaint(queue, data, opts, limits, pool)
        finally:
            if not handed_off:
                queue.release()
        return Response(body, media_type=f"image/{opts.format}", headers={
            "Cache-Control": "no-store",
            "X-Inpaint-Model": opts.model,
            "X-Inpaint-Seconds": f"{seconds:.3f}",
        })


def add_info_routes(app: FastAPI, pool: ModelPool, queue: InferenceQueue, limits: ServerLimits) -> None:
    """``GET /api/v1/models`` and ``GET /api/v1/health``."""

    @app.get(f"{API}/models", summary="The models requests may name", tags=["info"])
    async def models_list() -> dict[str, Any]:
        rows = await run_in_threadpool(pool.describe)
        return {"default": pool.default_name, "models": rows}

    @app.get(f"{API}/health", summary="Liveness, the served model, the queue and the limits", tags=["info"])
    async def health() -> dict[str, Any]:
        default = pool.default
        return {
            "status": "ok",
            "version": __version__,
            "model": pool.default_name,
            "device": str(default.device),
            "queue": queue.state(),
            "limits": asdict(limits),
        }


def add_page_routes(app: FastAPI) -> None:
    """The web page at ``/`` (with its Content-Security-Policy) and its files under ``/static``."""

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={
            "Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache",
        })

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


__all__ = ["create_app", "ServerLimits", "ApiError", "ModelPool", "InferenceQueue", "decode_image", "decode_image_file",
           "decode_mask", "read_rules", "API"]
