"""Machine description shared by the benchmark scripts (a row of facts printed above each table).

The function lives in the package (:mod:`inpaintgan.machine`, also used by the experiment reports);
this module re-exports it so the scripts' ``from machine import machine_info`` keeps working."""

from __future__ import annotations

from inpaintgan.machine import cpu_model, machine_info

__all__ = ["cpu_model", "machine_info"]
