"""Routes of the object-removal product, added to the app by :func:`add_product_routes`:

- ``POST /api/v1/segment``: select an object (GrabCut, :func:`inpaintgan.segment.select_object`).
  ``multipart/form-data`` with the file part ``image``, the field ``box`` ("x0,y0,x1,y1" in image
  pixels, end-exclusive) and optional file parts ``object`` / ``background`` (masks of strokes marked
  as certainly object / background: white or opaque = marked), or ``application/json`` with
  ``image`` (and ``object`` / ``background``) as base64 strings or ``data:`` URLs and ``box`` as a
  list or a string. Returns the object's mask as a PNG (L, 255 = object), the image's size, ready to
  be sent as the ``mask`` of ``/api/v1/inpaint``.
- ``GET /api/v1/docs``: Swagger UI with its assets served by this server (the files shipped in the
  ``fastapi-offline`` package), so the page works offline; ``/api/v1/docs-assets/...`` holds them.

Selections run in the inference queue (bounded like inpainting: 503 + ``Retry-After`` when full).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.requests import ClientDisconnect

from inpaintgan.server.app import (
    API,
    ApiError,
    InferenceQueue,
    ServerLimits,
    _b64,
    admit_or_503,
    body_receive,
    decode_image,
    decode_mask,
    read_multipart,
    read_request_body,
)

SEGMENT_FIELDS = ("box", "iterations")
SEGMENT_FILES = ("image", "object", "background")
MAX_ITERATIONS = 10

_SEGMENT_DOC = """Select the object inside a box (OpenCV GrabCut; no model needed).

Send **multipart/form-data** with the file part `image`, the field `box` = `x0,y0,x1,y1` (image
pixels) and, optionally, file parts `object` / `background`: masks of the image's size where strokes
mark pixels that are certainly object / certainly background (white or opaque = marked). Or
**application/json** with the same names (files as base64 strings or `data:` URLs; `box` a list of
four numbers). The answer is the object's mask as a PNG (255 = object), the image's size: send it as
the `mask` of `POST /api/v1/inpaint` to remove the object."""

_SEGMENT_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["image", "box"],
                "properties": {
                    "image": {"type": "string", "format": "binary"},
                    "box": {"type": "string", "example": "40,30,200,180", "description": "x0,y0,x1,y1 (image px)"},
                    "object": {"type": "string", "format": "binary", "description": "strokes: certainly object"},
                    "background": {"type": "string", "format": "binary", "description": "strokes: certainly background"},
                    "iterations": {"type": "integer", "minimum": 1, "maximum": MAX_ITERATIONS, "default": 5},
                },
            }},
            "application/json": {"schema": {
                "type": "object", "required": ["image", "box"],
                "properties": {
                    "image": {"type": "string", "description": "base64 or data: URL"},
                    "box": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
                    "object": {"type": "string", "description": "base64 or data: URL (optional)"},
                    "background": {"type": "string", "description": "base64 or data: URL (optional)"},
                    "iterations": {"type": "integer", "minimum": 1, "maximum": MAX_ITERATIONS, "default": 5},
                },
            }},
        },
    },
}


async def read_segment_request(request: Request, limits: ServerLimits) -> tuple[dict[str, bytes], dict[str, Any]]:
    """(file parts, fields) of a segment request, body capped."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    req = Request(request.scope, body_receive(request, limits))  # size and time limits, as /api/v1/inpaint
    files: dict[str, bytes] = {}
    fields: dict[str, Any] = {}
    if ctype == "multipart/form-data":
        files, fields = await read_multipart(req, SEGMENT_FILES, len(SEGMENT_FIELDS))
    elif ctype == "application/json" or ctype.endswith("+json"):
        try:
            data = json.loads(await req.body())
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, "bad_json", f"the body is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "bad_json", "the JSON body must be an object with 'image' and 'box'")
        for key in SEGMENT_FILES:
            if data.get(key) not in (None, ""):
                files[key] = _b64(data.pop(key), key)
            else:
                data.pop(key, None)
        fields = data
    else:
        raise ApiError(415, "unsupported_media_type",
                       f"send multipart/form-data (an image file and a box) or application/json; got {ctype or 'no Content-Type'!r}")
    unknown = sorted(set(fields) - set(SEGMENT_FIELDS))
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown field(s) {', '.join(map(repr, unknown))}; known: "
                       f"{', '.join(SEGMENT_FILES + SEGMENT_FIELDS)}")
    if "image" not in files:
        raise ApiError(400, "missing_field", "missing 'image' (multipart: -F image=@photo.jpg)")
    if fields.get("box") in (None, ""):
        raise ApiError(400, "missing_field", "missing 'box': x0,y0,x1,y1 around the object, in image pixels")
    return files, fields


