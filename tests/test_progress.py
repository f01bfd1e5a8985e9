"""The progress rule: a bar on a terminal, plain periodic lines otherwise (no carriage returns in a
log), nothing with --quiet; used by fill, eval and train."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import inpaintgan
from inpaintgan.progress import PlainProgress, progress

ENV = {**os.environ, "PYTHONPATH": str(Path(inpaintgan.__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_off_a_terminal_and_a_bar_on_one():
    log = io.StringIO()
    bar = progress(total=5, desc="fill", unit="img", file=log, interval=0)
    assert isinstance(bar, PlainProgress)
    for _ in range(5):
        bar.update(1)
    bar.set_postfix({"loss": 0.5}, refresh=False)
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 6
    assert lines[0].startswith("fill: 1/5 img (20%)") and "eta" in lines[0]
    assert lines[-1].startswith("fill: done 5/5 img (100%)") and "loss=0.5" in lines[-1]

    quiet = io.StringIO()
    for _ in progress(range(3), desc="x", file=quiet, quiet=True, interval=0):
        pass
    assert quiet.getvalue() == ""

    term = FakeTerminal()
    bar = progress(total=3, desc="fill", file=term)
    assert not isinstance(bar, PlainProgress)
    bar.update(3)
    bar.close()
    assert "\r" in term.getvalue() and "3/3" in term.getvalue()


def test_a_short_run_in_a_log_says_nothing_a_long_one_reports():
    log = io.StringIO()
    items = list(progress(range(4), desc="eval", file=log, interval=3600))
    assert items == [0, 1, 2, 3] and log.getvalue() == ""


def test_fill_in_a_pipe_writes_plain_lines(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(d / f"p{i}.png")
    m = np.zeros((24, 32), np.uint8)
    m[8:16, 10:20] = 255
    Image.fromarray(m).save(tmp_path / "m.png")
    cmd = [sys.executable, "-m", "inpaintgan", "fill", str(d), "--mask", str(tmp_path / "m.png"), "--model", "telea"]
    r = subprocess.run([*cmd, "-o", str(tmp_path / "out")], env={**ENV, "INPAINTGAN_PROGRESS_INTERVAL": "0"},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and "fill: 1/3 img" in r.stderr and "fill: done 3/3 img" in r.stderr
    r = subprocess.run([*cmd, "-o", str(tmp_path / "out2"), "--quiet"], env={**ENV, "INPAINTGAN_PROGRESS_INTERVAL": "0"},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "fill:" not in r.stderr
