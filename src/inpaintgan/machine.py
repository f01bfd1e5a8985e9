"""Machine description recorded beside timings: the experiment reports' ``machine`` entry and the row
of facts the benchmark scripts print above each table (``benchmarks/machine.py`` re-exports it)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from pathlib import Path


def cpu_model(fallback: str = "?") -> str:
    """The CPU's model name (``/proc/cpuinfo``), else :func:`platform.processor`, else ``fallback``."""
    cpu = platform.processor() or fallback
    try:
        m = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        if m:
            cpu = m.group(1).strip()
    except OSError:
        pass
    return cpu


def machine_info(device: str = "cpu") -> dict:
    """Date, CPU model, usable cores, thread settings, library versions and the device (+ GPU name)."""
    import cv2
    import torch

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count()
    info = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu_model(),
        "cores": cores,
        "torch_threads": torch.get_num_threads(),
        "omp_threads": os.environ.get("OMP_NUM_THREADS", "(unset)"),
        "torch": torch.__version__,
        "opencv": cv2.__version__,
        "python": platform.python_version(),
        "device": str(device),
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info
