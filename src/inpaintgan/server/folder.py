"""``inpaintgan serve --input DIR --output-dir OUT``: a folder of photos in the page.

The page shows a strip of thumbnails of DIR's images; a click opens one, and every Remove saves the
result to OUT under the input's name and format (a JPEG at its own estimated quality), written
atomically and never over an input. Requests name images by file name only, looked up in the list
made at start (``GET /api/v1/folder`` refreshes it): no path from a request is ever opened.

- ``GET  /api/v1/folder``: the images (name, size, whether a result is saved) and the output folder
- ``GET  /api/v1/folder/image/{name}``: the file as it is
- ``GET  /api/v1/folder/thumb/{name}``: a JPEG thumbnail (at most 160 px)
- ``POST /api/v1/folder/save/{name}``: multipart ``image`` (the result, PNG) -> OUT/name
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from PIL import Image, ImageOps
from starlette.concurrency import run_in_threadpool

from inpaintgan.server.app import API, ApiError, ServerLimits, body_receive, decode_image_file

THUMB = 160


class FolderError(ValueError):
    """A folder setup that cannot work (a one-line message for the CLI)."""


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


class Folder:
    """The input images (by name) and where results go."""

    def __init__(self, input_dir: str | Path, output_dir: str | Path):
        from inpaintgan.imageio import IMAGE_EXTS

        self.exts = IMAGE_EXTS
        self.input_dir = Path(input_dir).expanduser().resolve()
        self.output_dir = Path(output_dir).expanduser().resolve()
        if not self.input_dir.is_dir():
            raise FolderError(f"--input {input_dir}: not a folder")
        if self.output_dir == self.input_dir or _same(self.output_dir, self.input_dir):
            raise FolderError("--output-dir must not be the --input folder (results never replace inputs)")
        if self.output_dir.exists() and not self.output_dir.is_dir():
            raise FolderError(f"--output-dir {output_dir} exists and is not a folder")
        self._lock = threading.Lock()
        self.files: dict[str, Path] = {}
        self.refresh()
        if not self.files:
            raise FolderError(f"--input {input_dir} holds no images ({', '.join(self.exts)})")

    def refresh(self) -> None:
        files = {p.name: p for p in sorted(self.input_dir.iterdir())
                 if p.is_file() and p.suffix.lower() in self.exts and not p.name.startswith(".")}
        with self._lock:
            self.files = files

    def get(self, name: str) -> Path:
        with self._lock:
            path = self.files.get(name)
        if path is None:
            raise ApiError(404, "not_found", f"no image named {name[:80]!r} in the input folder")
        return path

    def output_for(self, name: str) -> Path:
        return self.output_dir / self.get(name).name

    def describe(self) -> dict[str, Any]:
        with self._lock:
            names = list(self.files)
        return {"output_dir": str(self.output_dir), "images": [
            {"name": n, "saved": (self.output_dir / n).is_file()} for n in names]}


def thumbnail(path: Path) -> bytes:
    with Image.open(path) as im:
        im.draft("RGB", (THUMB * 2, THUMB * 2))  # JPEG: decode at a reduced scale
        im = ImageOps.exif_transpose(im)
        im.thumbnail((THUMB, THUMB))
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "JPEG", quality=80)
    return buf.getvalue()


def save_result(folder: Folder, name: str, data: bytes, limits: ServerLimits) -> Path:
    """Write the page's result (PNG bytes) to the output folder in the input's format, by the one
    reader and writer: the result's mode, alpha and ICC profile, the input's EXIF and DPI."""
    from inpaintgan.imagefile import read_image_file, write_image_file

    src = folder.get(name)
    result = decode_image_file(data, "image", limits.max_pixels)
    source = read_image_file(src, limits.max_pixels)
    if result.size != source.size:
        raise ApiError(422, "size_mismatch", f"the result is {result.size[0]}x{result.size[1]} but {name} is "
                       f"{source.size[0]}x{source.size[1]}")
    dst = folder.output_for(name)
    if any(_same(dst, p) for p in folder.files.values()):
        raise ApiError(409, "would_overwrite_input", f"{dst} is an input; results never replace inputs")
    quality = 95
    if source.format == "JPEG" or src.suffix.lower() in (".jpg", ".jpeg"):
        quality = jpeg_quality(src)
    result.info.update({k: source.info[k] for k in ("exif", "dpi") if source.info.get(k)})
    folder.output_dir.mkdir(parents=True, exist_ok=True)
    return write_image_file(dst, result.pixels, like=result, quality=quality)


def jpeg_quality(path: Path) -> int:
    """A JPEG's quality, estimated from its luminance table (IJG scaling); 95 if unknown."""
    std = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
           14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
           49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
    try:
        with Image.open(path) as im:
            table = (getattr(im, "quantization", None) or {}).get(0)
    except OSError:
        return 95
    if not table:
        return 95
    scale = sum(table) * 100 / sum(std)
    q = (200 - scale) / 2 if scale <= 100 else 5000 / scale
    return int(max(1, min(100, round(q))))


def add_folder_routes(app: FastAPI, folder: Folder | None, limits: ServerLimits) -> None:
    """The folder routes; without a folder, ``GET /api/v1/folder`` answers ``{"enabled": false}``."""

    @app.get(f"{API}/folder", summary="The input folder's images (serve --input)", tags=["folder"])
    async def folder_list() -> dict[str, Any]:
        if folder is None:
            return {"enabled": False, "images": []}
        await run_in_threadpool(folder.refresh)
        return {"enabled": True, **await run_in_threadpool(folder.describe)}

    if folder is None:
        return

    @app.get(f"{API}/folder/image/{{name}}", summary="An input image, as it is", tags=["folder"])
    async def folder_image(name: str) -> FileResponse:
        return FileResponse(folder.get(name), headers={"Cache-Control": "no-cache"})

    @app.get(f"{API}/folder/thumb/{{name}}", summary="A thumbnail of an input image", tags=["folder"])
    async def folder_thumb(name: str) -> Response:
        path = folder.get(name)
        try:
            body = await run_in_threadpool(thumbnail, path)
        except (OSError, ValueError) as e:
            raise ApiError(422, "not_an_image", f"{name} could not be read: {e}") from None
        return Response(body, media_type="image/jpeg", headers={"Cache-Control": "no-cache"})

    @app.post(f"{API}/folder/save/{{name}}", summary="Save a result to the output folder", tags=["folder"])
    async def folder_save(name: str, request: Request) -> dict[str, Any]:
        folder.get(name)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "multipart/form-data":
            raise ApiError(415, "unsupported_media_type", "send multipart/form-data with the result as 'image'")
        req = Request(request.scope, body_receive(request, limits))  # size and time limits, as /api/v1/inpaint
        form = await req.form(max_files=1, max_fields=1)
        try:
            part = form.get("image")
            if part is None or isinstance(part, str):
                raise ApiError(400, "missing_field", "missing file part 'image' (the result)")
            data = await part.read()
        finally:
            await form.close()
        dst = await run_in_threadpool(save_result, folder, name, data, limits)
        return {"saved": str(dst), "name": dst.name}


__all__ = ["Folder", "FolderError", "add_folder_routes", "jpeg_quality"]
