"""Markdown tables: the one formatter of cells, header rows and best-in-group bolding that the eval
summaries (``eval/runner``) and the experiment reports (``experiments/``) share."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["best_values", "bold_cells", "fmt_value", "md_head", "md_row"]


def fmt_value(v: Any, fmt: str) -> str:
    """A table cell: ``fmt`` applied, or ``–`` for a missing (None or NaN) value."""
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def md_head(heads: list[str], text_columns: int = 2) -> list[str]:
    """A Markdown table's header and rule lines; the first ``text_columns`` left-aligned, the rest right."""
    return ["| " + " | ".join(heads) + " |",
            "|" + "|".join(["---"] * text_columns + ["---:"] * (len(heads) - text_columns)) + "|"]  # fmt: skip


def best_values(group: list[dict], columns: list[tuple]) -> dict[str, str]:
    """Per ranked column (``(key, header, format, better)``, ``better`` min or max, None: not ranked)
    the formatted best value of the group's entries, where two or more have one."""
    best = {}
    for key, _, fmt, better in columns:
        vals = [e[key] for e in group if e[key] is not None and not math.isnan(e[key])]
        if better is not None and len(vals) > 1:
            best[key] = fmt.format(better(vals))
    return best


def bold_cells(entry: dict, columns: list[tuple], best: dict[str, str]) -> list[str]:
    """The entry's cells of ``columns``, those equal to the group's best (:func:`best_values`) in bold."""
    cells = []
    for key, _, fmt, _ in columns:
        s = fmt_value(entry[key], fmt)
        cells.append(f"**{s}**" if best.get(key) == s else s)
    return cells


def md_row(cells: list[str]) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(cells) + " |"
