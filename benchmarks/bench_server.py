"""Load test of ``inpaintgan serve``: a flood of concurrent requests against a real server process.

    python benchmarks/bench_server.py                                # the embedded default model
    python benchmarks/bench_server.py --model runs/x/model.safetensors --requests 100
    python benchmarks/bench_server.py --tiny                         # a tiny random model (smoke run)

Starts ``python -m inpaintgan serve`` on 127.0.0.1 (the loopback address only; a free port) with the
given model and the server's default limits (1 inference at a time, 4 queued), then:

1. ``sequential``: ``--warmup`` requests one after another (the service time of one request);
2. ``burst``: ``--requests`` requests at once, no retry: each must be answered 200 or 503 (the
   queue is full: refused at once, with ``Retry-After``), none lost (no timeout, no reset);
3. ``burst + retry``: the same flood, each client honouring ``Retry-After`` (plus up to 0.5 s of
   jitter) until it gets its 200 or ``--timeout`` runs out.

With ``--attack`` (slow-upload attack, issue 19 item 1): ``--attackers`` clients send headers and then
one body byte every ``--attack-gap`` seconds (reconnecting whenever the server closes them), for
``--attack-seconds``, while one legitimate client sends requests one after another (honouring
``Retry-After``). Reported: legitimate requests served, their latency, and the attackers' 408s.

With ``--large MP`` (large-pixel burst, issue 19 item 2): ``--large-requests`` requests at once, each a
flat-gradient PNG of MP megapixels (a small upload that decodes large) with a hole of a quarter of
each side, with retry. Reported: the server's peak RSS over the burst against its documented budget
(start-up RSS + ``ServerLimits.memory_budget_bytes``, from the pixel limit).

Afterwards the server must still answer ``/api/v1/health`` with 200, and its resident memory (RSS,
from ``/proc``) must not have grown by more than ``--max-rss-growth-mb`` over the floods. The request
is a photo (the bundled ``mountain.jpg`` resized to ``--size`` on its long side, PNG) with a centred
hole of a quarter of its sides. Printed as Markdown and added to ``docs/benchmarks.md`` under
``## Server load test`` with the machine (``--output ''`` to skip). Exit 1 if a check fails.
Not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from machine import machine_info  # benchmarks/machine.py (scripts run from benchmarks/)
from PIL import Image

from inpaintgan.server.app import WORK_BYTES_PER_PIXEL

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # loopback only, never configurable
HEADING = "## Server load test"


# ------------------------------------------------------------------------------------ the server


class ServerProcess:
    """``python -m inpaintgan serve`` on 127.0.0.1 and a free port; the URL is read from its output."""

    def __init__(self, model: str, device: str, extra: list[str], startup_timeout: float = 180.0):
        cmd = [sys.executable, "-m", "inpaintgan", "serve", "--host", HOST, "--port", "0",
               "--model", model, "--device", device, *extra]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines: list[str] = []
        found = threading.Event()
        self.url = ""

        def reader() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line.rstrip())
                m = re.search(r"Open (http://127\.0\.0\.1:\d+/)", line)
                if m and not found.is_set():
                    self.url = m.group(1)
                    found.set()

        threading.Thread(target=reader, daemon=True).start()
        deadline = time.monotonic() + startup_timeout
        while not found.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the server did not start:\n" + "\n".join(self.lines[-30:]))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def memory_mib(self) -> dict[str, float]:
        """Resident memory now (VmRSS) and its peak so far (VmHWM), MiB."""
        out = {}
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
            for key in ("VmRSS", "VmHWM"):
                m = re.search(rf"{key}:\s+(\d+) kB", text)
                out[key] = int(m.group(1)) / 1024 if m else float("nan")
        except OSError:  # not Linux: psutil if it is there
            try:
                import psutil

                out = {"VmRSS": psutil.Process(self.pid).memory_info().rss / 2**20, "VmHWM": float("nan")}
            except Exception:  # noqa: BLE001
                out = {"VmRSS": float("nan"), "VmHWM": float("nan")}
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# ------------------------------------------------------------------------------------- requests


def request_files(long_side: int) -> tuple[bytes, bytes, str]:
    img = Image.open(ROOT / "src" / "inpaintgan" / "assets" / "mountain.jpg").convert("RGB")
    w, h = img.size
    s = long_side / max(w, h)
    img = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC)
    w, h = img.size
    mask = np.zeros((h, w), np.uint8)
    mask[h * 3 // 8 : h * 5 // 8, w * 3 // 8 : w * 5 // 8] = 255
    bi, bm = io.BytesIO(), io.BytesIO()
    img.save(bi, "PNG")
    Image.fromarray(mask).save(bm, "PNG")
    return bi.getvalue(), bm.getvalue(), f"{w}x{h}"


async def one(client: httpx.AsyncClient, url: str, image: bytes, mask: bytes, retry: bool, deadline: float) -> dict:
    """One client: POST until 200 (with ``retry``) or once; returns status, latency, attempts, error."""
    t0 = time.perf_counter()
    attempts = 0
    while True:
        attempts += 1
        try:
            r = await client.post(url + "api/v1/inpaint", files={"image": ("p.png", image, "image/png"),
                                                                 "mask": ("m.png", mask, "image/png")})
        except httpx.HTTPError as e:
            return {"status": None, "latency": time.perf_counter() - t0, "attempts": attempts, "error": type(e).__name__}
        if r.status_code == 200 and not r.content.startswith(b"\x89PNG"):
            return {"status": -1, "latency": time.perf_counter() - t0, "attempts": attempts, "error": "not a PNG"}
        if r.status_code == 503 and retry:
            wait = float(r.headers.get("retry-after", "1")) + random.uniform(0, 0.5)
            if time.perf_counter() + wait < deadline:
                await asyncio.sleep(wait)
                continue
        return {"status": r.status_code, "latency": time.perf_counter() - t0, "attempts": attempts, "error": None}


async def flood(url: str, image: bytes, mask: bytes, n: int, concurrent: int, timeout: float, retry: bool) -> tuple[list[dict], float]:
    limits = httpx.Limits(max_connections=concurrent, max_keepalive_connections=concurrent)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(timeout)) as client:
        t0 = time.perf_counter()
        deadline = t0 + timeout
        sem = asyncio.Semaphore(concurrent)

        async def bounded() -> dict:
            async with sem:
                return await one(client, url, image, mask, retry, deadline)

        results = await asyncio.wait_for(asyncio.gather(*(bounded() for _ in range(n))), timeout + 30)
        return results, time.perf_counter() - t0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values), q))


def summarize(name: str, results: list[dict], wall: float) -> dict:
    ok = [r for r in results if r["status"] == 200]
    busy = [r for r in results if r["status"] == 503]
    lost = [r for r in results if r["status"] not in (200, 503)]
    answered = [r["latency"] * 1e3 for r in results if r["status"] in (200, 503)]
    ok_ms = [r["latency"] * 1e3 for r in ok]
    return {
        "phase": name, "requests": len(results), "ok": len(ok), "busy": len(busy), "lost": len(lost),
        "lost_detail": sorted({str(r["error"] or r["status"]) for r in lost}),
        "attempts": sum(r["attempts"] for r in results),
        "wall_s": wall, "throughput": len(ok) / wall if wall > 0 else float("nan"),
        "p50": percentile(answered, 50), "p90": percentile(answered, 90), "p99": percentile(answered, 99),
        "ok_p50": percentile(ok_ms, 50), "ok_p99": percentile(ok_ms, 99),
        "busy_p50": percentile([r["latency"] * 1e3 for r in busy], 50),
    }


# ------------------------------------------------------------------------------ attack and large


def _slow_client(host: str, port: int, gap: float, stop: threading.Event, answers: list[str]) -> None:
    """One attacker: headers, a part header, then a byte every ``gap`` s; reconnects when closed."""
    import socket

    while not stop.is_set():
        try:
            with socket.create_connection((host, port), timeout=10) as s:
                s.sendall((f"POST /api/v1/inpaint HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; "
                           "boundary=xx\r\nContent-Length: 10000000\r\n\r\n--xx\r\nContent-Disposition: form-data; "
                           'name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n').encode())
                s.settimeout(gap)
                answer = b""
                while not stop.is_set():
                    try:
                        s.sendall(b"a")
                    except OSError:
                        break
                    try:
                        chunk = s.recv(65536)
                    except TimeoutError:
                        continue
                    if not chunk:
                        break
                    answer += chunk
                    if b"\r\n\r\n" in answer:
                        break
                if answer:
                    answers.append(answer.split(b" ", 2)[1].decode() if b" " in answer else "?")
        except OSError:
            time.sleep(0.1)


def slow_upload_attack(url: str, image: bytes, mask: bytes, attackers: int, gap: float, seconds: float) -> dict:
    host, port = url.split("//")[1].strip("/").split(":")
    stop = threading.Event()
    answers: list[str] = []
    threads = [threading.Thread(target=_slow_client, args=(host, int(port), gap, stop, answers), daemon=True)
               for _ in range(attackers)]
    for t in threads:
        t.start()
    time.sleep(min(1.0, seconds / 4))  # the attackers hold the places first
    served, busy, lat = 0, 0, []
    t_end = time.monotonic() + seconds
    with httpx.Client(timeout=60) as c:
        while time.monotonic() < t_end:
            t0 = time.perf_counter()
            try:
                r = c.post(url + "api/v1/inpaint", files={"image": ("p.png", image, "image/png"),
                                                         "mask": ("m.png", mask, "image/png")})
            except httpx.HTTPError:
                busy += 1
                continue
            if r.status_code == 200:
                served += 1
                lat.append((time.perf_counter() - t0) * 1e3)
            else:
                busy += 1
                time.sleep(min(float(r.headers.get("retry-after", "1")), 1.0))
    stop.set()
    for t in threads:
        t.join(5)
    return {"served": served, "refused": busy, "p50": percentile(lat, 50), "p99": percentile(lat, 99),
            "attacker_answers": {k: answers.count(k) for k in sorted(set(answers))}}


def large_files(megapixels: float) -> tuple[bytes, bytes, str]:
    w = int(round((megapixels * 1e6 * 3 / 2) ** 0.5))
    h = int(round(megapixels * 1e6 / w))
    x, y = np.linspace(0, 255, w).astype(np.uint8), np.linspace(0, 255, h).astype(np.uint8)
    img = np.empty((h, w, 3), np.uint8)
    img[:, :, 0], img[:, :, 1], img[:, :, 2] = x[None, :], y[:, None], 128
    mask = np.zeros((h, w), np.uint8)
    mask[h * 3 // 8 : h * 5 // 8, w * 3 // 8 : w * 5 // 8] = 255
    bi, bm = io.BytesIO(), io.BytesIO()
    Image.fromarray(img).save(bi, "PNG")
    Image.fromarray(mask).save(bm, "PNG")
    return bi.getvalue(), bm.getvalue(), f"{w}x{h}"


# ------------------------------------------------------------------------------------ reporting


def fmt(x: float, digits: int = 0) -> str:
    return "-" if x != x else f"{x:.{digits}f}"  # NaN -> "-"


def to_markdown(rows: list[dict], info: dict, meta: dict, checks: list[tuple[str, bool]], argv: list[str]) -> str:
    lines = [f"### {info['date']} -- {info['cpu']}, {info['cores']} cores, {info['device']}", ""]
    lines.append("Machine: " + ", ".join(f"{k} {v}" for k, v in info.items() if k != "date") + "  ")
    lines.append(f"Model: {meta['model']}; server limits: {meta['limits']}  ")
    lines.append(f"Command: `python benchmarks/bench_server.py {' '.join(argv)}`".rstrip() + "  ")
    lines.append(f"Request: a {meta['size']} PNG ({meta['image_kb']:.0f} KB) + mask (centred hole, a quarter of "
                 f"each side), multipart, PNG answer; {meta['concurrent']} clients at once, timeout {meta['timeout']:.0f} s.  ")
    lines.append("Latency: from sending to the full answer (200 or 503), ms; with retry, until the 200. Throughput: 200s per second of wall time.")
    lines += ["", "| phase | requests | 200 | 503 | lost | tries | wall s | 200/s | p50 ms | p90 ms | p99 ms | 503 p50 ms |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['phase']} | {r['requests']} | {r['ok']} | {r['busy']} | {r['lost']} | {r['attempts']} | "
            f"{r['wall_s']:.2f} | {fmt(r['throughput'], 2)} | {fmt(r['p50'])} | {fmt(r['p90'])} | {fmt(r['p99'])} | "
            f"{fmt(r['busy_p50'])} |"
        )
    mem = meta["memory"]
    lines += ["", f"Server RSS: {mem['start']:.0f} MiB after start-up and warm-up, {mem['end']:.0f} MiB after the floods "
              f"(growth {mem['end'] - mem['start']:+.0f} MiB; peak {fmt(mem['peak'])} MiB).", ""]
    lines.append("Checks: " + "; ".join(f"{name}: {'ok' if good else 'FAILED'}" for name, good in checks) + ".")
    return "\n".join(lines) + "\n"


def append_report(path: Path, text: str) -> None:
    """Add ``text`` at the end of the ``## Server load test`` section (created at the end if absent)."""
    old = path.read_text() if path.is_file() else "# Benchmarks\n"
    lines = old.rstrip("\n").split("\n")
    try:
        start = lines.index(HEADING)
    except ValueError:
        new = old.rstrip("\n") + f"\n\n{HEADING}\n\nAppended by `python benchmarks/bench_server.py` (see its docstring).\n\n{text}"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        head, tail = "\n".join(lines[:end]).rstrip("\n"), "\n".join(lines[end:])
        new = head + "\n\n" + text + ("\n" + tail + "\n" if tail else "")
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(new)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------ main