def parse_box(value: Any) -> tuple[float, float, float, float]:
    if isinstance(value, str):
        parts = value.replace(";", ",").replace(" ", ",").split(",")
        value = [p for p in parts if p]
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise ApiError(400, "bad_option", f"box must be four numbers x0,y0,x1,y1 (image pixels), got {value!r}")
    try:
        box = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ApiError(400, "bad_option", f"box must be four numbers x0,y0,x1,y1 (image pixels), got {value!r}") from None
    if not all(np.isfinite(box)):
        raise ApiError(400, "bad_option", "box must be finite numbers")
    return box  # type: ignore[return-value]


def stroke_mask(data: bytes, what: str, size: tuple[int, int], max_pixels: int) -> np.ndarray:
    """A stroke mask's bytes -> bool (H, W), True = marked, by the one mask reader (as /inpaint's mask)."""
    mask = decode_mask(data, what, max_pixels)
    if mask.shape[::-1] != tuple(size):
        raise ApiError(422, "mask_size_mismatch", f"the {what} mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                       f"{size[0]}x{size[1]} (width x height)")
    return mask


def segment_work(files: dict[str, bytes], box: tuple, iterations: int, limits: ServerLimits) -> tuple[bytes, int, tuple]:
    """Decode, cut, encode: (PNG bytes, object pixels, the box used)."""
    from inpaintgan.imageio import to_rgb
    from inpaintgan.segment import SegmentError, check_box, select_object

    image = decode_image(files["image"], "image", limits.max_pixels)
    rgb = to_rgb(image) if image.mode != "RGB" else image
    hints = {k: stroke_mask(files[k], k, image.size, limits.max_pixels) if k in files else None
             for k in ("object", "background")}
    try:
        used = check_box(box, *image.size)
        sel = select_object(rgb, used, object_strokes=hints["object"], background_strokes=hints["background"],
                            iterations=iterations)
    except SegmentError as e:
        raise ApiError(422, "cannot_segment", str(e)) from None
    buf = io.BytesIO()
    Image.fromarray(sel.astype(np.uint8) * 255, "L").save(buf, "PNG", compress_level=3)
    return buf.getvalue(), int(sel.sum()), used


def add_product_routes(app: FastAPI, queue: InferenceQueue, limits: ServerLimits) -> None:
    """``POST /api/v1/segment`` and the offline ``/api/v1/docs`` (the app is made with ``docs_url=None``)."""

    @app.post(f"{API}/segment", summary="Select an object (mask from a box and strokes)", description=_SEGMENT_DOC,
              openapi_extra=_SEGMENT_OPENAPI, response_class=Response, tags=["inpaint"],
              responses={200: {"content": {"image/png": {}}, "description": "the object's mask (255 = object)"}})
    async def segment(request: Request) -> Response:
        try:
            files, fields = await read_request_body(request, queue, limits, read_segment_request)
        except ClientDisconnect:
            return Response(status_code=400)
        box = parse_box(fields["box"])
        iterations = 5
        if fields.get("iterations") not in (None, ""):
            from inpaintgan.server.app import _int

            iterations = _int(fields["iterations"], "iterations", 1, MAX_ITERATIONS)
        admit_or_503(queue)  # queue.run releases the place when the work ends
        t = time.perf_counter()
        body, pixels, used = await queue.run(lambda: segment_work(files, box, iterations, limits))
        seconds = time.perf_counter() - t
        return Response(body, media_type="image/png", headers={
            "Cache-Control": "no-store",
            "X-Segment-Pixels": str(pixels),
            "X-Segment-Box": ",".join(map(str, used)),
            "X-Segment-Seconds": f"{seconds:.3f}",
        })

    assets = swagger_assets_dir()
    if assets is not None:
        app.mount(f"{API}/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get(f"{API}/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if assets is None:  # pragma: no cover - fastapi-offline is a dependency
            return HTMLResponse(
                f"<!doctype html><title>inpaintgan API</title><p>The API documentation page needs the "
                f"fastapi-offline package (pip install fastapi-offline). The OpenAPI schema is at "
                f"<a href='{API}/openapi.json'>{API}/openapi.json</a>.</p>")
        return get_swagger_ui_html(
            openapi_url=f"{API}/openapi.json", title=f"{app.title} API",
            swagger_js_url=f"{API}/docs-assets/swagger-ui-bundle.js",
            swagger_css_url=f"{API}/docs-assets/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )


def swagger_assets_dir() -> Path | None:
    """Swagger UI 5 (it renders FastAPI's OpenAPI 3.1 schema) as shipped in the ``fastapi-offline``
    package's static folder, or None without it. (The ``swagger-ui-bundle`` package ships Swagger UI
    4, which refuses OpenAPI 3.1: "Unable to render this definition".)"""
    import importlib.util

    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "static"
    return path if (path / "swagger-ui-bundle.js").is_file() and (path / "swagger-ui.css").is_file() else None


__all__ = ["add_product_routes", "parse_box", "segment_work", "swagger_assets_dir"]
