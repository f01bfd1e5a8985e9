"""``inpaintgan serve --input DIR --output-dir OUT``: the folder routes (TestClient) and the page's
thumbnail strip in the browser: open a photo, remove, the result lands in OUT in the input's format,
never over an input."""

from __future__ import annotations

import io
import socket
import threading
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintgan.cli import main
from inpaintgan.inpainter import Inpainter
from inpaintgan.methods.glcic import GLCIC, GLCICConfig
from inpaintgan.server.app import create_app
from inpaintgan.server.folder import Folder, FolderError, jpeg_quality
from test_webui import CHROMIUM, CHROMIUM_ARGS, canvas, remove_and_wait, require_browser, stroke

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

API = "/api/v1"


def tiny() -> Inpainter:
    torch.manual_seed(0)
    return Inpainter(GLCIC(GLCICConfig(width=8, d_width=8), image_size=32).eval(), {"model": "tiny"})


@pytest.fixture
def photos(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(d / "beach.jpg", quality=70)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(d / "cat.png")
    (d / "notes.txt").write_text("not a photo")
    return d


def png(a) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def test_folder_routes_list_serve_and_save(photos, tmp_path):
    out = tmp_path / "results"
    with TestClient(create_app(tiny(), zoo=False, folder=Folder(photos, out))) as c:
        info = c.get(f"{API}/folder").json()
        assert info["enabled"] and [i["name"] for i in info["images"]] == ["beach.jpg", "cat.png"]
        assert not any(i["saved"] for i in info["images"])
        r = c.get(f"{API}/folder/image/beach.jpg")
        assert r.status_code == 200 and r.content == (photos / "beach.jpg").read_bytes()
        t = c.get(f"{API}/folder/thumb/cat.png")
        assert t.status_code == 200 and Image.open(io.BytesIO(t.content)).format == "JPEG"
        for bad in ("notes.txt", "..%2Fphotos%2Fcat.png", "missing.png"):
            assert c.get(f"{API}/folder/image/{bad}").status_code == 404

        result = np.full((48, 64, 3), 90, np.uint8)
        r = c.post(f"{API}/folder/save/beach.jpg", files={"image": ("r.png", png(result))})
        assert r.status_code == 200, r.text
        saved = out / "beach.jpg"
        with Image.open(saved) as im:
            assert im.format == "JPEG" and im.size == (64, 48)
            assert abs(jpeg_quality(saved) - 70) <= 2  # the input's quality
        assert (photos / "beach.jpg").read_bytes() != saved.read_bytes()
        assert c.get(f"{API}/folder").json()["images"][0]["saved"]
        r = c.post(f"{API}/folder/save/cat.png", files={"image": ("r.png", png(result))})
        assert r.status_code == 422 and "48" in r.json()["message"]  # a result of another size


def test_without_a_folder_the_route_says_so(tmp_path):
    with TestClient(create_app(tiny(), zoo=False)) as c:
        assert c.get(f"{API}/folder").json() == {"enabled": False, "images": []}
        assert c.get(f"{API}/folder/image/x.png").status_code == 404


def test_folder_setup_errors(photos, tmp_path, capsys):
    with pytest.raises(FolderError, match="must not be the --input folder"):
        Folder(photos, photos)
    with pytest.raises(FolderError, match="not a folder"):
        Folder(tmp_path / "nope", tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FolderError, match="holds no images"):
        Folder(empty, tmp_path / "out")
    assert main(["serve", "--input", str(photos)]) == 2
    assert "--input and --output-dir go together" in capsys.readouterr().err
    assert main(["serve", "--input", str(photos), "--output-dir", str(photos)]) == 2
    assert "must not be the --input folder" in capsys.readouterr().err


def test_the_page_works_through_a_folder(photos, tmp_path):
    require_browser()
    import uvicorn
    from playwright.sync_api import sync_playwright

    out = tmp_path / "results"
    app = create_app(tiny(), zoo=False, folder=Folder(photos, out))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = b.new_page(viewport={"width": 1280, "height": 800})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://127.0.0.1:{port}/")
            page.evaluate("() => window.inpaintgan.ready")
            page.wait_for_selector("#strip:not([hidden])")
            assert page.eval_on_selector_all("#strip button", "bs => bs.map(b => b.dataset.name)") == ["beach.jpg", "cat.png"]
            page.wait_for_function("() => [...document.querySelectorAll('#strip img')].every(i => i.complete && i.naturalWidth > 0)")
            page.click("#strip button[data-name='beach.jpg']")
            page.wait_for_function("() => window.inpaintgan.state.index === 0 && window.inpaintgan.state.folderName === 'beach.jpg'")
            original = np.asarray(Image.open(photos / "beach.jpg").convert("RGB")).astype(int)
            assert np.abs(canvas(page, "image-canvas")[..., :3].astype(int) - original).max() <= 2
            stroke(page, [(20, 20), (40, 24)])
            remove_and_wait(page, 2)
            page.wait_for_selector("#strip button.saved[data-name='beach.jpg']")
            with Image.open(out / "beach.jpg") as im:
                assert im.format == "JPEG" and im.size == (64, 48)
            assert not (out / "cat.png").exists() and sorted(x.name for x in photos.iterdir()) == ["beach.jpg", "cat.png", "notes.txt"]
            assert "saved beach.jpg" in page.inner_text("#info")
            assert not errors, errors
            b.close()
    finally:
        server.should_exit = True
        thread.join(10)