def tiny_model(folder: Path) -> Path:
    import torch

    from inpaintgan.checkpoints import save_model
    from inpaintgan.methods.glcic import GLCIC, GLCICConfig

    torch.manual_seed(0)
    return save_model(GLCIC(GLCICConfig(width=8, d_width=8), image_size=32).eval(), folder / "tiny.safetensors")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="default", help="zoo name or model file the server loads (default: default)")
    p.add_argument("--tiny", action="store_true", help="serve a tiny random GLCIC instead (smoke run; latency is not a model's)")
    p.add_argument("--device", default="cpu", help="the server's --device (default cpu)")
    p.add_argument("--requests", type=int, default=100, help="requests per flood (default 100)")
    p.add_argument("--concurrency", type=int, default=100, help="clients at once (default 100)")
    p.add_argument("--warmup", type=int, default=5, help="sequential requests first (default 5)")
    p.add_argument("--size", type=int, default=512, help="long side of the photo sent (default 512)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds a flood may take, per request and in all (default 300)")
    p.add_argument("--max-queued", type=int, default=None, help="the server's --max-queued (default: its default)")
    p.add_argument("--max-rss-growth-mb", type=float, default=256.0, help="allowed RSS growth over the floods (default 256)")
    p.add_argument("--attack", action="store_true", help="also run the slow-upload attack (see the docstring)")
    p.add_argument("--attackers", type=int, default=5, help="slow-upload clients (default 5)")
    p.add_argument("--attack-gap", type=float, default=5.0, help="seconds between their body bytes (default 5)")
    p.add_argument("--attack-seconds", type=float, default=30.0, help="how long the attack runs (default 30)")
    p.add_argument("--large", type=float, default=0.0, metavar="MP", help="also a burst of MP-megapixel requests (e.g. 24)")
    p.add_argument("--large-requests", type=int, default=10, help="requests in the large-pixel burst (default 10)")
    p.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"), help="Markdown file to add to ('' = none)")
    args = p.parse_args(argv)
    if not 1 <= args.requests <= 10_000 or not 1 <= args.concurrency <= 1000:
        p.error("--requests must be 1..10000 and --concurrency 1..1000")

    with tempfile.TemporaryDirectory() as tmp:
        model = str(tiny_model(Path(tmp))) if args.tiny else args.model
        extra = ["--max-queued", str(args.max_queued)] if args.max_queued is not None else []
        print(f"starting: inpaintgan serve --model {model}", file=sys.stderr, flush=True)
        server = ServerProcess(model, args.device, extra)
        try:
            url = server.url
            health = httpx.get(url + "api/v1/health", timeout=30).json()
            image, mask, size = request_files(args.size)
            print(f"server {url} (pid {server.pid}); sequential warm-up", file=sys.stderr, flush=True)
            seq, wall = asyncio.run(flood(url, image, mask, args.warmup, 1, args.timeout, retry=False))
            rows = [summarize("sequential", seq, wall)] if args.warmup else []
            mem_start = server.memory_mib()["VmRSS"]
            print(f"burst: {args.requests} requests, {args.concurrency} at once", file=sys.stderr, flush=True)
            burst, wall = asyncio.run(flood(url, image, mask, args.requests, args.concurrency, args.timeout, retry=False))
            rows.append(summarize("burst", burst, wall))
            print("burst + retry (Retry-After)", file=sys.stderr, flush=True)
            retry, wall = asyncio.run(flood(url, image, mask, args.requests, args.concurrency, args.timeout, retry=True))
            rows.append(summarize("burst + retry", retry, wall))
            attack = large = None
            if args.attack:
                print(f"slow-upload attack: {args.attackers} clients, a byte every {args.attack_gap:g} s, "
                      f"{args.attack_seconds:g} s", file=sys.stderr, flush=True)
                attack = slow_upload_attack(url, image, mask, args.attackers, args.attack_gap, args.attack_seconds)
            if args.large:
                big, bigm, big_size = large_files(args.large)
                rss0 = server.memory_mib()["VmRSS"]
                print(f"large-pixel burst: {args.large_requests} x {big_size}", file=sys.stderr, flush=True)
                res, wall = asyncio.run(flood(url, big, bigm, args.large_requests, args.large_requests, args.timeout, retry=True))
                lim = health["limits"]
                budget = lim["max_in_flight"] * WORK_BYTES_PER_PIXEL * lim["max_pixels"] / 2**20
                large = {"size": big_size, "upload_kb": (len(big) + len(bigm)) / 1024, "row": summarize("large burst", res, wall),
                         "rss_before": rss0, "peak": server.memory_mib()["VmHWM"], "budget": budget}
            alive = server.alive()
            try:
                after = httpx.get(url + "api/v1/health", timeout=30)
                health_ok = after.status_code == 200
            except httpx.HTTPError:
                health_ok = False
            mem = server.memory_mib()
        finally:
            server.stop()
        mem_end, peak = mem["VmRSS"], mem["VmHWM"]

    rb, rr = rows[-2], rows[-1]
    extra_checks = []
    if attack is not None:
        extra_checks.append(("legitimate requests served during the slow-upload attack", attack["served"] > 0))
    if large is not None:
        extra_checks.append(("peak RSS within start-up + budget", large["peak"] <= mem_start + large["budget"]))
    checks = extra_checks + [
        ("every request answered 200 or 503", rb["lost"] == 0 and rr["lost"] == 0),
        ("some 200s in the burst", rb["ok"] > 0),
        ("every retrying client served", rr["ok"] == rr["requests"]),
        ("server alive, health 200 afterwards", alive and health_ok),
        (f"RSS growth within {args.max_rss_growth_mb:.0f} MiB", mem_end - mem_start <= args.max_rss_growth_mb),
    ]
    q = health["queue"]
    meta = {
        "model": f"{health['model']} ({'tiny random GLCIC, smoke run' if args.tiny else model})",
        "limits": f"{q['max_in_flight']} in flight + {q['max_queued']} queued",
        "size": size, "image_kb": len(image) / 1024, "concurrent": args.concurrency, "timeout": args.timeout,
        "memory": {"start": mem_start, "end": mem_end, "peak": peak},
    }
    text = to_markdown(rows, machine_info(args.device), meta, checks, argv)
    if attack is not None:
        text += (f"\nSlow-upload attack: {args.attackers} clients sending a body byte every {args.attack_gap:g} s for "
                 f"{args.attack_seconds:g} s; one legitimate client meanwhile: {attack['served']} served (p50 "
                 f"{fmt(attack['p50'])} ms, p99 {fmt(attack['p99'])} ms), {attack['refused']} refused; the attackers' "
                 f"answers: {attack['attacker_answers'] or 'none'}.\n")
    if large is not None:
        r = large["row"]
        text += (f"\nLarge-pixel burst: {r['requests']} requests at once of a {large['size']} PNG + mask "
                 f"({large['upload_kb']:.0f} KB each), with retry: {r['ok']} served in {r['wall_s']:.1f} s. Server RSS "
                 f"{large['rss_before']:.0f} MiB before, peak {fmt(large['peak'])} MiB; documented budget: start-up RSS "
                 f"{mem_start:.0f} MiB + {large['budget']:.0f} MiB (max_in_flight x {WORK_BYTES_PER_PIXEL} B x max_pixels).\n")
    print(text)
    for r in rows:
        if r["lost"]:
            print(f"{r['phase']}: lost requests: {', '.join(r['lost_detail'])}", file=sys.stderr)
    if args.output:
        append_report(Path(args.output), text)
        print(f"added to {args.output} under '{HEADING}'", file=sys.stderr)
    return 0 if all(good for _, good in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
