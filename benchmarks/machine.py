"""Machine description shared by the benchmark scripts (a row of facts printed above each table)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from pathlib import Path


def machine_info(device: str = "cpu") -> dict:
    """Date, CPU model, usable cores, thread settings, library versions and the device (+ GPU name)."""
    import cv2
    import torch

    cpu = platform.processor() or "?"
    try:
        m = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        if m:
            cpu = m.group(1).strip()
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count()
    info = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu,
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
