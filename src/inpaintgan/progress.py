"""One progress rule for every long command (``fill``, ``eval``, ``train``):

- on a terminal, a live bar (tqdm);
- otherwise (a pipe, a log file, CI), a plain line every ``INPAINTGAN_PROGRESS_INTERVAL`` seconds
  (default 30) and one at the end if any was written, never a carriage return;
- ``--quiet``: nothing.

    bar = progress(total=n, desc="fill", unit="img", quiet=args.quiet)
    bar.update(1); bar.set_postfix({"loss": 0.1}, refresh=False); bar.close()
    for item in progress(items, desc="fill"): ...
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

DEFAULT_INTERVAL = 30.0


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("INPAINTGAN_PROGRESS_INTERVAL", DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def _is_terminal(f: TextIO) -> bool:
    try:
        return bool(f.isatty())
    except (AttributeError, ValueError):
        return False


def _duration(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class PlainProgress:
    """The part of tqdm's interface the commands use, writing plain periodic lines."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, initial: int = 0, desc: str = "",
                 unit: str = "it", file: TextIO | None = None, interval: float | None = None):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.n, self.start_n = total, initial, initial
        self.desc, self.unit = desc, unit
        self.file = file or sys.stderr
        self.interval = _interval() if interval is None else interval
        self.started = self.last = time.monotonic()
        self.postfix = ""
        self.lines = 0
        self.closed = False

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._line()

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kw: Any) -> None:
        items = {**(ordered_dict or {}), **kw}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        pass

    def _line(self, final: bool = False) -> None:
        elapsed = time.monotonic() - self.started
        done = self.n - self.start_n
        rate = done / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.n}/{self.total} {self.unit}" if self.total else f"{self.n} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        parts.append(f"{_duration(elapsed)}" + (f", {rate:.3g} {self.unit}/s" if rate else ""))
        if not final and self.total and rate > 0:
            parts.append(f"eta {_duration((self.total - self.n) / rate)}")
        if self.postfix:
            parts.append(self.postfix)
        prefix = f"{self.desc}: " if self.desc else ""
        print(prefix + ("done " if final else "") + ", ".join(parts), file=self.file, flush=True)
        self.lines += 1

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.lines:  # a short run says nothing; a long one ends with its total
            self._line(final=True)

    @staticmethod
    def write(s: str, file: TextIO | None = None, end: str = "\n", nolock: bool = False) -> None:
        print(s, file=file or sys.stderr, end=end, flush=True)


def progress(iterable: Iterable | None = None, *, total: int | None = None, initial: int = 0, desc: str = "",
             unit: str = "it", quiet: bool = False, file: TextIO | None = None, leave: bool = True,
             interval: float | None = None, **tqdm_kwargs: Any):
    """A tqdm bar on a terminal, :class:`PlainProgress` lines elsewhere, nothing when ``quiet``."""
    from tqdm.auto import tqdm

    file = file or sys.stderr
    if quiet:
        return tqdm(iterable, total=total, initial=initial, disable=True)
    if _is_terminal(file):
        return tqdm(iterable, total=total, initial=initial, desc=desc, unit=unit, file=file, leave=leave,
                    dynamic_ncols=True, **tqdm_kwargs)
    return PlainProgress(iterable, total=total, initial=initial, desc=desc, unit=unit, file=file, interval=interval)


__all__ = ["progress", "PlainProgress"]
