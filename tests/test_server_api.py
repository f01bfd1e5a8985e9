"""REST API of ``inpaintgan serve`` (in-process, FastAPI TestClient): every endpoint, results equal
to the Inpainter API bit for bit, a clear JSON error for every bad input, bounded queue (503 +
Retry-After), and the ``serve`` command itself."""

from __future__ import annotations

import base64
import io
import re
import struct
import threading
import time
import warnings
import zlib

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from inpaintgan import checkpoints
from inpaintgan.checkpoints import save_model
from inpaintgan.imageio import dilate_mask
from inpaintgan.inpainter import Inpainter
from inpaintgan.methods.glcic import GLCIC, GLCICConfig
from inpaintgan.server.app import ServerLimits, create_app

with warnings.catch_warnings():  # newer Starlette suggests httpx2 for its TestClient; httpx works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

API = "/api/v1"
H, W = 48, 64
LIMITS = ServerLimits(max_upload_bytes=300_000, max_pixels=200 * 200)


def tiny_method(seed: int = 0) -> GLCIC:
    torch.manual_seed(seed)
    return GLCIC(GLCICConfig(width=8, d_width=8), image_size=32).eval()


def png(a: np.ndarray | Image.Image, **kw) -> bytes:
    img = a if isinstance(a, Image.Image) else Image.fromarray(a)
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def photo(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], -1)
    noise = np.random.default_rng(seed).integers(0, 40, (h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def box_mask(h: int = H, w: int = W, box=(12, 20, 28, 44)) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    y0, x0, y1, x1 = box
    m[y0:y1, x0:x1] = 255
    return m


IMG, MASK = png(photo()), png(box_mask())


@pytest.fixture(scope="module")
def inpainter() -> Inpainter:
    return Inpainter(tiny_method(), {"model": "tiny"})


@pytest.fixture(scope="module")
def client(inpainter):
    with TestClient(create_app(inpainter, zoo=False, limits=LIMITS)) as c:
        yield c


def post(client, image=IMG, mask=MASK, **fields):
    files = {}
    if image is not None:
        files["image"] = ("image.png", image, "image/png")
    if mask is not None:
        files["mask"] = ("mask.png", mask, "image/png")
    return client.post(f"{API}/inpaint", files=files, data={k: str(v) for k, v in fields.items()})


def assert_error(r, status: int, code: str, *fragments: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == status and body["error"] == code, body
    for f in fragments:
        assert f in body["message"], (f, body["message"])
    return body


# ------------------------------------------------------------------------------------ endpoints


def test_health(client):
    r = client.get(f"{API}/health")
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "ok" and h["model"] == "tiny" and h["device"] == "cpu"
    assert h["queue"]["max_in_flight"] == 1 and h["queue"]["in_flight"] == 0
    assert h["limits"]["max_upload_bytes"] == 300_000 and h["limits"]["max_pixels"] == 40_000


def test_models_lists_served_and_extra_models_without_paths(inpainter):
    other = Inpainter(tiny_method(seed=1), {"model": "other"})
    with TestClient(create_app(inpainter, models={"other": other}, zoo=False)) as c:
        body = c.get(f"{API}/models").json()
        assert body["default"] == "tiny"
        rows = {m["name"]: m for m in body["models"]}
        assert set(rows) == {"tiny", "other"}
        assert rows["tiny"]["default"] and not rows["other"]["default"]
        assert rows["tiny"]["method"] == "glcic" and rows["tiny"]["image_size"] == 32
        assert not any("path" in m for m in body["models"])
        # a request picks a model by name
        r = post(c, model="other")
        assert r.status_code == 200 and r.headers["x-inpaint-model"] == "other"
        expected = other(Image.open(io.BytesIO(IMG)), Image.open(io.BytesIO(MASK)))
        assert np.array_equal(decode(r.content), np.asarray(expected))


def test_openapi_schema_and_docs(client):
    r = client.get(f"{API}/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert {f"{API}/inpaint", f"{API}/models", f"{API}/health"} <= set(spec["paths"])
    body = spec["paths"][f"{API}/inpaint"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)
    assert {"image", "mask", "model", "strategy", "dilate", "blend"} <= set(body["multipart/form-data"]["schema"]["properties"])
    assert {"400", "413", "422", "503"} <= set(spec["paths"][f"{API}/inpaint"]["post"]["responses"])
    assert client.get(f"{API}/docs").status_code == 200


def test_page_and_static_files(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert 'id="view"' in r.text and "/static/app.js" in r.text
    for name, ctype in (("app.js", "javascript"), ("style.css", "text/css"), ("favicon.svg", "image/svg+xml")):
        s = client.get(f"/static/{name}")
        assert s.status_code == 200 and ctype in s.headers["content-type"]
    assert client.get("/static/../app.py").status_code == 404


# ---------------------------------------------------------------------------- results, bit for bit


@pytest.mark.parametrize(
    "mode, options",
    [("RGB", {}), ("RGB", {"dilate": 3}), ("RGB", {"strategy": "crop"}), ("RGB", {"blend": "poisson"}),
     ("L", {}), ("RGBA", {})],
)
def test_inpaint_equals_the_inpainter_bit_for_bit(client, inpainter, mode, options):
    img = Image.fromarray(photo()).convert(mode)
    if mode == "RGBA":
        a = np.asarray(img).copy()
        a[:, :8, 3] = 100  # alpha kept aside, returned unchanged
        img = Image.fromarray(a, "RGBA")
    data = png(img)
    r = post(client, data, MASK, **options)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-inpaint-model"] == "tiny"
    out = Image.open(io.BytesIO(r.content))
    assert out.mode == mode and out.size == (W, H)
    expected = inpainter(Image.open(io.BytesIO(data)), Image.open(io.BytesIO(MASK)), **options)
    assert np.array_equal(np.asarray(out), np.asarray(expected))
    hole = dilate_mask(box_mask() > 0, options.get("dilate", 0))
    assert np.array_equal(np.asarray(out)[~hole], np.asarray(img)[~hole])  # known pixels unchanged


def test_inpaint_json_base64_and_data_url(client):
    ref = post(client).content
    b64 = {"image": base64.b64encode(IMG).decode(), "mask": "data:image/png;base64," + base64.b64encode(MASK).decode()}
    r = client.post(f"{API}/inpaint", json=b64)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert np.array_equal(decode(r.content), decode(ref))
    r = client.post(f"{API}/inpaint", json={**b64, "dilate": 2, "resize_mask": False, "strategy": "full"})
    assert r.status_code == 200


def test_jpeg_output_by_option_and_by_accept_header(client):
    r = post(client, format="jpeg", quality=90)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).format == "JPEG"
    r = client.post(f"{API}/inpaint", files={"image": IMG, "mask": MASK}, headers={"Accept": "image/jpeg"})
    assert r.headers["content-type"] == "image/jpeg"
    assert decode(r.content).shape == (H, W, 3)


def test_resize_mask_option(client, inpainter):
    small = png(box_mask(24, 32, (6, 10, 14, 22)))
    r = post(client, IMG, small, resize_mask="true")
    assert r.status_code == 200
    expected = inpainter(Image.open(io.BytesIO(IMG)), Image.open(io.BytesIO(small)), resize_mask=True)
    assert np.array_equal(decode(r.content), np.asarray(expected))


# ------------------------------------------------------------------------------------ bad inputs


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but holds no pixel data (a 'bomb' in 60 bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "case, kwargs, status, code, fragments",
    [
        ("not an image", dict(image=b"hello, I am not an image"), 422, "not_an_image", ["image is not a readable image"]),
        ("empty file", dict(image=b""), 422, "not_an_image", ["empty"]),
        ("mask not an image", dict(mask=b"%PDF-1.4"), 422, "not_an_image", ["mask is not a readable image"]),
        ("truncated", dict(image=IMG[: len(IMG) // 2]), 422, "corrupt_image", ["truncated"]),
        ("mask size", dict(mask=png(box_mask(32, 32, (4, 4, 9, 9)))), 422, "mask_size_mismatch", ["32x32", "64x48", "resize_mask"]),
        ("empty mask", dict(mask=png(np.zeros((H, W), np.uint8))), 422, "mask_empty", ["empty"]),
        ("full mask", dict(mask=png(np.full((H, W), 255, np.uint8))), 422, "mask_full", ["whole image"]),
        ("unknown model", dict(model="nope"), 400, "unknown_model", ["'nope'", "available models: tiny"]),
        ("model path", dict(model="../../etc/passwd"), 400, "unknown_model", ["cannot give a file path"]),
        ("strategy", dict(strategy="magic"), 400, "bad_option", ["strategy", "auto, full, crop, resize"]),
        ("blend", dict(blend="soft"), 400, "bad_option", ["blend", "none, poisson"]),
        ("dilate text", dict(dilate="lots"), 400, "bad_option", ["dilate must be an integer"]),
        ("dilate range", dict(dilate=1000), 400, "bad_option", ["dilate must be from 0 to 64"]),
        ("format", dict(format="gif"), 400, "bad_option", ["format"]),
        ("resize_mask", dict(resize_mask="maybe"), 400, "bad_option", ["resize_mask must be true or false"]),
        ("unknown field", dict(colour="red"), 400, "unknown_field", ["'colour'"]),
        ("missing mask", dict(mask=None), 400, "missing_field", ["mask"]),
        ("missing image", dict(image=None), 400, "missing_field", ["image"]),
        ("too many pixels", dict(image=png(np.zeros((250, 250), np.uint8))), 413, "too_many_pixels", ["250x250", "0.04 MP"]),
        ("header only", dict(image=png_header_only(6000, 5000)), 413, "too_many_pixels", ["6000x5000 = 30.0 MP"]),
        ("bomb", dict(mask=png_header_only(30000, 30000)), 413, "too_many_pixels", ["mask is refused", "0.04 MP"]),
    ],
)
def test_bad_inputs_get_clear_json_errors(client, case, kwargs, status, code, fragments):
    assert_error(post(client, **kwargs), status, code, *fragments)


def test_model_path_of_a_real_file_is_refused(client, tmp_path):
    path = save_model(tiny_method(seed=2), tmp_path / "evil.safetensors")
    assert_error(post(client, model=str(path)), 400, "unknown_model", "available models: tiny")
    assert_error(post(client, model="evil.safetensors"), 400, "unknown_model")


def test_bad_request_shapes(client):
    url = f"{API}/inpaint"
    assert_error(client.post(url, content=b"image=1", headers={"content-type": "text/plain"}), 415, "unsupported_media_type", "multipart")
    assert_error(client.post(url, content=b"{not json", headers={"content-type": "application/json"}), 400, "bad_json")
    assert_error(client.post(url, json=[1, 2]), 400, "bad_json", "object")
    assert_error(client.post(url, json={"image": "!!!", "mask": "x"}), 400, "bad_base64", "'image'")
    assert_error(client.post(url, json={"image": 5, "mask": "x"}), 400, "bad_base64")
    assert_error(client.post(url, json={"mask": "aGk="}), 400, "missing_field", "'image'")
    assert_error(client.post(url, files={"mask": MASK}, data={"image": "text"}), 400, "bad_request", "file part")
    assert_error(client.post(url, files={"image": IMG, "mask": MASK, "extra": IMG}), 400, "bad_request", "Too many files")
    assert_error(client.get(url), 405, "method_not_allowed")
    assert_error(client.get(f"{API}/nothing"), 404, "not_found")


def test_upload_byte_limit_by_content_length_and_while_streaming(client):
    big = bytes(400_000)
    r = client.post(f"{API}/inpaint", files={"image": big, "mask": MASK})
    assert_error(r, 413, "upload_too_large", "over this server's limit")

    def chunks():  # no Content-Length: the cap applies while the body streams in
        for _ in range(40):
            yield bytes(10_000)

    r = client.post(f"{API}/inpaint", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "upload_too_large")
    assert client.get(f"{API}/health").json()["queue"]["queued"] == 0  # the places were given back


# ------------------------------------------------------------------------------ queue and failures


class GatedInpainter(Inpainter):
    """Waits for ``gate`` before inpainting: holds the inference slot as long as the test wants."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate, self.entered = threading.Event(), threading.Event()

    def __call__(self, *args, **kwargs):
        self.entered.set()
        assert self.gate.wait(20)
        return super().__call__(*args, **kwargs)


def test_flood_gets_503_with_retry_after_and_the_server_stays_responsive():
    slow = GatedInpainter(tiny_method(), {"model": "slow"})
    limits = ServerLimits(max_in_flight=1, max_queued=2)
    results: list[httpx.Response] = []
    with TestClient(create_app(slow, zoo=False, limits=limits)) as c:
        def send():
            results.append(post(c))

        threads = [threading.Thread(target=send) for _ in range(8)]
        for t in threads:
            t.start()
        assert slow.entered.wait(10)
        deadline = time.monotonic() + 10
        while len(results) < 5 and time.monotonic() < deadline:  # 1 running + 2 queued hold their places
            time.sleep(0.02)
        # while the model is busy, the page, health and models answer at once
        t0 = time.perf_counter()
        h = c.get(f"{API}/health").json()
        assert c.get("/").status_code == 200 and c.get(f"{API}/models").status_code == 200
        assert time.perf_counter() - t0 < 2
        assert h["queue"]["in_flight"] == 1 and h["queue"]["queued"] == 2
        busy = list(results)
        assert len(busy) == 5
        for r in busy:
            body = assert_error(r, 503, "busy", "retry in")
            assert int(r.headers["retry-after"]) >= 1 and body["message"]
        slow.gate.set()
        for t in threads:
            t.join(20)
        codes = sorted(r.status_code for r in results)
        assert codes == [200] * 3 + [503] * 5
        h = c.get(f"{API}/health").json()["queue"]
        assert h["served"] == 3 and h["rejected"] == 5 and h["queued"] == 0 and h["in_flight"] == 0


def test_segment_gets_503_busy_like_inpaint_while_the_queue_is_full():
    """/segment shares the inference queue: while an inpaint holds the only place, a selection is refused
    with the same 503 + Retry-After (not queued, not run), and runs once the place is free."""
    slow = GatedInpainter(tiny_method(), {"model": "slow"})
    limits = ServerLimits(max_in_flight=1, max_queued=0)
    img = np.zeros((48, 48, 3), np.uint8)
    img[12:36, 12:36] = 200
    seg = {"files": {"image": ("s.png", png(img), "image/png")}, "data": {"box": "8,8,40,40"}}
    with TestClient(create_app(slow, zoo=False, limits=limits)) as c:
        first: list[httpx.Response] = []
        t = threading.Thread(target=lambda: first.append(post(c)))
        t.start()
        try:
            assert slow.entered.wait(10)
            r = c.post(f"{API}/segment", **seg)
            assert_error(r, 503, "busy", "retry in")
            assert int(r.headers["retry-after"]) >= 1
            assert c.get(f"{API}/health").json()["queue"]["rejected"] == 1
        finally:
            slow.gate.set()
            t.join(20)
        assert first[0].status_code == 200
        r = c.post(f"{API}/segment", **seg)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"


class BrokenInpainter(Inpainter):
    def __call__(self, *args, **kwargs):
        raise RuntimeError("secret internal detail")


def test_model_failure_is_a_500_without_internals():
    with TestClient(create_app(BrokenInpainter(tiny_method(), {"model": "broken"}), zoo=False)) as c:
        body = assert_error(post(c), 500, "inference_failed", "server log")
        assert "secret" not in body["message"]
        assert c.get(f"{API}/health").json()["queue"]["queued"] == 0


def test_installed_zoo_models_are_offered_by_name_and_loaded_once(inpainter, tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setitem(checkpoints.MODEL_ZOO, "tiny-zoo", dict(
        url=None, sha256=None, filename="tiny_zoo.safetensors", description="a tiny zoo model", method="glcic",
        embedded=True, image_size=32,
    ))
    path = save_model(tiny_method(seed=3), tmp_path / "tiny_zoo.safetensors")
    with TestClient(create_app(inpainter, limits=LIMITS)) as c:
        rows = {m["name"]: m for m in c.get(f"{API}/models").json()["models"]}
        # 'default' and 'glcic-cifar10' are not installed here; the classical fills need no file
        assert set(rows) == {"tiny", "tiny-zoo", "telea", "ns", "patchmatch"}
        assert rows["tiny-zoo"]["loaded"] is False and rows["tiny-zoo"]["description"] == "a tiny zoo model"
        r = post(c, model="tiny-zoo")
        assert r.status_code == 200 and r.headers["x-inpaint-model"] == "tiny-zoo"
        expected = Inpainter.from_pretrained(path, device="cpu")(Image.open(io.BytesIO(IMG)), Image.open(io.BytesIO(MASK)))
        assert np.array_equal(decode(r.content), np.asarray(expected))
        rows = {m["name"]: m for m in c.get(f"{API}/models").json()["models"]}
        assert rows["tiny-zoo"]["loaded"] is True
        assert_error(post(c, model="default"), 400, "unknown_model", "available models: tiny, tiny-zoo, telea, ns, patchmatch")


def test_limits_are_validated():
    with pytest.raises(ValueError, match="max_in_flight"):
        ServerLimits(max_in_flight=0)
    with pytest.raises(ValueError, match="max_queued"):
        ServerLimits(max_queued=-1)


# ------------------------------------------------------------------------------------------ CLI


def test_serve_command_prints_the_url_and_serves(tmp_path, monkeypatch, capsys):
    import uvicorn

    from inpaintgan.cli import SUBCOMMAND_MODULES, main

    assert "inpaintgan.server.cli" in SUBCOMMAND_MODULES
    servers: list[uvicorn.Server] = []
    init = uvicorn.Server.__init__

    def record(self, config):
        init(self, config)
        servers.append(self)

    monkeypatch.setattr(uvicorn.Server, "__init__", record)
    path = save_model(tiny_method(), tmp_path / "tiny.safetensors")
    rc: list[int] = []
    thread = threading.Thread(target=lambda: rc.append(main(["serve", "--model", str(path), "--port", "0", "--device", "cpu"])))
    thread.start()
    out, deadline = "", time.monotonic() + 30
    try:
        while "Open http" not in out and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.05)
            out += capsys.readouterr().out
        m = re.search(r"Open (http://127\.0\.0\.1:(\d+)/) in a browser", out)
        assert m, out
        assert "model tiny (glcic, 32 px) on cpu" in out
        assert servers[0].config.host == "127.0.0.1"  # loopback by default
        url = m.group(1)
        h = httpx.get(url + "api/v1/health", timeout=10)
        assert h.status_code == 200 and h.json()["model"] == "tiny"
        r = httpx.post(url + "api/v1/inpaint", files={"image": IMG, "mask": MASK}, timeout=30)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        # DNS rebinding: a page on another name that resolves to 127.0.0.1 is refused
        assert httpx.get(url + "api/v1/health", headers={"Host": "attacker.example"}, timeout=10).status_code == 400
    finally:
        for s in servers:
            s.should_exit = True
        thread.join(15)
    assert rc == [0]


def test_serve_command_rejects_bad_limits(capsys):
    from inpaintgan.cli import main

    assert main(["serve", "--max-queued", "-1", "--model", "no-such-model"]) == 2
    assert "max_queued must be >= 0" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be 0..65535" in capsys.readouterr().err
